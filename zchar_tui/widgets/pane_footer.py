"""The footer every pane shows: Textual's Footer without its leak on recompose.

Textual 8.2's Footer rebuilds its key widgets whenever the bindings change (each pane switch, many focus changes)
and binds each new key to its own `compact` reactive. A binding is dropped only when `compact` changes, which never
happens here, so every rebuild kept the old keys alive with their render caches: ~20 widgets per pane switch, and
full garbage collections that grew from 0.1 s to 0.8 s over a few minutes of use (Textualize/textual#6666).
"""

from __future__ import annotations

from textual.widgets import Footer


class PaneFooter(Footer):
    async def recompose(self) -> None:
        await super().recompose()
        watchers = getattr(self, "__watchers", None)  # where Textual keeps watchers of this widget's reactives
        if isinstance(watchers, dict):
            for name, entries in watchers.items():
                watchers[name] = [(node, callback) for node, callback in entries if node.is_attached]
