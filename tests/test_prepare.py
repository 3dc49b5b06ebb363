"""zchar prepare: crops, resizing, captions, bad input, symlinks, idempotence; the input folder is never touched."""

from __future__ import annotations

import codecs
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import faces
from engine.prepare import PrepareError, PrepareOptions, crop_box, prepare
from engine.project import Project, init_project
from tests.conftest import TRIGGER
from tests.dataset_images import landscape, png_bomb, portrait, truncated_copy
from zchar_tui.cli import main


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return init_project(tmp_path / "proj", TRIGGER, name="Mika", base="tiny")


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    folder = tmp_path / "raw"
    folder.mkdir()
    return folder


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Content hash and mtime of every entry (symlinks by target): proves a folder was not modified."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p)] = (os.readlink(p), 0)
        elif p.is_file():
            out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


def run(project: Project, raw: Path, **options: object):  # type: ignore[no-untyped-def]
    return prepare(project, project.load(), raw, PrepareOptions(**options))  # type: ignore[arg-type]


# --- crops --------------------------------------------------------------------------------------------------

def test_centre_crop_and_resize(project: Project, raw: Path) -> None:
    im = Image.new("RGB", (300, 200), (255, 0, 0))
    im.paste((0, 0, 255), (50, 0, 250, 200))  # blue square in the middle, red bands left and right
    im.save(raw / "wide.png")
    result = run(project, raw, size=100, format="png")
    assert [w.dest for w in result.written] == ["wide.png"]
    out = Image.open(project.dataset_dir / "wide.png")
    assert out.size == (100, 100)
    arr = np.asarray(out)
    assert arr[:, :, 2].min() > 240 and arr[:, :, 0].max() < 15  # only the blue middle square survived


def test_small_images_are_not_upscaled(project: Project, raw: Path) -> None:
    landscape(1, 300).save(raw / "small.png")
    result = run(project, raw, size=1024)
    assert Image.open(project.dataset_dir / "small.jpg").size == (300, 300)
    assert "not upscaled" in " ".join(result.written[0].notes)


@pytest.mark.parametrize(("face", "ratio", "box"), [
    (faces.Box(600, 100, 100, 100), 0.5, (550, 50, 750, 250)),  # face centred, spans half the crop
    (faces.Box(0, 0, 100, 100), 0.5, (0, 0, 200, 200)),  # shifted to stay inside the picture
    (faces.Box(900, 700, 100, 100), 0.25, (600, 400, 1000, 800)),  # bottom-right corner
])
def test_face_crop_box(face: faces.Box, ratio: float, box: tuple[int, int, int, int]) -> None:
    assert crop_box(1000, 800, face, ratio) == (box, "face crop")


def test_face_crop_box_when_the_picture_is_too_tight() -> None:
    box, note = crop_box(600, 600, faces.Box(50, 50, 500, 500), 0.6)
    assert box == (0, 0, 600, 600) and "too tight" in note


def test_face_crop_with_a_stubbed_detection(project: Project, raw: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = landscape(2, 800)
    src.save(raw / "photo.png")
    monkeypatch.setattr(faces, "available", lambda: True)
    monkeypatch.setattr(faces, "detect", lambda image, **kw: [faces.Box(500, 100, 120, 120), faces.Box(0, 0, 40, 40)])
    result = run(project, raw, size=200, face_detect=True, crop_face_ratio=0.6, format="png")
    notes = " ".join(result.written[0].notes)
    assert "face crop" in notes and "2 faces" in notes
    expected = src.resize((200, 200), Image.Resampling.LANCZOS, box=(460, 60, 660, 260), reducing_gap=3.0)
    got = np.asarray(Image.open(project.dataset_dir / "photo.png"), dtype=np.int16)
    assert np.abs(got - np.asarray(expected, dtype=np.int16)).max() <= 1


def test_no_face_found_falls_back_to_centre(project: Project, raw: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    landscape(3, 400).save(raw / "scene.png")
    monkeypatch.setattr(faces, "available", lambda: True)
    monkeypatch.setattr(faces, "detect", lambda image, **kw: [])
    result = run(project, raw, size=128, face_detect=True)
    assert "no face found: centre crop" in result.written[0].notes


def test_face_detect_without_a_detector_says_so(project: Project, raw: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    landscape(4, 300).save(raw / "a.png")
    monkeypatch.setattr(faces, "available", lambda: False)
    monkeypatch.setattr(faces, "unavailable_reason", lambda: "face check unavailable (test)")
    result = run(project, raw, size=128, face_detect=True)
    assert result.written and "face check unavailable (test); used centre crops" in result.summary()


@pytest.mark.skipif(not faces.available(), reason=f"needs OpenCV's Haar cascade: {faces.unavailable_reason()}")
def test_real_face_crop_centres_the_drawn_face(project: Project, raw: Path) -> None:
    portrait(5, 800, face=(0.75, 0.35, 0.1), width=1200).save(raw / "off-centre.png")
    result = run(project, raw, size=400, face_detect=True, crop_face_ratio=0.5, format="png")
    assert result.written[0].notes[0] == "face crop"
    found = faces.detect(Image.open(project.dataset_dir / "off-centre.png"), max_side=400)
    assert len(found) == 1
    cx, cy = found[0].centre
    assert abs(cx - 200) < 40 and abs(cy - 200) < 40  # the face is now in the middle
    assert 0.35 < found[0].w / 400 < 0.65  # and spans about half the side


# --- outputs ------------------------------------------------------------------------------------------------------

def test_captions_start_with_the_trigger_and_raw_captions_are_kept(project: Project, raw: Path) -> None:
    landscape(5, 200).save(raw / "a.png")
    landscape(6, 200).save(raw / "b.png")
    (raw / "b.txt").write_bytes(codecs.BOM_UTF16_LE + "red coat, smiling".encode("utf-16-le"))
    run(project, raw, size=128)
    assert (project.dataset_dir / "a.txt").read_text("utf-8") == "mika\n"
    assert (project.dataset_dir / "b.txt").read_text("utf-8") == "mika, red coat, smiling\n"


def test_existing_captions_are_never_replaced(project: Project, raw: Path) -> None:
    landscape(7, 200).save(raw / "a.png")
    (project.dataset_dir / "a.txt").write_text("mika, my careful caption")
    result = run(project, raw, size=128)
    assert (project.dataset_dir / "a.txt").read_text() == "mika, my careful caption"
    assert "kept the existing a.txt" in result.written[0].notes


def test_names_with_spaces_unicode_subfolders_and_clashes(project: Project, raw: Path) -> None:
    (raw / "holiday 2024").mkdir()
    landscape(8, 200).save(raw / "holiday 2024" / "Mika à la plage 🌊.png")
    landscape(9, 200).save(raw / "same.png")
    landscape(10, 200).save(raw / "same.jpg")
    result = run(project, raw, size=128)
    assert sorted(w.dest for w in result.written) == ["holiday 2024_Mika à la plage 🌊.jpg", "same_jpg.jpg",
                                                     "same_png.jpg"]
    assert all((project.dataset_dir / w.dest).with_suffix(".txt").is_file() for w in result.written)


def test_formats_are_rgb(project: Project, raw: Path) -> None:
    Image.new("RGBA", (200, 200), (0, 0, 0, 0)).save(raw / "clear.png")
    Image.new("CMYK", (200, 200), (0, 255, 0, 0)).save(raw / "print.jpg")
    run(project, raw, size=128)
    for name in ("clear.jpg", "print.jpg"):
        out = Image.open(project.dataset_dir / name)
        assert out.mode == "RGB" and out.format == "JPEG"


# --- safety ----------------------------------------------------------------------------------------------------------

def test_every_bad_input_is_skipped_with_a_reason(project: Project, raw: Path, tmp_path: Path) -> None:
    landscape(11, 300).save(raw / "good one.png")
    (raw / "empty.jpg").write_bytes(b"")
    (raw / "letter.jpg").write_text("Dear Mika")
    truncated_copy(landscape(12, 300), raw / "cut.jpg")
    png_bomb(raw / "bomb.png")
    (raw / "IMG_0001.HEIC").write_bytes(b"\0\0\0\x18ftypheic")
    (raw / "movie.mp4").write_bytes(b"\0")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    landscape(13, 300).save(outside / "secret.png")
    os.symlink(outside / "secret.png", raw / "link out.png")
    os.symlink(outside, raw / "folder link")
    os.symlink(raw / "good one.png", raw / "link in.png")
    os.symlink(raw / "missing.png", raw / "dangling.png")
    before = snapshot(raw)
    result = run(project, raw, size=128)
    reasons = dict(result.skipped)
    assert "empty file" in reasons["empty.jpg"]
    assert "not an image" in reasons["letter.jpg"]
    assert "truncated or corrupt" in reasons["cut.jpg"]
    assert "too large to open safely" in reasons["bomb.png"]
    assert "HEIC" in reasons["IMG_0001.HEIC"]
    assert "not an image type" in reasons["movie.mp4"]
    assert "outside the input folder: refused" in reasons["link out.png"]
    assert "outside the input folder: refused" in reasons["folder link/"]
    assert "broken symlink" in reasons["dangling.png"]
    assert sorted(w.source for w in result.written) == ["good one.png", "link in.png"]
    assert snapshot(raw) == before  # the input folder is never modified
    assert not list(project.dataset_dir.glob(".*.tmp"))  # no half-written files


def test_unreadable_raw_file_is_skipped(project: Project, raw: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As root nothing is unreadable by mode bits: make the read fail as it would for another user."""
    landscape(14, 200).save(raw / "locked.png")
    landscape(15, 200).save(raw / "open.png")
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: (_ for _ in ()).throw(PermissionError(13, "denied"))
                        if self.name == "locked.png" else real(self))
    result = run(project, raw, size=128)
    assert result.skipped == [("locked.png", "cannot read the file: permission denied")]
    assert [w.dest for w in result.written] == ["open.jpg"]


def test_rerun_is_a_no_op_and_nothing_is_overwritten_without_force(project: Project, raw: Path) -> None:
    landscape(16, 300).save(raw / "a.png")
    landscape(17, 300).save(raw / "b.png")
    first = run(project, raw, size=128)
    assert len(first.written) == 2
    dataset_before = snapshot(project.dataset_dir)
    second = run(project, raw, size=128)
    assert (second.written, second.skipped, second.unchanged) == ([], [], 2)
    assert snapshot(project.dataset_dir) == dataset_before
    third = run(project, raw, size=96)
    assert not third.written and all("other options" in why for _src, why in third.skipped)
    landscape(18, 300).save(raw / "a.png")  # different picture, same name
    fourth = run(project, raw, size=128)
    assert dict(fourth.skipped)["a.png"] == "dataset/a.jpg already exists (use --force to overwrite it)"
    assert snapshot(project.dataset_dir) == dataset_before
    forced = run(project, raw, size=96, force=True)
    assert len(forced.written) == 2
    assert Image.open(project.dataset_dir / "a.jpg").size == (96, 96)


def test_input_inside_or_around_the_dataset_is_refused(project: Project) -> None:
    with pytest.raises(PrepareError, match="dataset"):
        run(project, project.dataset_dir)
    with pytest.raises(PrepareError, match="dataset"):
        run(project, project.root)
    with pytest.raises(PrepareError, match="not a folder"):
        run(project, project.root / "nope")


@pytest.mark.parametrize(("options", "words"), [({"size": 10}, "--size"), ({"crop_face_ratio": 2.0}, "ratio"),
                                                ({"format": "gif"}, "--format")])
def test_bad_options(project: Project, raw: Path, options: dict[str, object], words: str) -> None:
    with pytest.raises(PrepareError, match=words):
        run(project, raw, **options)


def test_cli_prepare(project: Project, raw: Path, capsys: pytest.CaptureFixture[str]) -> None:
    landscape(19, 300).save(raw / "a.png")
    (raw / "b.jpg").write_text("nope")
    assert main(["prepare", str(project.root), "--input", str(raw), "--size", "128"]) == 0
    out = capsys.readouterr().out
    assert "written 1 image(s)" in out and "a.png → a.jpg" in out and "b.jpg: not an image" in out
    assert main(["prepare", str(project.root), "--input", str(raw / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
