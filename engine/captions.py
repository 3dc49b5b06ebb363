"""Caption files (kohya convention: IMAGE.txt beside IMAGE): reading whatever encoding a user saved, writing UTF-8.

Training reads captions as UTF-8; a caption saved as UTF-16 or Latin-1 is read correctly here and reported, and
saving it from the Dataset pane (or `write_caption`) converts it.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

from engine.project import atomic_write_bytes

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
MAX_CAPTION_BYTES = 64 * 1024  # a caption is a line or two; anything bigger is not a caption


@dataclass
class Caption:
    text: str = ""
    exists: bool = False
    encoding: str = "utf-8"
    problem: str = ""  # one sentence when the file is unusable or oddly encoded (the text may still be usable)


def caption_path(image: Path) -> Path:
    return image.with_suffix(".txt")


def decode_caption(data: bytes) -> tuple[str, str]:
    """(text, encoding): BOMs first (UTF-8/16/32), then strict UTF-8, then UTF-16 without BOM, then Latin-1."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace"), encoding
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if len(data) >= 2 and len(data) % 2 == 0 and data.count(0) * 3 >= len(data):  # ASCII text as UTF-16 LE/BE
        encoding = "utf-16-le" if data[1] == 0 else "utf-16-be"
        return data.decode(encoding, errors="replace"), encoding
    return data.decode("latin-1"), "latin-1"


def read_caption(image: Path) -> Caption:
    """The caption of `image`; never raises (a problem is described in `Caption.problem`)."""
    path = caption_path(image)
    try:
        if path.is_symlink() or not path.is_file():
            if path.exists() or path.is_symlink():
                return Caption(exists=True, problem=f"{path.name} is not a regular file")
            return Caption()
        data = path.read_bytes()
    except OSError as exc:
        return Caption(exists=True, problem=f"{path.name} cannot be read ({exc.strerror or exc})")
    if len(data) > MAX_CAPTION_BYTES:
        return Caption(exists=True, problem=f"{path.name} is {len(data) // 1024} KiB: too big to be a caption")
    text, encoding = decode_caption(data)
    if "\0" in text:
        return Caption(exists=True, problem=f"{path.name} looks binary, not a text caption")
    text = " ".join(text.replace("\r", "\n").split())  # one line; newlines and runs of spaces collapse
    problem = ""
    if encoding not in ("utf-8", "utf-8-sig"):
        problem = (f"{path.name} is {encoding.upper()}-encoded; zchar reads it, but other trainers expect UTF-8 "
                   "(press e and save to convert)")
    return Caption(text=text, exists=True, encoding=encoding, problem=problem)


def write_caption(image: Path, text: str) -> None:
    """Save the caption as UTF-8, atomically."""
    atomic_write_bytes(caption_path(image), (" ".join(text.split()) + "\n").encode("utf-8"))


def has_trigger(text: str, trigger: str) -> bool:
    """The trigger appears as a word (not inside another word)."""
    return bool(trigger) and re.search(rf"(?<!\w){re.escape(trigger)}(?!\w)", text) is not None


def leads_with_trigger(text: str, trigger: str) -> bool:
    first = re.split(r"[,\s]", text.strip(), maxsplit=1)[0] if text.strip() else ""
    return first == trigger
