"""Is a PNG's pixel data all there? Checked before Pillow decodes it.

Pillow fills the rows a PNG does not deliver with black when its compressed stream ends cleanly
but early, and allocates the whole image a header claims before it finds out that the data is
missing. ``png_data_problem`` reads the header (``IHDR``: width, height, bit depth, colour type,
interlacing), computes the bytes of filtered rows it announces (each row: one filter byte and
ceil(W * bits per pixel / 8) bytes; seven passes when interlaced, Adam7), and compares:

- before inflating anything, with the file's size: deflate packs at most about 1032 bytes into
  one, so a file smaller than rows / 1032 cannot hold them (a tiny file claiming a huge image);
- then with the bytes the ``IDAT`` chunks inflate to, counted in pieces of at most 1 MiB (never
  the whole image at once).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFLATE_MAX_RATIO = 1032  # no deflate stream inflates to more than about 1032 times its size
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
PIECE = 1 << 20


def row_bytes(header: bytes) -> int | None:
    """The bytes of filtered rows that an ``IHDR`` chunk's 13 bytes announce (None when not understood)."""
    if len(header) < 13:
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header[:13])
    if colour not in PNG_CHANNELS or depth not in (1, 2, 4, 8, 16):
        return None
    bits = PNG_CHANNELS[colour] * depth
    total = 0
    for x0, y0, dx, dy in ADAM7 if interlace else ((0, 0, 1, 1),):
        cols, rows = max(0, -(-(width - x0) // dx)), max(0, -(-(height - y0) // dy))
        if cols and rows:
            total += rows * (1 + (cols * bits + 7) // 8)
    return total


def chunks(file: BinaryIO) -> Iterator[tuple[bytes, bytes]]:
    """(type, data) of each chunk after the signature, up to ``IEND`` or the end of the file (the last
    chunk's data may then be short); chunk data is read in pieces of at most ``PIECE`` bytes."""
    while len(head := file.read(8)) == 8:
        length, kind = struct.unpack(">I4s", head)
        while length > 0:
            data = file.read(min(length, PIECE))
            if not data:
                return
            length -= len(data)
            yield kind, data
        if kind == b"IEND":
            return
        file.read(4)  # the CRC


def png_data_problem(source: Path | io.BytesIO, *, inflate: bool = True) -> str | None:
    """Why the PNG ``source`` cannot be decoded whole (a sentence), or None: its data is all there, or
    it is no PNG (then Pillow decides). ``inflate=False`` makes only the size check (header reads)."""
    file: BinaryIO = open(source, "rb") if isinstance(source, Path) else source
    start = file.tell()
    try:
        if file.read(8) != PNG_SIGNATURE:
            return None
        size = os.fstat(file.fileno()).st_size if isinstance(source, Path) else len(source.getbuffer())
        stream = chunks(file)
        kind, header = next(stream, (b"", b""))
        expected = row_bytes(header) if kind == b"IHDR" else None
        if expected is None:
            return None
        if size * DEFLATE_MAX_RATIO < expected:
            return f"its header announces {expected} bytes of pixel rows, more than a {size}-byte file can hold"
        return _inflated_problem(stream, expected) if inflate else None
    finally:
        if isinstance(source, Path):
            file.close()
        else:
            file.seek(start)


def _inflated_problem(stream: Iterator[tuple[bytes, bytes]], expected: int) -> str | None:
    """Inflate the ``IDAT`` data of ``stream`` and count it against the ``expected`` bytes of rows."""
    inflater, total = zlib.decompressobj(), 0
    try:
        for kind, data in stream:
            while kind == b"IDAT" and data and total < expected:
                total += len(inflater.decompress(data, PIECE))
                data = inflater.unconsumed_tail
            if total >= expected:
                return None
        total += len(inflater.flush())
    except zlib.error as error:
        return f"its pixel data is damaged ({error})"
    if total >= expected:
        return None
    return f"image file is truncated: its pixel data stops after {total} of {expected} bytes"
