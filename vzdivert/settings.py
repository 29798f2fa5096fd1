"""Live settings: the tunable keys changed from the UI/API, persisted in ``[state] dir`` over
the config file's values. The supervisor is the only writer; children read it at start."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from vzdivert.config import Config, ConfigError
from vzdivert.persist import read_json, write_json

SETTINGS_FILE = "settings.json"
CHANGELOG_LEN = 50


class SettingsStore:
    def __init__(self, state_dir: str | Path):
        self.path = Path(state_dir) / SETTINGS_FILE

    def load(self) -> dict[str, Any]:
        """{"settings": {name: value}, "changes": [...]}; an unreadable file is an error,
        never silently replaced (it may hold the user's tuning)."""
        try:
            data = read_json(self.path, {"settings": {}, "changes": []})
        except ValueError as exc:
            raise ConfigError([f"{self.path}: corrupt settings file: {exc}"]) from exc
        if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
            raise ConfigError([f"{self.path}: corrupt settings file (no 'settings' table)"])
        data.setdefault("changes", [])
        return data

    def apply(self, base: Config) -> Config:
        """The effective config: the file's values with the persisted settings over them."""
        return base.with_settings(self.load()["settings"])

    def save(self, settings: dict[str, Any], changes: list[dict[str, Any]]) -> None:
        write_json(self.path, {"settings": settings, "changes": changes[-CHANGELOG_LEN:]})


def change_entry(who: str, changed: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    return {"ts": time.time(), "who": who,
            "changes": {k: [before.get(k), v] for k, v in changed.items()}}
