"""Training of the feed-forward networks: textures (Ulyanov et al. 2016) and stylizations.

Both trainings run Adam on the generator's weights for a budget of steps under the fixed VGG19,
with the run machinery of every other method (``optim.record``): one record per step (``total``
is the step's batch loss), the weights of the best step kept, a typed ``Stop``.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, cast

import torch
from torch import Tensor

from ..core.checks import check_image, check_integer, check_positive, check_seed, check_weight
from ..core.images import resize
from ..losses.config import CONTENT_LAYERS, STYLE_LAYERS, inverse_square_weights, style_layer_weights
from ..losses.statistics import Gram, content_loss
from ..net.vgg import VGGFeatures, check_backbone
from ..optim.record import BUDGET, Record, RunResult, Stop, StopRun, warn_if_early
from .network import STYLIZATION_STYLE_WEIGHT, GeneratorConfig, TextureNetwork, padded_size, save_texture_network


@dataclass
class TrainingResult(RunResult):
    """A trained generator (its best weights) and how training went.

    ``image`` is a sample of the step whose weights were kept (``best_step``, 1-based);
    ``history`` holds one record per step, ``total`` its batch loss (the training objective,
    mean over the batch); ``losses`` lists them. ``save`` writes the network (``save_texture_network``).
    """

    network: TextureNetwork = field(kw_only=True)
    best_step: int = field(kw_only=True)

    @property
    def losses(self) -> list[float]:
        return [h["total"] for h in self.history]

    @property
    def best_loss(self) -> float:
        return self.history[self.best_step - 1]["total"]

    @property
    def final_loss(self) -> float:
        return self.best_loss

    def save(self, path: str | Path, *, overwrite: bool = False, **extra: Any) -> None:
        """Write the network with this training's record (``save_texture_network``); a weights file
        has no free-form fields, so ``extra`` is refused."""
        if extra:
            raise ValueError(f"A texture network's file records its training only; drop {', '.join(extra)}.")
        save_texture_network(self.network, path, self, overwrite=overwrite)


def _check_training(backbone: VGGFeatures, style: Tensor, size: int, num_steps: int, batch_size: int, lr: float,
                    seed: int, style_layers: Sequence[str]) -> tuple[Tensor, int, int, int, float, int]:
    """The checked arguments common to both trainings, or ValueError before any work."""
    style = check_image(style, "The style image")
    size, num_steps, batch_size = (check_integer(n, v) for n, v in (("size", size), ("num_steps", num_steps),
                                                                     ("batch_size", batch_size)))
    backbone.check_fits("The training size", (size, size), style_layers, "train at a larger size")
    return style, size, num_steps, batch_size, check_positive("lr", lr), check_seed(seed)


def generated_side(network: TextureNetwork, size: int) -> int:
    """The side the generator works at to train on ``size`` px samples: ``size`` rounded up to a multiple of
    2^(K-1), at least two of them (``TextureNetwork.noise``); its samples are cropped to ``size``, and so
    are the loss's images (the padding of a stylization network's crops never reaches the loss)."""
    return padded_size(network.config, (size, size))[0]


def _style_loss(backbone: VGGFeatures, style: Tensor, style_layers: Sequence[str],
                layer_weights: Sequence[float] | None) -> tuple[Callable[[dict[str, Tensor]], Tensor], list[float]]:
    """sum_l w_l E_l of a batch's features against the style's Gram matrices, summed over the batch.

    Default w_l proportional to 1 / N_l^2, not the calibrated weights of ``synthesize``: the
    networks' learning rates and ``STYLIZATION_STYLE_WEIGHT`` were chosen with these.
    """
    if layer_weights is None:
        layer_weights = inverse_square_weights(backbone, style_layers)
    weights = style_layer_weights(backbone, style_layers, layer_weights)
    gram = Gram()
    with torch.no_grad():
        style_features = backbone(style.to(next(backbone.parameters()).device), list(style_layers))
        targets = {layer: gram.describe(style_features[layer]) for layer in style_layers}

    def loss(features: dict[str, Tensor]) -> Tensor:
        return cast(Tensor, sum(w * gram.loss(features[l], targets[l]) for l, w in zip(style_layers, weights)))

    return loss, weights


def _fit(network: TextureNetwork, batch_loss: Callable[[int], tuple[Tensor, Tensor]], num_steps: int, lr: float,
         callback: Callable[[int, float], bool | None] | None, params: dict[str, Any]) -> TrainingResult:
    """Adam on ``batch_loss(step)`` (loss, images); keeps the weights of the lowest batch loss (also
    when interrupted, stopped by the callback, which is called with (step, batch loss), or ended by
    an exception in the callback, which is reported with a ``SynthesisNotice``)."""
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    history: list[dict[str, float]] = []

    def keep(image: Tensor) -> tuple[dict[str, Tensor], Tensor]:  # the weights that made this batch, a sample
        return copy.deepcopy(network.state_dict()), image.detach().clamp(0, 1).cpu()

    record = Record(history, budget=num_steps, total_steps=num_steps, keep=keep,
                    callback=None if callback is None else lambda info: callback(info.step, info.loss))
    stop = BUDGET
    began = time.perf_counter()
    try:
        for step in range(1, num_steps + 1):
            loss, images = batch_loss(step)
            record.add({"total": float(loss.detach())}, images[:1])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    except StopRun as ended:
        stop = ended.stop
    except KeyboardInterrupt:
        stop = Stop("interrupted", "interrupted")
    if record.best is None:
        raise KeyboardInterrupt("Training was interrupted before its first step; nothing to keep.")
    if stop.kind == "callback_error":
        warn_if_early(stop, "Training", len(history), returning="the best weights of")
    state, sample = record.best
    network.load_state_dict(state)
    return TrainingResult(sample, history, stop, time.perf_counter() - began, params, network=network,
                          best_step=record.best_step)


def train_texture_network(backbone: VGGFeatures, style: Tensor, *, size: int = 128, num_steps: int = 300,
                          batch_size: int = 4, lr: float = 0.01, config: GeneratorConfig = GeneratorConfig(),
                          style_layers: Sequence[str] = STYLE_LAYERS, layer_weights: Sequence[float] | None = None,
                          seed: int = 0, callback: Callable[[int, float], bool | None] | None = None
                          ) -> TrainingResult:
    """Train a texture network on one style image.

    The generator works at ``size`` rounded up to a multiple of 2^(K-1) (``generated_size`` in
    ``params``); its samples are cropped to ``size``, so the loss sees size x size images, as recorded.

    Args:
        backbone: the fixed feature extractor (its device is used).
        style: the texture (1, 3, H, W) in [0, 1]; its Gram matrices are the targets.
        size: side of the square training samples in px.
        num_steps: Adam steps, each on ``batch_size`` samples of fresh noise.
        lr: Adam's learning rate.
        config: the generator's shape and normalisation.
        style_layers, layer_weights: as in ``synthesize``, but w_l proportional to 1/N_l^2 by default.
        seed: seeds the weights' initialisation and the noise.
        callback: called with (step, batch loss) after every step; returning True stops training.

    Returns:
        The generator with the weights of the step with the lowest batch loss (the mean over the
        batch of sum_l w_l E_l). Ctrl-C (or any KeyboardInterrupt) ends training early and
        returns those weights too.
    """
    backbone = check_backbone(backbone)
    if config.content:
        raise ValueError("A texture network has no content input; use GeneratorConfig(content=False).")
    style, size, num_steps, batch_size, lr, seed = _check_training(backbone, style, size, num_steps, batch_size,
                                                                   lr, seed, style_layers)
    style_loss, weights = _style_loss(backbone, style, style_layers, layer_weights)
    device = next(backbone.parameters()).device
    torch.manual_seed(seed)
    network = TextureNetwork(config).to(device)

    def batch_loss(step: int) -> tuple[Tensor, Tensor]:
        images = network.generate(network.noise(batch_size, (size, size), seed + step, device), (size, size))
        return style_loss(backbone(images, list(style_layers))) / batch_size, images

    params = {"task": "texture_network", "backbone": backbone.info.as_dict(), "size": size,
              "generated_size": generated_side(network, size), "num_steps": num_steps,
              "batch_size": batch_size, "lr": lr, "config": asdict(config), "style_layers": list(style_layers),
              "layer_weights": weights, "seed": seed}
    return _fit(network, batch_loss, num_steps, lr, callback, params)


def random_crops(photos: Sequence[Tensor], count: int, size: int, generator: torch.Generator) -> Tensor:
    """``count`` random size x size crops (count, 3, size, size) of ``photos`` (each (1, 3, H, W) with
    both sides >= size), each from a photo drawn at random and flipped left-right half of the time."""
    crops = []
    for _ in range(count):
        photo = photos[int(torch.randint(len(photos), (1,), generator=generator))]
        h, w = photo.shape[-2:]
        top = int(torch.randint(h - size + 1, (1,), generator=generator))
        left = int(torch.randint(w - size + 1, (1,), generator=generator))
        crop = photo[..., top:top + size, left:left + size]
        crops.append(crop.flip(-1) if torch.rand(1, generator=generator) < 0.5 else crop)
    return torch.cat(crops)


def train_stylization_network(backbone: VGGFeatures, style: Tensor, photos: Sequence[Tensor], *, size: int = 128,
                              num_steps: int = 300, batch_size: int = 4, lr: float = 0.01,
                              content_weight: float = 1.0, style_weight: float = STYLIZATION_STYLE_WEIGHT,
                              config: GeneratorConfig = GeneratorConfig(content=True),
                              content_layers: Sequence[str] = CONTENT_LAYERS,
                              style_layers: Sequence[str] = STYLE_LAYERS, layer_weights: Sequence[float] | None = None,
                              seed: int = 0, callback: Callable[[int, float], bool | None] | None = None
                              ) -> TrainingResult:
    """Train a stylization network for one style on random crops of ``photos``.

    Each step draws ``batch_size`` crops c of ``size`` px and minimises the mean over the batch of
    alpha L_content(g(z, c), c) + beta sum_l w_l E_l(g(z, c), a), ``synthesize``'s loss and
    layers, with beta = ``STYLIZATION_STYLE_WEIGHT`` (3, not 30: see there).
    Photos whose shorter side is below ``size`` are enlarged to it. Any ``size`` works: the crops are
    padded to the generator's multiple of 2^(K-1) and its images cropped back (``TextureNetwork.generate``,
    as ``stylize`` does). Other arguments and the result as in ``train_texture_network``.
    """
    backbone = check_backbone(backbone)
    if not config.content:
        raise ValueError("A stylization network needs the content input; use GeneratorConfig(content=True).")
    if not photos:
        raise ValueError("Give at least one photo to train on.")
    style, size, num_steps, batch_size, lr, seed = _check_training(backbone, style, size, num_steps, batch_size,
                                                                   lr, seed, style_layers)
    photos = [check_image(p, f"Photo {i}") for i, p in enumerate(photos)]
    photos = [p if min(p.shape[-2:]) >= size else resize(p, cast("tuple[int, int]", tuple(math.ceil(s * size / min(p.shape[-2:]))
                                                                   for s in p.shape[-2:]))) for p in photos]
    content_weight, style_weight = (check_weight(n, v) for n, v in (("content_weight", content_weight),
                                                                      ("style_weight", style_weight)))
    style_loss, weights = _style_loss(backbone, style, style_layers, layer_weights)
    device = next(backbone.parameters()).device
    torch.manual_seed(seed)
    network = TextureNetwork(config).to(device)
    generator = torch.Generator().manual_seed(seed)
    layers = [*content_layers, *style_layers]

    def batch_loss(step: int) -> tuple[Tensor, Tensor]:
        crops = random_crops(photos, batch_size, size, generator).to(device)
        with torch.no_grad():
            targets = backbone(crops, list(content_layers))
        images = network.generate(network.noise(batch_size, (size, size), seed + step, device), (size, size), crops)
        features = backbone(images, layers)
        content = sum(content_loss(features[l], targets[l]) for l in content_layers)
        return (content_weight * content + style_weight * style_loss(features)) / batch_size, images

    params = {"task": "stylization_network", "backbone": backbone.info.as_dict(), "size": size,
              "generated_size": generated_side(network, size), "num_steps": num_steps, "batch_size": batch_size,
              "lr": lr, "config": asdict(config), "photos": len(photos), "content_weight": content_weight,
              "style_weight": style_weight,
              "content_layers": list(content_layers), "style_layers": list(style_layers),
              "layer_weights": weights, "seed": seed}
    return _fit(network, batch_loss, num_steps, lr, callback, params)
