"""Feature inversion (Mahendran and Vedaldi 2015): which image has these activations?

Given the activations Phi_0 = Phi_l(x_0) of one layer for an image x_0, find

    x* = argmin_{x in [0,1]^{3 H W}}  ||Phi_l(x) - Phi_0||^2 / (2 ||Phi_0||^2) + gamma * TV_beta(x),

the content loss of the paper normalised by the target's energy (so one gamma suits every layer)
plus the total-variation prior. Started from noise this shows what a layer keeps of the image;
started from another image (a style image) it becomes the "amalgamation" of the two: the layer's
content drawn with the colours and strokes the starting image supplies.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Literal, cast

import torch
from torch import Tensor

from ..core.checks import check_image, check_integer, check_seed
from ..losses.config import LossConfig
from ..losses.statistics import content_loss
from ..net.vgg import VGGFeatures, check_backbone
from ..optim.optimizers import optimise
from ..optim.record import Callback, warn_if_early
from .objective import Objective, initial_image
from .run import SynthesisResult

InversionInit = Literal["noise", "style"]


def invert(backbone: VGGFeatures, image: Tensor, layer: str, *, init: InversionInit = "noise",
           style: Tensor | None = None, tv_weight: float = 0.1, tv_exponent: float = 2.0,
           num_steps: int = 200, seed: int = 0,
           callback: Callback | None = None) -> SynthesisResult:
    """Reconstruct ``image`` from the activations of one layer (L-BFGS-B, pixels in [0, 1]).

    Args:
        backbone: the feature extractor.
        image: the image to invert, (1, 3, H, W) in [0, 1]; the result has its size.
        layer: the layer whose activations are matched (``conv1_1`` ... ``pool5``).
        init: ``noise`` (uniform, seeded) or ``style`` (start from ``style`` resized to (H, W)).
        style: the starting image for ``init="style"``, (1, 3, H', W').
        tv_weight, tv_exponent: gamma and beta of the total-variation prior.
        num_steps: number of loss evaluations.
        seed: seed of the noise.
        callback: as in ``synthesize``.

    Returns:
        The best image; ``history`` has ``content`` = ||Phi - Phi_0||^2 / 2 (unnormalised),
        ``tv`` and ``total``; ``params`` records the run.
    """
    backbone = check_backbone(backbone)
    image = check_image(image, "The image")
    if init not in ("noise", "style"):
        raise ValueError(f"Unknown init {init!r}; choose 'noise' or 'style'.")
    if init == "style" and style is None:
        raise ValueError("init='style' needs a style image to start from; pass style=...")
    if style is not None:
        style = check_image(style, "The style image")
    num_steps, seed = check_integer("num_steps", num_steps), check_seed(seed)
    loss = LossConfig(content_layers=(layer,), style_layers=(), style_weight=0.0, tv_weight=tv_weight,
                      tv_exponent=tv_exponent)  # checks the weights; alpha is set once the target is known
    backbone.check_layers([layer])
    device = next(backbone.parameters()).device
    with torch.no_grad():
        target = backbone(image.to(device), [layer])[layer].float()
    energy = float(2 * content_loss(torch.zeros_like(target), target))  # ||Phi_0||^2 / M, as L_content divides by M
    if energy == 0:
        raise ValueError(f"The image's {layer} activations are all zero: there is nothing to invert.")
    objective = Objective(backbone, dataclasses.replace(loss, content_weight=1.0 / energy), style_targets={},
                          content_targets={layer: target})
    size = cast("tuple[int, int]", tuple(image.shape[-2:]))
    generator = torch.Generator().manual_seed(seed)
    start = initial_image(init, None, [] if style is None else [style.detach().cpu()], size, generator)
    params: dict[str, Any] = {
        "task": "inversion", "backbone": backbone.info.as_dict(), "layer": layer, "size": list(size),
        "init": init, "tv_weight": loss.tv_weight, "tv_exponent": loss.tv_exponent, "num_steps": num_steps,
        "seed": seed, "optimizer": "lbfgs", "precision": "float32",  # no autocast: the plain network
    }
    history: list[dict[str, float]] = []
    began = time.perf_counter()
    outcome = optimise(objective, start.to(device), optimizer="lbfgs", num_steps=num_steps, callback=callback,
                       history=history)
    warn_if_early(outcome.stop, "Inversion", len(history))
    return SynthesisResult(outcome.image, history, outcome.stop, time.perf_counter() - began, params,
                           outcome.best_step)


def psnr(image: Tensor, reference: Tensor) -> float:
    """Peak signal-to-noise ratio 10 log10(1 / MSE) in dB of two images in [0, 1] of one shape."""
    if image.shape != reference.shape:
        raise ValueError(f"Images of shapes {tuple(image.shape)} and {tuple(reference.shape)}; give one shape.")
    mse = float((image.detach().double().cpu() - reference.detach().double().cpu()).pow(2).mean())
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(1.0 / mse)).item()
