"""Live preview of the composed prompt(s): the trigger word highlighted, a matrix listed with its size."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

SHOWN = 12


class PromptPreview(Static):
    def show(self, trigger: str, prompts: list[str], images_each: int = 1, problem: str = "") -> None:
        text = Text()
        if problem:
            text.append(problem, style="bold red")
            self.update(text)
            return
        if len(prompts) > 1:
            text.append(f"matrix: {len(prompts)} prompts × {images_each} image(s) = {len(prompts) * images_each} "
                        "jobs\n", style="bold")
        for i, prompt in enumerate(prompts[:SHOWN]):
            if len(prompts) > 1:
                text.append(f"{i + 1:>3}. ", style="dim")
            head, sep, tail = prompt.partition(trigger)
            if not head and sep:
                text.append(trigger, style="bold reverse")
                text.append(tail)
            else:
                text.append(prompt)
            text.append("\n")
        if len(prompts) > SHOWN:
            text.append(f"     … {len(prompts) - SHOWN} more\n", style="dim")
        self.update(text)
