"""Reduce a long series to what a chart of a given width can show, keeping its peaks.

Min/max per bucket: each bucket of consecutive points contributes its lowest and its highest point, in the order
they occur, so spikes survive and a line drawn through the result looks like the line through every point.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]


def finite(x: Floats, y: Floats) -> tuple[Floats, Floats]:
    """Drop points whose x or y is NaN or infinite."""
    keep = np.isfinite(x) & np.isfinite(y)
    return (x, y) if keep.all() else (x[keep], y[keep])


def last_steps(x: Floats, y: Floats, n: int | None) -> tuple[Floats, Floats]:
    """The points with x within the last `n` steps of the series (all of them when n is None)."""
    if n is None or len(x) == 0:
        return x, y
    start = int(np.searchsorted(x, x[-1] - n, side="right"))
    return x[start:], y[start:]


def minmax(x: Floats, y: Floats, buckets: int) -> tuple[Floats, Floats]:
    """At most 2 × `buckets` + 2 points: the min and max of each of `buckets` equal runs of points, in x order,
    plus the first and the last point (so the drawn x range is the real one).

    `x` is sorted (training steps). Finite values only (see `finite`).
    """
    n = len(x)
    buckets = max(1, buckets)
    if n <= 2 * buckets:
        return x, y
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    starts = edges[:-1]
    lo = np.minimum.reduceat(y, starts)
    hi = np.maximum.reduceat(y, starts)
    # The index of each bucket's min/max: first position in the bucket holding that value.
    bucket_of = np.repeat(np.arange(buckets), np.diff(edges))
    idx = np.arange(n)
    big = np.int64(n)
    i_lo = np.full(buckets, big)
    i_hi = np.full(buckets, big)
    np.minimum.at(i_lo, bucket_of, np.where(y == lo[bucket_of], idx, big))
    np.minimum.at(i_hi, bucket_of, np.where(y == hi[bucket_of], idx, big))
    first = np.minimum(i_lo, i_hi)
    second = np.maximum(i_lo, i_hi)
    order = np.empty(2 * buckets, dtype=np.int64)
    order[0::2] = first
    order[1::2] = second
    # A flat bucket has min == max at the same point: keep it once.
    keep = np.ones(len(order), dtype=bool)
    keep[1::2] = second != first
    order = order[keep]
    order = np.concatenate(([0] if order[0] != 0 else [], order, [n - 1] if order[-1] != n - 1 else []))
    order = order.astype(np.int64)
    return x[order], y[order]
