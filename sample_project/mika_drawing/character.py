"""The whole character in drawing order: hair behind, body, outfit, head, props, arms in front."""

from __future__ import annotations

import itertools
import math

from .body import (
    POSES,
    arm_joints,
    draw_arm,
    draw_leg,
    torso_pts,
)
from .geometry import Point, rotated, spline
from .head import (
    EXPRESSIONS,
    draw_back_hair,
    draw_face,
    draw_front_hair,
)
from .outfits import (
    OUTFITS,
    lower_pts,
)
from .palette import (
    INK,
    SKIN,
    SKIN_SHADE,
)
from .pen import Pen
from .shot import Shot, View


def neck_x(v: View) -> float:
    return 0.08 if v.profile else 0.05 * v.phi


def draw_neck(pen: Pen, v: View) -> None:
    x = neck_x(v)
    w = 0.23 if v.profile else 0.18
    pen.shape([(x - w, 0.6), (x + w, 0.6), (x + w + 0.01, 1.45, True), (x - w - 0.01, 1.45, True)], SKIN,
              inside=lambda: pen.ellipse(x + (0.25 if v.profile else 0.1 * v.phi), 0.82, 0.5, 0.3, SKIN_SHADE, 0))


UMBRELLA_HUB = (-1.45, -1.75)   # the middle of the canopy's rim, where the shaft comes out


def draw_umbrella(pen: Pen, hub: tuple[float, float], tilt: float) -> None:
    """A dome umbrella seen from the side: scalloped rim, ribs from the tip to each rim point."""
    red, dark, light = (236, 92, 102), (196, 60, 76), (250, 150, 156)
    x, y = hub
    rx, ry, n = 2.1, 1.25, 6
    dome = [(x + rx * math.cos(math.radians(a)), y + ry * math.sin(math.radians(a))) for a in range(180, 361, 12)]
    rim_tips = [(x + rx - 2 * rx * i / n, y) for i in range(n + 1)]
    rim: list[Point] = []
    for a, b in itertools.pairwise(rim_tips):
        rim += [(*a, True), ((a[0] + b[0]) / 2, y - 0.14)]
    canopy = rotated([*dome[:-1], *rim], tilt, hub)

    def ribs() -> None:
        pen.shape(rotated([(x - rx * 0.7, y - ry * 0.62), (x - rx * 0.2, y - ry * 0.97), (x - rx * 0.45, y - ry * 0.6)],
                          tilt, hub), light, 0)
        for tip in rim_tips[1:-1]:
            pen.stroke(rotated(spline([(x, y - ry), (x + (tip[0] - x) * 0.75, y - ry * 0.55), tip], False), tilt,
                               hub), dark, 1.0)

    pen.shape(canopy, red, inside=ribs)
    pen.stroke(rotated([(x, y - ry), (x, y - ry - 0.3)], tilt, hub), INK, 2.2)


def draw_book(pen: Pen, left: tuple[float, float], right: tuple[float, float], v: View) -> None:
    cx, cy = (left[0] + right[0]) / 2, min(left[1], right[1]) - 0.12
    w = 0.5 * (0.8 if v.phi else 1.0)
    pen.shape([(cx - w, cy - 0.36, True), (cx + w, cy - 0.3, True), (cx + w, cy + 0.3, True),
               (cx - w, cy + 0.36, True)], (210, 74, 86),
              inside=lambda: pen.shape([(cx - w, cy - 0.08), (cx + w, cy - 0.06), (cx + w, cy + 0.04),
                                        (cx - w, cy + 0.06)], (250, 210, 90), 0))
    pen.shape([(cx + w, cy - 0.3, True), (cx + w + 0.08, cy - 0.26, True), (cx + w + 0.08, cy + 0.26, True),
               (cx + w, cy + 0.3, True)], (252, 248, 236), 0.8)


def draw_character(pen: Pen, shot: Shot) -> None:
    v, pose, o = View.of(shot), POSES[shot.pose], OUTFITS[shot.outfit]
    face = EXPRESSIONS[shot.expression]
    head_pivot = (neck_x(v), 0.95)
    near, far = -1, 1  # picture-left is the near side of a turned body
    if pose.prop == "umbrella":
        draw_umbrella(pen, UMBRELLA_HUB, -16)
    with pen.tilted(shot.tilt, head_pivot):
        draw_back_hair(pen, v, pose.sway)
    o.behind(pen, v, o)
    if v.phi:  # turned: the far arm goes behind the body
        draw_arm(pen, v, o, far, pose.arm(far))
    for side in (far, near):
        draw_leg(pen, v, o, side, pose.leg(side))
    draw_neck(pen, v)
    coat = o.lower == "coat"
    pen.shape([*torso_pts(v, bottom=o.hem if coat else 3.3, flare=o.flare if coat else 0), (v.front, 1.4)], o.top)
    if o.lower in ("skirt", "shorts"):
        pen.shape(lower_pts(v, o), o.lower_color)
    o.details(pen, v, o)
    o.collar(pen, v, o)
    if pose.prop == "umbrella":  # the shaft runs behind the head to the canopy
        pen.stroke([arm_joints(v, near, pose.arm(near))[2], UMBRELLA_HUB], (120, 80, 60), width=0.07)
    with pen.tilted(shot.tilt, head_pivot):
        draw_face(pen, v, face)
        draw_front_hair(pen, v)
    if pose.prop == "book":  # held in both hands, under the arms
        draw_book(pen, arm_joints(v, near, pose.arm(near))[2], arm_joints(v, far, pose.arm(far))[2], v)
    for side in (near,) if v.phi else (near, far):
        draw_arm(pen, v, o, side, pose.arm(side))
    o.over(pen, v, o)
