"""zchar gen."""

from __future__ import annotations

import argparse
from typing import Any

from zchar_tui.cli.common import CliError, add_project_arg, load_project
from zchar_tui.client import SyncClient


def register(sub: Any) -> None:
    p = sub.add_parser("gen", help="generate images (queued in the engine)",
                       description="Queue text-to-image (or reference img2img) generation jobs.")
    add_project_arg(p)
    p.add_argument("prompt", help="the prompt")
    p.add_argument("--lora", action="append", default=[], metavar="NAME[:STRENGTH]", help="a LoRA to apply")
    p.add_argument("--seed", type=int, help="seed (default: random)")
    p.add_argument("--size", metavar="WxH", help="image size, sides multiples of 16 (default: project.toml)")
    p.add_argument("--steps", type=int, help="inference steps (default: project.toml)")
    p.add_argument("--count", type=int, default=1, help="number of images (seeds increment)")
    p.add_argument("--foreground", action="store_true", help="wait here until the images are written")
    p.set_defaults(func=cmd_gen)


def cmd_gen(args: argparse.Namespace) -> int:
    project, _ = load_project(args.project)
    if args.foreground:
        raise CliError("--foreground generation is not available yet (tracked in the generation issue)")
    params: dict[str, Any] = {"prompt": args.prompt, "count": args.count, "seed": args.seed}
    if args.size:
        try:
            w, h = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise CliError(f"--size {args.size}: expected WIDTHxHEIGHT, e.g. 1024x1024") from None
        params.update(width=w, height=h)
    if args.steps is not None:
        params["steps"] = args.steps
    loras = []
    for item in args.lora:
        name, _, strength = item.partition(":")
        try:
            loras.append({"path": name, **({"strength": float(strength)} if strength else {})})
        except ValueError:
            raise CliError(f"--lora {item}: the strength must be a number") from None
    params["loras"] = loras
    with SyncClient(project) as client:
        result = client.request("submit", kind="gen", params=params)
    for note in result.get("notes", []):
        print(f"note: {note}")
    print(f"queued {len(result['job_ids'])} generation job(s): {', '.join(map(str, result['job_ids']))}")
    return 0
