"""Helpers for the generation tests: tiny LoRA files and a stand-in for the engine's JobContext."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

from engine import protocol
from engine.errors import JobCancelled
from engine.project import Project


def make_lora(path: Path, seed: int = 1, rank: int = 4, scale: float = 0.5) -> Path:
    """A LoRA for the tiny transformer, saved the way diffusers saves one (with adapter metadata)."""
    import torch
    from diffusers import ZImagePipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from engine.models import build_tiny

    transformer = build_tiny(["transformer"])["transformer"]
    config = LoraConfig(r=rank, lora_alpha=rank / 2, init_lora_weights=True,
                        target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    transformer.add_adapter(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    ZImagePipeline.save_lora_weights(str(path.parent), transformer_lora_layers=get_peft_model_state_dict(transformer),
                                     transformer_lora_adapter_metadata=config.to_dict(), weight_name=path.name)
    return path


def write_safetensors_header(path: Path, keys: list[str]) -> Path:
    """A valid safetensors file whose tensors have the given names (one float each)."""
    header = {k: {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i, k in enumerate(keys)}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4 * len(keys))
    return path


class FakeContext:
    """What a runner sees of the engine, recorded for assertions; `cancel_after` steps asks it to stop."""

    def __init__(self, project: Project, job_id: int, params: dict[str, Any], kind: str = "gen",
                 previous_results: list[dict[str, Any]] | None = None, cancel_after: int | None = None):
        self.project = project
        self.job_id = job_id
        self.kind = kind
        self.params = params
        self.job = {"id": job_id, "kind": kind, "params": params, "created": time.time(), "attempts": 0}
        self.attempts = 0
        self.previous_results = previous_results or []
        self.stop_reason: str | None = None
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.cancel_after = cancel_after

    def check_cancel(self) -> None:
        if self.stop_reason:
            raise JobCancelled("cancelled")

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append((kind, data))

    def progress(self, step: int, total: int, message: str = "", eta_s: float | None = None) -> None:
        self.events.append((protocol.EV_PROGRESS, {"step": step, "total": total, "message": message, "eta_s": eta_s}))
        if self.cancel_after is not None and step >= self.cancel_after:
            self.stop_reason = "cancel"

    def loading(self, stage: str, done: float = 0, total: float = 0, message: str = "") -> None:
        self.events.append((protocol.EV_LOADING, {"stage": stage}))

    def log(self, message: str, level: str = "info") -> None:
        self.events.append((protocol.EV_LOG, {"message": message, "level": level}))

    def results(self) -> list[dict[str, Any]]:
        return [d for k, d in self.events if k == protocol.EV_RESULT]
