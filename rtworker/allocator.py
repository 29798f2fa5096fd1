"""Splits the power the controller wants between the loads: relay stages switch in priority
order, honouring their minimum on and off times, and the PWM load takes exactly the
remainder, so a relay step moves the PWM by the relay's rating in the same step and does not
show at the meter. A relay whose load does not draw (its thermostat is open) is seen in the
surplus estimate and skipped for a while: at its switch-on (the estimate rises by its
rating beyond the pace it rose at before), or while it is on (an export step of its rating
that nothing of ours explains, see ``steps``): it is switched off once its minimum on-time
allows, and if the estimate then falls back by its rating it did not draw. The optional
bypass bridges the PWM load's module after a long run at 100 %. Pure: no clock, no I/O.

The rules, with ``avail`` = the wanted power minus the relays before this one that are on:
- a relay before the PWM load (lower priority number) switches on at ``avail >= rating +
  margin`` and off below ``avail < rating`` (the PWM would have to go below 0: import);
- a relay after it switches on only when the PWM load alone would overflow by more than the
  margin (``avail > pwm_rating + margin``) and the relay fits with the margin to spare; off
  when it no longer fits or the PWM load could take everything with the margin to spare.
A rule must hold for ``on_after_s`` / ``off_after_s`` before a relay follows it (a leaky
count: brief flickers do not reset it, a cloud shorter than that is ridden through, with
the PWM load filling what it can); an import the relay causes counts with the square of
its share of the rating, so a big shortfall switches off sooner and a small one much
later. Minimum on/off times come on top. A relay also switches off early when the
shortfall is expected to last long enough to pay for the switch: each relay learns online
how long its shortfalls last (the weather's time scale: slow clouds, a long appliance
run), see ``_worth_off``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from vzdivert.rtworker.shortfall_length import ShortfallLength
from vzdivert.rtworker.steps import StepWatch, matches

NOT_DRAWING_SHARE = 0.6  # the estimate jumping by this share of a rating: it does not draw
JUMP_MAX_SHARE = 1.5  # ... but a jump beyond this share is the weather, not the relay
EPISODE_GAP_S = 10.0  # above the rating this long: a shortfall episode has ended
EPISODE_MEMORY = 8  # episodes the learned mean length mostly rests on
EPISODE_PRIOR_S = 60.0  # the mean length assumed before any episode was seen ...
EPISODE_PRIOR_WEIGHT = 1.0  # ... weighing as one episode
EPISODE_MAX_S = 1800.0  # a longer shortfall is the night or an overcast spell, not clouds:
                        # not learned (a 12 h night taught a mean of hours, and the next
                        # morning's every cloud switched the relay off: 28 switches an hour)
RETRY_NOT_DRAWING_S = 300.0  # a relay seen not drawing is tried again after this


@dataclass
class Relay:
    name: str
    rating_w: float
    min_on_s: float = 60.0
    min_off_s: float = 60.0
    priority: int = 0
    on: bool = False
    since: float = 0.0  # when it last switched (or the worker started: min_off counts)
    held: str = ""  # why it is not where the allocation wants it (min-on, min-off, ...)
    skip_until: float = -math.inf  # seen not drawing: off until then
    # switch-on check: the surplus estimate before, and readings left to watch
    _check_left: int = 0
    _check_base_w: float = 0.0
    _check_pace_w: float = 0.0  # how fast the estimate rose (W a reading) as it switched on
    _confirm_left: int = 0  # switched off on suspicion: readings left to confirm it
    _suspect: bool = False  # an export step of its rating while on: to be switched off
    _pressure_s: float = 0.0  # how long (weighted) the rule has wanted the other state
    # shortfall episodes (the wanted power below what this relay and those before it take,
    # whatever their state): when the current one began, when it last looked over, and
    # how long they last (the weather's time scale, learned online)
    _short_since: float | None = None
    _short_seen: float = -math.inf
    shortfalls: ShortfallLength = field(default_factory=lambda: ShortfallLength(
        EPISODE_PRIOR_S, EPISODE_PRIOR_WEIGHT, EPISODE_MEMORY))
    switches: int = 0

    @property
    def episode_mean_s(self) -> float:
        """The mean length of its shortfall episodes, as learned."""
        return self.shortfalls.mean_s


@dataclass
class Split:
    pwm_w: float = 0.0       # power for the PWM load (0 while bypassed)
    bypass: bool = False     # the bypass relay is closed (the PWM load runs at its rating)
    applied_w: float = 0.0   # what the loads take in total (for the controller)
    changed: list[str] = field(default_factory=list)  # relays switched in this step


class Allocator:
    def __init__(self, pwm_rating_w: float, relays: list[Relay], now: float,
                 pwm_priority: int = 0, margin_w: float = 100.0,
                 bypass_after_s: float | None = None, check_readings: int = 2,
                 on_after_s: float = 0.0, off_after_s: float = 0.0):
        self.pwm_rating_w = pwm_rating_w
        self.relays = relays
        self.pwm_priority = pwm_priority
        self.margin_w = margin_w
        self.bypass_after_s = bypass_after_s  # None: no bypass
        self.check_readings = check_readings
        self.on_after_s, self.off_after_s = on_after_s, off_after_s
        self._last_now = now
        self.bypass = False
        self.bypass_since = now
        self.bypass_rating_w: float | None = None  # what the bypass draws (None: the rating)
        self._surplus_w = 0.0  # the controller's estimate at the last observe()
        self.full_since: float | None = None  # the PWM load at 100 % since then
        smallest = min((r.rating_w for r in relays), default=math.inf)
        self._steps = StepWatch(check_readings, (1 - 0.25) * smallest)
        for relay in relays:
            relay.on, relay.since = False, now
        # stable: the PWM load first among equal priorities, relays in file order
        self._before_pwm = [r for r in relays if r.priority < pwm_priority]
        self._after_pwm = [r for r in relays if r.priority >= pwm_priority]
        self._before_pwm.sort(key=lambda r: r.priority)
        self._after_pwm.sort(key=lambda r: r.priority)

    @property
    def capacity_w(self) -> float:
        return self.pwm_rating_w + sum(r.rating_w for r in self.relays)

    def all_off(self, now: float) -> None:
        """The safe state: every relay and the bypass open (min-on does not hold here)."""
        for relay in self.relays:
            if relay.on:
                relay.on, relay.since = False, now
                relay.switches += 1
            relay._check_left = relay._confirm_left = 0
            relay._suspect = False
        self._steps.moved()
        if self.bypass:
            self.bypass, self.bypass_since = False, now
        self.full_since = None

    def split(self, want_w: float, now: float, forced: dict[str, bool] | None = None,
              pwm_available: bool = True, frozen: bool = False) -> Split:
        """Share ``want_w`` out. ``forced``: relays a hold switches on (True) or off (False);
        ``pwm_available``: False while a hold keeps the PWM load off; ``frozen``: keep
        every relay as it is (calibration is measuring the PWM load)."""
        forced = forced or {}
        dt = min(max(now - self._last_now, 0.0), 10.0)
        self._last_now = now
        result = Split()
        pwm_room = self.pwm_rating_w if pwm_available else 0.0
        committed = 0.0
        static = 0.0  # the ratings of every relay before this one, on or off
        for group, after_pwm in ((self._before_pwm, False), (self._after_pwm, True)):
            for relay in group:
                avail = want_w - committed
                self._episode(relay, want_w - static, now)
                static += relay.rating_w
                if frozen:
                    want_on = relay.on
                else:
                    want_on = self._wants(relay, avail, pwm_room if after_pwm else None)
                    want_on = self._persist(relay, want_on, avail, dt)
                self._switch(relay, want_on, now, forced.get(relay.name), frozen, result)
                if relay.on:
                    committed += relay.rating_w
        rest = want_w - committed
        pwm_w = min(max(rest, 0.0), pwm_room)
        self._bypass(pwm_w, rest, pwm_room, now, frozen)
        result.bypass = self.bypass
        result.pwm_w = 0.0 if self.bypass else pwm_w
        bypass_w = (self.bypass_rating_w or self.pwm_rating_w) if self.bypass else 0.0
        result.applied_w = committed + result.pwm_w + bypass_w
        return result

    def _wants(self, relay: Relay, avail: float, pwm_room: float | None) -> bool:
        m = self.margin_w
        if pwm_room is None:  # before the PWM load: the relay fills first
            return avail >= relay.rating_w if relay.on else avail >= relay.rating_w + m
        if relay.on:
            return avail >= relay.rating_w and avail > pwm_room - m
        return avail > pwm_room + m and avail >= relay.rating_w + m

    def _episode(self, relay: Relay, avail_w: float, now: float) -> None:
        """Learn how long shortfalls last: an episode runs while ``avail_w`` (the wanted
        power beyond the relays before this one, all on) stays below its rating, and ends
        once it has been above for EPISODE_GAP_S. One longer than EPISODE_MAX_S is not
        the clouds' time scale (the night, a dull spell) and is not learned."""
        if avail_w < relay.rating_w:
            if relay._short_since is None:
                relay._short_since = now
            relay._short_seen = now
        elif relay._short_since is not None and now - relay._short_seen >= EPISODE_GAP_S:
            length_s = relay._short_seen - relay._short_since
            if length_s <= EPISODE_MAX_S:
                relay.shortfalls.end(length_s)
            relay._short_since = None

    def _worth_off(self, relay: Relay, shortfall: float, now: float) -> bool:
        """Switching off now saves the import expected over the rest of the shortfall
        (lengths roughly exponential: the rest is as long as the learned mean, the running
        shortfall's time counted in, see ``shortfall_length``) and costs the relay's rating
        for the part of ``min_off_s`` (plus the on filter) the shortfall is expected to
        leave over, and a switch priced at ``off_after_s`` of the full rating for each of
        the two switches (off now, on again). Slow weather (long episodes) switches off
        early; fast clouds (episodes not much longer than ``min_off_s``) only for a
        shortfall beyond the rating."""
        if relay._short_since is None or now - relay._short_since < self.on_after_s:
            return False
        mu = max(relay.shortfalls.expected_s(relay._short_seen - relay._short_since), 1.0)
        m = relay.min_off_s
        left_over = m - mu * (1 - math.exp(-m / mu)) + self.on_after_s
        return shortfall * mu > relay.rating_w * (left_over + 2 * self.off_after_s)

    def _persist(self, relay: Relay, want_on: bool, avail: float, dt: float) -> bool:
        """Follow the rule only once it has held long enough (see the module docstring)."""
        if want_on == relay.on:
            relay._pressure_s = max(0.0, relay._pressure_s - dt)
            return want_on
        if want_on:
            relay._pressure_s += dt
            return relay._pressure_s >= self.on_after_s or relay.on
        shortfall = relay.rating_w - avail  # > 0: keeping it on imports this
        share = shortfall / relay.rating_w
        # squared: a small shortfall (a cloud's edge) is ridden through for up to 16x
        # longer, one of the whole rating at the configured pace, a bigger one faster
        weight = min(max(share * share, 1 / 16), 4.0) if shortfall > 0 else 1 / 16
        relay._pressure_s += dt * weight
        if shortfall > 0 and self._worth_off(relay, shortfall, self._last_now):
            return False  # a long shortfall is expected: riding it through costs more
        return relay._pressure_s < self.off_after_s

    def _switch(self, relay: Relay, want_on: bool, now: float, forced: bool | None,
                frozen: bool, result: Split) -> None:
        relay.held = ""
        if now < relay.skip_until:
            relay.held = "thermostat"  # its load did not draw: skipped until the retry
            want_on = False
        if forced is not None:
            want_on = forced
        if want_on == relay.on:
            return
        age = now - relay.since
        if relay.on and age < relay.min_on_s and forced is not False and \
                now >= relay.skip_until:
            relay.held = "min-on"
            return
        if not relay.on and age < relay.min_off_s:
            relay.held = "min-off"
            return
        if frozen and forced is None:
            return
        relay.on, relay.since = want_on, now
        relay._pressure_s = 0.0
        relay.switches += 1
        relay._check_left = self.check_readings if want_on else 0
        relay._check_base_w = self._surplus_w
        relay._check_pace_w = self._steps.rising_w() if want_on else 0.0
        if relay._suspect:  # switched off anyway: the same test as a probe
            relay._suspect, relay._confirm_left = False, self.check_readings
        self._steps.moved()
        result.changed.append(relay.name)

    def _bypass(self, pwm_w: float, rest: float, pwm_room: float, now: float,
                frozen: bool) -> None:
        if self.bypass_after_s is None:
            return
        if frozen:  # the PWM must reach the load (calibration steps it)
            if self.bypass:
                self.bypass, self.bypass_since = False, now
            self.full_since = None
            return
        if not self.bypass:
            at_full = pwm_room > 0 and pwm_w >= pwm_room - 1e-6
            if not at_full:
                self.full_since = None
            elif self.full_since is None:
                self.full_since = now
            elif now - self.full_since >= self.bypass_after_s:
                self.bypass, self.bypass_since = True, now
                self._steps.moved()
        elif rest < self.pwm_rating_w - self.margin_w or pwm_room == 0:
            self.bypass, self.bypass_since = False, now
            self.full_since = None
            self._steps.moved()

    def observe(self, surplus_w: float, now: float) -> list[str]:
        """Before each split: the controller's surplus estimate as the meter has shown it
        (without the ramp lead, a forecast whose jump ahead on a sun edge, standing at the
        edge's end, has a step's shape). A relay just switched on whose load draws leaves
        the estimate where it was (the PWM load made room for it); one that does not draw
        lifts it by about its rating within the meter's delay (so does the sun coming out).
        A suspect is switched off and watched: if the estimate then falls back by its
        rating it did not draw (thermostat: skipped for a while); if not, the surplus
        really rose and it may come back. The same test runs on a relay that is on when an
        export step of its rating appears (its thermostat may have opened), once its
        minimum on-time allows. Returns the relays skipped."""
        self._surplus_w = surplus_w
        skipped = []
        for relay in self.relays:
            rise = surplus_w - relay._check_base_w
            if relay._check_left:
                relay._check_left -= 1
                # a rise at the pace the estimate rose before the switch is the weather's
                seen = self.check_readings - relay._check_left
                share = (rise - seen * relay._check_pace_w) / relay.rating_w
                if NOT_DRAWING_SHARE <= share <= JUMP_MAX_SHARE:
                    self._switch_off_to_test(relay, surplus_w, now)
            elif relay._confirm_left:
                relay._confirm_left -= 1
                if NOT_DRAWING_SHARE <= -rise / relay.rating_w <= JUMP_MAX_SHARE:
                    relay._confirm_left = 0  # it fell back: the load did not draw
                    relay.skip_until = now + RETRY_NOT_DRAWING_S
                    skipped.append(relay.name)
                elif not relay._confirm_left:
                    relay.skip_until = -math.inf  # it drew: the surplus had really risen
                    relay.held = ""
        step = self._steps.push(surplus_w, now)
        if step is not None:
            self._unexplained(step, now)
        for relay in self.relays:
            if relay._suspect and relay.on and now - relay.since >= relay.min_on_s:
                self._switch_off_to_test(relay, surplus_w, now)
        return skipped

    def _unexplained(self, step_w: float, now: float) -> None:
        """A step none of our moves explains: an export step of an on relay's rating makes
        it a suspect (the closest match); an import step of a suspect's rating is its
        thermostat closing again (it draws: no longer a suspect); any other import step
        is the household's, remembered to pair with its end."""
        settled = [r for r in self.relays if r.on and not r._check_left]
        if step_w > 0:
            fits = [r for r in settled if not r._suspect and matches(step_w, r.rating_w)]
            if fits:
                min(fits, key=lambda r: abs(step_w - r.rating_w))._suspect = True
            return
        closing = [r for r in settled if r._suspect and matches(-step_w, r.rating_w)]
        if closing:
            closing[0]._suspect = False
        else:
            self._steps.household(-step_w, now)

    def _switch_off_to_test(self, relay: Relay, surplus_w: float, now: float) -> None:
        """Off (the PWM load takes its share in the same step) and watched by observe:
        skipped until the test says otherwise."""
        relay._check_left, relay._suspect = 0, False
        relay.on, relay.since = False, now
        relay._pressure_s = 0.0
        relay.switches += 1
        relay._confirm_left = self.check_readings
        relay._check_base_w = surplus_w
        relay.skip_until = now + RETRY_NOT_DRAWING_S  # until the test says
        relay.held = "thermostat"
        self._steps.moved()
