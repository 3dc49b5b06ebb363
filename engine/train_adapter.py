"""The Turbo training adapter: merged into the base weights for training, applied at −1.0 while sampling.

Training a LoRA directly on the distilled Turbo model erodes its 8-step ability. ai-toolkit's remedy, used here:
merge a "training adapter" LoRA (ostris/zimage_turbo_training_adapter) into the base before training, so the LoRA
learns on a de-distilled model, and subtract it again (the same adapter at strength −1) while making validation
samples, so they show what users get at inference, where the adapter is not used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine.errors import JobFailed
from engine.lora_io import LoraFormatError, load_into_transformer, lora_layers
from engine.project import ModelSettings

TURBO_ADAPTER = "turbo_adapter"
Loading = Callable[[str, float, float, str], None]


def resolve(model: ModelSettings, project_root: Path, loading: Loading | None = None) -> Path | None:
    """The adapter file (local path, or downloaded once from the hub); None when `model.training_adapter` is ''."""
    spec = model.training_adapter.strip()
    if not spec:
        return None
    local = Path(spec).expanduser()
    local = local if local.is_absolute() else project_root / local
    if spec.endswith(".safetensors") or local.exists() or spec.startswith((".", "/", "~")):
        if not local.is_file():
            raise JobFailed(f"model.training_adapter = {spec!r}: no such file")
        if local.suffix != ".safetensors":
            raise JobFailed(f"model.training_adapter = {spec!r}: only .safetensors files are loaded")
        return local
    if spec.count("/") != 1:
        raise JobFailed(f"model.training_adapter = {spec!r}: neither a .safetensors file nor a hub id like "
                        "'ostris/zimage_turbo_training_adapter'")
    return _from_hub(spec, model.training_adapter_file, loading)


def _from_hub(repo: str, filename: str, loading: Loading | None) -> Path:
    from huggingface_hub import constants, hf_hub_download

    from engine.models import _progress_tqdm

    try:
        return Path(hf_hub_download(repo, filename, local_files_only=True))
    except Exception:  # not cached yet
        pass
    if loading:
        loading("download", 0, 0, f"downloading the training adapter {repo}/{filename}")
    try:
        return Path(hf_hub_download(repo, filename, tqdm_class=_progress_tqdm(loading, "download")))
    except Exception as exc:
        raise JobFailed(
            f"training adapter {repo}/{filename} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and "
            f"could not be downloaded ({type(exc).__name__}); on a machine with internet run "
            f"`hf download {repo} {filename}`, or set model.training_adapter to a local .safetensors file "
            "('' turns it off for De-Turbo or Base models)"
        ) from None


def merge(transformer: Any, path: Path) -> int:
    """Load the adapter as a (then inactive) peft adapter and add its delta into the base weights.

    Returns the number of merged modules. Its LoRA layers stay in place so that `reversed_for_sampling` can apply
    it at −1.0 on top of the merged weights.
    """
    import torch

    try:
        load_into_transformer(transformer, path, TURBO_ADAPTER)
    except LoraFormatError as exc:
        raise JobFailed(f"model.training_adapter: {exc}") from None  # exc names the file
    layers = lora_layers(transformer, TURBO_ADAPTER)
    with torch.no_grad():
        for layer in layers.values():
            base = layer.get_base_layer()
            a = layer.lora_A[TURBO_ADAPTER].weight.float()
            b = layer.lora_B[TURBO_ADAPTER].weight.float()
            delta = (b @ a) * layer.scaling[TURBO_ADAPTER]
            base.weight.data = (base.weight.float() + delta.to(base.weight.device)).to(base.weight.dtype)
    return len(layers)


@contextlib.contextmanager
def reversed_for_sampling(transformer: Any, trained_adapter: str, merged: bool) -> Iterator[None]:
    """While inside: the trained LoRA at 1.0 plus the merged training adapter at −1.0 (= the plain base)."""
    if not merged:
        yield
        return
    transformer.set_adapters([trained_adapter, TURBO_ADAPTER], [1.0, -1.0])
    try:
        yield
    finally:
        transformer.set_adapters([trained_adapter], [1.0])
