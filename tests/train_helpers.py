"""Running training jobs in the test process (the foreground context) and reading what they emitted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.project import Project


@dataclass
class Recorded:
    result: dict[str, Any] | None = None
    error: BaseException | None = None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [d for k, d in self.events if k == kind]

    @property
    def losses(self) -> dict[int, float]:
        return {m["step"]: m["loss"] for m in self.of("train.metric")}

    def logs(self, level: str | None = None) -> list[str]:
        return [d["message"] for d in self.of("log") if level is None or d["level"] == level]


def train(project: Project, hook: Callable[[Any, str, dict[str, Any]], None] | None = None, attempts: int = 0,
          persist: bool = False, **params: Any) -> Recorded:
    """Run one training job; `hook(ctx, kind, data)` sees every event (e.g. to ask for a stop). Never raises."""
    from engine.train_foreground import ForegroundContext, train_foreground

    rec = Recorded()
    ctx: ForegroundContext

    def on_event(kind: str, data: dict[str, Any]) -> None:
        rec.events.append((kind, data))
        if hook:
            hook(ctx, kind, data)

    ctx = ForegroundContext(project, {"resume": False, **params}, on_event, persist=persist)
    ctx.attempts = attempts
    try:
        rec.result = train_foreground(ctx)
    except Exception as exc:  # the test inspects it
        rec.error = exc
    return rec


def stop_at(step: int) -> Callable[[Any, str, dict[str, Any]], None]:
    def hook(ctx: Any, kind: str, data: dict[str, Any]) -> None:
        if kind == "train.metric" and data["step"] == step:
            ctx.request_stop("cancel")

    return hook
