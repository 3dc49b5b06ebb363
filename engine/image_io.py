"""Opening any image a user drops in: one clear sentence instead of a traceback, RGB out, EXIF orientation applied.

Pillow and numpy only (no torch): the Dataset pane runs this in a thread worker of the UI process.
"""

from __future__ import annotations

import contextlib
import io
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow warns between MAX_IMAGE_PIXELS and twice that and raises above; we enforce our own limit (below) with a
# message instead, so the warning would only be noise (in the dashboard it could even land on the screen).
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

MAX_PIXELS = 2 * (Image.MAX_IMAGE_PIXELS or 89_478_485)  # ~179 MP: a 200 MP phone photo is refused, 108 MP is fine
FLATTEN_ON = (255, 255, 255)  # transparent areas become white (a plain background, as the guide suggests)
_SWAPPED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that turn the picture by 90°
_EXIF_ORIENTATION = 0x0112


class ImageReadError(Exception):
    """A file that cannot be used as an image; the message is one sentence for the report."""


@dataclass
class LoadedImage:
    image: Image.Image  # RGB, orientation applied; possibly decoded at reduced size (see `load_rgb(draft=…)`)
    width: int  # full size as displayed (after orientation), whatever size `image` was decoded at
    height: int
    format: str
    notes: list[str] = field(default_factory=list)  # things the user may want to know (e.g. "animated: first frame")


def read_bytes(path: Path) -> bytes:
    """The file's bytes, or ImageReadError naming why not (missing, empty, unreadable)."""
    with contextlib.suppress(OSError):  # if stat fails, the read below says why
        mode = path.stat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # reading a named pipe or a device may never end
            raise ImageReadError("not a regular file (a pipe, socket or device)")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError("the file disappeared while it was being read") from None
    except PermissionError:
        raise ImageReadError("cannot read the file: permission denied") from None
    except IsADirectoryError:
        raise ImageReadError("is a folder, not an image") from None
    except OSError as exc:
        raise ImageReadError(f"cannot read the file: {exc.strerror or exc}") from None
    if not data:
        raise ImageReadError("empty file (0 bytes)")
    return data


def load_rgb(data: bytes, draft: int | None = None) -> LoadedImage:
    """Decode `data` to RGB with EXIF orientation applied.

    `draft`: JPEGs may be decoded at a reduced scale whose sides stay ≥ draft (libjpeg's 1/2, 1/4, 1/8 scaling —
    several times faster than a full decode); `width`/`height` still report the full size.
    """
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ImageReadError(f"too large to open safely (over {MAX_PIXELS / 1e6:.0f} megapixels); "
                             "downscale it first") from None
    except UnidentifiedImageError:
        raise ImageReadError("not an image Pillow can read (unknown format or not an image at all)") from None
    except Exception as exc:  # Pillow's plugins raise many kinds (SyntaxError, struct.error, ValueError…)
        raise ImageReadError(f"unreadable image header ({_short(exc)})") from None
    w, h = im.size
    if w * h > MAX_PIXELS:
        raise ImageReadError(f"too large to open safely ({w}×{h} = {w * h / 1e6:.0f} megapixels, "
                             f"limit {MAX_PIXELS / 1e6:.0f}); downscale it first")
    if w == 0 or h == 0:
        raise ImageReadError(f"has no pixels ({w}×{h})")
    notes: list[str] = []
    fmt = im.format or "?"
    if getattr(im, "is_animated", False):
        notes.append(f"animated ({getattr(im, 'n_frames', '?')} frames): the first frame is used")
    try:
        if draft and fmt == "JPEG":
            im.draft("RGB", (draft, draft))
        im.load()  # before getexif(): for some formats that decodes the image and would swallow the error
    except Exception as exc:
        raise ImageReadError(f"truncated or corrupt image data ({_short(exc)})") from None
    try:
        orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:
        orientation = 1
        notes.append("EXIF data unreadable: orientation left as stored")
    if orientation in _SWAPPED_ORIENTATIONS:
        w, h = h, w
    if orientation != 1:
        try:
            im = ImageOps.exif_transpose(im)
        except Exception:
            notes.append("EXIF orientation could not be applied: used as stored")
    try:
        rgb = to_rgb(im)
    except Exception as exc:
        raise ImageReadError(f"unsupported colour mode {im.mode} ({_short(exc)})") from None
    return LoadedImage(rgb, w, h, fmt, notes)


def open_rgb(path: Path, draft: int | None = None) -> LoadedImage:
    """`load_rgb(read_bytes(path))`."""
    return load_rgb(read_bytes(path), draft)


def to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB from any mode: 16-bit and float greyscale are rescaled, alpha is flattened on white."""
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        im = Image.fromarray(_to_uint8(np.asarray(im)), "L")
        mode = "L"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, FLATTEN_ON)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if mode == "RGB":
        return im
    return im.convert("RGB")


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """16-bit or 32-bit greyscale → 0..255: 16-bit data is scaled by 1/257; floats in 0..1 are stretched."""
    arr = arr.astype(np.float32)
    hi = float(arr.max()) if arr.size else 0.0
    if hi <= 1.0:
        arr = arr * 255.0
    elif hi > 255.0:
        arr = arr / 257.0
    return np.clip(arr + 0.5, 0, 255).astype(np.uint8)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text if len(text) <= 80 else text[:77] + "…"
