"""The flow-matching training step of Z-Image (see shared ZIMAGE.md), the LoRA targets and the optimizer.

x0 are VAE latents (already shifted and scaled); σ comes from a shifted uniform (s = 3); x_σ = (1−σ)·x0 + σ·ε; the
transformer gets t = 1 − σ and list inputs; prediction = −output; target = ε − x0; loss = MSE. All randomness of a
micro-batch comes from one CPU generator seeded by (run seed, micro-batch index), so a resumed run draws exactly
what an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from typing import Any

from engine.project import TrainSettings

ADAPTER = "zchar"
TIMESTEP_SHIFT = 3.0
_LAYER_TARGETS = r"attention\.(to_q|to_k|to_v|to_out\.0)|feed_forward\.(w1|w2|w3)"


def target_modules(train_refiners: bool) -> str:
    """peft target regex (full match): attention q/k/v/out and SwiGLU w1/w2/w3 of the main layers (+ refiners)."""
    blocks = "layers|noise_refiner|context_refiner" if train_refiners else "layers"
    return rf"({blocks})\.\d+\.({_LAYER_TARGETS})"


def add_lora(transformer: Any, train: TrainSettings, seed: int) -> list[tuple[str, Any]]:
    """Add the trainable LoRA (A seeded, B zero) with the base frozen; returns its (name, parameter) pairs sorted."""
    import torch
    from peft import LoraConfig

    transformer.requires_grad_(False)
    config = LoraConfig(r=train.rank, lora_alpha=train.alpha, target_modules=target_modules(train.train_refiners),
                        init_lora_weights=True)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")  # the training adapter's
        torch.manual_seed(seed)
        transformer.add_adapter(config, adapter_name=ADAPTER)
    params = []
    for name, p in transformer.named_parameters():
        trainable = f".{ADAPTER}." in name  # any other adapter (the Turbo training adapter) stays frozen
        p.requires_grad_(trainable)
        if trainable:
            p.data = p.data.float()  # LoRA weights train in fp32 whatever the base dtype
            params.append((name, p))
    return sorted(params, key=lambda np: np[0])


def make_optimizer(params: Sequence[Any], train: TrainSettings) -> Any:
    import torch

    if train.optimizer == "prodigy":
        from prodigyopt import Prodigy

        with contextlib.redirect_stdout(io.StringIO()):  # it prints a note about weight decay
            return Prodigy(params, lr=train.lr, d0=train.d0, weight_decay=train.weight_decay,
                           safeguard_warmup=train.safeguard_warmup, use_bias_correction=train.bias_correction)
    return torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay)


def effective_lr(optimizer: Any) -> float:
    """The step size actually applied: lr × d for Prodigy, lr for AdamW."""
    group = optimizer.param_groups[0]
    return float(group["lr"]) * float(group.get("d", 1.0))


def sigmas(u: Any, shift: float = TIMESTEP_SHIFT) -> Any:
    """Shifted-uniform noise levels: σ = s·u / (1 + (s−1)·u)."""
    return shift * u / (1 + (shift - 1) * u)


def flow_loss(transformer: Any, latents: Sequence[Any], captions: Sequence[Any], generator: Any,
              device: str, dtype: Any) -> Any:
    """Mean flow-matching MSE of one micro-batch. `latents` (C, H, W) and `captions` (L, D) are per-sample lists.

    `dtype` is the compute dtype: bf16 runs under autocast on CUDA (LoRA weights stay fp32); fp32 runs plainly.
    """
    import torch

    n = len(latents)
    u = torch.rand(n, generator=generator)
    sig = sigmas(u)
    noise = [torch.randn(x.shape, generator=generator) for x in latents]
    x0 = [x.to(device, torch.float32) for x in latents]
    eps = [e.to(device) for e in noise]
    s = sig.to(device)
    noisy = [((1 - s[i]) * x0[i] + s[i] * eps[i]).unsqueeze(1) for i in range(n)]
    use_autocast = device.startswith("cuda") and dtype != torch.float32
    ctx = torch.autocast("cuda", dtype=dtype) if use_autocast else contextlib.nullcontext()
    with ctx:
        out = transformer([x.to(dtype) for x in noisy], (1 - s).to(dtype),
                          [c.to(device, dtype) for c in captions], return_dict=False)[0]
    losses = [torch.nn.functional.mse_loss(-o.squeeze(1).float(), eps[i] - x0[i]) for i, o in enumerate(out)]
    return torch.stack(losses).mean()
