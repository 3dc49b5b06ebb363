"""A shot as a finished picture: background, character, light, 2x supersampling; PNG/JPEG bytes."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageChops, ImageDraw

from .body import (
    POSES,
)
from .character import draw_character
from .pen import Pen
from .scenes import (
    LIGHTS,
    SCENES,
    Backdrop,
)
from .shot import Shot, View

SIZE = 1024
SUPERSAMPLE = 2

FRAMING = {"portrait": (3.7, 0.4), "half": (5.4, 0.31), "full": (8.6, 0.22)}  # head units shown, head centre y


def render(shot: Shot, width: int = SIZE, height: int = SIZE, background: bool = True) -> Image.Image:
    """The shot as an RGB picture (RGBA with a transparent background when `background` is False)."""
    W, H = width * SUPERSAMPLE, height * SUPERSAMPLE
    units, head_y = FRAMING[shot.framing]
    scale = H / units
    cx, cy = W * (0.5 + shot.x), H * (head_y + shot.y)
    img = Image.new("RGBA", (W, H), (255, 255, 255, 255 if background else 0))
    backdrop = Backdrop(img, random.Random(shot.name))
    back, front = SCENES[shot.scene]
    if background:
        back(backdrop)
        if shot.framing == "full":
            backdrop.glow(cx / W, (cy + 5.92 * scale) / H, 1.1 * scale / backdrop.m, (40, 40, 60), steps=1,
                          strength=45, squash=0.18)
    layer = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    pen = Pen(layer, cx, cy - POSES[shot.pose].lift * scale, scale, mirror=View.of(shot).mirror)
    draw_character(pen, shot)
    lit = ImageChops.multiply(layer.convert("RGB"), Image.new("RGB", layer.size, LIGHTS[shot.light]))
    lit.putalpha(layer.getchannel("A"))
    img.alpha_composite(lit)
    if background and front is not None:
        backdrop.d = ImageDraw.Draw(img)
        front(backdrop)
    # An exact 2x2 box average anti-aliases the edges without LANCZOS's ringing, which would add thousands of
    # near-duplicate colours and triple the PNG sizes.
    img = img.resize((width, height), Image.Resampling.BOX)
    return img.convert("RGB") if background else img


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def jpeg_bytes(img: Image.Image, quality: int, exif: Image.Exif | None = None) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, optimize=True, **({"exif": exif.tobytes()} if exif else {}))
    return buf.getvalue()
