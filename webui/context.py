"""What every route group shares: the config, the live feed, the supervisor's command
socket and the guard, plus the two things routes do with them (the state document, a
supervisor command whose failure becomes an HTTP error)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vzdivert import bus
from vzdivert.config import Config
from vzdivert.webui.feed import Feed
from vzdivert.webui.guard import Guard
from vzdivert.webui.jsonhttp import fail
from vzdivert.webui.payload import state_payload


class SupervisorClient:
    """The supervisor's command socket shared by the server threads (REQ is lockstep, so
    one call at a time)."""

    def __init__(self, requester: bus.Requester):
        self.requester = requester
        self.lock = threading.Lock()

    def call(self, cmd: str, **args: Any) -> Any:
        with self.lock:
            return self.requester.call(cmd, **args)


@dataclass
class UI:
    cfg: Config
    feed: Feed
    supervisor: SupervisorClient
    guard: Guard
    clock: Callable[[], float]
    start_settings: dict[str, Any] = field(init=False)
    silent_after_s: float = field(init=False)

    def __post_init__(self) -> None:
        self.start_settings = self.cfg.tunables()
        self.silent_after_s = max(3.0, 2 * self.cfg.supervisor.hang_after_s)

    def current_state(self) -> dict[str, Any]:
        feed = self.feed
        ages = {name: feed.age_s(name) for name in ("state", "health", "ingest_stats")}
        return state_payload(feed.state, feed.health, feed.ingest_stats, ages,
                             self.silent_after_s, self.start_settings)

    def call_supervisor(self, cmd: str, **args: Any) -> Any:
        """A supervisor command; silence becomes 503, a refusal 422 with the reasons and,
        for invalid values, ``fields``: {setting: problem}."""
        try:
            return self.supervisor.call(cmd, **args)
        except bus.CommandError as exc:
            if exc.code == bus.NO_ANSWER:
                raise fail(503, f"supervisor unavailable: {exc}") from exc
            raise fail(422, *exc.errors, code=exc.code, fields=exc.problems) from exc
