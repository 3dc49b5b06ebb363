"""The one-line header: project, trigger word, engine state, the running job and a GPU summary."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static


def gpu_summary(telemetry: dict[str, Any]) -> Text:
    if not telemetry.get("available"):
        reason = telemetry.get("reason") or "no NVIDIA GPU"
        return Text(f"GPU: {reason}", style="dim")
    parts = []
    for g in telemetry.get("gpus", []):
        used, total = g.get("mem_used"), g.get("mem_total")
        mem = f"{used / 1024:.1f}/{total / 1024:.0f} GiB" if used is not None and total else "mem n/a"
        util = f"{g['util']}%" if g.get("util") is not None else "n/a"
        temp = f"{g['temp']}°C" if g.get("temp") is not None else ""
        power = f"{g['power']:.0f} W" if g.get("power") is not None else ""
        name = (g.get("name") or "GPU").replace("NVIDIA ", "")
        parts.append(" ".join(p for p in (f"{name}", mem, util, temp, power) if p))
    return Text("GPU: " + " | ".join(parts))


def engine_summary(state: Any) -> Text:
    if not state.connected:
        return Text("engine: not connected", style="bold red" if state.engine else "dim")
    job = state.running_job()
    if job is None:
        queued = sum(1 for j in state.jobs.values() if j["state"] == "queued")
        return Text(f"engine: idle{f' · {queued} queued' if queued else ''}", style="green")
    prog = state.progress.get(job["id"], {})
    pct = f" {100 * prog['step'] / prog['total']:.0f}%" if prog.get("total") else ""
    what = "training" if job["kind"] == "train" else "generating"
    if job["state"] == "stopping":
        what = "stopping"
    return Text(f"engine: {what}{pct}", style="bold yellow")


class StatusHeader(Static):
    """Refreshed by the app a few times per second (not per event)."""

    _shown: Text | None = None

    def show_status(self, project_name: str, trigger: str, state: Any) -> None:
        text = Text.assemble(
            ("zchar", "bold"), " │ ", (project_name, "bold"), " · trigger ", (trigger, "bold cyan"), " │ ",
            engine_summary(state), " │ ", gpu_summary(state.telemetry),
        )
        text.truncate(max(10, self.size.width - 2 if self.size.width else 200), overflow="ellipsis")
        if text != self._shown:  # called every 0.5 s: an update re-renders and re-lays out the header
            self._shown = text
            self.update(text)
