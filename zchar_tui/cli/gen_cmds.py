"""zchar gen: queue generation jobs in the project's engine, or wait for them here (--foreground)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine import protocol
from engine.project import Project
from zchar_tui.cli.common import CliError, add_project_arg, load_project
from zchar_tui.client import EngineError, SyncClient
from zchar_tui.project_files import import_lora, import_reference
from zchar_tui.safe_text import printable


def register(sub: Any) -> None:
    p = sub.add_parser("gen", help="generate images (queued in the engine; --foreground waits for them)",
                       description="Queue text-to-image (or reference img2img) generation jobs. The images land in "
                                   "PROJECT/outputs/DATE/ with their parameters in PNG text chunks.")
    add_project_arg(p)
    p.add_argument("prompt", help="the prompt (start it with the trigger word for the character)")
    p.add_argument("--lora", action="append", default=[], metavar="NAME[:STRENGTH]",
                   help="a LoRA: a name in loras/ (checkpoints included) or a .safetensors file (copied into "
                        "loras/); repeat for a stack (default strength: generate.lora_strength)")
    p.add_argument("--seed", type=int, help="seed (default: random)")
    p.add_argument("--seed-mode", choices=("increment", "fixed", "random"), default="increment",
                   help="seeds over --count images (default: increment)")
    p.add_argument("--size", metavar="WxH", help="image size, sides multiples of 16 (default: project.toml)")
    p.add_argument("--steps", type=int, help="inference steps (default: project.toml; Turbo: 8)")
    p.add_argument("--reference", action="append", default=[], metavar="IMAGE",
                   help="img2img from a character reference (copied into references/); repeat to blend several")
    p.add_argument("--strength", type=float, metavar="S",
                   help="reference strength 0–1: how much is redrawn (default: generate.reference_strength)")
    p.add_argument("--count", type=int, default=1, help="number of images (default 1)")
    p.add_argument("--foreground", action="store_true", help="wait here with a progress bar; print the files")
    p.set_defaults(func=cmd_gen)


def parse_lora(project: Project, item: str) -> dict[str, Any]:
    """NAME, NAME:STRENGTH, or a file path (outside files are copied into loras/)."""
    name, sep, tail = item.rpartition(":")
    strength: float | None = None
    if sep:
        try:
            strength = float(tail)
        except ValueError:
            name = item  # a colon that is part of the path
    else:
        name = item
    if name.endswith(".safetensors") or "/" in name:
        try:
            name = str(import_lora(project, name).relative_to(project.root))
        except (OSError, ValueError) as exc:
            raise CliError(f"--lora: {exc}") from None
    return {"path": name, **({"strength": strength} if strength is not None else {})}


def build_params(project: Project, args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {"prompt": args.prompt, "count": args.count, "seed": args.seed,
                              "seed_mode": args.seed_mode}
    if args.size:
        try:
            w, h = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise CliError(f"--size {args.size}: expected WIDTHxHEIGHT, e.g. 1024x1024") from None
        params.update(width=w, height=h)
    if args.steps is not None:
        params["steps"] = args.steps
    params["loras"] = [parse_lora(project, item) for item in args.lora]
    refs = []
    for ref in args.reference:
        try:
            refs.append(str(import_reference(project, ref).relative_to(project.root)))
        except (OSError, ValueError) as exc:
            raise CliError(f"--reference: {exc}") from None
    params["references"] = refs
    if args.strength is not None:
        if not refs:
            raise CliError("--strength is the reference strength; give a --reference IMAGE too")
        params["reference_strength"] = args.strength
    return params


def cmd_gen(args: argparse.Namespace) -> int:
    project, _ = load_project(args.project)
    params = build_params(project, args)
    with SyncClient(project) as client:
        if args.foreground:
            client.request("attach", client="cli", replay=False)  # events from here on: none is missed
        result = client.request("submit", kind="gen", params=params)
        for note in result.get("notes", []):
            print(f"note: {note}", file=sys.stderr)  # stdout carries only the written files
        ids = result["job_ids"]
        if not args.foreground:
            print(f"queued {len(ids)} generation job(s): {', '.join(map(str, ids))}; "
                  f"follow them with: zchar queue {args.project}")
            return 0
        return follow(client, project, ids)


def follow(client: SyncClient, project: Project, ids: list[int]) -> int:
    """Show the jobs' progress until each is finished; print each written file. Ctrl-C cancels them."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    pending, problems = set(ids), 0
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.1f}/{task.total:.0f}"),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"{len(ids)} job(s) queued", total=len(ids))
        try:
            for ev in client.iter_events(timeout=None):
                kind, d = ev["event"], ev["data"]
                if kind == protocol.EV_PROGRESS and d["job_id"] in pending and d.get("total"):
                    bar.update(task, completed=len(ids) - len(pending) + d["step"] / d["total"],
                               description=f"job {d['job_id']}: {d.get('message') or 'generating'}")
                elif kind == protocol.EV_LOADING and d.get("job_id") in pending:
                    bar.update(task, description=f"job {d['job_id']}: {d.get('message') or d.get('stage')}")
                elif kind == protocol.EV_RESULT and d["job_id"] in ids:
                    print(printable(str(project.root / d["path"]), one_line=True), flush=True)
                elif kind == protocol.EV_JOB and d["id"] in pending and d["state"] not in protocol.ACTIVE_STATES:
                    pending.discard(d["id"])
                    bar.update(task, completed=len(ids) - len(pending))
                    if d["state"] != "done":
                        problems += 1
                        console.print(printable(f"job {d['id']} {d['state']}: {d.get('error') or d.get('message')}"),
                                      markup=False, highlight=False)
                if not pending:
                    return 1 if problems else 0
        except KeyboardInterrupt:
            for job_id in sorted(pending):
                try:
                    client.request("cancel", job_id=job_id, timeout=10)
                except EngineError:
                    pass  # already finished
            console.print(f"cancelled job(s) {', '.join(map(str, sorted(pending)))}")
            return 130
    raise CliError(f"the engine stopped before job(s) {', '.join(map(str, sorted(pending)))} finished; "
                   f"they stay queued and run when it starts again (see {Path(project.log_path)})")
