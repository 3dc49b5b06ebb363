"""The prompt builder's vocabulary and its matrix mode (pure Python, no Textual).

A field may hold alternatives separated by `|` ("park | beach | city"); one or two such fields expand into every
combination (five scenes × three outfits = fifteen prompts), each composed with the trigger word first.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from engine.project import TEMPLATE_FIELDS, compose_prompt

SEPARATOR = "|"
MAX_VARYING_FIELDS = 2
MAX_PROMPTS = 400

# Suggestions per field (the guide's template: trigger, age, outfit, scene, action, style, quality).
SUGGESTIONS: dict[str, list[str]] = {
    "age": ["young woman", "young man", "adult woman", "adult man", "teenage girl", "teenage boy", "elderly woman",
            "elderly man", "20 years old", "30 years old", "40 years old", "child"],
    "outfit": ["casual clothes", "hoodie and jeans", "white t-shirt", "red dress", "black dress", "business suit",
               "school uniform", "leather jacket", "summer dress", "winter coat", "kimono", "armor", "lab coat",
               "sportswear", "swimsuit"],
    "scene": ["plain white background", "studio backdrop", "park on a sunny day", "city street at night",
              "beach at sunset", "cozy cafe", "library", "forest", "snowy mountain", "rooftop",
              "sci-fi spaceship corridor",
              "medieval castle", "living room", "office", "neon-lit alley"],
    "action": ["looking at the camera", "smiling", "laughing", "walking", "running", "sitting on a bench",
               "reading a book", "drinking coffee", "waving", "arms crossed", "looking over the shoulder",
               "close-up portrait", "full body", "upper body"],
    "style": ["photorealistic", "35mm photo", "film grain", "cinematic lighting", "soft studio light",
              "natural light", "golden hour", "anime style", "watercolor illustration", "oil painting",
              "comic book style", "3d render", "pencil sketch"],
    "quality": ["highly detailed", "sharp focus", "high resolution", "best quality", "masterpiece",
                "professional photography", "8k", "detailed skin texture"],
}
PLACEHOLDERS = {f: "e.g. " + ", ".join(SUGGESTIONS[f][:2]) for f in TEMPLATE_FIELDS}


class MatrixError(ValueError):
    """A matrix the builder cannot expand; the text says why."""


def alternatives(text: str) -> list[str]:
    """The `|`-separated alternatives of a field ([''] for an empty field)."""
    parts = [p.strip() for p in text.split(SEPARATOR)]
    return [p for p in parts if p] or [""]


def varying_fields(fields: Mapping[str, str]) -> list[str]:
    return [f for f in TEMPLATE_FIELDS if len(alternatives(fields.get(f, ""))) > 1]


def expand(fields: Mapping[str, str]) -> list[dict[str, str]]:
    """Every combination of the fields' alternatives, the first varying field outermost."""
    varying = varying_fields(fields)
    if len(varying) > MAX_VARYING_FIELDS:
        raise MatrixError(f"alternatives (|) in {', '.join(varying)}: a matrix varies one or two fields")
    options = [alternatives(fields.get(f, "")) for f in TEMPLATE_FIELDS]
    total = 1
    for o in options:
        total *= len(o)
    if total > MAX_PROMPTS:
        raise MatrixError(f"the matrix makes {total} prompts; the limit is {MAX_PROMPTS}")
    return [dict(zip(TEMPLATE_FIELDS, combo, strict=True)) for combo in itertools.product(*options)]


def prompts(trigger: str, fields: Mapping[str, str]) -> list[str]:
    return [compose_prompt(trigger, combo) for combo in expand(fields)]


def strength_band(strength: float) -> tuple[str, str]:
    """The guide's band for a LoRA strength, and a style class: ok, muted or warning."""
    if strength < 0:
        return "negative: pushes away from the LoRA", "warning"
    if strength < 0.3:
        return "faint (below 0.3)", "muted"
    if strength <= 0.55:
        return "subtle (0.3–0.5)", "ok"
    if strength <= 0.85:
        return "daily (0.6–0.8)", "ok"
    if strength <= 1.0:
        return "strong (0.9–1.0)", "ok"
    return "artefact risk (above 1.0)", "warning"
