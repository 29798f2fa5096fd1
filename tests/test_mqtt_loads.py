"""MQTT per load: the state carries each load, and Home Assistant discovery gets a power,
an energy-today and an on entity per load when there are several."""

from __future__ import annotations

from vzdivert.config import validate
from vzdivert.mqtt import discovery_configs, state_payload

RELAYS = [{"name": "stage 2", "gpio": 17, "rating_w": 1000}]
LOADS = [
    {"name": "heater", "kind": "pwm", "on": True, "duty": 0.8123, "power_w": 1600.04,
     "energy_today_wh": 3200.0, "held": ""},
    {"name": "stage 2", "kind": "relay", "on": False, "duty": 0.0, "power_w": 0.0,
     "energy_today_wh": 12.3456, "held": "min-off"},
]


def test_state_payload_by_load() -> None:
    out = state_payload({"grid_w": -5.0, "duty": 0.8123, "loads": LOADS, "ts": 1.0})
    assert out["loads"]["heater"] == {"kind": "pwm", "on": True, "duty_pct": 81.23,
                                      "power_w": 1600.0, "energy_today_wh": 3200.0,
                                      "held": ""}
    assert out["loads"]["stage 2"]["held"] == "min-off"
    assert out["loads"]["stage 2"]["energy_today_wh"] == 12.346
    assert "loads" not in state_payload({"grid_w": 1.0})


def test_discovery_per_load_only_with_several() -> None:
    cfg = validate({"mqtt": {"enabled": True}, "load": {"bypass_gpio": 22},
                    "relays": RELAYS})
    configs = dict(discovery_configs(cfg))
    power = configs["homeassistant/sensor/vzdivert/load_stage_2_power/config"]
    assert power["value_template"] == '{{ value_json.loads["stage 2"].power_w }}'
    assert power["unit_of_measurement"] == "W" and power["state_topic"] == "vzdivert/state"
    on = configs["homeassistant/binary_sensor/vzdivert/load_heater_bypass_on/config"]
    assert on["value_template"] == \
        "{{ 'ON' if value_json.loads[\"heater bypass\"].on else 'OFF' }}"
    assert "homeassistant/sensor/vzdivert/load_heater_energy_today/config" in configs
    single = dict(discovery_configs(validate({"mqtt": {"enabled": True}})))
    assert not any("/load_" in topic for topic in single)
