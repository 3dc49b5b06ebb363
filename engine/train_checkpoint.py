"""Training checkpoints: `loras/checkpoints/RUN/step-NNNNNN/`, written atomically, never pickled.

A checkpoint folder holds
  NAME-stepNNNNNN.safetensors   the LoRA in the exported (ComfyUI) layout, fp32, loadable as is
  optimizer.safetensors         optimizer tensors keyed by parameter name
  rng.safetensors               torch RNG states
  state.json                    step/epoch/counters, optimizer scalars, config, dataset hash, file sizes
It is assembled in a hidden temp folder and renamed into place, so a crash leaves a whole checkpoint or none;
`state.json` lists each file's size and a checkpoint only counts when they all match.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.errors import JobFailed
from engine.project import Project

STATE_FILE = "state.json"
_STEP_DIR = re.compile(r"^step-(\d{6,})$")


def checkpoints_root(project: Project) -> Path:
    return project.loras_dir / "checkpoints"


def step_dir(run_dir: Path, step: int) -> Path:
    return run_dir / f"step-{step:06d}"


def lora_file_name(lora_name: str, step: int) -> str:
    return f"{lora_name}-step{step:06d}.safetensors"


# --- optimizer state as safetensors + JSON ----------------------------------------------------------------------

def optimizer_state(optimizer: Any, names: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors, JSON scalars) of an optimizer whose params are `names` in order; no pickle involved."""
    import torch

    sd = optimizer.state_dict()
    tensors: dict[str, Any] = {}
    scalars: dict[str, Any] = {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"state|{names[idx]}|{key}"] = value.detach().to("cpu").contiguous().clone()
            else:
                scalars.setdefault(names[idx], {})[key] = value
    groups = []
    for g, group in enumerate(sd["param_groups"]):
        plain = {}
        for key, value in group.items():
            if key == "params":
                plain[key] = [names[i] for i in value]
            elif torch.is_tensor(value):
                tensors[f"group|{g}|{key}"] = value.detach().to("cpu").contiguous().clone()
            else:
                plain[key] = list(value) if isinstance(value, tuple) else value
        groups.append(plain)
    return tensors, {"state": scalars, "param_groups": groups}


def load_optimizer_state(optimizer: Any, names: Sequence[str], tensors: Mapping[str, Any],
                         scalars: Mapping[str, Any]) -> None:
    index = {n: i for i, n in enumerate(names)}
    state: dict[int, dict[str, Any]] = {}
    group_tensors: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        kind, a, b = key.split("|", 2)
        if kind == "state":
            if a not in index:
                raise JobFailed(f"the checkpoint's optimizer state names a parameter this run lacks ({a})")
            state.setdefault(index[a], {})[b] = value
        elif kind == "group":
            group_tensors.setdefault(int(a), {})[b] = value
    for name, values in scalars["state"].items():
        state.setdefault(index[name], {}).update(values)
    groups = []
    for g, group in enumerate(scalars["param_groups"]):
        group = dict(group)
        group["params"] = [index[n] for n in group["params"]]
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
        group.update(group_tensors.get(g, {}))
        groups.append(group)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# --- RNG ----------------------------------------------------------------------------------------------------------

def rng_state() -> tuple[dict[str, Any], dict[str, Any]]:
    import torch

    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    version, internal, gauss = random.getstate()
    return tensors, {"python": [version, list(internal), gauss]}


def restore_rng(tensors: Mapping[str, Any], scalars: Mapping[str, Any]) -> None:
    import torch

    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda_")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = scalars["python"]
    random.setstate((version, tuple(internal), gauss))


# --- writing ------------------------------------------------------------------------------------------------------

def write_checkpoint(run_dir: Path, step: int, files: Mapping[str, bytes], state: Mapping[str, Any]) -> Path:
    """Write `files` (name → bytes) and state.json into run_dir/step-NNNNNN atomically; returns the folder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    final = step_dir(run_dir, step)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=run_dir))
    try:
        sizes = {}
        for name, data in files.items():
            _write_synced(tmp / name, data)
            sizes[name] = len(data)
        _write_synced(tmp / STATE_FILE, json.dumps({**state, "files": sizes}, indent=1).encode())
        if final.exists():  # the same step again (e.g. a save request right after a resume): replace it
            marker = final / "pinned"
            if marker.exists():
                os.replace(marker, tmp / "pinned")
            old = run_dir / f".old-{final.name}"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- reading ------------------------------------------------------------------------------------------------------

def read_state(folder: Path) -> dict[str, Any] | None:
    """state.json of a complete checkpoint, or None if it is missing, unreadable or any file is short."""
    try:
        state = json.loads((folder / STATE_FILE).read_text("utf-8"))
        for name, size in state["files"].items():
            if (folder / name).stat().st_size != size:
                return None
        return state
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def remove_leftovers(run_dir: Path) -> None:
    """Delete temp folders a crash left behind (only while no run writes into run_dir)."""
    if run_dir.is_dir():
        for p in run_dir.iterdir():
            if p.name.startswith((".tmp-", ".old-")):
                shutil.rmtree(p, ignore_errors=True)


def complete_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint of a run, oldest first (read-only)."""
    if not run_dir.is_dir():
        return []
    found = []
    for p in run_dir.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and p.is_dir() and read_state(p) is not None:
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_run(project: Project) -> str | None:
    """The run whose newest complete checkpoint was written last."""
    root = checkpoints_root(project)
    best: tuple[float, str] | None = None
    if root.is_dir():
        for run_dir in root.iterdir():
            ckpts = complete_checkpoints(run_dir) if run_dir.is_dir() else []
            if ckpts:
                t = (ckpts[-1][1] / STATE_FILE).stat().st_mtime
                if best is None or t > best[0]:
                    best = (t, run_dir.name)
    return best[1] if best else None


def load_files(folder: Path) -> dict[str, dict[str, Any]]:
    """The safetensors files of a checkpoint, by name (safetensors only: never pickle)."""
    from safetensors.torch import load_file

    return {p.name: load_file(str(p)) for p in folder.glob("*.safetensors")}


def prune(run_dir: Path, keep: int, is_pinned: Callable[[Path], bool]) -> list[int]:
    """Delete all but the newest `keep` unpinned checkpoints; pinned ones are never deleted. Returns removed steps."""
    unpinned = [(s, p) for s, p in complete_checkpoints(run_dir) if not is_pinned(p)]
    removed = []
    for step, path in unpinned[:-keep] if keep > 0 else unpinned:
        shutil.rmtree(path, ignore_errors=True)
        removed.append(step)
    return removed
