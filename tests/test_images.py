"""Tests of neural_style.core.images: loading any common image file as an upright RGB tensor,
resizing, and PNGs that carry their parameters.

References are built independently with numpy / Pillow, never with the functions under test.
"""

from __future__ import annotations

import json
import os
import stat
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from neural_style.core.images import ImageLoadError, ImageNotice, load_image, read_metadata, resize, save_image


def _as_hwc(tensor: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) tensor -> (H, W, 3) numpy array."""
    assert tensor.dim() == 4 and tensor.shape[:2] == (1, 3)
    return tensor[0].permute(1, 2, 0).numpy()


def _check_rgb_batch(tensor: torch.Tensor, h: int, w: int) -> None:
    assert tensor.shape == (1, 3, h, w)
    assert tensor.dtype == torch.float32
    assert float(tensor.min()) >= 0.0 and float(tensor.max()) <= 1.0


def _quadrants(h: int, w: int) -> np.ndarray:
    """A uint8 (h, w, 3) image with four differently coloured quadrants (orientation is visible)."""
    array = np.zeros((h, w, 3), np.uint8)
    array[: h // 2, : w // 2] = (255, 0, 0)      # top-left red
    array[: h // 2, w // 2:] = (0, 255, 0)       # top-right green
    array[h // 2:, : w // 2] = (0, 0, 255)       # bottom-left blue
    array[h // 2:, w // 2:] = (255, 255, 255)    # bottom-right white
    return array


def _no_notice(recorded) -> bool:
    return not any(issubclass(w.category, ImageNotice) for w in recorded)


# ------------------------------------------------------------------------------------------------
# load_image: plain RGB


def test_load_png_round_trip_exact_values(tmp_path):
    """An RGB uint8 PNG loads as exactly array/255 with shape (1, 3, H, W)."""
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(24, 40, 3), dtype=np.uint8)
    path = tmp_path / "rgb.png"
    Image.fromarray(array).save(path)
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        tensor = load_image(path)
    _check_rgb_batch(tensor, 24, 40)
    np.testing.assert_array_equal(_as_hwc(tensor), array.astype(np.float32) / 255.0)
    assert _no_notice(recorded), "a plain RGB image must load without notices"


def test_load_accepts_str_path(tmp_path):
    """A str path works as well as a Path."""
    path = tmp_path / "rgb.png"
    Image.fromarray(_quadrants(8, 12)).save(path)
    assert torch.equal(load_image(str(path)), load_image(path))


@pytest.mark.parametrize("h, w, size, expected", [
    (40, 80, 32, (16, 32)),   # landscape: long side is the width
    (80, 40, 32, (32, 16)),   # portrait: long side is the height
    (30, 90, 60, (20, 60)),   # 1:3
    (32, 48, 96, (64, 96)),   # upscaling too
])
def test_load_size_resizes_long_side_keeping_aspect(tmp_path, h, w, size, expected):
    """size= sets the longer side and keeps the aspect ratio."""
    path = tmp_path / "img.png"
    Image.fromarray(_quadrants(h, w)).save(path)
    tensor = load_image(path, size=size)
    _check_rgb_batch(tensor, *expected)
    # Content is resized, not cropped: the top-left quadrant stays red.
    top_left = _as_hwc(tensor)[: expected[0] // 4, : expected[1] // 4]
    np.testing.assert_allclose(top_left.mean(axis=(0, 1)), [1, 0, 0], atol=0.02)


# ------------------------------------------------------------------------------------------------
# EXIF orientation


@pytest.mark.parametrize("orientation, k", [(6, -1), (8, 1), (3, 2)])
def test_exif_rotated_jpeg_comes_out_upright(tmp_path, orientation, k):
    """EXIF orientation 6 (90° CW), 8 (90° CCW), 3 (180°) is applied to the pixels."""
    stored = _quadrants(32, 48)  # non-square, four distinct colours
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"rot{orientation}.jpg"
    Image.fromarray(stored).save(path, quality=95, exif=exif)
    assert Image.open(path).getexif().get(0x0112) == orientation  # the tag really is in the file

    tensor = load_image(path)
    upright = np.rot90(stored, k=k).astype(np.float32) / 255.0  # numpy: k>0 is counter-clockwise
    _check_rgb_batch(tensor, upright.shape[0], upright.shape[1])
    # JPEG is lossy at the colour edges: compare the quadrant centres.
    out = _as_hwc(tensor)
    h, w = upright.shape[:2]
    for rows in (slice(2, h // 2 - 2), slice(h // 2 + 2, h - 2)):
        for cols in (slice(2, w // 2 - 2), slice(w // 2 + 2, w - 2)):
            np.testing.assert_allclose(out[rows, cols].mean(axis=(0, 1)),
                                       upright[rows, cols].mean(axis=(0, 1)), atol=0.06)


# ------------------------------------------------------------------------------------------------
# Other modes


def test_greyscale_L_becomes_three_equal_channels(tmp_path):
    """Mode L -> RGB with R == G == B == value/255."""
    grey = np.arange(16 * 20, dtype=np.uint8).reshape(16, 20)
    path = tmp_path / "grey.png"
    Image.fromarray(grey, mode="L").save(path)
    assert Image.open(path).mode == "L"
    tensor = load_image(path)
    _check_rgb_batch(tensor, 16, 20)
    for c in range(3):
        np.testing.assert_array_equal(tensor[0, c].numpy(), grey.astype(np.float32) / 255.0)


def test_palette_P_maps_through_palette(tmp_path):
    """Mode P (no transparency) -> the palette's RGB colours."""
    palette = [0, 0, 0, 10, 200, 30, 250, 5, 128] + [0] * (256 * 3 - 9)
    indices = np.zeros((12, 18), np.uint8)
    indices[3:6, 4:9] = 1
    indices[8:, 10:] = 2
    image = Image.fromarray(indices, mode="P")
    image.putpalette(palette)
    path = tmp_path / "pal.png"
    image.save(path)
    assert Image.open(path).mode == "P"
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        tensor = load_image(path)
    _check_rgb_batch(tensor, 12, 18)
    colours = np.array(palette[:9], np.float32).reshape(3, 3) / 255.0
    np.testing.assert_array_equal(_as_hwc(tensor), colours[indices])
    assert _no_notice(recorded)


def test_rgba_composited_on_white_with_notice(tmp_path):
    """RGBA: alpha composited onto white (transparent -> 1.0, half -> mix) and an ImageNotice."""
    rgba = np.zeros((10, 14, 4), np.uint8)
    rgba[..., :3] = (0, 0, 0)
    rgba[..., 3] = 255                     # opaque black
    rgba[0, 0] = (0, 0, 0, 0)              # fully transparent (black, but invisible)
    rgba[1, 1] = (255, 0, 0, 0)            # fully transparent red
    rgba[2, 2] = (0, 0, 0, 128)            # half transparent black
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    with pytest.warns(ImageNotice, match="alpha"):
        tensor = load_image(path)
    _check_rgb_batch(tensor, 10, 14)
    out = _as_hwc(tensor)
    np.testing.assert_array_equal(out[0, 0], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(out[1, 1], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(out[5, 5], [0.0, 0.0, 0.0])
    # white * (1 - 128/255) + black * 128/255 = 127/255 (±1 for rounding)
    np.testing.assert_allclose(out[2, 2], [127 / 255] * 3, atol=1.01 / 255)


def test_palette_with_transparency_composited_with_notice(tmp_path):
    """A P image with a transparent index is composited onto white, with an ImageNotice."""
    indices = np.ones((6, 8), np.uint8)
    indices[0, 0] = 0
    image = Image.fromarray(indices, mode="P")
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    path = tmp_path / "ptrans.png"
    image.save(path, transparency=0)
    with pytest.warns(ImageNotice):
        tensor = load_image(path)
    out = _as_hwc(tensor)
    np.testing.assert_array_equal(out[0, 0], [1, 1, 1])   # transparent index -> white
    np.testing.assert_array_equal(out[3, 3], [0, 0, 1])   # opaque blue stays blue


def test_16bit_png_keeps_16bit_precision(tmp_path):
    """I;16 PNG: values are value/65535 (finer than 1/255), the same in all three channels."""
    grey = (np.arange(32 * 48, dtype=np.uint32).reshape(32, 48) * 41 + 7).astype(np.uint16)
    assert grey.max() > 255
    path = tmp_path / "deep.png"
    Image.fromarray(grey).save(path)
    assert Image.open(path).mode.startswith("I")
    tensor = load_image(path)
    _check_rgb_batch(tensor, 32, 48)
    expected = grey.astype(np.float64) / 65535.0
    for c in range(3):
        np.testing.assert_allclose(tensor[0, c].numpy(), expected, atol=1e-6, rtol=0)
    # adjacent 16-bit codes stay distinct (an 8-bit detour would merge runs of 257 codes)
    assert len(np.unique(tensor[0, 0].numpy())) == grey.size


def test_dark_16bit_png_scaled_by_65535(tmp_path):
    """A 16-bit image whose values are all <= 255 is still a 16-bit image (value/65535)."""
    grey = np.full((8, 8), 200, np.uint16)
    path = tmp_path / "dark16.png"
    Image.fromarray(grey).save(path)
    assert Image.open(path).mode == "I;16"
    tensor = load_image(path)
    np.testing.assert_allclose(tensor.numpy(), 200 / 65535, atol=1e-6)


def test_float_tiff_values_are_kept_and_32bit_integers_scaled(tmp_path):
    """A float ("F") TIFF in [0, 1] keeps its values exactly (no 0-255 detour that made it black); a 32-bit
    integer TIFF above 255 is read as 16-bit values; a negative one is refused."""
    array = np.linspace(0, 1, 24 * 40, dtype=np.float32).reshape(24, 40)
    Image.fromarray(array, mode="F").save(tmp_path / "f.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageNotice)
        tensor = load_image(tmp_path / "f.tif")
    for c in range(3):
        np.testing.assert_array_equal(tensor[0, c].numpy(), array)
    ints = (np.arange(24 * 40).reshape(24, 40) * 50).astype(np.int32)
    Image.fromarray(ints, mode="I").save(tmp_path / "i.tif")
    assert Image.open(tmp_path / "i.tif").mode == "I"
    np.testing.assert_allclose(load_image(tmp_path / "i.tif")[0, 0].numpy(), ints / 65535, atol=1e-6)
    Image.fromarray(ints - 5, mode="I").save(tmp_path / "neg.tif")
    with pytest.raises(ImageLoadError, match="32-bit image with values from -5 to 47945, outside any range"):
        load_image(tmp_path / "neg.tif")


def _adam7_png(array: np.ndarray) -> bytes:
    """An interlaced 8-bit RGB PNG of ``array`` (H, W, 3), written by hand (Pillow writes none)."""
    import struct
    import zlib

    from neural_style.core.pngdata import ADAM7

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + row.tobytes() for x0, y0, dx, dy in ADAM7 for row in array[y0::dy, x0::dx]
                    if row.size)
    header = struct.pack(">IIBBBBB", array.shape[1], array.shape[0], 8, 2, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("shape", [(37, 53), (3, 9), (1, 1)])
def test_interlaced_png_data_is_counted_pass_by_pass(tmp_path, shape):
    """The data check knows Adam7: a complete interlaced PNG loads exactly, one cut short is refused."""
    array = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    data = _adam7_png(array)
    (tmp_path / "whole.png").write_bytes(data)
    assert Image.open(tmp_path / "whole.png").info.get("interlace") == 1
    np.testing.assert_array_equal(_as_hwc(load_image(tmp_path / "whole.png")), array.astype(np.float32) / 255)
    (tmp_path / "cut.png").write_bytes(data[:-30])
    with pytest.raises(ImageLoadError, match="truncated: its pixel data stops after"):
        load_image(tmp_path / "cut.png")


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    """A CMYK JPEG loads as RGB: no ink is white, full cyan is (0, 1, 1), full K is black."""
    cmyk = Image.new("CMYK", (24, 16), (0, 0, 0, 0))
    cmyk.paste((255, 0, 0, 0), (0, 0, 12, 16))     # left half cyan
    cmyk.paste((0, 0, 0, 255), (12, 8, 24, 16))    # bottom-right black
    path = tmp_path / "cmyk.jpg"
    cmyk.save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    tensor = load_image(path)
    _check_rgb_batch(tensor, 16, 24)
    out = _as_hwc(tensor)
    np.testing.assert_allclose(out[2:6, 2:10].mean(axis=(0, 1)), [0, 1, 1], atol=0.05)
    np.testing.assert_allclose(out[1:6, 15:22].mean(axis=(0, 1)), [1, 1, 1], atol=0.05)
    np.testing.assert_allclose(out[10:15, 15:22].mean(axis=(0, 1)), [0, 0, 0], atol=0.05)


def test_animated_gif_first_frame_with_notice(tmp_path):
    """An animated GIF gives its first frame and an ImageNotice that says so."""
    frames = [Image.new("RGB", (20, 10), colour) for colour in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(path).n_frames == 3
    with pytest.warns(ImageNotice, match="3 frames"):
        tensor = load_image(path)
    _check_rgb_batch(tensor, 10, 20)
    np.testing.assert_array_equal(tensor[0, :, 5, 5].numpy(), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(tensor[0].mean(dim=(1, 2)).numpy(), [1.0, 0.0, 0.0])


# ------------------------------------------------------------------------------------------------
# Errors


# ------------------------------------------------------------------------------------------------
# save_image / read_metadata


METADATA = {
    "style_weight": 1e6,
    "content_weight": 1.0,
    "ratio": 0.1 + 0.2,                       # a float that needs all 17 digits
    "layers": ["conv1_1", "conv2_1", "conv3_1"],
    "weights": {"conv1_1": 0.2, "nested": {"list": [1, 2.5, [3, "x"]], "none": None}},
    "steps": 300,
    "flag": True,
    "name": "starry night ü",
}


def test_save_and_read_metadata_round_trip(tmp_path):
    """Nested dict/list/float/int/bool/None/unicode values come back equal (floats exactly)."""
    image = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(0))
    path = save_image(image, tmp_path / "result.png", METADATA)
    assert path == tmp_path / "result.png"
    meta = read_metadata(path)
    assert meta == METADATA
    assert meta["ratio"] == 0.1 + 0.2 and type(meta["steps"]) is int
    # Independent check with Pillow: each value is a JSON text chunk under its key.
    with Image.open(path) as png:
        assert png.format == "PNG"
        assert json.loads(png.text["layers"]) == METADATA["layers"]


def test_read_metadata_keeps_non_json_text(tmp_path):
    """A plain (non-JSON) PNG text chunk is returned as the raw string."""
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "made by hand")
    path = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(path, pnginfo=info)
    assert read_metadata(path) == {"Comment": "made by hand"}


def test_save_without_metadata(tmp_path):
    """metadata=None writes a PNG with no text chunks."""
    path = save_image(torch.zeros(1, 3, 4, 4), tmp_path / "plain.png")
    assert read_metadata(path) == {}


def test_save_is_atomic_leaves_no_temp_files(tmp_path):
    """Saving (twice, overwriting) leaves exactly the target file in the folder."""
    image = torch.rand(1, 3, 8, 8)
    save_image(image, tmp_path / "a.png", {"k": 1})
    save_image(image, tmp_path / "a.png", {"k": 2}, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
    assert read_metadata(tmp_path / "a.png") == {"k": 2}


def test_failed_save_leaves_no_temp_file_and_keeps_old(tmp_path):
    """If encoding fails, the temp file is removed and the existing file is untouched."""
    path = save_image(torch.zeros(1, 3, 8, 8), tmp_path / "keep.png", {"v": "old"})
    before = path.read_bytes()
    with pytest.raises(Exception):
        save_image(torch.zeros(2, 3, 8, 8), path, {"v": "new"}, overwrite=True)  # a batch of 2: not one PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]
    assert path.read_bytes() == before


def test_save_creates_parent_folders(tmp_path):
    """Missing parent folders are created."""
    path = save_image(torch.zeros(1, 3, 4, 4), tmp_path / "a" / "b" / "out.png")
    assert path.is_file()


def test_save_does_not_overwrite_unless_asked(tmp_path):
    """An existing file -> FileExistsError (saying overwrite=True), unchanged; overwrite=True replaces it."""
    path = save_image(torch.zeros(1, 3, 4, 4), tmp_path / "x.png", {"v": 1})
    before = path.read_bytes()
    for kwargs in ({}, {"overwrite": False}):
        with pytest.raises(FileExistsError, match="overwrite=True") as info:
            save_image(torch.ones(1, 3, 4, 4), path, {"v": 2}, **kwargs)
        assert str(path) in str(info.value)
        assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]  # no temporary file left
    save_image(torch.ones(1, 3, 4, 4), path, {"v": 2}, overwrite=True)
    assert read_metadata(path) == {"v": 2}
    assert load_image(path).min().item() == 1.0


def test_save_without_hard_links_still_refuses_existing(tmp_path, monkeypatch):
    """Where os.link is unsupported, a new name is still written and an existing one still refused."""
    def no_link(src, dst):
        raise OSError("hard links not supported")

    monkeypatch.setattr(os, "link", no_link)
    path = save_image(torch.zeros(1, 3, 4, 4), tmp_path / "n.png", {"v": 1})
    assert read_metadata(path) == {"v": 1}
    with pytest.raises(FileExistsError):
        save_image(torch.ones(1, 3, 4, 4), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.png"]


@pytest.mark.parametrize("name", ["out.jpg", "out.jpeg", "out", "out.png.txt"])
def test_save_non_png_suffix_raises(tmp_path, name):
    """Only .png can carry the metadata: other suffixes -> ValueError, nothing written."""
    with pytest.raises(ValueError, match="PNG"):
        save_image(torch.zeros(1, 3, 4, 4), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_save_uppercase_png_suffix_ok(tmp_path):
    """.PNG is accepted."""
    assert save_image(torch.zeros(1, 3, 4, 4), tmp_path / "OUT.PNG").is_file()


def test_pixels_survive_save_load_within_one_level(tmp_path):
    """save -> load changes each value by at most half a level (8-bit rounding), never > 1/255."""
    image = torch.rand(1, 3, 20, 30, generator=torch.Generator().manual_seed(1))
    path = save_image(image, tmp_path / "px.png")
    loaded = load_image(path)
    assert loaded.shape == image.shape
    error = (loaded - image).abs().max().item()
    assert error <= 0.5 / 255 + 1e-6
    # Out-of-range values are clamped, and the 3-D form (3, H, W) is accepted too.
    wild = torch.tensor([-0.5, 0.25, 1.7]).view(3, 1, 1).expand(3, 2, 2).contiguous()
    back = load_image(save_image(wild, tmp_path / "wild.png"))
    np.testing.assert_allclose(back[0, :, 0, 0].numpy(), [0.0, 64 / 255, 1.0])


def test_saved_file_permissions_follow_umask(tmp_path):
    """A saved PNG has the permissions an ordinary new file gets (0666 & ~umask)."""
    umask = os.umask(0o022)
    try:
        path = save_image(torch.zeros(1, 3, 4, 4), tmp_path / "perm.png")
        reference = tmp_path / "ref.bin"
        reference.write_bytes(b"x")
        assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(reference.stat().st_mode) == 0o644
    finally:
        os.umask(umask)


# ------------------------------------------------------------------------------------------------
# resize


def test_resize_checkerboard_downscale_is_antialiased():
    """A 1-px checkerboard shrunk 3x averages to ~0.5 everywhere (no aliasing to 0/1).

    Measured (96x96 -> 32x32): antialiased bicubic gives mean 0.5000 and every pixel within
    0.0044 of 0.5; plain bicubic (antialias=False) samples pixel centres at a 3x step and gives
    pure 0s and 1s (deviation 0.5), with the same mean 0.5 -- so the mean alone cannot tell them
    apart and the per-pixel bound is the real check.
    """
    yy, xx = np.mgrid[:96, :96]
    board = torch.from_numpy(((yy + xx) % 2).astype(np.float32)).expand(1, 3, 96, 96).contiguous()
    small = resize(board, 32)
    assert small.shape == (1, 3, 32, 32)
    assert abs(small.mean().item() - 0.5) < 0.01
    assert (small - 0.5).abs().max().item() < 0.05
    assert small.min().item() >= 0.0 and small.max().item() <= 1.0
    # Non-square, non-integer factor too: 60x96 -> 25x40.
    yy, xx = np.mgrid[:60, :96]
    board = torch.from_numpy(((yy + xx) % 2).astype(np.float32)).expand(1, 3, 60, 96).contiguous()
    small = resize(board, 40)
    assert small.shape == (1, 3, 25, 40)
    assert abs(small.mean().item() - 0.5) < 0.01
    assert (small[..., 2:-2, 2:-2] - 0.5).abs().max().item() < 0.05


def test_resize_exact_size_tuple():
    """A (H, W) tuple gives exactly that size, even if the aspect ratio changes."""
    image = torch.rand(1, 3, 30, 40)
    assert resize(image, (17, 55)).shape == (1, 3, 17, 55)
    assert resize(image, (30, 40)) is image  # same size: unchanged


def test_resize_int_long_side_and_constant_image():
    """An int sets the long side; a constant image stays constant (and in [0, 1])."""
    image = torch.full((1, 3, 50, 100), 0.3)
    out = resize(image, 40)
    assert out.shape == (1, 3, 20, 40)
    torch.testing.assert_close(out, torch.full_like(out, 0.3), atol=1e-5, rtol=0)
    assert resize(torch.rand(1, 3, 100, 2), 10).shape == (1, 3, 10, 1)  # never 0 px


def test_resize_upscale_is_clamped():
    """Bicubic overshoot at hard edges is clamped to [0, 1]."""
    image = torch.zeros(1, 3, 8, 8)
    image[..., :, 4:] = 1.0
    out = resize(image, 64)
    assert out.shape == (1, 3, 64, 64)
    # measured without the clamp: values reach about -0.07 and 1.07 next to the edge
    assert out.min().item() >= 0.0 and out.max().item() <= 1.0
    assert out[..., :, :16].max().item() < 1e-5 and out[..., :, -16:].min().item() > 1 - 1e-5


@pytest.mark.parametrize("size", [0, -3])
def test_resize_rejects_non_positive_size(size):
    """size < 1 -> ValueError."""
    with pytest.raises(ValueError):
        resize(torch.rand(1, 3, 8, 8), size)
