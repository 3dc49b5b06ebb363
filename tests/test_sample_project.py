"""The committed demo project: loads cleanly, has a captioned dataset and a varied raw/ folder, and its drawing
script reproduces the committed pictures."""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import imagehash
import pytest
from PIL import Image, ImageOps, ImageStat

from engine.project import Project, list_images, parse_settings

SAMPLE = Path(__file__).resolve().parent.parent / "sample_project"
TRIGGER = "mika_zc"


@pytest.fixture(scope="module")
def draw() -> Iterator[ModuleType]:
    """The drawing script, imported as a module (with its folder on the path, as when it runs as a script)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(SAMPLE))
        yield importlib.import_module("draw_sample")


def test_project_loads_with_demo_settings() -> None:
    settings = Project(SAMPLE).load()
    assert (settings.name, settings.trigger, settings.model.base) == ("Mika", TRIGGER, "tiny")
    assert settings.model.training_adapter == ""
    assert (settings.train.resolution, settings.train.rank, settings.train.epochs) == (256, 8, 3)
    assert len(settings.validation.prompts) == 4
    assert not any(TRIGGER in p for p in settings.validation.prompts)  # the engine puts it in front
    assert 4 <= len(settings.templates) <= 5
    assert all(t.name and t.outfit and t.scene for t in settings.templates)


def test_dataset_has_captioned_images_of_one_size() -> None:
    images = list_images(SAMPLE / "dataset")
    assert 15 <= len(images) <= 20
    for image in images:
        words = image.with_suffix(".txt").read_text(encoding="utf-8").split(",")
        assert words[0].strip() == TRIGGER, image.name
        assert len(words) >= 5, f"{image.name}: the caption should describe pose, outfit, scene and light"
        with Image.open(image) as im:
            assert (im.format, im.mode, im.size) == ("PNG", "RGB", (1024, 1024)), image.name
    assert sum(p.stat().st_size for p in images) < 2_500_000


def test_raw_folder_has_unprepared_variety() -> None:
    files = sorted(p for p in (SAMPLE / "raw").iterdir() if p.is_file())
    assert not [p for p in files if p.suffix == ".txt"], "raw/ pictures come without captions"
    opened = {p.name: Image.open(p) for p in files}
    try:
        assert {im.format for im in opened.values()} == {"JPEG", "PNG"}
        ratios = {round(im.width / im.height, 2) for im in opened.values()}
        assert len(ratios) >= 3
        assert any(min(im.size) < 512 for im in opened.values()), "one picture too small to train on"
        assert any(min(im.size) >= 2000 for im in opened.values()), "one picture larger than needed"
        assert any(im.mode == "RGBA" and im.getchannel("A").getextrema() == (0, 255) for im in opened.values())
        assert any(im.mode == "P" for im in opened.values())

        rotated = [im for im in opened.values() if im.getexif().get(0x0112) == 6]
        assert len(rotated) == 1
        stored = rotated[0]
        upright = ImageOps.exif_transpose(stored)
        assert stored.width > stored.height and upright.height > upright.width
        band = upright.height // 8
        top = ImageStat.Stat(upright.crop((0, 0, upright.width, band)).convert("L")).mean[0]
        bottom = ImageStat.Stat(upright.crop((0, upright.height - band, upright.width, upright.height))
                                .convert("L")).mean[0]
        assert top > bottom + 20, "turned upright, the sky should be at the top and the street at the bottom"
    finally:
        for im in opened.values():
            im.close()


def test_raw_folder_holds_exactly_one_near_duplicate_pair() -> None:
    hashes = {}
    for path in sorted((SAMPLE / "raw").iterdir()):
        with Image.open(path) as im:
            hashes[path.name] = imagehash.phash(ImageOps.exif_transpose(im).convert("RGB"))
    names = list(hashes)
    close = [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if hashes[a] - hashes[b] <= 6]
    assert close == [("IMG_2041.jpg", "IMG_2041_edited.jpg")]


def test_script_draws_the_committed_dataset(draw: ModuleType, tmp_path: Path) -> None:
    assert {f"{s.name}.png" for s in draw.SHOTS} == {p.name for p in list_images(SAMPLE / "dataset")}
    shot = draw.SHOTS[0]
    path = draw.draw_dataset_image(shot, tmp_path)
    committed = SAMPLE / "dataset" / path.name
    # Pixels, not file bytes: another zlib build may deflate the same pixels differently.
    with Image.open(path) as new, Image.open(committed) as old:
        assert new.size == old.size and new.tobytes() == old.tobytes()
    assert path.with_suffix(".txt").read_bytes() == committed.with_suffix(".txt").read_bytes()


def test_project_toml_is_written_only_when_missing(draw: ModuleType, tmp_path: Path) -> None:
    assert draw.write_project_toml(tmp_path)
    assert parse_settings(tomllib.loads((tmp_path / "project.toml").read_text())).trigger == TRIGGER
    (tmp_path / "project.toml").write_text('name = "mine"\ntrigger = "me"\n')
    assert not draw.write_project_toml(tmp_path)
    assert (tmp_path / "project.toml").read_text() == 'name = "mine"\ntrigger = "me"\n'
