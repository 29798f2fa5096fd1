"""Backup and restore of the live settings: one JSON document (``vzdivert settings export``,
``GET /api/settings/export``) that a restore validates as a whole against the schema before
anything is changed (``POST /api/settings/import``, ``vzdivert settings import``)."""

from __future__ import annotations

import json
import time
from typing import Any

from vzdivert.config import Config, ConfigError

FORMAT = "vzdivert-settings"
VERSION = 1


def backup_document(settings: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Every live setting's effective value; ``overrides`` says which differ from the file."""
    return {"format": FORMAT, "version": VERSION, "exported_at": round(time.time(), 3),
            "settings": dict(settings), "overrides": sorted(overrides)}


def parse_backup(raw: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """The settings table of a backup document; ConfigError naming what is wrong."""
    if isinstance(raw, (bytes, str)):
        try:
            raw = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError.of({"file": f"not a JSON document: {exc}"}) from exc
    if not isinstance(raw, dict):
        raise ConfigError.of({"file": "expected a JSON object (a file from settings export)"})
    if raw.get("format") != FORMAT:
        raise ConfigError.of({"format": f"expected {FORMAT!r}, got {raw.get('format')!r} "
                                        "(not a file from settings export)"})
    if raw.get("version") != VERSION:
        raise ConfigError.of({"version": f"expected {VERSION}, got {raw.get('version')!r}"})
    settings = raw.get("settings")
    if not isinstance(settings, dict) or not settings:
        raise ConfigError.of({"settings": "expected a non-empty table of setting name: value"})
    return settings


def restore(base: Config, raw: bytes | str | dict[str, Any]) -> tuple[Config, dict[str, Any]]:
    """The config a backup restores over the file's values, and the overrides to persist
    (the settings that differ from the file). All or nothing: any bad key raises."""
    settings = parse_backup(raw)
    cfg = base.with_settings(settings)  # validates every key and the rules between keys
    defaults = base.tunables()
    overrides = {k: v for k, v in cfg.tunables().items() if defaults[k] != v}
    return cfg, overrides
