"""Health checks: per-image flags, captions in odd encodings, near-duplicates, totals, the cache, the trash, and
`zchar check`."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

import pytest
from PIL import Image, ImageFilter

from engine import dataset, faces
from engine.captions import decode_caption, has_trigger, read_caption
from engine.project import Project, ProjectError, init_project
from tests.conftest import TRIGGER, make_project
from tests.dataset_images import landscape, png_bomb, portrait, truncated_copy
from zchar_tui.cli import main


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project (trigger 'mika', training resolution 256: size limits 128² error, 256² warning)."""
    p = init_project(tmp_path / "proj", TRIGGER, name="Mika", base="tiny")
    p.update({"train.resolution": 256})
    return p


def add(project: Project, name: str, image: Image.Image | None = None, caption: str | bytes | None = "mika, x",
        **save: object) -> Path:
    path = project.dataset_dir / name
    if image is not None:
        image.save(path, **save)
    if isinstance(caption, bytes):
        path.with_suffix(".txt").write_bytes(caption)
    elif caption is not None:
        path.with_suffix(".txt").write_text(caption, "utf-8")
    return path


def flags_of(report: dataset.DatasetReport, name: str) -> dict[str, str]:
    item = next(it for it in report.items if it.name == name)
    return {f.code: f.level for f in item.flags}


def scan(project: Project, **kw: object) -> dataset.DatasetReport:
    return dataset.scan(project, project.load(), **kw)


# --- per image ----------------------------------------------------------------------------------------------

def test_size_flags_follow_the_training_resolution(project: Project) -> None:
    add(project, "tiny.png", landscape(1, 100))
    add(project, "mid.png", landscape(2, 200))
    add(project, "big.png", landscape(3, 300))
    r = scan(project)
    assert flags_of(r, "tiny.png")["too small"] == "error"
    assert flags_of(r, "mid.png")["low-res"] == "warning"
    assert "too small" not in flags_of(r, "big.png") and "low-res" not in flags_of(r, "big.png")


def test_aspect_blur_and_exposure(project: Project) -> None:
    sharp = landscape(4, 512)
    add(project, "sharp.png", sharp)
    add(project, "soft.png", sharp.filter(ImageFilter.GaussianBlur(8)))
    add(project, "wide.png", landscape(5, 300).resize((900, 300)))
    add(project, "dark.png", Image.eval(landscape(6, 300), lambda v: v // 12))
    add(project, "bright.png", Image.eval(landscape(7, 300), lambda v: 235 + v // 12))
    add(project, "flat.png", Image.new("RGB", (300, 300), (128, 128, 128)))
    r = scan(project)
    sharp_flags = flags_of(r, "sharp.png")
    assert not {"blurry", "dark", "bright", "aspect", "flat"} & set(sharp_flags)
    assert flags_of(r, "soft.png")["blurry"] == "warning"
    assert flags_of(r, "wide.png")["aspect"] == "warning"
    assert "dark" in flags_of(r, "dark.png") and "bright" not in flags_of(r, "dark.png")
    assert "bright" in flags_of(r, "bright.png")
    assert "flat" in flags_of(r, "flat.png")


def test_caption_checks(project: Project) -> None:
    img = landscape(8, 300)
    add(project, "good.png", img, "mika, red coat, park")
    add(project, "none.png", img.rotate(90), None)
    add(project, "empty.png", img.rotate(180), "  \n")
    add(project, "notrig.png", img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "a girl, mikado sticks")
    add(project, "stub.png", img.transpose(Image.Transpose.FLIP_TOP_BOTTOM), "mika")
    add(project, "late.png", landscape(9, 300), "portrait of mika in a park")
    r = scan(project)
    assert not [c for c, lvl in flags_of(r, "good.png").items() if lvl != "info"]
    assert flags_of(r, "none.png")["no caption"] == "warning"
    assert flags_of(r, "empty.png")["empty caption"] == "warning"
    assert flags_of(r, "notrig.png")["no trigger"] == "warning"  # 'mikado' does not count
    assert flags_of(r, "stub.png")["stub"] == "info"
    assert flags_of(r, "late.png")["trigger not first"] == "info"


def test_two_images_sharing_one_caption_file(project: Project) -> None:
    add(project, "a.png", landscape(10, 300))
    add(project, "a.jpg", landscape(11, 300), format="JPEG")
    r = scan(project)
    assert flags_of(r, "a.png")["shared caption"] == "warning"
    assert flags_of(r, "a.jpg")["shared caption"] == "warning"


@pytest.mark.parametrize(("data", "text", "encoding"), [
    (codecs.BOM_UTF16_LE + "mika, café".encode("utf-16-le"), "mika, café", "utf-16"),
    ("mika, café".encode("utf-16-be"), "mika, café", "utf-16-be"),
    (codecs.BOM_UTF8 + "mika, café".encode(), "mika, café", "utf-8-sig"),
    ("mika, café".encode("latin-1"), "mika, café", "latin-1"),
    ("mika, 日本".encode(), "mika, 日本", "utf-8"),
])
def test_captions_in_odd_encodings_are_read(tmp_path: Path, data: bytes, text: str, encoding: str) -> None:
    assert decode_caption(data) == (text, encoding)
    image = tmp_path / "x.png"
    image.with_suffix(".txt").write_bytes(data)
    cap = read_caption(image)
    assert cap.text == text
    assert bool(cap.problem) == (encoding not in ("utf-8", "utf-8-sig"))  # other trainers expect UTF-8: say so


def test_unusable_caption_files(project: Project) -> None:
    img = landscape(12, 300)
    add(project, "bin.png", img, b"\x89PNG\x00\x00\x01binary")
    add(project, "huge.png", img.rotate(90), b"mika " * 20000)
    r = scan(project)
    assert "binary" in next(it for it in r.items if it.name == "bin.png").caption.problem
    assert flags_of(r, "bin.png")["caption"] == "warning"
    assert "too big" in next(it for it in r.items if it.name == "huge.png").caption.problem


def test_trigger_must_be_a_whole_word() -> None:
    assert has_trigger("mika, smiling", "mika")
    assert has_trigger("photo of mika.", "mika")
    assert not has_trigger("mikado, smiling", "mika")
    assert not has_trigger("tamika", "mika")


def test_bad_files_in_the_dataset_are_errors_not_crashes(project: Project, tmp_path: Path) -> None:
    add(project, "ok image é.png", landscape(13, 300))
    add(project, "empty.png", None)
    (project.dataset_dir / "empty.png").write_bytes(b"")
    add(project, "text.jpg", None)
    (project.dataset_dir / "text.jpg").write_text("hello")
    truncated_copy(landscape(14, 300), add(project, "cut.jpg"))
    png_bomb(add(project, "bomb.png"))
    outside = tmp_path / "outside.png"
    landscape(15, 300).save(outside)
    os.symlink(outside, project.dataset_dir / "link.png")
    (project.dataset_dir / "clip.mp4").write_bytes(b"\0")
    r = scan(project)
    expect = {"empty.png": "empty file", "text.jpg": "not an image", "cut.jpg": "truncated or corrupt",
              "bomb.png": "too large", "link.png": "outside the project"}
    for name, words in expect.items():
        item = next(it for it in r.items if it.name == name)
        assert item.level == "error" and words in item.flags[0].message, (name, item.flags)
    assert next(it for it in r.items if it.name == "ok image é.png").level != "error"
    assert any("clip.mp4" in n for n in r.notes)
    assert r.images == 1 and r.errors


def test_unreadable_file_is_reported(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """Running as root, chmod cannot make a file unreadable: make its read fail instead."""
    locked = add(project, "locked.png", landscape(16, 300))
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: (_ for _ in ()).throw(PermissionError(13, "denied"))
                        if self == locked else real(self))
    item = scan(project).items[0]
    assert item.level == "error" and "permission denied" in item.flags[0].message


# --- faces ----------------------------------------------------------------------------------------------------

def test_faces_counted_with_a_stubbed_detector(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    add(project, "one.png", landscape(17, 300))
    add(project, "two.png", landscape(18, 300))
    add(project, "none.png", landscape(19, 300))
    answers = {17: 1, 18: 2, 19: 0}
    monkeypatch.setattr(faces, "available", lambda: True)
    monkeypatch.setattr(faces, "unavailable_reason", lambda: "")

    def detect(gray: Image.Image, max_side: int = 0) -> list[faces.Box]:
        seed = next(s for s in answers if landscape(s, 300).convert("L").resize(gray.size).tobytes()[:64]
                    == gray.tobytes()[:64])
        return [faces.Box(0, 0, 10, 10)] * answers[seed]

    monkeypatch.setattr(faces, "detect", detect)
    r = scan(project)
    assert flags_of(r, "none.png")["no face"] == "info"
    assert flags_of(r, "two.png")["faces"] == "warning"
    assert "faces" not in flags_of(r, "one.png") and "no face" not in flags_of(r, "one.png")
    assert not r.face_check


def test_without_a_detector_the_report_says_so(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    add(project, "a.png", landscape(20, 300))
    monkeypatch.setattr(faces, "available", lambda: False)
    monkeypatch.setattr(faces, "unavailable_reason", lambda: "face check unavailable (test)")
    r = scan(project)
    assert r.items[0].measures.faces is None
    assert "face check unavailable (test)" in r.notes


@pytest.mark.skipif(not faces.available(), reason=f"needs OpenCV's Haar cascade: {faces.unavailable_reason()}")
def test_real_cascade_finds_the_drawn_face(project: Project) -> None:
    add(project, "face.png", portrait(1, 512))
    add(project, "scene.png", landscape(21, 512))
    r = scan(project)
    assert next(it for it in r.items if it.name == "face.png").measures.faces == 1
    assert flags_of(r, "scene.png")["no face"] == "info"


# --- near-duplicates ------------------------------------------------------------------------------------------

def test_near_duplicates_are_grouped(project: Project) -> None:
    base = portrait(2, 400)
    add(project, "orig.png", base)
    add(project, "recompressed.jpg", base, format="JPEG", quality=60)
    add(project, "resized.png", base.resize((300, 300)))
    add(project, "other.png", portrait(3, 400, face=(0.3, 0.5, 0.15)))
    add(project, "recoloured.png", Image.merge("RGB", base.split()[::-1]))  # same layout, other colours
    add(project, "pair_a.png", landscape(22, 300))
    add(project, "pair_b.png", landscape(22, 300).filter(ImageFilter.GaussianBlur(1)))
    r = scan(project)
    groups = sorted(sorted(g) for g in r.duplicate_groups)
    assert groups == [["orig.png", "recompressed.jpg", "resized.png"], ["pair_a.png", "pair_b.png"]]
    assert any(code.startswith("dup") for code in flags_of(r, "orig.png"))
    assert not any(code.startswith("dup") for code in flags_of(r, "other.png"))


def test_excluding_a_duplicate_clears_the_group(project: Project) -> None:
    add(project, "a.png", landscape(23, 300))
    add(project, "b.png", landscape(23, 300))
    assert len(scan(project).duplicate_groups) == 1
    project.update({"excluded": ["b.png"]})
    r = scan(project)
    assert r.duplicate_groups == [] and r.excluded == 1
    assert next(it for it in r.items if it.name == "b.png").excluded


# --- totals and verdict -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("count", "level"), [(0, "error"), (4, "error"), (5, "warning"), (14, "warning"),
                                              (15, "ok"), (29, "ok"), (30, "great")])
def test_verdict_follows_the_guide(count: int, level: str) -> None:
    assert dataset.verdict(count)[0] == level


def test_totals_count_only_usable_included_images(tmp_path: Path) -> None:
    p = make_project(tmp_path / "p", images=6)
    (p.dataset_dir / "broken.png").write_bytes(b"junk")
    p.update({"excluded": ["img_00.png"]})
    r = dataset.scan(p, p.load())
    assert (r.images, r.excluded, len(r.items)) == (5, 1, 7)
    assert r.verdict_level == "warning"
    assert any("broken.png" in e for e in r.errors)


# --- cache ---------------------------------------------------------------------------------------------------------

def test_second_scan_decodes_nothing_and_renames_are_found_by_content(project: Project) -> None:
    for i in range(4):
        add(project, f"i{i}.png", landscape(30 + i, 300))
    first = scan(project, thumbs=True)
    assert first.measured == 4
    assert all(dataset.thumbnail_path(project, it.measures.key).is_file() for it in first.items)
    assert scan(project, thumbs=True).measured == 0
    os.replace(project.dataset_dir / "i0.png", project.dataset_dir / "renamed.png")
    third = scan(project, thumbs=True)
    assert third.measured == 0 and "renamed.png" in {it.name for it in third.items}
    old_key = next(it.measures.key for it in third.items if it.name == "i1.png")
    landscape(99, 300).save(project.dataset_dir / "i1.png")  # new content under an old name
    assert scan(project, thumbs=True).measured == 1
    assert not dataset.thumbnail_path(project, old_key).exists()  # stale thumbnails are pruned


def test_a_corrupt_cache_is_ignored(project: Project) -> None:
    add(project, "a.png", landscape(40, 300))
    scan(project)
    (project.state_dir / "health.json").write_text("{not json")
    r = scan(project)
    assert r.measured == 1 and r.items[0].level != "error"


# --- trash -----------------------------------------------------------------------------------------------------------

def test_trash_and_restore(project: Project) -> None:
    img = add(project, "a b.png", landscape(41, 300), "mika, hello")
    record = dataset.trash_image(project, "a b.png")
    assert not img.exists() and not img.with_suffix(".txt").exists()
    trashed = [dst for _src, dst in record.moves]
    assert all(p.is_file() and project.state_dir / "trash" in p.parents for p in trashed)
    dataset.restore(record)
    assert img.is_file() and img.with_suffix(".txt").read_text() == "mika, hello"


def test_restore_refuses_to_overwrite(project: Project) -> None:
    add(project, "a.png", landscape(42, 300))
    record = dataset.trash_image(project, "a.png")
    landscape(43, 300).save(project.dataset_dir / "a.png")
    with pytest.raises(ProjectError, match=r"already has a\.png"):
        dataset.restore(record)
    assert record.moves[0][1].is_file()  # still safe in the trash


def test_trash_refuses_paths_outside_the_dataset(project: Project) -> None:
    with pytest.raises(ProjectError):
        dataset.trash_image(project, "../project.toml")
    assert project.toml_path.is_file()


def test_trashing_a_symlink_moves_the_link_not_its_target(project: Project, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.png"
    landscape(44, 300).save(target)
    os.symlink(target, project.dataset_dir / "link.png")
    record = dataset.trash_image(project, "link.png")
    assert record.moves[0][1].is_symlink() and target.is_file()


# --- zchar check ---------------------------------------------------------------------------------------------------

def test_zchar_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = make_project(tmp_path / "ok", images=6)
    assert main(["check", str(p.root)]) == 0
    out = capsys.readouterr().out
    assert "verdict: 6 usable images" in out and "result: ok" in out
    (p.dataset_dir / "img_00.png").write_bytes(b"")
    (p.dataset_dir / "img_01.png").write_bytes(b"")
    assert main(["check", str(p.root)]) == 1
    out = capsys.readouterr().out
    assert "img_00.png: empty file" in out and "too few to train" in out
