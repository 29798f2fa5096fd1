"""The control law with a learned rating: `Controller` thinks in watts of the load's real
power, `RatingEstimator` tells it what that is. Same interface as `Controller`, so the
worker and the bench drive either. Pure."""

from __future__ import annotations

import dataclasses

from vzdivert.rtworker.controller import Controller, ControlParams
from vzdivert.rtworker.rating import RatingEstimator

RETUNE = 0.002  # hand a new rating to the controller when it moved by this fraction


class AdaptiveController:
    """`params.rating_w` is the configured rating; with `learn` the controller runs on the
    learned one (`rating_learned_w`, `confidence`)."""

    def __init__(self, params: ControlParams, learn: bool = True,
                 estimator: RatingEstimator | None = None) -> None:
        self.learn = learn
        self.estimator = estimator or RatingEstimator(params.rating_w, params.max_delay_samples)
        self.configured = params
        self.ctl = Controller(self._effective(params))

    # the controller's view, for the worker and the UI
    @property
    def saturated(self) -> bool:
        return self.ctl.saturated

    @saturated.setter
    def saturated(self, value: bool) -> None:
        self.ctl.saturated = value

    @property
    def command_w(self) -> float:
        return self.ctl.command_w

    @property
    def surplus_w(self) -> float:
        return self.ctl.surplus_w

    @property
    def rating_learned_w(self) -> float:
        return self.estimator.rating_w

    @property
    def confidence(self) -> float:
        return self.estimator.confidence

    @property
    def rating_w(self) -> float:
        """The rating control and energy accounting use now."""
        return self.ctl.params.rating_w

    def _effective(self, params: ControlParams) -> ControlParams:
        if not self.learn or self.estimator.rating_w == params.rating_w:
            return params
        return dataclasses.replace(params, rating_w=self.estimator.rating_w)

    def reset(self) -> None:
        self.ctl.reset()
        self.estimator.restart()

    def update_params(self, params: ControlParams, learn: bool | None = None) -> None:
        if params.rating_w != self.configured.rating_w:  # the user says: learn afresh
            self.estimator.reset(params.rating_w)
        self.estimator.set_max_delay(params.max_delay_samples)
        if learn is not None:
            self.learn = learn
        self.configured = params
        self.ctl.update_params(self._effective(params))

    def applied(self, command_w: float) -> None:
        """The loads took another power than commanded (a hold, a relay's minimum time):
        the controller keeps what really went out, the estimator pairs afresh (that move
        was not ours to learn from)."""
        self.ctl.applied(command_w)
        self.estimator.restart()

    def step(self, grid_w: float, dt_s: float) -> float:
        was_saturated = self.ctl.saturated
        fraction = self.ctl.step(grid_w, dt_s)
        closing = was_saturated and not self.ctl.saturated
        if self.ctl.opened is not None:  # a thermostat opening seen as a step at the meter
            self.estimator.opened(*self.ctl.opened)
        learned = self.estimator.step(grid_w, fraction, dt_s, self.ctl.saturated, closing)
        if self.learn and abs(learned - self.ctl.params.rating_w) > RETUNE * learned:
            self.ctl.update_params(dataclasses.replace(self.ctl.params, rating_w=learned))
        return fraction
