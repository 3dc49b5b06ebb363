"""Dataset health scan speed: cold (nothing cached) and cached, on generated photo-like images.

    python bench/dataset_scan.py                  # 500 × 1024² JPEGs (goals: cold ≤ 10 s, cached ≤ 1 s on 2 cores)
    python bench/dataset_scan.py --format png     # lossless PNGs: no reduced decode, ~2× the CPU, slow to generate

The cold scan is the Dataset pane's: measures + thumbnails, faces when OpenCV's cascade is installed.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from engine import dataset, faces
from engine.project import init_project


def base_pictures(n: int, side: int, seed: int = 0) -> list[Image.Image]:
    """A few distinct 'photos': smooth background, shapes, a person-like figure, sensor noise."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).resize(
            (side, side), Image.Resampling.BICUBIC)
        d = ImageDraw.Draw(img)
        for _ in range(25):
            x, y, r = (int(v) for v in rng.integers(0, side, 3))
            d.ellipse((x, y, x + r // 4, y + r // 4), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        cx, s = side // 2 + int(rng.integers(-side // 6, side // 6)), side // 8
        d.ellipse((cx - 2 * s, side // 2, cx + 2 * s, side + s), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        d.ellipse((cx - s, side // 2 - 2 * s, cx + s, side // 2 + s // 2), fill=(225, 185, 155))
        out.append(img.filter(ImageFilter.GaussianBlur(1)))
    return out


def generate(folder: Path, count: int, side: int, fmt: str) -> None:
    """`count` distinct files: each base picture shifted, tinted and given its own noise (so no two hash alike)."""
    rng = np.random.default_rng(1)
    bases = base_pictures(24, side + 64)
    for i in range(count):
        base = bases[i % len(bases)]
        dx, dy = (int(v) for v in rng.integers(0, 64, 2))
        arr = np.asarray(base.crop((dx, dy, dx + side, dy + side)), dtype=np.int16)
        arr = arr + rng.integers(-6, 7, 3)[None, None, :] + rng.integers(-8, 9, (side, side, 1), dtype=np.int16)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        buf = io.BytesIO()
        img.save(buf, "JPEG" if fmt == "jpg" else "PNG", **({"quality": 92} if fmt == "jpg" else {}))
        (folder / f"img_{i:04d}.{fmt}").write_bytes(buf.getvalue())
        (folder / f"img_{i:04d}.txt").write_text(f"benchy, picture {i}\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--side", type=int, default=1024)
    ap.add_argument("--format", choices=("jpg", "png"), default="jpg")
    ap.add_argument("--workers", type=int, default=None, help="scan threads (default: min(4, cores))")
    ap.add_argument("--no-thumbs", action="store_true", help="measure only (what `zchar check` does)")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="zchar-bench-"))
    try:
        project = init_project(root / "bench", "benchy", base="tiny")
        settings = project.load()
        t = time.perf_counter()
        generate(project.dataset_dir, args.count, args.side, args.format)
        print(f"generated {args.count} × {args.side}² {args.format.upper()} in {time.perf_counter() - t:.1f} s "
              f"({sum(f.stat().st_size for f in project.dataset_dir.iterdir()) / 2**20:.0f} MiB)")
        print(f"cores: {os.cpu_count()}  faces: {faces.unavailable_reason() or 'Haar cascade'}")
        thumbs = not args.no_thumbs
        t, cpu = time.perf_counter(), time.process_time()
        cold = dataset.scan(project, settings, thumbs=thumbs, workers=args.workers)
        cold_s, cold_cpu = time.perf_counter() - t, time.process_time() - cpu
        t = time.perf_counter()
        warm = dataset.scan(project, settings, thumbs=thumbs, workers=args.workers)
        warm_s = time.perf_counter() - t
        assert cold.measured == args.count and warm.measured == 0, (cold.measured, warm.measured)
        per = 1000 * cold_s / max(1, args.count)
        print(f"cold scan:   {cold_s:6.2f} s  ({per:.1f} ms/image; goal ≤ 10 s for 500 on 2 cores)  "
              f"CPU {cold_cpu:.1f} s (wall on an idle machine ≈ CPU / cores in use)")
        print(f"load average while it ran: {os.getloadavg()[0]:.1f}")
        print(f"cached scan: {warm_s:6.2f} s  (goal ≤ 1 s)")
        print(f"report: {cold.verdict}; {len(cold.duplicate_groups)} near-duplicate groups; "
              f"{len(cold.warnings)} warnings")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
