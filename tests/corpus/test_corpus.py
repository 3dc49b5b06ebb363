"""The bad-input corpus (tests/corpus/make_corpus.py) driven through `zchar check`, `prepare`, `train` and `gen`.

Each case must get its own specific message, a sensible exit code and no traceback. The commands run as
subprocesses with a strict UTF-8 stdout (as on a desktop with a UTF-8 locale), so an undecodable file name that
reached the terminal unescaped would crash them. Slow commands (train, gen) run a few times over many cases.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.dataset import scan
from engine.project import init_project
from engine.train_data import scan as training_images
from tests.conftest import kill_engine
from tests.corpus.make_corpus import Corpus, build
from zchar_tui.client import SyncClient
from zchar_tui.safe_text import printable

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8:strict", "COLUMNS": "400"}


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def zchar(*args: str | bytes, timeout: float = 180) -> Run:
    done = subprocess.run([sys.executable, "-m", "zchar_tui", *args], capture_output=True, env=ENV, timeout=timeout,
                          cwd=ROOT)
    run = Run(done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"))
    assert "Traceback" not in run.text, run.text
    assert "\x1b" not in run.text, "an escape sequence from a file name reached the terminal"
    return run


def shown(name: str) -> str:
    """A file name as the CLI prints it (control characters and undecodable bytes escaped)."""
    return printable(name, one_line=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build(tmp_path_factory.mktemp("corpus"))


def test_check_names_every_bad_file_and_counts_the_rest(corpus: Corpus) -> None:
    run = zchar("check", str(corpus.project.root), timeout=60)
    assert run.code == 1, run.text  # errors found
    for name, message in corpus.check.items():
        assert f"{shown(name)}: {message}" in run.out, (name, run.out)
    assert f"verdict: {corpus.usable} usable images" in run.out
    # training uses exactly the pictures the check calls usable (no torch needed to see which)
    settings = corpus.project.load()
    usable = {it.name for it in scan(corpus.project, settings).items if it.usable}
    assert {item.image.name for item in training_images(corpus.project, settings)} == usable


def test_prepare_imports_the_readable_and_names_the_rest(corpus: Corpus, tmp_path: Path) -> None:
    project = init_project(tmp_path / "fresh", "mika", base="tiny")
    run = zchar("prepare", str(project.root), "--input", str(corpus.raw), "--size", "64", timeout=60)
    assert run.code == 0, run.text
    for name, message in corpus.prepare.items():
        assert f"  {shown(name)}: {message}" in run.out, (name, run.out)
    assert f"written {len(corpus.written)} image(s) to dataset/" in run.out
    for source, dest in corpus.written.items():
        assert f"  {shown(source)} → {shown(dest)}" in run.out
        assert (project.dataset_dir / dest).is_file() and (project.dataset_dir / dest).with_suffix(".txt").is_file()
    again = zchar("prepare", str(project.root), "--input", str(corpus.raw), "--size", "64")
    assert again.code == 0 and f"unchanged {len(corpus.written)} (already imported with these options)" in again.out


def test_malformed_project_toml_gets_one_clear_error_from_every_command(corpus: Corpus) -> None:
    calls = [(case, ("check", str(folder))) for case, (folder, _) in corpus.tomls.items()]
    for case in ("bad-syntax", "nan"):  # the other commands load settings the same way
        folder = str(corpus.tomls[case][0])
        calls += [(case, ("train", folder, "--foreground", "--max-steps", "2")),
                  (case, ("gen", folder, "mika, test", "--foreground"))]
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda call: (call[0], call[1][0], zchar(*call[1])), calls))
    for case, command, run in runs:
        message = corpus.tomls[case][1]
        assert run.code == 2 and run.err.startswith("zchar: error: "), (case, command, run.text)
        assert message in run.err, (case, command, run.err)
    for folder, _ in corpus.tomls.values():
        assert not (folder / ".zchar" / "engine.sock").exists()  # no engine was started for a broken project


@pytest.mark.slow
def test_training_skips_the_bad_files_and_trains_on_the_rest(corpus: Corpus) -> None:
    run = zchar("train", str(corpus.project.root), "--foreground", "--max-steps", "2")
    assert run.code == 0, run.text
    assert f": {corpus.usable} images in" in run.err
    assert "skipped 9 unreadable image(s): bomb.png (too large to open safely" in run.err
    escaped = shown("esc\x1b]0;pwned\x07.png")
    assert f"{escaped} (truncated or corrupt image data" in run.err
    assert "link-outside.png (a symlink to a file outside the project), text-not-image.png (not an image" in run.err
    assert "and 4 more" in run.err
    assert "done: 2 steps" in run.err and (corpus.project.loras_dir / "Mika.safetensors").is_file()


@pytest.fixture
def gen_project(corpus: Corpus) -> Iterator[Corpus]:
    yield corpus
    kill_engine(corpus.project)


@pytest.mark.slow
def test_generation_refuses_foreign_and_broken_files_with_a_reason(gen_project: Corpus) -> None:
    corpus, project = gen_project, gen_project.project
    root = str(project.root)
    before = sorted(p.name for p in project.loras_dir.iterdir())
    SyncClient(project).close()  # start the engine once, for all the commands below
    refused, failed = [], []
    for name, (code, message) in corpus.loras.items():
        args = ("gen", root, "mika, test", "--seed", "1", "--foreground", "--lora", str(corpus.lora_dir / name))
        (refused if code == 2 else failed).append((args, code, message))
    raw = corpus.raw
    refused += [
        (("gen", root, "mika, test", "--reference", "/etc/hostname"), 2,
         "--reference: /etc/hostname: not an image file (no extension)"),
        (("gen", root, b"mika, caf\xe9 au lait"), 2, "a text is not valid Unicode"),  # argv in Latin-1
        (("gen", root, "mika, test", "--size", "12x34x5"), 2, "--size 12x34x5: expected WIDTHxHEIGHT"),
    ]
    failed += [
        (("gen", root, "mika, test", "--seed", "1", "--foreground", "--reference", str(raw / "text-not-image.png")),
         1, "cannot be read: not an image Pillow can read"),
        (("gen", root, "mika, test", "--seed", "1", "--foreground", "--reference", str(raw / "bomb.png")), 1,
         "cannot be read: too large to open safely"),
    ]
    with ThreadPoolExecutor(3) as pool:  # refused at submit: fast, many at once
        runs = list(pool.map(lambda case: (case, zchar(*case[0])), refused))
    runs += [(case, zchar(*case[0])) for case in failed]  # these run a job each (one at a time in the engine)
    for (args, code, message), run in runs:
        assert run.code == code, (args, run.text)
        assert message in run.text, (args, run.text)
        assert "internal error" not in run.text, (args, run.text)
    # refused files were not copied into the project; nothing was ever unpickled
    kept = sorted(p.name for p in project.loras_dir.iterdir())
    assert set(kept) - set(before) <= {n for n, (code, _) in corpus.loras.items() if code == 1}
    assert not corpus.marker.exists()
    with SyncClient(project, spawn=False) as client:
        jobs = client.request("jobs")
    assert len(jobs) == len(failed) and all(j["state"] == "failed" for j in jobs), jobs
    assert not list(project.outputs_dir.rglob("*.png"))
