"""Shapes as point lists in head units: smooth curves, ellipses, stars, and simple transforms."""

from __future__ import annotations

import math
from collections.abc import Sequence

Point = tuple[float, ...]  # (x, y) or (x, y, True) for a sharp corner in a spline

def spline(points: Sequence[Point], closed: bool = True, steps: int = 10) -> list[tuple[float, float]]:
    """A smooth (Catmull-Rom) curve through `points`; a point given as (x, y, True) stays a sharp corner."""
    n = len(points)
    if n < 3:
        return [(p[0], p[1]) for p in points]
    sharp = [len(p) > 2 and bool(p[2]) for p in points]
    pts = [(p[0], p[1]) for p in points]

    def tangent(i: int) -> tuple[float, float]:
        if sharp[i % n] or (not closed and i in (0, n - 1)):
            return (0.0, 0.0)
        a, b = pts[(i - 1) % n], pts[(i + 1) % n]
        return ((b[0] - a[0]) / 2, (b[1] - a[1]) / 2)

    out: list[tuple[float, float]] = []
    for i in range(n if closed else n - 1):
        p0, p1 = pts[i], pts[(i + 1) % n]
        m0, m1 = tangent(i), tangent(i + 1)
        for k in range(steps):
            t = k / steps
            h00, h10 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t
            h01, h11 = -2 * t**3 + 3 * t**2, t**3 - t**2
            out.append((h00 * p0[0] + h10 * m0[0] + h01 * p1[0] + h11 * m1[0],
                        h00 * p0[1] + h10 * m0[1] + h01 * p1[1] + h11 * m1[1]))
    if not closed:
        out.append(pts[-1])
    return out


def ellipse_pts(x: float, y: float, rx: float, ry: float, rot: float = 0.0, n: int = 48) -> list[Point]:
    c, s = math.cos(math.radians(rot)), math.sin(math.radians(rot))
    pts: list[Point] = []
    for k in range(n):
        a = 2 * math.pi * k / n
        ex, ey = rx * math.cos(a), ry * math.sin(a)
        pts.append((x + ex * c - ey * s, y + ex * s + ey * c, True))  # already dense: no smoothing needed
    return pts


def star_pts(x: float, y: float, r: float, rot: float = 0.0, inner: float = 0.48) -> list[Point]:
    pts: list[Point] = []
    for k in range(10):
        a = math.radians(rot - 90 + 36 * k)
        rr = r if k % 2 == 0 else r * inner
        pts.append((x + rr * math.cos(a), y + rr * math.sin(a), True))
    return pts


def lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def lerp_pts(a: Sequence[Point], b: Sequence[Point], t: float) -> list[Point]:
    return [(lerp(p[0], q[0], t), lerp(p[1], q[1], t), *p[2:]) for p, q in zip(a, b, strict=True)]


def turned(x: float, phi: float, radius: float = 1.05) -> tuple[float, float]:
    """Where a point at `x` on the face lands when the head turns by `phi` radians, and its foreshortening."""
    theta = math.asin(max(-1.0, min(1.0, x / radius))) + phi
    return radius * math.sin(theta), max(0.25, math.cos(theta))


def rotated(pts: Sequence[Point], degrees: float, pivot: tuple[float, float]) -> list[Point]:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    ox, oy = pivot
    return [(ox + (p[0] - ox) * c - (p[1] - oy) * s, oy + (p[0] - ox) * s + (p[1] - oy) * c, *p[2:]) for p in pts]


def mirrored(pts: Sequence[Point]) -> list[Point]:
    return [(-p[0], *p[1:]) for p in pts]


def moved(pts: Sequence[Point], dx: float, dy: float = 0.0, sx: float = 1.0) -> list[Point]:
    return [(p[0] * sx + dx, p[1] + dy, *p[2:]) for p in pts]
