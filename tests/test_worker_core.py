"""The worker's safety decisions, driven directly on a fake clock: every path that puts the
output to 0 (start-up, stale data, old and out-of-order readings, manual expiry, an output
fault, a read-back mismatch, shutdown), recovery, and energy accounting."""

from __future__ import annotations

import math

import pytest

from vzdivert.config import validate
from vzdivert.output import PWM_NAME
from vzdivert.rtworker.core import Plan, Refused, WorkerCore

WALL0 = 1_800_000_000.0  # the fake wall clock's start; the monotonic clock starts at 0


class Sink:
    def __init__(self) -> None:
        self.wh = 0.0

    def add(self, power_w: float, dt_s: float, load: str | None = None) -> None:
        if power_w > 0 and dt_s > 0:
            self.wh += power_w * dt_s / 3600


class Rig:
    """A core with a fake clock; ``t`` is seconds since start (monotonic and wall move
    together)."""

    def __init__(self, **control: float) -> None:
        self.cfg = validate({"watchdog": {"stale_after_s": 10.0},
                             "load": {"rating_w": 2000.0}, "control": control})
        self.energy = Sink()
        self.t = 0.0
        self.core = WorkerCore(self.cfg, self.energy, self.t)

    def reading(self, grid_w: float, age_s: float = 0.0, dt: float = 1.0) -> Plan | None:
        self.t += dt
        return self.core.on_reading(grid_w, WALL0 + self.t - age_s, WALL0 + self.t, self.t)

    def export_until_on(self) -> None:
        for _ in range(3):
            plan = self.reading(-1000.0)
        assert plan is not None and plan.levels[PWM_NAME] > 0.3

    def tick(self, dt: float) -> Plan | None:
        self.t += dt
        return self.core.tick(self.t)


def is_off(core: WorkerCore, plan: Plan | None, reason: str) -> None:
    assert plan is not None and plan.safe and reason in plan.reason
    assert core.duty == 0.0 and core.fraction == 0.0 and core.off_reason == plan.reason
    assert core.controller.command_w == 0.0  # restarts from 0, not from a power now off


def test_start_up_goes_safe_and_waits_for_data() -> None:
    rig = Rig()
    is_off(rig.core, rig.core.start(0.0), "start-up")
    assert rig.core.stale and rig.core.stale_reason == "no data yet"
    assert rig.core.tick(100.0) is None  # already off: nothing to time out
    assert rig.core.state(0.0)["mode"] == "stale"


def test_fresh_reading_resumes_control_and_feeds_forward() -> None:
    rig = Rig()
    plan = rig.reading(-1000.0)
    assert plan is not None and not plan.safe
    assert plan.levels[PWM_NAME] == pytest.approx(0.5)  # 1000 W of a 2000 W load, linear
    assert not rig.core.stale and rig.core.state(rig.t)["mode"] == "auto"


def test_stale_timer() -> None:
    rig = Rig()
    rig.export_until_on()
    assert rig.tick(9.9) is None
    assert rig.core.next_deadline(rig.t) == pytest.approx(0.1)
    is_off(rig.core, rig.tick(0.2), "no fresh reading for 10 s")
    assert rig.core.stale and rig.core.state(rig.t)["power_w"] == 0.0


@pytest.mark.parametrize("age_s", [10.5, 60.0])
def test_old_readings_are_dropped_and_do_not_hold_the_output_on(age_s: float) -> None:
    rig = Rig()
    rig.export_until_on()
    duty = rig.core.duty
    for _ in range(9):
        assert rig.reading(-1500.0, age_s=age_s) is None
    assert rig.core.duty == duty and rig.core.stats.dropped_old == 9
    is_off(rig.core, rig.tick(1.5), "no fresh reading")


def test_out_of_order_and_repeated_readings_are_dropped() -> None:
    rig = Rig()
    rig.export_until_on()
    ts = WALL0 + rig.t
    assert rig.core.on_reading(-1500.0, ts, ts + 1, rig.t + 1) is None  # repeated
    assert rig.core.on_reading(-1500.0, ts - 0.5, ts + 1, rig.t + 1) is None  # older
    assert rig.core.stats.dropped_old == 2
    is_off(rig.core, rig.tick(10.5), "no fresh reading")  # they refreshed nothing


def test_manual_hold_and_its_expiry() -> None:
    rig = Rig()
    rig.export_until_on()
    plan = rig.core.manual(0.8, 5.0, rig.t)
    assert plan is not None and plan.levels[PWM_NAME] == 0.8
    assert rig.core.state(rig.t)["mode"] == "manual"
    plan = rig.reading(-3000.0)  # the controller pauses while held
    assert plan is not None and plan.levels[PWM_NAME] == 0.8
    assert rig.core.next_deadline(rig.t) == pytest.approx(4.0)
    is_off(rig.core, rig.tick(4.5), "manual hold expired")
    assert rig.core.state(rig.t)["mode"] == "auto" and not rig.core.stale
    plan = rig.reading(-1000.0)  # control resumes from 0
    assert plan is not None and plan.levels[PWM_NAME] == pytest.approx(0.5)


def test_manual_refused_when_stale_or_out_of_range_and_ended_by_stale() -> None:
    rig = Rig()
    with pytest.raises(Refused, match="stale"):
        rig.core.manual(0.5, 5.0, rig.t)
    rig.export_until_on()
    for duty, hold_s in ((1.5, 5.0), (0.5, 0.0), (0.5, 61.0)):
        with pytest.raises(Refused):
            rig.core.manual(duty, hold_s, rig.t)
    rig.core.manual(0.5, 60.0, rig.t)
    is_off(rig.core, rig.tick(10.5), "no fresh reading")
    assert rig.core.holds.active(rig.core.pwm_load) is None  # stale data end the hold at once
    assert rig.core.manual(None, 0, rig.t) is None


def test_output_fault_goes_safe_then_recovers_from_a_safe_state() -> None:
    rig = Rig()
    rig.export_until_on()
    is_off(rig.core, rig.core.write_failed("pigpiod gone", rig.t), "output write failed")
    assert rig.core.output_fault and "pigpiod gone" in rig.core.error
    plan = rig.reading(-1000.0)
    assert plan is not None and plan.recover  # all outputs to 0 before the first new write
    rig.core.write_ok(plan)
    assert not rig.core.output_fault and rig.core.error == ""
    assert not rig.reading(-50.0).recover


def test_off_failure_is_reported() -> None:
    rig = Rig()
    rig.core.off_failed(["load: no pigpiod"])
    assert rig.core.error == "output off failed: load: no pigpiod"


def test_readback_mismatch_is_repaired() -> None:
    rig = Rig()
    rig.export_until_on()
    duty = rig.core.duty
    assert rig.core.readback(PWM_NAME, duty + 0.0015, 0.001, rig.t) is None  # within 2 steps
    assert rig.core.readback(PWM_NAME, None, 0.001, rig.t) is None  # cannot tell
    plan = rig.core.readback(PWM_NAME, 0.9, 0.001, rig.t)
    assert plan is not None and not plan.safe and plan.levels[PWM_NAME] == duty
    rig.core.write_ok(plan)
    assert rig.core.readback_mismatches == 1 and "re-applied" in rig.core.error


def test_readback_while_off_goes_safe() -> None:
    rig = Rig()
    rig.core.start(0.0)
    is_off(rig.core, rig.core.readback(PWM_NAME, 0.6, 0.001, 1.0), "read-back")
    assert rig.core.readback_mismatches == 1


def test_shutdown() -> None:
    rig = Rig()
    rig.export_until_on()
    is_off(rig.core, rig.core.shutdown("stopped", rig.t), "stopped")
    assert rig.core.stale and rig.core.stale_reason == "stopped"


def test_energy_counts_only_while_on_and_fresh() -> None:
    rig = Rig()
    rig.reading(-1000.0)  # 1000 W from here on
    rig.reading(-5.0, dt=3.6)  # the next change books 3.6 s at 1000 W = 1 Wh
    assert rig.energy.wh == pytest.approx(1.0)
    rig.tick(10.5)  # stale: booked up to the moment of the stop, nothing after
    booked = rig.energy.wh
    rig.tick(100.0)
    rig.reading(0.0)
    assert rig.energy.wh == booked


def test_saturated_load_counts_no_power() -> None:
    rig = Rig()
    rig.export_until_on()
    rig.core.controller.saturated = True
    assert rig.core.power_w() == 0.0


def test_observers_see_each_control_step() -> None:
    rig = Rig()
    steps = []
    rig.core.observers.append(steps.append)
    rig.reading(-1000.0)
    rig.reading(-1000.0, age_s=30)  # dropped: not a step
    assert len(steps) == 1 and steps[0].grid_w == -1000.0
    assert steps[0].levels[PWM_NAME] == pytest.approx(0.5)


class Relays(Rig):
    """A 2 kW PWM heater (linear) and a 1 kW relay stage with 60 s minimum times."""

    def __init__(self, bypass: bool = False) -> None:
        load = {"rating_w": 2000.0, **({"bypass_gpio": 22, "bypass_after_s": 30.0}
                                        if bypass else {})}
        self.cfg = validate({"watchdog": {"stale_after_s": 10.0}, "load": load,
                             "relays": [{"name": "stage 2", "gpio": 17, "rating_w": 1000.0}]})
        self.energy = Sink()
        self.t = 0.0
        self.core = WorkerCore(self.cfg, self.energy, self.t)
        self.core.start(0.0)

    def run_until(self, grid_of, seconds: float) -> Plan | None:
        """Feed readings from a closed loop: grid = load power - surplus."""
        plan = None
        end = self.t + seconds
        while self.t < end:
            plan = self.reading(grid_of(self.core))
            if plan is not None and not plan.safe:
                self.core.write_ok(plan)  # as the shell does after a good write
        return plan


RELAY = "relay:stage 2"


def closed_loop(surplus_w: float):
    return lambda core: core.power_w() - surplus_w


def test_relay_takes_its_step_and_the_pwm_the_rest() -> None:
    rig = Relays()
    rig.t = 61.0  # past min_off after the start
    plan = rig.run_until(closed_loop(2600.0), 5)
    assert rig.core.levels[RELAY] == 1.0
    assert rig.core.duty == pytest.approx(0.8, abs=0.02)  # 1600 W of 2000 W
    assert RELAY not in plan.levels  # written once, when it switched
    loads = {load["name"]: load for load in rig.core.state(rig.t)["loads"]}
    assert loads["stage 2"]["on"] and loads["stage 2"]["power_w"] == 1000.0
    assert loads["heater"]["kind"] == "pwm" and loads["heater"]["power_w"] == \
        pytest.approx(1600, abs=40)


def test_every_path_to_zero_opens_the_relays_too() -> None:
    for off in ("stale", "fault", "shutdown"):
        rig = Relays()
        rig.t = 61.0
        rig.run_until(closed_loop(2600.0), 5)
        assert rig.core.levels[RELAY] == 1.0
        plan = {"stale": lambda r: r.tick(10.5),
                "fault": lambda r: r.core.write_failed("gone", r.t),
                "shutdown": lambda r: r.core.shutdown("stopped", r.t)}[off](rig)
        assert plan.safe and plan.levels == {"load": 0.0, RELAY: 0.0}
        assert not rig.core.allocator.relays[0].on
        assert rig.core.state(rig.t)["power_w"] == 0.0


def test_start_up_waits_min_off_and_relay_readback_is_repaired() -> None:
    rig = Relays()
    rig.run_until(closed_loop(2600.0), 30)
    assert rig.core.levels[RELAY] == 0.0  # a restart counts as a switch-off
    loads = {load["name"]: load for load in rig.core.state(rig.t)["loads"]}
    assert loads["stage 2"]["held"] == "min-off"
    rig.run_until(closed_loop(2600.0), 35)
    plan = rig.core.readback(RELAY, 0.0, 1.0, rig.t)  # someone switched it off
    assert plan is not None and plan.levels[RELAY] == 1.0 and "stage 2 ran" in plan.note


def test_energy_by_load() -> None:
    rig = Relays()
    rig.t = 61.0
    rig.run_until(closed_loop(2600.0), 40)
    by_load = {}
    rig.core.energy = type("E", (), {"add": lambda self, p, dt, load=None:
                                     by_load.__setitem__(load, by_load.get(load, 0) + p * dt)})()
    rig.core.account(rig.t + 3.6)
    assert by_load["stage 2"] == pytest.approx(3600.0)  # 1000 W for 3.6 s
    assert by_load["heater"] == pytest.approx(1600 * 3.6, rel=0.03)


def test_bypass_closes_after_a_long_full_run_and_goes_safe() -> None:
    rig = Relays(bypass=True)
    rig.run_until(closed_loop(2300.0), 40)  # relay held off by min_off; PWM at 100 %
    assert rig.core.levels["bypass"] == 1.0 and rig.core.duty == 0.0
    loads = {load["kind"]: load for load in rig.core.state(rig.t)["loads"]}
    assert loads["bypass"]["on"] and loads["bypass"]["power_w"] == 2000.0
    plan = rig.tick(10.5)
    assert plan.safe and plan.levels["bypass"] == 0.0 and not rig.core.allocator.bypass


def test_manual_hold_opens_the_bypass_and_keeps_the_relays() -> None:
    rig = Relays(bypass=True)
    rig.run_until(closed_loop(3300.0), 100)
    assert rig.core.levels[RELAY] == 1.0
    plan = rig.core.manual(0.3, 10.0, rig.t)
    assert plan.levels["load"] == 0.3 and rig.core.levels["bypass"] == 0.0
    assert rig.core.levels[RELAY] == 1.0


def test_a_hold_that_lets_control_run_fixes_its_load_and_the_relays_fill_around_it() -> None:
    from vzdivert.rtworker.holds import Hold

    rig = Relays()
    rig.t = 61.0
    rig.run_until(closed_loop(2600.0), 5)
    # e.g. one load's own limit: the heater held off, control goes on with the relay
    rig.core.holds.put("heater", Hold("limit", 0.0, rig.t + 600, "held",
                                      freezes_control=False))
    rig.run_until(closed_loop(2600.0), 10)
    assert rig.core.duty == 0.0 and rig.core.levels[RELAY] == 1.0
    loads = {load["name"]: load for load in rig.core.state(rig.t)["loads"]}
    assert loads["heater"]["held"] == "held" and rig.core.state(rig.t)["mode"] == "auto"


def test_a_relay_that_heats_something_else_takes_the_surplus_while_the_tank_is_hot() -> None:
    rig = Relays()
    rig.cfg = validate({"watchdog": {"stale_after_s": 10.0}, "load": {"rating_w": 2000.0},
                        "tank": {"sensor": "mqtt:tank/temp", "max_c": 60},
                        "relays": [{"name": "stage 2", "gpio": 17, "rating_w": 1000.0},
                                   {"name": "pool pump", "gpio": 18, "rating_w": 1000.0,
                                    "heats_tank": False}]})
    rig.core = WorkerCore(rig.cfg, rig.energy, 0.0)
    rig.core.start(0.0)
    rig.t = 61.0
    rig.core.tank_reading(50.0, 0.0, "", rig.t)
    rig.run_until(closed_loop(2600.0), 30)
    assert rig.core.levels[RELAY] == 1.0 and rig.core.levels["relay:pool pump"] == 0.0
    assert rig.core.duty > 0.5  # the heater and its stage take the surplus first
    rig.core.tank_reading(61.0, 0.0, "", rig.t)  # the tank is hot
    rig.run_until(closed_loop(2600.0), 30)
    assert rig.core.duty == 0.0 and rig.core.levels[RELAY] == 0.0  # both heat the tank
    assert rig.core.levels["relay:pool pump"] == 1.0  # not the tank's: it takes the surplus
    held = {load["name"]: load["held"] for load in rig.core.state(rig.t)["loads"]}
    assert "60" in held["heater"] and "60" in held["stage 2"] and held["pool pump"] == ""


def test_a_relay_thermostat_opening_while_on_is_found_and_shown() -> None:
    rig = Relays()
    rig.t = 61.0
    draws = {"relay": True}

    def house(core):  # the relay's own thermostat decides whether it draws
        idle = 1000.0 if core.levels[RELAY] and not draws["relay"] else 0.0
        return core.power_w() - idle - 2600.0

    rig.run_until(house, 60)
    assert rig.core.levels[RELAY] == 1.0
    draws["relay"] = False  # it opens: the PWM load takes up what the meter shows
    rig.run_until(house, 20)
    loads = {load["name"]: load for load in rig.core.state(rig.t)["loads"]}
    assert rig.core.levels[RELAY] == 0.0 and loads["stage 2"]["held"] == "thermostat"
    assert loads["stage 2"]["power_w"] == 0.0 and rig.core.power_w() == pytest.approx(
        2000.0, abs=40)  # shown as it is: the PWM load's 2 kW, no phantom kilowatt
    rig.run_until(house, 200)
    assert rig.core.levels[RELAY] == 0.0  # skipped for the hold time


def test_a_household_load_going_off_leaves_the_relay_drawing() -> None:
    rig = Relays()
    rig.t = 61.0
    surplus = {"w": 3300.0}
    rig.run_until(lambda core: core.power_w() - surplus["w"], 60)
    assert rig.core.levels[RELAY] == 1.0
    surplus["w"] = 2300.0  # a 1 kW appliance switches on ...
    rig.run_until(lambda core: core.power_w() - surplus["w"], 60)
    surplus["w"] = 3300.0  # ... and off again
    rig.run_until(lambda core: core.power_w() - surplus["w"], 60)
    relay = rig.core.allocator.relays[0]
    assert rig.core.levels[RELAY] == 1.0 and relay.switches == 1 and relay.held == ""


class TwoRelays(Relays):
    """The PWM heater with a 1 kW and a 2 kW stage (no on filter), a meter one reading
    late."""

    def __init__(self) -> None:
        self.cfg = validate({"watchdog": {"stale_after_s": 10.0},
                             "load": {"rating_w": 2000.0, "relay_on_after_s": 0.0},
                             "relays": [{"name": "stage 2", "gpio": 17, "rating_w": 1000.0},
                                        {"name": "stage 3", "gpio": 18, "rating_w": 2000.0}]})
        self.energy = Sink()
        self.t = 0.0
        self.core = WorkerCore(self.cfg, self.energy, self.t)
        self.core.start(0.0)
        self._drawn: float | None = None

    def run_late(self, surplus_at, seconds: float) -> None:
        def grid(core: WorkerCore) -> float:
            seen = core.power_w() if self._drawn is None else self._drawn
            self._drawn = core.power_w()
            return seen - surplus_at(self.t + 1)
        self.run_until(grid, seconds)


def sun_edge(t0: float, base_w: float, rise_w: float, edge_s: float, tau_s: float = 0.0):
    """The surplus as the sun comes out at t0: an S over edge_s, or first order (tau_s)."""
    def at(t: float) -> float:
        if t <= t0:
            return base_w
        if tau_s:
            return base_w + rise_w * (1 - math.exp(-(t - t0) / tau_s))
        return base_w + rise_w * 0.5 * (1 - math.cos(math.pi * min((t - t0) / edge_s, 1.0)))
    return at


def test_sharp_sun_edges_are_no_relay_thermostat() -> None:
    # the controller's ramp lead is a forecast: it jumps ahead on a sun edge and then
    # stands, a step's shape; the relays are judged by what the meter has shown
    rig = TwoRelays()  # the 2 kW stage switches on during an 8 s edge (3.1 kW)
    rig.run_late(sun_edge(100.0, 2400.0, 3100.0, 8.0), 200)
    stage3 = rig.core.allocator.relays[1]
    assert stage3.on and stage3.switches == 1 and stage3.held == ""
    rig = TwoRelays()  # both on; the sun comes out by 2 kW with a 4 s time constant
    rig.run_late(sun_edge(200.0, 3400.0, 2000.0, 0.0, tau_s=4.0), 260)
    assert [r.switches for r in rig.core.allocator.relays] == [1, 1]
    assert rig.core.levels["relay:stage 3"] == 1.0
