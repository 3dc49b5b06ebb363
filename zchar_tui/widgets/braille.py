"""Braille line drawing in numpy, for the loss chart.

textual-hires-canvas draws a line dot by dot in Python (about 30 µs per character cell it touches), so a noisy loss
band over a 100-column chart cost 20-40 ms a draw. This draws the same polyline with the same dots — 2×4 per cell,
lines clipped to the canvas, the very dots Bresenham's algorithm picks — in a few array operations,
and returns each touched cell once with its braille character.
"""

from __future__ import annotations

import numpy as np

from zchar_tui.widgets.downsample import Floats

# Bit of each dot in a braille cell (U+2800 + bits), indexed [row][column] within the 2-wide, 4-high cell.
DOT_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint8)


def _clip(x0: Floats, y0: Floats, x1: Floats, y1: Floats, w: float, h: float) -> tuple[Floats, ...]:
    """Liang–Barsky clipping of segments to [0, w] × [0, h]; segments wholly outside are dropped."""
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = np.zeros_like(x0), np.ones_like(x0)
    keep = np.ones(len(x0), dtype=bool)
    for p, q in ((-dx, x0), (dx, w - x0), (-dy, y0), (dy, h - y0)):
        parallel = p == 0
        keep &= ~(parallel & (q < 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(parallel, 0.0, q / np.where(parallel, 1.0, p))
        t0 = np.where(~parallel & (p < 0), np.maximum(t0, r), t0)
        t1 = np.where(~parallel & (p > 0), np.minimum(t1, r), t1)
    keep &= t0 <= t1
    return (x0 + t0 * dx)[keep], (y0 + t0 * dy)[keep], (x0 + t1 * dx)[keep], (y0 + t1 * dy)[keep]


def _step(offset: np.ndarray, n: np.ndarray) -> np.ndarray:
    """offset / n rounded half away from zero, in integers: the dots Bresenham's algorithm picks."""
    return np.sign(offset) * ((2 * np.abs(offset) + n) // (2 * n))


def polyline_cells(x: Floats, y: Floats, width: int, height: int) -> list[tuple[int, int, str]]:
    """(column, row, braille character) of every cell a polyline touches on a width × height canvas.

    x and y are in cell units (fractions address the dots), as textual-plot maps data onto its canvas.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) == 0 or width <= 0 or height <= 0:
        return []
    if len(x) == 1:
        x, y = np.repeat(x, 2), np.repeat(y, 2)
    w, h = 2 * width, 4 * height  # in dots
    eps = 1e-9
    x0, y0, x1, y1 = _clip(2 * x[:-1], 4 * y[:-1], 2 * x[1:], 4 * y[1:], w - eps, h - eps)
    if len(x0) == 0:
        return []
    ax, ay, bx, by = (np.floor(v).astype(np.int64) for v in (x0, y0, x1, y1))
    steps = np.maximum(np.abs(bx - ax), np.abs(by - ay))
    counts = steps + 1
    seg = np.repeat(np.arange(len(ax)), counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    n = np.maximum(steps[seg], 1)
    dots_x = ax[seg] + _step(k * (bx - ax)[seg], n)
    dots_y = ay[seg] + _step(k * (by - ay)[seg], n)
    grid = np.zeros((height, width), dtype=np.uint8)
    np.bitwise_or.at(grid, (dots_y // 4, dots_x // 2), DOT_BITS[dots_y % 4, dots_x % 2])
    rows, cols = np.nonzero(grid)
    return [(int(c), int(r), chr(0x2800 + int(grid[r, c]))) for r, c in zip(rows, cols, strict=True)]
