"""zchar prepare (runs in the foreground: Pillow/OpenCV only, no engine needed)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from zchar_tui.cli.common import CliError, load_project
from zchar_tui.safe_text import printable


def register(sub: Any) -> None:
    p = sub.add_parser("prepare", help="import raw photos into dataset/ (resize, crop, caption stubs)",
                       description="Import raw photos: orientation, RGB, crop (centre or face), resize, captions. "
                                   "The input folder is never modified; existing dataset images are kept unless "
                                   "--force; re-running writes nothing new.")
    p.add_argument("project", help="project folder")
    p.add_argument("--input", required=True, metavar="RAW", help="folder of raw images (never modified)")
    p.add_argument("--size", type=int, default=1024, help="output side length (default 1024; never upscaled)")
    p.add_argument("--face-detect", action="store_true", help="crop around the largest detected face")
    p.add_argument("--crop-face-ratio", type=float, default=0.6, help="face size / crop side (default 0.6)")
    p.add_argument("--format", choices=("jpg", "png"), default="jpg",
                   help="jpg (quality 95, no chroma subsampling; default) or png (lossless, 4× larger)")
    p.add_argument("--force", action="store_true",
                   help="overwrite dataset images of the same name (captions are always kept)")
    p.set_defaults(func=cmd_prepare)


def cmd_prepare(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from engine.prepare import PrepareError, PrepareOptions, prepare

    project, settings = load_project(args.project)
    options = PrepareOptions(size=args.size, face_detect=args.face_detect, crop_face_ratio=args.crop_face_ratio,
                             force=args.force, format=args.format)
    with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.description}"), transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task("", total=None)

        def progress(done: int, total: int, name: str) -> None:
            bar.update(task, completed=done, total=total, description=name)

        try:
            result = prepare(project, settings, Path(args.input), options, progress=progress)
        except PrepareError as exc:
            raise CliError(str(exc)) from None
    print("\n".join(printable(line, one_line=True) for line in result.summary()))
    if result.written:
        print(f"next: zchar check {args.project}   (or review them in: zchar open {args.project})")
    return 0
