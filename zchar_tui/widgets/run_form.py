"""The run settings form: the `[train]` keys a user tunes between runs, written to project.toml on Enter or when
the field loses focus (validated by `app.update_settings`, other settings kept; a refused value stays marked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from engine.project import Settings, field_help

if TYPE_CHECKING:
    from zchar_tui.app import ZcharApp


@dataclass(frozen=True)
class FormField:
    key: str  # dotted project.toml key
    label: str
    kind: type  # int, float, str; a tuple of choices makes a Select
    choices: tuple[str, ...] = ()


FIELDS = (
    FormField("train.rank", "rank", int),
    FormField("train.alpha", "alpha", float),
    FormField("train.epochs", "epochs", int),
    FormField("train.max_steps", "max steps", int),
    FormField("train.resolution", "resolution", int),
    FormField("train.batch_size", "batch", int),
    FormField("train.optimizer", "optimizer", str, ("prodigy", "adamw")),
    FormField("train.lr", "lr", float),
    FormField("train.d0", "prodigy d0", float),
    FormField("train.weight_decay", "weight decay", float),
    FormField("train.memory", "memory", str, ("full", "balanced", "low")),
    FormField("train.checkpoint_every", "ckpt every", int),
    FormField("validation.every_epochs", "sample every", int),
    FormField("model.training_adapter", "adapter", str),
)


def field_id(key: str) -> str:
    return "f-" + key.replace(".", "-")


def current_value(settings: Settings, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(settings, section), name)


def shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse(f: FormField, text: str) -> Any:
    """The typed value of a field's text; ValueError with a sentence for the user."""
    text = text.strip()
    if f.kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{f.key} = {text!r}: expected an integer") from None
    if f.kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{f.key} = {text!r}: expected a number") from None
    return text


def _tooltips() -> dict[str, str]:
    tips = {}
    for section in ("train", "validation", "model"):
        for name, allowed, help_text in field_help(section):
            tips[f"{section}.{name}"] = f"{section}.{name}: {allowed}" + (f"\n{help_text}" if help_text else "")
    return tips


class RunForm(VerticalScroll):
    DEFAULT_CSS = """
    RunForm { height: 1fr; padding-right: 1; }
    RunForm > #form-grid { grid-size: 2; grid-columns: 13 1fr; grid-rows: 1; height: auto; }
    RunForm Label { color: $text-muted; }
    RunForm > #form-status { height: auto; padding: 0 0 0 1; }
    """

    @property
    def zapp(self) -> ZcharApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        tips = _tooltips()
        settings = self.zapp.settings
        with Grid(id="form-grid"):
            for f in FIELDS:
                value = current_value(settings, f.key)
                yield Label(f.label)
                if f.choices:
                    widget: Input | Select[str] = Select([(c, c) for c in f.choices], value=value, allow_blank=False,
                                                         id=field_id(f.key), compact=True)
                else:
                    itype = {int: "integer", float: "number"}.get(f.kind, "text")
                    widget = Input(shown(value), type=itype, id=field_id(f.key), select_on_focus=False,
                                   placeholder="off" if f.kind is str else "", compact=True)
                widget.tooltip = tips.get(f.key, f.key)
                yield widget
        yield Static(id="form-status", classes="muted")

    def on_mount(self) -> None:
        self._status("Enter or leaving a field saves it to project.toml; changes apply to the next run.")

    def _status(self, message: str, error: bool = False) -> None:
        self.query_one("#form-status", Static).update(Text(message, style="bold red" if error else "dim"))

    def _field(self, widget_id: str | None) -> FormField | None:
        return next((f for f in FIELDS if field_id(f.key) == widget_id), None)

    def commit(self, f: FormField, raw: Any) -> bool:
        """Save one field; False (and the field marked) when the value is refused."""
        widget = self.query_one(f"#{field_id(f.key)}")
        try:
            value = parse(f, raw) if isinstance(raw, str) and not f.choices else raw
        except ValueError as exc:
            widget.add_class("-invalid")
            self._status(str(exc), error=True)
            self.app.notify(str(exc), title="Not saved", severity="error")
            return False
        if value == current_value(self.zapp.settings, f.key):
            widget.remove_class("-invalid")
            return True
        if not self.zapp.update_settings({f.key: value}):
            widget.add_class("-invalid")
            self._status(f"{f.key} = {value!r} was not saved (see the message); the file is unchanged.", error=True)
            return False
        widget.remove_class("-invalid")
        self._status(f"saved {f.key} = {shown(value)}")
        return True

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if (f := self._field(event.input.id)) is not None:
            event.stop()
            self.commit(f, event.value)

    def on_input_blurred(self, event: Input.Blurred) -> None:
        if (f := self._field(event.input.id)) is not None:
            self.commit(f, event.value)

    def on_select_changed(self, event: Select.Changed) -> None:
        f = self._field(event.select.id)
        if f is not None and event.value is not Select.NULL:
            event.stop()
            self.commit(f, event.value)

    def refresh_values(self) -> None:
        """Show the settings as they are now (after a save elsewhere or an edit of project.toml)."""
        settings = self.zapp.settings
        for f in FIELDS:
            widget = self.query_one(f"#{field_id(f.key)}")
            value = current_value(settings, f.key)
            if isinstance(widget, Select):
                if widget.value != value:
                    widget.value = value
            elif isinstance(widget, Input) and not widget.has_focus and not widget.has_class("-invalid"):
                widget.value = shown(value)
