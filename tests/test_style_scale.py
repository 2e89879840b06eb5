"""Tests of synthesize's style_scale option: the style image that reaches the network."""

from __future__ import annotations

import pytest
import torch

from neural_style.core.images import resize
from neural_style.net.loading import load_backbone
from neural_style.synthesis.run import synthesize


@pytest.fixture(scope="module")
def random_vgg():
    return load_backbone("random", seed=0)


def _image(h, w, seed=0):
    return torch.rand((1, 3, h, w), generator=torch.Generator().manual_seed(seed))


def _inputs(net, **kwargs):
    """Shapes of every image the backbone sees during a one-evaluation run, and the result."""
    seen = []
    handle = net.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    try:
        result = synthesize(net, num_steps=1, **kwargs)
    finally:
        handle.remove()
    return seen, result


@pytest.mark.parametrize("scale, expected", [(0.5, (24, 32)), (1.0, (48, 64)), (2.0, (96, 128))])
def test_style_reaching_the_network_is_scaled_relative_to_the_content(random_vgg, scale, expected):
    content, style = _image(48, 64, 1), _image(60, 80, 2)  # same aspect, different size
    seen, result = _inputs(random_vgg, content=content, style=style, style_scale=scale)
    # first forward pass: the style target
    assert tuple(seen[0].shape[-2:]) == expected
    torch.testing.assert_close(seen[0], resize(style, expected[1]), rtol=0, atol=0)
    assert result.image.shape[-2:] == content.shape[-2:]  # the output keeps the content's size
    assert result.params["style_scale"] == scale
    assert result.params["style_sizes"] == [list(expected)]


def test_texture_style_scale_is_relative_to_the_output_size(random_vgg):
    style = _image(40, 40, 3)
    seen, result = _inputs(random_vgg, style=style, size=(32, 48), style_scale=1.5)
    assert tuple(seen[0].shape[-2:]) == (72, 72)  # 1.5 x the output's longer side (48)
    assert tuple(result.image.shape[-2:]) == (32, 48)


def test_default_keeps_the_style_as_given(random_vgg):
    content, style = _image(32, 32, 4), _image(40, 56, 5)
    seen, result = _inputs(random_vgg, content=content, style=style)
    assert torch.equal(seen[0], style)
    assert result.params["style_scale"] is None


def test_every_style_of_a_blend_is_scaled(random_vgg):
    content = _image(32, 48, 6)
    seen, _ = _inputs(random_vgg, content=content, style=[_image(40, 40, 7), _image(20, 60, 8)], style_scale=2.0)
    assert [tuple(s.shape[-2:]) for s in seen[:2]] == [(96, 96), (32, 96)]


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf"), True, "2"])
def test_bad_style_scale(random_vgg, scale):
    with pytest.raises(ValueError, match="style_scale must be a finite number > 0"):
        synthesize(random_vgg, content=_image(32, 32), style=_image(32, 32), style_scale=scale, num_steps=1)


def test_tiny_scaled_style_is_refused(random_vgg):
    with pytest.raises(ValueError, match="at least 16 px"):
        synthesize(random_vgg, content=_image(32, 64), style=_image(32, 64), style_scale=0.4, num_steps=1)
