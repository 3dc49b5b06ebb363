"""Training on the tiny model: learning, the LoRA file, the feature cache, memory/OOM/disk failures, bad inputs."""

from __future__ import annotations

import errno
import itertools
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from engine import lora_io  # noqa: E402
from tests.conftest import make_project  # noqa: E402
from tests.train_helpers import train  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One finished 8-step run (shared by the tests that only read its outputs)."""
    project = make_project(tmp_path_factory.mktemp("trained") / "proj", epochs=2, checkpoint_every=3,
                           keep_checkpoints=2, caption_dropout=0.2, flip=True)
    rec = train(project, run="r1", persist=True)
    assert rec.error is None, rec.error
    return {"project": project, "rec": rec}


def test_loss_falls_when_overfitting_a_fixed_batch() -> None:
    from engine.models import build_tiny
    from engine.project import TrainSettings
    from engine.train_step import add_lora, flow_loss, make_optimizer

    transformer = build_tiny(["transformer"])["transformer"]
    settings = TrainSettings(rank=8, alpha=8)  # Prodigy with the project defaults
    params = add_lora(transformer, settings, seed=0)
    optimizer = make_optimizer([p for _, p in params], settings)
    g = torch.Generator().manual_seed(7)
    latents = [torch.randn(16, 8, 8, generator=g), torch.randn(16, 8, 8, generator=g)]
    captions = [torch.randn(5, 16, generator=g), torch.randn(9, 16, generator=g)]  # mixed caption lengths
    losses = []
    for _ in range(40):
        same_noise = torch.Generator().manual_seed(123)  # the same σ and ε every step: a fixed batch
        loss = flow_loss(transformer, latents, captions, same_noise, "cpu", torch.float32)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.85 * sum(losses[:5]) / 5
    assert all(b <= a * 1.02 for a, b in itertools.pairwise(losses[5:]))  # steadily, not by luck
    assert not any(p.requires_grad for n, p in transformer.named_parameters() if ".zchar." not in n)


def test_run_reports_metrics_checkpoints_samples_and_a_run_record(trained: dict) -> None:
    project, rec = trained["project"], trained["rec"]
    metrics = rec.of("train.metric")
    assert [m["step"] for m in metrics] == list(range(1, 13))  # 6 images, batch 1, 2 epochs
    assert {m["total_steps"] for m in metrics} == {12} and metrics[-1]["epoch"] == 2
    for m in metrics:
        assert m["loss"] > 0 and m["lr"] > 0 and m["grad_norm"] >= 0 and m["sec_per_step"] > 0
        assert m["eta_s"] >= 0 and m["peak_mem"] is None  # CPU: no CUDA peak memory
    assert metrics[-1]["eta_s"] == 0
    ckpts = rec.of("train.checkpoint")
    assert [c["step"] for c in ckpts] == [3, 6, 9, 12]
    assert [r["step"] for r in rec.of("train.checkpoint.removed")] == [3, 6]  # keep_checkpoints = 2
    on_disk = sorted(p.name for p in (project.loras_dir / "checkpoints" / "r1").iterdir())
    assert on_disk == ["step-000009", "step-000012"]
    assert (project.root / ckpts[-1]["path"] / "Mika-step000012.safetensors").is_file()
    samples = rec.of("train.sample")
    assert len(samples) == 4 and all((project.root / s["path"]).is_file() for s in samples)
    assert {s["step"] for s in samples} == {12}
    states = [r["state"] for r in rec.of("run")]
    assert states[0] == "running" and states[-1] == "done"
    assert rec.of("run")[-1]["lora"] == "loras/Mika.safetensors"
    stages = {d["stage"] for d in rec.of("loading")}
    assert {"text_encoder", "vae", "transformer"} <= stages

    from engine.store import Store

    store = Store(project.db_path)  # the foreground run persisted what the dashboard shows
    try:
        assert store.get_run("r1")["state"] == "done"
        assert store.metrics("r1")["step"] == list(range(1, 13))
        assert [c["step"] for c in store.checkpoints("r1")] == [9, 12]
        assert len(store.samples("r1")) == 4
    finally:
        store.close()


def test_lora_file_layout_metadata_and_loading(trained: dict) -> None:
    from safetensors import safe_open

    from engine.models import build_tiny, pipeline_from_components

    project = trained["project"]
    path = project.loras_dir / "Mika.safetensors"
    with safe_open(str(path), framework="pt") as fh:
        keys = set(fh.keys())
    modules = {k.rsplit(".lora_", 1)[0] for k in keys if ".lora_" in k}
    assert len(modules) == 14 and all(m.startswith("diffusion_model.layers.") for m in modules)
    assert all({f"{m}.lora_A.weight", f"{m}.lora_B.weight", f"{m}.alpha"} <= keys for m in modules)
    meta = lora_io.read_metadata(path)
    assert meta["trigger"] == "mika" and meta["base_model"] == "tiny"
    assert (meta["rank"], meta["alpha"], meta["steps"], meta["epochs"], meta["resolution"]) == (4, 2.0, 12, 2, 64)
    assert len(meta["dataset_hash"]) == 16 and meta["version"]

    pipe = pipeline_from_components(build_tiny())
    x = [torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))]
    cap = [torch.randn(6, 16, generator=torch.Generator().manual_seed(1))]
    with torch.no_grad():
        base = pipe.transformer(x, torch.tensor([0.3]), cap).sample[0]
        info = lora_io.load_into_pipeline(pipe, path, "mika")  # raises on any unmatched key
        with_lora = pipe.transformer(x, torch.tensor([0.3]), cap).sample[0]
        pipe.set_adapters(["mika"], [0.0])
        at_zero = pipe.transformer(x, torch.tensor([0.3]), cap).sample[0]
    assert info["modules"] == 14
    assert (with_lora - base).abs().max() > 1e-4
    assert torch.equal(at_zero, base)


def test_second_run_uses_the_cache_only(trained: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from diffusers import AutoencoderKL
    from transformers import Qwen3Model

    import engine.models

    calls: list[str] = []
    real_load = engine.models.load_components

    def spy_load(model, parts=engine.models.PARTS, *a, **kw):  # type: ignore[no-untyped-def]
        calls.extend(parts)
        return real_load(model, parts, *a, **kw)

    def forbidden(*a, **kw):  # type: ignore[no-untyped-def]
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(engine.models, "load_components", spy_load)
    monkeypatch.setattr(AutoencoderKL, "encode", forbidden)
    monkeypatch.setattr(Qwen3Model, "forward", forbidden)
    rec = train(trained["project"], run="r2", max_steps=2)
    assert rec.error is None, rec.error
    assert "text_encoder" not in calls and "tokenizer" not in calls
    assert calls.count("vae") == 1  # only the decoder, for the validation samples
    assert not any("cached" in m for m in rec.logs())


def test_cuda_out_of_memory_names_the_step_and_the_next_mode(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.train_step

    project = make_project(tmp_path / "p", checkpoint_every=2)
    real = engine.train_step.flow_loss
    seen = {"n": 0}

    def oom_on_third(*a, **kw):  # type: ignore[no-untyped-def]
        seen["n"] += 1
        if seen["n"] == 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*a, **kw)

    monkeypatch.setattr(engine.train_step, "flow_loss", oom_on_third)
    rec = train(project, run="oom")
    text = str(rec.error)
    assert type(rec.error).__name__ == "JobFailed"
    assert "out of memory at step 3" in text and "'balanced'" in text and 'train.memory = "low"' in text
    assert "last checkpoint (step 2) is kept" in text
    assert (project.loras_dir / "checkpoints" / "oom" / "step-000002" / "state.json").is_file()
    assert rec.of("run")[-1]["state"] == "failed" and "step 3" in rec.of("run")[-1]["message"]


def test_full_disk_while_checkpointing_leaves_nothing_half_written(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.train_checkpoint as tc

    project = make_project(tmp_path / "p", checkpoint_every=2)
    real = tc._write_synced

    def full_after_first(path: Path, data: bytes) -> None:
        if path.name == "optimizer.safetensors":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(tc, "_write_synced", full_after_first)
    rec = train(project, run="full")
    assert "disk is full writing checkpoint step 2" in str(rec.error)
    assert list((project.loras_dir / "checkpoints" / "full").iterdir()) == []  # no temp folder, no step folder


@pytest.mark.parametrize(("change", "expected"), [
    ({"images": 4}, "4 usable image(s)"),
    ({"base": "/no/such/model"}, "no such folder"),
    ({"base": "someone/not-cached-model"}, "hf download someone/not-cached-model"),
    ({"adapter": "missing.safetensors"}, "model.training_adapter = 'missing.safetensors': no such file"),
    ({"adapter": "bad.safetensors"}, "is not a Z-Image LoRA"),
])
def test_bad_inputs_give_clear_messages(tmp_path: Path, change: dict, expected: str) -> None:
    from safetensors.torch import save_file

    project = make_project(tmp_path / "p", images=change.get("images", 6))
    if "base" in change:
        project.update({"model.base": change["base"]})
    if "adapter" in change:
        save_file({"weight": torch.zeros(3)}, str(project.root / "bad.safetensors"))
        project.update({"model.training_adapter": change["adapter"]})
    rec = train(project, run="bad")
    assert type(rec.error).__name__ == "JobFailed"
    assert expected in str(rec.error)
    assert not (project.loras_dir / "Mika.safetensors").exists()


def test_excluded_images_are_left_out(tmp_path: Path) -> None:
    from engine.train_data import scan

    project = make_project(tmp_path / "p", images=7)
    settings = project.update({"excluded": ["img_00.png", "img_03.png"]})
    (project.dataset_dir / "img_01.txt").unlink()
    items = scan(project, settings)
    assert [i.image.name for i in items] == ["img_01.png", "img_02.png", "img_04.png", "img_05.png", "img_06.png"]
    assert items[0].caption == "mika"  # no sidecar: the trigger alone
    assert items[1].caption == "mika, a drawn character, pose 2"
    (project.dataset_dir / "img_02.txt").write_bytes("mika, café au lait\r\nsecond line".encode("utf-16"))
    (project.dataset_dir / "img_04.txt").write_bytes(b"\x00\x01binary\x00")
    items = scan(project, project.load())
    assert items[1].caption == "mika, café au lait second line"  # UTF-16 with a BOM, read as text
    assert items[2].caption == "mika"  # an unusable caption falls back to the trigger (the check reports it)
    project.update({"excluded": ["img_00.png", "img_03.png", "img_04.png"]})
    with pytest.raises(Exception, match=r"4 usable image\(s\) .*\(3 excluded\)"):
        scan(project, project.load())
