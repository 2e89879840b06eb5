"""Input conventions of the VGG networks: how an RGB image in [0, 1] becomes what each network saw
in training. torchvision's networks take (x - mean) / std with ImageNet's RGB statistics; the
Caffe VGG of the paper takes BGR in 0-255 minus the mean pixel.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


class ImageNetNormalize(nn.Module):
    """x -> (x - mean) / std with torchvision's ImageNet RGB statistics."""

    mean: Tensor
    std: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class CaffeNormalize(nn.Module):
    """x -> 255 * x[BGR] - mean_BGR: Caffe's VGG convention (BGR, 0-255, mean subtracted)."""

    mean: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return 255.0 * x.flip(1) - self.mean
