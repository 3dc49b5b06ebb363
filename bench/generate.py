"""Generation benchmarks; prints figures.

    python bench/generate.py            # both parts (the CUDA part only where torch sees a GPU)
    python bench/generate.py --cpu      # tiny model: the engine's generate() against a plain diffusers call
    python bench/generate.py --cuda     # full-size random-weight transformer at 1024², 8 steps: base, LoRA, fused

Part 1 (goal ≤ 1.05×): per-image time of the tiny model through `engine.generate.generate` (the function the
`gen` job runs: LoRA-stack check, cached prompt embeddings, step callback) against `ZImagePipeline.__call__` with
the same components, interleaved, median of N. Part 2: a transformer built from Z-Image Turbo's real config with
random weights (real compute and memory; no download), random prompt embeddings in place of the text encoder,
a random-weight VAE of the real architecture; 8 steps at 1024² with no LoRA, a rank-32 LoRA applied through
`set_adapters`, and the same LoRA fused — plus what fusing and unfusing cost and how far unfusing drifts in bf16.
Needs only torch, diffusers, transformers, peft, safetensors and Pillow; runs from the repository root.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROJECT_TOML = """name = "bench"
trigger = "mika"
[model]
base = "tiny"
device = "{device}"
[generate]
width = {size}
height = {size}
steps = {steps}
"""


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def tiny_overhead(device: str, size: int, steps: int, n: int) -> None:
    import torch

    from engine import generate, models
    from engine.jobs import validate_gen
    from engine.project import Project

    root = Path(tempfile.mkdtemp(prefix="zchar-bench-"))
    (root / "project.toml").write_text(PROJECT_TOML.format(device=device, size=size, steps=steps))
    project = Project(root)
    project.ensure_dirs()
    settings = project.load()
    loaded = generate.load_pipeline(settings)
    plain = models.pipeline_from_components(models.build_tiny()).to(device)
    plain.set_progress_bar_config(disable=True)
    prompt = "mika, young woman, red dress, park, smiling, 35mm photo"
    params = validate_gen(project, settings, {"prompt": prompt, "seed": 1})[0][0]

    # A new prompt every image: the engine's prompt-embedding cache must not flatter it against the plain call.
    def run_engine(seed: int) -> None:
        generate.generate(loaded, project, settings, {**params, "prompt": f"{prompt}, take {seed}", "seed": seed},
                          on_step=lambda i, t: None)

    def run_plain(seed: int) -> None:
        plain(f"{prompt}, take {seed}", height=size, width=size, num_inference_steps=steps, guidance_scale=0.0,
              generator=torch.Generator("cpu").manual_seed(seed))

    times: dict[str, list[float]] = {"engine": [], "plain": []}
    for i in range(n + 2):
        for name, fn in (("engine", run_engine), ("plain", run_plain)) if i % 2 else (
                ("plain", run_plain), ("engine", run_engine)):
            _sync(device)
            t = time.perf_counter()
            fn(i)
            _sync(device)
            if i >= 2:  # two warm-up rounds
                times[name].append(time.perf_counter() - t)
    e, p = statistics.median(times["engine"]), statistics.median(times["plain"])
    print(f"tiny model on {device}, {size}x{size}, {steps} steps, median of {n}:")
    print(f"  plain diffusers call     {1000 * p:8.1f} ms/image")
    print(f"  engine generate()        {1000 * e:8.1f} ms/image   ratio {e / p:.3f}x (goal <= 1.05x)")
    generate.release()


def _full_transformer(device: str) -> Any:
    import torch
    from diffusers import ZImageTransformer2DModel

    torch.manual_seed(0)
    with torch.device(device):  # initialise on the GPU: seconds instead of minutes for 6 B parameters
        model = ZImageTransformer2DModel(axes_lens=[1536, 512, 512])
    return model.to(torch.bfloat16).eval()


def _real_vae(device: str) -> Any:
    import torch
    from diffusers import AutoencoderKL

    with torch.device(device):
        vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
                            up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[128, 256, 512, 512],
                            layers_per_block=2, latent_channels=16, norm_num_groups=32, scaling_factor=0.3611,
                            shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False)
    return vae.to(torch.bfloat16).eval()


def full_size(device: str, n: int, rank: int, smoke: bool = False) -> None:
    """`smoke`: the same code with the tiny model on the CPU at 64², to check this script without a GPU."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline
    from peft import LoraConfig

    from engine.models import build_tiny

    t = time.perf_counter()
    tiny = build_tiny(["vae", "transformer"]) if smoke else {}
    transformer = tiny["transformer"] if smoke else _full_transformer(device)
    params = sum(p.numel() for p in transformer.parameters())
    pipe = ZImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0),
                          vae=tiny["vae"] if smoke else _real_vae(device), text_encoder=None, tokenizer=None,
                          transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    where = "the CPU (smoke test)" if smoke else torch.cuda.get_device_name(device)
    print(f"transformer: {params / 1e9:.3f} B parameters, built in {time.perf_counter() - t:.1f} s on {where}")
    side, dtype = (64, torch.float32) if smoke else (1024, torch.bfloat16)
    gen = torch.Generator(device).manual_seed(0)
    embeds = [torch.randn(128, transformer.config.cap_feat_dim, generator=gen, device=device, dtype=dtype)]

    def image(seed: int) -> Any:
        return pipe(prompt_embeds=embeds, height=side, width=side, num_inference_steps=8, guidance_scale=0.0,
                    generator=torch.Generator("cpu").manual_seed(seed), output_type="pt").images

    def timed(label: str) -> float:
        image(0)  # warm-up
        runs = []
        for i in range(n):
            _sync(device)
            t = time.perf_counter()
            image(i)
            _sync(device)
            runs.append(time.perf_counter() - t)
        med = statistics.median(runs)
        print(f"  {label:34s} {med:6.3f} s/image (median of {n}; min {min(runs):.3f})")
        return med

    print(f"{side}x{side}, 8 steps, {str(dtype).removeprefix('torch.')}, guidance 0:")
    base = timed("no LoRA")
    targets = ["to_q", "to_k", "to_v", "to_out.0", "feed_forward.w1", "feed_forward.w2", "feed_forward.w3"]
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank / 2, target_modules=targets,
                                       init_lora_weights="gaussian"), adapter_name="char")
    with torch.no_grad():
        for name, p in transformer.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.01)
    pipe.set_adapters(["char"], adapter_weights=[0.8])
    unfused = timed(f"rank-{rank} LoRA via set_adapters")
    probe = dict(transformer.named_parameters())["layers.1.attention.to_q.base_layer.weight"]
    before = probe.detach().clone()
    _sync(device)
    t = time.perf_counter()
    pipe.fuse_lora(components=["transformer"], lora_scale=1.0, adapter_names=["char"])
    _sync(device)
    fuse_s = time.perf_counter() - t
    fused = timed(f"rank-{rank} LoRA fused")
    t = time.perf_counter()
    pipe.unfuse_lora(components=["transformer"])
    _sync(device)
    unfuse_s = time.perf_counter() - t
    drift = (probe.detach().float() - before.float()).abs()
    saved = unfused - fused
    payback = f"pays back after {fuse_s / saved:.1f} images" if saved > 0 else "does not pay"
    print(f"  fuse_lora {fuse_s:.2f} s, unfuse_lora {unfuse_s:.2f} s; LoRA overhead unfused "
          f"{100 * (unfused / base - 1):+.1f}%, fused {100 * (fused / base - 1):+.1f}%; fusing saves "
          f"{saved:.3f} s/image and {payback}")
    print(f"  drift of the base weights after fuse+unfuse (layers.1 to_q): max {drift.max().item():.2e}, "
          f"{100 * (drift > 0).float().mean().item():.1f}% of them changed")
    if not smoke:
        print(f"  peak CUDA memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu", action="store_true", help="only the tiny-model overhead on the CPU")
    ap.add_argument("--cuda", action="store_true", help="only the CUDA parts")
    ap.add_argument("-n", type=int, default=10, help="timed images per variant (default 10; 5 at full size)")
    ap.add_argument("--size", type=int, default=256, help="tiny-model image side (default 256)")
    ap.add_argument("--steps", type=int, default=8, help="tiny-model steps (default 8)")
    ap.add_argument("--rank", type=int, default=32, help="LoRA rank at full size (default 32)")
    ap.add_argument("--smoke", action="store_true", help="run the full-size code with the tiny model on the CPU")
    args = ap.parse_args()
    import torch

    if args.smoke:
        full_size("cpu", 2, 4, smoke=True)
        return 0
    both = not args.cpu and not args.cuda
    if args.cpu or both:
        torch.set_num_threads(max(1, torch.get_num_threads()))
        tiny_overhead("cpu", args.size, args.steps, args.n)
    if args.cuda or both:
        if not torch.cuda.is_available():
            print("CUDA part skipped: torch sees no GPU")
            return 0 if both else 1
        tiny_overhead("cuda", args.size, args.steps, args.n)
        full_size("cuda", max(3, args.n // 2), args.rank)
    return 0


if __name__ == "__main__":
    sys.exit(main())
