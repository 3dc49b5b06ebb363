"""On-disk caches of VAE latents and text embeddings (`.zchar/cache/`), keyed by content.

A latent's key covers the image bytes, bucket size, flip and model identity; a text embedding's key covers the
text and model identity. A run whose keys are all present never loads the VAE encoder or the text encoder; when
some are missing, the part is loaded, used, and freed from the GPU before the transformer is loaded.
Files are safetensors written atomically, so a crash leaves either a whole entry or none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import JobFailed
from engine.image_io import ImageReadError
from engine.project import ModelSettings, atomic_write_bytes
from engine.train_data import Item, load_pixels

CACHE_VERSION = "v2"  # v2: images decoded by image_io.open_rgb (alpha on white, 16-bit scaled), as the check shows them
TEXT_BATCH = 8
Loading = Callable[[str, float, float, str], None]


@dataclass
class Features:
    """Cached tensors on the CPU: latents[(item index, flipped)] (C, H, W) and text[caption] (L, D)."""

    latents: dict[tuple[int, bool], Any] = field(default_factory=dict)
    text: dict[str, Any] = field(default_factory=dict)
    encoded_latents: int = 0  # how many were computed this time (0 on a fully cached run)
    encoded_texts: int = 0


class FeatureCache:
    def __init__(self, root: Path, identity: str):
        self.root = root
        self.identity = identity

    def _key(self, *parts: object) -> str:
        text = "\x1f".join(map(str, (CACHE_VERSION, self.identity, *parts)))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def latent_path(self, item: Item, flip: bool) -> Path:
        return self.root / "latents" / f"{self._key('latent', item.image_hash, item.bucket, flip)}.safetensors"

    def text_path(self, text: str) -> Path:
        return self.root / "text" / f"{self._key('text', text)}.safetensors"

    @staticmethod
    def read(path: Path) -> Any | None:
        from safetensors.torch import load_file

        if not path.is_file():
            return None
        try:
            return load_file(str(path))["t"]
        except Exception:  # a damaged entry is recomputed, not trusted
            path.unlink(missing_ok=True)
            return None

    @staticmethod
    def write(path: Path, tensor: Any) -> None:
        import torch
        from safetensors.torch import save

        atomic_write_bytes(path, save({"t": tensor.detach().to("cpu", torch.float32).contiguous()}))


def prepare(items: list[Item], texts: Iterable[str], model: ModelSettings, identity: str, cache_dir: Path,
            flip: bool, device: str, dtype: Any, loading: Loading) -> Features:
    """Latents of every item (and its mirror when `flip`) and embeddings of every text, from cache or computed."""
    cache = FeatureCache(cache_dir, identity)
    feats = Features()
    captions = sorted({*(i.caption for i in items), *texts, ""})  # "" stands in for a dropped caption
    missing_text = []
    for text in captions:
        t = cache.read(cache.text_path(text))
        if t is None:
            missing_text.append(text)
        else:
            feats.text[text] = t
    variants = [(i, f) for i in range(len(items)) for f in ((False, True) if flip else (False,))]
    missing_lat = []
    for i, f in variants:
        t = cache.read(cache.latent_path(items[i], f))
        if t is None:
            missing_lat.append((i, f))
        else:
            feats.latents[(i, f)] = t
    if missing_text:
        feats.text.update(_encode_texts(missing_text, model, cache, device, dtype, loading))
        feats.encoded_texts = len(missing_text)
    if missing_lat:
        feats.latents.update(_encode_latents(items, missing_lat, model, cache, device, dtype, loading))
        feats.encoded_latents = len(missing_lat)
    return feats


def release_gpu() -> None:
    """Return the memory of dropped models to the GPU (call after the last reference is gone)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _encode_texts(texts: list[str], model: ModelSettings, cache: FeatureCache, device: str, dtype: Any,
                  loading: Loading) -> dict[str, Any]:
    import torch
    from diffusers import ZImagePipeline

    from engine.models import load_components

    loading("text_encoder", 0, 1, "loading the text encoder (once: embeddings are cached)")
    parts = load_components(model, ["tokenizer", "text_encoder"], dtype, progress=loading)
    encoder = parts["text_encoder"].to(device)
    pipe = ZImagePipeline(scheduler=None, vae=None, text_encoder=encoder, tokenizer=parts.pop("tokenizer"),
                          transformer=None)
    parts.clear()
    del encoder
    out: dict[str, Any] = {}
    try:
        with torch.no_grad():
            for start in range(0, len(texts), TEXT_BATCH):
                chunk = texts[start:start + TEXT_BATCH]
                embeds, _ = pipe.encode_prompt(list(chunk), device=device, do_classifier_free_guidance=False)
                for text, emb in zip(chunk, embeds, strict=True):
                    cache.write(cache.text_path(text), emb)
                    out[text] = emb.detach().to("cpu", torch.float32)
                loading("text_encoder", min(start + TEXT_BATCH, len(texts)), len(texts), "encoding captions")
    finally:
        del pipe
        release_gpu()
    return out


def _encode_latents(items: list[Item], todo: list[tuple[int, bool]], model: ModelSettings, cache: FeatureCache,
                    device: str, dtype: Any, loading: Loading) -> dict[tuple[int, bool], Any]:
    import torch

    from engine.models import load_components

    loading("vae", 0, 1, "loading the VAE (once: latents are cached)")
    vae = load_components(model, ["vae"], dtype, progress=loading)["vae"].to(device)
    shift, scale = vae.config.shift_factor or 0.0, vae.config.scaling_factor
    out: dict[tuple[int, bool], Any] = {}
    decoded: tuple[int, Any] | None = None  # todo lists an item's two variants together: decode it once
    try:
        with torch.no_grad():
            for n, (i, flip) in enumerate(todo):
                if decoded is None or decoded[0] != i:
                    try:
                        decoded = (i, load_pixels(items[i]))
                    except (OSError, ImageReadError) as exc:
                        raise JobFailed(f"could not read {items[i].image.name}: {exc}") from None
                pixels = decoded[1].flip(-1) if flip else decoded[1]
                latent = vae.encode(pixels.to(device, vae.dtype)).latent_dist.mode()[0]
                latent = (latent.float() - shift) * scale
                cache.write(cache.latent_path(items[i], flip), latent)
                out[(i, flip)] = latent.to("cpu")
                loading("vae", n + 1, len(todo), "encoding images to latents")
    finally:
        del vae
        release_gpu()
    return out
