"""LoRA files: export in the ComfyUI/ai-toolkit key layout with metadata, and a strict loader for every common layout.

Exported keys are diffusers module names under `diffusion_model.` with `lora_A`/`lora_B` and a per-module `.alpha`
(ComfyUI slices to_q/k/v into its fused qkv itself; diffusers folds alpha into the weights). The loader accepts that,
diffusers `transformer.*` and kohya `lora_unet_*` / `lora_down`/`lora_up` files, converts them with diffusers' own
Z-Image converter, checks that every key lands on a Linear of the right shape, and only then loads through
`load_lora_weights`; anything that would not load is named in a `LoraFormatError` instead of being skipped.
Torch and diffusers are imported inside functions (this module is imported by the engine's worker thread).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine import __version__
from engine.errors import JobFailed
from engine.project import atomic_write_bytes

META_PREFIX = "zchar."
EXPORT_PREFIX = "diffusion_model."
_SUFFIXES = (".lora_A.weight", ".lora_B.weight", ".lora_down.weight", ".lora_up.weight", ".alpha")
_NUMERIC_META = {"rank": int, "alpha": float, "steps": int, "epochs": int, "resolution": int}
_hash_cache: dict[tuple[str, int, int], str] = {}


class LoraFormatError(JobFailed):
    """A file that is not a loadable Z-Image LoRA; the message names the keys that did not match."""


# --- small helpers ----------------------------------------------------------------------------------------------

def file_hash(path: Path | str) -> str:
    """sha256 of the file, first 12 hex digits; cached by path, size and modification time."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        h = hashlib.sha256()
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _hash_cache[key] = h.hexdigest()[:12]
    return _hash_cache[key]


def read_metadata(path: Path | str) -> dict[str, Any]:
    """The safetensors header metadata; zchar's own keys lose their prefix and numeric ones become numbers."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = fh.metadata() or {}
    except Exception as exc:
        raise LoraFormatError(f"{Path(path).name}: not a readable safetensors file ({exc})") from None
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.removeprefix(META_PREFIX)
        kind = _NUMERIC_META.get(name) if key.startswith(META_PREFIX) else None
        try:
            out[name] = kind(value) if kind else value
        except ValueError:
            out[name] = value
    return out


def _module_of(key: str) -> str:
    for suffix in _SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return ""


# --- export -----------------------------------------------------------------------------------------------------

def lora_layers(transformer: Any, adapter_name: str) -> dict[str, Any]:
    """{module path: peft LoRA layer} for every module that carries `adapter_name`."""
    from peft.tuners.lora import LoraLayer

    return {name: m for name, m in transformer.named_modules()
            if isinstance(m, LoraLayer) and adapter_name in m.lora_A}


def comfy_state_dict(transformer: Any, adapter_name: str, dtype: Any = None) -> dict[str, Any]:
    """The adapter as `diffusion_model.<module>.lora_A/lora_B.weight` + `.alpha` tensors (copies on the CPU)."""
    import torch

    out: dict[str, Any] = {}
    for name, layer in lora_layers(transformer, adapter_name).items():
        a = layer.lora_A[adapter_name].weight.detach()
        b = layer.lora_B[adapter_name].weight.detach()
        out[f"{EXPORT_PREFIX}{name}.lora_A.weight"] = a.to("cpu", dtype or a.dtype).contiguous().clone()
        out[f"{EXPORT_PREFIX}{name}.lora_B.weight"] = b.to("cpu", dtype or b.dtype).contiguous().clone()
        out[f"{EXPORT_PREFIX}{name}.alpha"] = torch.tensor(float(layer.lora_alpha[adapter_name]))
    if not out:
        raise JobFailed(f"the transformer has no LoRA adapter named {adapter_name!r}")
    return out


def lora_bytes(tensors: Mapping[str, Any], metadata: Mapping[str, Any]) -> bytes:
    """A LoRA file's bytes; `metadata` values become strings under the `zchar.` prefix."""
    from safetensors.torch import save

    meta = {"format": "pt", f"{META_PREFIX}version": __version__}
    meta.update({f"{META_PREFIX}{k}": v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()})
    return save(dict(tensors), metadata=meta)


def save_lora(path: Path, tensors: Mapping[str, Any], metadata: Mapping[str, Any]) -> None:
    """Write a LoRA file (see `lora_bytes`) atomically."""
    atomic_write_bytes(path, lora_bytes(tensors, metadata))


def load_lora_tensors(path: Path | str) -> dict[str, Any]:
    """The tensors of a LoRA file, safetensors only (never pickle)."""
    from safetensors.torch import load_file

    p = Path(path)
    if p.suffix != ".safetensors":
        raise LoraFormatError(f"{p.name}: only .safetensors LoRA files are loaded")
    if not p.is_file():
        raise LoraFormatError(f"{p}: no such LoRA file")
    try:
        return load_file(str(p))
    except Exception as exc:
        raise LoraFormatError(f"{p.name}: not a readable safetensors file ({exc})") from None


# --- conversion and checking ------------------------------------------------------------------------------------

def to_diffusers(state: Mapping[str, Any], transformer: Any, name: str = "LoRA") -> tuple[dict[str, Any], str]:
    """Convert any supported layout to diffusers `transformer.<module>.lora_A/B.weight` keys (alpha folded in).

    Every key must end up on a Linear of the transformer with matching shapes; otherwise a LoraFormatError lists
    the keys that did not match. Returns (converted state, detected format).
    """
    from diffusers import ZImagePipeline
    from torch import nn

    keys = list(state)
    fmt = _detect_format(keys)
    modules = dict(transformer.named_modules())
    groups: dict[str, dict[str, Any]] = {}
    unmatched: list[str] = []
    for key in keys:
        stem = _module_of(key)
        if stem:
            groups.setdefault(stem, {})[key] = state[key]
        else:
            unmatched.append(f"{key} (not a LoRA weight or alpha)")
    converted: dict[str, Any] = {}
    for group in groups.values():
        try:
            part = ZImagePipeline.lora_state_dict(dict(group))
        except (ValueError, KeyError, RuntimeError) as exc:
            unmatched += [f"{k} ({_short(exc)})" for k in group]
            continue
        problem = _check_group(part, modules, nn.Linear)
        if problem:
            unmatched += [f"{k} ({problem})" for k in group]
        else:
            converted.update(part)
    if unmatched:
        shown = "; ".join(sorted(unmatched)[:8])
        more = f" and {len(unmatched) - 8} more" if len(unmatched) > 8 else ""
        if not converted:
            raise LoraFormatError(f"{name} is not a Z-Image LoRA: none of its {len(keys)} keys match the "
                                  f"transformer ({shown}{more})")
        raise LoraFormatError(f"{name}: {len(unmatched)} of {len(keys)} keys do not match the Z-Image transformer "
                              f"and would be ignored: {shown}{more}")
    if not converted:
        raise LoraFormatError(f"{name} holds no LoRA weights")
    return converted, fmt


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


def _detect_format(keys: list[str]) -> str:
    if any(k.startswith("lora_unet_") for k in keys):
        return "kohya"
    if any(k.startswith("diffusion_model.") for k in keys):
        return "comfyui"
    if any(k.startswith("transformer.") for k in keys):
        return "diffusers"
    return "unknown"


def _check_group(part: Mapping[str, Any], modules: Mapping[str, Any], linear: type) -> str:
    """'' when the converted keys of one module fit the transformer, else the reason."""
    a_keys = [k for k in part if k.endswith(".lora_A.weight")]
    if not a_keys or len(part) != 2 * len(a_keys):
        return "lora_A/lora_B pair incomplete"
    for a_key in a_keys:
        module = a_key.removeprefix("transformer.").removesuffix(".lora_A.weight")
        target = modules.get(module)
        target = getattr(target, "base_layer", target)  # already wrapped by another adapter
        if not isinstance(target, linear):
            return f"no Linear named {module}"
        b = part.get(a_key.replace(".lora_A.", ".lora_B."))
        a = part[a_key]
        if b is None or a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            return "lora_A/lora_B shapes do not pair"
        if a.shape[1] != target.in_features or b.shape[0] != target.out_features:
            return (f"shape {tuple(b.shape[:1])}x{tuple(a.shape[1:])} does not fit {module} "
                    f"({target.out_features}x{target.in_features})")
    return ""


# --- loading ----------------------------------------------------------------------------------------------------

def load_into_transformer(transformer: Any, path: Path | str, adapter_name: str) -> dict[str, Any]:
    """Load a LoRA file into a bare transformer as `adapter_name` (strict, like `load_into_pipeline`)."""
    converted, fmt = to_diffusers(load_lora_tensors(path), transformer, Path(path).name)
    _check_name_free(transformer, adapter_name)
    transformer.load_lora_adapter(converted, adapter_name=adapter_name, prefix="transformer")
    return _verify_loaded(transformer, converted, adapter_name, fmt, path)


def load_into_pipeline(pipe: Any, path: Path | str, adapter_name: str) -> dict[str, Any]:
    """Load a LoRA file into a Z-Image pipeline through diffusers' `load_lora_weights`.

    Raises LoraFormatError naming every key that would not match. Returns {adapter_name, format, modules, rank,
    metadata}; the adapter is left active at strength 1 (use `pipe.set_adapters` for other strengths).
    """
    converted, fmt = to_diffusers(load_lora_tensors(path), pipe.transformer, Path(path).name)
    _check_name_free(pipe.transformer, adapter_name)
    pipe.load_lora_weights(converted, adapter_name=adapter_name)
    return _verify_loaded(pipe.transformer, converted, adapter_name, fmt, path)


def _check_name_free(transformer: Any, adapter_name: str) -> None:
    if adapter_name in (getattr(transformer, "peft_config", None) or {}):
        raise JobFailed(f"a LoRA named {adapter_name!r} is already loaded")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", adapter_name):
        raise JobFailed(f"adapter name {adapter_name!r}: use letters, digits, '-' and '_' only")


def _verify_loaded(transformer: Any, converted: Mapping[str, Any], adapter_name: str, fmt: str,
                   path: Path | str) -> dict[str, Any]:
    """Every converted module must now carry the adapter with the file's weights; else unload and fail."""
    import torch

    layers = lora_layers(transformer, adapter_name)
    expected = {k.removeprefix("transformer.").removesuffix(".lora_A.weight")
                for k in converted if k.endswith(".lora_A.weight")}
    missing = sorted(expected - set(layers))
    wrong = []
    for m in sorted(expected & set(layers)):
        loaded = layers[m].lora_A[adapter_name].weight.detach().cpu()
        if not torch.equal(loaded, converted[f"transformer.{m}.lora_A.weight"].to(loaded.dtype)):
            wrong.append(m)
    if missing or wrong:
        transformer.delete_adapters(adapter_name)
        bad = missing + wrong
        raise LoraFormatError(f"{Path(path).name}: diffusers did not load {len(bad)} modules: "
                              f"{', '.join(bad[:8])}{' …' if len(bad) > 8 else ''}")
    ranks = {converted[k].shape[0] for k in converted if k.endswith(".lora_A.weight")}
    return {"adapter_name": adapter_name, "format": fmt, "modules": len(expected),
            "rank": max(ranks), "metadata": read_metadata(path)}
