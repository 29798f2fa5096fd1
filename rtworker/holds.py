"""Holds on a load: something outside the control loop (calibration's manual duty, the
hot-water modes, the tank limit) fixes a load's level for a while. Each ends by itself (the
tank limit's when the tank allows), so a client that dies cannot leave a load on. Pure: the
clock is passed in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter


@dataclass(frozen=True)
class Hold:
    kind: str              # "manual", ... : one hold of each kind per load
    level: float           # duty (or relay level) the load is held at; 0 = off
    until_mono: float      # ends by itself at this monotonic time
    reason: str = ""       # shown in the UI while the hold is on
    ends_on_stale: bool = True  # stale data end it at once (every output goes to 0 anyway)
    freezes_control: bool = True  # the controller pauses while it holds (calibration)


_LEVEL = attrgetter("level")


class Holds:
    """The active holds by load name. When several hold one load the lowest level wins:
    an "off" (pause, tank too hot) always beats an "on" (boost, manual)."""

    def __init__(self) -> None:
        self._by_load: dict[str, dict[str, Hold]] = {}

    def put(self, load: str, hold: Hold) -> None:
        self._by_load.setdefault(load, {})[hold.kind] = hold

    def put_all(self, loads: Iterable[str], hold: Hold) -> None:
        for load in loads:
            self.put(load, hold)

    def clear(self, load: str, kind: str) -> Hold | None:
        return self._by_load.get(load, {}).pop(kind, None)

    def clear_all(self, loads: Iterable[str], kind: str) -> None:
        for load in loads:
            self.clear(load, kind)

    def get(self, load: str, kind: str) -> Hold | None:
        return self._by_load.get(load, {}).get(kind)

    def active(self, load: str) -> Hold | None:
        """The hold that decides this load's level, or None (the controller decides)."""
        holds = self._by_load.get(load)
        if not holds:
            return None
        return min(holds.values(), key=_LEVEL)

    def freezing(self) -> bool:
        """A hold that pauses the controller is on (a fixed load would fool its estimate)."""
        return any(h.freezes_control for holds in self._by_load.values()
                   for h in holds.values())

    def next_expiry(self) -> float:
        return min((h.until_mono for holds in self._by_load.values() for h in holds.values()),
                   default=float("inf"))

    def expire(self, now: float) -> list[tuple[str, Hold]]:
        """Remove and return the holds whose time is up."""
        ended = [(load, h) for load, holds in self._by_load.items() for h in holds.values()
                 if now >= h.until_mono]
        for load, hold in ended:
            del self._by_load[load][hold.kind]
        return ended

    def end_on_stale(self) -> list[tuple[str, Hold]]:
        ended = [(load, h) for load, holds in self._by_load.items() for h in holds.values()
                 if h.ends_on_stale]
        for load, hold in ended:
            del self._by_load[load][hold.kind]
        return ended
