"""Which textual-image widget draws pictures: Kitty graphics or Sixel for large previews where the terminal has
them, coloured half-cells for thumbnails and as the fallback everywhere else.

`textual_image.widget` probes the terminal when first imported, so `zchar open` imports this module before the
app starts (the probes cannot run once Textual owns the terminal).
"""

from __future__ import annotations

from textual.widget import Widget
from textual_image import widget as ti

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
