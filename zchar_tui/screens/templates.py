"""Prompts pane: the template builder (trigger, age, outfit, scene, action, style, quality) with suggestions and a
live preview, saved templates, a matrix mode, the LoRA stack, and the validation prompt set used while training."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable
from typing import Any

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.suggester import Suggester
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from engine import protocol
from engine.project import TEMPLATE_FIELDS, compose_prompt, with_trigger
from zchar_tui.client import EngineError
from zchar_tui.project_files import import_reference
from zchar_tui.prompt_matrix import PLACEHOLDERS, SEPARATOR, SUGGESTIONS, MatrixError, expand, prompts
from zchar_tui.screens.base import PaneScreen
from zchar_tui.screens.dialogs import ConfirmScreen
from zchar_tui.widgets.lora_stack import LoraStack
from zchar_tui.widgets.prompt_preview import PromptPreview

SIZE_PRESETS = ((1024, 1024), (896, 1152), (1152, 896), (832, 1216), (1216, 832), (768, 1344), (1344, 768),
                (720, 1280), (1280, 720), (512, 512))
SEED_MODES = (("same seed for all", "fixed"), ("seed +1 per image", "increment"), ("random seeds", "random"))
NEW = "__new__"


class FieldSuggester(Suggester):
    """Completes the last comma- or |-separated item of a field from the field's vocabulary."""

    def __init__(self, words: list[str]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.words = words

    async def get_suggestion(self, value: str) -> str | None:
        cut = max(value.rfind(","), value.rfind(SEPARATOR)) + 1
        typed = value[cut:].lstrip()
        if not typed:
            return None
        for word in self.words:
            if word.lower().startswith(typed.lower()) and len(word) > len(typed):
                return value + word[len(typed):]
        return None


class TemplatesScreen(PaneScreen):
    MODE = "prompts"
    TITLE = "Prompts"
    DEFAULT_CSS = """
    TemplatesScreen #builder { width: 3fr; padding: 0 1; }
    TemplatesScreen #prompts-side { width: 2fr; padding: 0 1; }
    TemplatesScreen .form-row { height: 1; margin-bottom: 1; }
    TemplatesScreen .field-label { width: 11; padding: 0 1 0 0; text-align: right; color: $text-muted; }
    TemplatesScreen .form-row Input { width: 1fr; margin-right: 1; }
    TemplatesScreen #template-pick { width: 1fr; margin-right: 1; }
    TemplatesScreen #trigger { padding: 0 1; text-style: bold; color: $accent; }
    TemplatesScreen #count { width: 10; }
    TemplatesScreen #seed { width: 1fr; }
    TemplatesScreen #seed-mode { width: 26; }
    TemplatesScreen #ref-strength { width: 10; }
    TemplatesScreen #preview { height: auto; max-height: 16; border: round $primary; padding: 0 1; }
    TemplatesScreen #validation { height: 1fr; min-height: 6; }
    """
    HELP = ("Each field adds one part to the prompt, in the guide's order; the trigger word always leads. Tab moves "
            "between fields, Esc leaves one (then 1–4 switch panes). Type a few letters and press → to take a "
            "suggestion. Separate alternatives with | in one or two fields "
            "(e.g. scene: park | beach | city) to queue every combination as a matrix.")
    BINDINGS = [
        Binding("ctrl+f", "focus_fields", "Fields", id="prompts_fields",
                tooltip="Jump to the first prompt field (age); Tab moves on, Esc leaves"),
        Binding("ctrl+g", "queue", "Queue", id="prompts_queue",
                tooltip="Queue the prompt (or the whole matrix) as generation jobs"),
        Binding("ctrl+s", "save_template", "Save template", id="prompts_save",
                tooltip="Save the fields as a named template in project.toml"),
        Binding("ctrl+n", "new_template", "New", id="prompts_new", tooltip="Clear the fields for a new template"),
        Binding("ctrl+r", "remove_template", "Delete template", id="prompts_remove",
                tooltip="Delete the chosen template from project.toml (asks first)"),
        Binding("ctrl+b", "save_validation", "Save validation set", id="prompts_validation",
                tooltip="Save the validation prompts (one per line) used for samples while training"),
        Binding("ctrl+l", "focus_loras", "LoRAs", id="prompts_loras", tooltip="Jump to the LoRA stack"),
        Binding("escape", "leave_field", "Leave field", id="prompts_leave", show=False,
                tooltip="Leave the text field, so that 1–4 switch panes again"),
    ]

    def compose_body(self) -> ComposeResult:
        s = self.zapp.settings
        with Horizontal(id="prompts-body", classes="pane-body"):
            with VerticalScroll(id="builder"):
                with Horizontal(classes="form-row"):
                    yield Label("template", classes="field-label")
                    yield Select([], prompt="new template", id="template-pick", allow_blank=True, compact=True)
                    yield Input(placeholder="name to save as", id="template-name", compact=True)
                with Horizontal(classes="form-row"):
                    yield Label("trigger", classes="field-label")
                    yield Static(s.trigger, id="trigger")
                for name in TEMPLATE_FIELDS:
                    with Horizontal(classes="form-row"):
                        yield Label(name, classes="field-label")
                        yield Input(placeholder=PLACEHOLDERS[name], id=f"field-{name}",
                                    suggester=FieldSuggester(SUGGESTIONS[name]), compact=True)
                with Horizontal(classes="form-row"):
                    yield Label("images", classes="field-label")
                    yield Input("1", id="count", type="integer", restrict=r"\d*", max_length=4,
                                tooltip="images per prompt", compact=True)
                    yield Input(placeholder="seed: random", id="seed", type="integer", restrict=r"\d*",
                                tooltip="empty: a random seed (one for the whole matrix)", compact=True)
                    yield Select([(label, v) for label, v in SEED_MODES], value="increment", id="seed-mode",
                                 allow_blank=False, compact=True)
                with Horizontal(classes="form-row"):
                    yield Label("size", classes="field-label")
                    default = f"{s.generate.width}x{s.generate.height}"
                    options = [(f"project default ({default})", "")] + [
                        (f"{w}x{h}", f"{w}x{h}") for w, h in SIZE_PRESETS if f"{w}x{h}" != default]
                    self._sizes = [v for _label, v in options]
                    yield Select(options, value="", id="size", allow_blank=False, compact=True)
                with Horizontal(classes="form-row"):
                    yield Label("reference", classes="field-label")
                    yield Input(placeholder="image(s) for img2img, separated by ; (optional)", id="reference",
                                compact=True)
                    yield Input(f"{s.generate.reference_strength:g}", id="ref-strength", type="number",
                                tooltip="reference strength 0–1: how much of the reference is redrawn", compact=True)
                yield Label("LoRA stack", classes="section-title")
                yield LoraStack(self.zapp.project, s.generate.lora_strength, id="lora-stack")
            with Vertical(id="prompts-side"):
                yield Label("Prompt", classes="section-title")
                yield PromptPreview(id="preview")
                yield Label("Validation prompts — sampled while training; one per line, trigger put in front",
                            classes="section-title")
                yield TextArea("\n".join(s.validation.prompts), id="validation", soft_wrap=True)
                yield Button("Save validation prompts (ctrl+b)", id="save-validation")

    def on_mount(self) -> None:
        self._refresh_templates()
        self._update_preview()

    def on_engine_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "settings":
            self.query_one("#trigger", Static).update(self.zapp.settings.trigger)
            self._refresh_templates()
            self._update_preview()
        elif kind in (protocol.EV_CHECKPOINT, "snapshot"):
            self.query_one(LoraStack).refresh_choices()

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("Prompts: queue", "Queue the prompt or matrix as generation jobs", self.action_queue)
        yield SystemCommand("Prompts: save template", "Save the fields as a named template", self.action_save_template)
        yield SystemCommand("Prompts: save validation prompts", "Save the validation set",
                            self.action_save_validation)

    # --- fields -------------------------------------------------------------------------------------------
    def fields(self) -> dict[str, str]:
        return {f: self.query_one(f"#field-{f}", Input).value for f in TEMPLATE_FIELDS}

    def set_fields(self, values: dict[str, str]) -> None:
        for f in TEMPLATE_FIELDS:
            self.query_one(f"#field-{f}", Input).value = values.get(f, "")
        self._update_preview()

    @on(Input.Changed)
    def _field_changed(self, event: Input.Changed) -> None:
        if event.input.id and (event.input.id.startswith("field-") or event.input.id == "count"):
            self._update_preview()

    def _images_each(self) -> int:
        try:
            return max(1, int(self.query_one("#count", Input).value or "1"))
        except ValueError:
            return 1

    def _update_preview(self) -> None:
        preview = self.query_one(PromptPreview)
        trigger = self.zapp.settings.trigger
        try:
            preview.show(trigger, prompts(trigger, self.fields()), self._images_each())
        except MatrixError as exc:
            preview.show(trigger, [], problem=str(exc))

    # --- templates ----------------------------------------------------------------------------------------
    def _refresh_templates(self) -> None:
        pick = self.query_one("#template-pick", Select)
        names = [t.name for t in self.zapp.settings.templates]
        current = pick.value
        with self.prevent(Select.Changed):
            pick.set_options([(n, n) for n in names])
            if current in names:
                pick.value = current

    @on(Select.Changed, "#template-pick")
    def _template_picked(self, event: Select.Changed) -> None:
        template = next((t for t in self.zapp.settings.templates if t.name == event.value), None)
        if template is None:
            return
        self.query_one("#template-name", Input).value = template.name
        self.set_fields({f: getattr(template, f) for f in TEMPLATE_FIELDS})

    def action_save_template(self) -> None:
        name = self.query_one("#template-name", Input).value.strip()
        if not name:
            self.notify("Give the template a name first (the field next to the template list).", severity="warning")
            self.query_one("#template-name", Input).focus()
            return
        entry = {"name": name, **{k: v.strip() for k, v in self.fields().items() if v.strip()}}
        saved = [self._as_dict(t) for t in self.zapp.settings.templates if t.name != name]
        if self.zapp.update_settings({"templates": [*saved, entry]}):
            self._refresh_templates()
            with self.prevent(Select.Changed):
                self.query_one("#template-pick", Select).value = name
            self.notify(f"template {name!r} saved in project.toml", timeout=3)

    def action_new_template(self) -> None:
        with self.prevent(Select.Changed):
            self.query_one("#template-pick", Select).clear()
        self.query_one("#template-name", Input).value = ""
        self.set_fields({})
        self.query_one("#field-age", Input).focus()

    def action_remove_template(self) -> None:
        name = self.query_one("#template-pick", Select).value
        if not isinstance(name, str):
            self.notify("Choose a saved template to delete.", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes and self.zapp.update_settings({"templates": [
                    self._as_dict(t) for t in self.zapp.settings.templates if t.name != name]}):
                self._refresh_templates()
                self.notify(f"template {name!r} deleted", timeout=3)

        self.app.push_screen(ConfirmScreen(f"Delete the template {name!r} from project.toml?", yes="Delete"), answered)

    @staticmethod
    def _as_dict(template: Any) -> dict[str, str]:
        return {"name": template.name, **{f: getattr(template, f) for f in TEMPLATE_FIELDS if getattr(template, f)}}

    # --- validation set -----------------------------------------------------------------------------------
    @on(Button.Pressed, "#save-validation")
    def action_save_validation(self) -> None:
        lines = [line.strip() for line in self.query_one("#validation", TextArea).text.splitlines() if line.strip()]
        if not lines:
            self.notify("The validation set needs at least one prompt.", severity="warning")
            return
        if self.zapp.update_settings({"validation.prompts": lines}):
            trigger = self.zapp.settings.trigger
            self.notify(f"{len(lines)} validation prompts saved (sampled as “{with_trigger(trigger, lines[0])}” …)",
                        timeout=4)

    def action_focus_fields(self) -> None:
        self.query_one("#field-age", Input).focus()

    def action_leave_field(self) -> None:
        self.set_focus(None)

    def action_focus_loras(self) -> None:
        self.query_one("#lora-pick", Select).focus()

    # --- queueing -----------------------------------------------------------------------------------------
    def job_params(self) -> tuple[list[dict[str, Any]], list[str]]:
        """(parameters of one submit per prompt of the matrix, reference paths to copy in first)."""
        combos = expand(self.fields())
        seed_text = self.query_one("#seed", Input).value.strip()
        seed = int(seed_text) if seed_text else random.randrange(2**32)  # one seed: the matrix stays comparable
        size = self.query_one("#size", Select).value
        common: dict[str, Any] = {
            "count": self._images_each(), "seed": seed, "seed_mode": self.query_one("#seed-mode", Select).value,
            "loras": self.query_one(LoraStack).value, "batch": f"m{int(time.time() * 1000)}",
        }
        if isinstance(size, str) and size:
            w, h = size.split("x")
            common.update(width=int(w), height=int(h))
        refs = [r.strip() for r in self.query_one("#reference", Input).value.split(";") if r.strip()]
        if refs:
            try:
                common["reference_strength"] = float(self.query_one("#ref-strength", Input).value)
            except ValueError:
                raise MatrixError("the reference strength must be a number from 0.05 to 1") from None
        trigger = self.zapp.settings.trigger
        return [{**common, "prompt": compose_prompt(trigger, c), "template": c} for c in combos], refs

    def action_queue(self) -> None:
        try:
            jobs, refs = self.job_params()
        except MatrixError as exc:
            self.notify(str(exc), title="Not queued", severity="error")
            return
        self._submit(jobs, refs)

    @work(group="prompts-submit", exclusive=True)
    async def _submit(self, jobs: list[dict[str, Any]], refs: list[str]) -> None:
        project = self.zapp.project
        try:
            paths = [await asyncio.to_thread(import_reference, project, r) for r in refs]
        except (OSError, ValueError) as exc:
            self.notify(f"reference: {exc}", title="Not queued", severity="error")
            return
        rel = [str(p.relative_to(project.root)) for p in paths]
        ids: list[int] = []
        notes: set[str] = set()
        try:
            for params in jobs:
                result = await self.zapp.engine_request("submit", kind="gen",
                                                        params={**params, "references": rel})
                ids += result["job_ids"]
                notes.update(result.get("notes", []))
        except EngineError as exc:
            self.notify(str(exc), title="Not queued" if not ids else f"Stopped after {len(ids)} jobs",
                        severity="error", timeout=10)
            return
        for note in sorted(notes):
            self.notify(note, severity="warning")
        what = f"{len(jobs)} prompts, " if len(jobs) > 1 else ""
        self.notify(f"queued {what}{len(ids)} job(s) — see the Queue pane (4)", timeout=4)

    # --- from the queue -----------------------------------------------------------------------------------
    def load_params(self, params: dict[str, Any]) -> None:
        """Fill the builder from a job's parameters (a result sent back from the Queue pane)."""
        template = params.get("template")
        if not isinstance(template, dict):
            trigger = self.zapp.settings.trigger
            text = params.get("prompt", "")
            rest = text[len(trigger):].lstrip(" ,") if text.startswith(trigger) else text
            template = {"scene": rest}
        with self.prevent(Select.Changed):
            self.query_one("#template-pick", Select).clear()
        self.set_fields(template)
        self.query_one("#seed", Input).value = str(params.get("seed", ""))
        self.query_one("#seed-mode", Select).value = "fixed"
        self.query_one("#count", Input).value = "1"
        size = f"{params.get('width')}x{params.get('height')}"
        self.query_one("#size", Select).value = size if size in self._sizes else ""
        self.query_one("#reference", Input).value = "; ".join(params.get("references") or [])
        if params.get("references"):
            self.query_one("#ref-strength", Input).value = f"{params.get('reference_strength', 0.6):g}"
        self.query_one(LoraStack).set_value(params.get("loras") or [])
        self._update_preview()
