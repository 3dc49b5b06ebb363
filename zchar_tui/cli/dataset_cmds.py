"""zchar prepare."""

from __future__ import annotations

import argparse
from typing import Any

from zchar_tui.cli.common import CliError


def register(sub: Any) -> None:
    p = sub.add_parser("prepare", help="import raw photos into dataset/ (resize, crop, caption stubs)",
                       description="Import raw photos: orientation, RGB, crop (centre or face), resize, captions.")
    p.add_argument("project", help="project folder")
    p.add_argument("--input", required=True, metavar="RAW", help="folder of raw images (never modified)")
    p.add_argument("--size", type=int, default=1024, help="output side length (default 1024)")
    p.add_argument("--face-detect", action="store_true", help="crop around the largest detected face")
    p.add_argument("--crop-face-ratio", type=float, default=0.6, help="face size / crop side (default 0.6)")
    p.add_argument("--force", action="store_true", help="overwrite dataset images of the same name")
    p.set_defaults(func=cmd_prepare)


def cmd_prepare(args: argparse.Namespace) -> int:
    raise CliError("prepare is not available yet (tracked in the dataset issue)")
