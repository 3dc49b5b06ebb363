"""Generation jobs: text-to-image and reference img2img with a LoRA stack (`gen`), and comparison grids (`grid`).

The pipeline stays loaded between jobs (one module-level cache keyed by model identity, device, dtype and memory
mode); `release()` frees it, and the training job calls it before loading its own model. A LoRA stack is applied
with `set_adapters` and touched only when the next job's stack differs; on CUDA a stack that a batch of several
jobs shares is fused into the weights (see bench/generate.py for the figures). Every PNG carries its parameters
(engine/pngmeta.py), and those parameters regenerate the same image.

torch and diffusers are imported inside functions: this module runs in the engine's worker thread.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import __version__, pngmeta, protocol
from engine.errors import JobFailed, is_oom
from engine.image_io import ImageReadError, open_rgb
from engine.lora_io import file_hash, load_into_pipeline
from engine.project import Project, ProjectError, Settings

log = logging.getLogger("zchar.generate")

MAX_ADAPTERS = 6  # LoRAs kept loaded (inactive) so that switching back to one costs no reload
# On CUDA, fuse a stack when at least this many jobs of a batch (this one included) share it; None: never fuse.
# Off by default: unfusing in bf16 leaves the base weights off by an ulp here and there, so after a fused batch an
# image's embedded parameters would no longer reproduce it exactly; bench/generate.py measures the gain and the
# drift on a GPU — turn it on where the gain is worth that.
FUSE_MIN_JOBS: int | None = None
EMBED_CACHE = 16  # prompt embeddings kept (a matrix or grid encodes each prompt once)
SCHEDULER = "FlowMatchEulerDiscrete"

StepFn = Callable[[int, int], None]  # (step done, steps in all)


@dataclass
class Loaded:
    """The cached pipeline and what is applied to it."""

    key: tuple[Any, ...]
    pipe: Any  # ZImagePipeline
    device: str
    img2img: Any = None  # ZImageImg2ImgPipeline over the same components, built on first use
    adapters: dict[str, str] = field(default_factory=dict)  # adapter name -> LoRA path, least recently used first
    stack: tuple[tuple[str, float], ...] | None = ()  # (adapter, strength) pairs set active; None: must be set
    fused: tuple[tuple[str, float], ...] | None = None  # the stack merged into the weights, if any
    embeds: dict[tuple[str, str | None], Any] = field(default_factory=dict)


_loaded: Loaded | None = None


def release() -> None:
    """Drop the cached pipeline and free its memory. Training calls this before it loads its own model."""
    global _loaded
    if _loaded is None:
        return
    _loaded = None
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def load_pipeline(settings: Settings, loading: Callable[[str, float, float, str], None] | None = None) -> Loaded:
    """The pipeline for these settings: the cached one when nothing that matters changed, else a fresh load."""
    global _loaded
    from engine import models

    device = models.pick_device(settings.model.device)
    dtype = models.pick_dtype(settings.model.dtype, device)
    g = settings.generate
    memory = g.memory if device.startswith("cuda") else "none"  # offloading to the CPU from the CPU means nothing
    key = (models.model_identity(settings.model), device, str(dtype), memory, g.vae_tiling)
    if _loaded is not None and _loaded.key == key:
        return _loaded
    release()
    pipe = models.pipeline_from_components(models.load_components(settings.model, dtype=dtype, progress=loading))
    pipe.set_progress_bar_config(disable=True)
    if memory == "model_offload":
        pipe.enable_model_cpu_offload(device=device)
    elif memory == "sequential_offload":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
    if g.vae_tiling:
        pipe.vae.enable_tiling()
    _loaded = Loaded(key, pipe, device)
    return _loaded


# --- the LoRA stack -------------------------------------------------------------------------------------------

def apply_loras(loaded: Loaded, project: Project, loras: list[dict[str, Any]], fuse: bool = False
                ) -> list[dict[str, Any]]:
    """Make `loras` ([{path, strength}]) the active stack; returns their metadata {path, name, hash, strength}."""
    pipe = loaded.pipe
    entries: dict[str, dict[str, Any]] = {}  # adapter -> entry; the same file twice adds its strengths
    paths: dict[str, Path] = {}  # adapter -> resolved file
    for lo in loras:
        path = _inside(project, lo["path"], "LoRA")
        if not path.is_file():
            raise JobFailed(f"LoRA {lo['path']} is gone (moved or deleted after the job was queued)")
        digest = file_hash(path)
        paths[f"h{digest}"] = path
        e = entries.setdefault(f"h{digest}", {"path": lo["path"], "name": path.stem, "hash": digest, "strength": 0.0})
        e["strength"] += float(lo["strength"])
    wanted = tuple((a, e["strength"]) for a, e in entries.items())
    if loaded.fused is not None and loaded.fused != wanted:
        pipe.unfuse_lora(components=["transformer"])
        loaded.fused, loaded.stack = None, None
    for adapter, e in entries.items():
        if adapter in loaded.adapters:
            loaded.adapters[adapter] = loaded.adapters.pop(adapter)  # most recently used goes last
        else:
            load_into_pipeline(pipe, paths[adapter], adapter)
            loaded.adapters[adapter] = e["path"]
            loaded.stack = None
    for old in [a for a in loaded.adapters if a not in entries][: max(0, len(loaded.adapters) - MAX_ADAPTERS)]:
        pipe.delete_adapters(old)
        del loaded.adapters[old]
        loaded.stack = None
    if wanted != loaded.stack:
        if wanted:
            pipe.enable_lora()
            pipe.set_adapters([a for a, _ in wanted], adapter_weights=[s for _, s in wanted])
        elif loaded.adapters:
            pipe.disable_lora()
        loaded.stack = wanted
    if fuse and wanted and loaded.fused is None:
        pipe.fuse_lora(components=["transformer"], lora_scale=1.0, adapter_names=[a for a, _ in wanted])
        loaded.fused = wanted
    return list(entries.values())


def _inside(project: Project, rel: str, what: str) -> Path:
    """A path from the job's parameters, still inside the project (a symlink may have changed since the submit)."""
    try:
        return project.inside(rel)
    except ProjectError:
        raise JobFailed(f"{what} {rel} now points outside the project folder; copy the file in instead") from None


# --- one image ------------------------------------------------------------------------------------------------

def reference_image(project: Project, refs: list[str], width: int, height: int) -> Any:
    """The img2img start image: each reference fitted (resized, centre-cropped) to the target size.

    Several references are blended as an equal-weight pixel average; the denoiser redraws the details at the
    reference strength, so the blend passes on what the references share (face, hair, colours) more than what
    differs (pose, background).
    """
    import numpy as np
    from PIL import Image, ImageOps

    fitted = []
    for ref in refs:
        path = _inside(project, ref, "reference image")
        if not path.is_file():
            raise JobFailed(f"reference image {ref} is gone (moved or deleted after the job was queued)")
        try:
            rgb = open_rgb(path).image  # any image a user may drop in: one sentence for each way it can be bad
        except ImageReadError as exc:
            raise JobFailed(f"reference image {ref} cannot be read: {exc}") from None
        fitted.append(ImageOps.fit(rgb, (width, height), Image.Resampling.LANCZOS))
    if len(fitted) == 1:
        return fitted[0]
    mean = np.mean([np.asarray(im, dtype=np.float32) for im in fitted], axis=0)
    return Image.fromarray(mean.round().astype(np.uint8))


def _embeddings(loaded: Loaded, prompt: str, negative: str, cfg: bool) -> tuple[Any, Any]:
    key = (prompt, negative if cfg else None)
    if key not in loaded.embeds:
        if len(loaded.embeds) >= EMBED_CACHE:
            loaded.embeds.pop(next(iter(loaded.embeds)))
        loaded.embeds[key] = loaded.pipe.encode_prompt(prompt=prompt, negative_prompt=negative or None,
                                                       do_classifier_free_guidance=cfg,
                                                       device=loaded.pipe._execution_device)
    return loaded.embeds[key]


def generate(loaded: Loaded, project: Project, settings: Settings, params: dict[str, Any],
             on_step: StepFn | None = None, fuse: bool = False) -> tuple[Any, dict[str, Any]]:
    """One image for validated job parameters; returns (PIL image, the metadata that regenerates it)."""
    import torch

    loras = apply_loras(loaded, project, params.get("loras") or [], fuse=fuse)
    refs = list(params.get("references") or [])
    w, h, guidance = params["width"], params["height"], float(params["guidance"])
    prompt_embeds, negative_embeds = _embeddings(loaded, params["prompt"], params.get("negative_prompt", ""),
                                                 guidance > 0)

    def step_end(pipe: Any, i: int, t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        if on_step is not None:
            on_step(i + 1, pipe.num_timesteps)
        return {}

    common = {
        "prompt_embeds": prompt_embeds, "negative_prompt_embeds": negative_embeds, "height": h, "width": w,
        "num_inference_steps": params["steps"], "guidance_scale": guidance,
        # A CPU generator draws the same noise on any device: the seed alone fixes the image.
        "generator": torch.Generator("cpu").manual_seed(int(params["seed"])),
        "callback_on_step_end": step_end,
    }
    with torch.inference_mode():
        if refs:
            if loaded.img2img is None:
                from diffusers import ZImageImg2ImgPipeline

                loaded.img2img = ZImageImg2ImgPipeline(**loaded.pipe.components)
                loaded.img2img.set_progress_bar_config(disable=True)
            image = loaded.img2img(image=reference_image(project, refs, w, h),
                                   strength=float(params["reference_strength"]), **common).images[0]
        else:
            image = loaded.pipe(**common).images[0]
    meta = {
        "prompt": params["prompt"], "negative_prompt": params.get("negative_prompt", ""),
        "seed": int(params["seed"]), "width": w, "height": h, "steps": params["steps"], "guidance": guidance,
        "base_model": settings.model.base, "transformer_file": settings.model.transformer_file,
        "scheduler": SCHEDULER, "loras": loras,
        "references": [{"path": r, "hash": file_hash(project.inside(r))} for r in refs],
        "reference_strength": float(params["reference_strength"]) if refs else None,
        "zchar_version": __version__,
    }
    if params.get("template"):
        meta["template"] = params["template"]
    return image, meta


# --- jobs -----------------------------------------------------------------------------------------------------

def oom_advice(settings: Settings, width: int, height: int) -> str:
    g = settings.generate
    tips = {"none": 'generate.memory = "model_offload"', "model_offload": 'generate.memory = "sequential_offload"'}
    steps = [tips[g.memory]] if g.memory in tips else []
    if not g.vae_tiling:
        steps.append("generate.vae_tiling = true")
    steps.append("a smaller size")
    return f"CUDA ran out of memory generating {width}x{height}; try {', or '.join(steps)}"


def _output_path(project: Project, job: dict[str, Any], name: str, matches: Callable[[dict[str, Any]], bool]
                 ) -> tuple[Path, bool]:
    """outputs/DATE/NAME.png (DATE of the job's creation, so a re-run looks in the same folder).

    Returns (path, already_written): a file there whose embedded parameters match this job was written just
    before a crash and is kept; any other file there is never overwritten.
    """
    day = time.strftime("%Y-%m-%d", time.localtime(job.get("created") or time.time()))
    folder = project.outputs_dir / day
    for n in range(1, 1000):
        path = folder / (f"{name}.png" if n == 1 else f"{name}-{n}.png")
        if not path.exists():
            return path, False
        meta = pngmeta.read_meta(path)
        if meta is not None and meta.get("job_id") == job["id"] and matches(meta):
            return path, True
    raise JobFailed(f"{folder} holds 999 files named {name}; move some away")


class _Progress:
    """Step reports for the queue: cancel is honoured at each step; ETA from the time per step so far."""

    def __init__(self, ctx: Any, total: int, what: str):
        self.ctx, self.total, self.what = ctx, total, what
        self.done = 0
        self.started = time.monotonic()

    def step(self, n: int = 1) -> None:
        self.ctx.check_cancel()
        self.done += n
        rate = (time.monotonic() - self.started) / self.done
        self.ctx.progress(self.done, self.total, f"{self.what} step {self.done}/{self.total}",
                          rate * (self.total - self.done))


def _finish(ctx: Any, path: Path, image: Any, meta: dict[str, Any], write: bool) -> dict[str, Any]:
    if write:
        pngmeta.write_png(path, image, meta)
    rel = str(path.relative_to(ctx.project.root))
    ctx.emit(protocol.EV_RESULT, {"job_id": ctx.job_id, "index": ctx.params.get("index", 0),
                                  "seed": meta["seed"], "path": rel, "params": meta})
    return {"path": rel, "seed": meta["seed"], "message": f"wrote {rel}"}


def _already_done(ctx: Any) -> dict[str, Any] | None:
    """A job re-run after a crash whose image was already recorded: keep it, generate nothing."""
    for r in ctx.previous_results:
        if (ctx.project.root / r["path"]).is_file():
            return {"path": r["path"], "seed": r["seed"], "message": f"kept {r['path']} (made before the restart)"}
    return None


def _run(ctx: Any, name: str, matches: Callable[[dict[str, Any]], bool],
         make: Callable[[Settings, Loaded], tuple[Any, dict[str, Any]]]) -> dict[str, Any]:
    """What a `gen` and a `grid` job share: skip work a crash left done, load the pipeline, `make` the image (an
    out-of-memory error becomes advice), write it."""
    done = _already_done(ctx)
    if done:
        return done
    settings = ctx.project.load()
    path, written = _output_path(ctx.project, ctx.job, name, matches)
    if written:
        return _finish(ctx, path, None, pngmeta.read_meta(path) or {}, write=False)
    loaded = load_pipeline(settings, ctx.loading)
    ctx.check_cancel()
    try:
        image, meta = make(settings, loaded)
    except Exception as exc:
        if is_oom(exc):
            gc.collect()
            raise JobFailed(oom_advice(settings, ctx.params["width"], ctx.params["height"])) from None
        raise
    meta["job_id"] = ctx.job_id
    return _finish(ctx, path, image, meta, write=True)


def run_job(ctx: Any) -> dict[str, Any]:
    """A `gen` job: one image."""
    p = ctx.params

    def make(settings: Settings, loaded: Loaded) -> tuple[Any, dict[str, Any]]:
        progress = _Progress(ctx, p["steps"], "image")

        def on_step(i: int, total: int) -> None:
            progress.total = total  # img2img runs fewer steps than asked (strength × steps)
            progress.step()

        fuse = (FUSE_MIN_JOBS is not None and loaded.device.startswith("cuda")
                and p.get("count", 1) - p.get("index", 0) >= FUSE_MIN_JOBS)
        return generate(loaded, ctx.project, settings, p, on_step, fuse=fuse)

    return _run(ctx, f"{ctx.job_id:05d}-{p['seed']}",
                lambda m: m.get("seed") == p["seed"] and m.get("prompt") == p["prompt"], make)


def run_grid(ctx: Any) -> dict[str, Any]:
    """A `grid` job: every LoRA (row) at every strength (column), same prompt and seed, as one labelled PNG."""
    from engine.grid import contact_sheet, lora_label

    p = ctx.params

    def make(settings: Settings, loaded: Loaded) -> tuple[Any, dict[str, Any]]:
        cells_n = len(p["loras"]) * len(p["strengths"])
        progress = _Progress(ctx, cells_n * p["steps"], "grid")
        rows, rows_meta = [], []
        for r, lora in enumerate(p["loras"]):
            row = []
            for c, strength in enumerate(p["strengths"]):
                progress.what = f"grid image {r * len(p['strengths']) + c + 1}/{cells_n},"
                cell = {**p, "loras": [{"path": lora, "strength": strength}], "references": []}
                image, meta = generate(loaded, ctx.project, settings, cell, lambda i, t: progress.step())
                row.append(image)
            rows.append(row)
            rows_meta.append({k: meta["loras"][0][k] for k in ("path", "name", "hash")})
        title = f"{p['prompt']}  ·  seed {p['seed']}  ·  {p['width']}x{p['height']}  ·  {p['steps']} steps"
        sheet = contact_sheet(rows, [lora_label(m["path"]) for m in rows_meta],
                              [f"strength {s:g}" for s in p["strengths"]], title)
        meta = {**{k: v for k, v in meta.items() if k not in ("loras", "references", "reference_strength")},
                "loras": [], "references": [], "grid": {"rows": rows_meta, "strengths": p["strengths"]}}
        return sheet, meta

    return _run(ctx, f"{ctx.job_id:05d}-grid-{p['seed']}",
                lambda m: m.get("seed") == p["seed"] and m.get("grid", {}).get("rows") is not None, make)
