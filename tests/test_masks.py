"""Tests of neural_style.losses.masks: guided statistics against a naive loop, mask sizes per layer,
the unmasked case as an identity, a two-region synthesis and the validation of masks."""

from __future__ import annotations

import pytest
import torch

from neural_style.losses.config import STYLE_LAYERS
from neural_style.losses.masks import MaskedStatistic, check_masks, downsample
from neural_style.losses.moments import weighted_moments
from neural_style.losses.statistics import get_statistic
from neural_style.net.loading import load_backbone
from neural_style.synthesis.run import synthesize


@pytest.fixture(scope="module")
def net():
    return load_backbone("random", arch="vgg16", seed=0)


def _tinted(rgb: tuple[float, float, float], seed: int, size: int = 32) -> torch.Tensor:
    noise = torch.rand((1, 3, size, size), generator=torch.Generator().manual_seed(seed))
    return noise * torch.tensor(rgb).view(1, 3, 1, 1)


def test_weighted_moments_match_a_naive_loop():
    generator = torch.Generator().manual_seed(1)
    features = torch.rand((1, 4, 3, 5), generator=generator, dtype=torch.float64)
    weights = torch.rand((2, 1, 3, 5), generator=generator, dtype=torch.float64)
    second, mean, mass = weighted_moments(features, weights)
    for r in range(2):
        g = torch.zeros(4, 4, dtype=torch.float64)
        mu = torch.zeros(4, dtype=torch.float64)
        total = 0.0
        for i in range(3):
            for j in range(5):
                w = float(weights[r, 0, i, j])
                f = features[0, :, i, j]
                g += w * torch.outer(f, f)
                mu += w * f
                total += w
        torch.testing.assert_close(second[r], g / total)
        torch.testing.assert_close(mean[r], mu / total)
        assert mass[r].item() == pytest.approx(total)


@pytest.mark.parametrize("name", ["gram", "mean", "mean_cov"])
def test_a_mask_of_ones_is_the_unmasked_statistic(name):
    generator = torch.Generator().manual_seed(2)
    features = torch.rand((1, 6, 7, 5), generator=generator, dtype=torch.float64)
    style = torch.rand((1, 6, 4, 9), generator=generator, dtype=torch.float64)
    base = get_statistic(name)
    masked = MaskedStatistic(base)
    whole = base.describe_weighted(features, torch.ones((1, 1, 7, 5), dtype=torch.float64))
    for key, value in base.describe(features).items():
        torch.testing.assert_close(whole[key], value)
    target = masked.target([base.describe(style)], torch.ones((1, 1, 7, 5), dtype=torch.float64))
    torch.testing.assert_close(masked.loss(features, target), base.loss(features, base.describe(style)))


def test_a_binary_mask_is_the_statistic_of_the_cropped_region():
    generator = torch.Generator().manual_seed(3)
    features = torch.rand((1, 5, 6, 8), generator=generator, dtype=torch.float64)
    mask = torch.zeros((1, 1, 6, 8), dtype=torch.float64)
    mask[..., 1:4, 2:7] = 1
    gram = get_statistic("gram")
    torch.testing.assert_close(gram.describe_weighted(features, mask)["gram"],
                               gram.describe(features[..., 1:4, 2:7])["gram"])


@pytest.mark.parametrize("size", [(37, 45), (64, 50)])
def test_downsampled_masks_have_each_layers_size(net, size):
    masks = torch.ones((2, 1, *size))
    layers = ["conv1_1", "relu2_1", "pool2", "conv3_1", "conv4_2", "conv5_1", "pool5"]
    features = net(torch.rand((1, 3, *size)), layers)
    for layer in layers:
        assert downsample(masks, net.poolings_before(layer)).shape[-2:] == features[layer].shape[-2:], layer
    assert [net.poolings_before(l) for l in ("conv1_2", "pool1", "conv2_1", "pool5")] == [0, 1, 1, 5]


def test_each_region_takes_its_own_style(net):
    """Red style on the left, blue on the right: the pixels (never optimised directly) follow."""
    red, blue = _tinted((1.0, 0.2, 0.2), 0), _tinted((0.2, 0.2, 1.0), 1)
    left = torch.zeros((32, 48), dtype=torch.bool)
    left[:, :24] = True
    result = synthesize(net, style=[red, blue], size=(32, 48), masks=[left, ~left], num_steps=30, seed=0,
                        tv_weight=0.0)  # the random network's style losses are tiny: the default total variation would outweigh them
    image = result.image[0]
    left_rgb, right_rgb = image[:, :, :20].mean((1, 2)), image[:, :, 28:].mean((1, 2))
    # Measured: left (0.50, 0.11, 0.11), right (0.11, 0.11, 0.51); styles' means 0.5 and 0.1.
    assert left_rgb[0] > 2 * left_rgb[2] and right_rgb[2] > 2 * right_rgb[0]
    assert result.best_loss < 0.01 * result.history[0]["total"]
    assert result.params["masks"] == [0.5, 0.5]
    # Each region's statistics are closer to its own style than to the other one's.
    gram = get_statistic("gram")
    masked = MaskedStatistic(gram)
    stacked = check_masks([left, ~left], num_styles=2, size=(32, 48))
    for layer in ("conv1_1", "conv2_1"):
        layer_masks = downsample(stacked, net.poolings_before(layer))
        own = [gram.describe(net(s, [layer])[layer]) for s in (red, blue)]
        features = net(result.image, [layer])[layer]
        matched = masked.loss(features, masked.target(own, layer_masks))
        swapped = masked.loss(features, masked.target(own[::-1], layer_masks))
        assert matched < 0.2 * swapped, layer


def test_masks_are_validated(net):
    style = _tinted((1, 1, 1), 0, 32)
    content = torch.rand((1, 3, 32, 40))
    half = torch.zeros((32, 40))
    half[:16] = 1
    with pytest.raises(ValueError, match="1 masks for 2 style images"):
        synthesize(net, style=[style, style], content=content, masks=[half], num_steps=1)
    with pytest.raises(ValueError, match="32x32 px but the output image is 32x40"):
        synthesize(net, style=[style, style], content=content, masks=[half, torch.ones(32, 32)], num_steps=1)
    with pytest.raises(ValueError, match="empty"):
        synthesize(net, style=[style, style], content=content, masks=[half, torch.zeros(32, 40)], num_steps=1)
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        synthesize(net, style=[style, style], content=content, masks=[half, 2 * half], num_steps=1)
    with pytest.raises(ValueError, match="blend_weights"):
        synthesize(net, style=[style, style], content=content, masks=[half, 1 - half], blend_weights=[1, 1],
                   num_steps=1)
    result = synthesize(net, style=[style, style], content=content, masks=[half, 1 - half], num_steps=2,
                        style_layers=STYLE_LAYERS[:2])
    assert result.image.shape == (1, 3, 32, 40)


def test_masks_follow_the_coarse_to_fine_scales(net):
    """At a coarse scale the masks are resized with the image, so each region keeps its style."""
    red, blue = _tinted((1.0, 0.2, 0.2), 0), _tinted((0.2, 0.2, 1.0), 1)
    top = torch.zeros((48, 64))
    top[:24] = 1
    result = synthesize(net, style=[red, blue], size=(48, 64), masks=[top, 1 - top], scales=[(32, 15), (64, 10)],
                        style_layers=STYLE_LAYERS[:3], seed=0, tv_weight=0.0)  # the random network's style losses are tiny: the default total variation would outweigh them
    scales = [h["scale"] for h in result.history]
    assert scales[0] == 32.0 and scales[-1] == 64.0
    image = result.image[0]
    upper, lower = image[:, :20].mean((1, 2)), image[:, 28:].mean((1, 2))
    assert upper[0] > 1.5 * upper[2] and lower[2] > 1.5 * lower[0]
