"""The Turbo training adapter: merged into the base for training, applied at −1.0 for validation samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from engine import lora_io  # noqa: E402
from engine.models import build_tiny  # noqa: E402
from tests.conftest import make_project  # noqa: E402
from tests.train_helpers import train  # noqa: E402

# Like ai-toolkit's adapter: main layers, refiners and modulation layers, `diffusion_model.` keys with alpha.
ADAPTER_MODULES = ("layers.0.attention.to_q", "layers.1.feed_forward.w2", "layers.0.adaLN_modulation.0",
                   "noise_refiner.0.attention.to_v", "context_refiner.0.feed_forward.w1")


def make_adapter(path: Path) -> Path:
    transformer = build_tiny(["transformer"])["transformer"]
    modules = dict(transformer.named_modules())
    gen = torch.Generator().manual_seed(11)
    tensors = {}
    for name in ADAPTER_MODULES:
        linear = modules[name]
        tensors[f"diffusion_model.{name}.lora_A.weight"] = torch.randn(4, linear.in_features, generator=gen) * 0.3
        tensors[f"diffusion_model.{name}.lora_B.weight"] = torch.randn(linear.out_features, 4, generator=gen) * 0.3
        tensors[f"diffusion_model.{name}.alpha"] = torch.tensor(4.0)
    lora_io.save_lora(path, tensors, {})
    return path


def _out(transformer: Any) -> Any:
    x = [torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))]
    cap = [torch.randn(6, 16, generator=torch.Generator().manual_seed(1))]
    with torch.no_grad():
        return transformer(x, torch.tensor([0.7]), cap).sample[0]


def test_merged_for_training_and_reversed_for_sampling(tmp_path: Path) -> None:
    from engine.project import TrainSettings
    from engine.train_adapter import merge, reversed_for_sampling
    from engine.train_step import ADAPTER, add_lora

    path = make_adapter(tmp_path / "adapter.safetensors")
    base_out = _out(build_tiny(["transformer"])["transformer"])
    reference = build_tiny(["transformer"])["transformer"]
    reference.load_lora_adapter(lora_io.to_diffusers(lora_io.load_lora_tensors(path), reference)[0],
                                prefix="transformer", adapter_name="ref")  # diffusers' own loading, strength 1
    adapted_out = _out(reference)
    assert (adapted_out - base_out).abs().max() > 1e-2

    transformer = build_tiny(["transformer"])["transformer"]
    original_q = transformer.layers[0].attention.to_q.weight.detach().clone()
    assert merge(transformer, path) == len(ADAPTER_MODULES)
    assert not torch.equal(transformer.layers[0].attention.to_q.get_base_layer().weight, original_q)
    add_lora(transformer, TrainSettings(rank=4, alpha=2), seed=1)
    torch.testing.assert_close(_out(transformer), adapted_out, atol=1e-5, rtol=1e-5)  # training sees base+adapter
    with reversed_for_sampling(transformer, ADAPTER, merged=True):
        torch.testing.assert_close(_out(transformer), base_out, atol=1e-5, rtol=1e-5)  # samples see the base
    torch.testing.assert_close(_out(transformer), adapted_out, atol=1e-5, rtol=1e-5)
    trainable = {n for n, p in transformer.named_parameters() if p.requires_grad}
    assert trainable and all(".zchar." in n for n in trainable)  # the adapter itself never trains


def test_training_run_samples_match_the_plain_base_model(tmp_path: Path) -> None:
    """With the adapter merged and a LoRA that cannot move (AdamW, lr 1e-7), samples equal the base model's."""
    from PIL import Image

    from engine.models import pipeline_from_components

    project = make_project(tmp_path / "p", optimizer="adamw", lr=1e-7, max_steps=1)
    adapter = make_adapter(project.root / "adapter.safetensors")
    settings = project.update({"model.training_adapter": adapter.name, "validation.prompts": ["a portrait"]})
    rec = train(project, run="a")
    assert rec.error is None, rec.error
    assert any("training adapter merged into 5 layers" in d["message"] for d in rec.of("loading"))
    sample = rec.of("train.sample")[0]
    got = Image.open(project.root / sample["path"]).convert("RGB")

    pipe = pipeline_from_components(build_tiny())
    pipe.set_progress_bar_config(disable=True)
    v, g = settings.validation, settings.generate
    expected = pipe(prompt=sample["prompt"], height=v.size, width=v.size, num_inference_steps=g.steps,
                    guidance_scale=g.guidance, generator=torch.Generator().manual_seed(v.seeds[0])).images[0]
    assert got.tobytes() == expected.tobytes()

    pipe.load_lora_weights(lora_io.to_diffusers(lora_io.load_lora_tensors(adapter), pipe.transformer)[0])
    with_adapter = pipe(prompt=sample["prompt"], height=v.size, width=v.size, num_inference_steps=g.steps,
                        guidance_scale=g.guidance, generator=torch.Generator().manual_seed(v.seeds[0])).images[0]
    assert got.tobytes() != with_adapter.tobytes()  # the check can tell the two apart
