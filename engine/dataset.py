"""Dataset health: per-image checks, near-duplicate groups, totals against the guide, and the trash.

Where it runs: in a thread worker of the UI process (the Dataset pane) and in the CLI (`zchar check`), not in the
engine. It needs only Pillow, numpy, imagehash and optionally OpenCV — never torch — so the pane works before any
model is downloaded and while the engine's single job thread is busy training for hours. Decoding, hashing and
numpy release the GIL, so a small thread pool uses both cores without forking inside the running dashboard.

Content measures (size, blur, exposure, faces, perceptual hash) are cached in `.zchar/health.json`, keyed by a
hash of the file's bytes, with (size, mtime) as the fast path: a second scan reads no image. Caption and settings
checks are cheap and always recomputed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from engine import faces, image_stats
from engine.captions import Caption, caption_path, has_trigger, leads_with_trigger, read_caption
from engine.image_io import ImageReadError, load_rgb, read_bytes
from engine.project import IMAGE_EXTENSIONS, Project, ProjectError, Settings, atomic_write_bytes

MIN_IMAGES, GOOD_IMAGES, PRO_IMAGES = 5, 15, 30
SCAN_SIDE = 512  # measures are taken on a copy this size (JPEGs decode straight to it)
THUMB_SIDE = 128
CACHE_VERSION = 3
DUPLICATE_DISTANCE = 8  # pHash bits: resized/re-encoded copies are 0–2, burst shots a few, different pictures 10+
DUPLICATE_COLOUR = 24.0  # and similar colours (mean difference of quarter averages, 0..255): not just the same layout
BLUR_LIMIT = 0.6  # blur effect score (0 sharp … 1 blurry): sharp photos score 0.2–0.45, drawings less
DARK_MEAN, BRIGHT_MEAN, CLIPPED_SHARE = 35.0, 225.0, 0.6
MAX_ASPECT = 2.0
LEVELS = ("error", "warning", "info")

ProgressFn = Callable[[int, int, str], None]
CancelFn = Callable[[], bool]


@dataclass
class Measures:
    """What the pixels say; depends only on the file's content (cached by content key)."""

    key: str = ""
    width: int = 0
    height: int = 0
    format: str = ""
    blur: float = 0.0
    brightness: float = 0.0
    highlights: float = 0.0
    shadows: float = 0.0
    phash: str = ""
    colours: list[int] = field(default_factory=list)  # see image_stats.colour_signature
    faces: int | None = None  # None: face detection unavailable
    notes: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class Flag:
    level: str  # error | warning | info
    code: str  # a short badge ("blurry", "dup 1", …)
    message: str


@dataclass
class ImageHealth:
    name: str
    path: Path
    measures: Measures
    caption: Caption
    excluded: bool = False
    flags: list[Flag] = field(default_factory=list)
    duplicate_group: int = 0  # 1-based; 0 when the image has no near-duplicate

    @property
    def level(self) -> str:
        """The worst flag's level, or "ok"."""
        for level in LEVELS[:2]:
            if any(f.level == level for f in self.flags):
                return level
        return "ok"

    @property
    def usable(self) -> bool:
        return not self.excluded and self.level != "error"


@dataclass
class DatasetReport:
    images: int = 0  # included images without errors: what training will use
    excluded: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    verdict: str = ""
    verdict_level: str = "ok"  # error | warning | ok | great
    items: list[ImageHealth] = field(default_factory=list)
    duplicate_groups: list[list[str]] = field(default_factory=list)
    face_check: str = ""  # '' or why faces were not checked
    notes: list[str] = field(default_factory=list)
    measured: int = 0  # images decoded by this scan (the rest came from the cache)
    seconds: float = 0.0


def verdict(count: int) -> tuple[str, str]:
    """(level, sentence) of the seed guide's ranges: 5 minimum, 15–20 recommended, 30+ high quality."""
    if count < MIN_IMAGES:
        return "error", f"{count} usable images: too few to train (at least {MIN_IMAGES}; 15–20 recommended)"
    if count < GOOD_IMAGES:
        return "warning", f"{count} usable images: enough to train; 15–20 recommended for a consistent character"
    if count < PRO_IMAGES:
        return "ok", f"{count} usable images: good (15–20 recommended; 30+ for high quality)"
    return "great", f"{count} usable images: high-quality range (30+)"


# --- measuring ----------------------------------------------------------------------------------------------

def content_key(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def thumbnail_path(project: Project, key: str) -> Path:
    return project.state_dir / "thumbs" / f"{key}.jpg"  # JPEG: 10× faster to write than PNG, fine at 128 px


def measure(data: bytes, key: str, thumb: Path | None = None) -> Measures:
    """Decode once (JPEGs at reduced scale), take every measure, and write the thumbnail if asked."""
    try:
        loaded = load_rgb(data, draft=SCAN_SIDE)
    except ImageReadError as exc:
        return Measures(key=key, error=str(exc))
    work = loaded.image
    if max(work.size) > SCAN_SIDE:
        work = work.copy()
        work.thumbnail((SCAN_SIDE, SCAN_SIDE), reducing_gap=2.0)
    gray = work.convert("L")
    brightness, highlights, shadows = image_stats.exposure(gray)
    m = Measures(key=key, width=loaded.width, height=loaded.height, format=loaded.format,
                 blur=round(image_stats.blur_effect(np.asarray(gray)), 4), brightness=round(brightness, 2),
                 highlights=round(highlights, 4), shadows=round(shadows, 4), phash=image_stats.phash(gray),
                 colours=image_stats.colour_signature(work),
                 faces=len(faces.detect(gray)) if faces.available() else None, notes=loaded.notes)
    if thumb is not None:
        write_thumbnail(work, thumb)
    return m


def write_thumbnail(image: Image.Image, path: Path) -> None:
    thumb = ImageOps.pad(image, (THUMB_SIDE, THUMB_SIDE), Image.Resampling.BILINEAR, color=(24, 24, 24))
    buf = io.BytesIO()
    thumb.save(buf, "JPEG", quality=90)
    write_cache_file(path, buf.getvalue())


def write_cache_file(path: Path, data: bytes) -> None:
    """Temp file + rename, like atomic_write_bytes but without fsync: a cache entry lost in a crash is simply
    rebuilt, and hundreds of fsyncs would dominate a cold scan."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class HealthCache:
    """`.zchar/health.json`: {files: {name: [size, mtime_ns, key]}, measures: {key: Measures}}; written atomically."""

    def __init__(self, project: Project) -> None:
        self.path = project.state_dir / "health.json"
        self.files: dict[str, list[Any]] = {}
        self.measures: dict[str, Measures] = {}
        self._lock = threading.Lock()
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            raw = json.loads(self.path.read_text("utf-8"))
            if raw.get("version") == CACHE_VERSION:
                self.files = {k: v for k, v in raw["files"].items() if isinstance(v, list) and len(v) == 3}
                self.measures = {k: Measures(**v) for k, v in raw["measures"].items()}

    def lookup(self, name: str, stat: os.stat_result) -> Measures | None:
        entry = self.files.get(name)
        if entry and entry[0] == stat.st_size and entry[1] == stat.st_mtime_ns:
            return self.measures.get(entry[2])
        return None

    def put(self, name: str, stat: os.stat_result, m: Measures) -> None:
        with self._lock:
            self.files[name] = [stat.st_size, stat.st_mtime_ns, m.key]
            self.measures[m.key] = m

    def save(self, keep: set[str]) -> None:
        """Write, keeping only the files still present (and their measures)."""
        files = {k: v for k, v in self.files.items() if k in keep}
        keys = {v[2] for v in files.values()}
        data = {"version": CACHE_VERSION, "files": files,
                "measures": {k: dataclasses.asdict(m) for k, m in self.measures.items() if k in keys}}
        with contextlib.suppress(OSError):  # a read-only project still gets its report
            atomic_write_bytes(self.path, json.dumps(data, separators=(",", ":")).encode("utf-8"))


def _stale(m: Measures | None, thumb: Path | None = None) -> bool:
    """Needs measuring again: never measured, faces unknown while a detector is now installed, or the wanted
    thumbnail is missing."""
    return m is None or (not m.error and ((m.faces is None and faces.available())
                                          or (thumb is not None and not thumb.is_file())))


def dataset_files(project: Project) -> tuple[list[Path], list[str]]:
    """(image files in dataset/ sorted by name, names of other non-caption files there)."""
    folder = project.dataset_dir
    if not folder.is_dir():
        return [], []
    images, others = [], []
    for p in sorted(folder.iterdir(), key=lambda p: p.name):
        if p.name.startswith(".") or p.suffix.lower() == ".txt":
            continue
        if p.suffix.lower() in IMAGE_EXTENSIONS and (p.is_file() or p.is_symlink()):
            images.append(p)
        elif not p.is_dir():
            others.append(p.name)
    return images, others


def scan(project: Project, settings: Settings, *, thumbs: bool = False, workers: int | None = None,
         progress: ProgressFn | None = None, cancel: CancelFn | None = None) -> DatasetReport:
    """Measure every dataset image (cached ones are free) and evaluate the dataset. Safe to call from a thread."""
    started = time.perf_counter()
    cache = HealthCache(project)
    images, others = dataset_files(project)
    found: dict[str, Measures] = {}
    todo: list[tuple[Path, os.stat_result]] = []
    for path in images:
        problem = _symlink_problem(project, path)
        if problem:
            found[path.name] = Measures(error=problem)
            continue
        try:
            st = path.stat()
        except OSError as exc:
            found[path.name] = Measures(error=f"cannot read the file: {exc.strerror or exc}")
            continue
        m = cache.lookup(path.name, st)
        if _stale(m, thumbnail_path(project, m.key) if thumbs and m else None):
            todo.append((path, st))
        else:
            found[path.name] = m  # type: ignore[assignment]

    done = decoded = 0
    lock = threading.Lock()

    def work(item: tuple[Path, os.stat_result]) -> tuple[str, Measures]:
        nonlocal done, decoded
        path, st = item
        m, fresh = _measure_file(project, cache, path, st, thumbs, cancel)
        with lock:
            done += 1
            decoded += fresh
            if progress:
                progress(done, len(todo), path.name)
        return path.name, m

    if todo:
        n = workers or min(8, 2 * (os.cpu_count() or 1))  # more threads than cores: hides file reads
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="zchar-scan") as pool:
            for name, m in pool.map(work, todo):
                found[name] = m
        cache.save({p.name for p in images})
    if thumbs:
        _prune_thumbnails(project, {m.key for m in found.values() if m.key})
    report = evaluate(project, settings, [(p, found[p.name]) for p in images if p.name in found], others)
    report.measured = decoded
    report.seconds = time.perf_counter() - started
    return report


def _measure_file(project: Project, cache: HealthCache, path: Path, st: os.stat_result, thumbs: bool,
                  cancel: CancelFn | None) -> tuple[Measures, bool]:
    """(measures, whether the image had to be decoded): a renamed or restored file is found by its content."""
    if cancel and cancel():
        return Measures(error="scan cancelled before this image"), False
    try:
        data = read_bytes(path)
    except ImageReadError as exc:
        return Measures(error=str(exc)), False  # not cached: permissions can change without the content
    key = content_key(data)
    m = cache.measures.get(key)
    thumb = thumbnail_path(project, key) if thumbs else None
    fresh = _stale(m, thumb)
    if fresh:
        m = measure(data, key, thumb)
    cache.put(path.name, st, m)  # type: ignore[arg-type]
    return m, fresh  # type: ignore[return-value]


def _prune_thumbnails(project: Project, keep: set[str]) -> None:
    """Drop thumbnails of pictures no longer in dataset/ (replaced, edited or trashed: rebuilt if they return)."""
    folder = project.state_dir / "thumbs"
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.endswith(".jpg") and entry.name[:-4] not in keep:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _symlink_problem(project: Project, path: Path) -> str:
    if not path.is_symlink():
        return ""
    try:
        project.inside(path.resolve())
    except (ProjectError, OSError):
        return "a symlink to a file outside the project: not read (copy the file in instead)"
    return "" if path.exists() else "a broken symlink"


# --- evaluating -------------------------------------------------------------------------------------------

def evaluate(project: Project, settings: Settings, measured: list[tuple[Path, Measures]],
             others: list[str] | None = None) -> DatasetReport:
    """Captions, settings-dependent checks, duplicates and totals on top of the measures (cheap: no decoding)."""
    excluded = set(settings.excluded)
    report = DatasetReport(face_check=faces.unavailable_reason())
    by_caption: dict[str, list[str]] = {}
    for path, m in measured:
        item = ImageHealth(path.name, path, m, read_caption(path), excluded=path.name in excluded)
        item.flags = image_flags(item, settings)
        report.items.append(item)
        by_caption.setdefault(caption_path(path).name, []).append(path.name)
    by_name = {it.name: it for it in report.items}
    for cap, names in by_caption.items():
        for name in names if len(names) > 1 else ():
            others_ = ", ".join(n for n in names if n != name)
            by_name[name].flags.append(Flag("warning", "shared caption", f"shares {cap} with {others_}"))
    _flag_duplicates(report)
    for item in report.items:
        if item.excluded:
            report.excluded += 1
            continue
        for f in item.flags:
            if f.level == "error":
                report.errors.append(f"{item.name}: {f.message}")
            elif f.level == "warning":
                report.warnings.append(f"{item.name}: {f.message}")
    report.images = sum(1 for it in report.items if it.usable)
    report.verdict_level, report.verdict = verdict(report.images)
    if report.verdict_level == "error":
        report.errors.append(report.verdict)
    images = {it.name for it in report.items}
    stems = {Path(n).stem for n in images}
    folder = project.dataset_dir
    orphans = sorted(p.name for p in folder.glob("*.txt") if p.stem not in stems) if folder.is_dir() else []
    if orphans:
        report.notes.append(f"captions without an image: {_listing(orphans)}")
    if others:
        report.notes.append(f"ignored (not an image type zchar reads): {_listing(others)}")
    missing = sorted(excluded - images)
    if missing:
        report.notes.append(f"excluded in project.toml but not in dataset/: {_listing(missing)}")
    if report.face_check:
        report.notes.append(report.face_check)
    return report


def _listing(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def image_flags(item: ImageHealth, settings: Settings) -> list[Flag]:
    """Per-image flags, worst first within each topic."""
    m, flags = item.measures, []
    if m.error:
        return [Flag("error", "unreadable", m.error)]
    res = settings.train.resolution
    area, lo = m.width * m.height, res // 2
    if area < lo * lo:
        flags.append(Flag("error", "too small", f"{m.width}×{m.height} is under {lo}²: too small to train on "
                                                f"(half the training resolution {res})"))
    elif area < res * res:
        flags.append(Flag("warning", "low-res", f"{m.width}×{m.height} is under {res}² (the training resolution)"))
    aspect = max(m.width, m.height) / max(1, min(m.width, m.height))
    if aspect > MAX_ASPECT:
        flags.append(Flag("warning", "aspect", f"aspect {aspect:.1f}:1 is extreme; crop it closer to square"))
    if m.blur >= 0.99:
        flags.append(Flag("warning", "flat", "has almost no detail (a flat or empty picture)"))
    elif m.blur >= BLUR_LIMIT:
        flags.append(Flag("warning", "blurry", f"looks blurry (blur score {m.blur:.2f}; sharp photos score under "
                                               f"{BLUR_LIMIT})"))
    if m.brightness < DARK_MEAN or m.shadows > CLIPPED_SHARE:
        flags.append(Flag("warning", "dark", f"under-exposed (mean brightness {m.brightness:.0f}/255"
                                             + (f", {m.shadows:.0%} crushed to black)" if m.shadows >= 0.01 else ")")))
    elif m.brightness > BRIGHT_MEAN or m.highlights > CLIPPED_SHARE:
        flags.append(Flag("warning", "bright", f"over-exposed (mean brightness {m.brightness:.0f}/255"
                                               + (f", {m.highlights:.0%} clipped to white)" if m.highlights >= 0.01
                                                  else ")")))
    if m.faces == 0:
        flags.append(Flag("info", "no face", "no frontal face found (fine for profile or back views)"))
    elif m.faces and m.faces > 1:
        flags.append(Flag("warning", "faces", f"{m.faces} faces: the LoRA may mix people; crop to one"))
    flags += caption_flags(item.caption, settings.trigger)
    flags += [Flag("info", "note", n) for n in m.notes]
    return flags


def caption_flags(cap: Caption, trigger: str) -> list[Flag]:
    if cap.problem and not cap.text:
        return [Flag("warning", "caption", cap.problem)]
    flags = [Flag("warning", "encoding", cap.problem)] if cap.problem else []
    if not cap.exists:
        flags.append(Flag("warning", "no caption", "no caption file: training will use the trigger word alone"))
    elif not cap.text:
        flags.append(Flag("warning", "empty caption", "the caption is empty: training will use the trigger word "
                                                      "alone"))
    elif not has_trigger(cap.text, trigger):
        flags.append(Flag("warning", "no trigger", f"the caption lacks the trigger word {trigger!r}"))
    elif cap.text.strip(" ,") == trigger:
        flags.append(Flag("info", "stub", "the caption is only the trigger word: describe outfit, scene, "
                                          "expression"))
    elif not leads_with_trigger(cap.text, trigger):
        flags.append(Flag("info", "trigger not first", f"captions usually start with {trigger!r}"))
    return flags


def _flag_duplicates(report: DatasetReport) -> None:
    """Union-find over close pairs (same structure and colours), among included readable images."""
    items = [it for it in report.items if not it.excluded and not it.measures.error and it.measures.phash]
    if len(items) < 2:
        return
    close = (image_stats.hamming_matrix([it.measures.phash for it in items]) <= DUPLICATE_DISTANCE) & \
        (image_stats.colour_distance_matrix([it.measures.colours or [0] * 12 for it in items]) <= DUPLICATE_COLOUR)
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*close.nonzero(), strict=True):
        if i < j:
            parent[root(int(i))] = root(int(j))
    groups: dict[int, list[int]] = {}
    for i in range(len(items)):
        groups.setdefault(root(i), []).append(i)
    for members in sorted((g for g in groups.values() if len(g) > 1), key=lambda g: items[g[0]].name):
        number = len(report.duplicate_groups) + 1
        names = [items[i].name for i in members]
        report.duplicate_groups.append(names)
        for i in members:
            item = items[i]
            item.duplicate_group = number
            others = ", ".join(n for n in names if n != item.name)
            item.flags.append(Flag("warning", f"dup {number}", f"near-duplicate of {others} (keep the best one, "
                                                               "exclude the others)"))


def check_dataset(project: Project, settings: Settings) -> DatasetReport:
    """The report `zchar check` prints (cached measures make a second run fast)."""
    return scan(project, settings)


def report_lines(report: DatasetReport) -> list[tuple[str, str]]:
    """(line, level) pairs — the CLI colours them by level."""
    lines: list[tuple[str, str]] = []
    head = f"dataset: {len(report.items)} image files"
    if report.excluded:
        head += f" ({report.excluded} excluded)"
    lines.append((head, "info"))
    for item in report.items:
        flags = [f for f in item.flags if f.level != "info"]
        if not flags:
            continue
        tag = " (excluded)" if item.excluded else ""
        for f in flags:
            level = "info" if item.excluded else f.level
            lines.append((f"  {level}: {item.name}{tag}: {f.message}", level))
    for i, names in enumerate(report.duplicate_groups, 1):
        lines.append((f"  near-duplicates {i}: {', '.join(names)}", "warning"))
    lines += [(f"  note: {n}", "info") for n in report.notes]
    lines.append((f"verdict: {report.verdict}", report.verdict_level))
    if report.errors:
        lines.append((f"result: {len(report.errors)} error(s) — training would fail or use broken images", "error"))
    else:
        lines.append((f"result: ok ({len(report.warnings)} warning(s))", "ok"))
    return lines


# --- trash --------------------------------------------------------------------------------------------------

@dataclass
class TrashRecord:
    moves: list[tuple[Path, Path]]  # (original, where it is in the trash)


def trash_image(project: Project, name: str) -> TrashRecord:
    """Move a dataset image and its caption to `.zchar/trash/<time>/` (same filesystem: a rename, nothing copied)."""
    image = project.dataset_dir / name  # not resolved: a symlink is moved itself, never what it points to
    if Path(name).name != name or name in (".", "..") or not (image.is_file() or image.is_symlink()):
        raise ProjectError(f"{name}: not an image in dataset/")
    folder = project.state_dir / "trash" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"
    folder.mkdir(parents=True, exist_ok=False)
    moves = [(p, folder / p.name) for p in (image, caption_path(image)) if p.exists() or p.is_symlink()]
    done: list[tuple[Path, Path]] = []
    try:
        for src, dst in moves:
            os.replace(src, dst)
            done.append((src, dst))
    except OSError:
        for src, dst in reversed(done):
            with contextlib.suppress(OSError):
                os.replace(dst, src)
        raise
    return TrashRecord(moves)


def restore(record: TrashRecord) -> None:
    """Undo `trash_image`; refuses (ProjectError) if a file of the same name has appeared since."""
    taken = [src.name for src, _ in record.moves if src.exists() or src.is_symlink()]
    if taken:
        raise ProjectError(f"cannot restore: dataset/ already has {', '.join(taken)}")
    for src, dst in record.moves:
        os.replace(dst, src)
    with contextlib.suppress(OSError):
        record.moves[0][1].parent.rmdir()

