"""Which textual-image widget draws pictures: Kitty graphics or Sixel for large previews where the terminal has
them, coloured half-cells for thumbnails and as the fallback everywhere else.

`textual_image.widget` probes the terminal when first imported, so `zchar open` imports this module before the
app starts (the probes cannot run once Textual owns the terminal).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import sys
import termios

from textual.widget import Widget


def _give_zero_sized_terminal_a_size() -> None:
    """Some ptys (fresh `pty.fork`, odd SSH clients) report 0×0, which breaks both the probe and Textual's
    layout; such a terminal gets 80×24 until the first real resize."""
    stream = sys.__stdout__
    if stream is None or not stream.isatty():
        return
    with contextlib.suppress(OSError):
        size = os.get_terminal_size(stream.fileno())
        if size.columns == 0 or size.lines == 0:
            fcntl.ioctl(stream.fileno(), termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))


_give_zero_sized_terminal_a_size()
from textual_image import widget as ti  # noqa: E402  (probes the terminal: after the size fix)

PREVIEW_CLASSES: dict[str, type[Widget]] = {
    "auto": ti.Image, "tgp": ti.TGPImage, "sixel": ti.SixelImage, "halfcell": ti.HalfcellImage,
    "unicode": ti.UnicodeImage,
}


def preview_class(protocol: str = "auto") -> type[Widget]:
    """The widget class for one large image (best quality the terminal supports, or the user's choice)."""
    return PREVIEW_CLASSES.get(protocol, ti.Image)


def thumbnail_class(protocol: str = "auto") -> type[Widget]:
    """Half-cell thumbnails: cheap to draw many at once and fine over SSH (see TUI.md)."""
    return ti.UnicodeImage if protocol == "unicode" else ti.HalfcellImage
