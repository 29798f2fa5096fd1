"""Tank temperature readers: a DS18B20 on the Pi's 1-Wire bus through the kernel's sysfs
files, and MQTT payloads (a plain number, or JSON with a dotted path to the value). Pure
parsing plus one file read; a conversion takes ~750 ms, so never call these in the worker."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

W1_ROOT = "/sys/bus/w1/devices"
POWER_ON_MILLI_C = 85000  # the DS18B20's reset value: read before a conversion finished
VALID_RANGE_C = (-55.0, 125.0)  # the DS18B20's rated range


class SensorError(RuntimeError):
    """No usable reading; the message says why (shown as the reason heating is held)."""


def parse_w1_slave(text: str) -> float:
    """°C from the w1_slave file: line 1 ends in `crc=XX YES` (the kernel checked the CRC),
    line 2 in `t=<milli °C>`."""
    lines = text.strip().splitlines()
    if len(lines) < 2:
        raise SensorError(f"w1_slave: expected two lines, got {text.strip()!r}")
    if not lines[0].rstrip().endswith("YES"):
        raise SensorError("w1_slave: CRC check failed (loose wire or long bus?)")
    _, sep, value = lines[1].rpartition("t=")
    if not sep:
        raise SensorError(f"w1_slave: no t= in {lines[1]!r}")
    return _milli_c(value)


def _milli_c(text: str) -> float:
    try:
        milli = int(text.strip())
    except ValueError as exc:
        raise SensorError(f"not a temperature: {text.strip()!r}") from exc
    if milli == POWER_ON_MILLI_C:
        raise SensorError("85 °C power-on value: the sensor reset (supply?), reading ignored")
    celsius = milli / 1000.0
    if not VALID_RANGE_C[0] <= celsius <= VALID_RANGE_C[1]:
        raise SensorError(f"{celsius:g} °C is outside the DS18B20's range")
    return celsius


def read_w1(device: str, root: str | Path = W1_ROOT) -> float:
    """One reading of a 1-Wire sensor (`28-0316a2799fff`): from `w1_slave`, whose CRC
    verdict we check, else from `temperature` (newer kernels; checked by the kernel)."""
    base = Path(root) / device
    try:
        return parse_w1_slave((base / "w1_slave").read_text())
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise SensorError(f"{device}: {exc.strerror or exc}") from exc
    try:
        return _milli_c((base / "temperature").read_text())
    except FileNotFoundError as exc:
        raise SensorError(f"{device}: not on the 1-Wire bus (is w1-gpio enabled, the sensor "
                          f"wired?)") from exc
    except OSError as exc:
        raise SensorError(f"{device}: {exc.strerror or exc}") from exc


def find_json(doc: Any, path: str) -> Any:
    """`DS18B20.Temperature` -> doc["DS18B20"]["Temperature"]; list items by index."""
    for part in path.split(".") if path else ():
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise SensorError(f"no {path!r} in the payload")
    return doc


def parse_mqtt(payload: bytes, json_path: str = "") -> float:
    """°C from an MQTT payload: `21.5`, or JSON such as Tasmota's
    `{"DS18B20": {"Temperature": 21.5}}` with json_path `DS18B20.Temperature`."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise SensorError("payload is not UTF-8") from exc
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise SensorError(f"not a number or JSON: {text[:60]!r}") from exc
    value = find_json(value, json_path)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError as exc:
            raise SensorError(f"not a number: {value[:60]!r}") from exc
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SensorError(f"not a number: {str(value)[:60]!r}")
    return float(value)


def parse_sensor(spec: str) -> tuple[str, str]:
    """`w1:28-…` -> ("w1", "28-…"), `mqtt:<topic>` -> ("mqtt", topic), "" -> ("", "")."""
    if not spec:
        return "", ""
    kind, sep, where = spec.partition(":")
    if not sep or kind not in ("w1", "mqtt") or not where:
        raise ValueError(f"expected '' or 'w1:28-<id>' or 'mqtt:<topic>', got {spec!r}")
    if kind == "w1" and ("/" in where or where.startswith(".")):
        raise ValueError(f"a 1-Wire id looks like 28-0316a2799fff, got {where!r}")
    if kind == "mqtt" and any(c in where for c in "+#\0"):
        raise ValueError(f"the topic may not contain wildcards, got {where!r}")
    return kind, where
