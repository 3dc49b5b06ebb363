"""Memory modes: what each turns on, and that checkpointing, fp8 storage and block offload still train."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from engine.models import build_tiny  # noqa: E402
from engine.project import TrainSettings  # noqa: E402
from engine.train_memory import MemoryPlan, apply, next_mode_hint, plan, transformer_blocks  # noqa: E402
from engine.train_step import add_lora, flow_loss, make_optimizer  # noqa: E402


def test_modes_map_to_knobs() -> None:
    full, balanced, low = (plan(TrainSettings(memory=m, gradient_checkpointing=False), "cuda")
                           for m in ("full", "balanced", "low"))
    assert (full.gradient_checkpointing, full.fp8_storage, full.block_offload) == (False, False, False)
    assert (balanced.gradient_checkpointing, balanced.fp8_storage, balanced.block_offload) == (True, True, False)
    assert (low.gradient_checkpointing, low.fp8_storage, low.block_offload) == (True, True, True)
    assert plan(TrainSettings(memory="full", gradient_checkpointing=True), "cuda").gradient_checkpointing
    on_cpu = plan(TrainSettings(memory="low"), "cpu")
    assert on_cpu.gradient_checkpointing and not on_cpu.fp8_storage and not on_cpu.block_offload
    assert "balanced" in next_mode_hint("full") and "low" in next_mode_hint("balanced")
    assert "resolution" in next_mode_hint("low")


def _train(p: MemoryPlan, steps: int = 4) -> tuple[list[float], dict[str, Any], Any]:
    transformer = build_tiny(["transformer"])["transformer"]
    settings = TrainSettings(rank=4, alpha=4, optimizer="adamw", lr=1e-2)
    named = add_lora(transformer, settings, seed=0)
    apply(transformer, p, "cpu", torch.float32)
    transformer.train()
    optimizer = make_optimizer([q for _, q in named], settings)
    g = torch.Generator().manual_seed(3)
    latents, captions = [torch.randn(16, 8, 8, generator=g)], [torch.randn(5, 16, generator=g)]
    losses = []
    for step in range(steps):
        loss = flow_loss(transformer, latents, captions, torch.Generator().manual_seed(step), "cpu", torch.float32)
        loss.backward()
        assert all(q.grad is not None for _, q in named)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses, {n: q.detach().clone() for n, q in named}, transformer


def test_checkpointing_and_block_offload_train_exactly_like_full() -> None:
    ref_losses, ref_lora, _ = _train(MemoryPlan("full", gradient_checkpointing=False))
    losses, lora, transformer = _train(MemoryPlan("low", gradient_checkpointing=True, block_offload=True))
    assert losses == ref_losses
    assert all(torch.equal(lora[n], ref_lora[n]) for n in ref_lora)  # LoRA updates inside blocks are kept
    block = transformer_blocks(transformer)[-1]
    hooks = block._forward_pre_hooks, block._forward_hooks
    assert all(len(h) == 1 for h in hooks)  # the block copies its frozen weights in and out around each run


def test_fp8_storage_trains_with_lora_in_full_precision() -> None:
    losses, lora, transformer = _train(MemoryPlan("balanced", gradient_checkpointing=True, fp8_storage=True), 6)
    base = transformer.layers[0].attention.to_q.base_layer.weight
    assert base.dtype == torch.float8_e4m3fn  # stored in fp8 between uses
    assert all(v.dtype == torch.float32 for v in lora.values())
    assert losses[-1] < losses[0] and all(v == v for v in losses)
