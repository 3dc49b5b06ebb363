"""The seed guide's training warnings, computed from the loss series and the GPU reading.

Normal loss is 0.01–0.1 and slowly falling after warm-up; a flat or volatile loss, a loss outside that range, a
NaN loss, or VRAM above 90% gets a one-line warning with what to do about it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zchar_tui.widgets.downsample import Floats
from zchar_tui.widgets.gpu_gauges import VRAM_WARN

LOSS_LOW, LOSS_HIGH = 0.01, 0.1
MIN_POINTS = 20  # steps after warm-up before any loss warning
MAX_WINDOW = 200  # the recent steps the checks look at
FLAT_SPREAD = 0.01  # raw loss's 10–90 % spread under 1 % of its median: nothing is being learnt
VOLATILE_CV = 0.25  # smoothed loss's std over mean above this: unstable


def warm_up_steps(total_steps: int | None) -> int:
    """Steps ignored by the loss checks: 10 % of the run, between 20 and 200."""
    return max(20, min(200, (total_steps or 1000) // 10))


def loss_warnings(steps: Floats, loss: Floats, smooth: Floats, total_steps: int | None = None) -> list[str]:
    after = steps > warm_up_steps(total_steps)
    n = int(after.sum())
    if n < MIN_POINTS:
        return []
    w = min(n, MAX_WINDOW)
    raw = loss[-w:]
    if not np.isfinite(raw).all():
        bad = int(steps[-w:][~np.isfinite(raw)][0])
        return [f"loss became NaN/inf at step {bad}: training diverged; resume from an earlier checkpoint with a "
                "lower learning rate"]
    sm = smooth[-w:]
    sm = sm[np.isfinite(sm)] if np.isfinite(sm).any() else raw
    out = []
    level = float(np.median(sm))
    if level > LOSS_HIGH:
        out.append(f"loss {level:.3g} is above the normal {LOSS_LOW}–{LOSS_HIGH} after warm-up: check the captions "
                   "and images, or lower the learning rate")
    elif level < LOSS_LOW:
        out.append(f"loss {level:.3g} is below the normal {LOSS_LOW}–{LOSS_HIGH}: the LoRA may be memorising the "
                   "dataset; compare checkpoints for overfitting")
    p10, p90 = np.percentile(raw, [10, 90])
    median = float(np.median(raw))
    if median > 0 and (p90 - p10) <= FLAT_SPREAD * median:
        out.append(f"loss is flat over the last {w} steps: the LoRA may not be learning (check the learning rate "
                   "and that the dataset loads)")
    elif level > 0 and float(np.std(sm)) / level > VOLATILE_CV:
        out.append(f"loss is volatile over the last {w} steps (smoothed loss varies ±{100 * np.std(sm) / level:.0f}%):"
                   " lower the learning rate or raise the batch size / gradient accumulation")
    return out


def vram_warnings(telemetry: dict[str, Any]) -> list[str]:
    out = []
    for g in telemetry.get("gpus") or []:
        used, total = g.get("mem_used"), g.get("mem_total")
        if used is not None and total and 100.0 * used / total > VRAM_WARN:
            out.append(f"GPU{g['index']} VRAM is {100.0 * used / total:.0f}% full: near out-of-memory; use memory "
                       "mode 'low', a lower resolution or rank")
    return out
