"""The live settings and their one owner (the arbiter holds the one instance): the config
file's values with the persisted overrides over them, the change log, and the store they
persist in. Changes are validated against the schema and persisted before they count."""

from __future__ import annotations

import logging
from typing import Any

from vzdivert.bus import CommandError
from vzdivert.config import TUNABLES, Config, ConfigError
from vzdivert.settings import CHANGELOG_LEN, SettingsStore, change_entry

log = logging.getLogger("vzdivert.supervisor")
SHOWN_CHANGES = 20


def schema() -> dict[str, dict[str, Any]]:
    """What a UI needs to render and check each setting."""
    return {name: {"section": k.section, "type": k.type.__name__, "default": k.default,
                   "min": k.min, "max": k.max, "choices": list(k.choices or ()) or None,
                   "unit": k.unit, "help": k.help}
            for name, k in TUNABLES.items()}


class LiveSettings:
    """``cfg`` is the effective config; ``change``/``reset`` persist first (a crash right
    after still keeps the change), then take effect here. Raises ConfigError at start when
    the persisted settings no longer validate against the file."""

    def __init__(self, base_cfg: Config):
        self.base_cfg = base_cfg
        self.store = SettingsStore(base_cfg.state.dir)
        data = self.store.load()
        self.overrides: dict[str, Any] = data["settings"]
        self.changes: list[dict[str, Any]] = data["changes"]
        self.cfg = base_cfg.with_settings(self.overrides)

    def view(self) -> dict[str, Any]:
        return {"settings": self.cfg.tunables(), "defaults": self.base_cfg.tunables(),
                "overrides": dict(self.overrides), "schema": schema(),
                "changes": self.changes[-SHOWN_CHANGES:]}

    def change(self, settings: dict[str, Any], who: str) -> None:
        """Validate and persist; raises CommandError (code invalid, problems by name)."""
        if not isinstance(settings, dict) or not settings:
            raise CommandError("settings must be a non-empty table of name: value",
                               code="invalid")
        try:
            cfg = self.cfg.with_settings(settings)
        except ConfigError as exc:
            raise CommandError.invalid(exc.problems) from exc
        overrides = {**self.overrides, **{k: cfg.tunables()[k] for k in settings}}
        self._commit(cfg, overrides, who)

    def reset(self, who: str) -> None:
        """Back to the config file's values."""
        self._commit(self.base_cfg, {}, who)

    def _commit(self, cfg: Config, overrides: dict[str, Any], who: str) -> None:
        before = self.cfg.tunables()
        changed = {k: v for k, v in cfg.tunables().items() if before[k] != v}
        changes = self.changes + ([change_entry(who, changed, before)] if changed else [])
        self.store.save(overrides, changes)
        self.cfg, self.overrides, self.changes = cfg, overrides, changes[-CHANGELOG_LEN:]
        if changed:
            log.info("settings changed by %s: %s", who,
                     ", ".join(f"{k}={v!r}" for k, v in changed.items()))
