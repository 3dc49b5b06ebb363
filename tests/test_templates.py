"""The prompt builder: matrix expansion, suggestions, strength bands, and the Prompts pane driven by Pilot."""

from __future__ import annotations

from typing import Any

import pytest

from engine.jobs import validate_gen
from engine.project import Project
from tests.conftest import make_project
from tests.gen_helpers import write_safetensors_header
from zchar_tui.app import ZcharApp
from zchar_tui.config import UserConfig
from zchar_tui.prompt_matrix import MatrixError, expand, prompts, strength_band
from zchar_tui.screens.templates import FieldSuggester, TemplatesScreen
from zchar_tui.widgets.lora_stack import LoraStack, lora_choices

SCENES = "park | beach | city street | cafe | library"
OUTFITS = "red dress | hoodie | suit"


def test_matrix_expands_every_combination_once() -> None:
    fields = {"age": "young woman", "outfit": OUTFITS, "scene": SCENES, "style": "photo"}
    combos = expand(fields)
    assert len(combos) == 15
    assert len({(c["outfit"], c["scene"]) for c in combos}) == 15
    assert {c["age"] for c in combos} == {"young woman"} and {c["action"] for c in combos} == {""}
    assert [c["scene"] for c in combos[:5]] == ["park", "beach", "city street", "cafe", "library"]  # outfit outermost
    texts = prompts("mika", fields)
    assert texts[0] == "mika, young woman, red dress, park, photo"
    assert all(t.startswith("mika, ") for t in texts) and len(set(texts)) == 15


def test_matrix_limits_and_plain_prompts() -> None:
    assert prompts("mika", {}) == ["mika"]
    assert prompts("mika", {"scene": "park |  | "}) == ["mika, park"]  # empty alternatives are dropped
    with pytest.raises(MatrixError, match="outfit, scene, action"):
        expand({"outfit": "a | b", "scene": "c | d", "action": "e | f"})
    with pytest.raises(MatrixError, match="limit"):
        expand({"outfit": " | ".join(map(str, range(30))), "scene": " | ".join(map(str, range(30)))})


async def test_suggester_completes_the_last_item() -> None:
    s = FieldSuggester(["smiling", "sitting on a bench"])
    assert await s.get_suggestion("walking, sm") == "walking, smiling"
    assert await s.get_suggestion("park | si") == "park | sitting on a bench"
    assert await s.get_suggestion("walking, ") is None and await s.get_suggestion("smiling") is None


def test_strength_bands_follow_the_guide() -> None:
    assert strength_band(0.4)[0].startswith("subtle") and strength_band(0.7)[0].startswith("daily")
    assert strength_band(1.0)[0].startswith("strong") and strength_band(1.2) == ("artefact risk (above 1.0)",
                                                                                  "warning")
    assert strength_band(0.1)[1] == "muted" and strength_band(-0.5)[1] == "warning"


@pytest.fixture
def project(tmp_path: Any) -> Project:
    p = make_project(tmp_path / "proj", images=1)
    key = ["layers.0.attention.to_q.lora_A.weight"]
    write_safetensors_header(p.loras_dir / "mika.safetensors", key)
    (p.loras_dir / "checkpoints" / "run-1" / "step-000500").mkdir(parents=True)
    write_safetensors_header(p.loras_dir / "checkpoints" / "run-1" / "step-000500" / "mika-step000500.safetensors", key)
    return p


def test_lora_choices_list_finals_then_checkpoints(project: Project) -> None:
    assert lora_choices(project) == [
        ("mika", "loras/mika.safetensors"),
        ("run-1 / step-000500  (mika-step000500)",
         "loras/checkpoints/run-1/step-000500/mika-step000500.safetensors")]


def app_for(project: Project) -> ZcharApp:
    return ZcharApp(project, config=UserConfig(image_protocol="halfcell"), connect=False, initial_pane="prompts")


async def test_builder_saves_loads_and_deletes_templates(project: Project) -> None:
    app = app_for(project)
    async with app.run_test(size=(150, 45)) as pilot:
        screen = app.screen
        assert isinstance(screen, TemplatesScreen)
        screen.query_one("#field-age").focus()
        await pilot.press(*"young w", "right", "tab", *"red dress")
        await pilot.pause()
        assert screen.fields()["age"] == "young woman"
        assert "mika, young woman, red dress" in str(screen.query_one("#preview").render())
        await pilot.press("ctrl+s")  # no name yet: refused, focus goes to the name field
        assert project.load().templates == []
        await pilot.press(*"casual", "ctrl+s")
        await pilot.pause()
        saved = project.load().templates
        assert [(t.name, t.age, t.outfit) for t in saved] == [("casual", "young woman", "red dress")]
        await pilot.press("ctrl+n")
        assert screen.fields()["age"] == ""
        screen.query_one("#template-pick").value = "casual"
        await pilot.pause()
        assert screen.fields()["outfit"] == "red dress"
        await pilot.press("ctrl+r")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert project.load().templates == []
        screen.query_one("#field-scene").focus()
        await pilot.press("4")  # typed into the field
        assert app.current_mode == "prompts" and screen.fields()["scene"] == "4"
        await pilot.press("escape", "4")  # Esc leaves the field: 4 switches to the Queue pane
        await pilot.pause()
        assert app.current_mode == "queue"


async def test_validation_set_is_edited_here(project: Project) -> None:
    app = app_for(project)
    async with app.run_test(size=(150, 45)) as pilot:
        app.screen.query_one("#validation").text = "close-up portrait\n\nrunning on a beach\n"
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert project.load().validation.prompts == ["close-up portrait", "running on a beach"]


async def test_lora_stack_strengths_and_total_warning(project: Project) -> None:
    app = app_for(project)
    async with app.run_test(size=(150, 45)) as pilot:
        stack = app.screen.query_one(LoraStack)
        stack.query_one("#lora-pick").value = "loras/mika.safetensors"
        await pilot.pause()
        assert stack.value == [{"path": "loras/mika.safetensors", "strength": 0.8}]
        stack.query_one("#lora-table").focus()
        await pilot.press("plus", "plus", "minus", "plus")
        assert stack.value[0]["strength"] == pytest.approx(0.9)
        assert "strong" in str(stack.query_one("#lora-table").get_row_at(0)[2])
        stack.add("loras/checkpoints/run-1/step-000500/mika-step000500.safetensors", 1.3)
        await pilot.pause()
        assert "over 2.0" in str(stack.query_one("#lora-total").render())
        await pilot.press("delete")
        assert len(stack.value) == 1


async def test_matrix_is_queued_as_one_job_set_per_prompt(project: Project) -> None:
    app = app_for(project)
    sent: list[dict[str, Any]] = []

    async def fake_request(cmd: str, **args: Any) -> Any:
        sent.append(args)
        return {"job_ids": [len(sent)], "notes": []}

    app.engine_request = fake_request  # type: ignore[method-assign]
    async with app.run_test(size=(150, 45)) as pilot:
        screen = app.screen
        screen.set_fields({"outfit": OUTFITS, "scene": SCENES})
        screen.query_one("#count").value = "2"
        screen.query_one("#seed").value = "77"
        screen.query_one(LoraStack).add("loras/mika.safetensors", 0.7)
        await pilot.pause()
        assert "15 prompts × 2 image(s) = 30 jobs" in str(screen.query_one("#preview").render())
        await pilot.press("ctrl+g")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert len(sent) == 15 and {a["kind"] for a in sent} == {"gen"}
    params = [a["params"] for a in sent]
    assert {p["seed"] for p in params} == {77} and {p["count"] for p in params} == {2}
    assert len({p["batch"] for p in params}) == 1
    assert len({p["prompt"] for p in params}) == 15 and params[0]["template"]["scene"] == "park"
    # what the pane sends is what the engine's validator accepts
    jobs = [j for p in params for j in validate_gen(project, project.load(), p)[0]]
    assert len(jobs) == 30 and jobs[0]["loras"] == [{"path": "loras/mika.safetensors", "strength": 0.7}]


async def test_a_result_comes_back_into_the_builder(project: Project) -> None:
    app = app_for(project)
    async with app.run_test(size=(150, 45)) as pilot:
        screen = app.screen
        screen.load_params({"prompt": "mika, red dress, park", "seed": 5, "width": 1024, "height": 1024,
                            "template": {"outfit": "red dress", "scene": "park"},
                            "loras": [{"path": "loras/mika.safetensors", "strength": 0.6}]})
        await pilot.pause()
        assert screen.fields()["scene"] == "park" and screen.query_one("#seed").value == "5"
        assert screen.query_one("#size").value == "1024x1024"
        assert screen.query_one(LoraStack).value[0]["strength"] == 0.6
        screen.load_params({"prompt": "mika, a plain prompt", "seed": 6, "width": 64, "height": 64})
        await pilot.pause()
        assert screen.fields()["scene"] == "a plain prompt" and screen.query_one(LoraStack).value == []
