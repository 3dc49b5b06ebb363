"""zchar train."""

from __future__ import annotations

import argparse
from typing import Any

from zchar_tui.cli.common import CliError, add_project_arg, load_project
from zchar_tui.client import SyncClient


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train the character LoRA (queued in the engine, or --foreground)",
                       description="Train a LoRA on the project's dataset with the settings in project.toml.")
    add_project_arg(p)
    p.add_argument("--foreground", action="store_true", help="run here with a progress bar instead of the engine")
    p.add_argument("--resume", action="store_true", help="carry on the latest run from its last checkpoint")
    p.add_argument("--max-steps", type=int, metavar="N", help="stop after N steps")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    project, _ = load_project(args.project)
    if args.foreground:
        raise CliError("--foreground training is not available yet (tracked in the training issue)")
    params: dict[str, Any] = {"resume": args.resume}
    if args.max_steps is not None:
        params["max_steps"] = args.max_steps
    with SyncClient(project) as client:
        result = client.request("submit", kind="train", params=params)
    for note in result.get("notes", []):
        print(f"note: {note}")
    print(f"queued training job {result['job_ids'][0]}; follow it with: zchar open {args.project} --pane training")
    return 0
