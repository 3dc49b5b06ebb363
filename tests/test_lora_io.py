"""LoRA files: ComfyUI key layout + alpha + metadata, strict loading of every layout through diffusers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from engine import lora_io  # noqa: E402
from engine.models import build_tiny, pipeline_from_components  # noqa: E402

TARGETS = r".*layers\.\d+\.(attention\.(to_q|to_k|to_v|to_out\.0)|feed_forward\.(w1|w2|w3))"


def _inputs() -> tuple[list, Any, list]:
    x = [torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))]
    cap = [torch.randn(7, 16, generator=torch.Generator().manual_seed(1))]
    return x, torch.tensor([0.4]), cap


def _forward(transformer) -> Any:
    with torch.no_grad():
        return transformer(*_inputs()).sample[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny transformer with a non-zero rank-4 LoRA (alpha 3), its output, and the exported file."""
    from peft import LoraConfig

    transformer = build_tiny(["transformer"])["transformer"]
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=3, target_modules=TARGETS), adapter_name="zchar")
    gen = torch.Generator().manual_seed(5)
    for name, p in transformer.named_parameters():
        if "lora_B" in name:
            p.data = torch.randn(p.shape, generator=gen) * 0.3
    path = tmp_path_factory.mktemp("lora") / "mika.safetensors"
    lora_io.save_lora(path, lora_io.comfy_state_dict(transformer, "zchar"),
                      {"trigger": "mika", "base_model": "tiny", "rank": 4, "alpha": 3.0, "steps": 20})
    return {"transformer": transformer, "out": _forward(transformer), "path": path,
            "state": lora_io.comfy_state_dict(transformer, "zchar")}


def _pipe() -> Any:
    return pipeline_from_components(build_tiny())


def test_export_has_comfyui_layout_alpha_and_metadata(trained: dict) -> None:
    from safetensors import safe_open

    with safe_open(str(trained["path"]), framework="pt") as fh:
        keys = set(fh.keys())
    modules = {k.rsplit(".lora_", 1)[0] for k in keys if ".lora_" in k}
    assert len(modules) == 2 * 7  # 2 layers x (q, k, v, out, w1, w2, w3)
    for m in modules:
        assert m.startswith("diffusion_model.layers.")
        assert {f"{m}.lora_A.weight", f"{m}.lora_B.weight", f"{m}.alpha"} <= keys
    assert "diffusion_model.layers.0.attention.to_out.0.alpha" in keys
    meta = lora_io.read_metadata(trained["path"])
    assert meta["trigger"] == "mika" and meta["rank"] == 4 and meta["alpha"] == 3.0 and meta["steps"] == 20
    assert meta["version"]


def test_loads_through_diffusers_changes_output_and_strength_zero_is_base(trained: dict) -> None:
    pipe = _pipe()
    base = _forward(pipe.transformer)
    info = lora_io.load_into_pipeline(pipe, trained["path"], "mika")
    assert info["format"] == "comfyui" and info["modules"] == 14 and info["rank"] == 4
    loaded = _forward(pipe.transformer)
    assert (loaded - base).abs().max() > 1e-3  # the LoRA does something
    torch.testing.assert_close(loaded, trained["out"], rtol=1e-5, atol=1e-6)  # alpha 3/4 applied exactly once
    pipe.set_adapters(["mika"], [0.0])
    assert torch.equal(_forward(pipe.transformer), base)


def test_reads_diffusers_and_kohya_layouts(trained: dict, tmp_path: Path) -> None:
    state = trained["state"]
    kohya: dict = {}
    diffusers_keys: dict = {}
    for key, value in state.items():
        module = key.removeprefix("diffusion_model.").rsplit(".lora_", 1)[0].removesuffix(".alpha")
        name = "lora_unet_" + module.replace(".", "_")
        if key.endswith(".alpha"):
            kohya[f"{name}.alpha"] = value
        elif ".lora_A." in key:
            kohya[f"{name}.lora_down.weight"] = value
            diffusers_keys[f"transformer.{module}.lora_A.weight"] = value * (3 / 4)  # alpha folded in
        else:
            kohya[f"{name}.lora_up.weight"] = value
            diffusers_keys[f"transformer.{module}.lora_B.weight"] = value
    for fmt, tensors in (("kohya", kohya), ("diffusers", diffusers_keys)):
        path = tmp_path / f"{fmt}.safetensors"
        lora_io.save_lora(path, tensors, {})
        pipe = _pipe()
        assert lora_io.load_into_pipeline(pipe, path, "x")["format"] == fmt
        torch.testing.assert_close(_forward(pipe.transformer), trained["out"], rtol=1e-5, atol=1e-6)


def test_unmatched_keys_are_named(trained: dict, tmp_path: Path) -> None:
    bad = dict(trained["state"])
    bad["diffusion_model.layers.0.attention.to_x.lora_A.weight"] = torch.zeros(4, 32)
    bad["diffusion_model.layers.0.attention.to_x.lora_B.weight"] = torch.zeros(32, 4)
    bad["diffusion_model.layers.1.feed_forward.w1.lora_A.weight"] = torch.zeros(4, 7)  # wrong in_features
    path = tmp_path / "bad.safetensors"
    lora_io.save_lora(path, bad, {})
    pipe = _pipe()
    with pytest.raises(lora_io.LoraFormatError) as err:
        lora_io.load_into_pipeline(pipe, path, "bad")
    text = str(err.value)
    assert "to_x.lora_A.weight" in text and "to_x.lora_B.weight" in text and "feed_forward.w1" in text
    assert not getattr(pipe.transformer, "peft_config", None)  # nothing half-loaded


def test_foreign_and_broken_files_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    peft_raw = tmp_path / "peft.safetensors"  # bare `base_model.model.*` keys silently fail in diffusers
    save_file({"base_model.model.unet.down.lora_A.weight": torch.zeros(4, 8),
               "base_model.model.unet.down.lora_B.weight": torch.zeros(8, 4)}, str(peft_raw))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"whatever")
    pipe = _pipe()
    with pytest.raises(lora_io.LoraFormatError, match="not a Z-Image LoRA"):
        lora_io.load_into_pipeline(pipe, peft_raw, "a")
    with pytest.raises(lora_io.LoraFormatError, match="not a readable safetensors"):
        lora_io.load_into_pipeline(pipe, broken, "b")
    with pytest.raises(lora_io.LoraFormatError, match=r"only \.safetensors"):
        lora_io.load_into_pipeline(pipe, pickle, "c")


def test_file_hash_is_cached_by_size_and_mtime(tmp_path: Path) -> None:
    import os

    f = tmp_path / "a.safetensors"
    f.write_bytes(b"one")
    first = lora_io.file_hash(f)
    assert len(first) == 12 and first == lora_io.file_hash(f)
    f.write_bytes(b"two")
    os.utime(f, ns=(1, 10**18))
    assert lora_io.file_hash(f) != first
