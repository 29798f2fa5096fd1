"""`/api/state` carries `loads`; a silent or stale worker never shows a load drawing."""

from __future__ import annotations

from vzdivert.webui.payload import state_payload

LOADS = [{"name": "heater", "kind": "pwm", "on": True, "duty": 0.5, "power_w": 1000.0,
          "energy_today_wh": 5.0, "held": ""},
         {"name": "stage 2", "kind": "relay", "on": True, "duty": 1.0, "power_w": 1000.0,
          "energy_today_wh": 2.0, "held": "min-on"}]
STATE = {"ts": 1.0, "seq": 3, "grid_w": -10.0, "duty": 0.5, "power_w": 2000.0,
         "stale": False, "loads": LOADS}


def test_loads_pass_through() -> None:
    out = state_payload(STATE, {}, {}, {"state": 0.1}, 2.0)
    assert out["loads"] == LOADS


def test_silent_worker_shows_no_load_drawing() -> None:
    out = state_payload(STATE, {}, {}, {"state": 5.0}, 2.0)
    assert out["stale"] and [load["power_w"] for load in out["loads"]] == [0.0, 0.0]
    assert state_payload({}, {}, {}, {}, 2.0)["loads"] == []
