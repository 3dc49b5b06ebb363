"""Model, LoRA, checkpoint and cache files load as safetensors only: a pickle (renamed `.safetensors`, or a
`.ckpt`/`.pt`/`.bin`) is refused with a clear message and never unpickled — each pickle here would create a marker
file if anything loaded it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine import lora_io, models, train_adapter, train_cache, train_checkpoint
from engine.errors import JobFailed
from engine.jobs import JobParamError, lora_header_problem, resolve_lora
from engine.project import ModelSettings, Project
from tests.conftest import make_project
from tests.corpus.make_corpus import pickle_bytes
from tests.train_helpers import stop_at, train
from zchar_tui.project_files import import_lora

ROOT = Path(__file__).resolve().parents[1]
UNSAFE = re.compile(r"torch\.load\(|pickle\.loads?\(|weights_only\s*=\s*False|use_safetensors\s*=\s*False|"
                    r"import pickle|from pickle|\bdill\b|joblib\.load")


def test_no_code_path_can_unpickle() -> None:
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for folder in ("engine", "zchar_tui") for path in sorted((ROOT / folder).rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if UNSAFE.search(line)]
    assert found == []


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "p", images=5)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    path = tmp_path / "UNPICKLED"
    yield path
    assert not path.exists(), "a pickle was loaded"


def test_every_loader_refuses_a_pickle(project: Project, marker: Path, tmp_path: Path) -> None:
    renamed = project.loras_dir / "renamed.safetensors"
    renamed.write_bytes(pickle_bytes(marker))
    for suffix in (".ckpt", ".pt", ".bin"):
        (project.loras_dir / f"model{suffix}").write_bytes(pickle_bytes(marker))
        with pytest.raises(lora_io.LoraFormatError, match="only .safetensors LoRA files are loaded"):
            lora_io.load_lora_tensors(project.loras_dir / f"model{suffix}")
        with pytest.raises(JobParamError, match="only .safetensors files are loaded"):
            resolve_lora(project, f"loras/model{suffix}")
    with pytest.raises(lora_io.LoraFormatError, match="renamed.safetensors: not a readable safetensors file"):
        lora_io.load_lora_tensors(renamed)
    with pytest.raises(lora_io.LoraFormatError, match="not a readable safetensors file"):
        lora_io.read_metadata(renamed)
    assert lora_header_problem(renamed) == "not a safetensors file (bad header)"
    outside = tmp_path / "downloaded.safetensors"
    outside.write_bytes(pickle_bytes(marker))
    with pytest.raises(ValueError, match="downloaded.safetensors: not a safetensors file"):
        import_lora(project, outside)
    assert not (project.loras_dir / "downloaded.safetensors").exists()

    cached = project.cache_dir / "text" / "entry.safetensors"  # a cache entry: recomputed, never trusted
    cached.parent.mkdir(parents=True)
    cached.write_bytes(pickle_bytes(marker))
    assert train_cache.FeatureCache.read(cached) is None and not cached.exists()

    folder = project.loras_dir / "checkpoints" / "r" / "step-000001"
    folder.mkdir(parents=True)
    (folder / "optimizer.safetensors").write_bytes(pickle_bytes(marker))
    with pytest.raises(Exception, match="(?i)header|deserializ"):
        train_checkpoint.load_files(folder)

    (project.root / "adapter.ckpt").write_bytes(pickle_bytes(marker))
    with pytest.raises(JobFailed, match="only .safetensors files are loaded"):
        train_adapter.resolve(ModelSettings(training_adapter="adapter.ckpt"), project.root)
    with pytest.raises(JobFailed, match="expected an existing .safetensors file"):
        models._load_part(project.root, "transformer", ModelSettings(base="x", transformer_file=str(
            project.root / "adapter.ckpt")), None)


@pytest.mark.slow
def test_training_refuses_a_pickled_adapter_and_a_tampered_checkpoint(project: Project, marker: Path) -> None:
    pytest.importorskip("torch")
    (project.root / "adapter.safetensors").write_bytes(pickle_bytes(marker))
    project.update({"model.training_adapter": "adapter.safetensors"})
    rec = train(project, run="a")
    assert "model.training_adapter: adapter.safetensors: not a readable safetensors file" in str(rec.error)

    project.update({"model.training_adapter": "", "train.epochs": 2})
    assert train(project, hook=stop_at(2), run="r").result["stopped"]
    optimizer = project.loras_dir / "checkpoints" / "r" / "step-000002" / "optimizer.safetensors"
    size = optimizer.stat().st_size
    payload = pickle_bytes(marker)
    optimizer.write_bytes(payload + b"\0" * (size - len(payload)))  # same size: state.json still matches it
    rec = train(project, run="r", resume=True)
    assert isinstance(rec.error, JobFailed), rec.error
    assert str(rec.error).startswith("checkpoint step-000002 of run r cannot be read (")
