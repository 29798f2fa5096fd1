"""Tank temperature readers: the 1-Wire reader on a fake sysfs tree (CRC failure, the
85000 power-on value, a vanishing sensor) and MQTT payloads."""

from __future__ import annotations

import pytest

from vzdivert.tanksensor import SensorError, parse_mqtt, parse_sensor, read_w1

DEV = "28-0316a2799fff"
GOOD = ("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n"
        "72 01 4b 46 7f ff 0e 10 57 t=23125\n")


@pytest.fixture
def w1(tmp_path):
    (tmp_path / DEV).mkdir()
    return tmp_path


def test_w1_slave_reading(w1):
    (w1 / DEV / "w1_slave").write_text(GOOD)
    assert read_w1(DEV, w1) == 23.125


def test_w1_negative_and_temperature_file(w1):
    (w1 / DEV / "temperature").write_text("-1250\n")
    assert read_w1(DEV, w1) == -1.25


def test_crc_failure_is_rejected(w1):
    (w1 / DEV / "w1_slave").write_text(GOOD.replace("YES", "NO"))
    with pytest.raises(SensorError, match="CRC"):
        read_w1(DEV, w1)


@pytest.mark.parametrize("name, text", [
    ("w1_slave", GOOD.replace("t=23125", "t=85000")),
    ("temperature", "85000\n"),
])
def test_power_on_value_is_rejected(w1, name, text):
    (w1 / DEV / name).write_text(text)
    with pytest.raises(SensorError, match="power-on"):
        read_w1(DEV, w1)


def test_sensor_vanishing(w1):
    (w1 / DEV / "w1_slave").write_text(GOOD)
    assert read_w1(DEV, w1) == 23.125
    (w1 / DEV / "w1_slave").unlink()
    (w1 / DEV).rmdir()
    with pytest.raises(SensorError, match="not on the 1-Wire bus"):
        read_w1(DEV, w1)


def test_garbage_and_out_of_range(w1):
    (w1 / DEV / "w1_slave").write_text("00 00 : crc=00 YES\n")
    with pytest.raises(SensorError):
        read_w1(DEV, w1)
    (w1 / DEV / "w1_slave").write_text(GOOD.replace("t=23125", "t=130000"))
    with pytest.raises(SensorError, match="range"):
        read_w1(DEV, w1)


def test_mqtt_payloads():
    assert parse_mqtt(b"54.3") == 54.3
    assert parse_mqtt(b'"54.5"') == 54.5
    doc = b'{"Time": "2026-01-01T00:00:00", "DS18B20": {"Id": "0316", "Temperature": 48.1}}'
    assert parse_mqtt(doc, "DS18B20.Temperature") == 48.1
    assert parse_mqtt(b'{"t": [1, 2.5]}', "t.1") == 2.5
    for bad, path in ((b"warm", ""), (doc, "DS18B20.Nope"), (b"NaN", ""), (b"true", ""),
                      (b"\xff", "")):
        with pytest.raises(SensorError):
            parse_mqtt(bad, path)


def test_sensor_spec():
    assert parse_sensor("") == ("", "")
    assert parse_sensor(f"w1:{DEV}") == ("w1", DEV)
    assert parse_sensor("mqtt:tele/tank/SENSOR") == ("mqtt", "tele/tank/SENSOR")
    for bad in ("w1:", "w1:../x", "mqtt:a/+/b", "onewire:28-1", "28-1"):
        with pytest.raises(ValueError):
            parse_sensor(bad)
