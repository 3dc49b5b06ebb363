"""Helpers shared by the CLI commands: loading a project with clear errors, printing to stderr."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.project import Project, ProjectError, Settings
from zchar_tui.safe_text import printable


class CliError(Exception):
    """Printed as `zchar: error: MESSAGE`, exit code 2."""


def fail(message: str, code: int = 2) -> int:
    print(f"zchar: error: {printable(message)}", file=sys.stderr)
    return code


def load_project(path: str | Path) -> tuple[Project, Settings]:
    project = Project(path)
    if not project.root.is_dir():
        raise CliError(f"{project.root}: no such folder (create a project with: zchar init {path} --trigger WORD)")
    try:
        return project, project.load()
    except ProjectError as exc:
        raise CliError(str(exc)) from None


def add_project_arg(parser: object, optional: bool = False) -> None:
    if optional:
        parser.add_argument("project", nargs="?", default=".", help="project folder (default: current folder)")  # type: ignore[attr-defined]
    else:
        parser.add_argument("project", help="project folder")  # type: ignore[attr-defined]
