"""Job kinds: where each one's runner lives, and the check of its parameters at submit time.

Standard library only, so that a submit never waits for torch. Each validator returns the full parameters of one or
more jobs (defaults filled in from project.toml, seeds drawn) so that a job record alone reproduces its result,
plus notes for the user (e.g. "size rounded to 1024x1024").
"""

from __future__ import annotations

import json
import random
import re
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.project import (
    IMAGE_EXTENSIONS,
    TEMPLATE_FIELDS,
    Project,
    ProjectError,
    Settings,
    safe_name,
    with_trigger,
)

MAX_PROMPT_CHARS = 4000
MAX_COUNT = 1000
MAX_GRID_CELLS = 64
LORA_TOTAL_WARNING = 2.0


class JobParamError(ValueError):
    """Parameters that cannot make a job; the text is one clear sentence for the user."""


def _num(params: dict[str, Any], key: str, default: Any, kind: type, lo: float, hi: float) -> Any:
    value = params.get(key, default)
    if value is None:
        value = default
    not_number = isinstance(value, bool) or not isinstance(value, (int, float))
    if not_number or (kind is int and not float(value).is_integer()):
        raise JobParamError(f"{key} = {value!r}: expected {'an integer' if kind is int else 'a number'}")
    value = kind(value)
    if not lo <= value <= hi:
        raise JobParamError(f"{key} = {value!r}: expected a value from {lo} to {hi}")
    return value


def round16(side: int) -> int:
    return max(16, round(side / 16.0) * 16)


def lora_files(project: Project, pattern: str = "*.safetensors") -> list[Path]:
    """LoRA files under loras/, sorted; hidden folders are left out: a checkpoint being written (or cut short by a
    crash) lives in loras/checkpoints/RUN/.tmp-step-NNNNNN-*/ until it is complete."""
    root = project.loras_dir
    return sorted(p for p in root.rglob(pattern) if not any(part.startswith(".") for part in p.relative_to(root).parts))


def resolve_lora(project: Project, name: str) -> Path:
    """A LoRA by name (loras/NAME.safetensors, checkpoints included) or by a path inside the project."""
    if not isinstance(name, str) or not name.strip():
        raise JobParamError("a LoRA needs a name or a path")
    if "/" not in name and not name.endswith(".safetensors"):
        candidates = [project.loras_dir / f"{name}.safetensors",
                      *lora_files(project, f"*/{name}.safetensors")]
    else:
        try:
            candidates = [project.inside(name)]
        except ProjectError as exc:
            raise JobParamError(f"LoRA {name}: outside the project; copy it into {project.loras_dir} first") from exc
    for path in candidates:
        if path.is_file():
            try:
                project.inside(path)  # a symlink in loras/ may point anywhere
            except ProjectError as exc:
                raise JobParamError(f"LoRA {name}: a symlink to a file outside the project; copy the file into "
                                    f"{project.loras_dir} instead") from exc
            if path.suffix != ".safetensors":
                raise JobParamError(f"LoRA {name}: only .safetensors files are loaded")
            return path
    known = sorted(p.stem for p in lora_files(project))
    hint = f"; known: {', '.join(known[:12])}" if known else f"; {project.loras_dir} has none yet"
    raise JobParamError(f"unknown LoRA {name!r}{hint}")


# Module paths every Z-Image LoRA names, in diffusers/ai-toolkit (`layers.3.attention.to_q`) and kohya
# (`lora_unet_layers_3_attention_to_q`) spelling; LoRAs of SDXL, Flux, Qwen-Image … name other modules.
_ZIMAGE_KEY = re.compile(
    r"(?:^|[._])(?:layers|noise_refiner|context_refiner)[._]\d+[._](?:attention|feed_forward|adaLN)")


def lora_header_problem(path: Path) -> str | None:
    """Why the safetensors file at `path` cannot be a Z-Image LoRA (reads only its JSON header), or None."""
    try:
        with path.open("rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            if size > 100_000_000:
                return "not a safetensors file (bad header)"
            header = json.loads(fh.read(size))
    except (OSError, struct.error, ValueError):
        return "not a readable safetensors file"
    keys = [k for k in header if k != "__metadata__"]
    if not keys:
        return "the file holds no tensors"
    if not any(_ZIMAGE_KEY.search(k) for k in keys):
        return (f"not a Z-Image LoRA: its keys name modules Z-Image does not have (e.g. {keys[0]!r}); "
                "it was made for another model")
    return None


def resolve_image(project: Project, name: str) -> Path:
    try:
        path = project.inside(name)
    except ProjectError as exc:
        raise JobParamError(f"reference image {name}: outside the project folder") from exc
    if not path.is_file():
        raise JobParamError(f"reference image {name}: not found")
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise JobParamError(f"reference image {name}: not an image file ({path.suffix or 'no extension'})")
    return path


Validated = tuple[list[dict[str, Any]], list[str]]  # (parameters of each job, notes for the user)


def _prompt(params: dict[str, Any]) -> str:
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise JobParamError("the prompt is empty")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise JobParamError(f"the prompt has {len(prompt)} characters; the limit is {MAX_PROMPT_CHARS}")
    return prompt


def _size(params: dict[str, Any], settings: Settings, notes: list[str]) -> tuple[int, int]:
    """Width and height; sides that are not multiples of 16 are rounded (with a note)."""
    width = _num(params, "width", settings.generate.width, int, 16, 4096)
    height = _num(params, "height", settings.generate.height, int, 16, 4096)
    if width % 16 or height % 16:
        notes.append(f"size {width}x{height} rounded to {round16(width)}x{round16(height)} "
                     "(sides must be multiples of 16)")
    return round16(width), round16(height)


def _seed(params: dict[str, Any]) -> int:
    """The given seed, or a random one when it is missing or -1."""
    seed = params.get("seed")
    if seed is None or seed == -1:
        seed = random.SystemRandom().randrange(2**32)
    return _num({"seed": seed}, "seed", 0, int, 0, 2**32 - 1)


def _lora(project: Project, item: Any, default_strength: float) -> dict[str, Any]:
    """{path (relative to the project), strength} of one LoRA, refusing files that are not Z-Image LoRAs."""
    if isinstance(item, str):
        item = {"path": item}
    if not isinstance(item, dict):
        raise JobParamError("each LoRA must be {path, strength}")
    path = resolve_lora(project, item.get("path", ""))
    problem = lora_header_problem(path)
    if problem:
        raise JobParamError(f"LoRA {path.name}: {problem}")
    strength = _num(item, "strength", default_strength, float, -4.0, 4.0)
    return {"path": str(path.relative_to(project.root)), "strength": strength}


def validate_gen(project: Project, settings: Settings, params: dict[str, Any]) -> Validated:
    """Check a generation request; one job per image (count expands, seeds fixed/incrementing/random)."""
    g = settings.generate
    notes: list[str] = []
    prompt = _prompt(params)
    width, height = _size(params, settings, notes)
    steps = _num(params, "steps", g.steps, int, 1, 200)
    guidance = _num(params, "guidance", g.guidance, float, 0.0, 30.0)
    count = _num(params, "count", 1, int, 1, MAX_COUNT)
    seed_mode = params.get("seed_mode", "increment")
    if seed_mode not in ("fixed", "increment", "random"):
        raise JobParamError(f"seed_mode = {seed_mode!r}: expected fixed, increment or random")
    seed = _seed(params)

    loras = [_lora(project, item, g.lora_strength) for item in params.get("loras") or []]
    total = sum(abs(lo["strength"]) for lo in loras)
    if total > LORA_TOTAL_WARNING:
        notes.append(f"LoRA strengths total {total:.2f} (over {LORA_TOTAL_WARNING:.1f}): expect artefacts")

    refs = [str(resolve_image(project, r).relative_to(project.root)) for r in params.get("references") or []]
    ref_strength = _num(params, "reference_strength", g.reference_strength, float, 0.0, 1.0)
    if refs and ref_strength <= 0:
        raise JobParamError("reference_strength = 0 would return the reference unchanged; use 0.05 to 1.0")
    negative = params.get("negative_prompt", g.negative_prompt) or ""
    if not isinstance(negative, str):
        raise JobParamError("negative_prompt must be a string")

    base = {
        "prompt": prompt,
        "negative_prompt": negative,
        "width": width,
        "height": height,
        "steps": steps,
        "guidance": guidance,
        "loras": loras,
        "references": refs,
        "reference_strength": ref_strength,
        "batch": params.get("batch") or f"b{int(time.time() * 1000)}",
    }
    template = _template(params.get("template"))
    if template is not None:
        base["template"] = template
    rng = random.SystemRandom()
    jobs = []
    for i in range(count):
        s = seed if seed_mode == "fixed" else (seed + i) % 2**32 if seed_mode == "increment" else (
            seed if i == 0 else rng.randrange(2**32))
        jobs.append({**base, "seed": s, "index": i, "count": count})
    return jobs, notes


def params_from_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Parameters of a `gen` job that regenerates the image whose embedded metadata (engine/pngmeta.py) is `meta`."""
    params = {
        "prompt": meta["prompt"],
        "negative_prompt": meta.get("negative_prompt", ""),
        "seed": meta["seed"],
        "seed_mode": "fixed",
        "width": meta["width"],
        "height": meta["height"],
        "steps": meta["steps"],
        "guidance": meta["guidance"],
        "loras": [{"path": lo["path"], "strength": lo["strength"]} for lo in meta.get("loras") or []],
        "references": [r["path"] for r in meta.get("references") or []],
        "reference_strength": meta.get("reference_strength") or 0.6,
    }
    if isinstance(meta.get("template"), dict):
        params["template"] = meta["template"]
    return params


def _template(value: Any) -> dict[str, str] | None:
    """The builder's fields a prompt was composed from (kept so a result can be sent back to the builder)."""
    if not isinstance(value, dict):
        return None
    return {k: v for k, v in value.items() if k in TEMPLATE_FIELDS and isinstance(v, str) and len(v) <= 1000}


def validate_grid(project: Project, settings: Settings, params: dict[str, Any]) -> Validated:
    """A comparison grid: every LoRA (rows, e.g. checkpoints) at every strength (columns), one prompt and seed."""
    g = settings.generate
    notes: list[str] = []
    prompt = with_trigger(settings.trigger, _prompt(params))
    width, height = _size(params, settings, notes)
    seed = _seed(params)
    paths = params.get("loras") or []
    strengths = params.get("strengths") or [g.lora_strength]
    if not isinstance(paths, list) or not paths:
        raise JobParamError("a grid needs at least one LoRA (checkpoint)")
    if not isinstance(strengths, list):
        raise JobParamError("strengths must be a list of numbers")
    rows = [_lora(project, {"path": p, "strength": 1.0}, 1.0)["path"] for p in paths]
    cols = [_num({"strength": s}, "strength", 0, float, -4.0, 4.0) for s in strengths]
    if len(rows) * len(cols) > MAX_GRID_CELLS:
        raise JobParamError(f"a grid of {len(rows)}x{len(cols)} images is over the limit of {MAX_GRID_CELLS}")
    return [{
        "prompt": prompt,
        "negative_prompt": params.get("negative_prompt", g.negative_prompt) or "",
        "seed": seed,
        "width": width,
        "height": height,
        "steps": _num(params, "steps", g.steps, int, 1, 200),
        "guidance": _num(params, "guidance", g.guidance, float, 0.0, 30.0),
        "loras": rows,
        "strengths": cols,
    }], notes


def validate_train(project: Project, settings: Settings, params: dict[str, Any]) -> Validated:
    """A training run: a new run (named by time unless given) or a resume of an existing one."""
    resume = bool(params.get("resume", False))
    run = params.get("run")
    if run is not None and (not isinstance(run, str) or len(run) > 100 or safe_name(run) != run):
        raise JobParamError(f"run name {run!r}: expected a plain folder name (letters, digits, '-', '_', '.')")
    max_steps = params.get("max_steps")
    if max_steps is not None:
        max_steps = _num(params, "max_steps", 0, int, 1, 10_000_000)
    if not resume and run is None:
        run = time.strftime("run-%Y%m%d-%H%M%S")
    if resume and run is None:  # "the latest run": fixed now, so the job record names the run it resumes
        from engine.train_checkpoint import latest_run  # stdlib-only at import, like this module

        run = latest_run(project)
        if run is None:
            raise JobParamError(f"nothing to resume: no run has a complete checkpoint in {project.loras_dir}")
    return [{"run": run, "resume": resume, "max_steps": max_steps}], []


# kind -> (runner "module:function", validator). Runners import torch lazily, in the engine's worker thread.
KINDS: dict[str, tuple[str, Callable[[Project, Settings, dict[str, Any]], Validated]]] = {
    "train": ("engine.train:run_job", validate_train),
    "gen": ("engine.generate:run_job", validate_gen),
    "grid": ("engine.generate:run_grid", validate_grid),
}
