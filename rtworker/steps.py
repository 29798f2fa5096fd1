"""Sharp steps in the surplus estimate that none of our moves explains. A relay whose own
thermostat opens while it is on shows as an export step of its rating (the estimate still
counts it as drawing); so does an appliance switching off or the sun coming out. Steps are
told apart here only by shape (a step within the meter's delay, steady before and after:
cloud edges take longer and wander) and by history: an export step of the size of an import
step seen not long before is that appliance going off again (a kettle, a washing machine's
heater, a cloud passing). What remains is a candidate; only switching the relay off can
confirm it (the allocator does that). The estimate pushed must be what the meter has shown:
a forecast that leads a ramp reaches the ramp's end early and stands there, a step's shape.
Pure: no clock, no I/O."""

from __future__ import annotations

STEP_TOLERANCE = 0.25  # a step within this share of a rating matches it
FLAT_SHARE = 0.15  # before and after a step the estimate moves less than this share of it
FLAT_BEFORE = 5  # ... for this many readings before it
FLAT_AFTER = 2  # ... and this many after it
PAIR_S = 1800.0  # an import step this recent pairs with an export step of its size
_KEEP_UPS = 8  # import steps remembered (the newest)


def matches(step_w: float, rating_w: float) -> bool:
    return abs(step_w - rating_w) <= STEP_TOLERANCE * rating_w


class StepWatch:
    """``push`` each surplus estimate; it returns a step (W, + = export) once the reading
    after it shows the new level held; ``moved`` after each switch of ours (our own moves
    are never steps); ``household`` records an import step no relay explains."""

    def __init__(self, readings: int, min_step_w: float):
        self.n = max(1, readings)  # readings a step takes to show fully (delay + 1)
        self.min_step_w = min_step_w
        self._hist: list[float] = []  # estimates, newest first
        self._quiet = 0  # readings since our last move (or the last step seen)
        # a step seen: (level before, level after, readings left to hold it, readings it
        # may still grow: a step that falls inside a meter interval shows over two)
        self._pending: tuple[float, float, int, int] | None = None
        self._ups: list[tuple[float, float]] = []  # (time, W) of household import steps

    def moved(self) -> None:
        """Our move is in the estimate (the PWM load took a relay's share), but its edges may
        not be: no step is looked for in a window that holds it. A step seen before it
        stands (the loads' answer to it does not move the estimate)."""
        self._quiet = 0

    def push(self, estimate_w: float, now: float) -> float | None:
        hist, n = self._hist, self.n
        hist.insert(0, estimate_w)
        del hist[n + FLAT_BEFORE + 1:]
        self._quiet += 1
        if self._pending is not None:
            before, level, left, grow = self._pending
            step = level - before
            self._pending = None
            if abs(estimate_w - level) <= FLAT_SHARE * abs(step):
                if left > 1:
                    self._pending = (before, level, left - 1, 0)
                else:
                    return None if step > 0 and self._paired(step, now) else step
            elif grow and (estimate_w - level) * step > 0:  # the rest of it arrives
                self._pending = (before, estimate_w, FLAT_AFTER, grow - 1)
            return None  # otherwise it did not hold: the weather
        if len(hist) <= n + FLAT_BEFORE or self._quiet <= n + FLAT_BEFORE:
            return None
        before = hist[n]
        step = hist[0] - before
        if abs(step) < self.min_step_w:
            return None
        flat = FLAT_SHARE * abs(step)
        for i in range(n + 1, len(hist)):
            if abs(hist[i] - before) > flat:
                return None  # it was moving before: a cloud edge, not a step
        # a step shows within n readings: it may grow on only by the readings of the window
        # it has not used yet (a rise that began in the window's older readings and goes on
        # growing is an edge)
        used = 1 + max((i for i in range(1, n) if abs(hist[i] - before) > flat), default=0)
        self._pending = (before, hist[0], FLAT_AFTER, n - used)
        self._quiet = 0  # the same step is not seen twice
        return None

    def rising_w(self) -> float:
        """How fast the estimate was rising over the last n readings (W a reading, >= 0):
        a rise at that pace after one of our switches is the sun's, not the load's."""
        hist = self._hist
        k = min(self.n, len(hist) - 1)
        return max(0.0, (hist[0] - hist[k]) / k) if k > 0 else 0.0

    def household(self, import_w: float, now: float) -> None:
        self._ups.append((now, import_w))
        del self._ups[:-_KEEP_UPS]

    def _paired(self, export_w: float, now: float) -> bool:
        """An appliance seen switching on goes off: forget its import step, not a
        candidate."""
        for i in range(len(self._ups) - 1, -1, -1):
            t, up = self._ups[i]
            if now - t <= PAIR_S and matches(export_w, up):
                del self._ups[i]
                return True
        return False
