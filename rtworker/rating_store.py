"""Keeps a load's learned rating across restarts: `[state] dir`/rating-<load>.json, written
atomically when the estimate has new data (at most every ``save_every_s``) and on a clean
stop. A file for another configured rating is ignored (the estimator starts afresh). The
relays' ratings (``load_learning.SwitchedRatings``) are kept the same way, in one file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from vzdivert.output import PWM_NAME
from vzdivert.persist import read_json, write_json

log = logging.getLogger("vzdivert.rtworker")


class Learned(Protocol):
    """What a store keeps: a `RatingEstimator` or a `SwitchedRatings`."""

    rating_w: float

    @property
    def observations(self) -> int: ...

    def to_state(self) -> dict[str, Any]: ...

    def load_state(self, data: Any) -> bool: ...


class RatingStore:
    def __init__(self, state_dir: str | Path, estimator: Learned,
                 load: str = PWM_NAME, save_every_s: float = 60.0):
        self.path = Path(state_dir) / f"rating-{load}.json"
        self.estimator = estimator
        self.save_every_s = save_every_s
        try:
            data = read_json(self.path)
        except (OSError, ValueError) as exc:  # unreadable: learn afresh, say so once
            log.warning("learned rating not restored (%s): learning afresh", exc)
            data = None
        if data is not None and estimator.load_state(data):
            log.info("learned rating restored: %.0f W (%d moves)", estimator.rating_w,
                     estimator.observations)
        self._saved = estimator.observations if data is not None else -1
        self._last_save = 0.0

    def tick(self, now_mono: float) -> None:
        """Cheap enough to call every loop."""
        if now_mono - self._last_save < self.save_every_s:
            return
        self._last_save = now_mono
        if self.estimator.observations != self._saved:
            self.save()

    def save(self) -> None:
        try:
            write_json(self.path, self.estimator.to_state())
            self._saved = self.estimator.observations
        except OSError as exc:  # never let a full disk stop the control loop
            log.warning("learned rating not saved: %s", exc)
