"""The supervisor's REQ/REP commands, one table (circus-style): each command is a function
that gets the arbiter per call, so this module never imports it. Every name here is listed
in ``bus.ENDPOINTS["supervisor"]`` (tests/test_bus.py checks)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vzdivert.bus import CommandError

if TYPE_CHECKING:
    from vzdivert.supervisor.arbiter import Arbiter

log = logging.getLogger("vzdivert.supervisor")


def status(arbiter: Arbiter) -> dict[str, Any]:
    return {"processes": arbiter.processes(), "worker": arbiter.worker_state,
            "output_off_ok": arbiter.output_off_ok}


def alive(arbiter: Arbiter, name: str) -> bool:
    """A heartbeat by command, from a child without a stream (the web UI)."""
    return arbiter.child_alive(name)


def get_settings(arbiter: Arbiter) -> dict[str, Any]:
    return arbiter.settings.view()


def set_settings(arbiter: Arbiter, settings: dict[str, Any], who: str = "api") -> dict[str, Any]:
    arbiter.settings.change(settings, who)
    return applied(arbiter)


def reset_settings(arbiter: Arbiter, who: str = "api") -> dict[str, Any]:
    arbiter.settings.reset(who)
    return applied(arbiter)


def applied(arbiter: Arbiter) -> dict[str, Any]:
    """Hand the (already persisted) settings to the worker; ``applied`` says whether it took
    them now or gets them when it next starts."""
    ok = True
    try:
        arbiter.worker_call("apply_settings", settings=arbiter.settings.cfg.tunables())
    except CommandError as exc:
        ok = False
        log.warning("settings saved but not applied live: %s", exc)
    return {**arbiter.settings.view(), "applied": ok}


HANDLERS: dict[str, Callable[..., Any]] = {
    "status": status,
    "get_settings": get_settings,
    "set_settings": set_settings,
    "reset_settings": reset_settings,
    "alive": alive,
}
