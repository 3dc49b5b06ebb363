"""Mika's head: twin-tails, fringe, star clip, face and expressions, front to three-quarter and profile."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from .geometry import Point, lerp_pts, mirrored, moved, rotated, spline, star_pts, turned
from .palette import (
    BLUSH,
    BOBBLE,
    BOBBLE_SHADE,
    FRECKLE,
    HAIR,
    HAIR_LIGHT,
    HAIR_SHADE,
    INK,
    IRIS,
    IRIS_DARK,
    IRIS_LIGHT,
    MOUTH,
    PUPIL,
    SKIN,
    SKIN_SHADE,
    STAR,
    STAR_SHADE,
    TONGUE,
    WHITE,
)
from .pen import Pen
from .shot import View

# The right twin-tail seen from the front, tied at (1.0, -0.5); the left one is its mirror image.
TAIL = [(0.92, -0.74), (1.4, -0.66), (1.74, -0.22), (1.86, 0.5), (1.8, 1.3), (1.7, 2.0), (1.8, 2.62, True),
        (1.56, 2.42), (1.5, 2.84), (1.3, 3.16, True), (1.38, 2.6), (1.38, 1.9), (1.32, 1.1), (1.2, 0.4),
        (1.06, -0.12), (0.96, -0.34)]
TAIL_STRANDS = [[(1.2, -0.4), (1.55, 0.2), (1.62, 1.2), (1.5, 2.3)], [(1.35, -0.5), (1.72, 0.3), (1.68, 1.6)]]
TAIL_SHINE = [(1.5, -0.42), (1.7, -0.1), (1.76, 0.4), (1.66, 0.1), (1.52, -0.22)]
TIE = (1.0, -0.52)

BANGS_TIPS = [(0.98, -0.3), (0.86, 0.04, True), (0.72, -0.3), (0.52, 0.1, True), (0.34, -0.28), (0.13, 0.14, True),
              (-0.06, -0.26), (-0.26, 0.1, True), (-0.46, -0.28), (-0.66, 0.05, True), (-0.82, -0.28),
              (-0.96, 0.0, True)]
SIDE_LOCK = [(-0.9, -0.4), (-1.08, 0.2), (-1.04, 0.78), (-0.94, 1.08, True), (-0.86, 0.62), (-0.8, 0.1),
             (-0.78, -0.3)]
AHOGE = [(-0.08, -1.08), (0.02, -1.42), (0.22, -1.66), (0.48, -1.6, True), (0.26, -1.54), (0.13, -1.36),
         (0.1, -1.08)]


def cranium(phi: float) -> list[Point]:
    """The hair silhouette over the top of the head; turning shows more of the back of the head."""
    t = phi / 0.5 if phi <= 0.5 else 1.0
    cx, rx = -0.12 * t, 1.12 + 0.08 * t
    return [(cx + rx * math.cos(a), -0.1 + 1.14 * math.sin(a)) for a in
            (math.radians(d) for d in range(160, 381, 20))] + [(1.0 - 0.08 * t, 0.8), (-0.98 - 0.12 * t, 0.8)]


def draw_tail(pen: Pen, side: int, sway: float, dx: float = 0.0, sx: float = 1.0) -> None:
    """One twin-tail; side=+1 is the picture-right tail of the canonical drawing, -1 the left."""
    def place(pts: Sequence[Point]) -> list[Point]:
        pts = rotated(pts, sway * side, TIE)
        pts = moved(pts, dx - TIE[0] * (1 - sx), sx=sx)
        return mirrored(pts) if side < 0 else list(pts)

    def detail() -> None:
        for strand in TAIL_STRANDS:
            pen.stroke(place(strand), HAIR_SHADE, line=0.9)
        pen.shape(place(TAIL_SHINE), HAIR_LIGHT, line=0)

    pen.shape(place(TAIL), HAIR, inside=detail)


def draw_bobble(pen: Pen, x: float, y: float, squash: float = 1.0) -> None:
    pen.ellipse(x, y, 0.17 * squash, 0.21, BOBBLE,
                inside=lambda: pen.ellipse(x + 0.05 * squash, y + 0.06, 0.12 * squash, 0.13, BOBBLE_SHADE, 0))
    pen.stroke([(x - 0.06 * squash, y - 0.12), (x - 0.02 * squash, y), (x - 0.06 * squash, y + 0.12)], INK, 0.6)


def draw_back_hair(pen: Pen, v: View, sway: float) -> None:
    """Everything behind the face: twin-tails, the far side lock and the hair mass."""
    if v.profile:
        draw_tail(pen, -1, sway + 10, dx=-0.3, sx=0.9)      # the far tail peeks out behind
        draw_tail(pen, -1, sway, dx=-0.05)
        pen.shape(PROFILE_HAIR_BACK, HAIR)
        return
    if v.phi:
        draw_tail(pen, 1, sway - 4, dx=-0.28, sx=0.8)       # the far tail, tied behind the head
        draw_tail(pen, -1, sway)
        pen.shape(moved(mirrored(SIDE_LOCK), 0.2), HAIR)
    else:
        draw_tail(pen, 1, sway)
        draw_tail(pen, -1, sway)
    pen.shape(cranium(v.phi), HAIR)


def draw_front_hair(pen: Pen, v: View) -> None:
    if v.profile:
        draw_profile_front_hair(pen, v)
        return
    phi = v.phi
    top = [(1.12 * math.cos(math.radians(d)) - 0.06 * phi, -0.1 + 1.14 * math.sin(math.radians(d)))
           for d in range(-10, -171, -20)]
    tips = [(turned(p[0], phi)[0], *p[1:]) for p in BANGS_TIPS]
    tips[0] = (max(tips[0][0], 0.98 - 0.02 * phi), tips[0][1])
    tips[-1] = (min(tips[-1][0], -0.96), tips[-1][1], True)
    bangs = [*top, (-1.1, -0.2), *reversed(tips)][::-1]

    def shine() -> None:  # the glossy band across the crown
        for a0 in (200, 232, 268, 300):
            arc = [(0.8 * math.cos(math.radians(a)) - 0.06 * phi, -0.1 + 0.8 * math.sin(math.radians(a)))
                   for a in range(a0, a0 + 22, 5)]
            pen.stroke(arc, HAIR_LIGHT, line=3.2)
        pen.stroke([(turned(0.35, phi)[0], -0.15), (turned(0.42, phi)[0], -0.5)], HAIR_SHADE, line=0.9)
        pen.stroke([(turned(-0.38, phi)[0], -0.12), (turned(-0.44, phi)[0], -0.48)], HAIR_SHADE, line=0.9)

    pen.shape(bangs, HAIR, inside=shine)
    pen.shape(moved(SIDE_LOCK, 0.03 * phi / 0.5), HAIR,
              inside=lambda: pen.stroke([(-0.95, -0.1), (-0.94, 0.5), (-0.92, 0.85)], HAIR_SHADE, 0.9))
    if not phi:
        pen.shape(mirrored(SIDE_LOCK), HAIR,
                  inside=lambda: pen.stroke([(0.95, -0.1), (0.94, 0.5), (0.92, 0.85)], HAIR_SHADE, 0.9))
    pen.shape(moved(AHOGE, 0.08 * phi / 0.5), HAIR)
    draw_bobble(pen, -1.02 - 0.02 * phi, TIE[1])
    if not phi:
        draw_bobble(pen, 1.02, TIE[1])
    clip_x = 0.7 if not v.mirror else -0.7         # her left side, in canonical coordinates
    x, squash = turned(clip_x, phi)
    draw_star_clip(pen, x, -0.68 - 0.1 * (1 - squash), min(1.0, squash * 1.2), v.mirror)


def draw_star_clip(pen: Pen, x: float, y: float, squash: float, mirror: bool) -> None:
    """The yellow star hairclip; `squash` narrows it on a turned head."""
    rot = 14 if mirror else -14
    star = moved(star_pts(0, 0, 0.23, rot), x, y, sx=squash)
    shade = moved(star_pts(0, 0, 0.12, rot), x + 0.02 * squash, y + 0.03, sx=squash)
    pen.shape(star, STAR, inside=lambda: pen.shape(shade, STAR_SHADE, 0))
    pen.dot(x - 0.06 * squash, y - 0.08, 0.035, WHITE)


FACE_FRONT = [(-1.0, -0.4), (-0.99, 0.32), (-0.66, 0.88), (0.0, 1.15), (0.66, 0.88), (0.99, 0.32), (1.0, -0.4),
              (0.0, -1.02)]
FACE_TURNED = [(-0.98, -0.4), (-0.95, 0.38), (-0.55, 0.94), (0.3, 1.13), (0.78, 0.84), (1.02, 0.42), (1.03, -0.4),
               (0.1, -1.02)]
FRECKLES = [(-0.11, -0.02), (0.0, 0.05), (0.11, -0.01)]    # three dots across each cheek


@dataclass(frozen=True)
class Face:
    """What an expression does to the features."""

    eyes: str = "open"        # open | happy (closed arcs) | wink
    lid: float = 0.0          # share of the eye covered by the upper lid
    eye_scale: float = 1.0
    look: tuple[float, float] = (0.0, 0.0)
    brow_raise: float = 0.0
    brow_angle: float = 0.0   # degrees; positive lowers the inner ends (determined)
    mouth: str = "smile"      # smile | open | laugh | o | flat | yawn | grin | wavy | tongue | soft
    blush: float = 1.0


EXPRESSIONS = {
    "smile": Face(mouth="open"),
    "neutral": Face(mouth="flat", blush=0.6),
    "surprised": Face(eye_scale=1.1, brow_raise=0.1, brow_angle=-12, mouth="o"),
    "laughing": Face(eyes="happy", brow_raise=0.06, mouth="laugh", blush=1.3),
    "sleepy": Face(lid=0.52, brow_raise=-0.02, brow_angle=-6, mouth="yawn", blush=0.8),
    "wink": Face(eyes="wink", mouth="tongue", blush=1.2),
    "determined": Face(brow_angle=16, brow_raise=-0.02, mouth="grin", lid=0.12),
    "shy": Face(look=(-0.6, 0.25), brow_angle=-10, mouth="wavy", blush=1.7, lid=0.1),
    "calm": Face(lid=0.22, mouth="smile", blush=0.8),
    "focused": Face(lid=0.4, look=(0.1, 0.8), mouth="flat", blush=0.6),
    "gentle": Face(lid=0.15, mouth="smile", blush=1.0),
}


def face_outline(phi: float) -> list[Point]:
    return lerp_pts(FACE_FRONT, FACE_TURNED, min(1.0, phi / 0.5))


def draw_face(pen: Pen, v: View, face: Face) -> None:
    if v.profile:
        draw_profile_face(pen, face)
        return
    phi = v.phi
    outline = face_outline(phi)

    def shade_and_cheeks() -> None:  # the fringe's shadow on the forehead, blush and freckles
        tips = [(turned(p[0], phi)[0], p[1] + 0.14, *p[2:]) for p in BANGS_TIPS]
        pen.shape([(1.2, -1.2), *tips, (-1.2, -1.2)], SKIN_SHADE, 0)
        for side in (-1, 1):
            bx, k = turned(0.6 * side, phi)
            pen.ellipse(bx, 0.62, 0.17 * k * face.blush ** 0.5, 0.09, BLUSH, 0)
            for fx, fy in FRECKLES:
                pen.dot(bx + fx * k, 0.6 + fy, 0.022, FRECKLE)

    pen.shape(outline, SKIN, inside=shade_and_cheeks)
    for side in (-1, 1):
        ex, k = turned(0.42 * side, phi)
        draw_eye(pen, ex, 0.3, k, side, face, wink=face.eyes == "wink" and side == -1)
        draw_brow(pen, ex, k, side, face)
    nx, _ = turned(0.02, phi)
    pen.stroke([(nx - 0.01, 0.55), (nx + 0.03 + 0.06 * phi, 0.6)], INK, 0.9)
    mx, k = turned(0.0, phi)
    draw_mouth(pen, mx, 0.8, 0.8 + 0.2 * k, face.mouth)


def draw_eye(pen: Pen, ex: float, ey: float, k: float, side: int, face: Face, wink: bool = False) -> None:
    """A big anime eye; `k` narrows it when turned away, `side` puts its lash flick on the outer corner."""
    w, h = 0.19 * k * face.eye_scale, 0.24 * face.eye_scale
    if face.eyes == "happy" or wink:
        pen.stroke(spline([(ex - w, ey + 0.06), (ex, ey - 0.08), (ex + w, ey + 0.06)], False), INK, 2.2)
        return
    lx, ly = face.look
    ix, iy = ex + lx * w * 0.25, ey + h * 0.08 + ly * h * 0.25
    lid_y = ey - h + 2 * h * face.lid

    def iris() -> None:
        pen.ellipse(ix, iy, w * 0.78, h * 0.86, IRIS_DARK, 0)
        pen.ellipse(ix, iy + h * 0.16, w * 0.62, h * 0.62, IRIS, 0)
        pen.ellipse(ix, iy + h * 0.48, w * 0.5, h * 0.3, IRIS_LIGHT, 0)
        pen.ellipse(ix, iy + h * 0.05, w * 0.34, h * 0.42, PUPIL, 0)
        pen.ellipse(ix - w * 0.3, iy - h * 0.32, w * 0.26, h * 0.22, WHITE, 0)
        pen.dot(ix + w * 0.3, iy + h * 0.36, w * 0.1, WHITE)
        if face.lid:
            pen.shape([(ex - 2 * w, ey - 2 * h), (ex + 2 * w, ey - 2 * h), (ex + 2 * w, lid_y),
                       (ex, lid_y + 0.02), (ex - 2 * w, lid_y)], SKIN, 0)

    pen.ellipse(ex, ey, w, h, WHITE, 0, inside=iris)
    top = max(lid_y, ey - h)
    lash = [(ex - w * 1.02, ey - h * 0.1), (ex - w * 0.6, top + 0.05 * (1 - face.lid)), (ex, top - 0.005),
            (ex + w * 0.6, top + 0.05 * (1 - face.lid)), (ex + w * 1.05, ey - h * 0.1)]
    pen.stroke(spline(lash, False), INK, 2.6)
    corner = ex + side * w * 1.02
    pen.stroke([(corner, ey - h * 0.1), (corner + side * 0.07 * k, ey - h * 0.3)], INK, 1.8)
    pen.stroke(spline([(ex - w * 0.4, ey + h * 1.02), (ex, ey + h * 1.06), (ex + w * 0.4, ey + h * 1.02)], False),
               INK, 0.9)


def draw_brow(pen: Pen, ex: float, k: float, side: int, face: Face) -> None:
    y = -0.07 - face.brow_raise
    inner, outer = ex - side * 0.13 * k, ex + side * 0.15 * k
    tilt = math.tan(math.radians(face.brow_angle)) * 0.14
    pen.stroke(spline([(inner, y + tilt), (ex, y - 0.03), (outer, y + 0.01)], False), HAIR_SHADE, 1.5)


def draw_mouth(pen: Pen, x: float, y: float, k: float, kind: str) -> None:
    def open_mouth(w: float, d: float, tongue: bool = True, teeth: bool = False) -> None:
        pts = [(x - w, y - 0.01, True), (x, y + 0.015), (x + w, y - 0.01, True), (x + w * 0.55, y + d * 0.8),
               (x, y + d), (x - w * 0.55, y + d * 0.8)]

        def inner() -> None:
            if tongue:
                pen.ellipse(x + w * 0.1, y + d * 1.05, w * 0.6, d * 0.5, TONGUE, 0)
            if teeth:
                pen.shape([(x - w, y - 0.05), (x + w, y - 0.05), (x + w, y + d * 0.28), (x - w, y + d * 0.28)],
                          WHITE, 0)

        pen.shape(pts, MOUTH, 0.8, inside=inner)

    w = 0.1 * k
    if kind == "smile":
        pen.stroke(spline([(x - w, y - 0.02), (x, y + 0.04), (x + w, y - 0.02)], False), INK, 1.1)
    elif kind == "soft":
        pen.stroke(spline([(x - w * 0.7, y), (x, y + 0.025), (x + w * 0.7, y)], False), INK, 1.0)
    elif kind == "flat":
        pen.stroke([(x - w * 0.6, y + 0.01), (x + w * 0.6, y)], INK, 1.0)
    elif kind == "wavy":
        pen.stroke(spline([(x - w * 0.8, y + 0.01), (x - w * 0.3, y - 0.015), (x + w * 0.2, y + 0.015),
                           (x + w * 0.8, y - 0.01)], False), INK, 1.0)
    elif kind == "o":
        pen.ellipse(x, y + 0.03, 0.05 * k, 0.065, MOUTH, 0.8)
    elif kind == "yawn":
        pen.ellipse(x, y + 0.04, 0.07 * k, 0.1, MOUTH, 0.8,
                    inside=lambda: pen.ellipse(x, y + 0.13, 0.06 * k, 0.05, TONGUE, 0))
    elif kind == "open":
        open_mouth(w * 1.3, 0.13)
    elif kind == "laugh":
        open_mouth(w * 1.7, 0.2)
    elif kind == "grin":
        open_mouth(w * 1.6, 0.1, tongue=False, teeth=True)
    elif kind == "tongue":
        open_mouth(w * 1.2, 0.11)
        pen.ellipse(x + w * 0.4, y + 0.09, 0.045 * k, 0.05, TONGUE, 0.8)


PROFILE_FACE = [(0.5, -0.9), (0.86, -0.45), (0.95, -0.05), (0.93, 0.18), (1.03, 0.37), (0.95, 0.46),
                (0.97, 0.6), (0.93, 0.69), (0.955, 0.78), (0.9, 0.95), (0.72, 1.07), (0.3, 1.02), (-0.02, 0.78),
                (-0.3, 0.3), (-0.3, -0.6)]
PROFILE_HAIR_BACK = [(-0.08 + 1.12 * math.cos(math.radians(d)), -0.1 + 1.12 * math.sin(math.radians(d)))
                     for d in range(100, 341, 20)] + [(-0.2, 0.45), (-0.7, 0.62), (-1.0, 0.36)]
PROFILE_FRINGE = [(-0.7, -0.82), (-0.2, -1.2), (0.45, -1.12), (0.86, -0.76), (1.03, -0.36), (0.99, -0.02, True),
                  (0.86, -0.28), (0.78, 0.02, True), (0.56, -0.32), (0.4, 0.35), (0.34, 0.92, True),
                  (0.22, 0.42), (0.14, -0.28), (-0.2, -0.55)]
PROFILE_TIE = (-0.52, -0.55)


def draw_profile_face(pen: Pen, face: Face) -> None:
    def shade() -> None:
        pen.shape([(0.2, -1.3), (1.3, -1.3), (1.3, 0.12), (0.98, 0.12), (0.86, -0.14), (0.78, 0.16), (0.62, -0.14),
                   (0.2, 0.2)], SKIN_SHADE, 0)

    pen.shape(PROFILE_FACE, SKIN, inside=shade)
    pen.ellipse(0.04, 0.3, 0.13, 0.19, SKIN,
                inside=lambda: pen.stroke(spline([(0.08, 0.2), (0.0, 0.3), (0.06, 0.42)], False), SKIN_SHADE, 1.2))
    pen.ellipse(0.56, 0.62, 0.13 * face.blush ** 0.5, 0.08, BLUSH, 0)
    for fx, fy in FRECKLES:
        pen.dot(0.56 + fx * 0.7, 0.6 + fy, 0.022, FRECKLE)
    draw_eye(pen, 0.7, 0.3, 0.46, -1, dataclasses.replace(face, look=(0.7, face.look[1])))
    draw_brow(pen, 0.7, 0.5, -1, face)
    x, y = 0.93, 0.69
    if face.mouth in ("smile", "soft", "tongue"):
        pen.stroke(spline([(x, y), (x - 0.05, y - 0.005), (x - 0.09, y - 0.03)], False), INK, 1.1)
    elif face.mouth in ("flat", "wavy"):
        pen.stroke([(x, y), (x - 0.08, y)], INK, 1.0)
    elif face.mouth in ("o", "yawn"):
        pen.ellipse(x - 0.02, y + 0.01, 0.035, 0.055, MOUTH, 0.8)
    else:
        d = 0.1 if face.mouth != "laugh" else 0.14
        pen.shape([(x + 0.04, y - 0.06, True), (x - 0.1, y, True), (x + 0.02, y + d, True)], MOUTH, 0.8)


def draw_profile_front_hair(pen: Pen, v: View) -> None:
    def detail() -> None:
        pen.stroke([(0.0, -1.1), (0.5, -0.9), (0.82, -0.5)], HAIR_LIGHT, 3.0)
        pen.stroke(spline([(0.36, -0.55), (0.3, 0.1), (0.31, 0.6)], False), HAIR_SHADE, 0.9)

    pen.shape(PROFILE_FRINGE, HAIR, inside=detail)
    pen.shape(AHOGE, HAIR)
    draw_bobble(pen, *PROFILE_TIE)
    if v.clip_visible_side:
        draw_star_clip(pen, 0.05, -0.78, 1.0, v.mirror)
