"""`zchar doctor`: what this machine offers zchar (GPU, driver, CUDA, torch, libraries, model cache)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import sys

from engine import __version__
from engine.project import Settings
from engine.telemetry import GpuReader


def _version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def report(settings: Settings | None = None) -> tuple[list[str], bool]:
    ok = True
    lines = [f"zchar {__version__} · Python {platform.python_version()} · {platform.platform()}"]
    reader = GpuReader()
    reading = reader.read()
    reader.close()
    if reading["available"]:
        lines.append(f"NVIDIA driver {reading['driver']}")
        for g in reading["gpus"]:
            lines.append(f"  GPU {g['index']}: {g['name']}, {g['mem_total']} MiB, {g['temp']}°C, "
                         f"power limit {g['power_limit']} W")
    else:
        lines.append(f"GPU: {reading['reason']} (jobs run on the CPU: only the tiny model is practical)")
    for pkg in ("torch", "diffusers", "transformers", "peft", "prodigyopt", "safetensors", "textual", "nvidia-ml-py"):
        lines.append(f"{pkg}: {_version(pkg)}")
    try:
        import torch

        cuda = torch.cuda.is_available()
        if cuda:
            lines.append(f"torch CUDA {torch.version.cuda}: {torch.cuda.device_count()} device(s), "
                         f"bf16 {torch.cuda.is_bf16_supported()}")
        else:
            lines.append("torch CUDA: not available")
        if reading["available"] and not cuda:
            lines.append("  warning: an NVIDIA GPU is present but this torch build has no CUDA; install a CUDA build")
            ok = False
    except ImportError:
        lines.append("torch: cannot be imported")
        ok = False
    from huggingface_hub import constants

    cache = constants.HF_HUB_CACHE
    free = shutil.disk_usage(cache if os.path.isdir(cache) else sys.prefix).free / 2**30
    lines.append(f"Hugging Face cache: {cache} ({free:.0f} GiB free; Z-Image Turbo needs about 33 GB)")
    if settings is not None:
        from engine.models import is_tiny, model_identity

        if is_tiny(settings.model):
            lines.append("project model: tiny (offline test model)")
        else:
            ident = model_identity(settings.model)
            cached = ident.count(":") >= 2 or ident.startswith("local:")
            lines.append(f"project model: {settings.model.base} — {'found' if cached else 'not downloaded yet'}")
    return lines, ok
