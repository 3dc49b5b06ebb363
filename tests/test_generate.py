"""Generation on the tiny model, in-process (the runner with a stand-in JobContext): reproducibility from the PNG,
LoRA strengths, reference mode, the grid, crash re-runs, cancel and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from engine import generate, pngmeta, protocol
from engine.errors import JobCancelled, JobFailed
from engine.jobs import JobParamError, params_from_meta, validate_gen, validate_grid
from engine.project import Project
from tests.conftest import draw_character, make_project
from tests.gen_helpers import FakeContext, make_lora, write_safetensors_header


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    p = make_project(tmp_path_factory.mktemp("gen") / "proj", images=2)
    make_lora(p.loras_dir / "mika.safetensors", seed=1)
    make_lora(p.loras_dir / "checkpoints" / "run-a" / "step-000002" / "mika-step000002.safetensors", seed=2)
    return p


_ids = iter(range(1, 10_000))


def run(project: Project, params: dict[str, Any], **ctx_kw: Any) -> tuple[FakeContext, dict[str, Any]]:
    jobs, _ = validate_gen(project, project.load(), params)
    ctx = FakeContext(project, next(_ids), jobs[0], **ctx_kw)
    return ctx, generate.run_job(ctx)


def pixels(project: Project, rel: str) -> np.ndarray:
    return np.asarray(Image.open(project.root / rel).convert("RGB"), dtype=np.int16)


def regenerate(project: Project, rel: str) -> np.ndarray:
    """A new job from nothing but the parameters embedded in the PNG."""
    meta = pngmeta.read_meta(project.root / rel)
    assert meta is not None
    _, result = run(project, params_from_meta(meta))
    assert result["path"] != rel
    return pixels(project, result["path"])


def test_text_to_image_png_reproduces_itself(project: Project) -> None:
    ctx, result = run(project, {"prompt": "mika, smiling", "seed": 1234, "width": 64, "height": 48})
    path = project.root / result["path"]
    assert path.parent.parent == project.outputs_dir and path.name == f"{ctx.job_id:05d}-1234.png"
    im = Image.open(path)
    assert im.size == (64, 48)
    text = im.text["parameters"]
    assert text.startswith("mika, smiling\n") and "Seed: 1234" in text and "Size: 64x48" in text and "Steps: 2" in text
    assert ctx.results()[0]["path"] == result["path"]
    steps = [d["step"] for k, d in ctx.events if k == protocol.EV_PROGRESS]
    assert steps == [1, 2]
    assert np.array_equal(regenerate(project, result["path"]), pixels(project, result["path"]))


def test_other_seed_other_image(project: Project) -> None:
    _, a = run(project, {"prompt": "mika", "seed": 1})
    _, b = run(project, {"prompt": "mika", "seed": 2})
    assert not np.array_equal(pixels(project, a["path"]), pixels(project, b["path"]))


def test_lora_strength_zero_is_the_base_image(project: Project) -> None:
    params = {"prompt": "mika, park", "seed": 7}
    _, base = run(project, params)
    _, zero = run(project, {**params, "loras": [{"path": "mika", "strength": 0.0}]})
    _, full = run(project, {**params, "loras": [{"path": "mika", "strength": 1.0}]})
    assert np.array_equal(pixels(project, zero["path"]), pixels(project, base["path"]))
    assert np.abs(pixels(project, full["path"]) - pixels(project, base["path"])).max() > 10
    meta = pngmeta.read_meta(project.root / full["path"])
    lo = meta["loras"][0]
    assert lo["path"] == "loras/mika.safetensors" and lo["strength"] == 1.0 and len(lo["hash"]) == 12
    assert f"Lora hashes: \"mika: {lo['hash']}\"" in Image.open(project.root / full["path"]).text["parameters"]
    # the stack and its strength come back from the PNG alone, and an unloaded base comes back after a stack
    assert np.array_equal(regenerate(project, full["path"]), pixels(project, full["path"]))
    _, again = run(project, params)
    assert np.array_equal(pixels(project, again["path"]), pixels(project, base["path"]))


def test_stack_is_set_only_when_it_changes(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    run(project, {"prompt": "mika", "seed": 3, "loras": [{"path": "mika", "strength": 0.7}]})
    calls: list[Any] = []
    pipe = generate._loaded.pipe
    real = pipe.set_adapters
    monkeypatch.setattr(pipe, "set_adapters", lambda *a, **k: (calls.append(a), real(*a, **k))[1])
    run(project, {"prompt": "mika", "seed": 4, "loras": [{"path": "mika", "strength": 0.7}]})
    assert calls == []
    run(project, {"prompt": "mika", "seed": 4, "loras": [{"path": "mika", "strength": 0.5},
                                                         {"path": "mika-step000002", "strength": 0.5}]})
    assert len(calls) == 1 and len(calls[0][0]) == 2


def test_fused_stack_matches_the_unfused_one(project: Project) -> None:
    settings = project.load()
    loaded = generate.load_pipeline(settings)
    params = validate_gen(project, settings, {"prompt": "mika", "seed": 9,
                                              "loras": [{"path": "mika", "strength": 0.8}]})[0][0]
    plain, _ = generate.generate(loaded, project, settings, params)
    fused, _ = generate.generate(loaded, project, settings, params, fuse=True)
    assert loaded.fused is not None
    diff = np.abs(np.asarray(plain, dtype=np.int16) - np.asarray(fused, dtype=np.int16))
    assert diff.max() <= 2  # the same maths in another order: float rounding only
    generate.apply_loras(loaded, project, [])
    assert loaded.fused is None


def test_pipeline_stays_loaded_until_released(project: Project) -> None:
    run(project, {"prompt": "mika", "seed": 1})
    first = generate._loaded
    run(project, {"prompt": "mika", "seed": 2})
    assert generate._loaded is first
    generate.release()
    assert generate._loaded is None
    run(project, {"prompt": "mika", "seed": 1})
    assert generate._loaded is not first


def test_reference_mode_reproduces_and_blends(project: Project) -> None:
    draw_character(project.root / "ref_a.png", 1, size=100)  # not the target size: fitted first
    draw_character(project.root / "ref_b.png", 4, size=80)
    params = {"prompt": "mika, portrait", "seed": 5, "reference_strength": 0.5}
    _, one = run(project, {**params, "references": ["ref_a.png"]})
    meta = pngmeta.read_meta(project.root / one["path"])
    assert meta["references"][0]["path"] == "ref_a.png" and meta["reference_strength"] == 0.5
    assert "Denoising strength: 0.5" in Image.open(project.root / one["path"]).text["parameters"]
    assert np.array_equal(regenerate(project, one["path"]), pixels(project, one["path"]))
    _, two = run(project, {**params, "references": ["ref_a.png", "ref_b.png"]})
    _, t2i = run(project, params)
    a, b, c = (pixels(project, r["path"]) for r in (one, two, t2i))
    assert not np.array_equal(a, b) and not np.array_equal(a, c)
    # at a low strength the result stays close to the (fitted) reference
    _, low = run(project, {**params, "references": ["ref_a.png"], "reference_strength": 0.1, "steps": 8})
    fitted = np.asarray(generate.reference_image(project, ["ref_a.png"], 64, 64), dtype=np.int16)
    assert np.abs(pixels(project, low["path"]) - fitted).mean() < np.abs(c - fitted).mean()


def test_grid_is_one_labelled_sheet(project: Project) -> None:
    settings = project.load()
    jobs, _ = validate_grid(project, settings, {"prompt": "portrait", "seed": 11,
                                                "loras": ["loras/mika.safetensors", "mika-step000002"],
                                                "strengths": [0.0, 1.0]})
    assert jobs[0]["prompt"] == "mika, portrait"  # the trigger leads
    ctx = FakeContext(project, next(_ids), jobs[0], kind="grid")
    result = generate.run_grid(ctx)
    sheet = Image.open(project.root / result["path"])
    assert sheet.width > 2 * 64 and sheet.height > 2 * 64
    meta = pngmeta.read_meta(project.root / result["path"])
    assert [r["name"] for r in meta["grid"]["rows"]] == ["mika", "mika-step000002"]
    assert meta["grid"]["strengths"] == [0.0, 1.0]
    assert [d["step"] for k, d in ctx.events if k == protocol.EV_PROGRESS][-1] == 4 * 2
    # cells at strength 0 of both rows are the base image: identical crops
    arr = np.asarray(sheet.convert("RGB"), dtype=np.int16)
    top, left = sheet.height - 2 * (64 + 4), sheet.width - 2 * (64 + 4)
    assert np.array_equal(arr[top:top + 64, left:left + 64], arr[top + 68:top + 132, left:left + 64])
    assert not np.array_equal(arr[top:top + 64, left:left + 64], arr[top:top + 64, left + 68:left + 132])


def test_rerun_after_crash_keeps_the_finished_image(project: Project) -> None:
    ctx, first = run(project, {"prompt": "mika", "seed": 21})
    folder = (project.root / first["path"]).parent
    before = sorted(folder.iterdir())
    # the result was recorded: nothing is generated again
    again = FakeContext(project, ctx.job_id, ctx.params, previous_results=ctx.results())
    assert generate.run_job(again)["path"] == first["path"] and again.results() == []
    # written but not yet recorded (killed in between): the file is adopted and recorded, not duplicated
    again = FakeContext(project, ctx.job_id, ctx.params)
    again.job["created"] = ctx.job["created"]
    assert generate.run_job(again)["path"] == first["path"] and len(again.results()) == 1
    assert sorted(folder.iterdir()) == before
    # a different job that happens to get the same name never overwrites it
    other = FakeContext(project, ctx.job_id, {**ctx.params, "prompt": "mika, other"})
    assert generate.run_job(other)["path"].endswith(f"{ctx.job_id:05d}-21-2.png")


def test_cancel_stops_at_the_next_step(project: Project) -> None:
    jobs, _ = validate_gen(project, project.load(), {"prompt": "mika", "seed": 1, "steps": 6})
    ctx = FakeContext(project, next(_ids), jobs[0], cancel_after=2)
    files = set(project.outputs_dir.rglob("*.png"))
    with pytest.raises(JobCancelled):
        generate.run_job(ctx)
    assert [d["step"] for k, d in ctx.events if k == protocol.EV_PROGRESS] == [1, 2]
    assert set(project.outputs_dir.rglob("*.png")) == files and ctx.results() == []


def test_out_of_memory_fails_with_advice(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    def boom(*a: Any, **k: Any) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(generate, "generate", boom)
    with pytest.raises(JobFailed, match=r'generate.memory = "model_offload".*vae_tiling'):
        run(project, {"prompt": "mika", "seed": 1})


def test_bad_input_is_refused_with_one_clear_sentence(project: Project, tmp_path: Path) -> None:
    s = project.load()
    with pytest.raises(JobParamError, match=r"unknown LoRA 'nobody'; known: .*mika"):
        validate_gen(project, s, {"prompt": "x", "loras": [{"path": "nobody"}]})
    sdxl = write_safetensors_header(project.loras_dir / "sdxl_style.safetensors",
                                    ["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"])
    with pytest.raises(JobParamError, match=r"sdxl_style.safetensors: not a Z-Image LoRA"):
        validate_gen(project, s, {"prompt": "x", "loras": [{"path": "sdxl_style"}]})
    sdxl.unlink()
    outside = write_safetensors_header(tmp_path / "ext.safetensors", ["layers.0.attention.to_q.lora_A.weight"])
    with pytest.raises(JobParamError, match="outside the project"):
        validate_gen(project, s, {"prompt": "x", "loras": [{"path": str(outside)}]})
    with pytest.raises(JobParamError, match=r"reference image nothing.png: not found"):
        validate_gen(project, s, {"prompt": "x", "references": ["nothing.png"]})
    jobs, notes = validate_gen(project, s, {"prompt": "x", "width": 100, "height": 70})
    assert (jobs[0]["width"], jobs[0]["height"]) == (96, 64) and "rounded to 96x64" in notes[0]
    jobs, notes = validate_gen(project, s, {"prompt": "x", "loras": [{"path": "mika", "strength": 1.2},
                                                                     {"path": "mika-step000002", "strength": 1.0}]})
    assert any("total 2.20" in n for n in notes)
    with pytest.raises(JobParamError, match="a grid needs at least one LoRA"):
        validate_grid(project, s, {"prompt": "x", "loras": []})


def test_lora_removed_after_queueing_fails_clearly(project: Project) -> None:
    extra = make_lora(project.loras_dir / "gone.safetensors", seed=3)
    jobs, _ = validate_gen(project, project.load(), {"prompt": "x", "loras": [{"path": "gone"}]})
    extra.unlink()
    with pytest.raises(JobFailed, match=r"LoRA loras/gone.safetensors is gone"):
        generate.run_job(FakeContext(project, next(_ids), jobs[0]))


def test_seed_modes_expand_a_batch(project: Project) -> None:
    s = project.load()
    inc, _ = validate_gen(project, s, {"prompt": "x", "seed": 10, "count": 3})
    fixed, _ = validate_gen(project, s, {"prompt": "x", "seed": 10, "count": 3, "seed_mode": "fixed"})
    rnd, _ = validate_gen(project, s, {"prompt": "x", "count": 3, "seed_mode": "random"})
    assert [j["seed"] for j in inc] == [10, 11, 12] and [j["seed"] for j in fixed] == [10, 10, 10]
    assert len({j["seed"] for j in rnd}) == 3 and len({j["batch"] for j in inc}) == 1


def test_lora_of_another_model_fails_at_load_and_says_so(project: Project) -> None:
    """Z-Image module names but other shapes (e.g. a LoRA of a differently sized model): refused by the loader."""
    import torch
    from safetensors.torch import save_file

    path = project.loras_dir / "other_model.safetensors"
    save_file({"diffusion_model.layers.0.attention.to_q.lora_A.weight": torch.zeros(4, 77),
               "diffusion_model.layers.0.attention.to_q.lora_B.weight": torch.zeros(77, 4)}, str(path))
    jobs, _ = validate_gen(project, project.load(), {"prompt": "x", "loras": [{"path": "other_model"}]})
    with pytest.raises(JobFailed, match="other_model.safetensors"):
        generate.run_job(FakeContext(project, next(_ids), jobs[0]))
    path.unlink()
    _, ok = run(project, {"prompt": "x", "seed": 1, "loras": [{"path": "mika"}]})  # the next job is unaffected
    assert (project.root / ok["path"]).is_file()
