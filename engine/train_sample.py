"""Validation samples during training: fixed prompts × fixed seeds, with the user's inference settings.

The prompts' embeddings come from the feature cache (the text encoder is never loaded for this); the VAE decoder is
loaded the first time samples are made and kept on the CPU between rounds.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.project import Settings, atomic_write_bytes, with_trigger
from engine.train_adapter import reversed_for_sampling


@dataclass
class Sample:
    prompt_index: int
    seed: int
    prompt: str
    path: Path


def validation_prompts(settings: Settings) -> list[str]:
    return [with_trigger(settings.trigger, p) for p in settings.validation.prompts]


def sample_texts(settings: Settings) -> list[str]:
    """Every text whose embedding sampling needs (cached with the captions)."""
    texts = validation_prompts(settings)
    if settings.generate.guidance > 0:
        texts.append(settings.generate.negative_prompt)
    return texts


class Sampler:
    def __init__(self, settings: Settings, scheduler: Any, vae_loader: Callable[[], Any], text: dict[str, Any],
                 device: str, dtype: Any, turbo_merged: bool, trained_adapter: str):
        self.settings = settings
        self.scheduler = scheduler
        self.vae_loader = vae_loader
        self.vae: Any = None
        self.text = text
        self.device = device
        self.dtype = dtype
        self.turbo_merged = turbo_merged
        self.trained_adapter = trained_adapter

    def make(self, transformer: Any, out_dir: Path, step: int, epoch: int) -> list[Sample]:
        """One image per prompt × seed into out_dir, written atomically; the transformer is left in train mode."""
        import torch
        from diffusers import ZImagePipeline

        s, g = self.settings, self.settings.generate
        size = s.validation.size or s.train.resolution
        if self.vae is None:
            self.vae = self.vae_loader()
        self.vae.to(self.device)
        pipe = ZImagePipeline(scheduler=self.scheduler, vae=self.vae, text_encoder=None, tokenizer=None,
                              transformer=transformer)
        pipe.set_progress_bar_config(disable=True)
        negative = [self.text[g.negative_prompt].to(self.device, self.dtype)] if g.guidance > 0 else None
        out: list[Sample] = []
        transformer.eval()
        try:
            with torch.no_grad(), reversed_for_sampling(transformer, self.trained_adapter, self.turbo_merged):
                for pi, prompt in enumerate(validation_prompts(s)):
                    emb = [self.text[prompt].to(self.device, self.dtype)]
                    for seed in s.validation.seeds:
                        gen = torch.Generator("cpu").manual_seed(seed)
                        image = pipe(prompt_embeds=emb, negative_prompt_embeds=negative, height=size, width=size,
                                     num_inference_steps=g.steps, guidance_scale=g.guidance, generator=gen).images[0]
                        path = out_dir / f"step{step:06d}-p{pi}-s{seed}.png"
                        atomic_write_bytes(path, _png(image, {"prompt": prompt, "seed": str(seed),
                                                              "step": str(step), "epoch": str(epoch)}))
                        out.append(Sample(pi, seed, prompt, path))
        finally:
            transformer.train()
            self.vae.to("cpu")
        return out


def _png(image: Any, text: dict[str, str]) -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for k, v in text.items():
        info.add_text(f"zchar.{k}", v)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()
