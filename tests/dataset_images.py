"""Generated pictures for the dataset tests: portraits whose drawn face OpenCV's Haar cascade really detects, and
every kind of bad file a user drops in."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def portrait(seed: int, size: int = 512, face: tuple[float, float, float] = (0.5, 0.45, 0.2),
             width: int | None = None) -> Image.Image:
    """A painted 'photo': textured background, shoulders and a face (centre x, centre y, half-size, as fractions
    of the height) drawn with the dark eyes/brows over bright cheeks that a frontal-face Haar cascade keys on."""
    rng = np.random.default_rng(seed)
    w, h = width or size, size
    bg = rng.integers(40, 200, 3)
    grad = np.linspace(0.7, 1.2, h)[:, None, None] * bg[None, None, :]
    noise = rng.normal(0, 10, (h, w, 3))
    img = Image.fromarray(np.clip(grad + noise, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    cx, cy, s = face[0] * w, face[1] * h, face[2] * h
    shirt = tuple(int(v) for v in rng.integers(0, 255, 3))
    d.ellipse((cx - 2.2 * s, cy + 1.0 * s, cx + 2.2 * s, cy + 4.5 * s), fill=shirt)
    d.ellipse((cx - s * 1.05, cy - s * 1.35, cx + s * 1.05, cy + s * 0.6), fill=(50, 35, 25))
    d.ellipse((cx - s * 0.85, cy - s * 1.1, cx + s * 0.85, cy + s * 1.15), fill=(225, 185, 155))
    ey, ex, er = cy - s * 0.2, s * 0.38, s * 0.14
    for side in (-1, 1):
        x = cx + side * ex
        d.ellipse((x - er * 1.4, ey - er * 0.8, x + er * 1.4, ey + er * 0.8), fill=(250, 250, 250))
        d.ellipse((x - er * 0.7, ey - er * 0.7, x + er * 0.7, ey + er * 0.7), fill=(40, 30, 25))
        d.rectangle((x - er * 1.6, ey - er * 2.3, x + er * 1.6, ey - er * 1.6), fill=(60, 40, 30))
    d.polygon([(cx, ey + er), (cx - s * 0.12, cy + s * 0.3), (cx + s * 0.12, cy + s * 0.3)], fill=(195, 150, 125))
    d.ellipse((cx - s * 0.3, cy + s * 0.5, cx + s * 0.3, cy + s * 0.68), fill=(150, 60, 60))
    return img.filter(ImageFilter.GaussianBlur(max(0.6, s / 90)))


def landscape(seed: int, size: int = 512) -> Image.Image:
    """No face at all: shapes on a textured background."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)).resize(
        (size, size), Image.Resampling.BICUBIC)
    d = ImageDraw.Draw(img)
    for _ in range(12):
        x, y, r = (int(v) for v in rng.integers(0, size, 3))
        d.rectangle((x, y, x + r // 3, y + r // 4), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return img


def png_bomb(path: Path, side: int = 100_000) -> None:
    """A tiny PNG whose header claims side×side pixels (a decompression bomb), written by hand."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def truncated_copy(image: Image.Image, path: Path, fmt: str = "JPEG") -> None:
    image.save(path, fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
