"""Adversarial style loss: per-layer pixel-level discriminators instead of Gram matching.

A layer l turns an image into M_l = H_l * W_l feature vectors f_k in R^{N_l}. Instead of
comparing a statistic of those vectors (Gram matrix, mean, covariance), a discriminator D_l
learns to tell the style's vectors (label 1) from the synthesis's (label 0), and the image is
changed so that D_l mistakes its vectors for the style's. D_l is built from 1x1 convolutions,
so it classifies each position on its own, like the statistics it replaces it forgets layout.

With s_l = D_l(f) the logit and sigma the logistic function, one step of the loop is

    D update (d_steps times, every d_every image steps), for each layer:
        L_D,l = mean_{k in style} softplus(-s_l(a_k)) + mean_{k in image} softplus(s_l(f_k))
    image update (Adam, then clamp to [0, 1]):
        L_G(x) = beta * sum_l w_l mean_k softplus(-s_l(f_k(x))) + alpha * L_content(x, p)

softplus(-s) = -log sigma(s), so L_G is the non-saturating generator loss of Goodfellow et al.
(2014). Why logistic regression relates to moment matching: at a stationary point of the
(convex) logistic loss in the parameters (w, b) of s = w . phi(f) + b,

    mean_style (1 - sigma(s)) phi(a_k) = mean_image sigma(s) phi(f_k),

and when D can no longer tell the two apart (s constant) this says mean_style phi = mean_image
phi. With phi(f) = f (``LogisticDiscriminator``) only the means can be enforced; with phi(f) =
(f, f f^T) (``QuadraticDiscriminator``) the second moments, hence mean and covariance, too.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence, cast

import torch
from torch import Tensor, nn

from ..core.checks import check_image, check_integer, check_positive, check_weight
from ..losses.config import CONTENT_LAYERS, STYLE_LAYERS, style_layer_weights
from ..losses.moments import feature_covariance, feature_mean
from ..losses.statistics import content_loss
from ..net.vgg import VGGFeatures, check_backbone
from ..optim.record import BUDGET, Callback, Record, RunResult, Stop, StopRun, warn_if_early
from ..synthesis.objective import initial_image
from .discriminators import DISCRIMINATORS, discriminator_accuracy, discriminator_loss, generator_loss, moment_distances

DiscriminatorName = Literal["logistic", "quadratic", "mlp"]
Init = Literal["auto", "content", "noise", "style"]


@dataclass
class AdversarialResult(RunResult):
    """The final image of an adversarial run, clamped to [0, 1], with its history.

    A GAN loss is not monotone (the discriminators move the target), so the lowest generator
    loss does not mark the best image: ``image`` is the image after the last step.

    Attributes (besides ``RunResult``'s):
        history: one dict per image step: ``total`` (the loss the image minimised), ``style``
            (weighted generator loss), ``content``, ``style/<layer>``, ``discriminator``
            (weighted D loss), ``d_accuracy``, ``d_updates`` (D optimiser steps in this step)
            and, when moments are tracked, ``mean/<layer>``, ``cov/<layer>`` and their
            averages over layers ``mean`` and ``cov``.
        discriminators: the trained discriminators, ``{layer: module}``.
    """

    discriminators: nn.ModuleDict = field(default_factory=nn.ModuleDict)


def _check_positive(name: str, value: float, integer: bool = False) -> None:
    check_integer(name, value) if integer else check_positive(name, value)


def _validate(*, backbone: VGGFeatures, discriminator: str, style: Tensor, content: Tensor | None,
              style_layers: Sequence[str],
              layer_weights: Sequence[float] | None, content_weight: float, style_weight: float,
              hidden: int, num_steps: int, d_steps: int, d_every: int, d_lr: float, lr: float,
              init: str) -> tuple[list[str], list[float], float, float]:
    """Check the arguments of ``adversarial_synthesis``; raise ValueError on the first bad one
    (TypeError for a backbone that is not a ``VGGFeatures``).

    Returns:
        The style layers, one weight w_l per style layer (default 1 / number of layers), the
        content weight and the style weight, as lists and floats.
    """
    check_backbone(backbone)
    if discriminator not in DISCRIMINATORS:
        raise ValueError(f"Unknown discriminator {discriminator!r}; choose one of {', '.join(DISCRIMINATORS)}.")
    check_image(style, "The style image")
    if content is not None:
        check_image(content, "The content image")
    style_layers = list(style_layers)
    if layer_weights is None:  # each discriminator's loss is a mean over positions: equal weights
        layer_weights = [1.0 / len(style_layers)] * len(style_layers) if style_layers else []
    layer_w = style_layer_weights(None, style_layers, layer_weights)
    content_weight = check_weight("content_weight", content_weight)
    style_weight = check_weight("style_weight", style_weight)
    for name, value in (("num_steps", num_steps), ("d_steps", d_steps), ("d_every", d_every), ("hidden", hidden)):
        _check_positive(name, value, integer=True)
    _check_positive("d_lr", d_lr)
    _check_positive("lr", lr)
    if init not in ("auto", "content", "noise", "style"):
        raise ValueError(f"Unknown init {init!r}; choose 'auto', 'content', 'noise' or 'style'.")
    return style_layers, layer_w, content_weight, style_weight


def _build_discriminators(kind: str, style_features: dict[str, Tensor], *, hidden: int, seed: int,
                          d_lr: float, device: torch.device) -> tuple[nn.ModuleDict, torch.optim.Adam]:
    """One discriminator D_l per style layer, and one Adam optimiser for all of them.

    Args:
        kind: a key of ``DISCRIMINATORS``.
        style_features: ``{layer: (1, N_l, H_l, W_l)}`` style features, for the standardisation.
        hidden: hidden width, used only by ``mlp``.
        seed: seeds the initialisation (only the MLP's is random); the global RNG is left as it was.
        d_lr: Adam learning rate.
        device: where the discriminators live.

    Returns:
        ``{layer: D_l}`` and Adam with betas (0.5, 0.999) over their parameters.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        extra = {"hidden": hidden} if kind == "mlp" else {}
        discriminators = nn.ModuleDict({l: DISCRIMINATORS[kind](f, **extra) for l, f in style_features.items()})
        discriminators = discriminators.to(device)
    return discriminators, torch.optim.Adam(discriminators.parameters(), lr=d_lr, betas=(0.5, 0.999))


def _discriminator_terms(discriminators: nn.ModuleDict, style_features: dict[str, Tensor],
                         image_features: dict[str, Tensor], layer_weights: dict[str, float]) -> tuple[Tensor, Tensor]:
    """Weighted D loss sum_l w_l L_D,l and mean accuracy over layers.

    Args:
        discriminators: ``{layer: D_l}``.
        style_features: ``{layer: (1, N_l, H_l, W_l)}`` of the style (label 1).
        image_features: ``{layer: (1, N_l, H_l, W_l)}`` of the image (label 0), detached.
        layer_weights: w_l per style layer.

    Returns:
        Two scalars: the loss (differentiable in D's parameters) and the accuracy (detached).
    """
    zero = next(iter(image_features.values())).new_zeros(())
    loss, accuracy = zero, zero
    for l, w in layer_weights.items():
        s_style, s_image = discriminators[l](style_features[l]), discriminators[l](image_features[l])
        loss = loss + w * discriminator_loss(s_style, s_image)
        accuracy = accuracy + discriminator_accuracy(s_style, s_image).detach() / len(layer_weights)
    return loss, accuracy


def _discriminator_step(discriminators: nn.ModuleDict, d_opt: torch.optim.Optimizer,
                        style_features: dict[str, Tensor], image_features: dict[str, Tensor],
                        layer_weights: dict[str, float], d_updates: int) -> tuple[float, float]:
    """Take ``d_updates`` (>= 0) Adam steps on sum_l w_l L_D,l for fixed image features.

    Args as in ``_discriminator_terms``.

    Returns:
        The D loss and accuracy before the first update, i.e. of D as it was on the current image.
    """
    if not d_updates:
        with torch.no_grad():
            d_loss, d_acc = _discriminator_terms(discriminators, style_features, image_features, layer_weights)
        return float(d_loss), float(d_acc)
    for k in range(d_updates):
        d_opt.zero_grad(set_to_none=True)
        d_loss, d_acc = _discriminator_terms(discriminators, style_features, image_features, layer_weights)
        if k == 0:
            before = float(d_loss.detach()), float(d_acc)
        d_loss.backward()
        d_opt.step()
    return before


def _image_loss(discriminators: nn.ModuleDict, features: dict[str, Tensor], content_targets: dict[str, Tensor],
                layer_weights: dict[str, float], style_weight: float,
                content_weight: float) -> tuple[Tensor, dict[str, float]]:
    """L_G(x) = beta * sum_l w_l mean_k softplus(-s_l(f_k(x))) + alpha * L_content(x, p).

    Args:
        discriminators: ``{layer: D_l}``.
        features: ``{layer: (1, N_l, H_l, W_l)}`` of the image, attached to its graph.
        content_targets: ``{layer: (1, N_l, H_l, W_l)}`` P^l; empty for a texture.
        layer_weights: w_l per style layer.
        style_weight, content_weight: beta, alpha.

    Returns:
        L_G as a scalar tensor, and its parts as floats: ``style/<layer>`` (unweighted),
        ``total``, ``style`` (sum_l w_l of the former) and ``content`` (unweighted).
    """
    zero = next(iter(features.values())).new_zeros(())
    terms = {f"style/{l}": generator_loss(discriminators[l](features[l])) for l in layer_weights}
    style_term = sum((w * terms[f"style/{l}"] for l, w in layer_weights.items()), zero)
    content_term = sum((content_loss(features[l], p) for l, p in content_targets.items()), zero)
    total = style_weight * style_term + content_weight * content_term
    record = {k: float(v.detach()) for k, v in terms.items()}
    record.update(total=float(total.detach()), style=float(style_term.detach()), content=float(content_term.detach()))
    return total, record


@torch.no_grad()
def _targets(backbone: VGGFeatures, style: Tensor, content: Tensor | None, style_layers: Sequence[str],
             content_layers: Sequence[str]) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, tuple[Tensor, Tensor]]]:
    """The style's features, the content's (empty for a texture) and the style's moments (mean, covariance)."""
    style_features = {l: f.float() for l, f in backbone(style, style_layers).items()}
    content_targets = {} if content is None else {l: f.float() for l, f in backbone(content, content_layers).items()}
    style_moments = {l: (feature_mean(f), feature_covariance(f)) for l, f in style_features.items()}
    return style_features, content_targets, style_moments


def _moments_record(image_features: dict[str, Tensor],
                    style_moments: dict[str, tuple[Tensor, Tensor]]) -> dict[str, float]:
    """``mean/<layer>`` and ``cov/<layer>`` from ``moment_distances``, and their averages ``mean``, ``cov``.

    Args:
        image_features: ``{layer: (1, N_l, H_l, W_l)}`` of the image, one entry per style layer.
        style_moments: ``{layer: ((1, N_l), (1, N_l, N_l))}`` mean and covariance of the style.
    """
    record: dict[str, float] = {}
    for l, (mean, cov) in style_moments.items():
        record[f"mean/{l}"], record[f"cov/{l}"] = moment_distances(image_features[l], mean, cov)
    record["mean"] = sum(record[f"mean/{l}"] for l in style_moments) / len(style_moments)
    record["cov"] = sum(record[f"cov/{l}"] for l in style_moments) / len(style_moments)
    return record


def adversarial_synthesis(
    backbone: VGGFeatures,
    *,
    style: Tensor,
    content: Tensor | None = None,
    size: tuple[int, int] | None = None,
    discriminator: DiscriminatorName = "logistic",
    hidden: int = 64,
    style_layers: Sequence[str] = STYLE_LAYERS,
    layer_weights: Sequence[float] | None = None,
    content_layers: Sequence[str] = CONTENT_LAYERS,
    content_weight: float = 0.025,
    style_weight: float = 1.0,
    num_steps: int = 200,
    d_steps: int = 1,
    d_every: int = 1,
    d_lr: float = 1e-3,
    lr: float = 0.05,
    seed: int = 0,
    init: Init = "auto",
    callback: Callback | None = None,
    track_moments: bool = True,
) -> AdversarialResult:
    """Texture synthesis or style transfer against per-layer pixel-level discriminators.

    Each image step first trains the discriminators (``d_steps`` Adam steps on the balanced
    cross-entropy, every ``d_every`` image steps) on the style's features and the current
    image's, then takes one Adam step on the image with the non-saturating generator loss plus
    the optional content loss, and clamps the image to [0, 1]. See the module docstring.

    The image is optimised with Adam, not L-BFGS: the objective changes whenever D is updated,
    and L-BFGS's curvature pairs and line search assume one fixed function.

    Defaults: one D step per image step at d_lr = 1e-3, the schedule that kept D level with the
    image in the notebook's section 8 (a lagging D, rarer or slower, lets the image oscillate; a
    D trained longer per step did not help); image lr 0.05 (smaller rates left a noise start
    uncleared within a few hundred steps); content_weight 0.025, which keeps the photo
    recognisable.

    Args:
        backbone: feature extractor (its device is used for the run).
        style: style image (1, 3, H, W) in [0, 1].
        content: content image (1, 3, H, W); None synthesises a texture.
        size: (H, W) of a texture; default the style's size. Ignored with a content image.
        discriminator: ``logistic`` (linear logistic regression: matches means), ``quadratic``
            (logistic regression on linear and quadratic features: means and covariances) or
            ``mlp`` (1x1 conv -> LeakyReLU -> 1x1 conv with ``hidden`` units).
        hidden: hidden width of the ``mlp`` discriminator.
        style_layers: layers with a discriminator each (default conv1_1 ... conv5_1).
        layer_weights: w_l per style layer (default 1 / number of style layers).
        content_layers: layers of the content loss (default conv4_2).
        content_weight: alpha, weight of ``statistics.content_loss`` (unused for a texture).
        style_weight: beta, weight of the generator loss.
        num_steps: number of image steps.
        d_steps: discriminator updates per image step on which D is trained.
        d_every: train D on image steps 1, 1 + d_every, 1 + 2 d_every, ...
        d_lr: Adam learning rate of the discriminators.
        lr: Adam learning rate of the image.
        seed: seeds the noise start and the MLP's initialisation.
        init: ``content``, ``noise`` or ``style``; ``auto`` = content if given, else noise.
        callback: called with a ``StepInfo`` (loss = ``total``) after every image step;
            returning True stops the run.
        track_moments: record the relative mean and covariance distances to the style per layer
            at every step (costs one covariance per layer and step).

    Returns:
        The image after the last step, the history and the trained discriminators. An interrupt
        (KeyboardInterrupt) or a non-finite loss ends the run early and returns the image so far.
    """
    style_layers, layer_w, content_weight, style_weight = _validate(
        backbone=backbone, discriminator=discriminator, style=style, content=content, style_layers=style_layers, layer_weights=layer_weights,
        content_weight=content_weight, style_weight=style_weight, hidden=hidden, num_steps=num_steps,
        d_steps=d_steps, d_every=d_every, d_lr=d_lr, lr=lr, init=init)
    device = next(backbone.parameters()).device
    style, content = style.to(device), None if content is None else content.to(device)
    size = cast("tuple[int, int]",
                tuple(content.shape[-2:]) if content is not None else size or tuple(style.shape[-2:]))
    init = ("content" if content is not None else "noise") if init == "auto" else init
    content_layers = list(content_layers) if content is not None else []
    alpha = content_weight if content is not None else 0.0
    per_layer = dict(zip(style_layers, layer_w))

    style_features, content_targets, style_moments = _targets(backbone, style, content, style_layers, content_layers)
    discriminators, d_opt = _build_discriminators(discriminator, style_features, hidden=hidden, seed=seed,
                                                  d_lr=d_lr, device=device)

    generator = torch.Generator().manual_seed(seed)
    image = initial_image(init, None if content is None else content.cpu(), [style.cpu()], size,
                           generator).to(device).requires_grad_(True)
    image_opt = torch.optim.Adam([image], lr=lr)
    params: dict[str, Any] = {
        "backbone": backbone.info.as_dict(), "method": "adversarial", "discriminator": discriminator,
        "hidden": hidden if discriminator == "mlp" else None, "size": list(size), "content_layers": content_layers,
        "style_layers": style_layers, "layer_weights": layer_w, "content_weight": alpha, "style_weight": style_weight,
        "num_steps": num_steps, "d_steps": d_steps, "d_every": d_every, "d_lr": d_lr, "lr": lr, "seed": seed,
        "init": init, "optimizer": "adam"}
    layers = list(dict.fromkeys([*style_layers, *content_layers]))

    history: list[dict[str, float]] = []
    keeper = Record(history, budget=num_steps, total_steps=num_steps, callback=callback)
    start = time.perf_counter()
    try:
        for step in range(1, num_steps + 1):
            features = {l: f.float() for l, f in backbone(image, layers).items()}
            detached = {l: features[l].detach() for l in style_layers}
            d_updates = d_steps if (step - 1) % d_every == 0 else 0
            d_loss, d_acc = _discriminator_step(discriminators, d_opt, style_features, detached, per_layer, d_updates)
            total, terms = _image_loss(discriminators, features, content_targets, per_layer, style_weight, alpha)
            record = {"discriminator": d_loss, "d_accuracy": d_acc, "d_updates": float(d_updates), **terms}
            if not math.isfinite(record["total"]) or not math.isfinite(record["discriminator"]):
                raise StopRun(Stop("not_finite", f"the loss became non-finite at step {step}"))
            if track_moments:
                record.update(_moments_record(detached, style_moments))
            # Gradient for the image only: the discriminators' .grad stays that of their own loss.
            (grad,) = torch.autograd.grad(total, image)
            image.grad = grad
            image_opt.step()
            with torch.no_grad():
                image.clamp_(0, 1)
            keeper.add(record, image)  # history and callback
        stop = BUDGET
    except StopRun as ended:
        stop = ended.stop
    except KeyboardInterrupt:
        stop = Stop("interrupted", "interrupted")
    seconds = time.perf_counter() - start
    warn_if_early(stop, "Adversarial synthesis", len(history), returning="the image after")
    return AdversarialResult(image.detach().clamp(0, 1).cpu(), history, stop, seconds, params,
                             discriminators)
