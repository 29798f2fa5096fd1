"""The hot-water contract: the exact `[tank]` and `[guarantee]` keys, their live-setting
names, the checks between them, and the MQTT/Home Assistant side (topics, discovery)."""

from __future__ import annotations

import pytest

from vzdivert import mqtt
from vzdivert.config import TUNABLES, ConfigError, validate

SETTINGS = {"tank_max_c": "tank.max_c", "tank_hysteresis_c": "tank.hysteresis_c",
            "guarantee_by": "guarantee.by",
            "guarantee_min_energy_wh": "guarantee.min_energy_wh",
            "guarantee_min_c": "guarantee.min_c", "guarantee_windows": "guarantee.windows"}


def test_public_keys_and_defaults() -> None:
    cfg = validate({})
    assert (cfg.tank.sensor, cfg.tank.json_path, cfg.tank.max_c, cfg.tank.hysteresis_c,
            cfg.tank.sensor_timeout_s) == ("", "", 60, 3, 120)
    assert (cfg.guarantee.by, cfg.guarantee.min_energy_wh, cfg.guarantee.min_c,
            cfg.guarantee.windows) == ("", 0, 0, [])
    for name, path in SETTINGS.items():
        assert TUNABLES[name].path == path


def test_live_settings_by_their_names() -> None:
    cfg = validate({"tank": {"sensor": "w1:28-0316a2799fff"}})
    new = cfg.with_settings({"guarantee_by": "06:30", "guarantee_min_c": 50,
                             "guarantee_windows": ["22:00-06:00"], "tank_max_c": 65,
                             "guarantee_min_energy_wh": 1500, "tank_hysteresis_c": 4})
    assert new.guarantee.by == "06:30" and new.guarantee.windows == ["22:00-06:00"]
    assert new.tank.max_c == 65 and new.tunables()["guarantee_min_energy_wh"] == 1500


@pytest.mark.parametrize("settings, field", [
    ({"guarantee_by": "25:00"}, "guarantee_by"),
    ({"guarantee_by": "7"}, "guarantee_by"),
    ({"guarantee_windows": ["22:00"]}, "guarantee_windows"),
    ({"guarantee_windows": [22]}, "guarantee_windows"),
    ({"guarantee_min_c": 50}, "guarantee_min_c"),  # no sensor configured
    ({"tank_max_c": 10}, "tank_max_c"),
])
def test_bad_settings_name_their_field(settings: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate({}).with_settings(settings)
    assert any(e.startswith(f"{field}:") for e in info.value.errors), info.value.errors


def test_goals_above_max_c_could_never_be_met() -> None:
    cfg = validate({"tank": {"sensor": "mqtt:t", "max_c": 60}})
    with pytest.raises(ConfigError) as info:
        cfg.with_settings({"guarantee_legionella_c": 65})
    assert info.value.errors[0].startswith("guarantee_legionella_c: must be below")
    assert cfg.with_settings({"guarantee_legionella_c": 65, "tank_max_c": 70}).tank.max_c == 70


def test_bad_sensor_spec_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="tank.sensor"):
        validate({"tank": {"sensor": "onewire:28-1"}})
    with pytest.raises(ConfigError, match="guarantee.min_c: needs a tank temperature"):
        validate({"guarantee": {"min_c": 45}})


def test_mqtt_boost_and_pause_payloads() -> None:
    assert mqtt.parse_hotwater(b"30") == {"minutes": 30}
    assert mqtt.parse_hotwater(b'{"minutes": 10, "power_w": 900}') == {"minutes": 10,
                                                                       "power_w": 900}
    for bad in (b"soon", b'{"power_w": 5}', b'{"minutes": 1, "x": 2}'):
        with pytest.raises(ValueError):
            mqtt.parse_hotwater(bad)


def test_home_assistant_gets_switches_buttons_and_the_tank() -> None:
    configs = dict(mqtt.discovery_configs(validate({})))
    boost = configs["homeassistant/switch/vzdivert/boost/config"]
    assert boost["command_topic"] == "vzdivert/boost" and boost["payload_on"] == "30"
    assert boost["payload_off"] == "0" and "mode == 'boost'" in boost["value_template"]
    pause = configs["homeassistant/button/vzdivert/pause_60/config"]
    assert pause["command_topic"] == "vzdivert/pause" and pause["payload_press"] == "60"
    tank = configs["homeassistant/sensor/vzdivert/tank_temperature/config"]
    assert tank["device_class"] == "temperature" and "tank_c" in tank["value_template"]
    assert "homeassistant/number/vzdivert/set_tank_max_c/config" in configs


def test_metrics_show_the_tank_and_the_mode() -> None:
    from types import SimpleNamespace

    from vzdivert.webui.metrics import render_metrics

    feed = SimpleNamespace(state={"ts": 100.0, "grid_w": -50.0, "mode": "boost",
                                  "hold_reason": "", "tank_c": 51.0},
                           health={}, ingest_stats={},
                           hotwater_state={"tank_c": 52.5, "tank_age_s": 4.0})
    body = render_metrics(feed, now=101.0)[0].decode()
    assert "vzdivert_tank_temperature_celsius 52.5" in body
    assert "vzdivert_tank_temperature_age_seconds 4.0" in body
    assert 'vzdivert_mode{mode="boost"} 1.0' in body and 'vzdivert_mode{mode="auto"} 0.0' in body
    assert "vzdivert_tank_hold 0.0" in body


def test_a_mode_change_is_published_at_once() -> None:
    t = mqtt.Throttle(60.0)
    state = {"stale": False, "saturated": False, "mode": "auto", "hold_reason": ""}
    assert t.due(state, 0.0) and not t.due(state, 1.0)
    assert t.due({**state, "mode": "boost"}, 2.0)
    assert t.due({**state, "mode": "boost", "hold_reason": "tank at 61 °C"}, 3.0)
