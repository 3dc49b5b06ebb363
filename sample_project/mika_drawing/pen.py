"""Draws point lists onto an RGBA layer in pixels: outlines, tubes, clipping, mirroring and a local tilt."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from PIL import Image, ImageChops, ImageDraw

from .geometry import Point, ellipse_pts, spline
from .palette import (
    INK,
    Color,
)


class Pen:
    """Draws shapes given in head units onto an RGBA layer, with outlines, clipping, mirroring and local tilt."""

    def __init__(self, layer: Image.Image, cx: float, cy: float, scale: float, mirror: bool = False):
        self.layer = layer
        self.draw = ImageDraw.Draw(layer)
        self.cx, self.cy, self.s = cx, cy, scale
        self.dir = -1 if mirror else 1
        self._rot: tuple[float, float, float] = (0.0, 0.0, 0.0)  # angle (rad), pivot x, pivot y

    def px(self, x: float, y: float) -> tuple[float, float]:
        a, ox, oy = self._rot
        if a:
            c, s = math.cos(a), math.sin(a)
            x, y = ox + (x - ox) * c - (y - oy) * s, oy + (x - ox) * s + (y - oy) * c
        return (self.cx + self.dir * x * self.s, self.cy + y * self.s)

    def width(self, k: float = 1.0) -> int:
        return max(2, round(self.s * 0.03 * k))

    @contextmanager
    def tilted(self, degrees: float, pivot: tuple[float, float]) -> Iterator[None]:
        saved = self._rot
        self._rot = (math.radians(degrees), *pivot)
        try:
            yield
        finally:
            self._rot = saved

    @contextmanager
    def clipped(self, outline: Sequence[Point]) -> Iterator[None]:
        """Drawing inside the block shows only within `outline`."""
        saved_layer, saved_draw = self.layer, self.draw
        self.layer = Image.new("RGBA", saved_layer.size, (0, 0, 0, 0))
        self.draw = ImageDraw.Draw(self.layer)
        try:
            yield
        finally:
            inner, self.layer, self.draw = self.layer, saved_layer, saved_draw
            mask = Image.new("L", inner.size, 0)
            ImageDraw.Draw(mask).polygon(self._curve(outline, True), fill=255)
            inner.putalpha(ImageChops.multiply(inner.getchannel("A"), mask))
            self.layer.alpha_composite(inner)

    def _curve(self, pts: Sequence[Point], closed: bool) -> list[tuple[float, float]]:
        return [self.px(x, y) for x, y in spline(pts, closed)]

    def shape(self, pts: Sequence[Point], fill: Color | None, line: float = 1.0,
              inside: Callable[[], None] | None = None, ink: Color = INK) -> None:
        """A filled closed shape; `inside` draws details clipped to it before its outline goes on top."""
        curve = self._curve(pts, True)
        if fill is not None:
            self.draw.polygon(curve, fill=fill)
        if inside is not None:
            with self.clipped(pts):
                inside()
        if line:
            self.draw.line([*curve, curve[0], curve[1]], fill=ink, width=self.width(line), joint="curve")

    def ellipse(self, x: float, y: float, rx: float, ry: float, fill: Color | None, line: float = 1.0,
                rot: float = 0.0, inside: Callable[[], None] | None = None) -> None:
        self.shape(ellipse_pts(x, y, rx, ry, rot), fill, line, inside)

    def stroke(self, pts: Sequence[Point], fill: Color, line: float = 1.0, width: float | None = None) -> None:
        """An open curve; with `width` (head units) it is a tube (arm, leg, strap) outlined in ink."""
        curve = self._curve(pts, False)
        if width is None:
            self.draw.line(curve, fill=fill, width=self.width(line), joint="curve")
            self._caps(curve, self.width(line) / 2, fill)
            return
        w = width * self.s
        if line:
            edge = w + 2 * self.width(line)
            self.draw.line(curve, fill=INK, width=round(edge), joint="curve")
            self._caps(curve, edge / 2, INK)
        self.draw.line(curve, fill=fill, width=round(w), joint="curve")
        self._caps(curve, w / 2, fill)

    def _caps(self, curve: list[tuple[float, float]], r: float, fill: Color) -> None:
        """Round ends, and a disc at every joint: Pillow's wide-line joints leave hairline seams otherwise."""
        for x, y in curve:
            self.draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)

    def dot(self, x: float, y: float, r: float, fill: Color) -> None:
        px, py = self.px(x, y)
        rr = r * self.s
        self.draw.ellipse((px - rr, py - rr, px + rr, py + rr), fill=fill)
