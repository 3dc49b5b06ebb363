"""project.toml: defaults, validation errors with key paths, updates that keep other settings, atomic writes."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from engine.project import (
    DEFAULT_BASE,
    Project,
    ProjectError,
    compose_prompt,
    init_project,
    parse_settings,
    with_trigger,
)


def test_defaults_follow_the_seed_guide() -> None:
    s = parse_settings({"name": "x", "trigger": "mika"})
    t = s.train
    assert (t.optimizer, t.lr, t.d0, t.weight_decay) == ("prodigy", 1.0, 0.05, 0.01)
    assert (t.rank, t.alpha, t.epochs, t.batch_size, t.resolution) == (32, 16.0, 15, 1, 1024)
    assert (t.precision, t.checkpoint_every) == ("bf16", 500)
    assert s.validation.every_epochs == 5 and len(s.validation.prompts) == 4
    g = s.generate
    assert (g.steps, g.guidance, g.lora_strength) == (8, 0.0, 0.8)
    assert s.model.base == DEFAULT_BASE


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"name": "x", "trigger": "m", "train": {"rank": 0}}, "train.rank = 0: expected an integer from 1 to 512"),
        ({"name": "x", "trigger": "m", "train": {"rnak": 8}}, "train.rnak: unknown key (did you mean 'rank'?)"),
        ({"name": "x", "trigger": "m", "train": {"memory": "huge"}},
         "train.memory = 'huge': expected one of 'full', 'balanced', 'low'"),
        ({"name": "x", "trigger": "m", "train": {"resolution": 1000}}, "a multiple of 16"),
        ({"name": "x", "trigger": "m", "train": {"lr": "fast"}}, "train.lr = 'fast': expected a number"),
        ({"name": "x", "trigger": "m", "train": {"flip": 1}}, "train.flip = 1: expected true or false"),
        ({"name": "x", "trigger": "m", "generate": {"width": 100}}, "generate.width = 100"),
        ({"name": "x", "trigger": "two words"}, "trigger = 'two words': expected one word"),
        ({"name": "x"}, "trigger: missing"),
        ({"name": "x", "trigger": "m", "train": 5}, "train must be a table"),
        ({"name": "x", "trigger": "m", "validation": {"seeds": [1, "a"]}}, "validation.seeds[1] = 'a'"),
        ({"name": "x", "trigger": "m", "templates": [{"name": "a"}, {"name": "a"}]}, "'a' is used more than once"),
        ({"name": "x", "trigger": "m", "templates": [{"name": "a", "mood": "x"}]}, "templates[0].mood: unknown key"),
        ({"name": "x", "trigger": "m", "modle": {}}, "modle: unknown key (did you mean 'model'?)"),
    ],
)
def test_bad_values_name_key_value_and_allowed(data: dict, expected: str) -> None:
    with pytest.raises(ProjectError) as info:
        parse_settings(data)
    assert expected in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ProjectError) as info:
        parse_settings({"name": "x", "trigger": "m", "train": {"rank": -1, "epochs": 0}, "generate": {"steps": 0}})
    assert len(info.value.problems) == 3


def test_bad_toml_files(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p", "mika", base="tiny")
    project.toml_path.write_text('name = "x"\ntrigger = "mika"\n[train\nrank = 3\n')
    with pytest.raises(ProjectError, match="not valid TOML"):
        project.load()
    project.toml_path.write_bytes(b'name = "\xff\xfe"\n')
    with pytest.raises(ProjectError, match="not valid TOML"):
        project.load()
    project.toml_path.unlink()
    with pytest.raises(ProjectError, match="no project.toml"):
        project.load()


def test_init_creates_the_folder_and_refuses_to_overwrite(tmp_path: Path) -> None:
    project = init_project(tmp_path / "mika", "mika_zc")
    for d in ("dataset", "loras", "samples", "outputs", ".zchar"):
        assert (project.root / d).is_dir()
    assert oct(os.stat(project.state_dir).st_mode & 0o777) == "0o700"
    s = project.load()
    assert (s.name, s.trigger, s.model.base) == ("mika", "mika_zc", DEFAULT_BASE)
    with pytest.raises(ProjectError, match="already exists"):
        init_project(tmp_path / "mika", "other")
    with pytest.raises(ProjectError, match="one word"):
        init_project(tmp_path / "bad", "two words")
    assert not (tmp_path / "bad").exists()


def test_update_keeps_other_settings_and_is_validated(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p", "mika", base="tiny")
    with project.toml_path.open("a") as fh:
        fh.write('\n[validation]\nprompts = ["custom prompt"]\n')
    project.update({"train.rank": 16, "generate.width": 512})
    raw = tomllib.loads(project.toml_path.read_text())
    assert raw["train"]["rank"] == 16 and raw["generate"]["width"] == 512
    assert raw["validation"]["prompts"] == ["custom prompt"]
    assert raw["train"]["epochs"] == 15  # untouched keys stay
    before = project.toml_path.read_bytes()
    with pytest.raises(ProjectError, match="train.rank = 0"):
        project.update({"train.rank": 0})
    assert project.toml_path.read_bytes() == before  # a refused change writes nothing
    project.update({"train.rank": None})
    assert project.load().train.rank == 32


def test_update_is_atomic_when_the_write_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = init_project(tmp_path / "p", "mika", base="tiny")
    before = project.toml_path.read_bytes()

    def disk_full(*_a: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(ProjectError, match="could not save: No space left on device; the file was left as it was"):
        project.update({"train.rank": 8})
    assert project.toml_path.read_bytes() == before
    assert [p.name for p in project.root.iterdir() if p.name.endswith(".tmp")] == []


def test_paths_never_escape_the_project(tmp_path: Path) -> None:
    project = Project(tmp_path)
    assert project.inside("dataset/a.png") == tmp_path.resolve() / "dataset" / "a.png"
    for bad in ("../x", "/etc/passwd", "dataset/../../x"):
        with pytest.raises(ProjectError, match="outside the project"):
            project.inside(bad)
    (tmp_path / "link").symlink_to("/etc")
    with pytest.raises(ProjectError):
        project.inside("link/passwd")


def test_prompt_composition_leads_with_the_trigger() -> None:
    assert with_trigger("mika", "park, sunny") == "mika, park, sunny"
    assert with_trigger("mika", "mika, park") == "mika, park"
    assert with_trigger("mika", "mikado garden") == "mika, mikado garden"
    assert with_trigger("mika", "") == "mika"
    fields = {"age": "young woman", "outfit": "red coat,", "scene": " ", "quality": "best quality"}
    assert compose_prompt("mika", fields) == "mika, young woman, red coat, best quality"


def test_stale_temp_files_are_swept_and_fresh_ones_kept(tmp_path: Path) -> None:
    from engine.project import sweep_stale_temp_files

    project = init_project(tmp_path / "p", "mika", base="tiny")
    old = project.samples_dir / "run-1" / ".00001-42.png.abc123.tmp"
    fresh = project.outputs_dir / "2026-11-23" / ".00002-7.png.def456.tmp"
    keep = project.samples_dir / "run-1" / "00001-42.png"
    for p in (old, fresh, keep):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    os.utime(old, (1, 1))
    os.utime(keep, (1, 1))
    assert sweep_stale_temp_files(project) == [old]
    assert not old.exists() and fresh.exists() and keep.exists()
