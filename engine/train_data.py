"""Training data: the usable images and captions, aspect-ratio buckets, and the epoch/batch plan.

Everything here is deterministic from the dataset and the seed, so a resumed run sees the same batches.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import captions
from engine.dataset import MAX_ASPECT, MIN_IMAGES  # buckets span 1:MAX_ASPECT … MAX_ASPECT:1
from engine.errors import JobFailed
from engine.image_io import ImageReadError, load_rgb, open_rgb, read_bytes
from engine.project import Project, ProjectError, Settings, list_images, with_trigger


@dataclass(frozen=True)
class Item:
    """One training image: its file, caption (trigger first), content hash and bucket (width, height)."""

    image: Path
    caption: str
    image_hash: str
    bucket: tuple[int, int]


def make_buckets(resolution: int, enabled: bool = True) -> list[tuple[int, int]]:
    """(width, height) pairs with about resolution² pixels, sides multiples of 16, aspect within 1:2…2:1."""
    if not enabled:
        return [(resolution, resolution)]
    area = resolution * resolution
    out: set[tuple[int, int]] = set()
    for w in range(16, 2 * resolution + 1, 16):
        h = max(16, round(area / w / 16) * 16)
        if max(w / h, h / w) <= MAX_ASPECT:
            out.add((w, h))
    # keep a spread of shapes, not every 16-px step (fewer buckets = fuller batches)
    by_ratio: dict[float, tuple[int, int]] = {}
    for w, h in sorted(out):
        key = round(w / h, 1)
        best = by_ratio.get(key)
        if best is None or abs(w * h - area) < abs(best[0] * best[1] - area):
            by_ratio[key] = (w, h)
    return sorted(by_ratio.values())


def nearest_bucket(width: int, height: int, buckets: list[tuple[int, int]]) -> tuple[int, int]:
    ratio = width / height
    return min(buckets, key=lambda b: (abs(b[0] / b[1] - ratio), -b[0] * b[1]))


def scan(project: Project, settings: Settings, log: callable | None = None) -> list[Item]:
    """Usable dataset images (excluded and unreadable ones left out); fails with fewer than MIN_IMAGES.

    Each image is decoded (JPEGs at a reduced scale) with the dataset check's reader, so a file the check calls
    unreadable (truncated, a decompression bomb, not an image, a symlink out of the project) is skipped here too.
    """
    excluded = set(settings.excluded)
    buckets = make_buckets(settings.train.resolution, settings.train.buckets)
    items: list[Item] = []
    skipped: list[str] = []
    all_images = list_images(project.dataset_dir)
    for path in all_images:
        if path.name in excluded:
            continue
        try:
            project.inside(path)  # a symlink may point anywhere; only the project's own files are read
        except ProjectError:
            skipped.append(f"{path.name} (a symlink to a file outside the project)")
            continue
        try:
            data = read_bytes(path)
            loaded = load_rgb(data, draft=64)
        except ImageReadError as exc:
            skipped.append(f"{path.name} ({exc})")
            continue
        caption = with_trigger(settings.trigger, captions.read_caption(path).text)  # the trigger alone if none
        items.append(Item(path, caption, hashlib.sha256(data).hexdigest(),
                          nearest_bucket(loaded.width, loaded.height, buckets)))
    if skipped and log:
        log(f"skipped {len(skipped)} unreadable image(s): {', '.join(skipped[:5])}"
            + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""), "warning")
    if len(items) < MIN_IMAGES:
        n_excl = sum(1 for p in all_images if p.name in excluded)
        detail = ", ".join(filter(None, [f"{n_excl} excluded" if n_excl else "",
                                         f"{len(skipped)} unreadable" if skipped else ""]))
        raise JobFailed(f"{len(items)} usable image(s) in {project.dataset_dir}"
                        f"{f' ({detail})' if detail else ''}: at least {MIN_IMAGES} are needed to train "
                        "(15–20 recommended)")
    return items


def manifest_hash(items: list[Item]) -> str:
    """Changes when an image, a caption, or the set of images changes (checkpoints record it)."""
    rows = sorted((i.image.name, i.image_hash, i.caption, i.bucket) for i in items)
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def load_pixels(item: Item) -> Any:
    """The image as a (1, 3, H, W) float tensor in [-1, 1] at its bucket size (resize to cover, centre crop),
    decoded by the dataset check's reader; `.flip(-1)` mirrors it. Raises ImageReadError."""
    import numpy as np
    import torch
    from PIL import Image

    bw, bh = item.bucket
    img = open_rgb(item.image).image
    scale = max(bw / img.width, bh / img.height)
    size = (max(bw, round(img.width * scale)), max(bh, round(img.height * scale)))
    img = img.resize(size, Image.Resampling.LANCZOS)
    left, top = (img.width - bw) // 2, (img.height - bh) // 2
    img = img.crop((left, top, left + bw, top + bh))
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def epoch_batches(items: list[Item], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches of one epoch: indices grouped by bucket, shuffled by (seed, epoch), last partial batch kept."""
    rng = random.Random(f"zchar-{seed}-{epoch}")
    by_bucket: dict[tuple[int, int], list[int]] = {}
    for i, item in enumerate(items):
        by_bucket.setdefault(item.bucket, []).append(i)
    batches: list[list[int]] = []
    for bucket in sorted(by_bucket):
        idx = by_bucket[bucket]
        rng.shuffle(idx)
        batches += [idx[j:j + batch_size] for j in range(0, len(idx), batch_size)]
    rng.shuffle(batches)
    return batches


def steps_per_epoch(items: list[Item], batch_size: int, grad_accum: int) -> int:
    """Optimizer steps per epoch: `epoch_batches`' batch count (per bucket, rounded up) / grad_accum, rounded up."""
    n_batches = sum(-(-n // batch_size) for n in Counter(i.bucket for i in items).values())
    return -(-n_batches // grad_accum)
