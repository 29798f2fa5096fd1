"""Per-load learning beside relays as a pure unit: each relay's real power from the meter's
answers at its switches (with household steps, not taught by a thermostat, within bounds),
the PWM load's own, a reset on a new rating, a restart through the store; and wired into the
worker's core on the house simulator."""

from __future__ import annotations

import random

import pytest

from vzdivert.config import validate
from vzdivert.output import PWM_NAME, relay_output
from vzdivert.plant import House, RelayLoad, Scenario
from vzdivert.rtworker.core import WorkerCore
from vzdivert.rtworker.curves import curve_from_config
from vzdivert.rtworker.load_learning import HIGH, LOW, LoadLearning, SwitchedRating
from vzdivert.rtworker.rating_store import RatingStore

PWM_W = 2000.0
CONFIGURED = {"r0": 1000.0, "r1": 2000.0}


class Rig:
    """A PWM load and two relays behind a meter one reading late, driven the way the
    allocator drives them: a relay switches every `switch_every` readings and the PWM load
    moves by its assumed rating in the same step; in between the PWM load makes its own
    moves. Household steps (±400-900 W) land anywhere, also on a switch."""

    def __init__(self, true_w: dict[str, float], pwm_true_w: float = PWM_W, seed: int = 1,
                 step_every: int = 13, switch_every: int = 40) -> None:
        self.learning = LoadLearning(PWM_W, CONFIGURED, max_delay_samples=1)
        self.true_w, self.pwm_true_w = true_w, pwm_true_w
        self.rng = random.Random(seed)
        self.step_every, self.switch_every = step_every, switch_every
        self.on = dict.fromkeys(CONFIGURED, False)
        self.fraction = 0.5
        self.base_w = 3000.0
        self.k = 0
        self.loads_w = [0.0, 0.0]  # what the loads drew, oldest first: the meter is late

    def run(self, readings: int) -> None:
        learning = self.learning
        for _ in range(readings):
            self.k += 1
            before = self.base_w
            share = 1.0
            if self.k % self.step_every == 0:
                self.base_w += self.rng.choice([-900, -600, -400, 400, 600, 900])
                self.base_w = min(4000.0, max(2000.0, self.base_w))
                share = self.rng.random()
            household_w = before + share * (self.base_w - before)
            grid_w = self.loads_w.pop(0) - household_w + self.rng.gauss(0.0, 15.0)
            if self.k % self.switch_every == 0:  # a relay switches, the PWM makes room
                name = "r0" if self.k % (2 * self.switch_every) else "r1"
                self.on[name] = not self.on[name]
                move = learning.relay_rating_w(name) / learning.pwm_rating_w()
                self.fraction -= move if self.on[name] else -move
            elif self.k % 4 == 0:  # the controller's own moves
                self.fraction += self.rng.choice([-0.15, -0.1, 0.1, 0.15])
            self.fraction = min(1.0, max(0.0, self.fraction))
            learning.step(grid_w, 1.0, self.fraction, self.on, False)
            self.loads_w.append(self.pwm_true_w * self.fraction + sum(
                self.true_w[name] for name, on in self.on.items() if on))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_relays_learn_their_real_power_through_household_steps(seed: int) -> None:
    rig = Rig({"r0": 1300.0, "r1": 1400.0}, pwm_true_w=2200.0, seed=seed)
    rig.run(1600)  # 20 switches each
    learning = rig.learning
    assert learning.relay_rating_w("r0") == pytest.approx(1300.0, rel=0.03)
    assert learning.relay_rating_w("r1") == pytest.approx(1400.0, rel=0.03)
    assert learning.pwm.rating_w == pytest.approx(2200.0, rel=0.03)
    assert learning.pwm.delay_readings == 1.0
    for name in CONFIGURED:
        assert learning.learned(name)[1] > 0.5  # confident


def test_a_relay_whose_thermostat_is_open_teaches_nothing() -> None:
    rig = Rig({"r0": 0.0, "r1": 2000.0}, seed=4)
    rig.run(1600)
    r0 = rig.learning.switched.ratings["r0"]
    assert rig.learning.relay_rating_w("r0") == 1000.0 and r0.observations == 0
    assert rig.learning.relay_rating_w("r1") == pytest.approx(2000.0, rel=0.03)


def test_learning_off_uses_the_configured_ratings() -> None:
    rig = Rig({"r0": 1300.0, "r1": 1400.0}, pwm_true_w=2200.0)
    rig.learning.learn = False
    rig.run(800)
    assert rig.learning.learned("r0")[0] == pytest.approx(1300.0, rel=0.03)  # still shown
    assert rig.learning.relay_rating_w("r0") == 1000.0
    assert rig.learning.pwm_rating_w() == PWM_W


def test_the_learned_rating_never_leaves_its_bounds() -> None:
    rating = SwitchedRating(1000.0, 1000.0)
    assert not rating.add(0.0) and not rating.add(1600.0) and not rating.add(-300.0)
    assert rating.value == 1000.0 and rating.observations == 0
    for sample in (1490.0, 1500.0, 1450.0, 510.0):
        assert rating.add(sample)
        assert LOW * 1000.0 <= rating.value <= HIGH * 1000.0
    assert rating.value == 1450.0  # the stray low one is outvoted
    rig = Rig({"r0": 2000.0, "r1": 2000.0})  # r0 draws twice its rating: nothing fits
    rig.run(800)
    assert rig.learning.relay_rating_w("r0") == 1000.0


def test_a_new_rating_starts_afresh_and_the_store_keeps_the_rest(tmp_path) -> None:
    rig = Rig({"r0": 1300.0, "r1": 1400.0}, pwm_true_w=2200.0)
    rig.run(1000)
    learned = {name: rig.learning.relay_rating_w(name) for name in CONFIGURED}
    observed = rig.learning.pwm.observations
    RatingStore(tmp_path, rig.learning.switched, load="relays").save()
    RatingStore(tmp_path, rig.learning.pwm).save()

    again = LoadLearning(PWM_W, CONFIGURED)
    RatingStore(tmp_path, again.switched, load="relays")
    RatingStore(tmp_path, again.pwm)
    for name in CONFIGURED:
        assert again.relay_rating_w(name) == pytest.approx(learned[name], rel=1e-6)
    assert again.pwm.observations == observed and again.pwm.ratios  # its own file

    changed = LoadLearning(PWM_W, {"r0": 1200.0, "r1": 2000.0})  # r0's rating changed
    RatingStore(tmp_path, changed.switched, load="relays")
    assert changed.relay_rating_w("r0") == 1200.0
    assert changed.switched.ratings["r0"].observations == 0
    assert changed.relay_rating_w("r1") == pytest.approx(learned["r1"], rel=1e-6)

    again.set_configured(2500.0, 1, True)  # the PWM load's rating changed live
    assert again.pwm_rating_w() == 2500.0 and not again.pwm.ratios


def test_core_learns_each_load_and_uses_it() -> None:
    """The worker's core on the house simulator: relays drawing 1.3x and 0.7x their
    configured ratings, switched by an appliance cycling every 10 minutes."""
    scenario = Scenario("cycling", "", duration_s=1300.0, pv_w=5000, pv_flicker_w=10,
                        base_w=300, base_noise_w=30, steps=((0, 0), (300, 4500)),
                        steps_repeat_s=600)
    relays = (RelayLoad(1300.0), RelayLoad(1400.0))
    house = House(scenario, seed=1, meter_delay_samples=1, rating_w=PWM_W, relays=relays)
    cfg = validate({"load": {"rating_w": PWM_W, "curve": "pfc"}, "relays": [
        {"name": name, "gpio": 20 + i, "rating_w": w}
        for i, (name, w) in enumerate(CONFIGURED.items())]})
    core = WorkerCore(cfg, type("Sink", (), {"add": lambda *a: None})(), 0.0)
    core.start(0.0)
    grid_w = house.step(0.0, [False, False])
    while not house.finished:
        t = house.t_s
        plan = core.on_reading(grid_w, 1e9 + t, 1e9 + t, t)
        assert plan is not None
        core.write_ok(plan)
        grid_w = house.step(core.levels[PWM_NAME],
                            [core.levels[relay_output(name)] >= 0.5 for name in CONFIGURED])
    state = core.state(house.t_s)
    by_name = {load["name"]: load for load in state["loads"]}
    assert by_name["r0"]["rating_learned_w"] == pytest.approx(1300.0, rel=0.05)
    assert by_name["r1"]["rating_learned_w"] == pytest.approx(1400.0, rel=0.05)
    assert by_name["heater"]["rating_learned_w"] == state["rating_learned_w"]
    assert state["rating_learned_w"] == pytest.approx(PWM_W, rel=0.05)
    for relay in core.allocator.relays:  # thresholds and the PWM's compensation use them
        assert relay.rating_w == pytest.approx(by_name[relay.name]["rating_learned_w"], abs=0.1)
        if relay.on:  # energy is counted with them
            assert by_name[relay.name]["power_w"] == pytest.approx(relay.rating_w)
    core.configure(cfg.with_settings({"learn_rating": False}), core.curve)
    core.on_reading(grid_w, 1e9 + house.t_s + 1, 1e9 + house.t_s + 1, house.t_s + 1)
    assert [relay.rating_w for relay in core.allocator.relays] == [1000.0, 2000.0]
    assert core.state(house.t_s + 1)["rating_used_w"] == PWM_W


def test_the_bypass_learns_what_bridging_the_module_changes() -> None:
    """The bypass draws 5 % more than the PWM load at full output (the module's loss):
    learned as a factor on the PWM load's rating, used for the allocator and energy."""
    learning = LoadLearning(PWM_W, {}, bypass="heater bypass", max_delay_samples=1)
    rng = random.Random(5)
    loads_w, fraction, bypass = [0.0, 0.0], 0.5, False
    for k in range(1, 1500):
        grid_w = loads_w.pop(0) - 3000.0 + rng.gauss(0.0, 15.0)
        phase = k % 100
        if phase == 60:  # at full output for a while: the bypass closes, the module idles
            bypass, fraction = True, 0.0
        elif phase == 90:
            bypass, fraction = False, 1.0
        elif phase > 90 or phase < 50 and k % 4 == 0:
            fraction = min(1.0, max(0.0, fraction + rng.choice([-0.15, 0.1, 0.15])))
        elif phase == 50:
            fraction = 1.0
        learning.step(grid_w, 1.0, fraction, {"heater bypass": bypass}, False)
        loads_w.append(2100.0 if bypass else 2000.0 * fraction)
    assert learning.learned("heater bypass")[0] == pytest.approx(2100.0, rel=0.02)
    assert learning.bypass_rating_w() == pytest.approx(2100.0, rel=0.03)
    learning.learn = False
    assert learning.bypass_rating_w() == learning.pwm_rating_w() == PWM_W


def test_learned_ratings_are_used_from_the_start_and_kept_by_live_settings() -> None:
    """Ratings restored from the state files go into the allocator at start-up, and the
    controller's capacity is their sum; a live setting keeps it (it used to take the PWM
    load's configured rating until the next reading retuned it back: a bump)."""
    cfg = validate({"load": {"rating_w": PWM_W, "curve": "pfc"}, "relays": [
        {"name": name, "gpio": 20 + i, "rating_w": w}
        for i, (name, w) in enumerate(CONFIGURED.items())]})
    core = WorkerCore(cfg, type("Sink", (), {"add": lambda *a: None})(), 0.0)
    assert core.learning is not None
    pwm, r0 = core.learning.pwm, core.learning.switched.ratings["r0"]
    pwm.rating_w, pwm.confidence = 2400.0, 1.0  # as restored by the rating stores
    for _ in range(3):
        r0.add(1300.0)
    learned_w = 2400.0 + r0.value + CONFIGURED["r1"]
    core.start(0.0)
    assert core.allocator.capacity_w == pytest.approx(learned_w)
    assert core.controller.configured.rating_w == pytest.approx(learned_w)
    new = cfg.with_settings({"target_w": 50.0})
    core.configure(new, curve_from_config(new))
    assert core.controller.configured.rating_w == pytest.approx(learned_w)
