"""Images in and out: files <-> RGB tensors in [0, 1], resizing, and PNGs that carry parameters.

Every tensor here is a batch of one, shape (1, 3, H, W), float32, values in [0, 1].
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import stat
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping, cast

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError
from torch import Tensor
from torch.nn import functional as F

from .checks import check_image, check_integer
from .devices import InsufficientMemoryError, available_bytes
from .outputs import check_name_lengths, write_atomically
from .paths import metadata_value
from .pngdata import png_data_problem

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def has_image_name(path: Path) -> bool:
    """An image suffix (any case) on a name that is not hidden."""
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def image_files(folder: str | Path) -> list[Path]:
    """The images of ``folder``: regular files with an image name (``has_image_name``), sorted."""
    return sorted(p for p in Path(folder).iterdir() if has_image_name(p) and p.is_file())


class ImageLoadError(ValueError):
    """An image file could not be used; the message names the file and says what to do."""


class ImageNotice(UserWarning):
    """Something was changed while loading an image (alpha removed, frames dropped, ...)."""


# Above this long side, load_image(path) without a size says that the image is kept at full size:
# time and memory of a synthesis grow with the pixel count (docs/performance.md gives the times per size).
LARGE_SIDE = 1024
# A pipe (``<(...)``, /dev/stdin, a named FIFO) is read without blocking: with nothing writing to it
# the read is refused at once; a writer that stays silent this long, or sends more, is refused too.
PIPE_TIMEOUT = 60.0
PIPE_LIMIT = 1 << 30
PIPE_GRACE = 1.0  # seconds a writer started with the program has to open the pipe


def load_image(path: str | Path, size: int | None = None) -> Tensor:
    """Read an image file as an upright RGB tensor, optionally resized.

    EXIF orientation is applied; greyscale, palette, CMYK and 16-bit images become RGB (16-bit,
    32-bit and floating-point pixels scaled by the range they use: ``_deep_grey``);
    transparency is composited onto white; an animated image keeps its first frame. Each change
    that loses something (alpha, frames) is reported as an ``ImageNotice``, and so is an image
    larger than ``LARGE_SIDE`` px loaded without a ``size``. A pipe (``<(...)``, /dev/stdin, a
    named FIFO) is read without blocking: one that nothing writes to is refused at once.

    Args:
        path: the image file.
        size: length of the longer side after resizing (aspect ratio kept); None keeps it.

    Returns:
        Tensor of shape (1, 3, H, W) in [0, 1].

    Raises:
        ImageLoadError: the path is missing, a directory, not an image, damaged or truncated,
            larger than Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``), a PNG whose
            pixel data is shorter than its header says (``pngdata``), a floating-point or 32-bit
            image whose values fit no image range (NaN, negative, above 65535), or not a
            file that can be read without waiting forever (a terminal, a socket, a silent pipe).
        InsufficientMemoryError: the resized image would not fit in memory (checked before resizing).
    """
    if size is not None:
        try:
            size = check_integer("size", size)
        except ValueError:
            raise ValueError(f"size must be a positive number of pixels (the longer side) or None, got {size!r}.") from None
    path = Path(path).expanduser()
    tensor = read_image(path, stacklevel=3)
    if size is None and max(tensor.shape[-2:]) > LARGE_SIDE:
        warnings.warn(f"{path} is {tensor.shape[-2]}x{tensor.shape[-1]} px and is kept at full size; "
                      "synthesis time and memory grow with the pixel count: pass size=512 (or smaller) "
                      "to downscale it.", ImageNotice, stacklevel=2)
    return resize(tensor, size) if size is not None else tensor


def read_image(path: str | Path, *, stacklevel: int = 2) -> Tensor:
    """``load_image`` at the file's own size, without the notice about large images."""
    path = Path(path).expanduser()
    image: Image.Image
    with _decoding(path), Image.open(_checked_source(path, inflate=True)) as image:
        n_frames: int = getattr(image, "n_frames", 1)
        if n_frames > 1:
            warnings.warn(f"{path} has {n_frames} frames; using the first.", ImageNotice,
                          stacklevel=stacklevel)
        image.seek(0)
        image = ImageOps.exif_transpose(image)
        array = _to_rgb_array(image, path, stacklevel + 1)
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def image_size(path: str | Path) -> tuple[int, int]:
    """(H, W) of an image file as ``load_image`` would return it (EXIF orientation applied),
    read from its header without decoding the pixels. Raises ``ImageLoadError`` as ``load_image``."""
    path = Path(path).expanduser()
    with _decoding(path), Image.open(_checked_source(path, inflate=False)) as image:
        w, h = image.size
        turned = image.getexif().get(0x0112) in (5, 6, 7, 8)  # EXIF orientations that swap the sides
    return (w, h) if turned else (h, w)


@contextlib.contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """Turn what Pillow and the file system raise while reading ``path`` into ``ImageLoadError``."""
    try:
        yield
    except UnidentifiedImageError as error:
        raise ImageLoadError(
            f"{path} is not an image Pillow can read (another format, or damaged); convert it to PNG or JPEG."
        ) from error
    except Image.DecompressionBombError as error:
        raise ImageLoadError(
            f"{path} is too large to decode safely ({error}). Downscale it first, e.g. with an image editor."
        ) from error
    except PermissionError as error:
        raise ImageLoadError(f"{path} cannot be read: permission denied. Check the file's permissions.") from error
    except (OSError, SyntaxError, EOFError, ValueError) as error:  # truncated, damaged, hostile chunks
        if isinstance(error, ImageLoadError):
            raise
        raise ImageLoadError(
            f"{path} could not be decoded ({error}); the file may be truncated or damaged: "
            "open it in an image viewer, or download or export it again."
        ) from error


def _source(path: Path) -> Path | io.BytesIO:
    """What Pillow should open for ``path``: the path of a regular file (or of a device such as
    /dev/null), or the bytes of a pipe, read without blocking (``_read_pipe``). Missing paths,
    folders, sockets and terminals are refused with ``ImageLoadError``."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ImageLoadError(f"{path}: no such file. Check the path (relative paths start at {Path.cwd()}).") from None
    except OSError as error:  # a name too long, a loop of links, a folder that cannot be entered
        raise ImageLoadError(f"{path} cannot be read: {error.strerror or error}. Check the path.") from None
    if stat.S_ISDIR(mode):
        raise ImageLoadError(f"{path} is a directory; give the path of an image file inside it.")
    if stat.S_ISFIFO(mode):
        return io.BytesIO(_read_pipe(path))
    if stat.S_ISSOCK(mode) or stat.S_ISBLK(mode) or (stat.S_ISCHR(mode) and _is_terminal(path)):
        kind = "a socket" if stat.S_ISSOCK(mode) else "a block device" if stat.S_ISBLK(mode) else "a terminal"
        raise ImageLoadError(f"{path} is {kind}, not an image file; give an image file, or pipe one in "
                             "(e.g. cat photo.jpg | neural-style /dev/stdin ...).")
    return path


def _checked_source(path: Path, *, inflate: bool) -> Path | io.BytesIO:
    """``_source(path)``, refused with ``ImageLoadError`` when it is a PNG whose pixel data is not all there
    (``pngdata``: Pillow would fill the missing rows with black, or allocate what a tiny file claims)."""
    source = _source(path)
    problem = png_data_problem(source, inflate=inflate)
    if problem:
        raise ImageLoadError(f"{path} could not be decoded ({problem}); the file may be truncated or damaged: open "
                             "it in an image viewer, or download or export it again.")
    return source


def _is_terminal(path: Path) -> bool:
    """True when the character device ``path`` is a terminal (reading it would wait for typing)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return False
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


def _read_pipe(path: Path) -> bytes:
    """Every byte a pipe delivers, without ever blocking on a pipe that nothing writes to.

    The pipe is opened non-blocking: a read that finds no writer for ``PIPE_GRACE`` seconds is
    refused, one that finds a writer with nothing written yet waits up to ``PIPE_TIMEOUT`` seconds
    for data.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    chunks: list[bytes] = []
    total, grace_ends = 0, time.monotonic() + PIPE_GRACE
    try:
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:  # a writer is there but has sent nothing yet
                if not select.select([fd], [], [], PIPE_TIMEOUT)[0]:
                    sent = f"stopped after {total} bytes" if total else "sent nothing"
                    raise ImageLoadError(f"{path} is a pipe that {sent} for {PIPE_TIMEOUT:.0f} s without closing; check "
                                         "the command that writes to it, or give an image file.") from None
                continue
            if not chunk and not total and time.monotonic() < grace_ends:  # no writer (yet)
                time.sleep(0.05)
                continue
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > PIPE_LIMIT:
                raise ImageLoadError(f"{path} sent more than {PIPE_LIMIT >> 20} MiB; that is no image file this "
                                     "program reads. Give an image file.")
    finally:
        os.close(fd)
    if not total:
        raise ImageLoadError(f"{path} is a pipe with nothing (left) to read: nothing writes to it. Write the image "
                             "into it as the program starts (e.g. <(cat photo.jpg)), or give an image file.")
    return b"".join(chunks)


def _to_rgb_array(image: Image.Image, path: Path, stacklevel: int) -> np.ndarray:
    """PIL image of any mode -> float32 array (H, W, 3) in [0, 1]."""
    if image.mode.startswith("I") or image.mode == "F":  # 16/32-bit or float greyscale: keep the precision
        return np.repeat(_deep_grey(image, path, stacklevel + 1)[..., None], 3, axis=2)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        warnings.warn(f"{path} has an alpha channel; transparent parts are composited onto white.",
                      ImageNotice, stacklevel=stacklevel)
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def _deep_grey(image: Image.Image, path: Path, stacklevel: int) -> np.ndarray:
    """A greyscale image of 16-bit, 32-bit integer or float pixels -> (H, W) float32 in [0, 1], scaled by
    the range its values really use: 16-bit by 65535; 32-bit integers by 255 when they fit in 8 bits,
    else 65535; float as is when in [0, 1], else by 255 or 65535 with a notice. Values that fit none of
    these (NaN, infinite, negative, above 65535) are refused: no scale would be more than a guess."""
    array = np.asarray(image, dtype=np.float64)
    kind = "16-bit" if image.mode.startswith("I;16") else "floating-point" if image.mode == "F" else "32-bit"
    if not np.isfinite(array).all():
        raise ImageLoadError(f"{path} is a {kind} image with NaN or infinite pixels; export it again with finite "
                             "values (e.g. as an 8- or 16-bit PNG).")
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if low < 0 or high > 65535:
        raise ImageLoadError(f"{path} is a {kind} image with values from {low:.6g} to {high:.6g}, outside any "
                             "range an image uses ([0, 1], 0-255, 0-65535); rescale it to [0, 1] or export it "
                             "as an 8- or 16-bit PNG.")
    if image.mode.startswith("I;16") or high > 255:
        scale = 65535.0
    elif image.mode == "F" and high <= 1:
        scale = 1.0
    else:
        scale = 255.0
    if image.mode == "F" and scale > 1:
        warnings.warn(f"{path} is a floating-point image with values up to {high:.4g}; read as 0-{scale:.0f} "
                      "values.", ImageNotice, stacklevel=stacklevel)
    return (array / scale).astype(np.float32)


def resize(image: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Resize (1, 3, H, W) so its longer side is ``size`` (or to exactly (H', W')).

    Downscaling uses antialiased bicubic interpolation; the result is clamped to [0, 1].
    """
    h, w = image.shape[-2:]
    if not isinstance(size, (tuple, list)):
        size = fitted_size((h, w), check_integer("size", size))
    if tuple(size) == (h, w):
        return image
    _check_fits(image, cast("tuple[int, int]", tuple(size)))
    out = F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True)
    return out.clamp(0, 1)


def fitted_size(shape: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(H', W') of an (H, W) image resized so its longer side is ``long_side`` (aspect ratio kept)."""
    if isinstance(long_side, bool) or long_side < 1:
        raise ValueError(f"size must be a positive number of pixels, got {long_side}.")
    h, w = shape
    scale = long_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def _check_fits(image: Tensor, size: tuple[int, int]) -> None:
    """Refuse a resize whose result (and the interpolation's copies, about three) would not fit in
    the free memory of ``image``'s device, before any of it is allocated."""
    need = 3 * image.shape[0] * image.shape[1] * size[0] * size[1] * image.element_size()
    free = available_bytes(image.device)
    if free is not None and need > free:
        raise InsufficientMemoryError(
            f"Resizing to {size[0]}x{size[1]} px needs about {need / 2**30:.1f} GiB, but only {free / 2**30:.1f} "
            "GiB is free; ask for a smaller size.")


def to_pil(image: Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) tensor in [0, 1] -> 8-bit RGB PIL image."""
    array = image.detach().float().squeeze(0).clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.round(array * 255).astype(np.uint8))


def save_image(image: Tensor, path: str | Path, metadata: Mapping[str, Any] | None = None,
               *, overwrite: bool = False) -> Path:
    """Write a PNG atomically (temporary file, then rename), with ``metadata`` as text chunks.

    Each value is stored as JSON text under its key, so ``read_metadata`` returns the same values;
    a ``Path`` is stored as ``paths.portable_path`` writes it (relative to the project, or its name),
    so that a published result names no machine's folders.
    A key must be a PNG keyword (``check_metadata_key``): a key that is not is refused with
    ValueError before anything is written, rather than renamed, so what is read back is what was
    given.
    A crash mid-write leaves no partial PNG. An existing ``path`` raises FileExistsError unless
    ``overwrite`` is True; a name longer than the file system allows raises ``OutputError``
    before anything is written. ``image`` is (1, 3, H, W) or (3, H, W), floating point and finite;
    values outside [0, 1] are clamped.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: results are saved as PNG so they can carry their parameters; use .png.")
    if isinstance(image, Tensor) and image.dim() == 3:
        image = image.unsqueeze(0)
    image = check_image(image, "The image to save", clamp=True)
    info = PngImagePlugin.PngInfo()
    for key, value in (metadata or {}).items():
        info.add_itxt(check_metadata_key(key), json.dumps(value, default=metadata_value))
    check_name_lengths(path)
    if os.path.lexists(path) and not overwrite:  # refused before encoding; write_atomically checks again
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it, or choose another name.")
    encoded = io.BytesIO()
    to_pil(image).save(encoded, format="PNG", pnginfo=info)
    write_atomically(path, encoded.getvalue(), overwrite=overwrite)
    return path


def check_metadata_key(key: Any) -> str:
    """``key`` if it can name a PNG text chunk, else ValueError: a PNG keyword is 1 to 79 printable
    Latin-1 characters (codes 32-126 and 161-255), with no leading, trailing or double spaces."""
    problem = ""
    if not isinstance(key, str):
        problem = f"is a {type(key).__name__}, not text"
    elif not 1 <= len(key) <= 79:
        problem = f"is {len(key)} characters long; PNG allows 1 to 79"
    elif any(not (32 <= ord(c) <= 126 or 161 <= ord(c) <= 255) for c in key):
        bad = next(c for c in key if not (32 <= ord(c) <= 126 or 161 <= ord(c) <= 255))
        problem = f"contains {bad!r}, which PNG keywords cannot hold (printable Latin-1 only)"
    elif key != key.strip(" ") or "  " in key:
        problem = "has a leading, trailing or double space"
    if problem:
        raise ValueError(f"Metadata key {key!r} {problem}; use a short name of letters, digits and '_' "
                         "(the value may hold any text).")
    return key


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The parameters stored in a PNG by ``save_image`` (values decoded from JSON).

    A text chunk that is not JSON, or JSON that cannot be decoded safely (nested too deeply,
    numbers too long), is returned as its text. A file that cannot be read raises ``ImageLoadError``.
    """
    path = Path(path).expanduser()
    with _decoding(path), Image.open(_source(path)) as image:
        text = dict(getattr(image, "text", {}))
    out: dict[str, Any] = {}
    for key, value in text.items():
        try:
            out[key] = json.loads(value)
        except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
            out[key] = value
    return out
