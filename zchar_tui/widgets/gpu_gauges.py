"""GPU gauges: per NVIDIA GPU a VRAM bar split into the engine's share and everyone else's, the driver's and the
allocator's figures side by side, utilisation, temperature, power and SM clock, with sparkline histories drawn on a
fixed 0–100 % scale (a constant 90 % load must not look like a full bar, nor 5 % like one).

Fed from the engine's `gpu` events (`engine/telemetry.py` describes a reading): `record()` per event keeps the
histories (cheap), `show()` from the screen's timer redraws. With no GPU it says so in one line.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

HISTORY = 120  # readings kept per GPU for the sparklines (about two minutes)
UTIL_LEVELS = (10, 75)  # nvitop's thresholds: light / moderate / heavy
MEM_LEVELS = (10, 80)
VRAM_WARN = 90.0  # % of VRAM above which the training screen warns


def level_style(percent: float | None, levels: tuple[int, int], colours: dict[str, str]) -> str:
    if percent is None:
        return "dim"
    if percent >= VRAM_WARN and levels is MEM_LEVELS:
        return f"bold {colours['error']}"
    return colours["success"] if percent < levels[0] else colours["warning"] if percent < levels[1] else colours[
        "error"]


def _gib(mib: float | None) -> str:
    return "n/a" if mib is None else f"{mib / 1024:.1f}"


def _pct(part: float | None, whole: float | None) -> float | None:
    return 100.0 * part / whole if part is not None and whole else None


def bar(width: int, parts: list[tuple[float, str]], total: float, empty: str = "dim") -> Text:
    """A horizontal bar `width` cells wide: each (value, style) part in turn, the rest shown as free."""
    text = Text()
    used = 0
    for value, style in parts:
        cells = 0 if total <= 0 else max(0, min(width - used, round(width * value / total)))
        text.append("█" * cells, style=style)
        used += cells
    text.append("░" * (width - used), style=empty)
    return text


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int, style: str = "") -> Text:
    """The last `width` percentages as block characters on a fixed 0–100 scale."""
    tail = values[-width:]
    chars = "".join(SPARK[min(len(SPARK) - 1, max(0, int(v / 100 * len(SPARK))))] for v in tail)
    return Text(chars.rjust(width), style=style)


def torch_view_for(reading: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Which GPU (by index) the allocator figures belong to: matched by UUID, else the only GPU, else the one
    where the engine holds memory."""
    tv = reading.get("torch")
    gpus = reading.get("gpus") or []
    if not tv or not gpus:
        return {}
    for g in gpus:
        if tv.get("uuid") and g.get("uuid") == tv["uuid"]:
            return {g["index"]: tv}
    if len(gpus) == 1:
        return {gpus[0]["index"]: tv}
    holder = max(gpus, key=lambda g: g.get("proc_mem") or 0)
    return {holder["index"]: tv} if holder.get("proc_mem") else {}


def card_text(g: dict[str, Any], tv: dict[str, Any] | None, width: int, colours: dict[str, str],
              util_history: list[float] = (), vram_history: list[float] = ()) -> Text:  # type: ignore[assignment]
    """One GPU's card; each bar has its recent history under it, on the same 0–100 % scale."""
    name = (g.get("name") or "GPU").replace("NVIDIA ", "")
    t = Text()
    t.append(f"GPU{g['index']} ", style="bold")
    t.append(name[: max(4, width - 22)], style="bold")
    temp = g.get("temp")
    if temp is not None:
        t.append(f"  {temp}°C", style=colours["error"] if temp >= 85 else colours["warning"] if temp >= 75 else "")
    if g.get("sm_clock") is not None:
        t.append(f"  {g['sm_clock']} MHz", style="dim")
    t.append("\n")

    used, total, mine = g.get("mem_used"), g.get("mem_total"), g.get("proc_mem")
    pct = _pct(used, total)
    bar_w = max(6, width - 17)
    t.append("VRAM ")
    if total:
        engine = min(mine or 0, used or 0)
        t.append_text(bar(bar_w, [(engine, colours["primary"]), ((used or 0) - engine, level_style(
            pct, MEM_LEVELS, colours))], total))
        t.append(f" {pct:3.0f}%", style=level_style(pct, MEM_LEVELS, colours))
    else:
        t.append("n/a", style="dim")
    t.append("\n")
    if vram_history:
        t.append("     ")
        t.append_text(sparkline(vram_history, bar_w, colours["primary"]))
        t.append("\n")
    t.append(f"  {_gib(used)}/{_gib(total)} GiB", style="")
    t.append(" · engine ", style="dim")
    t.append(_gib(mine), style=colours["primary"])
    t.append("\n")
    if tv:
        t.append("  torch reserved ", style="dim")
        t.append(f"{_gib(tv.get('reserved'))}", style="")
        t.append(" · peak ", style="dim")
        t.append(f"{_gib(tv.get('max_reserved'))} GiB", style="")
        t.append("\n")

    util = g.get("util")
    t.append("util ")
    if util is not None:
        t.append_text(bar(bar_w, [(util, level_style(util, UTIL_LEVELS, colours))], 100))
        t.append(f" {util:3.0f}%", style=level_style(util, UTIL_LEVELS, colours))
    else:
        t.append("n/a", style="dim")
    t.append("\n")
    if util_history:
        t.append("     ")
        t.append_text(sparkline(util_history, bar_w, colours["primary"]))
        t.append("\n")
    power, limit = g.get("power"), g.get("power_limit")
    t.append("power ")
    if power is not None:
        t.append(f"{power:.0f}")
        t.append(f"/{limit:.0f} W" if limit else " W", style="dim")
    else:
        t.append("n/a", style="dim")
    return t


class GpuGauges(Vertical):
    DEFAULT_CSS = """
    GpuGauges { height: auto; }
    GpuGauges > #gpu-none { height: auto; color: $text-muted; }
    GpuGauges > .gpu-card { height: auto; margin-bottom: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.reading: dict[str, Any] = {"available": False, "reason": "not connected", "gpus": []}
        self.util_history: dict[int, deque[float]] = {}
        self.vram_history: dict[int, deque[float]] = {}
        self._shown: Any = None

    def compose(self) -> ComposeResult:
        yield Static(id="gpu-none")

    def record(self, reading: dict[str, Any]) -> None:
        """Keep the latest reading and the histories; called for every `gpu` event (about 1 Hz)."""
        self.reading = reading
        for g in reading.get("gpus") or []:
            i = g["index"]
            if g.get("util") is not None:
                self.util_history.setdefault(i, deque(maxlen=HISTORY)).append(float(g["util"]))
            pct = _pct(g.get("mem_used"), g.get("mem_total"))
            if pct is not None:
                self.vram_history.setdefault(i, deque(maxlen=HISTORY)).append(pct)

    def show(self, reading: dict[str, Any] | None = None) -> None:
        """Redraw (from a timer) with `reading`, or the last recorded one."""
        if reading is not None and reading is not self.reading:
            self.record(reading)
        reading = self.reading
        width = max(24, (self.size.width or 40) - 1)
        key = (id(reading), width, self.app.theme)
        if key == self._shown:
            return
        self._shown = key
        gpus = (reading.get("gpus") or []) if reading.get("available") else []
        none = self.query_one("#gpu-none", Static)
        none.display = not gpus
        if not gpus:
            reason = reading.get("reason") or "no NVIDIA GPU"
            none.update(f"no NVIDIA GPU ({reason})" if "NVIDIA GPU" not in reason else reason)
        cards = {int(c.id.removeprefix("gpu-")): c for c in self.query(".gpu-card").results(Static) if c.id}
        wanted = {g["index"] for g in gpus}
        for index, card in cards.items():
            if index not in wanted:
                card.remove()
        colours = self.app.get_css_variables()
        tviews = torch_view_for(reading)
        new = []
        for g in gpus:
            i = g["index"]
            text = card_text(g, tviews.get(i), width, colours, list(self.util_history.get(i, ())),
                             list(self.vram_history.get(i, ())))
            if i in cards:
                cards[i].update(text)
            else:
                new.append(Static(text, id=f"gpu-{i}", classes="gpu-card"))
        if new:
            self.mount_all(new)
