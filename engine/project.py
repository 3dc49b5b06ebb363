"""The project folder and its `project.toml`: typed settings, validation with clear errors, atomic writes.

Standard library only (the UI imports this module); `tomli_w` is imported where a write happens.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import fcntl
import math
import os
import re
import tempfile
import time
import tomllib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_BASE = "Tongyi-MAI/Z-Image-Turbo"
DEFAULT_ADAPTER = "ostris/zimage_turbo_training_adapter"
DEFAULT_ADAPTER_FILE = "zimage_turbo_training_adapter_v2.safetensors"
TINY_BASE = "tiny"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")

# The four test prompts of the seed guide; the trigger word is put in front when they are used.
DEFAULT_VALIDATION_PROMPTS = (
    "portrait photo, looking at the camera, plain white background, soft studio light",
    "walking in a park on a sunny day, full body, natural light",
    "anime style, watercolor illustration, soft pastel colors",
    "standing in a sci-fi spaceship corridor, cinematic lighting",
)
TEMPLATE_FIELDS = ("age", "outfit", "scene", "action", "style", "quality")


class ProjectError(Exception):
    """A project that cannot be used; `problems` lists every problem found, each one line."""

    def __init__(self, problems: list[str] | str, path: Path | None = None):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.path = path
        where = f"{path}: " if path else ""
        if len(self.problems) == 1:
            super().__init__(where + self.problems[0])
        else:
            super().__init__(where + f"{len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems))


def _opt(default: Any, help: str = "", **rules: Any) -> Any:
    """A settings field: `rules` may hold min, max, choices, multiple_of, nonempty."""
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: list(default), metadata={"help": help, **rules})
    return field(default=default, metadata={"help": help, **rules})


@dataclass
class ModelSettings:
    base: str = _opt(DEFAULT_BASE, "hub id, local diffusers folder, or 'tiny' (offline random test model)",
                     nonempty=True)
    transformer_file: str = _opt("", "optional single-file transformer (e.g. ComfyUI's z_image_turbo_bf16.safetensors)")
    turbo: bool = _opt(True, "the base is the distilled Turbo model (8 steps, guidance 0)")
    training_adapter: str = _opt(DEFAULT_ADAPTER, "hub id or local .safetensors merged in while training Turbo; "
                                                  "'' turns it off (De-Turbo / Base)")
    training_adapter_file: str = _opt(DEFAULT_ADAPTER_FILE, "file name inside the adapter's hub repo")
    device: str = _opt("auto", "auto, cpu, cuda or cuda:N")
    dtype: str = _opt("bf16", "weights dtype on the GPU", choices=("bf16", "fp16", "fp32"))


@dataclass
class TrainSettings:
    name: str = _opt("", "LoRA file name (default: the project's name)")
    optimizer: str = _opt("prodigy", "", choices=("prodigy", "adamw"))
    lr: float = _opt(1.0, "1.0 for Prodigy; about 1e-4 for AdamW", min=1e-7, max=10.0)
    d0: float = _opt(0.05, "Prodigy's initial step-size estimate", min=1e-9, max=1.0)
    weight_decay: float = _opt(0.01, "", min=0.0, max=1.0)
    safeguard_warmup: bool = _opt(True, "Prodigy safeguard warm-up")
    bias_correction: bool = _opt(False, "Prodigy bias correction (slows convergence)")
    rank: int = _opt(32, "LoRA rank (16 in low-VRAM mode)", min=1, max=512)
    alpha: float = _opt(16.0, "LoRA alpha (about rank/2)", min=0.01, max=1024.0)
    epochs: int = _opt(15, "10–20 is typical", min=1, max=10000)
    max_steps: int = _opt(0, "stop after this many steps (0: run all epochs)", min=0, max=10_000_000)
    batch_size: int = _opt(1, "", min=1, max=64)
    grad_accum: int = _opt(1, "gradient accumulation steps", min=1, max=256)
    max_grad_norm: float = _opt(1.0, "gradient clipping (0: off)", min=0.0, max=1000.0)
    resolution: int = _opt(1024, "training side length (1024 native)", min=64, max=4096, multiple_of=16)
    buckets: bool = _opt(True, "aspect-ratio buckets around the resolution")
    caption_dropout: float = _opt(0.05, "share of steps trained with an empty caption", min=0.0, max=1.0)
    flip: bool = _opt(False, "random horizontal flip (off for asymmetric characters)")
    precision: str = _opt("bf16", "bf16 autocast on CUDA; the CPU always trains in fp32", choices=("bf16", "fp32"))
    gradient_checkpointing: bool = _opt(True, "")
    memory: str = _opt("balanced", "full | balanced | low (see README)", choices=("full", "balanced", "low"))
    train_refiners: bool = _opt(False, "also train the noise/context refiner blocks")
    seed: int = _opt(42, "", min=0, max=2**32 - 1)
    checkpoint_every: int = _opt(500, "steps between checkpoints (0: off)", min=0, max=10_000_000)
    checkpoint_each_epoch: bool = _opt(False, "")
    keep_checkpoints: int = _opt(3, "how many unpinned checkpoints to keep", min=1, max=1000)


@dataclass
class ValidationSettings:
    prompts: list[str] = _opt(DEFAULT_VALIDATION_PROMPTS, "fixed prompts (the trigger word is put in front)")
    seeds: list[int] = _opt([42], "fixed seeds; every prompt is sampled at each")
    every_epochs: int = _opt(5, "epochs between validation samples (0: only at the end)", min=0, max=10000)
    size: int = _opt(0, "sample side length (0: the training resolution)", min=0, max=4096, multiple_of=16)


@dataclass
class GenerateSettings:
    steps: int = _opt(8, "inference steps (Turbo: 8)", min=1, max=200)
    guidance: float = _opt(0.0, "guidance scale (Turbo: 0)", min=0.0, max=30.0)
    width: int = _opt(1024, "", min=64, max=4096, multiple_of=16)
    height: int = _opt(1024, "", min=64, max=4096, multiple_of=16)
    lora_strength: float = _opt(0.8, "default strength of a LoRA (0.6–0.8 daily)", min=-4.0, max=4.0)
    reference_strength: float = _opt(0.6, "img2img strength from a reference", min=0.0, max=1.0)
    negative_prompt: str = _opt("", "used only when guidance > 0")
    memory: str = _opt("none", "", choices=("none", "model_offload", "sequential_offload"))
    vae_tiling: bool = _opt(False, "")


@dataclass
class Template:
    name: str = _opt("", "", nonempty=True)
    age: str = _opt("")
    outfit: str = _opt("")
    scene: str = _opt("")
    action: str = _opt("")
    style: str = _opt("")
    quality: str = _opt("")


@dataclass
class Settings:
    name: str = _opt("", "project name", nonempty=True)
    trigger: str = _opt("", "trigger word that starts every caption and prompt", nonempty=True)
    excluded: list[str] = _opt([], "dataset images left out of training")
    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    generate: GenerateSettings = field(default_factory=GenerateSettings)
    templates: list[Template] = field(default_factory=list)

    @property
    def lora_name(self) -> str:
        return self.train.name or safe_name(self.name)


def safe_name(text: str) -> str:
    """A file-name-safe form of `text` (letters, digits, '-', '_', '.')."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return cleaned or "lora"


def with_trigger(trigger: str, prompt: str) -> str:
    """The prompt led by the trigger word (added unless it already leads)."""
    text = prompt.strip().strip(",").strip()
    first = re.split(r"[,\s]", text, maxsplit=1)[0] if text else ""
    if first == trigger:
        return text
    return f"{trigger}, {text}" if text else trigger


def compose_prompt(trigger: str, template: Template | Mapping[str, str]) -> str:
    """`[trigger], [age], [outfit], [scene], [action], [style], [quality]`, skipping empty fields."""
    get = template.get if isinstance(template, Mapping) else lambda k, d="": getattr(template, k, d)
    parts = [str(get(k, "")).strip().strip(",").strip() for k in TEMPLATE_FIELDS]
    return with_trigger(trigger, ", ".join(p for p in parts if p))


# --- validation -------------------------------------------------------------------------------------------

def _describe(f: dataclasses.Field, kind: Any) -> str:
    md = f.metadata
    if "choices" in md:
        return "one of " + ", ".join(repr(c) for c in md["choices"])
    noun = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(kind, str(kind))
    if kind is str and md.get("nonempty"):
        noun = "a non-empty string"
    lo, hi = md.get("min"), md.get("max")
    if lo is not None and hi is not None:
        noun += f" from {lo} to {hi}"
    elif lo is not None:
        noun += f" ≥ {lo}"
    if md.get("multiple_of"):
        noun += f", a multiple of {md['multiple_of']}"
    return noun


def _check_scalar(value: Any, kind: type, f: dataclasses.Field, path: str, problems: list[str]) -> Any:
    ok_type = (
        (kind is bool and isinstance(value, bool))
        or (kind is int and isinstance(value, int) and not isinstance(value, bool))
        or (kind is float and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (kind is str and isinstance(value, str))
    )
    allowed = _describe(f, kind)
    if not ok_type:
        problems.append(f"{path} = {value!r}: expected {allowed}")
        return None
    md = f.metadata
    bad = (
        (kind is float and not math.isfinite(value))  # nan slips through every range check
        or ("choices" in md and value not in md["choices"])
        or ("min" in md and value < md["min"])
        or ("max" in md and value > md["max"])
        or (md.get("multiple_of") and value % md["multiple_of"] != 0)
        or (md.get("nonempty") and not value.strip())
    )
    if bad:
        problems.append(f"{path} = {value!r}: expected {allowed}")
        return None
    return float(value) if kind is float else value


def _build(cls: type, data: Any, path: str, problems: list[str]) -> Any:
    """Build dataclass `cls` from a TOML table, appending one line per problem."""
    if not isinstance(data, dict):
        problems.append(f"{path or 'project.toml'} must be a table, not {type(data).__name__}")
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        kpath = f"{path}.{key}" if path else key
        f = fields.get(key)
        if f is None:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"{kpath}: unknown key{hint}; allowed keys here: {', '.join(fields)}")
            continue
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value, kpath, problems)
            continue
        origin = typing.get_origin(hint)
        if origin is list:
            (item,) = typing.get_args(hint)
            if not isinstance(value, list):
                problems.append(f"{kpath} = {value!r}: expected a list")
                continue
            if dataclasses.is_dataclass(item):
                values[key] = [_build(item, v, f"{kpath}[{i}]", problems) for i, v in enumerate(value)]
            else:
                checked = [_check_scalar(v, item, f, f"{kpath}[{i}]", problems) for i, v in enumerate(value)]
                values[key] = [v for v in checked if v is not None]
            continue
        checked = _check_scalar(value, hint, f, kpath, problems)
        if checked is not None:
            values[key] = checked
    missing = [k for k, f in fields.items() if f.metadata.get("nonempty") and k not in values and k not in data]
    for key in missing:
        problems.append(f"{path + '.' if path else ''}{key}: missing; expected {_describe(fields[key], hints[key])}")
    return cls(**values)


def _cross_check(s: Settings, problems: list[str]) -> None:
    if s.trigger and re.search(r"[\s,]", s.trigger):
        problems.append(f"trigger = {s.trigger!r}: expected one word without spaces or commas")
    if not s.validation.prompts:
        problems.append("validation.prompts = []: expected at least one prompt")
    if not s.validation.seeds:
        problems.append("validation.seeds = []: expected at least one seed")
    names = [t.name for t in s.templates]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"templates: the name {dup!r} is used more than once")


def parse_settings(data: dict[str, Any], path: Path | None = None) -> Settings:
    problems: list[str] = []
    settings = _build(Settings, data, "", problems)
    _cross_check(settings, problems)
    if problems:
        raise ProjectError(problems, path)
    return settings


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    return dataclasses.asdict(settings)


# --- the folder ---------------------------------------------------------------------------------------------

class Project:
    """A character project folder (see DESIGN.md §4)."""

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser().resolve()

    # paths
    @property
    def toml_path(self) -> Path:
        return self.root / "project.toml"

    @property
    def dataset_dir(self) -> Path:
        return self.root / "dataset"

    @property
    def loras_dir(self) -> Path:
        return self.root / "loras"

    @property
    def samples_dir(self) -> Path:
        return self.root / "samples"

    @property
    def outputs_dir(self) -> Path:
        return self.root / "outputs"

    @property
    def state_dir(self) -> Path:
        return self.root / ".zchar"

    @property
    def socket_path(self) -> Path:
        return self.state_dir / "engine.sock"

    @property
    def lock_path(self) -> Path:
        return self.state_dir / "engine.lock"

    @property
    def foreground_lock_path(self) -> Path:
        return self.state_dir / "foreground.lock"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "engine.log"

    @property
    def db_path(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    def exists(self) -> bool:
        return self.toml_path.is_file()

    def ensure_dirs(self) -> None:
        for d in (self.dataset_dir, self.loras_dir, self.samples_dir, self.outputs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.state_dir, 0o700)

    def inside(self, path: Path | str) -> Path:
        """Resolve `path` (relative to the project) and refuse anything outside the project folder."""
        p = Path(path)
        resolved = (p if p.is_absolute() else self.root / p).resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise ProjectError(f"{path}: outside the project folder {self.root}")
        return resolved

    # settings
    def read_raw(self) -> dict[str, Any]:
        if not self.toml_path.is_file():
            raise ProjectError(f"no project.toml in {self.root} "
                               f"(create one with: zchar init {self.root} --trigger WORD)")
        try:
            with self.toml_path.open("rb") as fh:
                return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ProjectError(f"not valid TOML: {exc}", self.toml_path) from None
        except UnicodeDecodeError as exc:
            raise ProjectError(f"not valid TOML: not UTF-8 text (byte {exc.start})", self.toml_path) from None
        except OSError as exc:
            raise ProjectError(f"cannot read: {exc.strerror}", self.toml_path) from None

    def load(self) -> Settings:
        return parse_settings(self.read_raw(), self.toml_path)

    def update(self, changes: Mapping[str, Any]) -> Settings:
        """Apply dotted-key changes (e.g. {"train.rank": 16}) keeping every other setting; validated, atomic.

        A value of None removes the key (its default applies again).
        """
        raw = self.read_raw()
        for dotted, value in changes.items():
            *parents, leaf = dotted.split(".")
            node = raw
            for part in parents:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ProjectError(f"{dotted}: {part} is not a table")
            if value is None:
                node.pop(leaf, None)
            else:
                node[leaf] = value
        settings = parse_settings(raw, self.toml_path)
        try:
            write_toml(self.toml_path, raw)
        except OSError as exc:  # a full disk, a read-only folder: the old file is still whole
            raise ProjectError(f"could not save: {exc.strerror or exc}; the file was left as it was",
                               self.toml_path) from None
        return settings


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write via a temp file in the same folder, fsync, then rename: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temp name is cut short: a valid 250-byte file name would otherwise make an invalid temp name.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def lock_held(path: Path, probe: int) -> bool:
    """Whether another process holds an flock on `path` that conflicts with `probe` (fcntl.LOCK_SH or LOCK_EX)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, probe | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


STALE_TEMP_S = 3600.0  # a temp file this old belongs to a writer that died (a crash or kill -9 mid-write)


def sweep_stale_temp_files(project: Project, older_than_s: float = STALE_TEMP_S) -> list[Path]:
    """Remove what `atomic_write_bytes` left behind when its process died mid-write (`.NAME.XXXX.tmp`).

    Nothing ever lists or loads these files; they only take space. Recent ones are left alone: a foreground run
    may be writing them right now.
    """
    removed = []
    cutoff = time.time() - older_than_s
    folders = [project.root, project.dataset_dir, project.samples_dir, project.outputs_dir, project.loras_dir,
               project.cache_dir]
    for folder in folders:
        if not folder.is_dir():
            continue
        paths = folder.glob(".*.tmp") if folder == project.root else folder.rglob(".*.tmp")
        for path in paths:
            with contextlib.suppress(OSError):
                if path.is_file() and not path.is_symlink() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed.append(path)
    return removed


def write_toml(path: Path, data: Mapping[str, Any]) -> None:
    import tomli_w  # small pure-Python writer; only needed when saving

    atomic_write_bytes(path, tomli_w.dumps(_drop_empty(data)).encode("utf-8"))


def _drop_empty(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {k: _drop_empty(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [_drop_empty(v) for v in data]
    return data


INIT_TEMPLATE = """\
# zchar character project. Every key is optional except name and trigger; see README "Project format".
name = {name}
trigger = {trigger}
excluded = []

[model]
# A hub id (downloaded once, ~20 GB), a local diffusers folder, or "tiny" (an offline random test model).
base = {base}

[train]
rank = 32
alpha = 16
epochs = 15
resolution = 1024
memory = "balanced"

[generate]
steps = 8
guidance = 0.0
"""


def init_project(root: Path | str, trigger: str, name: str | None = None, base: str = DEFAULT_BASE) -> Project:
    """Create a new project folder; refuses to overwrite an existing project.toml."""
    import json

    project = Project(root)
    if project.toml_path.exists():
        raise ProjectError(f"{project.toml_path} already exists")
    name = name or project.root.name
    text = INIT_TEMPLATE.format(name=json.dumps(name), trigger=json.dumps(trigger), base=json.dumps(base))
    parse_settings(tomllib.loads(text), project.toml_path)  # refuse a bad trigger before creating anything
    try:
        project.root.mkdir(parents=True, exist_ok=True)
        project.ensure_dirs()
        atomic_write_bytes(project.toml_path, text.encode("utf-8"))
    except OSError as exc:
        raise ProjectError(f"could not create the project: {exc.strerror or exc}", project.root) from None
    return project


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside `folder`, sorted by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def field_help(section: str) -> Iterable[tuple[str, str, str]]:
    """(key, allowed values, help) for a settings section — used by forms and `--help` texts."""
    cls = {"model": ModelSettings, "train": TrainSettings, "validation": ValidationSettings,
           "generate": GenerateSettings}[section]
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        yield f.name, _describe(f, kind) if kind in (int, float, bool, str) else "a list", f.metadata.get("help", "")
