"""Import raw photos into `dataset/`: orientation, RGB, square crop (centre or around the face), resize, caption stub.

Never writes outside `dataset/` (and `.zchar/imports.json`), never touches the input folder, never overwrites a
dataset image without `force`, and re-running it writes nothing new. Every file gets a line in the result.
Pillow (+ OpenCV for faces) only: it runs in the CLI and in a thread worker of the Dataset pane.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from engine import faces
from engine.captions import caption_path, read_caption, write_caption
from engine.dataset import content_key
from engine.image_io import ImageReadError, load_rgb, read_bytes
from engine.project import IMAGE_EXTENSIONS, Project, ProjectError, Settings, atomic_write_bytes, with_trigger

FORMATS = {"jpg": ("JPEG", ".jpg"), "png": ("PNG", ".png")}
FACE_DETECT_SIDE = 768  # larger than the health check's: raw photos may show the face small
_UNSUPPORTED_HINTS = {".heic": "HEIC photos are not supported: export them as JPEG",
                      ".heif": "HEIF photos are not supported: export them as JPEG",
                      ".avif": "AVIF is not supported: export it as JPEG or PNG",
                      ".svg": "vector images are not supported: export a PNG"}


class PrepareError(Exception):
    """The whole import cannot run (bad folder, bad option): one sentence."""


@dataclass
class PrepareOptions:
    size: int = 1024
    face_detect: bool = False
    crop_face_ratio: float = 0.6
    force: bool = False
    format: str = "jpg"  # JPEG quality 95, no chroma subsampling: visually lossless, 4× smaller than PNG

    def check(self) -> None:
        if not 64 <= self.size <= 8192:
            raise PrepareError(f"--size {self.size}: expected a side length from 64 to 8192")
        if not 0.05 <= self.crop_face_ratio <= 1.0:
            raise PrepareError(f"--crop-face-ratio {self.crop_face_ratio}: expected a number from 0.05 to 1.0")
        if self.format not in FORMATS:
            raise PrepareError(f"--format {self.format}: expected one of {', '.join(FORMATS)}")

    @property
    def signature(self) -> str:
        """What decides the output (faces count only when they can be detected): a re-run with the same one is a
        no-op."""
        face = f"face{self.crop_face_ratio:g}" if self.face_detect and faces.available() else "centre"
        return f"{self.size}/{face}/{self.format}"


@dataclass
class Written:
    source: str  # relative to the input folder
    dest: str  # file name in dataset/
    notes: list[str] = field(default_factory=list)


@dataclass
class PrepareResult:
    written: list[Written] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)
    unchanged: int = 0  # sources already imported with the same options (a re-run)
    face_check: str = ""  # why faces were not looked for, when they were asked for

    def lines(self) -> list[tuple[str, str]]:
        """(line, level) pairs: what was written (with notes), what was skipped and why."""
        out = [(f"written {len(self.written)} image(s) to dataset/", "ok" if self.written else "info")]
        out += [(f"  {w.source} → {w.dest}" + (f" ({'; '.join(w.notes)})" if w.notes else ""), "info")
                for w in self.written]
        if self.unchanged:
            out.append((f"unchanged {self.unchanged} (already imported with these options)", "info"))
        if self.skipped:
            out.append((f"skipped {len(self.skipped)}:", "warning"))
            out += [(f"  {src}: {why}", "warning") for src, why in self.skipped]
        if self.face_check:
            out.append((self.face_check + "; used centre crops", "warning"))
        return out

    def summary(self) -> list[str]:
        return [line for line, _level in self.lines()]


@dataclass
class _Source:
    path: Path
    rel: str
    dest_stem: str = ""


ProgressFn = Callable[[int, int, str], None]


def crop_box(width: int, height: int, face: faces.Box | None, ratio: float) -> tuple[tuple[int, int, int, int], str]:
    """The square crop (left, top, right, bottom) and a note: centred, or centred on `face` so that the face's
    larger side spans `ratio` of the crop side (less when the picture is too tight), shifted to stay inside."""
    short = min(width, height)
    if face is None:
        left, top = (width - short) // 2, (height - short) // 2
        return (left, top, left + short, top + short), ""
    face_side = max(face.w, face.h)
    side = min(short, max(face_side, round(face_side / ratio)))
    cx, cy = face.centre
    left = int(min(max(round(cx - side / 2), 0), width - side))
    top = int(min(max(round(cy - side / 2), 0), height - side))
    note = "face crop"
    if face_side / side > ratio + 0.01:
        note += f" (the face spans {face_side / side:.0%}: the picture is too tight for {ratio:g})"
    return (left, top, left + side, top + side), note


def prepare(project: Project, settings: Settings, raw: Path, options: PrepareOptions,
            progress: ProgressFn | None = None, cancel: Callable[[], bool] | None = None,
            workers: int | None = None) -> PrepareResult:
    options.check()
    raw = Path(raw).expanduser()
    if not raw.is_dir():
        raise PrepareError(f"{raw}: not a folder (--input must be the folder of raw photos)")
    raw_root = raw.resolve()
    dataset = project.dataset_dir.resolve() if project.dataset_dir.exists() else project.dataset_dir
    if _contains(raw_root, dataset):
        raise PrepareError(f"{raw}: is or contains the project's dataset/ folder; point --input at the raw photos")
    if _contains(dataset, raw_root):
        raise PrepareError(f"{raw}: is inside dataset/; keep raw photos outside it")
    project.dataset_dir.mkdir(parents=True, exist_ok=True)
    result = PrepareResult()
    if options.face_detect and not faces.available():
        result.face_check = faces.unavailable_reason()
    sources = _collect(raw, raw_root, result)
    _name_outputs(sources, options)
    manifest_path = project.state_dir / "imports.json"
    manifest = _read_manifest(manifest_path)
    lock = threading.Lock()
    done = 0

    def work(src: _Source) -> tuple[_Source, Any]:
        nonlocal done
        if cancel and cancel():
            outcome: Any = "cancelled before this file"
        else:
            outcome = _import_one(project, settings, src, options, manifest, lock)
        with lock:
            done += 1
            if progress:
                progress(done, len(sources), src.rel)
        return src, outcome

    with ThreadPoolExecutor(max_workers=workers or min(2, os.cpu_count() or 1),
                            thread_name_prefix="zchar-prepare") as pool:
        for src, outcome in pool.map(work, sources):
            if isinstance(outcome, Written):
                result.written.append(outcome)
            elif outcome is None:
                result.unchanged += 1
            else:
                result.skipped.append((src.rel, outcome))
    if result.written:
        project.state_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(manifest_path, json.dumps(manifest, indent=1).encode("utf-8"))
    result.skipped.sort()
    return result


def _contains(folder: Path, inner: Path) -> bool:
    return folder == inner or folder in inner.parents


def _collect(raw: Path, raw_root: Path, result: PrepareResult) -> list[_Source]:
    """Image files under `raw` (sorted); everything else gets a skip reason. Symlinks must stay inside `raw`."""
    sources: list[_Source] = []
    for folder, dirnames, filenames in os.walk(raw, followlinks=False):
        base = Path(folder)
        dirnames.sort()
        for d in list(dirnames):
            path = base / d
            if d.startswith("."):
                dirnames.remove(d)
            elif path.is_symlink():
                dirnames.remove(d)
                rel = path.relative_to(raw).as_posix()
                inside = _contains(raw_root, _resolved(path))
                result.skipped.append((rel + "/", "a symlinked folder inside the input folder: not followed"
                                       if inside else "a symlink to a folder outside the input folder: refused"))
        for fname in sorted(filenames):
            if fname.startswith("."):
                continue
            path = base / fname
            rel = path.relative_to(raw).as_posix()
            suffix = path.suffix.lower()
            if path.is_symlink():
                target = _resolved(path)
                if not _contains(raw_root, target):
                    result.skipped.append((rel, "a symlink to a file outside the input folder: refused"))
                    continue
                if not target.exists():
                    result.skipped.append((rel, "a broken symlink"))
                    continue
            if not path.is_file():  # reading a named pipe or a device would block or never end
                result.skipped.append((rel, "not a regular file (a pipe, socket or device)"))
                continue
            if suffix == ".txt":
                continue  # a caption that came with a photo: read when the photo is imported
            if suffix in IMAGE_EXTENSIONS:
                sources.append(_Source(path, rel))
            else:
                result.skipped.append((rel, _UNSUPPORTED_HINTS.get(suffix, f"not an image type zchar reads "
                                                                          f"({suffix or 'no extension'})")))
    return sources


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return Path("/nonexistent-symlink-loop")


def _name_outputs(sources: list[_Source], options: PrepareOptions) -> None:
    """dataset/ names: the relative path flattened with '_'; sources that would clash keep their extension in the
    name (a.jpg + a.png → a_jpg, a_png), then a counter. Deterministic, so a re-run maps every file the same way."""
    def stem_of(src: _Source) -> str:
        stem = src.rel.rsplit(".", 1)[0].replace("/", "_")
        return re.sub(r"[\x00-\x1f\x7f]", "_", stem).strip(" .") or "image"

    groups: dict[str, list[_Source]] = {}
    for src in sources:
        groups.setdefault(stem_of(src).casefold(), []).append(src)
    taken: set[str] = set()
    for group in groups.values():
        for src in group:
            stem = stem_of(src)
            if len(group) > 1:
                stem += "_" + src.path.suffix.lower().lstrip(".")
            candidate, n = stem, 2
            while candidate.casefold() in taken:
                candidate, n = f"{stem}_{n}", n + 1
            taken.add(candidate.casefold())
            src.dest_stem = candidate


def _read_manifest(path: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text("utf-8"))
        if isinstance(data, dict):
            return data
    return {}


def _import_one(project: Project, settings: Settings, src: _Source, options: PrepareOptions,
                manifest: dict[str, Any], lock: threading.Lock) -> Written | str | None:
    """Written, a skip reason, or None when it was already imported the same way."""
    fmt, ext = FORMATS[options.format]
    dest = project.dataset_dir / (src.dest_stem + ext)
    try:
        data = read_bytes(src.path)
    except ImageReadError as exc:
        return str(exc)
    key = content_key(data)
    record = {"source": str(src.path.absolute()), "key": key, "options": options.signature}
    if (dest.exists() or dest.is_symlink()) and not options.force:
        with lock:
            previous = manifest.get(dest.name)
        if previous == record:
            return None
        if isinstance(previous, dict) and previous.get("key") == key:
            return f"already imported as dataset/{dest.name} with other options (use --force to redo it)"
        return f"dataset/{dest.name} already exists (use --force to overwrite it)"
    try:
        loaded = load_rgb(data)
    except ImageReadError as exc:
        return str(exc)
    notes = list(loaded.notes)
    image = loaded.image
    face = None
    if options.face_detect and faces.available():
        found = faces.detect(image, max_side=FACE_DETECT_SIDE, scale_step=1.1, min_fraction=1 / 16)
        face = found[0] if found else None
        if not found:
            notes.append("no face found: centre crop")
        elif len(found) > 1:
            notes.append(f"{len(found)} faces: cropped around the largest")
    box, note = crop_box(image.width, image.height, face, options.crop_face_ratio)
    if note:
        notes.insert(0, note)
    side = box[2] - box[0]
    out = min(options.size, side)
    if out < options.size:
        notes.append(f"kept at {out}² (smaller than {options.size}; not upscaled)")
    image = image.resize((out, out), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
    buf = io.BytesIO()
    if fmt == "JPEG":
        image.save(buf, fmt, quality=95, subsampling=0)
    else:
        image.save(buf, fmt, optimize=False)
    try:
        atomic_write_bytes(dest, buf.getvalue())
        if not caption_path(dest).exists():
            write_caption(dest, with_trigger(settings.trigger, read_caption(src.path).text))
        else:
            notes.append(f"kept the existing {caption_path(dest).name}")
    except (OSError, ProjectError) as exc:
        return f"could not write dataset/{dest.name}: {getattr(exc, 'strerror', None) or exc}"
    with lock:
        manifest[dest.name] = record
    return Written(src.rel, dest.name, notes)

