"""The meter sources' pure parts: payload extraction, presets, the channel contract, SMA
datagrams, vzlogger's middleware and push bodies, and the battery policy."""

from __future__ import annotations

import json

import pytest
from meterfakes import DEVICES, UUID, sma_datagram, tasmota_sensor

from vzdivert import meter_presets as presets
from vzdivert.channel_spec import check_channel, specs_from_config
from vzdivert.config import ConfigError, validate
from vzdivert.ingest.battery import BatteryPolicy, BatteryView
from vzdivert.ingest.channels import Channels, ChannelSpec
from vzdivert.ingest.sources import volkszaehler
from vzdivert.ingest.sources.sma_em import parse_datagram
from vzdivert.ingest.sources.values import PayloadError, extract
from vzdivert.ingest.stats import IngestStats

NOW = 1_795_475_164.0


# -- payloads ------------------------------------------------------------------------------
def test_plain_numbers_and_json_paths() -> None:
    assert extract(b"-1234.500000") == (-1234.5, None)  # vzlogger's MQTT payload
    assert extract(b' { "timestamp": 1795976811598, "value": 100.0 } ', "value",
                   "timestamp") == (100.0, 1795976811.598)
    assert extract(json.dumps(tasmota_sensor(-432)).encode(), "SML.Power") == (-432.0, None)
    body = json.dumps({"data": [{"tuples": [[1000, 1], [2000, -5.5]]}]}).encode()
    assert extract(body, "data.0.tuples.-1.1", "data.0.tuples.-1.0") == (-5.5, 2.0)


@pytest.mark.parametrize("payload,path,reason", [
    (b"abc", "", "not_numeric"), (b"nan", "", "not_finite"), (b"inf", "", "not_finite"),
    (b"", "", "not_numeric"), (b"<html>", "a", "bad_json"), (b'{"a": 1}', "b", "path_missing"),
    (b'{"a": "12"}', "a", "not_numeric"), (b'{"a": true}', "a", "not_numeric"),
    (b'{"a": NaN}', "a", "not_finite"), (b'{"a": [1]}', "a.3", "path_missing"),
    (b'{"a": null}', "a", "not_numeric"), (b"\xff\xfe", "", "not_numeric"),
])
def test_garbage_is_rejected_with_a_reason(payload: bytes, path: str, reason: str) -> None:
    with pytest.raises(PayloadError) as err:
        extract(payload, path)
    assert err.value.reason == reason


# -- presets -------------------------------------------------------------------------------
@pytest.mark.parametrize("device", sorted(DEVICES))
def test_every_preset_reads_its_documented_payload(device: str) -> None:
    path, payload = DEVICES[device]
    ch = presets.expand({"device": device, "host": "127.0.0.1:8099", "uuid": UUID,
                         "device_id": "meter"})
    assert ch["source"] == "http" or device == "tasmota-sml"
    http = presets.expand({"device": device, "source": "http", "host": "127.0.0.1:8099",
                           "uuid": UUID})
    assert http["url"] == f"http://127.0.0.1:8099{path}"
    value, _ = extract(json.dumps(payload(-812.5)).encode(), http["json_path"],
                       http.get("time_path", ""))
    assert value == -812.5


def test_presets_are_overridable_and_say_what_is_missing() -> None:
    ch = presets.expand({"device": "tasmota-sml", "device_id": "meter",
                         "json_path": "MT681.Power_curr"})
    assert ch == {"source": "mqtt", "topic": "tele/meter/SENSOR", "device": "tasmota-sml",
                  "device_id": "meter", "json_path": "MT681.Power_curr"}
    gen2 = presets.expand({"device": "shelly-pro-3em", "source": "mqtt",
                           "device_id": "shellypro3em-c8f09e8f1234"})
    assert gen2["topic"] == "shellypro3em-c8f09e8f1234/status/em:0"
    with pytest.raises(ValueError, match="needs 'host'"):
        presets.expand({"device": "homewizard-p1"})
    with pytest.raises(ValueError, match="unknown device"):
        presets.expand({"device": "fronius"})
    with pytest.raises(ValueError, match="no 'mqtt' preset"):
        presets.expand({"device": "homewizard-p1", "source": "mqtt"})


# -- the channel contract ------------------------------------------------------------------
def test_issue_contract_validates() -> None:
    cfg = validate({"ingest": {"channels": [
        {"source": "mqtt", "topic": "tele/meter/SENSOR", "json_path": "SML.Power", "scale": 1},
        {"source": "http", "url": "http://shelly.local/rpc/EM.GetStatus?id=0",
         "json_path": "total_act_power", "interval_s": 1, "role": "battery_w"},
        {"source": "sma-em", "serial": 0, "role": "battery_soc"},
        {"source": "volkszaehler", "uuid": "4a2677c0-0f1f-11ed-aa45-a39ab6e64720"},
        {"measurement": "leistung"},
    ]}})
    specs = specs_from_config(cfg)
    assert [s.source for s in specs] == ["mqtt", "http", "sma-em", "volkszaehler", "influx"]
    assert [s.name for s in specs] == ["mqtt#0", "http#1", "sma-em#2", "volkszaehler#3",
                                       "leistung#4"]
    assert specs[1].timeout_s == pytest.approx(0.8) and specs[1].role == "battery_w"


@pytest.mark.parametrize("entry,message", [
    ({"source": "modbus"}, "source must be one of"),
    ({"source": "mqtt"}, "needs 'topic'"),
    ({"source": "http", "url": "shelly.local/status"}, "http(s)://"),
    ({"source": "http", "url": "http://shelly.local:80a/status"}, "bad port"),
    ({"source": "http", "url": "http://x/", "interval_s": 1, "timeout_s": 1}, "below interval_s"),
    ({"source": "http", "url": "http://x/", "interval_s": 0.01}, "interval_s"),
    ({"source": "mqtt", "topic": "t", "url": "http://x/"}, "url is for source http"),
    ({"source": "sma-em", "serial": -1}, "serial"),
    ({"source": "sma-em", "serial": "1"}, "wrong type"),
    ({"source": "volkszaehler"}, "needs 'uuid'"),
    ({"role": "battery"}, "role must be"),
    ({"device": "shelly-em"}, "needs 'host'"),
    ({"topic": "x"}, "topic is for source mqtt"),
    ({"colour": "red"}, "unknown key"),
])
def test_bad_channel_tables_name_the_problem(entry: dict, message: str) -> None:
    assert message in (check_channel(entry) or "")
    with pytest.raises(ConfigError, match="ingest.channels"):
        validate({"ingest": {"channels": [entry]}})


def test_channels_need_a_grid_role_and_unique_names() -> None:
    with pytest.raises(ConfigError, match="role 'grid'"):
        validate({"ingest": {"channels": [{"role": "battery_w"}]}})
    with pytest.raises(ConfigError, match="used twice"):
        validate({"ingest": {"channels": [{"name": "a"}, {"name": "a", "scale": -1}]}})


# -- SMA Energy Meter ----------------------------------------------------------------------
def test_sma_datagram_grid_is_import_minus_export() -> None:
    assert parse_datagram(sma_datagram(1234.5, 0)) == (1901234567, 1234.5)
    assert parse_datagram(sma_datagram(0, 800.2, serial=7)) == (7, -800.2)


@pytest.mark.parametrize("data,reason", [
    (b"", "bad_datagram"), (b"XYZ\0" + bytes(40), "bad_datagram"),
    (sma_datagram(1, 0)[:30], "bad_datagram"),
    (sma_datagram(1, 0).replace(b"\x60\x69", b"\x60\x81", 1), "other_protocol"),
    (b"SMA\0" + bytes(4), "bad_datagram"),
])
def test_sma_garbage_is_rejected(data: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as err:
        parse_datagram(data)
    assert err.value.reason in (reason, "path_missing")


# -- vzlogger's middleware and push bodies (as json-c prints them) ---------------------------
def vz_app() -> tuple[volkszaehler.VolkszaehlerApi, list, IngestStats]:
    channels = Channels([ChannelSpec("vz", source="volkszaehler", uuid=UUID)],
                        stale_after_s=10, clock=lambda: NOW)
    published: list = []
    stats = IngestStats()
    return volkszaehler.VolkszaehlerApi(channels, stats, published.extend), published, stats


def test_middleware_data_api() -> None:
    api, published, stats = vz_app()
    path = f"/middleware.php/data/{UUID}.json"
    assert volkszaehler.route("POST", path) == "data"
    assert volkszaehler.route("POST", f"/data/{UUID}.json") == "data"
    assert volkszaehler.route("GET", path) is None
    t = int(NOW * 1000)
    body = f"[ [ {t - 2000}, -1200.5 ], [ {t}, -1234.5 ], [ {t - 1000}, -1100 ] ]".encode()
    assert api.handle("data", path, body) == (200, {"version": "0.3", "rows": 3})
    [r] = published
    assert r["grid_w"] == -1234.5 and r["ts"] == NOW
    # an old chunk (vzlogger drains its backlog one chunk per reading): 200, never used
    old = f"[ [ {t - 600_000}, -1 ] ]".encode()
    assert api.handle("data", path, old)[0] == 200 and len(published) == 1
    assert stats.rejects["stale"] == 1
    # a uuid nobody configured: 200 (else vzlogger piles it up), counted, hinted
    assert api.handle("data", "/middleware.php/data/0000-1.json", body)[0] == 200
    assert "0000-1" in stats.snapshot()["problem"]
    status, answer = api.handle("data", path, b"[1, 2]")
    assert status == 400 and "exception" in answer and stats.rejects["bad_json"] == 1


def test_push_format() -> None:
    api, published, stats = vz_app()
    t = int(NOW * 1000)
    body = json.dumps({"data": [{"uuid": UUID.upper(), "tuples": [[t, -99.0]]},
                                {"uuid": "other", "tuples": [[t, 5.0]]}]}).encode()
    assert api.handle("push", "/push", body) == (200, {"version": "0.3", "rows": 2})
    assert published[-1]["grid_w"] == -99.0
    bad = json.dumps({"data": [{"uuid": UUID, "tuples": [[t, "x"]]}]}).encode()
    assert api.handle("push", "/push", bad)[0] == 200
    assert stats.rejects["not_numeric"] == 1 and len(published) == 1


# -- sources through the channel rules -----------------------------------------------------
def test_offer_sums_grid_channels_and_needs_each_fresh() -> None:
    now = [NOW]
    channels = Channels([ChannelSpec("imp", source="mqtt"),
                         ChannelSpec("exp", source="http", scale=-1)], stale_after_s=10,
                        clock=lambda: now[0])
    stats = IngestStats()
    assert channels.offer({"imp": (500.0, None)}, stats) == []  # export not heard yet
    [r] = channels.offer({"exp": (800.0, None)}, stats)
    assert r["grid_w"] == -300.0
    now[0] += 11
    assert channels.offer({"imp": (400.0, None)}, stats) == []  # export went stale
    assert channels.offer({"imp": (float("nan"), None)}, stats) == []
    assert stats.rejects["not_finite"] == 1
    assert stats.snapshot()["channels"]["imp"]["rejects"] == {"not_finite": 1}


def test_unmatched_influx_write_names_the_fix() -> None:
    from vzdivert.ingest.lineproto import parse

    channels = Channels([ChannelSpec("grid", "leistung")], stale_after_s=10, clock=lambda: NOW)
    stats = IngestStats()
    points, _ = parse(f"vzlogger value=-5 {int(NOW * 1000)}\n".encode(), "ms")
    assert channels.accept(points, stats) == []
    problem = stats.snapshot()["problem"]
    assert "'vzlogger'" in problem and "measurement_name" in problem and "'leistung'" in problem


# -- the battery ---------------------------------------------------------------------------
def test_battery_first_diverts_only_export_and_never_the_battery() -> None:
    view = BatteryView(BatteryPolicy("battery_first", give_back_w=0))
    assert view.control_grid_w(-300, 2000, 95) == -300  # charging: not surplus
    assert view.control_grid_w(0, -500, 50) == 500      # discharging counts as import
    assert view.control_grid_w(-300, None, None) == -300
    view = BatteryView(BatteryPolicy("battery_first", give_back_w=50))
    assert view.control_grid_w(0, 2000, 95) == 50       # the heater yields to the battery
    assert view.control_grid_w(-400, 10, 100) == -400   # full: nothing to yield to


def test_heater_first_above_soc_with_reserve_and_hysteresis() -> None:
    view = BatteryView(BatteryPolicy("heater_first", 80, 200, 2, give_back_w=0))
    assert view.control_grid_w(0, 1500, 79.9) == 0          # below the threshold
    assert view.control_grid_w(0, 1500, 80) == -1300        # charge above reserve: surplus
    assert view.control_grid_w(0, 1500, 78.5) == -1300      # within the hysteresis
    assert view.control_grid_w(0, 1500, 77.9) == 0          # below it: battery first again
    assert view.control_grid_w(0, 100, 90) == 0             # under the reserve: nothing
    assert view.control_grid_w(0, -400, 90) == 400          # discharge: import
    assert view.control_grid_w(-50, 1500, None) == -50      # no SoC known: battery first


def test_battery_roles_in_the_reading() -> None:
    channels = Channels([ChannelSpec("grid", source="mqtt"),
                         ChannelSpec("bat", source="http", role="battery_w"),
                         ChannelSpec("soc", source="http", role="battery_soc")],
                        stale_after_s=10, clock=lambda: NOW,
                        battery=BatteryPolicy("heater_first", 80))
    stats = IngestStats()
    assert channels.offer({"bat": (1000.0, None), "soc": (85.0, None)}, stats) == []
    [r] = channels.offer({"grid": (10.0, None)}, stats)
    assert r["grid_w"] == -990 and r["meter_grid_w"] == 10 and r["heater_first"] is True
    assert stats.snapshot()["battery"] == {
        "policy": "heater_first", "battery_w": 1000.0, "soc_pct": 85.0, "meter_grid_w": 10.0,
        "control_grid_w": -990.0, "heater_first": True}
