"""Device presets: `device = "shelly-pro-3em"` etc. expand to the source, URL or topic and
JSON path of that device's documented API (see docs/sources.md); every key stays
overridable. Templates take ``host`` (HTTP), ``device_id`` (MQTT topic) and ``uuid``."""

from __future__ import annotations

from typing import Any

# device -> source -> keys; the first source listed is the device's default
DEVICES: dict[str, dict[str, dict[str, Any]]] = {
    "shelly-pro-3em": {  # Gen2 RPC; over MQTT the same object on <id>/status/em:0
        "http": {"url": "http://{host}/rpc/EM.GetStatus?id=0", "json_path": "total_act_power"},
        "mqtt": {"topic": "{device_id}/status/em:0", "json_path": "total_act_power"},
    },
    "shelly-3em": {"http": {"url": "http://{host}/status", "json_path": "total_power"}},
    "shelly-em": {"http": {"url": "http://{host}/status", "json_path": "emeters.0.power"}},
    "tasmota-sml": {  # meter and power names come from the user's SML script
        "mqtt": {"topic": "tele/{device_id}/SENSOR", "json_path": "SML.Power"},
        "http": {"url": "http://{host}/cm?cmnd=Status%2010", "json_path": "StatusSNS.SML.Power"},
    },
    "homewizard-p1": {"http": {"url": "http://{host}/api/v1/data",
                               "json_path": "active_power_w"}},
    "vzlogger-local": {  # vzlogger's "local" server; its ?mode=comet does not block (0.8.x)
        "http": {"url": "http://{host}/{uuid}", "json_path": "data.0.tuples.-1.1",
                 "time_path": "data.0.tuples.-1.0"},
    },
}
TEMPLATE_KEYS = {"url": ("host", "uuid"), "topic": ("device_id",)}


def expand(entry: dict[str, Any]) -> dict[str, Any]:
    """The channel table with its preset applied (explicit keys win). Raises ValueError
    naming the missing key or the unknown device."""
    device = entry.get("device")
    if not device:
        return dict(entry)
    sources = DEVICES.get(device)
    if sources is None:
        raise ValueError(f"unknown device {device!r} (known: {', '.join(DEVICES)})")
    source = entry.get("source") or next(iter(sources))
    preset = sources.get(source)
    if preset is None:
        raise ValueError(f"device {device!r} has no {source!r} preset (has: "
                         f"{', '.join(sources)})")
    out = {"source": source}
    for key, template in preset.items():
        if key in entry:
            continue
        if key in TEMPLATE_KEYS:
            needed = [k for k in TEMPLATE_KEYS[key] if "{" + k + "}" in template]
            missing = [k for k in needed if not entry.get(k)]
            if missing:
                raise ValueError(f"device {device!r} over {source} needs {missing[0]!r} "
                                 f"(or give {key!r} yourself)")
            template = template.format(**{k: entry[k] for k in needed})
        out[key] = template
    return {**out, **entry, "source": source}
