"""The daily guarantee, pure: given the clock, the settings and what the load has really
taken since the last deadline, decide whether to top up now. It tops up at full power at the
latest start that still makes the deadline, so any surplus arriving before then is used
first. No sockets, no clock reads: ``now`` (epoch seconds) and the time zone are passed in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

WH_PER_L_K = 4.186 / 3.6  # heating one litre of water by 1 K takes 1.163 Wh
MIN_MARGIN_S = 60.0
MARGIN_FRACTION = 0.25  # a cycling thermostat may pause the top-up: keep this much in hand
# a DS18B20 reads in 1/16 K steps with some noise: aim this far above a temperature goal so
# a reading that rounds up does not end a top-up a hair short
ALLOWANCE_K = 0.25


@dataclass(frozen=True)
class Goal:
    """What the guarantee asks for (the `[guarantee]` settings, plus the load and tank)."""

    by: str = ""                     # "HH:MM" local time; "" = off
    min_energy_wh: float = 0.0       # delivered to the load since the previous deadline
    min_c: float = 0.0               # tank temperature at the deadline; 0 = unused
    windows: tuple[str, ...] = ()    # "HH:MM-HH:MM" local: top up only inside these
    rating_w: float = 2000.0         # full power of the load
    volume_l: float = 150.0          # tank volume: energy per kelvin
    loss_w: float = 0.0              # tank standing loss near the goal temperature
    legionella_c: float = 0.0        # reach this at least every legionella_days; 0 = off
    legionella_days: int = 7

    @property
    def active(self) -> bool:
        return bool(self.by) and (self.min_energy_wh > 0 or self.min_c > 0
                                  or self.legionella_c > 0)


@dataclass
class Progress:
    """What the planner remembers between minutes (persisted by the process)."""

    deadline: float | None = None    # epoch of the deadline being worked for
    period_start_wh: float | None = None  # the worker's energy counter when the period began
    thermostat_open: bool = False    # the load stopped drawing at full power: tank full
    topping_up: bool = False         # latched once started, until met or the deadline
    last_legionella: float = 0.0     # epoch when the tank last reached legionella_c
    missing_wh: float = 0.0          # as last computed: > 0 at a roll-over = a missed day
    met: list[tuple[float, bool]] = field(default_factory=list)  # (deadline, met), recent


@dataclass(frozen=True)
class Plan:
    """The decision for this minute, and why (shown in the UI and /api/state)."""

    topup: bool
    power_w: float
    missing_wh: float
    deadline: float | None
    start_at: float | None          # the latest start (epoch), None when nothing is missing
    reason: str


def parse_hhmm(text: str) -> time:
    """'HH:MM' -> time; raises ValueError with the accepted form."""
    hh, sep, mm = text.partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit() or len(mm) != 2:
        raise ValueError(f"expected HH:MM, got {text!r}")
    if not (0 <= int(hh) <= 23 and 0 <= int(mm) <= 59):
        raise ValueError(f"expected HH:MM from 00:00 to 23:59, got {text!r}")
    return time(int(hh), int(mm))


def parse_window(text: str) -> tuple[time, time]:
    """'22:00-06:00' -> (start, end); a window may wrap past midnight."""
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"expected HH:MM-HH:MM, got {text!r}")
    a, b = parse_hhmm(start.strip()), parse_hhmm(end.strip())
    if a == b:
        raise ValueError(f"window {text!r} is empty")
    return a, b


def local_epoch(day: date, at: time, tz: tzinfo) -> float:
    """Epoch of a local wall time. A time skipped by a spring-forward change maps to the
    same offset as just before it (02:30 -> 03:30 summer time); a repeated autumn hour takes
    its first occurrence (fold 0)."""
    return datetime.combine(day, at, tzinfo=tz).timestamp()


def next_deadline(now: float, by: str, tz: tzinfo) -> float:
    """The first deadline strictly after ``now``."""
    at = parse_hhmm(by)
    today = datetime.fromtimestamp(now, tz).date()
    for offset in range(0, 3):
        t = local_epoch(today + timedelta(days=offset), at, tz)
        if t > now:
            return t
    raise AssertionError("no deadline within two days")  # pragma: no cover


def window_intervals(windows: tuple[str, ...], start: float, end: float,
                     tz: tzinfo) -> list[tuple[float, float]]:
    """The parts of [start, end] inside the windows, merged, in order (epoch seconds)."""
    if not windows:
        return [(start, end)]
    first = datetime.fromtimestamp(start, tz).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end, tz).date()
    spans = []
    for text in windows:
        a, b = parse_window(text)
        day = first
        while day <= last:
            t0 = local_epoch(day, a, tz)
            t1 = local_epoch(day + timedelta(days=1) if b <= a else day, b, tz)
            lo, hi = max(t0, start), min(t1, end)
            if hi > lo:
                spans.append((lo, hi))
            day += timedelta(days=1)
    spans.sort()
    merged: list[tuple[float, float]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def margin_s(duration_s: float) -> float:
    """Time kept in hand before the deadline: the larger of a minute and a quarter of the
    top-up (the issue's stated bound)."""
    return max(MIN_MARGIN_S, MARGIN_FRACTION * duration_s)


def latest_start(duration_s: float, now: float, deadline: float, windows: tuple[str, ...],
                 tz: tzinfo) -> float | None:
    """The latest time from which running at full power inside the windows still delivers
    ``duration_s`` plus the margin before the deadline; None when even starting now is too
    late (then: start now, it is the best that can be done)."""
    need = duration_s + margin_s(duration_s)
    for lo, hi in reversed(window_intervals(windows, now, deadline, tz)):
        if hi - lo >= need:
            return hi - need
        need -= hi - lo
    return None


def missing_wh(goal: Goal, delivered_wh: float, tank_c: float | None,
               legionella_due: bool, hours_left: float) -> float:
    """Energy still to put in before the deadline: the larger of the energy goal's rest and
    what heating the tank to the temperature goal takes, standing losses until the deadline
    included (0 for a temperature goal without a reading: the worker holds the load off
    then anyway)."""
    need = max(0.0, goal.min_energy_wh - delivered_wh)
    target_c = max(goal.min_c, goal.legionella_c if legionella_due else 0.0)
    if target_c > 0 and tank_c is not None:
        heat = (target_c + ALLOWANCE_K - tank_c) * goal.volume_l * WH_PER_L_K
        need = max(need, heat + goal.loss_w * hours_left)
    return max(0.0, need)


def legionella_due(goal: Goal, progress: Progress, deadline: float) -> bool:
    """Due when the tank will not have reached legionella_c within the last N days at the
    coming deadline."""
    if goal.legionella_c <= 0:
        return False
    return deadline - progress.last_legionella >= goal.legionella_days * 86400.0 - 3600.0


def plan(now: float, tz: tzinfo, goal: Goal, progress: Progress, energy_wh: float,
         tank_c: float | None, thermostat_open: bool) -> Plan:
    """One minute's decision; updates ``progress`` (period roll-over, latch, legionella).

    ``energy_wh`` is the worker's counter of energy the load really took (it stops while
    the load is seen not to draw); ``thermostat_open`` says the load refused power while it
    was driven at full power: the tank is full, the guarantee is met."""
    if not goal.active:
        progress.deadline, progress.topping_up = None, False
        return Plan(False, 0.0, 0.0, None, None, "guarantee off")
    if tank_c is not None and goal.legionella_c > 0 and tank_c >= goal.legionella_c:
        progress.last_legionella = now
    deadline = next_deadline(now, goal.by, tz)
    if progress.deadline != deadline:  # a new period (or the first): count from here
        if progress.deadline is not None and progress.deadline <= now:
            progress.met = (progress.met + [(progress.deadline, progress.missing_wh <= 0)])[-14:]
        progress.deadline, progress.period_start_wh = deadline, energy_wh
        progress.thermostat_open = progress.topping_up = False
    if progress.period_start_wh is None or energy_wh < progress.period_start_wh:
        progress.period_start_wh = energy_wh  # the counter was reset
    if thermostat_open:
        progress.thermostat_open = True
    delivered = energy_wh - progress.period_start_wh
    due = legionella_due(goal, progress, deadline)
    hours_left = (deadline - now) / 3600.0
    need = 0.0 if progress.thermostat_open else missing_wh(goal, delivered, tank_c, due,
                                                           hours_left)
    progress.missing_wh = need
    if need <= 0:
        progress.topping_up = False
        why = "met: the thermostat opened (tank full)" if progress.thermostat_open else "met"
        return Plan(False, 0.0, 0.0, deadline, None, why)
    duration_s = need / goal.rating_w * 3600.0
    start = latest_start(duration_s, now, deadline, goal.windows, tz)
    inside = any(lo <= now < hi for lo, hi in window_intervals(goal.windows, now, deadline, tz))
    if start is None or now >= start:
        progress.topping_up = True
    if progress.topping_up and inside:
        late = "" if start is not None else " (late: cannot finish before the deadline)"
        return Plan(True, goal.rating_w, need, deadline, start,
                    f"topping up {need:.0f} Wh{late}")
    when = "now" if start is None else datetime.fromtimestamp(start, tz).strftime("%H:%M")
    return Plan(False, 0.0, need, deadline, start,
                f"{need:.0f} Wh missing; top-up from {when} unless surplus covers it")
