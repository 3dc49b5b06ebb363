"""Text from outside (file names, captions, prompts, engine messages) made safe to show in a terminal.

A file name can hold an escape sequence (restyling or retitling the terminal), bytes that are not UTF-8 (a strict
UTF-8 stdout cannot print them), or markup that Textual and Rich would interpret (`[red]`, `[@click=app.quit]`, and
a stray `[/]` that raises MarkupError).
"""

from __future__ import annotations

import re

from rich.markup import escape as _escape_markup

_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")  # C0 but tab and newline, DEL, C1, and
_UNPRINTABLE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # lone surrogates (undecodable name bytes)


def printable(text: str, one_line: bool = False) -> str:
    """`text` with control characters and undecodable bytes shown as escapes, e.g. \\x1b or \\udcff."""
    pattern = _UNPRINTABLE_LINE if one_line else _UNPRINTABLE
    return pattern.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def escape(text: str) -> str:
    """`printable(text)` escaped for markup (Textual's and Rich's share the syntax)."""
    return _escape_markup(printable(text))
