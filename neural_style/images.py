"""Images in and out: files <-> RGB tensors in [0, 1], resizing, and PNGs that carry parameters.

Every tensor here is a batch of one, shape (1, 3, H, W), float32, values in [0, 1].
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError
from torch import Tensor
from torch.nn import functional as F


class ImageLoadError(ValueError):
    """An image file could not be used; the message names the file and says what to do."""


class ImageNotice(UserWarning):
    """Something was changed while loading an image (alpha removed, frames dropped, ...)."""


# Above this long side, load_image(path) without a size says that the image is kept at full size:
# time and memory of a synthesis grow with the pixel count (0.35 s per evaluation at 256 px, 1.9 s
# at 512 px on a 2-core CPU).
LARGE_SIDE = 1024


def load_image(path: str | Path, size: int | None = None) -> Tensor:
    """Read an image file as an upright RGB tensor, optionally resized.

    EXIF orientation is applied; greyscale, palette, CMYK and 16-bit images become RGB;
    transparency is composited onto white; an animated image keeps its first frame. Each change
    that loses something (alpha, frames) is reported as an ``ImageNotice``, and so is an image
    larger than ``LARGE_SIDE`` px loaded without a ``size``.

    Args:
        path: the image file.
        size: length of the longer side after resizing (aspect ratio kept); None keeps it.

    Returns:
        Tensor of shape (1, 3, H, W) in [0, 1].

    Raises:
        ImageLoadError: the path is missing, a directory, not an image, damaged or truncated, or
            larger than Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``).
    """
    path = Path(path).expanduser()
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"size must be a positive number of pixels (the longer side) or None, got {size!r}.")
    if not path.exists():
        raise ImageLoadError(f"{path}: no such file. Check the path (relative paths start at {Path.cwd()}).")
    if path.is_dir():
        raise ImageLoadError(f"{path} is a directory; give the path of an image file inside it.")
    try:
        with Image.open(path) as image:
            if getattr(image, "n_frames", 1) > 1:
                warnings.warn(f"{path} has {image.n_frames} frames; using the first.", ImageNotice, stacklevel=2)
            image.seek(0)
            image = ImageOps.exif_transpose(image)
            array = _to_rgb_array(image, path)
    except UnidentifiedImageError as error:
        raise ImageLoadError(
            f"{path} is not an image Pillow can read (another format, or damaged); convert it to PNG or JPEG."
        ) from error
    except Image.DecompressionBombError as error:
        raise ImageLoadError(
            f"{path} is too large to decode safely ({error}). Downscale it first, e.g. with an image editor."
        ) from error
    except (OSError, SyntaxError, EOFError) as error:  # truncated or otherwise damaged files
        raise ImageLoadError(
            f"{path} could not be decoded ({error}); the file may be truncated or damaged: "
            "open it in an image viewer, or download or export it again."
        ) from error
    tensor = torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()
    if size is None and max(tensor.shape[-2:]) > LARGE_SIDE:
        warnings.warn(f"{path} is {tensor.shape[-2]}x{tensor.shape[-1]} px and is kept at full size; "
                      "synthesis time and memory grow with the pixel count: pass size=512 (or smaller) "
                      "to downscale it.", ImageNotice, stacklevel=2)
    return resize(tensor, size) if size is not None else tensor


def _to_rgb_array(image: Image.Image, path: Path) -> np.ndarray:
    """PIL image of any mode -> float32 array (H, W, 3) in [0, 1]."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit greyscale: keep the precision
        array = np.asarray(image, dtype=np.float32)
        deep = image.mode.startswith("I;16") or array.max() > 255
        array = array / (65535.0 if deep else 255.0)
        return np.repeat(np.clip(array, 0, 1)[..., None], 3, axis=2)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        warnings.warn(f"{path} has an alpha channel; transparent parts are composited onto white.",
                      ImageNotice, stacklevel=3)
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def resize(image: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Resize (1, 3, H, W) so its longer side is ``size`` (or to exactly (H', W')).

    Downscaling uses antialiased bicubic interpolation; the result is clamped to [0, 1].
    """
    h, w = image.shape[-2:]
    if isinstance(size, int):
        if size < 1:
            raise ValueError(f"size must be a positive number of pixels, got {size}.")
        scale = size / max(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
    if tuple(size) == (h, w):
        return image
    out = F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True)
    return out.clamp(0, 1)


def to_pil(image: Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) tensor in [0, 1] -> 8-bit RGB PIL image."""
    array = image.detach().float().squeeze(0).clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.round(array * 255).astype(np.uint8))


def save_image(image: Tensor, path: str | Path, metadata: Mapping[str, Any] | None = None,
               *, overwrite: bool = False) -> Path:
    """Write a PNG atomically (temporary file, then rename), with ``metadata`` as text chunks.

    Each value is stored as JSON text under its key, so ``read_metadata`` returns the same values.
    A crash mid-write leaves no partial PNG. An existing ``path`` raises FileExistsError unless
    ``overwrite`` is True.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: results are saved as PNG so they can carry their parameters; use .png.")
    exists = f"{path} exists; pass overwrite=True to replace it, or choose another name."
    if path.exists() and not overwrite:
        raise FileExistsError(exists)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    for key, value in (metadata or {}).items():
        info.add_itxt(key, json.dumps(value, default=str))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".png", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a result should be readable like any file
        with os.fdopen(fd, "wb") as file:
            to_pil(image).save(file, format="PNG", pnginfo=info)
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path, exists)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _link_new(tmp: str, path: Path, exists: str) -> None:
    """Give the finished file ``tmp`` the name ``path`` only if no file has it (even one created meanwhile)."""
    try:
        os.link(tmp, path)  # atomic, and fails if path exists
    except FileExistsError:
        raise FileExistsError(exists) from None
    except OSError:  # a file system without hard links
        if path.exists():
            raise FileExistsError(exists) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The parameters stored in a PNG by ``save_image`` (values decoded from JSON)."""
    with Image.open(path) as image:
        text = dict(getattr(image, "text", {}))
    out: dict[str, Any] = {}
    for key, value in text.items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
