"""The user's own settings (not the project's): theme, image protocol, key remaps.

Kept in `$XDG_CONFIG_HOME/zchar/config.toml` (default `~/.config/zchar/config.toml`):

    theme = "zchar-light"
    image_protocol = "auto"      # auto | tgp | sixel | halfcell | unicode
    [keymap]
    switch_dataset = "f1"        # binding id = key(s)
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.project import write_toml

log = logging.getLogger("zchar.config")
IMAGE_PROTOCOLS = ("auto", "tgp", "sixel", "halfcell", "unicode")


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "zchar" / "config.toml"


@dataclass
class UserConfig:
    theme: str = "zchar-dark"
    image_protocol: str = "auto"
    keymap: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # shown once as a notification, never fatal

    @classmethod
    def load(cls, path: Path | None = None) -> UserConfig:
        path = path or config_path()
        cfg = cls()
        if not path.is_file():
            return cfg
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            cfg.problems.append(f"{path}: ignored ({exc})")
            return cfg
        if isinstance(data.get("theme"), str):
            cfg.theme = data["theme"]
        proto = data.get("image_protocol", "auto")
        if proto in IMAGE_PROTOCOLS:
            cfg.image_protocol = proto
        else:
            cfg.problems.append(f"{path}: image_protocol = {proto!r} ignored; "
                                f"expected one of {', '.join(IMAGE_PROTOCOLS)}")
        keymap = data.get("keymap", {})
        if isinstance(keymap, dict):
            cfg.keymap = {str(k): str(v) for k, v in keymap.items() if isinstance(v, str)}
        return cfg

    def save_value(self, key: str, value: Any, path: Path | None = None) -> None:
        """Change one top-level key, keeping the rest of the file."""
        path = path or config_path()
        try:
            data = tomllib.loads(path.read_text("utf-8")) if path.is_file() else {}
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            data = {}
        data[key] = value
        try:
            write_toml(path, data)
        except OSError as exc:
            log.warning("could not save %s: %s", path, exc)
