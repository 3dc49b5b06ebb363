"""Loading Z-Image components: a hub id, a local diffusers folder, or the built-in tiny test model.

`model.base = "tiny"` builds tiny, randomly initialised (but deterministic) components from the real diffusers and
transformers classes, offline — the same code paths as the real model at a size a CPU runs in milliseconds.
Heavy imports happen inside functions: this module is imported only in the engine's worker thread.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from engine.errors import JobFailed
from engine.project import TINY_BASE, ModelSettings

TINY_IDENTITY = "tiny-v1"
PARTS = ("scheduler", "tokenizer", "text_encoder", "vae", "transformer")
HUB_PATTERNS = ["model_index.json", "scheduler/*", "tokenizer/*", "text_encoder/*", "vae/*", "transformer/*"]
Progress = Callable[[str, float, float, str], None]  # (stage, done, total, message)

# Tiny component configs (see shared ZIMAGE.md): sizes chosen so every code path runs on a CPU in milliseconds.
TINY_TRANSFORMER = {
    "all_patch_size": (2,), "all_f_patch_size": (1,), "in_channels": 16, "dim": 32, "n_layers": 2,
    "n_refiner_layers": 1, "n_heads": 2, "n_kv_heads": 2, "cap_feat_dim": 16, "axes_dims": [8, 4, 4],
    "axes_lens": [1024, 64, 64],
}
TINY_TEXT_ENCODER = {
    "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
    "num_key_value_heads": 2, "head_dim": 8, "vocab_size": 512,
}
TINY_VAE = {
    "in_channels": 3, "out_channels": 3, "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4, "block_out_channels": [8, 8, 16, 16], "layers_per_block": 1,
    "latent_channels": 16, "norm_num_groups": 8, "scaling_factor": 0.3611, "shift_factor": 0.1159,
    "use_quant_conv": False, "use_post_quant_conv": False,
}
_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def is_tiny(model: ModelSettings) -> bool:
    return model.base == TINY_BASE


def _byte_alphabet() -> list[str]:
    """The 256 printable stand-ins of byte-level BPE, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def tiny_tokenizer() -> Any:
    from transformers import Qwen2Tokenizer

    vocab = {c: i for i, c in enumerate(_byte_alphabet())}
    for special in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"):
        vocab[special] = len(vocab)
    tok = Qwen2Tokenizer(vocab=vocab, merges=[], chat_template=_CHAT_TEMPLATE)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<think>", "</think>"]})
    return tok


def build_tiny(parts: Iterable[str] = PARTS, seed: int = 0) -> dict[str, Any]:
    """Tiny Z-Image components; the same weights every time (seeded), so results are reproducible."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    builders: dict[str, Callable[[], Any]] = {
        "scheduler": lambda: FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0,
                                                             use_dynamic_shifting=False),
        "tokenizer": tiny_tokenizer,
        "text_encoder": lambda: Qwen3Model(Qwen3Config(**TINY_TEXT_ENCODER)),
        "vae": lambda: AutoencoderKL(**TINY_VAE),
        "transformer": lambda: ZImageTransformer2DModel(**TINY_TRANSFORMER),
    }
    out = {}
    with torch.random.fork_rng(devices=[]):
        for i, name in enumerate(PARTS):
            torch.manual_seed(seed * 100 + i)  # each part has its own seed: building one part never shifts another
            if name in parts:
                out[name] = builders[name]()
    for name in ("text_encoder", "vae", "transformer"):
        if name in out:
            out[name].eval()
    return out


# --- the real model -----------------------------------------------------------------------------------------

def _hf_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _progress_tqdm(progress: Progress | None, stage: str) -> Any:
    from tqdm.auto import tqdm

    class _Reporting(tqdm):  # type: ignore[misc, valid-type]
        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            if progress is not None:
                progress(stage, float(self.n), float(self.total or 0), self.desc or "")
            return shown

    return _Reporting


def local_model_path(base: str, progress: Progress | None = None) -> Path:
    """A local folder for `base`: the folder itself, or the hub snapshot (downloaded once, with progress)."""
    path = Path(base).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise JobFailed(f"{path} is not a diffusers model folder (no model_index.json)")
        return path
    if base.startswith((".", "/", "~")) or base.count("/") != 1:
        raise JobFailed(f"model.base = {base!r}: no such folder, and not a hub id like 'Tongyi-MAI/Z-Image-Turbo'")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(base, allow_patterns=HUB_PATTERNS, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    if progress:
        progress("download", 0, 0, f"downloading {base} (about 20 GB, once) into {_hf_cache_dir()}")
    try:
        return Path(snapshot_download(base, allow_patterns=HUB_PATTERNS,
                                      tqdm_class=_progress_tqdm(progress, "download")))
    except Exception as exc:
        raise JobFailed(
            f"model {base} is not in the Hugging Face cache ({_hf_cache_dir()}) and could not be downloaded "
            f"({type(exc).__name__}); on a machine with internet run `hf download {base}` (or set HF_HOME to a "
            "cache that has it), or set model.base to a local diffusers folder"
        ) from None


def model_identity(model: ModelSettings) -> str:
    """A string that changes whenever the weights would: part of every cache key."""
    if is_tiny(model):
        return TINY_IDENTITY
    path = Path(model.base).expanduser()
    if path.is_dir():
        ident = f"local:{path.resolve()}:{_mtime(path / 'model_index.json')}"
    else:
        ident = f"hub:{model.base}"
        with contextlib.suppress(Exception):  # not cached yet: the id alone
            ident += ":" + local_model_path(model.base).name  # snapshot folder name = commit hash
    if model.transformer_file:
        f = Path(model.transformer_file).expanduser()
        ident += f"|transformer:{f.resolve()}:{_mtime(f)}"
    return ident


def _mtime(path: Path) -> str:
    try:
        st = path.stat()
        return f"{st.st_size}-{int(st.st_mtime)}"
    except OSError:
        return "missing"


def pick_device(setting: str) -> str:
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise JobFailed(f"model.device = {setting!r} but torch sees no CUDA GPU (torch {torch.__version__})")
    return setting


def pick_dtype(setting: str, device: str) -> Any:
    """The weights' dtype; CPUs compute in fp32."""
    import torch

    if not device.startswith("cuda"):
        return torch.float32
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[setting]


def load_components(model: ModelSettings, parts: Iterable[str] = PARTS, dtype: Any = None,
                    progress: Progress | None = None) -> dict[str, Any]:
    """Load the named parts on the CPU (the caller moves them), reporting each stage."""
    wanted = set(parts)
    parts = [p for p in PARTS if p in wanted]
    if is_tiny(model):
        comps = build_tiny(parts)
        if dtype is not None and str(dtype) != "torch.float32":  # built in fp32 already
            for name in ("text_encoder", "vae", "transformer"):
                if name in comps:
                    comps[name].to(dtype)
        return comps
    root = local_model_path(model.base, progress)
    comps: dict[str, Any] = {}
    for i, name in enumerate(parts):
        if progress:
            progress("load", i, len(parts), f"loading {name}")
        try:
            comps[name] = _load_part(root, name, model, dtype)
        except (OSError, ValueError, json.JSONDecodeError) as exc:
            raise JobFailed(f"could not load the {name} of {model.base}: {exc}") from None
    if progress:
        progress("load", len(parts), len(parts), "loaded")
    return comps


def _load_part(root: Path, name: str, model: ModelSettings, dtype: Any) -> Any:
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImageTransformer2DModel
    from transformers import AutoModel, AutoTokenizer

    kw = {"torch_dtype": dtype} if dtype is not None else {}
    if name == "scheduler":
        return FlowMatchEulerDiscreteScheduler.from_pretrained(root, subfolder="scheduler")
    if name == "tokenizer":
        return AutoTokenizer.from_pretrained(root / "tokenizer", local_files_only=True)
    if name == "text_encoder":
        return AutoModel.from_pretrained(root / "text_encoder", local_files_only=True, use_safetensors=True, **kw)
    if name == "vae":
        return AutoencoderKL.from_pretrained(root, subfolder="vae", use_safetensors=True, **kw)
    if model.transformer_file:
        f = Path(model.transformer_file).expanduser()
        if f.suffix != ".safetensors" or not f.is_file():
            raise JobFailed(f"model.transformer_file {f}: expected an existing .safetensors file")
        return ZImageTransformer2DModel.from_single_file(str(f), config=str(root), subfolder="transformer",
                                                         local_files_only=True, **kw)
    return ZImageTransformer2DModel.from_pretrained(root, subfolder="transformer", use_safetensors=True, **kw)


def pipeline_from_components(components: dict[str, Any], img2img: bool = False) -> Any:
    from diffusers import ZImageImg2ImgPipeline, ZImagePipeline

    cls = ZImageImg2ImgPipeline if img2img else ZImagePipeline
    return cls(**{k: components[k] for k in PARTS})
