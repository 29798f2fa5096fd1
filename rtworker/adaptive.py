"""The control law with a learned rating: `Controller` thinks in watts of the load's real
power, `RatingEstimator` tells it what that is, and the curve's learned shape per band
(`band_map`) turns the controller's true power fraction into the model's, so the
controller sees a linear load and the estimator the moves that really went out. Same
interface as `Controller`, so the worker and the bench drive either. Pure.

While the estimate stays unsure and the meter may report late, the controller is told the
load draws up to MARGIN more than estimated (its steps then fall short rather than
overshoot): with a delay, a step that overshoots is answered a reading or two late and the
answer overshoots again, which costs more than falling short by as much; with no delay the
two cost the same, so there is no margin once the data lean that way (long before they
prove it: small moves at 2 s readings may never), nor at full output (no steps to soften,
and the thermostat tests judge steps of the load's power there). The clean moves seen so
far may say the load draws far less than the estimate while still too few to outvote the
configured rating: the gain is too low already, so their share of the data takes the
margin off in proportion. The margin stays inside: command, surplus and rating are
reported, and `applied` taken, in the estimate's watts. The estimate's doubt goes to the
controller too, which keeps that share of its own moves out of the ramp lead."""

from __future__ import annotations

import dataclasses

from vzdivert.rtworker.controller import Controller, ControlParams
from vzdivert.rtworker.curve_correction import IDENTITY, BandMap, CorrectedCurve
from vzdivert.rtworker.curves import Curve, clamp
from vzdivert.rtworker.rating import HIGH, LOW, RatingEstimator

RETUNE = 0.002  # hand a new rating to the controller when it moved by this fraction
MARGIN = 0.15   # an unsure estimate is taken this much higher ...
UNSURE, SURE = 0.1, 0.35  # ... in full below this confidence, not at all from this one,
UNSURE_S = 60.0  # ... once it stayed below SURE this long (a fresh start learns from its
                 # first big move within a few readings: that one keeps the deadbeat step)


class AdaptiveController:
    """`params.rating_w` is the configured rating; with `learn` the controller runs on the
    learned one (`rating_learned_w`, `confidence`) and, unless `learn_curve` is off, on the
    learned curve shape (`curve_correction`)."""

    def __init__(self, params: ControlParams, learn: bool = True,
                 estimator: RatingEstimator | None = None, learn_curve: bool = True) -> None:
        self.learn = learn
        self.learn_curve = learn_curve
        self.estimator = estimator or RatingEstimator(params.rating_w, params.max_delay_samples)
        self.configured = params
        self.margin = 1.0  # the controller's rating / the estimate
        self._unsure_s = 0.0  # how long the confidence has been below SURE
        self.ctl = Controller(params)
        self.ctl.update_params(self._effective(params))

    # the controller's view, for the worker and the UI
    @property
    def saturated(self) -> bool:
        return self.ctl.saturated

    @saturated.setter
    def saturated(self, value: bool) -> None:
        self.ctl.saturated = value

    @property
    def command_w(self) -> float:
        return self.ctl.command_w / self.margin

    @property
    def surplus_w(self) -> float:
        return self.ctl.surplus_w / self.margin

    @property
    def surplus_seen_w(self) -> float:
        return self.ctl.surplus_seen_w / self.margin

    @property
    def rating_learned_w(self) -> float:
        """What the load draws at full output, as learned."""
        est = self.estimator
        scale = est.curve.scale if self.learn_curve else 1.0
        lo, hi = LOW * est.configured_w, HIGH * est.configured_w
        r = est.rating_w * scale
        return clamp(r, lo, hi)

    @property
    def curve_correction(self) -> list[float]:
        """The learned factor of each band of the output (1 = as the curve's model)."""
        return self.estimator.curve.factors

    @property
    def band_map(self) -> BandMap:
        """Between the controller's (true) power fraction and the curve model's."""
        return self.estimator.curve if self.learn and self.learn_curve else IDENTITY

    def corrected(self, curve: Curve) -> CorrectedCurve:
        """`curve` as the outputs must use it with this controller (duty <-> true power)."""
        return CorrectedCurve(curve, self)

    @property
    def confidence(self) -> float:
        return self.estimator.confidence

    @property
    def rating_w(self) -> float:
        """The rating control and energy accounting use now."""
        return self.ctl.params.rating_w / self.margin

    def _margin(self) -> float:
        """How much more than the estimate the controller is told (see the docstring)."""
        ctl = self.ctl
        if not self.learn or self._unsure_s < UNSURE_S or not ctl.maybe_late or \
                ctl.saturated or ctl.command_w >= ctl.params.rating_w * (1.0 - 1e-9):
            return 1.0  # nothing to overshoot at full output: thermostat tests judge steps
            # of the load's whole power against the estimate
        unsure = (SURE - self.estimator.confidence) / (SURE - UNSURE)
        unsure = clamp(unsure, 0.0, 1.0)
        # moves that say the load draws far less: the gain is too low already
        return 1.0 + MARGIN * unsure * (1.0 - self.estimator.below)

    def _effective(self, params: ControlParams) -> ControlParams:
        if not self.learn:
            self.margin = 1.0
            return params
        self.margin = self._margin()
        rating = self.rating_learned_w * self.margin
        return params if rating == params.rating_w else dataclasses.replace(params,
                                                                             rating_w=rating)

    def reset(self) -> None:
        self.ctl.reset()
        self.estimator.restart()

    def update_params(self, params: ControlParams, learn: bool | None = None) -> None:
        if params.rating_w != self.configured.rating_w:  # the user says: learn afresh
            self.estimator.reset(params.rating_w)
            self._unsure_s = 0.0
        self.estimator.set_max_delay(params.max_delay_samples)
        if learn is not None:
            self.learn = learn
        self.configured = params
        self.ctl.update_params(self._effective(params))

    def applied(self, command_w: float) -> None:
        """The loads took another power than commanded (a hold, a relay's minimum time):
        the controller keeps what really went out, the estimator pairs afresh (that move
        was not ours to learn from)."""
        self.ctl.applied(command_w * self.margin)
        self.estimator.restart()

    def step(self, grid_w: float, dt_s: float) -> float:
        was_saturated = self.ctl.saturated
        # how far the estimate may be off: that share of our own moves may show in the
        # surplus estimate, and the ramp lead must not feed on it
        self.ctl.rating_doubt = self.estimator.doubt if self.learn else 0.0
        fraction = self.ctl.step(grid_w, dt_s)
        closing = was_saturated and not self.ctl.saturated
        band_map = self.band_map
        if self.ctl.opened is not None:  # a thermostat opening seen as a step at the meter
            jump_w, held = self.ctl.opened
            self.estimator.opened(jump_w, band_map.model(held))
        self.estimator.step(grid_w, band_map.model(fraction), dt_s, self.ctl.saturated,
                            closing)
        learned = self.rating_learned_w
        dt = dt_s if 0.0 < dt_s < 3600.0 else 0.0
        self._unsure_s = self._unsure_s + dt if self.estimator.confidence < SURE else 0.0
        if self.learn:
            rating = learned * self._margin()
            if abs(rating - self.ctl.params.rating_w) > RETUNE * rating:
                self.margin = rating / learned
                self.ctl.update_params(dataclasses.replace(self.ctl.params, rating_w=rating))
        return fraction
