"""/metrics per load (several loads): one labelled series per load and kind."""

from __future__ import annotations

from test_metrics import STATE, feed, scrape, value

LOADS = [
    {"name": "heater", "kind": "pwm", "on": True, "duty": 0.8, "power_w": 1600.0,
     "energy_today_wh": 3200.0, "held": ""},
    {"name": "heater bypass", "kind": "bypass", "on": False, "duty": 0.0, "power_w": 0.0,
     "energy_today_wh": 0.0, "held": ""},
    {"name": "stage 2", "kind": "relay", "on": True, "duty": 1.0, "power_w": 1000.0,
     "energy_today_wh": 1500.5, "held": "min-on", "rating_learned_w": 1290.0,
     "rating_confidence": 0.52},
]


def test_each_load_gets_its_series() -> None:
    fams = scrape(feed({**STATE, "loads": LOADS}))
    assert value(fams, "vzdivert_load_power_watts", load="stage 2", kind="relay") == 1000.0
    assert value(fams, "vzdivert_load_on", load="heater bypass", kind="bypass") == 0.0
    assert value(fams, "vzdivert_load_duty_ratio", load="heater", kind="pwm") == 0.8
    assert value(fams, "vzdivert_load_energy_today_wh", load="stage 2", kind="relay") == 1500.5
    assert len(fams["vzdivert_load_power_watts"].samples) == 3
    assert value(fams, "vzdivert_load_rating_learned_watts", load="stage 2",
                 kind="relay") == 1290.0
    assert value(fams, "vzdivert_load_rating_confidence", load="stage 2", kind="relay") == 0.52
    assert len(fams["vzdivert_load_rating_learned_watts"].samples) == 1  # older states: none


def test_no_loads_no_series() -> None:
    assert "vzdivert_load_power_watts" not in scrape(feed(STATE))
