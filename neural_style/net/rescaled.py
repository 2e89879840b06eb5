"""The normalised VGG of Gatys et al.: every convolution's mean activation rescaled to 1.

"We normalized the network by scaling the weights such that the mean activation of each
convolutional filter over images and positions is equal to one. Such re-scaling can be done for
the VGG network without changing its output, because it contains only rectifying linear
activation functions and no normalization or pooling over feature maps."

With a positive scale s, relu(s z) = s relu(z), and 2x2 average or max pooling commutes with a
positive per-channel scale. Let m^l_c be the mean over calibration images and positions of
channel c of conv layer l in the *original* network. Then, layer by layer,

    W^l[c, c'] <- W^l[c, c'] * m^{l-1}_{c'} / m^l_c,      b^l[c] <- b^l[c] / m^l_c

(m^0 = 1 for the image) makes the new activations F^l_new = F^l / m^l exactly, so their mean
on the calibration images is 1, and every layer of the new network is a per-channel rescaling of
the old one. The previous layer's division is undone by the ``* m^{l-1}`` on the next layer's
input channels, so all means can be taken in one pass of the original network.

Dead channels (mean 0 on the calibration images: the ReLU is never active) are left unscaled
(m = 1); their activations are still those of the original network.

Departure from the paper, for a small calibration set: a channel that fires at a handful of
positions of a dozen images gets a tiny mean, and dividing by it lets that channel alone dominate
its layer's style loss (which grows as F^4) on any other image, a noise start included. So the
divisor is max(m_c, floor * median_c'(m_c')) over the layer's live channels, ``floor = 0.3`` by
default (``floor=0`` is the paper's rule); the channels below the floor end with a calibration
mean below 1. Any positive divisor keeps the function, so the floor changes only the balance, not
the correctness. (The notebook's section 14 shows the means of the paper's VGG19 and compares the
two rules.)

Calibration: the project's ``images/`` folder, each image resized to 224 px on its long side;
each image's spatial mean counts once (m = average over images of the mean over positions).
For the paper's VGG19 these means ship with the package (``data/vgg19_calibration.pt``, both
poolings, checked against the weights file's SHA-256), so ``normalized=True`` needs no source
checkout; ``tests/test_normalization.py`` recomputes them from ``images/``. Other networks and
calibration sets are computed once and cached in ``~/.cache/neural_style`` (or
``$NEURAL_STYLE_CACHE``) under a key made of the backbone's weights, pooling and the calibration
files' contents.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Sequence, cast

import torch
from torch import Tensor, nn

from ..core.images import IMAGE_SUFFIXES, image_files, load_image
from .vgg import VGGFeatures, check_backbone

CALIBRATION_SIZE = 224
FLOOR = 0.3
PROJECT_IMAGES = Path(__file__).resolve().parents[2] / "images"
SHIPPED_MEANS = Path(__file__).resolve().parents[1] / "data" / "vgg19_calibration.pt"
SHIPPED_NETWORK = "vgg19"


def conv_layers(backbone: VGGFeatures) -> list[str]:
    """The rectified convolution layers ``conv{b}_{i}`` in forward order."""
    return [name for name in backbone.layer_names if name.startswith("conv")]


def calibration_files(folder: str | Path | None = None) -> list[Path]:
    """The calibration images: every image file of ``folder`` (default the project's images/), sorted."""
    folder = PROJECT_IMAGES if folder is None else Path(folder)
    files = image_files(folder) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"No calibration images ({', '.join(IMAGE_SUFFIXES)}) in {folder}; "
                                "pass calibration=[...] with images, or a folder that has some.")
    return files


@torch.no_grad()
def channel_means(backbone: VGGFeatures, images: Sequence[Tensor]) -> dict[str, Tensor]:
    """m^l_c: the mean of every conv layer's channels, over positions and then over images.

    Args:
        backbone: the feature extractor (its ``feature_scale`` is divided out: raw activations).
        images: (1, 3, H, W) in [0, 1], any sizes.

    Returns:
        ``{conv layer: (N_l,) float64 means}``.
    """
    if not images:
        raise ValueError("Give at least one calibration image.")
    layers = conv_layers(backbone)
    device = next(backbone.parameters()).device
    sums = {layer: torch.zeros(backbone.channels(layer), dtype=torch.float64) for layer in layers}
    for image in images:
        for layer, value in backbone(image.to(device), layers).items():
            sums[layer] += value.double().mean(dim=(0, 2, 3)).cpu() / backbone.info.feature_scale
    return {layer: total / len(images) for layer, total in sums.items()}


def channel_scales(means: dict[str, Tensor], floor: float = FLOOR) -> dict[str, Tensor]:
    """The divisor s^l_c of every channel: m^l_c, raised to ``floor`` times the layer's median
    live mean when below it, and 1 for dead channels (m^l_c <= 0). Float64, shape (N_l,).
    """
    if not (0.0 <= floor <= 1.0):
        raise ValueError(f"floor must be in [0, 1], got {floor!r}.")
    scales = {}
    for layer, m in means.items():
        m = m.double().cpu()
        alive = m > 0
        minimum = floor * m[alive].median() if alive.any() else 0.0
        scales[layer] = torch.where(alive, m.clamp_min(float(minimum)), torch.ones_like(m))
    return scales


@torch.no_grad()
def normalize_vgg(backbone: VGGFeatures, means: dict[str, Tensor], *, floor: float = FLOOR) -> VGGFeatures:
    """A copy of ``backbone`` whose conv layer l computes F^l / s^l (module docstring).

    Args:
        backbone: the original network (left unchanged).
        means: ``{conv layer: (N_l,)}`` from ``channel_means`` of this network.
        floor: divisors are at least ``floor`` times the layer's median mean (``channel_scales``).

    Returns:
        The normalised network; its info says ``normalized=True`` and its ``feature_scale`` is 1
        (the rescaling fixes the scale of the activations, so a constant factor on top is moot).
    """
    if backbone.info.normalized:
        raise ValueError(f"{backbone.info} is already normalised.")
    layers = conv_layers(backbone)
    missing = [layer for layer in layers if layer not in means]
    if missing:
        raise ValueError(f"No means for {missing[:3]}; compute them with channel_means(backbone, images).")
    scales = channel_scales({layer: means[layer] for layer in layers}, floor)
    model = copy.deepcopy(backbone)
    previous = torch.ones(3, dtype=torch.float64)
    for conv, layer in zip([m for m in model.features if isinstance(m, nn.Conv2d)], layers):
        s = scales[layer]
        if s.shape != (conv.out_channels,):
            raise ValueError(f"Means of {layer} have shape {tuple(s.shape)}, expected ({conv.out_channels},).")
        weight = conv.weight.double() * previous.to(conv.weight.device).view(1, -1, 1, 1)
        conv.weight.copy_(weight / s.to(conv.weight.device).view(-1, 1, 1, 1))
        bias = cast(Tensor, conv.bias)  # VGG convolutions have biases
        bias.copy_(bias.double() / s.to(bias.device))
        previous = s
    model.info = dataclasses.replace(backbone.info, normalized=True, feature_scale=1.0)
    return model


def cache_dir() -> Path:
    """Where the means are cached: ``$NEURAL_STYLE_CACHE`` or ``~/.cache/neural_style``."""
    return Path(os.environ.get("NEURAL_STYLE_CACHE", Path.home() / ".cache" / "neural_style"))


def _cache_key(backbone: VGGFeatures, files: Sequence[Path], size: int) -> str:
    digest = hashlib.sha256()
    info = backbone.info
    digest.update(json.dumps([info.name, info.arch, info.weights_path or info.weights, info.pooling, size]).encode())
    weights = Path(info.weights_path)
    if weights.is_file():
        stat = weights.stat()
        digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    for file in files:
        digest.update(file.name.encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return f"means-{info.name}-{info.arch}-{info.pooling}-{digest.hexdigest()[:16]}.pt"


def _read_cache(path: Path, layers: Sequence[str]) -> dict[str, Tensor] | None:
    """The cached means, or None when the file is missing, unreadable or incomplete."""
    try:
        means = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # missing or corrupt: recompute
        return None
    if not isinstance(means, dict) or any(not isinstance(means.get(l), Tensor) for l in layers):
        return None
    if any(not torch.isfinite(means[l]).all() for l in layers):
        return None
    return {layer: means[layer] for layer in layers}


def _write_cache(path: Path, content: dict) -> None:
    """Write atomically: a temporary file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(content, file)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def weights_digest(backbone: VGGFeatures) -> str | None:
    """SHA-256 of the backbone's weights file, or None when its weights are not a file."""
    return backbone.info.weights_sha256 or None


def shipped_means(backbone: VGGFeatures) -> dict[str, Tensor] | None:
    """The means on the default calibration set shipped with the package, when ``backbone`` is
    the network they were computed with (the paper's VGG19, same weights file and pooling)."""
    if backbone.info.name != SHIPPED_NETWORK or not SHIPPED_MEANS.is_file():
        return None
    shipped = torch.load(SHIPPED_MEANS, map_location="cpu", weights_only=True)
    means = shipped["means"].get(backbone.info.pooling)
    if means is None or shipped["weights_sha256"] != weights_digest(backbone):
        return None
    return {layer: means[layer] for layer in conv_layers(backbone)}


def write_shipped_means(networks: dict[str, VGGFeatures], path: str | Path = SHIPPED_MEANS) -> Path:
    """Compute the means of the paper's VGG19 on the project's images and write the file that
    ``shipped_means`` reads. ``networks``: ``{pooling: load_backbone("vgg19", pooling=pooling)}``
    for "avg" and "max". Run from a source checkout whenever ``images/`` changes."""
    files = calibration_files()
    images = [load_image(f, CALIBRATION_SIZE) for f in files]
    digests = {weights_digest(net) for net in networks.values()}
    if len(digests) != 1 or any(net.info.name != SHIPPED_NETWORK for net in networks.values()):
        raise ValueError(f"Give the {SHIPPED_NETWORK} network of one weights file for each pooling.")
    record = {"weights_sha256": digests.pop(), "size": CALIBRATION_SIZE, "files": [f.name for f in files],
              "means": {pooling: channel_means(net, images) for pooling, net in networks.items()}}
    _write_cache(Path(path), record)
    os.chmod(path, 0o644)  # package data, readable by every user of an install
    return Path(path)


def calibration_means(backbone: VGGFeatures, *, calibration: str | Path | Sequence[str | Path] | None = None,
                      size: int = CALIBRATION_SIZE, cache: str | Path | bool = True) -> dict[str, Tensor]:
    """``channel_means`` of ``backbone`` on the calibration images, read from the cache if possible.

    Args:
        backbone: the original network.
        calibration: a folder of images or a list of image files (default the project's images/;
            for the paper's VGG19 at the default size the shipped means, ``shipped_means``).
        size: long side of the calibration images, in px.
        cache: True for ``cache_dir()``, a folder, or False to always recompute and not write.
            A missing, unreadable or incomplete cache file is recomputed and rewritten.
    """
    if calibration is None and size == CALIBRATION_SIZE:
        shipped = shipped_means(backbone)
        if shipped is not None:
            return shipped
    files = ([Path(p) for p in calibration] if isinstance(calibration, (list, tuple))
             else calibration_files(cast("str | Path | None", calibration)))
    layers = conv_layers(backbone)
    path = None
    if cache is not False:
        folder = cache_dir() if cache is True else Path(cache)
        path = folder / _cache_key(backbone, files, size)
    means = _read_cache(path, layers) if path is not None else None
    if means is None:
        means = channel_means(backbone, [load_image(f, size) for f in files])
        if path is not None:
            _write_cache(path, means)
    return means


def normalized_backbone(backbone: VGGFeatures, *, calibration: str | Path | Sequence[str | Path] | None = None,
                        size: int = CALIBRATION_SIZE, cache: str | Path | bool = True,
                        floor: float = FLOOR) -> VGGFeatures:
    """The normalised copy of ``backbone`` (``normalize_vgg`` of its ``calibration_means``).

    Args:
        backbone: the original network.
        calibration, size, cache: see ``calibration_means``.
        floor: see ``channel_scales`` (0 = the paper's rule).
    """
    backbone = check_backbone(backbone)
    means = calibration_means(backbone, calibration=calibration, size=size, cache=cache)
    return normalize_vgg(backbone, means, floor=floor)
