"""Flat backgrounds drawn in picture fractions, weather in front of the character, and light tints."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from PIL import Image, ImageDraw

from .geometry import lerp
from .palette import (
    WHITE,
    Color,
)


class Backdrop:
    """Flat scenery drawn in picture fractions (x of the width, y of the height; radii of the shorter side)."""

    def __init__(self, img: Image.Image, rng: random.Random):
        self.img, self.rng = img, rng
        self.d = ImageDraw.Draw(img)
        self.W, self.H = img.size
        self.m = min(self.W, self.H)

    def p(self, x: float, y: float) -> tuple[float, float]:
        return (x * self.W, y * self.H)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: Color, radius: float = 0.0) -> None:
        box = (*self.p(x0, y0), *self.p(x1, y1))
        self.d.rounded_rectangle(box, radius=round(radius * self.m), fill=fill)

    def poly(self, pts: Sequence[tuple[float, float]], fill: Color) -> None:
        self.d.polygon([self.p(x, y) for x, y in pts], fill=fill)

    def circle(self, x: float, y: float, r: float, fill: Color, squash: float = 1.0) -> None:
        cx, cy = self.p(x, y)
        rr = r * self.m
        self.d.ellipse((cx - rr, cy - rr * squash, cx + rr, cy + rr * squash), fill=fill)

    def line(self, pts: Sequence[tuple[float, float]], fill: Color, width: float) -> None:
        self.d.line([self.p(x, y) for x, y in pts], fill=fill, width=max(1, round(width * self.m)), joint="curve")

    def bands(self, y0: float, y1: float, top: Color, bottom: Color, n: int = 6) -> None:
        """A stepped gradient: flat bands read as an illustration and compress well."""
        for i in range(n):
            t = i / max(1, n - 1)
            c = tuple(round(lerp(a, b, t)) for a, b in zip(top, bottom, strict=True))
            self.rect(0, lerp(y0, y1, i / n), 1, lerp(y0, y1, (i + 1) / n) + 0.002, c)

    def cloud(self, x: float, y: float, r: float, fill: Color = WHITE) -> None:
        for dx, dy, k in ((-1.0, 0.25, 0.6), (-0.35, -0.1, 0.85), (0.4, 0.0, 0.75), (1.0, 0.3, 0.55)):
            self.circle(x + dx * r * self.m / self.W, y + dy * r * self.m / self.H, r * k, fill)
        self.rect(x - r * self.m / self.W, y + 0.1 * r * self.m / self.H, x + r * self.m / self.W,
                  y + 0.55 * r * self.m / self.H, fill, radius=r * 0.2)

    def tree(self, x: float, ground: float, h: float, leaf: Color, trunk: Color = (130, 92, 70)) -> None:
        self.rect(x - 0.012, ground - h * 0.5, x + 0.012, ground, trunk)
        for dx, dy, k in ((0, -0.75, 0.55), (-0.35, -0.55, 0.45), (0.35, -0.55, 0.45)):
            self.circle(x + dx * h * self.H / self.W, ground + dy * h, h * k * self.H / self.m * 0.5, leaf)

    def pine(self, x: float, ground: float, h: float, leaf: Color, snow: Color | None = None) -> None:
        w = h * 0.36 * self.H / self.W
        self.rect(x - w * 0.08, ground - h * 0.15, x + w * 0.08, ground, (110, 80, 70))
        for i in range(3):
            top, base = ground - h * (1 - 0.25 * i), ground - h * (0.45 - 0.15 * i)
            self.poly([(x, top), (x + w * (0.6 + 0.2 * i), base), (x - w * (0.6 + 0.2 * i), base)], leaf)
            if snow:
                cap = top + (base - top) * 0.35
                self.poly([(x, top), (x + w * 0.2, cap), (x - w * 0.2, cap)], snow)

    def windows(self, x0: float, y0: float, x1: float, y1: float, cols: int, rows: int, lit: Color, dark: Color,
                share: float) -> None:
        cw, rh = (x1 - x0) / cols, (y1 - y0) / rows
        for c in range(cols):
            for r in range(rows):
                fill = lit if self.rng.random() < share else dark
                self.rect(x0 + c * cw + cw * 0.22, y0 + r * rh + rh * 0.2, x0 + (c + 1) * cw - cw * 0.22,
                          y0 + (r + 1) * rh - rh * 0.2, fill)

    def glow(self, x: float, y: float, r: float, color: Color, steps: int = 4, strength: int = 40,
             squash: float = 1.0) -> None:
        """Concentric translucent discs: a lamp's or the sun's halo."""
        overlay = Image.new("RGBA", self.img.size, (0, 0, 0, 0))
        d = ImageDraw.Draw(overlay)
        cx, cy = self.p(x, y)
        for i in range(steps):
            rr = r * self.m * (1 - i / steps)
            d.ellipse((cx - rr, cy - rr * squash, cx + rr, cy + rr * squash), fill=(*color, strength))
        self.img.alpha_composite(overlay)
        self.d = ImageDraw.Draw(self.img)


def studio(b: Backdrop, tone: Color, floor: Color) -> None:
    b.rect(0, 0, 1, 1, tone)
    b.circle(0.5, 0.42, 0.42, tuple(min(255, c + 6) for c in tone))
    b.rect(0, 0.8, 1, 1, floor)


def scene_studio_white(b: Backdrop) -> None:
    studio(b, (244, 244, 242), (232, 232, 230))


def scene_studio_pink(b: Backdrop) -> None:
    studio(b, (252, 224, 230), (240, 206, 216))


def scene_park(b: Backdrop) -> None:
    b.bands(0, 0.62, (138, 200, 246), (208, 236, 252), 5)
    b.cloud(0.2, 0.14, 0.07)
    b.cloud(0.78, 0.24, 0.05)
    b.circle(0.3, 0.66, 0.45, (160, 214, 150), squash=0.22)
    b.circle(0.85, 0.68, 0.4, (146, 204, 136), squash=0.25)
    b.rect(0, 0.64, 1, 1, (128, 198, 108))
    b.poly([(0.42, 0.64), (0.58, 0.64), (0.9, 1.0), (0.1, 1.0)], (238, 218, 176))
    for x, h in ((0.08, 0.34), (0.9, 0.3), (0.7, 0.2), (0.24, 0.18)):
        b.tree(x, 0.66, h, (82, 164, 96))
    for _ in range(30):
        b.circle(b.rng.uniform(0, 1), b.rng.uniform(0.72, 1), 0.006, b.rng.choice([(255, 240, 120), WHITE,
                                                                                   (255, 170, 190)]))


def scene_classroom(b: Backdrop) -> None:
    b.rect(0, 0, 1, 1, (246, 236, 214))
    b.rect(0.04, 0.12, 0.66, 0.56, (170, 120, 80))
    b.rect(0.055, 0.135, 0.645, 0.545, (52, 98, 80))
    chalk = (236, 240, 232)
    b.line([(0.1, 0.22), (0.3, 0.22)], chalk, 0.004)
    b.line([(0.1, 0.28), (0.24, 0.28)], chalk, 0.004)
    b.line([(0.1, 0.34), (0.33, 0.34)], chalk, 0.004)
    b.line([(0.44, 0.4), (0.5, 0.26), (0.56, 0.4), (0.42, 0.31), (0.58, 0.31), (0.44, 0.4)], chalk, 0.004)
    b.rect(0.74, 0.1, 0.98, 0.6, (200, 170, 130))
    b.rect(0.76, 0.12, 0.96, 0.58, (180, 224, 248))
    b.cloud(0.86, 0.26, 0.04)
    b.rect(0.855, 0.12, 0.865, 0.58, (200, 170, 130))
    b.rect(0, 0.74, 1, 1, (206, 168, 128))
    b.rect(0, 0.73, 1, 0.75, (180, 140, 104))


def scene_beach(b: Backdrop) -> None:
    b.bands(0, 0.55, (110, 196, 246), (196, 232, 252), 5)
    b.glow(0.8, 0.16, 0.16, (255, 250, 210), strength=50)
    b.circle(0.8, 0.16, 0.06, (255, 246, 186))
    b.cloud(0.18, 0.2, 0.05)
    b.bands(0.55, 0.72, (52, 156, 204), (96, 196, 220), 4)
    for y in (0.6, 0.66):
        for x in (0.1, 0.45, 0.8):
            b.line([(x, y), (x + 0.08, y)], (210, 240, 248), 0.004)
    b.poly([(0, 0.72), (1, 0.7), (1, 1), (0, 1)], (246, 226, 172))
    b.poly([(0, 0.72), (1, 0.7), (1, 0.735), (0, 0.75)], (250, 246, 236))
    for _ in range(8):
        b.circle(b.rng.uniform(0, 1), b.rng.uniform(0.8, 1), 0.008, (236, 184, 170))


def scene_bedroom(b: Backdrop) -> None:
    b.rect(0, 0, 1, 1, (240, 206, 172))
    for x in range(12):
        b.rect(x / 12, 0, x / 12 + 0.03, 0.78, (234, 196, 162))
    b.rect(0.62, 0.1, 0.94, 0.5, (236, 236, 240))
    b.rect(0.64, 0.12, 0.92, 0.48, (40, 46, 96))
    b.circle(0.84, 0.2, 0.04, (255, 244, 200))
    b.circle(0.825, 0.19, 0.035, (40, 46, 96))
    for _ in range(10):
        b.circle(b.rng.uniform(0.65, 0.91), b.rng.uniform(0.14, 0.46), 0.004, (255, 250, 220))
    b.rect(0.775, 0.12, 0.785, 0.48, (236, 236, 240))
    b.glow(0.14, 0.42, 0.3, (255, 220, 150), strength=30)
    b.rect(0.06, 0.6, 0.22, 0.8, (170, 116, 84))
    b.rect(0.12, 0.48, 0.16, 0.6, (120, 84, 64))
    b.poly([(0.06, 0.5), (0.22, 0.5), (0.19, 0.38), (0.09, 0.38)], (255, 226, 150))
    b.rect(0, 0.78, 1, 1, (196, 140, 108))
    b.rect(0.5, 0.7, 1.05, 1, (250, 240, 236), radius=0.04)
    b.rect(0.5, 0.78, 1.05, 1, (160, 196, 236), radius=0.02)


def scene_rainy_street(b: Backdrop) -> None:
    b.bands(0, 0.6, (146, 156, 174), (186, 192, 204), 4)
    for x0, x1, top, c in ((0.0, 0.22, 0.16, (118, 128, 150)), (0.2, 0.42, 0.28, (132, 142, 162)),
                           (0.62, 0.8, 0.22, (124, 134, 156)), (0.78, 1.0, 0.1, (112, 122, 144))):
        b.rect(x0, top, x1, 0.66, c)
        b.windows(x0 + 0.02, top + 0.04, x1 - 0.02, 0.6, 3, 6, (255, 226, 150), (96, 106, 128), 0.3)
    b.rect(0, 0.66, 1, 0.72, (160, 162, 170))
    b.rect(0, 0.72, 1, 1, (96, 100, 112))
    for x, w in ((0.12, 0.16), (0.7, 0.2), (0.4, 0.1)):
        b.circle(x, 0.86 + b.rng.uniform(0, 0.08), w / 2, (128, 136, 156), squash=0.2)


def rain(b: Backdrop) -> None:
    for _ in range(160):
        x, y = b.rng.uniform(-0.1, 1.1), b.rng.uniform(-0.1, 1.0)
        b.line([(x, y), (x - 0.015, y + 0.06)], (226, 234, 246), 0.0025)


def scene_snow_forest(b: Backdrop) -> None:
    b.bands(0, 0.62, (188, 210, 236), (226, 236, 248), 5)
    b.poly([(0, 0.6), (0.2, 0.36), (0.42, 0.6)], (206, 218, 236))
    b.poly([(0.45, 0.6), (0.72, 0.3), (1.0, 0.6)], (198, 212, 232))
    b.poly([(0.62, 0.38), (0.72, 0.3), (0.8, 0.38)], WHITE)
    b.rect(0, 0.6, 1, 1, (246, 249, 255))
    for x, h in ((0.06, 0.36), (0.18, 0.26), (0.84, 0.4), (0.95, 0.3), (0.7, 0.22)):
        b.pine(x, 0.64, h, (48, 112, 96), WHITE)
    b.circle(0.5, 0.9, 0.5, (226, 234, 248), squash=0.12)


def snow(b: Backdrop) -> None:
    for _ in range(110):
        x, y, r = b.rng.uniform(0, 1), b.rng.uniform(0, 1), b.rng.uniform(0.003, 0.008)
        b.circle(x, y, r * 1.3, (196, 212, 236))
        b.circle(x, y, r, WHITE)


def scene_night_city(b: Backdrop) -> None:
    b.bands(0, 0.7, (22, 26, 64), (74, 52, 116), 6)
    for _ in range(40):
        b.circle(b.rng.uniform(0, 1), b.rng.uniform(0, 0.4), 0.003, (250, 246, 220))
    b.circle(0.82, 0.12, 0.05, (250, 240, 200))
    b.circle(0.8, 0.11, 0.045, (34, 36, 76))
    for x0, x1, top, c in ((0.0, 0.18, 0.3, (44, 40, 86)), (0.16, 0.34, 0.42, (56, 50, 102)),
                           (0.66, 0.84, 0.36, (52, 46, 98)), (0.82, 1.0, 0.24, (40, 36, 80))):
        b.rect(x0, top, x1, 0.8, c)
        b.windows(x0 + 0.02, top + 0.04, x1 - 0.02, 0.76, 3, 8, (255, 214, 120), (70, 64, 120), 0.35)
    b.glow(0.25, 0.36, 0.08, (255, 120, 200), strength=45)
    b.rect(0.19, 0.33, 0.31, 0.39, (255, 130, 206), radius=0.01)
    b.glow(0.76, 0.3, 0.07, (110, 240, 255), strength=45)
    b.rect(0.71, 0.27, 0.81, 0.33, (120, 236, 250), radius=0.01)
    b.rect(0, 0.8, 1, 1, (48, 44, 78))
    b.rect(0, 0.8, 1, 0.82, (80, 72, 120))


def scene_cafe(b: Backdrop) -> None:
    b.rect(0, 0, 1, 1, (242, 224, 196))
    b.rect(0, 0.6, 1, 1, (170, 114, 82))
    for x in range(10):
        b.rect(x / 10, 0.6, x / 10 + 0.005, 1, (150, 98, 70))
    b.rect(0.05, 0.1, 0.4, 0.5, (214, 190, 160))
    b.rect(0.07, 0.12, 0.38, 0.48, (196, 226, 240))
    b.circle(0.16, 0.4, 0.08, (150, 200, 150))
    b.rect(0.6, 0.3, 0.98, 0.33, (150, 98, 70))
    for i, c in enumerate(((240, 240, 240), (230, 120, 110), (250, 210, 110), (140, 190, 220))):
        b.rect(0.63 + i * 0.09, 0.24, 0.69 + i * 0.09, 0.3, c, radius=0.008)
    for x in (0.3, 0.75):
        b.line([(x, 0), (x, 0.1)], (80, 60, 50), 0.004)
        b.glow(x, 0.14, 0.14, (255, 220, 150), strength=35)
        b.poly([(x - 0.05, 0.16), (x + 0.05, 0.16), (x + 0.025, 0.1), (x - 0.025, 0.1)], (250, 200, 110))
    b.rect(0.8, 0.5, 0.94, 0.62, (190, 110, 80), radius=0.01)
    for dx in (-0.04, 0.0, 0.04):
        b.circle(0.87 + dx, 0.46, 0.04, (96, 160, 100))


def scene_castle(b: Backdrop) -> None:
    b.bands(0, 0.6, (128, 190, 246), (206, 232, 252), 5)
    b.cloud(0.8, 0.15, 0.06)
    stone, roof = (196, 196, 212), (90, 110, 190)
    b.circle(0.2, 0.62, 0.35, (120, 186, 104), squash=0.3)
    b.rect(0.06, 0.36, 0.34, 0.56, stone)
    for x in (0.06, 0.3):
        b.rect(x, 0.26, x + 0.05, 0.56, stone)
        b.poly([(x - 0.01, 0.26), (x + 0.06, 0.26), (x + 0.025, 0.17)], roof)
    b.rect(0.17, 0.22, 0.23, 0.56, stone)
    b.poly([(0.16, 0.22), (0.24, 0.22), (0.2, 0.11)], (200, 70, 80))
    b.line([(0.2, 0.11), (0.2, 0.07)], (90, 80, 80), 0.003)
    b.poly([(0.2, 0.07), (0.24, 0.085), (0.2, 0.1)], (250, 210, 80))
    b.rect(0.18, 0.46, 0.22, 0.56, (110, 90, 80), radius=0.02)
    b.rect(0, 0.6, 1, 1, (132, 200, 110))
    for _ in range(40):
        x, y = b.rng.uniform(0, 1), b.rng.uniform(0.64, 1)
        b.circle(x, y, 0.007, b.rng.choice([(255, 240, 120), WHITE, (250, 150, 170), (190, 160, 250)]))


def scene_sunset_cliff(b: Backdrop) -> None:
    b.bands(0, 0.6, (120, 92, 160), (255, 176, 120), 7)
    b.glow(0.66, 0.58, 0.22, (255, 210, 150), strength=40)
    b.circle(0.66, 0.6, 0.09, (255, 226, 150))
    b.bands(0.6, 0.8, (124, 90, 140), (80, 64, 120), 4)
    for y in (0.64, 0.7, 0.76):
        b.line([(0.6, y), (0.72, y)], (255, 200, 150), 0.004)
    b.poly([(0, 0.72), (0.55, 0.76), (0.62, 1), (0, 1)], (92, 112, 96))
    b.poly([(0.4, 1), (0.55, 0.76), (1, 0.82), (1, 1)], (76, 96, 84))


def scene_beach_sunset(b: Backdrop) -> None:
    b.bands(0, 0.56, (250, 150, 140), (255, 206, 150), 6)
    b.glow(0.28, 0.52, 0.2, (255, 220, 160), strength=45)
    b.circle(0.28, 0.54, 0.08, (255, 236, 170))
    b.bands(0.56, 0.74, (210, 130, 150), (150, 110, 160), 4)
    b.line([(0.2, 0.62), (0.36, 0.62)], (255, 214, 170), 0.004)
    b.poly([(0, 0.74), (1, 0.72), (1, 1), (0, 1)], (238, 196, 160))


def scene_library(b: Backdrop) -> None:
    b.rect(0, 0, 1, 1, (126, 86, 64))
    for y0 in (0.04, 0.26, 0.48):
        b.rect(0, y0 + 0.19, 1, y0 + 0.215, (96, 64, 46))
        x = 0.0
        while x < 1:
            w = b.rng.uniform(0.02, 0.045)
            h = b.rng.uniform(0.12, 0.18)
            c = b.rng.choice([(196, 80, 80), (80, 120, 170), (220, 180, 90), (100, 150, 110), (160, 110, 160),
                              (230, 220, 200)])
            b.rect(x, y0 + 0.19 - h, x + w - 0.004, y0 + 0.19, c)
            x += w
    b.glow(0.5, 0.3, 0.5, (255, 214, 150), strength=22)
    b.rect(0, 0.7, 1, 1, (150, 104, 76))


def scene_rainy_window(b: Backdrop) -> None:
    b.rect(0, 0, 1, 1, (210, 214, 224))
    b.rect(0.08, 0.06, 0.92, 0.7, (236, 238, 244))
    b.bands(0.08, 0.68, (150, 164, 186), (186, 196, 214), 4)
    b.rect(0.1, 0.08, 0.9, 0.1, (236, 238, 244))
    b.rect(0.49, 0.08, 0.51, 0.68, (236, 238, 244))
    for _ in range(50):
        x, y = b.rng.uniform(0.11, 0.89), b.rng.uniform(0.12, 0.66)
        b.circle(x, y, 0.005, (214, 224, 238))
        b.line([(x, y), (x, y + b.rng.uniform(0.01, 0.04))], (214, 224, 238), 0.003)
    b.rect(0.04, 0.7, 0.96, 0.74, (236, 238, 244))
    b.rect(0, 0.74, 1, 1, (190, 196, 210))


SCENES: dict[str, tuple[Callable[[Backdrop], None], Callable[[Backdrop], None] | None]] = {
    "studio_white": (scene_studio_white, None),
    "studio_pink": (scene_studio_pink, None),
    "park": (scene_park, None),
    "classroom": (scene_classroom, None),
    "beach": (scene_beach, None),
    "bedroom": (scene_bedroom, None),
    "rainy_street": (scene_rainy_street, rain),
    "snow_forest": (scene_snow_forest, snow),
    "night_city": (scene_night_city, None),
    "cafe": (scene_cafe, None),
    "castle": (scene_castle, None),
    "sunset_cliff": (scene_sunset_cliff, None),
    "beach_sunset": (scene_beach_sunset, None),
    "library": (scene_library, None),
    "rainy_window": (scene_rainy_window, None),
}

# Light on the character: a multiply tint matching the scene.
LIGHTS: dict[str, Color] = {
    "studio": (255, 255, 255),
    "sunny": (255, 252, 244),
    "overcast": (228, 232, 240),
    "night": (210, 204, 242),
    "warm": (255, 230, 200),
    "golden": (255, 218, 184),
    "cold": (234, 242, 255),
    "sunset": (255, 206, 196),
}
