"""Tests of neural_style.core.devices and of the fast path: autocast and channels-last change speed, not results."""

from __future__ import annotations

import pytest
import torch

from neural_style.core import devices
from neural_style.losses.config import PAPER
from neural_style.net.loading import load_backbone
from neural_style.synthesis.objective import Objective


def _image(size, seed):
    return torch.rand((1, 3, size, size), generator=torch.Generator().manual_seed(seed))


def test_auto_device_is_cuda_exactly_when_available():
    assert devices.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert devices.resolve_device(None) == devices.resolve_device("auto")
    assert devices.resolve_device("cpu") == torch.device("cpu")


def test_bad_devices_are_refused():
    with pytest.raises(ValueError, match="Unknown device 'gpu0'"):
        devices.resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is available"):
            devices.resolve_device("cuda")


def test_cpu_bf16_detection_reads_the_cpu_flags():
    try:
        flags = open("/proc/cpuinfo").read().split()
    except OSError:
        flags = []
    expected = ("amx_bf16" in flags or "avx512_bf16" in flags) and torch.backends.mkldnn.is_available()
    assert devices.cpu_has_fast_bf16() == expected


def test_precision_choices():
    cpu = torch.device("cpu")
    assert devices.autocast_dtype(cpu, "fp32") is None
    assert devices.autocast_dtype(cpu, "bf16") is torch.bfloat16
    assert devices.autocast_dtype(cpu, "auto") is (torch.bfloat16 if devices.cpu_has_fast_bf16() else None)
    with pytest.raises(ValueError, match="fp16.*needs a CUDA GPU"):
        devices.autocast_dtype(cpu, "fp16")
    with pytest.raises(ValueError, match="Unknown precision 'half'"):
        devices.autocast_dtype(cpu, "half")


def test_auto_precision_is_fp32_on_cuda_and_bf16_only_on_fast_cpus(monkeypatch):
    """bf16 was measured faster on AMX CPUs (2.6x) and not on an H100 (7.6 vs 7.1 ms): auto follows."""
    assert devices.autocast_dtype(torch.device("cuda"), "auto") is None  # no GPU needed to decide
    assert devices.autocast_dtype(torch.device("cuda"), "bf16") is torch.bfloat16
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: False)
    assert devices.autocast_dtype(torch.device("cpu"), "auto") is None
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: True)
    assert devices.autocast_dtype(torch.device("cpu"), "auto") is torch.bfloat16


def test_channels_last_keeps_the_features():
    """prepare_for_speed changes the memory layout only: same activations to float32 rounding."""
    reference = load_backbone("random", arch="vgg16", seed=3)
    fast = load_backbone("random", arch="vgg16", seed=3)
    devices.prepare_for_speed(fast)
    assert fast.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    image = _image(40, 0)
    with torch.no_grad():
        a = reference(image, ["conv3_1", "conv5_1"])
        b = fast(image.contiguous(memory_format=torch.channels_last), ["conv3_1", "conv5_1"])
    for layer in a:
        torch.testing.assert_close(b[layer], a[layer], rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def vgg19_objectives():
    """The paper's stylization loss on real (offline) weights, in float32 and under bf16 autocast."""
    net = load_backbone("vgg19")
    content, style = _image(64, 1), torch.nn.functional.avg_pool2d(_image(128, 2), 2)
    kwargs = dict(styles=[style], content=content)
    return (Objective.from_images(net, PAPER, **kwargs),
            Objective.from_images(net, PAPER, autocast=torch.bfloat16, **kwargs))


def test_bf16_autocast_loss_is_float32_and_close(vgg19_objectives):
    """Under autocast only the network runs in bf16: the loss terms come out in float32, close to the
    float32 loss (measured on this noise image with the Caffe VGG19: totals 0.74% apart, within
    bf16's 8-bit mantissa through 9 convolutions to conv4_1, which owns 95% of the style loss)."""
    fp32, bf16 = vgg19_objectives
    x = _image(64, 5).requires_grad_(True)
    a = fp32(x)
    ga, = torch.autograd.grad(a["total"], x)
    b = bf16(x)
    gb, = torch.autograd.grad(b["total"], x)
    assert all(v.dtype == torch.float32 for v in b.values())
    assert b["total"].item() == pytest.approx(a["total"].item(), rel=2e-2)
    cosine = torch.nn.functional.cosine_similarity(ga.flatten(), gb.flatten(), dim=0)
    assert cosine > 0.999
