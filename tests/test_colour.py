"""Tests of neural_style.synthesis.colour and of synthesize's preserve_colour option.

References: the published YIQ matrix inverted by numpy in float64, numpy mean/cov, sorting.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neural_style.net.loading import load_backbone
from neural_style.synthesis.colour import (combine_luminance, luminance, match_colour, match_luminance,
                                           preserve_colour, rgb_to_yiq, yiq_to_rgb)
from neural_style.synthesis.run import synthesize

YIQ = np.array([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])


def _image(h=12, w=10, seed=0, dtype=torch.float32):
    return torch.rand((1, 3, h, w), generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _coloured(h=12, w=10, seed=0):
    """A saturated image: red-ish left half, blue-ish right half, with noise."""
    x = _image(h, w, seed) * 0.3
    x[:, 0, :, : w // 2] += 0.6
    x[:, 2, :, w // 2:] += 0.6
    return x.clamp(0, 1)


@pytest.fixture(scope="module")
def random_vgg():
    return load_backbone("random", seed=0)


def test_rgb_to_yiq_matches_numpy_matrix():
    x = _image(dtype=torch.float64)
    ref = np.einsum("ij,jhw->ihw", YIQ, x[0].numpy())
    np.testing.assert_allclose(rgb_to_yiq(x)[0].numpy(), ref, rtol=1e-12, atol=1e-14)


def test_yiq_round_trip_is_exact_in_float64():
    x = _image(dtype=torch.float64)
    torch.testing.assert_close(yiq_to_rgb(rgb_to_yiq(x)), x, rtol=0, atol=1e-14)
    y = rgb_to_yiq(x)
    torch.testing.assert_close(rgb_to_yiq(yiq_to_rgb(y)), y, rtol=0, atol=1e-14)


def test_grey_has_no_chroma():
    g = torch.linspace(0, 1, 20, dtype=torch.float64).view(1, 1, 4, 5).expand(1, 3, 4, 5)
    yiq = rgb_to_yiq(g)
    assert yiq[:, 1:].abs().max() < 1e-15
    torch.testing.assert_close(yiq[:, 0], g[:, 0], rtol=0, atol=1e-15)


def test_combine_luminance_keeps_chroma_and_stays_in_range():
    content = _coloured(seed=1)
    bright = torch.ones_like(content)  # luminance 1 everywhere: saturated pixels must be pulled down
    for source in (_image(seed=2), bright, torch.zeros_like(content)):
        out = combine_luminance(source, content)
        assert out.min() >= -1e-6 and out.max() <= 1 + 1e-6
        torch.testing.assert_close(rgb_to_yiq(out)[:, 1:], rgb_to_yiq(content)[:, 1:], rtol=0, atol=2e-6)
    # where the luminance fits, it is the source's
    source = torch.full_like(content, 0.5)
    torch.testing.assert_close(luminance(combine_luminance(source, content * 0.5 + 0.25)),
                               luminance(source), rtol=0, atol=2e-6)


def test_match_luminance_gives_content_mean_and_std():
    style, content = _image(16, 16, seed=3) * 0.5, _image(10, 8, seed=4)
    out = match_luminance(style, content)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    y_c = luminance(content)
    assert out[:, 0].mean().item() == pytest.approx(y_c.mean().item(), abs=1e-5)
    assert out[:, 0].std(correction=0).item() == pytest.approx(y_c.std(correction=0).item(), rel=1e-4)


def test_match_colour_linear_gives_content_mean_and_covariance():
    style = _image(20, 20, seed=5) * 0.4 + 0.3  # inside [0.3, 0.7]: after matching, nothing is clamped
    content = _coloured(16, 16, seed=6) * 0.3 + 0.35
    out = match_colour(style, content, "linear", eps=0.0)
    assert 0 < out.min() and out.max() < 1
    o, c = out[0].reshape(3, -1).double().numpy(), content[0].reshape(3, -1).double().numpy()
    np.testing.assert_allclose(o.mean(axis=1), c.mean(axis=1), atol=1e-5)
    np.testing.assert_allclose(np.cov(o, bias=True), np.cov(c, bias=True), atol=1e-5)


def test_match_colour_histogram_gives_content_values_per_channel():
    style, content = _image(6, 8, seed=7), _coloured(8, 6, seed=8)  # same number of pixels
    out = match_colour(style, content, "histogram")
    for ch in range(3):
        np.testing.assert_array_equal(np.sort(out[0, ch].numpy().ravel()), np.sort(content[0, ch].numpy().ravel()))
        # ranks are the style's
        np.testing.assert_array_equal(np.argsort(out[0, ch].numpy().ravel(), kind="stable"),
                                      np.argsort(style[0, ch].numpy().ravel(), kind="stable"))


def test_match_colour_rejects_unknown_method():
    with pytest.raises(ValueError, match="'linear' or 'histogram'"):
        match_colour(_image(), _image(), "wasserstein")


def test_preserve_colour_needs_content():
    with pytest.raises(ValueError, match="content image"):
        preserve_colour("luminance", None, [_image()])


def test_preserve_colour_unknown_mode():
    with pytest.raises(ValueError, match="'none', 'luminance' or 'match'"):
        preserve_colour("yuv", _image(), [_image()])


# ------------------------------------------------------------------------------------------------
# Through synthesize


@pytest.mark.parametrize("mode", ["luminance", "match"])
def test_synthesize_texture_refuses_colour_preservation(random_vgg, mode):
    with pytest.raises(ValueError, match="content image"):
        synthesize(random_vgg, style=_image(32, 32), preserve_colour=mode, num_steps=1)


def test_luminance_only_result_has_the_contents_chroma(random_vgg):
    content, style = _coloured(32, 32, seed=9), _image(32, 32, seed=10)
    result = synthesize(random_vgg, content=content, style=style, preserve_colour="luminance", num_steps=5,
                        style_weight=1e6)
    assert result.params["preserve_colour"] == "luminance"
    torch.testing.assert_close(rgb_to_yiq(result.image)[:, 1:], rgb_to_yiq(content)[:, 1:], rtol=0, atol=2e-6)
    # the luminance did change (the transfer happened)
    assert (luminance(result.image) - luminance(content)).abs().max() > 1e-3


def test_match_mode_optimises_against_the_recoloured_style(random_vgg):
    content, style = _coloured(32, 32, seed=11), _image(32, 32, seed=12)
    seen = []
    handle = random_vgg.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    try:
        result = synthesize(random_vgg, content=content, style=style, preserve_colour="match", num_steps=1)
    finally:
        handle.remove()
    assert result.params["preserve_colour"] == "match"
    torch.testing.assert_close(seen[0], match_colour(style, content), rtol=0, atol=0)
