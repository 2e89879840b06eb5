"""Tests of neural_style.net.rescaled: mean activation 1 on the calibration images, the same
function up to a per-channel scale on other images, dead channels, the cache, and the info."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch

from neural_style.core.images import load_image
from neural_style.net import rescaled as normalization
from neural_style.net.loading import load_backbone
from neural_style.net.rescaled import channel_means, conv_layers, normalize_vgg, normalized_backbone

IMAGES = Path(__file__).resolve().parent.parent / "images"
FILES = [IMAGES / name for name in ("chelsea.png", "brick.png", "starry_night.jpg")]


@pytest.fixture(scope="module")
def biased():
    """A random VGG16 with random biases too (the random backbone's are zero), some negative."""
    net = load_backbone("random", arch="vgg16", seed=1)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in net.features:
            if isinstance(module, torch.nn.Conv2d):
                module.bias.copy_(0.05 * torch.randn(module.bias.shape, generator=generator))
    return net


def _expected_scales(means: torch.Tensor, floor: float) -> torch.Tensor:
    """The divisor of each channel, written out: mean, at least floor * median live mean; dead: 1."""
    live = means[means > 0]
    out = torch.ones_like(means)
    for c, m in enumerate(means.tolist()):
        if m > 0:
            out[c] = max(m, floor * float(live.median()))
    return out


@pytest.fixture(scope="module")
def calibration():
    return [load_image(f, 64) for f in FILES]


@pytest.mark.parametrize("floor", [0.0, normalization.FLOOR])
def test_mean_activation_is_one_on_the_calibration_images(biased, calibration, floor):
    means = channel_means(biased, calibration)
    normalised = normalize_vgg(biased, means, floor=floor)
    after = channel_means(normalised, calibration)
    for layer in conv_layers(biased):
        alive = means[layer] > 0
        expected = means[layer] / _expected_scales(means[layer], floor)  # 1 unless below the floor
        assert floor > 0 or (expected[alive] == 1).all()
        # float32 forward: channels active at a handful of positions (means ~1e-7 here) land
        # within 5e-4 of their target (measured); the others within 1e-5.
        torch.testing.assert_close(after[layer][alive], expected[alive], rtol=0, atol=2e-3, msg=layer)
        assert float((after[layer][alive] - 1).abs().median()) < 1e-5, layer
        assert (after[layer][~alive] == 0).all(), layer  # dead channels stay dead (and unscaled)
    # The original means span orders of magnitude, so this is not a trivial identity.
    alive_means = torch.cat([m[m > 0] for m in means.values()])
    assert alive_means.max() > 100 * alive_means.min()


def test_outputs_are_a_per_channel_rescaling_of_the_original(biased, calibration):
    means = channel_means(biased, calibration)
    normalised = normalize_vgg(biased, means)
    image = torch.rand((1, 3, 48, 40), generator=torch.Generator().manual_seed(5))  # not a calibration image
    layers = biased.layer_names
    old, new = biased(image, layers), normalised(image, layers)
    source = ""
    for layer in layers:  # forward order: a pooling layer has the scale of the conv before it
        source = layer if layer.startswith("conv") else source
        m = _expected_scales(means[source], normalization.FLOOR).float()
        torch.testing.assert_close(new[layer] * m.view(1, -1, 1, 1), old[layer], rtol=1e-4, atol=1e-5,
                                   msg=layer)
    # the original network is untouched
    torch.testing.assert_close(biased(image, ["conv5_3"])["conv5_3"], old["conv5_3"])


def test_info_says_normalised_and_refuses_twice(biased, calibration):
    normalised = normalize_vgg(biased, channel_means(biased, calibration))
    assert normalised.info.normalized and not biased.info.normalized
    assert normalised.info.as_dict()["normalized"] is True and "normalized" not in biased.info.as_dict()
    assert "normalised" in str(normalised.info) and "normalised" not in str(biased.info)
    with pytest.raises(ValueError, match="already normalised"):
        normalize_vgg(normalised, channel_means(biased, calibration))


def test_cache_is_written_read_and_repaired(biased, tmp_path, monkeypatch):
    first = normalized_backbone(biased, calibration=FILES[:2], size=32, cache=tmp_path)
    files = list(tmp_path.glob("means-*.pt"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp"))

    def fail(*args, **kwargs):
        raise AssertionError("the cached means were not used")

    monkeypatch.setattr(normalization, "channel_means", fail)
    second = normalized_backbone(biased, calibration=FILES[:2], size=32, cache=tmp_path)
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)
    monkeypatch.undo()
    files[0].write_bytes(b"not a torch file")
    third = normalized_backbone(biased, calibration=FILES[:2], size=32, cache=tmp_path)
    for a, b in zip(first.parameters(), third.parameters()):
        assert torch.equal(a, b)
    assert torch.load(files[0], weights_only=True).keys() == set(conv_layers(biased))
    # Another calibration set or pooling is another key.
    normalized_backbone(biased, calibration=FILES[1:], size=32, cache=tmp_path)
    assert len(list(tmp_path.glob("means-*.pt"))) == 2


def test_load_backbone_option(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURAL_STYLE_CACHE", str(tmp_path))
    net = load_backbone("random", arch="vgg16", normalized=True)
    assert net.info.normalized and list(tmp_path.glob("means-random-vgg16-avg-*.pt"))
    with pytest.raises(FileNotFoundError, match="No calibration images"):
        normalized_backbone(load_backbone("random", arch="vgg16"), calibration=tmp_path, cache=False)


@pytest.fixture(scope="module")
def paper_networks():
    return {pooling: load_backbone("vgg19", pooling=pooling) for pooling in ("avg", "max")}


def test_shipped_means_are_the_project_images_means(paper_networks):
    """The file in the package is what channel_means gives on images/ today, for both poolings."""
    files = normalization.calibration_files()
    recorded = torch.load(normalization.SHIPPED_MEANS, weights_only=True)
    assert recorded["files"] == [f.name for f in files], "images/ changed: run write_shipped_means"
    images = [load_image(f, normalization.CALIBRATION_SIZE) for f in files]
    for pooling, net in paper_networks.items():
        shipped, computed = normalization.shipped_means(net), channel_means(net, images)
        assert shipped is not None and shipped.keys() == computed.keys()
        for layer in computed:
            # float32 sums in another order on another CPU differ by a few 1e-6; a changed image by far more
            torch.testing.assert_close(shipped[layer], computed[layer], rtol=1e-4, atol=0)


def test_shipped_means_need_no_checkout_and_refuse_other_weights(paper_networks, tmp_path, monkeypatch):
    """normalized=True works without images/ (an installed package) and without a cache; the
    shipped means are used only for the weights file they were computed with."""
    monkeypatch.setattr(normalization, "PROJECT_IMAGES", tmp_path / "no_images")
    monkeypatch.setenv("NEURAL_STYLE_CACHE", str(tmp_path / "cache"))
    net = load_backbone("vgg19", normalized=True)
    assert net.info.normalized and not (tmp_path / "cache").exists()
    other = tmp_path / "other_weights.bin"
    other.write_bytes(b"other weights")
    renamed = copy.copy(paper_networks["avg"])
    renamed.info = dataclasses.replace(renamed.info, weights=other.name, weights_path=str(other),
                                       weights_sha256=hashlib.sha256(other.read_bytes()).hexdigest())
    assert normalization.shipped_means(renamed) is None
    assert normalization.shipped_means(load_backbone("random", seed=0)) is None
    with pytest.raises(FileNotFoundError, match="No calibration images"):
        normalized_backbone(renamed, cache=False)
