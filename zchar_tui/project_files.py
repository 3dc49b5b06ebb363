"""Bringing outside files into a project: job messages only ever name paths inside the project folder."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from engine.jobs import lora_header_problem
from engine.project import IMAGE_EXTENSIONS, Project, ProjectError

REFERENCES_DIR = "references"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def import_file(project: Project, src: Path | str, folder: Path) -> Path:
    """`src` itself when it is inside the project, else a copy in `folder` (atomic; an identical copy is reused;
    a different file of the same name is never overwritten: the copy gets a short content hash in its name)."""
    src = Path(src).expanduser()
    with contextlib.suppress(ProjectError):
        return project.inside(src)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such file")
    folder.mkdir(parents=True, exist_ok=True)
    digest = _digest(src)
    target = folder / src.name
    if target.exists() and _digest(target) != digest:
        target = folder / f"{src.stem}-{digest[:8]}{src.suffix}"
    if target.exists():
        return target
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:64]}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def import_lora(project: Project, src: Path | str) -> Path:
    """Refuses (ValueError) a file that is not a Z-Image LoRA before copying it, so loras/ holds no dud."""
    path = Path(src).expanduser()
    if path.suffix != ".safetensors":
        raise ValueError(f"{src}: only .safetensors LoRA files are loaded")
    problem = lora_header_problem(path) if path.is_file() else None
    if problem:
        raise ValueError(f"{path.name}: {problem}")
    return import_file(project, path, project.loras_dir)


def import_reference(project: Project, src: Path | str) -> Path:
    """Refuses (ValueError) a file without an image extension before copying it."""
    path = Path(src).expanduser()
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise ValueError(f"{src}: not an image file ({path.suffix or 'no extension'})")
    return import_file(project, path, project.root / REFERENCES_DIR)
