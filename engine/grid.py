"""A labelled contact sheet: rows × columns of equally sized images (checkpoints × LoRA strengths). Pillow only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

PAD = 4
BACKGROUND = (24, 24, 28)
TEXT = (235, 235, 235)
MUTED = (150, 150, 160)


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # FreeType build of Pillow: scalable
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def lora_label(path: str | Path) -> str:
    """A short row label: 'RUN · step 500' for a checkpoint, the file's stem for a final LoRA."""
    p = Path(path)
    m = re.fullmatch(r"step-0*(\d+)", p.parent.name)
    if m:
        return f"{p.parent.parent.name} · step {m.group(1)}"
    m = re.search(r"-step0*(\d+)$", p.stem)
    return f"{p.stem[:m.start()]} · step {m.group(1)}" if m else p.stem


def _fit_text(draw: Any, text: str, font: Any, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def contact_sheet(cells: list[list[Any]], row_labels: list[str], col_labels: list[str], title: str = "") -> Any:
    """One image: a title line, column labels on top, row labels on the left, `cells[row][col]` in the grid."""
    from PIL import Image, ImageDraw

    if not cells or not cells[0]:
        raise ValueError("a contact sheet needs at least one image")
    cw, ch = cells[0][0].size
    size = max(10, min(28, cw // 12))
    font, small = _font(size), _font(max(9, size * 3 // 4))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = min(max(int(probe.textlength(t, font=font)) for t in row_labels) + 2 * PAD, max(cw, 120))
    line_h = size + 2 * PAD
    top = line_h * (2 if title else 1)
    cols, rows = len(cells[0]), len(cells)
    sheet = Image.new("RGB", (label_w + cols * (cw + PAD) + PAD, top + rows * (ch + PAD) + PAD), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((PAD, PAD), _fit_text(draw, title, small, sheet.width - 2 * PAD), fill=MUTED, font=small)
    for c, label in enumerate(col_labels):
        x = label_w + c * (cw + PAD) + PAD
        draw.text((x, top - line_h + PAD), _fit_text(draw, label, font, cw), fill=TEXT, font=font)
    for r, row in enumerate(cells):
        y = top + r * (ch + PAD) + PAD
        draw.text((PAD, y + ch // 2 - size // 2), _fit_text(draw, row_labels[r], font, label_w - 2 * PAD),
                  fill=TEXT, font=font)
        for c, img in enumerate(row):
            img = img.convert("RGB")
            sheet.paste(img if img.size == (cw, ch) else img.resize((cw, ch)), (label_w + c * (cw + PAD) + PAD, y))
    return sheet
