"""The outfits: colours per garment and the details each draws over the body."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from .body import (
    shoulder,
    torso_pts,
)
from .geometry import Point, spline
from .palette import (
    SKIN,
    WHITE,
    Color,
)
from .pen import Pen
from .shot import View

Details = Callable[[Pen, View, "Outfit"], None]


def _nothing(pen: Pen, v: View, o: Outfit) -> None:
    return None


@dataclass(frozen=True)
class Outfit:
    top: Color
    shade: Color
    sleeve: Color | None          # None: bare arms
    sleeve_len: float = 1.0       # share of the arm the sleeve covers
    lower: str = "none"           # none | skirt | coat | shorts | dress (a dress draws itself in `details`)
    lower_color: Color = WHITE
    hem: float = 3.3
    flare: float = 0.0
    legs: Color = SKIN
    socks: Color | None = None    # socks, boots or greaves over the shin
    sock_from: float = 0.6
    shoes: Color = (120, 70, 50)
    soles: Color = (70, 40, 30)
    hands: Color = SKIN
    behind: Details = _nothing    # hood, cape: behind the body
    details: Details = _nothing   # over the torso and lower garment
    collar: Details = _nothing    # over the neck
    over: Details = _nothing      # over the arms (pauldrons)


def front_x(v: View, dx: float) -> float:
    """A point `dx` to the side of the garment's centre line, narrowed when the body is turned."""
    return v.front + dx * (v.right_w if dx > 0 else v.left_w)


def hoodie_behind(pen: Pen, v: View, o: Outfit) -> None:
    if v.profile:
        pen.ellipse(v.shift - 0.36, 1.5, 0.3, 0.2, o.shade, rot=-35)
    else:
        pen.ellipse(v.shift - 0.08 * v.phi, 1.34, 0.66, 0.3, o.shade)


def hoodie_details(pen: Pen, v: View, o: Outfit) -> None:
    with pen.clipped(torso_pts(v)):  # the ribbed hem
        pen.shape([(-3, 3.12), (3, 3.12), (3, 3.6), (-3, 3.6)], o.shade, 1.0)
    left, right = front_x(v, -0.4), front_x(v, 0.4)
    pen.shape([(left + 0.06, 2.42), (right - 0.06, 2.42), (right, 2.98, True), (left, 2.98, True)], o.shade, 1.0)
    for dx in (-0.13, 0.13) if not v.profile else (0.0,):
        x = front_x(v, dx) - (0.05 if v.profile else 0)
        pen.stroke([(x, 1.4), (x + dx * 0.1, 2.0)], WHITE, 1.3)
        pen.dot(x + dx * 0.1, 2.02, 0.04, o.shade)


def uniform_collar(pen: Pen, v: View, o: Outfit) -> None:
    navy, red = (44, 56, 110), (230, 60, 70)
    f = v.front
    if v.profile:
        pen.shape([(v.shift + 0.1, 1.3), (v.shift - 0.46, 1.36, True), (v.shift - 0.5, 2.0, True),
                   (v.shift - 0.08, 1.94)], navy,
                  inside=lambda: pen.stroke([(v.shift - 0.38, 1.4), (v.shift - 0.42, 1.9)], WHITE, 1.2))
        pen.shape([(f - 0.25, 1.32), (f + 0.1, 1.34), (f + 0.08, 1.8, True)], navy)
    else:
        outer = [(shoulder(v, -1)[0] + 0.1, 1.5), (front_x(v, -0.3), 1.3), (front_x(v, 0.3), 1.3),
                 (shoulder(v, 1)[0] - 0.1, 1.5), (f, 2.08, True)]
        stripe = [(front_x(v, -0.44), 1.52), (f, 1.96), (front_x(v, 0.44), 1.52)]
        pen.shape(outer, navy, inside=lambda: pen.stroke(stripe, WHITE, 1.1))
        pen.shape([(front_x(v, -0.2), 1.33), (front_x(v, 0.2), 1.33), (f, 1.78, True)], o.top)
    bx = f + (0.06 if v.profile else 0)
    for side in (-1, 1):
        pen.shape([(bx, 1.95), (bx + side * 0.26, 1.8, True), (bx + side * 0.24, 2.12, True)], red)
        pen.shape([(bx, 1.98), (bx + side * 0.14, 2.34, True), (bx + side * 0.03, 2.3, True)], red)
    pen.ellipse(bx, 1.97, 0.07, 0.07, red)


def skirt_pleats(pen: Pen, v: View, o: Outfit) -> None:
    for dx in (-0.5, -0.25, 0.0, 0.25, 0.5):
        pen.stroke([(front_x(v, dx * 0.8), 2.95), (front_x(v, dx * 1.2), o.hem)], o.shade, 0.9)


def uniform_details(pen: Pen, v: View, o: Outfit) -> None:
    with pen.clipped(lower_pts(v, o)):
        skirt_pleats(pen, v, o)


def raincoat_details(pen: Pen, v: View, o: Outfit) -> None:
    for y in (1.95, 2.4, 2.85, 3.3):
        pen.ellipse(front_x(v, -0.12), y, 0.05, 0.05, (90, 70, 40), 0.6)
        if not v.profile:
            pen.ellipse(front_x(v, 0.14), y, 0.05, 0.05, (90, 70, 40), 0.6)
    for side in (-1, 1) if not v.profile else (-1,):
        x = front_x(v, side * 0.42)
        pen.shape([(x - 0.16, 2.9), (x + 0.16, 2.9), (x + 0.15, 3.04), (x - 0.15, 3.04)], o.shade, 0.8)


def raincoat_collar(pen: Pen, v: View, o: Outfit) -> None:
    f = v.front
    for side in (-1, 1) if not v.profile else (1,):
        pen.shape([(f, 1.36), (front_x(v, side * 0.36), 1.26), (front_x(v, side * 0.44), 1.62, True),
                   (f + side * 0.04, 1.72, True)], o.shade)


def dress_details(pen: Pen, v: View, o: Outfit) -> None:
    dress = torso_pts(v, bottom=o.hem, flare=o.flare, top=1.75)

    def dots() -> None:
        rng = random.Random(7)
        for _ in range(70):
            pen.dot(v.shift + rng.uniform(-1.3, 1.3), rng.uniform(1.7, o.hem), 0.045, WHITE)
        pen.shape([(-3, 2.66), (3, 2.66), (3, 2.78), (-3, 2.78)], o.shade, 0.8)

    pen.shape(dress, o.lower_color, inside=dots)
    for side in (-1, 1) if not v.profile else (1,):
        x = front_x(v, side * 0.36) if not v.profile else v.shift + 0.05
        pen.stroke([(x, 1.8), (x + side * 0.05, 1.42)], WHITE, 1.6)


def armour_behind(pen: Pen, v: View, o: Outfit) -> None:
    cape = (196, 52, 66)
    if v.profile:
        pen.shape([(v.shift - 0.2, 1.35), (v.shift + 0.1, 1.4), (v.shift - 0.3, 4.2), (v.shift - 1.3, 4.4, True),
                   (v.shift - 0.75, 2.4)], cape)
    else:
        pen.shape([(v.shift - 0.62, 1.42), (v.shift + 0.62, 1.42), (v.shift + 1.2, 4.5, True),
                   (v.shift, 4.62), (v.shift - 1.2, 4.5, True)], cape)


def armour_details(pen: Pen, v: View, o: Outfit) -> None:
    gold, leather = (236, 190, 70), (120, 76, 52)
    plate = torso_pts(v, bottom=2.78, top=1.44)

    def shine() -> None:
        pen.shape([*plate[:2], (front_x(v, -0.05), 2.7), (front_x(v, -0.05), 1.5)], (236, 240, 248), 0)
        pen.stroke([(v.front, 1.5), (v.front, 2.7)], o.shade, 1.0)
        pen.stroke(spline([(front_x(v, -0.45), 2.0), (v.front, 2.15), (front_x(v, 0.45), 2.0)], False), o.shade,
                   1.0)

    pen.shape(plate, o.top, inside=shine)
    with pen.clipped(torso_pts(v)):
        pen.shape([(-3, 2.76), (3, 2.76), (3, 2.96), (-3, 2.96)], leather, 1.0)
    pen.shape([(v.front - 0.11, 2.74), (v.front + 0.11, 2.74), (v.front + 0.11, 2.98), (v.front - 0.11, 2.98)],
              gold, 0.9)
    with pen.clipped(lower_pts(v, o)):
        pen.stroke([(-3, o.hem - 0.1), (3, o.hem - 0.1)], gold, 3.0)


def armour_over(pen: Pen, v: View, o: Outfit) -> None:
    for side in (-1,) if v.phi else (-1, 1):  # turned, the far shoulder is behind the body
        x, y = shoulder(v, side)
        out = 0.0 if v.profile else side * 0.08
        pen.ellipse(x + out, y - 0.02, 0.34, 0.26, o.top, rot=side * 20,
                    inside=lambda x=x, y=y, out=out: pen.ellipse(x + out, y + 0.16, 0.4, 0.12, o.shade, 1.0))


def winter_details(pen: Pen, v: View, o: Outfit) -> None:
    with pen.clipped(torso_pts(v, bottom=o.hem, flare=o.flare)):
        for y in (1.95, 2.45, 2.95):
            pen.stroke(spline([(-3, y), (v.shift, y + 0.06), (3, y)], False), o.shade, 1.0)
        pen.stroke([(v.front, 1.4), (v.front, o.hem)], o.shade, 1.2)


def winter_collar(pen: Pen, v: View, o: Outfit) -> None:
    scarf, stripe = (244, 196, 72), (224, 150, 40)
    x = v.shift + (0.08 if v.profile else 0.04 * v.phi)
    pen.shape([(x - 0.5, 1.24), (x + 0.5, 1.24), (x + 0.56, 1.52), (x, 1.62), (x - 0.56, 1.52)], scarf,
              inside=lambda: pen.stroke([(x - 0.6, 1.42), (x + 0.6, 1.42)], stripe, 1.6))
    end = v.shift - 0.36 if v.profile else front_x(v, 0.28)
    pen.shape([(end - 0.13, 1.5), (end + 0.13, 1.48), (end + 0.18, 2.4, True), (end - 0.1, 2.42, True)], scarf,
              inside=lambda: pen.stroke([(end - 0.3, 2.2), (end + 0.3, 2.2)], stripe, 1.6))


def pyjama_details(pen: Pen, v: View, o: Outfit) -> None:
    def moons() -> None:
        rng = random.Random(3)
        for _ in range(14):
            x, y = v.shift + rng.uniform(-0.9, 0.9), rng.uniform(1.5, 3.2)
            pen.dot(x, y, 0.07, (255, 226, 120))
            pen.dot(x + 0.035, y - 0.02, 0.06, o.top)

    with pen.clipped(torso_pts(v)):
        moons()
    for y in (1.9, 2.35, 2.8):
        pen.ellipse(v.front, y, 0.045, 0.045, WHITE, 0.6)
    pen.stroke([(v.front - 0.06, 1.5), (v.front - 0.06, 3.3)], WHITE, 1.0)


def pyjama_collar(pen: Pen, v: View, o: Outfit) -> None:
    for side in (-1, 1) if not v.profile else (1,):
        pen.shape([(v.front, 1.42), (front_x(v, side * 0.34), 1.26), (front_x(v, side * 0.42), 1.56, True)], WHITE)


def overalls_details(pen: Pen, v: View, o: Outfit) -> None:
    denim, red = (86, 122, 192), (232, 84, 84)

    def stripes() -> None:
        for y in (1.55, 1.85, 2.15, 2.45, 2.75, 3.05):
            pen.shape([(-3, y), (3, y), (3, y + 0.1), (-3, y + 0.1)], red, 0)

    with pen.clipped(torso_pts(v)):
        stripes()
    left, right = front_x(v, -0.44), front_x(v, 0.44)
    bib = [(left, 2.1, True), (right, 2.1, True), (right + 0.04, 3.1), (left - 0.04, 3.1)]
    pen.shape(bib, denim, inside=lambda: pen.shape([(front_x(v, -0.15), 2.3), (front_x(v, 0.15), 2.3),
                                                   (front_x(v, 0.15), 2.6), (front_x(v, -0.15), 2.6)],
                                                  (74, 106, 174), 0.8))
    for side in (-1, 1) if not v.profile else (1,):
        x = left if side < 0 else right
        s = shoulder(v, side)
        pen.stroke([(x + side * -0.06, 2.14), (s[0] - side * 0.18, s[1] - 0.2)], denim, width=0.14)
        pen.ellipse(x - side * 0.08, 2.2, 0.055, 0.055, (250, 210, 80), 0.7)


def sweater_details(pen: Pen, v: View, o: Outfit) -> None:
    with pen.clipped(torso_pts(v)):
        for dx in (-0.45, -0.15, 0.15, 0.45):
            x = front_x(v, dx)
            pen.stroke(spline([(x, 1.3), (x + 0.05, 1.7), (x - 0.05, 2.1), (x + 0.05, 2.5), (x - 0.05, 2.9),
                               (x, 3.2)], False), o.shade, 1.0)
        pen.shape([(-3, 3.12), (3, 3.12), (3, 3.6), (-3, 3.6)], o.shade, 0.9)


def sweater_collar(pen: Pen, v: View, o: Outfit) -> None:
    x = v.shift + (0.02 if v.profile else 0.03 * v.phi)

    def ribs() -> None:
        for dx in (-0.15, 0.0, 0.15):
            pen.stroke([(x + dx, 0.95), (x + dx, 1.5)], o.shade, 0.9)

    pen.shape([(x - 0.3, 1.0), (x + 0.3, 1.0), (x + 0.36, 1.44), (x - 0.36, 1.44)], o.top, inside=ribs)


OUTFITS = {
    "hoodie": Outfit((186, 164, 236), (150, 128, 212), (186, 164, 236), legs=(72, 98, 150),
                     shoes=(246, 246, 246), soles=(232, 84, 84), behind=hoodie_behind, details=hoodie_details),
    "uniform": Outfit((250, 250, 252), (200, 204, 220), (250, 250, 252), lower="skirt", lower_color=(44, 56, 110),
                      hem=3.9, flare=0.28, socks=(250, 250, 250), sock_from=0.55, collar=uniform_collar,
                      details=uniform_details),
    "raincoat": Outfit((255, 204, 52), (232, 160, 30), (255, 204, 52), lower="coat", lower_color=(255, 204, 52),
                       hem=3.95, flare=0.32, legs=(60, 70, 110), socks=(226, 72, 72), sock_from=0.48,
                       shoes=(226, 72, 72), soles=(150, 40, 50), behind=hoodie_behind, details=raincoat_details,
                       collar=raincoat_collar),
    "dress": Outfit(SKIN, (118, 178, 228), None, lower="dress", lower_color=(150, 206, 244), hem=4.05, flare=0.5,
                    shoes=(214, 160, 100), soles=(160, 110, 70), details=dress_details),
    "armour": Outfit((204, 212, 226), (144, 156, 182), (64, 86, 170), lower="skirt", lower_color=(64, 86, 170),
                     hem=3.75, flare=0.22, legs=(80, 80, 96), socks=(204, 212, 226), sock_from=0.42,
                     shoes=(150, 160, 182), soles=(90, 96, 116), hands=(150, 160, 182), behind=armour_behind,
                     details=armour_details, over=armour_over),
    "winter": Outfit((214, 64, 74), (172, 40, 58), (214, 64, 74), lower="coat", lower_color=(214, 64, 74),
                     hem=3.55, flare=0.2, legs=(56, 52, 70), socks=(140, 92, 60), sock_from=0.5,
                     shoes=(140, 92, 60), soles=(90, 56, 40), hands=(250, 238, 214), details=winter_details,
                     collar=winter_collar),
    "pyjamas": Outfit((255, 196, 214), (236, 156, 188), (255, 196, 214), legs=(255, 196, 214), shoes=WHITE,
                      soles=(236, 156, 188), details=pyjama_details, collar=pyjama_collar),
    "overalls": Outfit(WHITE, (220, 220, 228), WHITE, sleeve_len=0.42, lower="shorts", lower_color=(86, 122, 192),
                       hem=3.65, socks=WHITE, sock_from=0.72, shoes=(232, 84, 84), soles=WHITE,
                       details=overalls_details),
    "sweater": Outfit((246, 232, 200), (222, 198, 156), (246, 232, 200), lower="skirt", lower_color=(150, 92, 74),
                      hem=3.8, flare=0.2, legs=(96, 64, 64), shoes=(70, 50, 50), soles=(40, 30, 30),
                      details=sweater_details, collar=sweater_collar),
}


def lower_pts(v: View, o: Outfit) -> list[Point]:
    """The skirt, coat tail or shorts below the waist."""
    if o.lower == "shorts":
        return [(v.shift - 0.72 * v.left_w, 2.9), (v.shift + 0.72 * v.right_w, 2.9),
                (v.shift + 0.82 * v.right_w, o.hem, True), (v.shift, o.hem - 0.12),
                (v.shift - 0.82 * v.left_w, o.hem, True)]
    return torso_pts(v, bottom=o.hem, flare=o.flare, top=2.72)
