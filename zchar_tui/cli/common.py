"""Helpers shared by the CLI commands: loading a project with clear errors, printing to stderr."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from engine.project import Project, ProjectError, Settings

_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")  # C0 but tab and newline, DEL, C1,
_UNPRINTABLE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # lone surrogates (non-UTF-8 names)


def printable(text: str, one_line: bool = False) -> str:
    """`text` safe to write to a terminal: control characters (an escape sequence in a file name could restyle or
    retitle it) and undecodable bytes of file names are shown as escapes, e.g. \\x1b or \\udcff."""
    pattern = _UNPRINTABLE_LINE if one_line else _UNPRINTABLE
    return pattern.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


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
