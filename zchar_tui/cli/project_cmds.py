"""zchar open / init / check / doctor."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine.project import ProjectError, init_project
from zchar_tui.cli.common import CliError, add_project_arg, load_project
from zchar_tui.config import IMAGE_PROTOCOLS, UserConfig
from zchar_tui.safe_text import printable

LEVEL_STYLES = {"error": "bold red", "warning": "yellow", "ok": "green", "great": "bold green", "info": "dim"}


def register(sub: Any) -> None:
    p = sub.add_parser("open", help="the dashboard (default: current folder)",
                       description="Open the dashboard on a project; starts or attaches to its engine.")
    add_project_arg(p, optional=True)
    p.add_argument("--pane", choices=("dataset", "training", "prompts", "queue"), default="dataset",
                   help="the pane to show first")
    p.add_argument("--image-protocol", choices=IMAGE_PROTOCOLS, default=None,
                   help="how images are drawn (default: the config's, else detected; "
                        "use halfcell when detection over a slow SSH link picks badly)")
    p.set_defaults(func=cmd_open)

    p = sub.add_parser("init", help="new project folder with project.toml and an empty dataset/",
                       description="Create a character project folder.")
    p.add_argument("project", help="folder to create")
    p.add_argument("--trigger", required=True, help="the trigger word (one word, e.g. mika_zc)")
    p.add_argument("--name", help="project name (default: the folder's name)")
    p.add_argument("--base", default=None, help="model: hub id, local folder, or 'tiny' (default: Z-Image Turbo)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("check", help="dataset + config health report; non-zero exit on errors",
                       description="Validate project.toml and the dataset; exit 1 when training would fail.")
    add_project_arg(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("doctor", help="GPU/driver/NVML/CUDA/torch/model-cache report",
                       description="Report what this machine offers zchar: GPUs, driver, CUDA, torch, model cache.")
    p.add_argument("project", nargs="?", help="also check this project's model setting")
    p.set_defaults(func=cmd_doctor)


def cmd_open(args: argparse.Namespace) -> int:
    project, _settings = load_project(args.project)
    config = UserConfig.load()
    if args.image_protocol:
        config.image_protocol = args.image_protocol
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        raise CliError("zchar open needs a terminal (run it in a terminal, tmux or an SSH session with a tty)")
    import zchar_tui.images  # noqa: F401  (probes the terminal's graphics support before Textual starts)
    from zchar_tui.app import ZcharApp

    ZcharApp(project, config=config, initial_pane=args.pane).run()
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    try:
        kw = {"base": args.base} if args.base else {}
        project = init_project(args.project, args.trigger, name=args.name, **kw)
    except ProjectError as exc:
        raise CliError(str(exc)) from None
    print(f"created {project.root}")
    print(f"  put 15–20 images of your character in {project.dataset_dir}")
    print(f"  (or import raw photos: zchar prepare {args.project} --input RAW)")
    print(f"  then: zchar open {args.project}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    project, settings = load_project(args.project)
    from rich.console import Console
    from rich.text import Text

    from engine import dataset

    report = dataset.check_dataset(project, settings)
    console = Console(highlight=False, soft_wrap=True)  # colours only on a terminal; plain text when piped
    for line, level in dataset.report_lines(report):
        console.print(Text(printable(line, one_line=True), style=LEVEL_STYLES.get(level, "")))
    return 1 if report.errors else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from engine import doctor

    settings = load_project(args.project)[1] if args.project else None
    lines, ok = doctor.report(settings)
    print("\n".join(lines))
    return 0 if ok else 1
