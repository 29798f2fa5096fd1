"""The diverter's control law: feed-forward from the power we command, robust to a meter
that reports up to `max_delay_samples` late, with saturation (thermostat) detection. Pure:
one `step(grid_w, dt_s)` per reading, no clock, no I/O, no allocation per step.

Why it looks like this:
- Feed-forward: we know what we command, so each reading gives the surplus directly:
  surplus = commanded_w - grid_w + target_w. Commanding that surplus is deadbeat. Because
  the estimate is recomputed from the command actually applied (back-calculation), the
  implicit integral cannot wind up at 0 % or 100 %, and a rating error only scales the next
  correction (it is an integrator with gain 1/rating per sample, which is what absorbs
  rating and curve errors).
- Meter delay: a reading reflects the command of this interval, of an earlier one, or an
  average of them. Every such mixture is consistent with the reading, so the surplus lies
  in an interval; we take its point closest to the previous estimate (the smallest change
  of the world that explains the data). With steady commands the interval is a point and
  the estimate exact; right after a change, a change that has not reached the meter yet is
  never counted twice. Deadbeat, without oscillation, for 0 and 1 sample of delay. When
  the data show that the meter has no delay (the surplus computed with the newest command
  is the smoother one: the wrong assumption carries our own moves), we use the newest end
  and save the extra reading, until the data show a delay as clearly (a household step
  split over two readings looks like a delay for one reading; at first, the interval).
  When they show a whole reading of delay as clearly (the newest end rougher, and the
  half-way point too, which a meter averaging both readings would make the smoothest),
  we use the older end: inside the interval, on a textured cloud edge after our lead, the
  point nearest the last estimate stood still while the edge went on.
- Saturation (thermostat open, load unplugged) cannot be told from the surplus rising just
  as fast as we raise the command, so we test, cheaply, when it is plausible: when the
  export jumps by about the power we command (what an opening thermostat looks like), our
  next big raise is checked at the meter; at 100 % with export, a short dip probes it
  (backing off up to 16x `probe_every_s`). A move the meter does not see => `saturated`:
  the command then follows the surplus as if the load drew it, so a closing thermostat
  meets the right power (no burst); the closing is recognised by the reading moving by the
  commanded power (within 15 %: a learned rating lags a drifting mains voltage), or by a
  big move that the meter sees.
- Ramps (cloud edges): the surplus moves on while our command travels to the meter; on
  three consistent increments, each above the surplus's jitter per reading (household
  noise wanders over seconds and often agrees three times), we lead by the increment over
  the delay window (the smallest one when that window spans seconds: the S-shaped edge is
  slowing by then). When that window spans seconds and three increments of one sign are
  each well above the surplus's jitter (a cloud edge, not household noise), the lead
  follows the edge's S shape instead: from the increments' own curvature, accelerating
  early, stopping at the edge's end, never further than the edge has come (so not past a
  step's end), and only where they have an S's shape (not a dip in the middle). A rating
  off by a share e puts e x each of our moves into the surplus estimate, as if the sun
  moved: while the rating is in doubt (`rating_doubt`, from the learner), each increment
  is led on only as far as it stands under every plausible rating (a load drawing 0.7x
  led on its own moves past a falling edge's end and rang). A jump of the export by the
  commanded power is tested only once it holds for a reading: a rising edge can match it
  in size, but it rises on.
- Time constants and the slew limit are in seconds, so 0.25 s, 1 s or 2 s data give the
  same behaviour in time; deadbeat is as fast as the data allow at any rate."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from vzdivert.config import TUNABLES
from vzdivert.rtworker.curves import clamp

_ARM_TOLERANCE = 0.2  # a jump within 20 % of the commanded power may be the thermostat
_MAX_BACKOFF = 16
_SATURATED_PROBE_S = 30.0  # while saturated a dip costs nothing, unless it meets the closing
_LAG_TAU_S = 60.0  # evidence about the meter's delay fades with this
_EVIDENCE_TAU_S = 10.0  # evidence that saturation was misjudged fades with this
_TRUST_STEPS = 2  # openings the meter showed as a step in a row before dips grow rare
_TRUSTED_TOLERANCE = 0.35  # a jump within this of the commanded power is tested then
_RAMP_SLOWING_S = 2.0  # a ramp lead over longer than this meets a cloud edge slowing down
_LEAD_JITTER = 1.0  # a ramp is led only on increments each this many times the jitter ...
_LEAD_JITTER_LONG = 1.5  # ... or this many where the lead spans seconds (n x increment)
_EDGE_JITTER = 8.0  # increments this many times the surplus's jitter are a cloud edge
_CLOSING_TOLERANCE = 0.15  # a closing shows as a rise by the commanded power within this
# share (with the saturation test's size): a rating that lags the mains voltage (+-10 % in
# volts, +-20 % in power over an hour) is 10-15 % off; at 0.1 such closings were missed and
# the probing dips met them, exporting the load's power for two readings each


_DEFAULTS = {name: key.default for name, key in TUNABLES.items()}


@dataclass(frozen=True)
class ControlParams:
    """The law's settings; meanings, ranges and defaults are the schema's (vzdivert.config),
    so each default exists once."""

    target_w: float = _DEFAULTS["target_w"]
    rating_w: float = _DEFAULTS["rating_w"]
    response_up_s: float = _DEFAULTS["response_up_s"]
    response_down_s: float = _DEFAULTS["response_down_s"]
    deadband_w: float = _DEFAULTS["deadband_w"]
    slew_w_per_s: float = _DEFAULTS["slew_w_per_s"]
    max_delay_samples: int = _DEFAULTS["max_delay_samples"]
    saturation_w: float = _DEFAULTS["saturation_w"]
    probe_every_s: float = _DEFAULTS["probe_every_s"]
    ramp_lead: float = _DEFAULTS["ramp_lead"]

    def __post_init__(self) -> None:
        problems = [name for name, ok in (
            ("rating_w", self.rating_w > 0), ("response_up_s", self.response_up_s >= 0),
            ("response_down_s", self.response_down_s >= 0), ("deadband_w", self.deadband_w >= 0),
            ("slew_w_per_s", self.slew_w_per_s >= 0),
            ("max_delay_samples", 0 <= self.max_delay_samples <= 8),
            ("saturation_w", self.saturation_w > 0), ("probe_every_s", self.probe_every_s >= 0),
            ("ramp_lead", self.ramp_lead >= 0),
        ) if not ok]
        if problems:
            raise ValueError(f"invalid control parameters: {', '.join(problems)}")


def params_from_config(cfg: Any) -> ControlParams:
    """ControlParams from a vzdivert.config.Config (`[control]` and `[load] rating_w`)."""
    ctl = cfg.control
    names = {f.name for f in fields(ControlParams)} - {"rating_w"}
    return ControlParams(rating_w=cfg.load.rating_w,
                         **{n: getattr(ctl, n) for n in names if hasattr(ctl, n)})


def _shrink(d: float, by: float) -> float:
    """d moved towards 0 by `by` (>= 0), not past it."""
    return d - by if d > by else d + by if d < -by else 0.0


def _edge_ahead(d0: float, d1: float, d2: float, n: int) -> float:
    """Where an S-shaped edge will be n readings on, from its last three increments
    (newest first, one sign): a sampled half sine obeys d[k+1] = 2 c d[k] - d[k-1] with
    c = cos(its phase step), so c comes from the three and the recurrence runs on until
    the edge stops (an increment changes sign). Never more than it has covered so far:
    past the edge's middle what is left is less than that, and a step split over two
    readings is not followed far."""
    sign = 1.0 if d0 > 0.0 else -1.0
    a0, a1, a2 = sign * d0, sign * d1, sign * d2
    c = min(1.0, (a0 + a2) / (2.0 * a1))
    ahead, prev, cur = 0.0, a1, a0
    for _ in range(n):
        nxt = 2.0 * c * cur - prev
        if nxt <= 0.0:
            break
        ahead += nxt
        prev, cur = cur, nxt
    return sign * min(ahead, a0 + a1 + a2)


class Controller:
    """Grid power in, power fraction (0..1) out. For the UI: `command_w`, `surplus_w` (the
    estimate), `saturated` (the load draws nothing whatever we command). `surplus_seen_w` is
    the estimate without the ramp lead: what the meter has shown, for judging steps (the
    lead is a forecast that jumps ahead on a sun edge and then stands: a step's shape)."""

    def __init__(self, params: ControlParams) -> None:
        self.params = params
        n = params.max_delay_samples + 1
        self._hist = [0.0] * (2 * n)  # commands, newest first (W); [0:n] may show in a reading
        self._soff = [0.0] * (n + 2)  # surplus if the load drew nothing, newest first
        # the meter's delay is the meter's property: its evidence and the decision on it are
        # kept over resets
        self._lag_ev = 0.0  # > 0: the meter shows the newest command
        self._full_ev = 0.0  # > 0: the meter shows the oldest command, not a mixture
        self._no_delay = False  # what `_meter_end` decided from the evidence (with hysteresis)
        self.reset()
        self.rating_doubt = 0.0  # the rating may be off by this fraction (the learner's say)
        self._trust = 0  # thermostat openings in a row the meter showed as a step (the
        # load's property: kept over resets)

    # -- public ------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the past (after stale data): the output restarts from 0."""
        for buf in (self._hist, self._soff):
            for i in range(len(buf)):
                buf[i] = 0.0
        self.command_w = 0.0
        self.surplus_w = self.surplus_seen_w = 0.0
        self.saturated = False
        self._s_on: float | None = None  # surplus estimate if the load follows the command
        self._test_left = 0              # readings left for a pending test; 0 = none
        self._ref_soff = 0.0             # surplus-if-off when the test started ...
        self._ref_lo = self._ref_hi = 0.0  # ... and the commands that reading reflected
        self._probe_left = 0             # readings left of a probing dip
        self._probe_s = 0.0              # time towards the next probe
        self._backoff = 1
        self._jump_test = False  # the pending test was started by a jump of the right size
        self._jump = (0.0, 0.0)  # the surplus-if-off before it and the fraction held then
        self._jump_seen: tuple[float, ...] | None = None  # a jump not yet tested (as
        # _jump, then what _start_test takes): the export must hold at its new level for a
        # reading first, which an opening does and a rising cloud edge does not
        self.opened: tuple[float, float] | None = None  # set by the step that found an
        # opening from such a jump: (jump W, fraction), for the rating estimate
        self._ramp_hist = [0.0] * 4
        self._seen_hist = [0.0] * 4  # the command each of those estimates took as shown
        self._jitter_w = 0.02 * self.params.rating_w
        self._fresh = True  # the first big move after a (re)start is checked too
        self._evidence = 0.0
        self._s_new: float | None = None
        self._s_old = 0.0

    def update_params(self, params: ControlParams) -> None:
        """Take new parameters without a bump: the output fraction stays where it is and
        the estimates carry on (a new target moves the output, as it should)."""
        old = self.params
        if params.rating_w != old.rating_w:  # same fraction, so the same physical power
            scale = params.rating_w / old.rating_w
            for i in range(len(self._hist)):
                self._hist[i] *= scale
            self._ref_lo *= scale
            self._ref_hi *= scale
            self.command_w = self._hist[0]
        n = params.max_delay_samples + 1
        for buf, size in ((self._hist, 2 * n), (self._soff, n + 2)):
            while len(buf) < size:
                buf.append(buf[-1])
            del buf[size:]
        self.params = params

    @property
    def maybe_late(self) -> bool:
        """Nothing in the data leans towards a meter without delay (the evidence that
        decides it is not above zero): it may report late."""
        return self.params.max_delay_samples > 0 and self._lag_ev <= 0.0

    def step(self, grid_w: float, dt_s: float) -> float:
        """One reading (W, + = import) after dt_s seconds; returns the power fraction 0..1."""
        p = self.params
        hist, soff = self._hist, self._soff
        rating = p.rating_w
        self.opened = None
        if not -1e9 < grid_w < 1e9:  # NaN or absurd: nothing to learn, hold the output
            return hist[0] / rating
        dt = dt_s if 1e-3 < dt_s < 3600.0 else 1e-3 if not dt_s >= 3600.0 else 3600.0
        n = p.max_delay_samples + 1
        s_off = p.target_w - grid_w
        soff.pop()
        soff.insert(0, s_off)
        lo_cmd = hi_cmd = hist[0]
        for i in range(1, n):  # the reading reflects some mixture of these commands
            c = hist[i]
            lo_cmd = c if c < lo_cmd else lo_cmd
            hi_cmd = c if c > hi_cmd else hi_cmd
        lo_on, hi_on = lo_cmd + s_off, hi_cmd + s_off
        s_on = 0.5 * (lo_on + hi_on) if self._s_on is None else clamp(self._s_on, lo_on, hi_on)
        lead_n = n
        end = self._meter_end(hist[0] + s_off, hist[n - 1] + s_off, dt, not self.saturated)
        if end == 0:
            s_on = hist[0] + s_off  # the meter shows our latest command already
            lead_n = 1
        elif end is not None:
            s_on = hist[end] + s_off  # ... or the one a full delay ago

        was_saturated = self.saturated
        seen, self._jump_seen = self._jump_seen, None  # a jump waits one reading
        if self._test_left:
            self._judge(s_off, lo_cmd, hi_cmd)
        if self.saturated:
            s_on = self._closing(s_on, lo_on, hi_on)
            if self.saturated and self._s_on is not None:
                self._misjudged(abs(s_on - self._s_on), abs(s_off - soff[1]), dt)
        elif not self._test_left and self._fresh:
            self._start_test(s_off, lo_cmd, hi_cmd)  # is anything connected at all?
        elif not self._test_left and seen is not None and \
                abs(s_off - soff[1]) <= 0.5 * _ARM_TOLERANCE * seen[1] * rating:
            self._start_test(*seen[2:])  # the export holds at its new level: test from
            self._jump = seen[:2]        # where the jump was seen
            self._jump_test = True
            self._probe_s = math.inf  # at 100 % only a dip can answer: probe now
        elif not self._test_left and self._sharp_jump(hist, n):
            self._jump_seen = (soff[n], hist[n] / rating, s_off, lo_cmd, hi_cmd)
        self._fresh = False
        if self.saturated and not was_saturated:  # our own drop to the surplus: next test
            self._start_test(s_off, lo_cmd, hi_cmd)
            self._evidence = 0.0
        self._s_on = s_on
        if self.saturated:  # follow the surplus up at once, down only once it is sure
            surplus = soff[0]
            for i in range(1, n):
                surplus = soff[i] if soff[i] > surplus else surplus
            self.surplus_seen_w = surplus
        else:
            self.surplus_seen_w = s_on
            surplus = s_on + self._ramp(s_on, s_on - s_off, lead_n, dt)
        self.surplus_w = surplus

        u = hist[0]
        want = self._probe(clamp(surplus, 0.0, rating), u, s_off, lo_cmd, hi_cmd, dt)
        move = want - u
        if abs(move) <= p.deadband_w and self._probe_left == 0:
            move = 0.0
        tau = p.response_up_s if move > 0 else p.response_down_s
        if tau > 0.0:
            move *= 1.0 - math.exp(-dt / tau)
        if p.slew_w_per_s > 0.0:
            move = clamp(move, -p.slew_w_per_s * dt, p.slew_w_per_s * dt)
        new = clamp(u + move, 0.0, rating)
        hist.pop()
        hist.insert(0, new)
        self.command_w = new
        return new / rating

    def _meter_end(self, s_new: float, s_old: float, dt: float, learn: bool) -> int | None:
        """Which of our commands the reading shows: 0, the newest (no delay); 1, the one a
        reading before (a whole reading late, judged with one reading of delay allowed); or
        None, some mixture (the interval). The surplus computed with the right assumption is
        the smoother one: the wrong one carries our own moves (which only show while the
        load draws: no learning while saturated)."""
        one_late = self.params.max_delay_samples == 1
        if self._s_new is not None and learn:
            fade = math.exp(-dt / _LAG_TAU_S)
            limit = 4.0 * self.params.saturation_w
            ev = self._lag_ev * fade + abs(s_old - self._s_old) - abs(s_new - self._s_new)
            self._lag_ev = clamp(ev, -limit, limit)
            if one_late:
                # a meter a whole reading late against one that averages both (half a
                # delay): the surplus computed half-way between the assumptions carries
                # half our moves
                s_mid, mid_before = 0.5 * (s_new + s_old), 0.5 * (self._s_new + self._s_old)
                ev = self._full_ev * fade + abs(s_mid - mid_before) - abs(s_old - self._s_old)
                self._full_ev = clamp(ev, -limit, limit)
        self._s_new, self._s_old = s_new, s_old
        # decided with hysteresis: the answer changes only when the evidence says the other
        # thing as clearly. The second reading of a household step split over two, or of a
        # cloud edge speeding up, looks smoother with the wrong assumption, and answering
        # just that reading with the interval is where a meter without delay lost most of
        # what it saves
        sure = 2.0 * self.params.saturation_w
        if self._lag_ev >= sure:
            self._no_delay = True
        elif self._lag_ev <= -sure:
            self._no_delay = False
        if self._no_delay:
            return 0
        if one_late and -self._lag_ev >= sure and self._full_ev >= sure:
            return 1
        return None

    def _ramp(self, s_on: float, seen_w: float, n: int, dt: float) -> float:
        """On a steady ramp (clouds) the surplus will have moved on by the time our command
        shows: lead by the ramp's increment over the delay window; a big edge seen seconds
        apart by where its S shape goes (`_edge_ahead`)."""
        h = self._ramp_hist
        h.pop()
        h.insert(0, s_on)
        c = self._seen_hist
        c.pop()
        c.insert(0, seen_w)
        if self.params.ramp_lead <= 0.0:
            return 0.0
        d0, d1, d2 = h[0] - h[1], h[1] - h[2], h[2] - h[3]
        a0 = abs(d0)
        doubt = self.rating_doubt
        if doubt > 0.0:
            # a rating off by e puts e x our own move into the surplus estimate: our moves
            # would feed the lead. Lead only on what stands under every plausible rating
            d0 = _shrink(d0, doubt * abs(c[0] - c[1]))
            d1 = _shrink(d1, doubt * abs(c[1] - c[2]))
            d2 = _shrink(d2, doubt * abs(c[2] - c[3]))
        if a0 < 3.0 * self._jitter_w:  # the surplus's own jitter per reading: what is small
            self._jitter_w = max(1.0, self._jitter_w + 0.02 * (a0 - self._jitter_w))
        lo = min(d0, d1, d2)
        hi = max(d0, d1, d2)
        smallest = min(abs(d0), abs(d1), abs(d2))
        long_lead = n * dt > _RAMP_SLOWING_S
        # (an S's increments rise, then fall: a middle one below both neighbours is the
        # cloud's texture, which the fit took for an edge still accelerating)
        if long_lead and (lo > 0.0 or hi < 0.0) and smallest >= _EDGE_JITTER * self._jitter_w \
                and abs(d1) >= min(abs(d0), abs(d2)):
            # a cloud edge under way, seen readings seconds apart: follow its S shape (it
            # accelerates, then slows), which leads early and stops at its end
            # (over the delay window once the meter has shown its delay: leading a meter
            # without one by two readings went past the edge)
            ahead = _edge_ahead(d0, d1, d2, n if self._lag_ev < 0.0 else 1)
            return self.params.ramp_lead * ahead
        # three agreeing increments within the surplus's jitter are household noise (it
        # wanders over seconds), not a ramp: leading on them passes the noise on n-fold
        if smallest < (_LEAD_JITTER_LONG if long_lead else _LEAD_JITTER) * self._jitter_w:
            return 0.0
        if lo > 0.0 and lo >= 0.5 * hi or hi < 0.0 and hi <= 0.5 * lo:
            # cloud edges are S-shaped: three agreeing increments of readings seconds apart
            # and a lead over seconds reach the slowing end, so lead by the smallest one
            # there (the median overshot the end by ~0.5 kW at 2 s readings, one late)
            inc = (lo if lo > 0.0 else hi) if long_lead else d0 + d1 + d2 - lo - hi
            return self.params.ramp_lead * n * inc
        return 0.0

    # -- saturation ----------------------------------------------------------------------
    def _start_test(self, s_off: float, lo_cmd: float, hi_cmd: float) -> None:
        self._jump_test = False
        self._jump = (0.0, 0.0)
        self._ref_soff, self._ref_lo, self._ref_hi = s_off, lo_cmd, hi_cmd
        self._test_left = 4 * (self.params.max_delay_samples + 1)

    def _judge(self, s_off: float, lo_cmd: float, hi_cmd: float) -> None:
        """Once our commands differ from those at the test's start by saturation_w for
        sure, did the meter see it? If the load draws, the surplus-if-off moved by the
        difference; if it draws nothing, it stayed."""
        sat = self.params.saturation_w
        if lo_cmd - self._ref_hi < sat and self._ref_lo - hi_cmd < sat:
            self._test_left -= 1  # not far enough apart yet
            return
        self._test_left = 0
        ref = self._ref_soff
        pred_lo, pred_hi = ref - (hi_cmd - self._ref_lo), ref - (lo_cmd - self._ref_hi)
        miss_on = pred_lo - s_off if s_off < pred_lo else s_off - pred_hi if s_off > pred_hi \
            else 0.0
        alive = miss_on < 2.0 * abs(s_off - ref)  # a load drawing 0.5x its rating is alive
        if alive == self.saturated:
            # an opening the meter showed as a step of the load's power adds trust; an
            # opening or closing that only a test found takes it all
            self._trust = self._trust + 1 if not alive and self._jump_test else 0
            if not alive and self._jump_test:
                self.opened = (ref - self._jump[0], self._jump[1])
            self.saturated = not alive
            self._probe_left = 0
            self._probe_s = 0.0
            if not self._trusted():
                self._backoff = 1
        elif alive:
            self._backoff = min(2 * self._backoff, _MAX_BACKOFF)

    def _sharp_jump(self, hist: list[float], n: int) -> bool:
        """The export rose sharply (within n readings, after a steady one) by about the
        power steadily commanded before: what a thermostat opening looks like. Cloud edges
        take longer and rarely match."""
        before = hist[n]
        if before < self.params.saturation_w:
            return False
        for i in range(n + 1, len(hist)):
            if abs(hist[i] - before) > 0.1 * before:
                return False
        soff = self._soff
        # once the steps have proven themselves (no dips then), one the size of the load's
        # power within 35 % is tested, so a rating that lags the mains voltage still sees it
        tolerance = _TRUSTED_TOLERANCE if self._trusted() else _ARM_TOLERANCE
        return (abs(soff[0] - soff[n] - before) <= tolerance * before
                and abs(soff[n] - soff[n + 1]) <= 0.5 * _ARM_TOLERANCE * before)

    def _steady(self, tolerance_w: float) -> bool:
        soff = self._soff
        for i in range(1, len(soff)):
            if abs(soff[i] - soff[0]) > tolerance_w:
                return False
        return True

    def _misjudged(self, cost_on: float, cost_off: float, dt: float) -> None:
        """While saturated the command follows the surplus-if-off. If the load does draw
        after all, that loop swings: the surplus-if-off jumps about while the surplus-if-on
        stays calm. Collect that difference (W); enough of it ends saturation."""
        ev = self._evidence * math.exp(-dt / _EVIDENCE_TAU_S) + cost_off - cost_on
        self._evidence = ev if ev > 0.0 else 0.0
        if ev >= 2.0 * self.params.saturation_w:
            self._trust = 0
            self.saturated = False
            self._test_left = 0

    def _closing(self, s_on: float, lo_on: float, hi_on: float) -> float:
        """While saturated: has the load come back on with the surplus unchanged? Then the
        reading rose by the commanded power relative to an earlier reading."""
        soff = self._soff
        sat = self.params.saturation_w
        # at full output the step is the load's whole power: told from household steps by
        # its size within 30 %, so a rating that lags the mains voltage still sees it
        full = lo_on - soff[0] >= self.params.rating_w * (1.0 - 1e-9)
        for i in range(1, len(soff) - 1):
            before = soff[i]
            moved = abs(soff[0] - before)
            off_by = lo_on - before if before < lo_on else before - hi_on if before > hi_on \
                else 0.0
            tolerance = _CLOSING_TOLERANCE * (moved + sat)
            if full and before > soff[0]:
                tolerance = max(tolerance, 0.3 * moved)
            if moved >= 0.5 * sat and off_by < tolerance:
                self.saturated = False
                self._test_left = 0
                return clamp(before, lo_on, hi_on)
        return s_on

    def _probe(self, want: float, u: float, s_off: float, lo_cmd: float, hi_cmd: float,
               dt: float) -> float:
        """Dip by saturation_w until the test is judged, when more command cannot show
        whether the load draws: at 100 % with export after probe_every_s (doubling while
        the load answers, at once after a sharp jump), and every 30 s while saturated
        (free then: the load draws nothing, unless it comes back during the dip)."""
        p = self.params
        sat = p.saturation_w
        if self._probe_left > 0 and self._test_left:
            self._probe_left -= 1
            return min(want, self._ref_lo - sat)
        self._probe_left = 0
        full = self._trusted() and u >= p.rating_w
        if self.saturated:  # at full output a closing shows as a step of the load's power
            every = p.probe_every_s * _MAX_BACKOFF if full else \
                min(p.probe_every_s, _SATURATED_PROBE_S)
            eligible = want >= sat and u >= sat
        else:  # ... and an opening too, once the meter showed a few of them so
            every = p.probe_every_s * (_MAX_BACKOFF if full else self._backoff)
            eligible = u >= p.rating_w and want >= p.rating_w and s_off >= sat
        if p.probe_every_s <= 0.0 or not eligible:
            self._probe_s = 0.0 if not self._test_left else self._probe_s
            return want
        self._probe_s += dt
        if self._probe_s < every or not self._steady(0.5 * sat):
            return want  # a moving surplus could hide the answer: wait for a quiet moment
        self._probe_s = 0.0
        if not self._test_left:
            self._start_test(s_off, lo_cmd, hi_cmd)
        elif self._jump_test:  # the jump may have been split over two readings when it
            # started the test, and the command held since: measure from the level it reached
            self._ref_soff, self._ref_lo, self._ref_hi = s_off, lo_cmd, hi_cmd
            self._test_left = 4 * (p.max_delay_samples + 1)
        self._probe_left = self._test_left
        return min(want, self._ref_lo - sat)

    def _trusted(self) -> bool:
        """The meter showed the last thermostat openings as steps (a test confirmed each):
        at full output the steps themselves tell openings and closings, dips are rare."""
        return self._trust >= _TRUST_STEPS

    def applied(self, command_w: float) -> None:
        """The loads took ``command_w`` instead of the last command (a relay held on by its
        minimum on-time, a load that is not available): remember what really went out, so
        the surplus estimate stays true and nothing winds up."""
        self._hist[0] = self.command_w = clamp(command_w, 0.0, self.params.rating_w)
