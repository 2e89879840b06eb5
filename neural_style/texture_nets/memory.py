"""How much memory a texture network's training or sampling needs, checked before any of it is allocated.

A training step runs the generator and then the VGG on a batch of B images at the generator's
padded size (``padded_size``), and keeps both networks' activations for the backward pass:

    bytes ~= e B (E_train(generator) + sum_m N_m H_m W_m (VGG))  +  overhead

with e = 4 (float32), E_train of ``network.generator_elements`` and the VGG's module outputs up
to the deepest layer read (``VGGFeatures.module_shapes``, as ``synthesis.memory`` counts them);
the overhead (allocator, Gram matrices) is ``OVERHEAD_BYTES``, the same as ``synthesis.memory``'s.
Sampling or stylizing one image under ``torch.no_grad`` needs e E_sample + overhead. The weights
themselves (a few MB) are not counted.
"""

from __future__ import annotations

from typing import Iterable

import torch

from ..core.devices import InsufficientMemoryError, available_bytes
from ..net.vgg import VGGFeatures
from .network import GeneratorConfig, TextureNetwork, generator_elements, padded_size

ELEMENT_SIZE = 4  # float32
OVERHEAD_BYTES = 80 * 2**20
GIB = 2**30


def training_bytes(backbone: VGGFeatures, config: GeneratorConfig, size: int, batch_size: int,
                   layers: Iterable[str]) -> int:
    """Estimated peak bytes of one training step on ``batch_size`` square images of side ``size``
    (the module docstring's formula). ``backbone`` may be a ``skeleton``: only its shapes are read."""
    padded = padded_size(config, (size, size))
    vgg = sum(c * h * w for c, h, w in backbone.module_shapes(padded, layers))
    return ELEMENT_SIZE * batch_size * (generator_elements(config, (size, size), training=True) + vgg) + OVERHEAD_BYTES


def generation_bytes(config: GeneratorConfig, size: tuple[int, int]) -> int:
    """Estimated peak bytes of generating one image of ``size`` = (H, W) without gradients."""
    return ELEMENT_SIZE * generator_elements(config, size, training=False) + OVERHEAD_BYTES


def weights_file_bytes(config: GeneratorConfig, num_steps: int = 0) -> int:
    """About the size of the weights file of a generator of ``config`` trained for ``num_steps``:
    4 bytes per parameter (the generator is built on the meta device, without memory), a few
    hundred per step of loss history, and 64 KiB for the archive's own structure and the parameters."""
    with torch.device("meta"):
        parameters = sum(p.numel() for p in TextureNetwork(config).state_dict().values())
    return ELEMENT_SIZE * parameters + 200 * num_steps + 2**16


def check_fits(need: int, device: torch.device | str, what: str, hint: str, available: int | None = None) -> None:
    """``InsufficientMemoryError`` when ``need`` bytes exceed the free memory of ``device``
    (``available``, default ``devices.available_bytes``; no check when it cannot be told).
    ``what`` names the work ("Training at 128x128 px"), ``hint`` what to change."""
    available = available_bytes(device) if available is None else available
    if available is not None and need > available:
        raise InsufficientMemoryError(f"{what} needs about {need / GIB:.1f} GiB on {device}, but only "
                                      f"{available / GIB:.1f} GiB is available; {hint}.")


def scales_hint(config: GeneratorConfig, size: tuple[int, int], option: str) -> str:
    """What to change when an image of ``size`` does not fit: the size, or the number of scales
    when the padding to a multiple of 2^(K-1) is what makes the generated image large."""
    h, w = padded_size(config, size)
    if h * w > 2 * size[0] * size[1]:
        return (f"{config.scales} scales generate at least {h}x{w} px (a multiple of 2^{config.scales - 1}); "
                f"use fewer --scales or a smaller {option}")
    return f"use a smaller {option}"
