"""Torso, arms and legs; poses as limb angles."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .geometry import Point, lerp
from .palette import (
    SKIN,
    Color,
)
from .pen import Pen
from .shot import View

if TYPE_CHECKING:
    from .outfits import Outfit


TORSO = [(1.28, 0.3), (1.42, 0.6), (1.58, 0.78), (1.95, 0.74), (2.4, 0.62), (2.72, 0.57), (3.05, 0.68),
         (3.3, 0.72)]
# Seen from the side the shoulders rise to the neck (the front view's slope would leave a long bare neck).
TORSO_PROFILE = [(1.2, 0.5), (1.4, 0.72), (1.58, 0.78), *TORSO[3:]]
UPPER_ARM, FOREARM, ARM_W = 1.0, 0.92, 0.3
THIGH, SHIN, LEG_W = 1.3, 1.25, 0.34


Arm = tuple[float, float, str]   # upper arm and forearm angles, hand: open | fist | peace
Leg = tuple[float, float]        # thigh and shin angles


@dataclass(frozen=True)
class Pose:
    """Limb angles in degrees: 0 hangs straight down; positive swings outwards (profile: forwards)."""

    arms: tuple[Arm, Arm]                # picture-left (the near arm when turned), picture-right
    legs: tuple[Leg, Leg] = ((3, 0), (3, 0))
    prop: str = ""           # umbrella | book
    sway: float = 0.0        # twin-tail swing in degrees
    lift: float = 0.0        # the whole body raised (a jump), head units

    def arm(self, side: int) -> Arm:
        return self.arms[0 if side < 0 else 1]

    def leg(self, side: int) -> Leg:
        return self.legs[0 if side < 0 else 1]


POSES = {
    "relaxed": Pose(((14, 8, "open"), (14, 8, "open"))),
    "wave": Pose(((105, 160, "open"), (14, 8, "open"))),     # the near (picture-left) arm waves
    "hips": Pose(((42, -45, "fist"), (42, -45, "fist")), legs=((9, 3), (9, 3))),
    "peace": Pose(((104, 168, "peace"), (14, 8, "open"))),
    "cheer": Pose(((140, 160, "fist"), (140, 160, "fist")), legs=((16, 24), (8, 115)), sway=8, lift=0.5),
    "stretch": Pose(((140, 152, "fist"), (140, 152, "fist"))),
    "umbrella": Pose(((30, -150, "fist"), (16, 10, "open")), legs=((9, 2), (-3, -6)), prop="umbrella"),
    "book": Pose(((14, -100, "open"), (12, -104, "open")), prop="book"),
    "hand_chest": Pose(((14, 8, "open"), (18, -120, "open"))),
    "walk_profile": Pose(((-28, -10, "open"), (30, 52, "open")), legs=((26, 6), (-22, -38)), sway=-8),
    "stand_profile": Pose(((4, 18, "open"), (-6, 6, "open")), legs=((4, 0), (-3, 0))),
}


def at(p: tuple[float, float], length: float, degrees: float, side: int) -> tuple[float, float]:
    a = math.radians(degrees)
    return (p[0] + side * length * math.sin(a), p[1] + length * math.cos(a))


def split(pts: Sequence[tuple[float, float]], share: float) -> tuple[list[tuple[float, float]],
                                                                   list[tuple[float, float]]]:
    """A polyline cut after `share` of its length: (the part before, the part after)."""
    lengths = [math.dist(a, b) for a, b in itertools.pairwise(pts)]
    left = share * sum(lengths)
    for i, ((a, b), seg) in enumerate(zip(itertools.pairwise(pts), lengths, strict=True)):
        if left <= seg:
            t = left / seg if seg else 0.0
            cut = (lerp(a[0], b[0], t), lerp(a[1], b[1], t))
            return [*pts[:i + 1], cut], [cut, *pts[i + 1:]]
        left -= seg
    return list(pts), [pts[-1]]


def torso_width(table: Sequence[tuple[float, float]], y: float) -> float:
    for (y0, w0), (y1, w1) in itertools.pairwise(table):
        if y <= y1:
            return lerp(w0, w1, max(0.0, (y - y0) / (y1 - y0)))
    return table[-1][1]


def torso_pts(v: View, bottom: float = 3.3, flare: float = 0.0, top: float | None = None) -> list[Point]:
    """The torso from `top` (the neck) to `bottom`, flaring by `flare` below the waist, at the view's widths."""
    table = TORSO_PROFILE if v.profile else TORSO
    top = table[0][0] if top is None else top
    ys = [top, *(y for y, _ in table if top < y < bottom), bottom]
    rows = [(y, torso_width(table, y) + (flare * (y - 2.72) / max(0.01, bottom - 2.72) if y > 2.72 else 0))
            for y in ys]
    chest = 0.1 if v.profile else 0.0
    right: list[Point] = [(v.shift + w * v.right_w + (chest if 1.8 < y < 2.3 else 0), y) for y, w in rows]
    left: list[Point] = [(v.shift - w * v.left_w, y) for y, w in reversed(rows)]
    right[-1] = (*right[-1], True)
    left[0] = (*left[0], True)
    return [*right, *left]


def shoulder(v: View, side: int) -> tuple[float, float]:
    if v.profile:
        return (v.shift + 0.04 * side, 1.66)
    return (v.shift + side * 0.62 * (v.right_w if side > 0 else v.left_w), 1.66)


def hip(v: View, side: int) -> tuple[float, float]:
    if v.profile:
        return (v.shift + 0.04 * side, 3.1)
    return (v.shift + side * 0.3 * (v.right_w if side > 0 else v.left_w), 3.1)


def limb_side(v: View, side: int) -> int:
    return 1 if v.profile else side


def arm_joints(v: View, side: int, arm: Arm) -> list[tuple[float, float]]:
    """Shoulder, elbow and wrist."""
    s = shoulder(v, side)
    elbow = at(s, UPPER_ARM, arm[0], limb_side(v, side))
    return [s, elbow, at(elbow, FOREARM, arm[1], limb_side(v, side))]


def draw_arm(pen: Pen, v: View, o: Outfit, side: int, arm: Arm) -> None:
    pts = arm_joints(v, side, arm)
    if o.sleeve is None or o.sleeve_len < 1:
        pen.stroke(pts, SKIN, width=ARM_W)
    if o.sleeve is not None:
        pen.stroke(split(pts, o.sleeve_len)[0], o.sleeve, width=ARM_W + 0.06)
    draw_hand(pen, pts[2], pts[1], arm[2], o.hands)


def draw_hand(pen: Pen, wrist: tuple[float, float], elbow: tuple[float, float], kind: str, color: Color) -> None:
    dx, dy = wrist[0] - elbow[0], wrist[1] - elbow[1]
    n = math.hypot(dx, dy) or 1.0
    ux, uy = dx / n, dy / n
    cx, cy = wrist[0] + ux * 0.08, wrist[1] + uy * 0.08
    if kind == "peace":
        for spread in (-0.35, 0.35):
            fx, fy = ux * math.cos(spread) - uy * math.sin(spread), ux * math.sin(spread) + uy * math.cos(spread)
            pen.stroke([(cx, cy), (cx + fx * 0.3, cy + fy * 0.3)], color, width=0.09)
    pen.ellipse(cx, cy, 0.16, 0.16, color)
    if kind == "open":
        tx, ty = cx - uy * 0.13 + ux * 0.02, cy + ux * 0.13 + uy * 0.02
        pen.ellipse(tx, ty, 0.07, 0.05, color, rot=math.degrees(math.atan2(uy, ux)) + 60)


def draw_leg(pen: Pen, v: View, o: Outfit, side: int, leg: Leg) -> None:
    h = hip(v, side)
    knee = at(h, THIGH, leg[0], limb_side(v, side))
    ankle = at(knee, SHIN, leg[1], limb_side(v, side))
    pts = [h, knee, ankle]
    pen.stroke(pts, o.legs, width=LEG_W)
    if o.socks is not None:
        pen.stroke(split(pts, o.sock_from)[1], o.socks, width=LEG_W + 0.03)
    forward = 0.12 if v.profile or v.phi else 0.0
    pen.ellipse(ankle[0] + forward, ankle[1] + 0.12, 0.22 + forward, 0.14, o.shoes,
                inside=lambda: pen.shape([(ankle[0] - 0.5, ankle[1] + 0.17), (ankle[0] + 0.6, ankle[1] + 0.17),
                                          (ankle[0] + 0.6, ankle[1] + 0.4), (ankle[0] - 0.5, ankle[1] + 0.4)],
                                         o.soles, 0))
