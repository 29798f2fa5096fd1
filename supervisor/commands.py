"""The supervisor's REQ/REP commands, one table (circus-style): status and the live
settings, which the supervisor validates, persists and forwards to the worker."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from vzdivert.bus import CommandError
from vzdivert.config import TUNABLES, Config, ConfigError
from vzdivert.settings import SettingsStore, change_entry

if TYPE_CHECKING:
    from vzdivert.supervisor.arbiter import Arbiter

log = logging.getLogger("vzdivert.supervisor")


def schema() -> dict[str, dict[str, Any]]:
    """What a UI needs to render and check each setting."""
    return {name: {"section": k.section, "type": k.type.__name__, "default": k.default,
                   "min": k.min, "max": k.max, "choices": list(k.choices or ()) or None,
                   "unit": k.unit, "help": k.help}
            for name, k in TUNABLES.items()}


class Commands:
    def __init__(self, arbiter: Arbiter, base_cfg: Config):
        self.arbiter, self.base_cfg = arbiter, base_cfg
        self.store = SettingsStore(base_cfg.state.dir)
        data = self.store.load()
        self.overrides: dict[str, Any] = data["settings"]
        self.changes: list[dict[str, Any]] = data["changes"]
        self.cfg = base_cfg.with_settings(self.overrides)
        self.handlers = {
            "status": self.status,
            "get_settings": self.get_settings,
            "set_settings": self.set_settings,
            "reset_settings": self.reset_settings,
            "alive": self.alive,
        }

    def alive(self, name: str) -> bool:
        return self.arbiter.child_alive(name)

    def status(self) -> dict[str, Any]:
        return {"processes": self.arbiter.processes(), "worker": self.arbiter.worker_state,
                "output_off_ok": self.arbiter.output_off_ok}

    def get_settings(self) -> dict[str, Any]:
        return {"settings": self.cfg.tunables(), "defaults": self.base_cfg.tunables(),
                "overrides": dict(self.overrides), "schema": schema(),
                "changes": self.changes[-20:]}

    def set_settings(self, settings: dict[str, Any], who: str = "api") -> dict[str, Any]:
        if not isinstance(settings, dict) or not settings:
            raise CommandError("settings must be a non-empty table of name: value")
        try:
            cfg = self.cfg.with_settings(settings)
        except ConfigError as exc:
            raise CommandError("invalid settings", exc.errors) from exc
        before = self.cfg.tunables()
        changed = {k: v for k, v in cfg.tunables().items() if before[k] != v}
        overrides = {**self.overrides, **{k: cfg.tunables()[k] for k in settings}}
        return self._commit(cfg, overrides, who, changed, before)

    def reset_settings(self, who: str = "api") -> dict[str, Any]:
        before = self.cfg.tunables()
        cfg = self.base_cfg
        changed = {k: v for k, v in cfg.tunables().items() if before[k] != v}
        return self._commit(cfg, {}, who, changed, before)

    def _commit(self, cfg: Config, overrides: dict[str, Any], who: str,
                changed: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
        """Persist first (a crash right after still keeps the change), then apply live."""
        changes = self.changes + ([change_entry(who, changed, before)] if changed else [])
        self.store.save(overrides, changes)
        self.cfg, self.overrides, self.changes = cfg, overrides, changes[-50:]
        if changed:
            log.info("settings changed by %s: %s", who,
                     ", ".join(f"{k}={v!r}" for k, v in changed.items()))
        applied = True
        try:
            self.arbiter.worker_call("apply_settings", settings=cfg.tunables())
        except CommandError as exc:  # saved; a restarted worker reads it at start
            applied = False
            log.warning("settings saved but not applied live: %s", exc)
        return {**self.get_settings(), "applied": applied}
