"""Generation parameters inside PNG text chunks, so that the image alone regenerates itself.

Two chunks: `parameters`, the A1111 text that other tools (A1111/Forge, ComfyUI readers, civitai, image
browsers) already parse, and `zchar`, JSON with every field our engine needs to regenerate the image exactly.
Pillow only; no torch.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from engine.project import atomic_write_bytes

JSON_KEY = "zchar"
A1111_KEY = "parameters"
SAMPLER = "Euler (flow match)"


def a1111_parameters(meta: dict[str, Any]) -> str:
    """The A1111 `parameters` text: prompt (with <lora:NAME:S> tags), negative prompt, then key: value pairs."""
    loras = meta.get("loras") or []
    prompt = meta["prompt"]
    if loras:
        prompt += " " + " ".join(f"<lora:{lo['name']}:{lo['strength']:g}>" for lo in loras)
    lines = [prompt]
    if meta.get("negative_prompt"):
        lines.append(f"Negative prompt: {meta['negative_prompt']}")
    fields: list[tuple[str, Any]] = [
        ("Steps", meta["steps"]),
        ("Sampler", SAMPLER),
        ("CFG scale", f"{meta['guidance']:g}"),
        ("Seed", meta["seed"]),
        ("Size", f"{meta['width']}x{meta['height']}"),
        ("Model", meta.get("base_model", "")),
    ]
    if meta.get("references"):
        fields.append(("Denoising strength", f"{meta['reference_strength']:g}"))
        fields.append(("Reference", ", ".join(Path(r["path"]).name for r in meta["references"])))
    if loras:
        hashes = ", ".join(f"{lo['name']}: {lo['hash']}" for lo in loras)
        fields.append(("Lora hashes", f'"{hashes}"'))
    fields.append(("Version", f"zchar {meta.get('zchar_version', '')}".strip()))
    lines.append(", ".join(f"{k}: {v}" for k, v in fields if v not in ("", None)))
    return "\n".join(lines)


def png_bytes(image: Any, meta: dict[str, Any]) -> bytes:
    """`image` (PIL) encoded as PNG with both text chunks."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(A1111_KEY, a1111_parameters(meta))
    info.add_text(JSON_KEY, json.dumps(meta, ensure_ascii=False, sort_keys=True))
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def write_png(path: Path, image: Any, meta: dict[str, Any]) -> None:
    """Atomically: a reader (or a crash) never sees half an image."""
    atomic_write_bytes(path, png_bytes(image, meta))


def read_meta(path: Path) -> dict[str, Any] | None:
    """The JSON parameters of a PNG we wrote, or None when it has none (or is not a readable PNG)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            text = im.text.get(JSON_KEY) if hasattr(im, "text") else None  # type: ignore[attr-defined]
    except (OSError, UnidentifiedImageError, SyntaxError):
        return None
    if not text:
        return None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError:
        return None
    return meta if isinstance(meta, dict) else None

