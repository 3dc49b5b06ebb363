"""Seconds per training step: the engine's loop against a plain diffusers loop (CPU, tiny model), and the full-size
Z-Image transformer on CUDA per memory mode (s/step, peak VRAM, MFU).

    python bench/train_step.py                       # CPU comparison; on a CUDA machine also the GPU table
    python bench/train_step.py --gpu-only --modes full,low --res 1024 --steps 5

CPU: a tiny project (128², batch 2, rank 16, Prodigy, no gradient checkpointing) trained by the engine's own
runner (`engine.train.run_job` through the foreground context, events and all) against a minimal loop of the same
maths written directly with diffusers + peft + prodigyopt; both report the median wall time between steps.
Goal: engine / plain ≤ 1.10.

CUDA: the transformer is built from the real Z-Image config with random weights (same compute and memory as the
released model, nothing downloaded); inputs are random latents and 128-token caption embeddings of the right
shapes, so neither the VAE nor the text encoder is needed. Each memory mode is applied with `engine.train_memory`
and stepped with `engine.train_step` (rank-32 LoRA, Prodigy, bf16 autocast). MFU counts the useful FLOPs of a LoRA
step (2 × forward; the recompute of gradient checkpointing is overhead) against the GPU's dense bf16 peak.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FULL_CONFIG = {  # Tongyi-MAI/Z-Image-Turbo transformer/config.json
    "all_patch_size": (2,), "all_f_patch_size": (1,), "in_channels": 16, "dim": 3840, "n_layers": 30,
    "n_refiner_layers": 2, "n_heads": 30, "n_kv_heads": 30, "norm_eps": 1e-5, "qk_norm": True,
    "cap_feat_dim": 2560, "rope_theta": 256.0, "t_scale": 1000.0, "axes_dims": [32, 48, 48],
    "axes_lens": [1536, 512, 512],
}
CAPTION_TOKENS = 128
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "H800": 989.0, "A100": 312.0, "L40S": 362.0, "4090": 165.0}


# --- CPU: engine loop vs plain loop ------------------------------------------------------------------------------

def _tiny_project(root: Path, steps: int) -> Any:
    from PIL import Image, ImageDraw

    from engine.project import init_project

    project = init_project(root, "mika", name="bench", base="tiny")
    for i in range(6):
        img = Image.new("RGB", (160, 128), ((40 * i) % 255, 90, 160))
        ImageDraw.Draw(img).ellipse((40, 20, 100 + 5 * i, 90), fill=(240, 200, 170))
        img.save(project.dataset_dir / f"img_{i}.png")
        (project.dataset_dir / f"img_{i}.txt").write_text(f"mika, a drawn character, pose {i}")
    project.update({"train.resolution": 128, "train.buckets": False, "train.batch_size": 2, "train.rank": 16,
                    "train.alpha": 8, "train.epochs": 1000, "train.max_steps": steps, "train.memory": "full",
                    "train.gradient_checkpointing": False, "train.checkpoint_every": 0,
                    "train.caption_dropout": 0.0, "validation.every_epochs": 0, "validation.prompts": ["x"],
                    "validation.size": 64, "model.training_adapter": "", "generate.steps": 1})
    return project


def engine_loop(steps: int) -> tuple[list[float], dict[str, Any]]:
    from engine.train_foreground import ForegroundContext, train_foreground

    with tempfile.TemporaryDirectory() as tmp:
        project = _tiny_project(Path(tmp) / "p", steps)
        stamps: list[float] = []
        captured: dict[str, Any] = {}

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "train.metric" or (kind == "loading" and data["stage"] == "ready"):
                stamps.append(time.perf_counter())

        ctx = ForegroundContext(project, {"run": "bench", "resume": False}, on_event, persist=False)
        train_foreground(ctx)
        from engine import train_cache, train_data

        settings = project.load()
        items = train_data.scan(project, settings)
        from engine.models import model_identity

        feats = train_cache.prepare(items, [], settings.model, model_identity(settings.model), project.cache_dir,
                                    False, "cpu", None, lambda *a: None)
        captured["latents"] = [feats.latents[(i, False)] for i in range(len(items))]
        captured["captions"] = [feats.text[i.caption] for i in items]
    return [b - a for a, b in itertools.pairwise(stamps)], captured


def plain_loop(steps: int, latents: list[Any], captions: list[Any]) -> list[float]:
    """The same training written as plainly as diffusers + peft + prodigyopt allow."""
    import torch
    from peft import LoraConfig
    from prodigyopt import Prodigy

    from engine.models import build_tiny

    transformer = build_tiny(["transformer"])["transformer"]  # the same weights the engine trains
    transformer.requires_grad_(False)
    transformer.add_adapter(LoraConfig(r=16, lora_alpha=8, target_modules=r"layers\.\d+\.(attention\.(to_q|to_k|"
                                                                            r"to_v|to_out\.0)|feed_forward\.w[123])"))
    params = [p for n, p in transformer.named_parameters() if "lora_" in n]
    for p in params:
        p.requires_grad_(True)
    with contextlib.redirect_stdout(io.StringIO()):  # Prodigy prints a note
        opt = Prodigy(params, lr=1.0, d0=0.05, weight_decay=0.01, safeguard_warmup=True)
    transformer.train()
    times = []
    last = time.perf_counter()
    for step in range(steps):
        idx = [(2 * step) % len(latents), (2 * step + 1) % len(latents)]
        x0 = [latents[i] for i in idx]
        u = torch.rand(2)
        sigma = 3 * u / (1 + 2 * u)
        noise = [torch.randn_like(x) for x in x0]
        noisy = [((1 - sigma[i]) * x0[i] + sigma[i] * noise[i]).unsqueeze(1) for i in range(2)]
        out = transformer(noisy, 1 - sigma, [captions[i] for i in idx], return_dict=False)[0]
        loss = torch.stack([torch.nn.functional.mse_loss(-o.squeeze(1), n - x)
                            for o, n, x in zip(out, noise, x0, strict=True)]).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        now = time.perf_counter()
        times.append(now - last)
        last = now
    return times


def cpu_bench(steps: int, rounds: int = 3) -> None:
    """Alternate the two loops `rounds` times (a shared CPU drifts) and keep each one's best median."""
    import torch

    print(f"CPU ({torch.get_num_threads()} threads), tiny model, 128², batch 2, rank 16, Prodigy, "
          f"{rounds} × {steps} steps each")
    skip = min(5, steps // 4)  # warm-up steps
    engine_medians, plain_medians = [], []
    for _ in range(rounds):
        engine_times, data = engine_loop(steps)
        plain_times = plain_loop(steps, data["latents"], data["captions"])
        engine_medians.append(statistics.median(engine_times[skip:]))
        plain_medians.append(statistics.median(plain_times[skip:]))
    e, p = min(engine_medians), min(plain_medians)
    print(f"  engine loop : {e * 1000:7.2f} ms/step (medians per round: "
          f"{', '.join(f'{m * 1000:.1f}' for m in engine_medians)})")
    print(f"  plain loop  : {p * 1000:7.2f} ms/step (medians per round: "
          f"{', '.join(f'{m * 1000:.1f}' for m in plain_medians)})")
    print(f"  ratio       : {e / p:5.3f} (goal ≤ 1.10)")


# --- CUDA: full-size transformer per memory mode ---------------------------------------------------------------

def forward_flops(width: int, height: int, cfg: dict[str, Any] = FULL_CONFIG) -> float:
    """Matmul FLOPs of one forward pass (linear layers + attention scores/values)."""
    dim, hidden = cfg["dim"], int(dim_hidden(cfg["dim"]))
    img = (width // 16) * (height // 16)
    cap = -(-CAPTION_TOKENS // 32) * 32  # captions are padded to a multiple of 32
    per_token = 2 * (4 * dim * dim + 3 * dim * hidden + 256 * 4 * dim)  # attention, SwiGLU, adaLN

    def block(tokens: int) -> float:
        return tokens * per_token + 4 * tokens * tokens * dim

    n_ref = cfg["n_refiner_layers"]
    return cfg["n_layers"] * block(img + cap) + n_ref * (block(img) + block(cap))


def dim_hidden(dim: int) -> float:
    return int(dim / 3 * 8)  # diffusers' FeedForward(dim, int(dim / 3 * 8)) in ZImageTransformerBlock


def peak_tflops(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def build_full(device: str) -> Any:
    import torch
    from diffusers import ZImageTransformer2DModel

    torch.manual_seed(0)
    with torch.device(device):
        model = ZImageTransformer2DModel(**FULL_CONFIG)
    return model.to(torch.bfloat16)


def gpu_mode(mode: str, resolutions: list[int], steps: int, warmup: int, rank: int) -> list[dict[str, Any]]:
    import torch

    from engine import train_memory
    from engine.project import TrainSettings
    from engine.train_step import add_lora, flow_loss, make_optimizer

    t0 = time.perf_counter()
    model = build_full("cuda")
    memory, _, extra = mode.partition("+")  # "full+ckpt": mode full with train.gradient_checkpointing on
    if memory == "low":  # the engine loads on the CPU; low mode keeps the blocks there
        model.to("cpu")
        torch.cuda.empty_cache()
    settings = TrainSettings(rank=rank, alpha=rank / 2, memory=memory, gradient_checkpointing=extra == "ckpt")
    named = add_lora(model, settings, seed=0)
    params = [p for _, p in named]
    plan = train_memory.plan(settings, "cuda")
    train_memory.apply(model, plan, "cuda", torch.bfloat16)
    model.train()
    opt = make_optimizer(params, settings)
    build_s = time.perf_counter() - t0
    rows = []
    for res in resolutions:
        gen = torch.Generator().manual_seed(res)
        latents = [torch.randn(16, res // 8, res // 8, generator=gen)]
        captions = [torch.randn(CAPTION_TOKENS, FULL_CONFIG["cap_feat_dim"], generator=gen) * 0.5]
        row: dict[str, Any] = {"mode": mode, "res": res, "knobs": plan.describe().split(": ", 1)[1]}
        try:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            times = []
            for i in range(warmup + steps):
                start = time.perf_counter()
                loss = flow_loss(model, latents, captions, gen, "cuda", torch.bfloat16)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)
                torch.cuda.synchronize()
                if i >= warmup:
                    times.append(time.perf_counter() - start)
            row["s_step"] = statistics.median(times)
            row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
            row["loss"] = loss.item()
        except torch.OutOfMemoryError:
            row["error"] = "out of memory"
        except Exception as exc:  # report and go on with the next mode
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        rows.append(row)
        print(f"  {mode:8s} {res:5d}²  " + (f"{row['s_step']:.3f} s/step, peak {row['peak_gib']:.1f} GiB"
                                          if "s_step" in row else row["error"]) + f"  (built in {build_s:.0f} s)",
              flush=True)
    del model, opt, params, named
    gc.collect()
    torch.cuda.empty_cache()
    return rows


def gpu_check(modes: list[str], steps: int = 8) -> None:
    """Each mode must train: on a 4-layer full-width model with a fixed batch, the loss falls, every LoRA weight
    gets a gradient, and the LoRA after `steps` AdamW steps is close to the one trained in mode full."""
    import torch
    from diffusers import ZImageTransformer2DModel

    from engine import train_memory
    from engine.project import TrainSettings
    from engine.train_step import add_lora, flow_loss, make_optimizer

    cfg = {**FULL_CONFIG, "n_layers": 4, "n_refiner_layers": 1}
    print(f"check: 4-layer full-width model, 512², fixed batch, AdamW, {steps} steps per mode")
    trained: dict[str, dict[str, Any]] = {}
    for mode in modes:
        torch.manual_seed(0)
        with torch.device("cuda"):
            model = ZImageTransformer2DModel(**cfg)
        model = model.to(torch.bfloat16).to("cpu")
        settings = TrainSettings(rank=16, alpha=16, memory=mode, gradient_checkpointing=False, optimizer="adamw",
                                 lr=1e-3)
        named = add_lora(model, settings, seed=0)
        params = [p for _, p in named]
        train_memory.apply(model, train_memory.plan(settings, "cuda"), "cuda", torch.bfloat16)
        model.train()
        opt = make_optimizer(params, settings)
        gen = torch.Generator().manual_seed(1)
        latents = [torch.randn(16, 64, 64, generator=gen)]
        captions = [torch.randn(CAPTION_TOKENS, cfg["cap_feat_dim"], generator=gen) * 0.5]
        losses, missing = [], 0
        for _ in range(steps):
            loss = flow_loss(model, latents, captions, torch.Generator().manual_seed(2), "cuda", torch.bfloat16)
            loss.backward()
            missing = max(missing, sum(p.grad is None for p in params))
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
        trained[mode] = {n: p.detach().float().cpu() for n, p in named}
        ref = trained.get("full")
        drift = max(((trained[mode][n] - ref[n]).norm() / ref[n].norm()).item() for n in ref) if ref else 0.0
        ok = losses[-1] < losses[0] and missing == 0 and drift < 0.1
        print(f"  {mode:8s} loss {losses[0]:.4f} → {losses[-1]:.4f}, LoRA weights without a gradient: {missing}, "
              f"LoRA vs full: {drift:.3f}  {'ok' if ok else 'FAILED'}", flush=True)
        del model, opt, params, named
        gc.collect()
        torch.cuda.empty_cache()


def gpu_bench(modes: list[str], resolutions: list[int], steps: int, warmup: int, rank: int) -> None:
    import torch

    name = torch.cuda.get_device_name()
    peak = peak_tflops(name)
    print(f"CUDA: {name}, torch {torch.__version__}; full-size Z-Image transformer (random weights), batch 1, "
          f"{CAPTION_TOKENS} caption tokens, rank {rank}, Prodigy, bf16; median of {steps} steps after {warmup}")
    rows = []
    for mode in modes:
        rows += gpu_mode(mode, resolutions, steps, warmup, rank)
    print()
    print("| mode | resolution | s/step | peak VRAM (GiB) | MFU | what the mode does |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "s_step" not in r:
            print(f"| {r['mode']} | {r['res']}² | {r['error']} | | | {r['knobs']} |")
            continue
        flops = 2 * forward_flops(r["res"], r["res"])
        mfu = f"{flops / r['s_step'] / (peak * 1e12) * 100:.0f} %" if peak else "n/a"
        print(f"| {r['mode']} | {r['res']}² | {r['s_step']:.3f} | {r['peak_gib']:.1f} | {mfu} | {r['knobs']} |")
    if peak:
        print(f"(MFU: 2 × forward FLOPs per step against {peak:.0f} TFLOP/s dense bf16)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu-only", action="store_true")
    ap.add_argument("--gpu-only", action="store_true")
    ap.add_argument("--cpu-steps", type=int, default=40, help="steps per round (3 rounds per loop)")
    ap.add_argument("--modes", default="full,full+ckpt,balanced,low",
                    help="comma-separated memory modes (full+ckpt: full with gradient checkpointing)")
    ap.add_argument("--res", default="512,1024", help="comma-separated square resolutions")
    ap.add_argument("--steps", type=int, default=5, help="timed GPU steps per case")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--check", action="store_true", help="on CUDA, first check that each memory mode trains")
    args = ap.parse_args()
    import torch

    if not args.gpu_only:
        cpu_bench(args.cpu_steps)
    if not args.cpu_only:
        if not torch.cuda.is_available():
            print("CUDA: not available; the GPU table needs a CUDA machine")
        else:
            if args.check:
                gpu_check([m for m in args.modes.split(",") if "+" not in m])
            gpu_bench(args.modes.split(","), [int(r) for r in args.res.split(",")], args.steps, args.warmup,
                      args.rank)
    return 0


if __name__ == "__main__":
    sys.exit(main())
