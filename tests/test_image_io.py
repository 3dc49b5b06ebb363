"""Opening images: orientation, colour modes, reduced decoding, and one clear sentence for every bad file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.image_io import ImageReadError, load_rgb, open_rgb
from tests.dataset_images import png_bomb, truncated_copy


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def test_exif_orientation_is_applied_and_reported_size_is_upright() -> None:
    im = Image.new("RGB", (200, 100), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 100, 100))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90° clockwise
    loaded = load_rgb(_encode(im, "JPEG", exif=exif, quality=95))
    assert (loaded.width, loaded.height) == (100, 200)
    assert loaded.image.size == (100, 200)
    top = loaded.image.getpixel((50, 20))
    bottom = loaded.image.getpixel((50, 180))
    assert top[0] > 200 and top[2] < 60  # the red half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_draft_decodes_jpeg_smaller_but_reports_full_size() -> None:
    data = _encode(Image.new("RGB", (2048, 1536), (10, 200, 30)), "JPEG")
    loaded = load_rgb(data, draft=512)
    assert (loaded.width, loaded.height) == (2048, 1536)
    assert min(loaded.image.size) >= 512 and loaded.image.width <= 1024


@pytest.mark.parametrize("mode", ["CMYK", "P", "L", "1", "LA", "RGBA", "I;16", "I", "F"])
def test_every_colour_mode_becomes_rgb(mode: str) -> None:
    base = Image.new("RGB", (32, 32), (200, 100, 50))
    if mode in ("I;16", "I", "F"):
        arr = np.full((32, 32), {"I;16": 65535, "I": 40000, "F": 1.0}[mode],
                      dtype={"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode])
        im = Image.fromarray(arr, mode) if mode != "I;16" else Image.fromarray(arr)
        fmt = "PNG" if mode == "I;16" else "TIFF"
    else:
        im, fmt = base.convert(mode), ("JPEG" if mode == "CMYK" else "PNG")
    loaded = load_rgb(_encode(im, fmt))
    assert loaded.image.mode == "RGB" and loaded.image.size == (32, 32)
    if mode in ("I;16", "I", "F"):  # high values map to white-ish, not to clipped garbage
        assert loaded.image.getpixel((5, 5))[0] >= 150


def test_alpha_is_flattened_on_white() -> None:
    im = Image.new("RGBA", (20, 20), (255, 0, 0, 0))  # fully transparent red
    im.putpixel((0, 0), (255, 0, 0, 255))
    out = load_rgb(_encode(im, "PNG")).image
    assert out.getpixel((10, 10)) == (255, 255, 255)
    assert out.getpixel((0, 0)) == (255, 0, 0)


def test_palette_transparency_is_flattened() -> None:
    im = Image.new("P", (10, 10), 0)
    im.putpalette([0, 255, 0] + [0, 0, 0] * 255)
    out = load_rgb(_encode(im, "PNG", transparency=0)).image
    assert out.getpixel((5, 5)) == (255, 255, 255)


def test_animated_gif_uses_first_frame_and_says_so() -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    loaded = load_rgb(buf.getvalue())
    assert loaded.image.getpixel((8, 8))[0] > 200
    assert any("first frame" in n for n in loaded.notes)


# --- bad files: each a specific sentence, never a traceback -------------------------------------------------

def test_zero_byte_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty file"):
        open_rgb(p)


def test_text_file_with_image_extension(tmp_path: Path) -> None:
    p = tmp_path / "notes.jpg"
    p.write_text("not a picture")
    with pytest.raises(ImageReadError, match="not an image"):
        open_rgb(p)


def test_truncated_file(tmp_path: Path) -> None:
    p = tmp_path / "cut.jpg"
    truncated_copy(Image.effect_noise((256, 256), 60).convert("RGB"), p)
    with pytest.raises(ImageReadError, match="truncated or corrupt"):
        open_rgb(p)


def test_corrupt_png_body(tmp_path: Path) -> None:
    data = bytearray(_encode(Image.effect_noise((64, 64), 60), "PNG"))
    data[60:200] = bytes(140)  # wreck the compressed data, keep the header
    p = tmp_path / "broken.png"
    p.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=r"truncated or corrupt|unreadable"):
        open_rgb(p)


def test_decompression_bomb(tmp_path: Path) -> None:
    p = tmp_path / "bomb.png"
    png_bomb(p)
    with pytest.raises(ImageReadError, match="too large to open safely"):
        open_rgb(p)


def test_unreadable_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run as root, where chmod 000 does not stop reads: make the read itself fail as it would."""
    p = tmp_path / "locked.png"
    Image.new("RGB", (8, 8)).save(p)
    real = Path.read_bytes

    def deny(self: Path) -> bytes:
        if self == p:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", deny)
    with pytest.raises(ImageReadError, match="permission denied"):
        open_rgb(p)


def test_folder_with_image_extension(tmp_path: Path) -> None:
    p = tmp_path / "album.jpg"
    p.mkdir()
    with pytest.raises(ImageReadError, match="folder"):
        open_rgb(p)
