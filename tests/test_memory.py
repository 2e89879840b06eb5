"""Tests of neural_style.synthesis.memory: the activation count behind the estimate, the largest size that
fits, the check synthesize runs before starting, and where the free memory is read from.

The activation count is compared with the shapes a real forward pass produces (forward hooks);
the absolute calibration against peak RSS is recorded in the module docstring (a measurement,
not a test: RSS depends on the allocator and on what else the process did).
"""

from __future__ import annotations

import builtins
import typing

import pytest
import torch

from neural_style.core.devices import InsufficientMemoryError, available_bytes
from neural_style.losses.config import CONTENT_LAYERS, STYLE_LAYERS
from neural_style.net.loading import load_backbone
from neural_style.optim.optimizers import HISTORY_SIZE, OPTIMIZERS, OptimizerName
from neural_style.synthesis import memory
from neural_style.synthesis.memory import check_memory, estimate_bytes, largest_fitting_size
from neural_style.synthesis.run import synthesize

LAYERS = [*STYLE_LAYERS, *CONTENT_LAYERS]


@pytest.fixture(scope="module")
def net():
    return load_backbone("random", arch="vgg16", seed=0)


def _hooked_elements(net, size, layers):
    """Elements of every module output a real forward pass produces (independent of the formula)."""
    counts = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: counts.append(out.numel())) for m in net.features]
    try:
        with torch.no_grad():
            net(torch.rand(1, 3, *size), layers)
    finally:
        for hook in hooks:
            hook.remove()
    return counts


@pytest.mark.parametrize("size, layers", [((48, 80), LAYERS), ((37, 50), ["conv3_1"]), ((16, 16), ["pool4"])])
def test_activation_count_matches_a_real_forward(net, size, layers):
    """Without the optimiser state, the estimate is 4 bytes per activation element plus the overhead."""
    elements = sum(_hooked_elements(net, size, layers))
    assert estimate_bytes(net, size, layers, optimizer="adam") == (
        4 * elements + 16 * 3 * size[0] * size[1] + memory.OVERHEAD_BYTES)
    assert estimate_bytes(net, size, layers, optimizer="adam", element_size=2) - memory.OVERHEAD_BYTES == (
        2 * elements + 16 * 3 * size[0] * size[1])
    n = 3 * size[0] * size[1]
    scipy_state = estimate_bytes(net, size, layers, optimizer="scipy-lbfgsb") - estimate_bytes(
        net, size, layers, optimizer="adam")
    assert scipy_state == (8 * (2 * HISTORY_SIZE + 6) - 16) * n
    lbfgs = estimate_bytes(net, size, layers) - estimate_bytes(net, size, layers, optimizer="adam")
    assert lbfgs == (4 * 2 * HISTORY_SIZE + 8 * 10 + 4 * 4 * 2 * HISTORY_SIZE - 16) * n


def test_every_optimizer_name_has_one_registry_entry():
    """The names the type admits and the registry's keys are the same list, each entry named by its key."""
    assert tuple(OPTIMIZERS) == typing.get_args(OptimizerName)
    assert all(entry.name == name for name, entry in OPTIMIZERS.items())


def test_estimate_grows_with_pixels_and_depth(net):
    assert estimate_bytes(net, (64, 64), LAYERS) < estimate_bytes(net, (64, 128), LAYERS)
    assert estimate_bytes(net, (64, 64), ["conv1_1"]) < estimate_bytes(net, (64, 64), ["conv5_1"])
    no_grad = estimate_bytes(net, (64, 64), LAYERS, requires_grad=False)
    assert memory.OVERHEAD_BYTES < no_grad < estimate_bytes(net, (64, 64), LAYERS)


@pytest.mark.parametrize("size", [(512, 512), (300, 1000), (3000, 97)])
def test_largest_fitting_size_is_the_largest(net, size):
    """The suggestion fits the budget, keeps the aspect ratio, and one more pixel of long side would not fit."""
    budget = estimate_bytes(net, (200, 200), LAYERS)
    assert largest_fitting_size(net, (150, 40), LAYERS, budget) == (150, 40)  # fits already: unchanged
    h, w = largest_fitting_size(net, size, LAYERS, budget)
    assert estimate_bytes(net, (h, w), LAYERS) <= budget
    assert abs(h / w - size[0] / size[1]) < 0.05 * max(1, size[0] / size[1])
    long_side = max(h, w) + 1
    bigger = (round(size[0] * long_side / max(size)), round(size[1] * long_side / max(size)))
    assert estimate_bytes(net, bigger, LAYERS) > budget
    assert largest_fitting_size(net, size, LAYERS, memory.OVERHEAD_BYTES // 2) is None


def test_check_memory_refuses_with_a_size_that_fits(net):
    budget = estimate_bytes(net, (256, 256), LAYERS)
    check_memory(net, (256, 256), LAYERS, available=budget)  # exactly enough
    with pytest.raises(InsufficientMemoryError, match="512x512 px needs about .* GiB") as info:
        check_memory(net, (512, 512), LAYERS, available=budget)
    assert isinstance(info.value, MemoryError) and isinstance(info.value, ValueError)
    assert "the largest size that fits is about 256x256 px" in str(info.value)
    with pytest.raises(InsufficientMemoryError, match="style or content image of 4000x3000"):
        check_memory(net, (256, 256), LAYERS, available=budget, target_sizes=[(4000, 3000)])


def test_check_memory_without_a_known_budget_does_not_refuse(net, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: None)
    assert check_memory(net, (10**5, 10**5), LAYERS) == estimate_bytes(net, (10**5, 10**5), LAYERS)


def test_synthesize_refuses_before_allocating(net, monkeypatch):
    """synthesize checks memory first: with 300 MiB free a 1024 px texture is refused, 64 px runs."""
    monkeypatch.setattr(memory, "available_bytes", lambda device: 300 * 2**20)
    style = torch.rand(1, 3, 32, 32)
    with pytest.raises(InsufficientMemoryError, match="1024x1024 px .* largest size that fits is about"):
        synthesize(net, style=style, size=(1024, 1024), num_steps=1)
    assert synthesize(net, style=style, size=(64, 64), num_steps=1).image.shape == (1, 3, 64, 64)


def test_available_bytes_cpu_reads_meminfo():
    free = available_bytes("cpu")
    with open("/proc/meminfo") as file:
        fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in file}
    assert 0 < free <= fields["MemTotal"]
    assert abs(free - fields["MemAvailable"]) < 0.2 * fields["MemTotal"]


def test_available_bytes_without_meminfo_falls_back(monkeypatch):
    """No /proc/meminfo (macOS, some containers): psutil or sysconf still give a positive number."""
    real_open = builtins.open

    def no_proc(path, *args, **kwargs):
        if str(path) == "/proc/meminfo":
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_proc)
    assert available_bytes("cpu") > 0


def test_available_bytes_unknown_device_is_none():
    assert available_bytes("meta") is None
