"""`zchar` command line: the dashboard plus commands for scripts (each a client of the project's engine)."""

from __future__ import annotations

import argparse
import os
import sys

from engine import __version__
from zchar_tui.cli import dataset_cmds, engine_cmds, gen_cmds, project_cmds, train_cmds
from zchar_tui.cli.common import CliError, fail
from zchar_tui.client import EngineError

COMMAND_MODULES = (project_cmds, dataset_cmds, train_cmds, gen_cmds, engine_cmds)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zchar",
        description="Train Z-Image Turbo character LoRAs and generate with them, from a terminal dashboard.",
        epilog="Run `zchar COMMAND --help` for a command's options. Start with: zchar open sample_project",
    )
    parser.add_argument("--version", action="version", version=f"zchar {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (CliError, EngineError) as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `zchar queue P | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
