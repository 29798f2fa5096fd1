"""The `[[ingest.channels]]` contract: which keys a channel table takes for each source
(influx, mqtt, http, sma-em, volkszaehler), its role (grid, battery power, battery state of
charge), device presets, and the frozen spec the ingest runs on. The config check and the
ingest both read channels through here, so a table that validates is a table that runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from vzdivert.meter_presets import expand

SOURCES = ("influx", "mqtt", "http", "sma-em", "volkszaehler")
ROLES = ("grid", "battery_w", "battery_soc")
NUMBER = (int, float)
KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str, "source": str, "role": str, "scale": NUMBER, "device": str,
    "measurement": str, "field": str, "tags": dict,                      # influx
    "topic": str, "device_id": str,                                      # mqtt
    "url": str, "host": str, "interval_s": NUMBER, "timeout_s": NUMBER,  # http
    "json_path": str, "time_path": str,                                  # mqtt, http
    "serial": int,                                                       # sma-em
    "uuid": str,                                                         # volkszaehler
}
ONLY_FOR = {"measurement": ("influx",), "field": ("influx",), "tags": ("influx",),
            "topic": ("mqtt",), "url": ("http",), "interval_s": ("http",),
            "timeout_s": ("http",), "json_path": ("mqtt", "http"),
            "time_path": ("mqtt", "http"), "serial": ("sma-em",)}
REQUIRED = {"mqtt": "topic", "http": "url", "volkszaehler": "uuid"}
MAX_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    name: str
    measurement: str = ""
    field: str = "value"
    tags: tuple[tuple[str, str], ...] = ()
    scale: float = 1.0
    source: str = "influx"
    role: str = "grid"
    topic: str = ""
    json_path: str = ""
    time_path: str = ""
    url: str = ""
    interval_s: float = 1.0
    timeout_s: float = 0.8
    serial: int = 0
    uuid: str = ""

    def matches(self, point: Any) -> bool:
        return self.field in point.fields and all(point.tags.get(k) == v for k, v in self.tags)


def check_channel(entry: Any) -> str | None:
    """What is wrong with one channel table (a message without the entry index), or None."""
    if not isinstance(entry, dict):
        return "must be a table"
    for name, v in entry.items():
        kind = KEYS.get(name)
        if kind is None:
            return f"unknown key {name!r} (allowed: {', '.join(KEYS)})"
        if not isinstance(v, kind) or isinstance(v, bool):
            return f"{name} has the wrong type ({v!r})"
    try:
        ch = expand(entry)
    except ValueError as exc:
        return str(exc)
    source = ch.get("source", "influx")
    if source not in SOURCES:
        return f"source must be one of {', '.join(SOURCES)}, got {source!r}"
    if ch.get("role", "grid") not in ROLES:
        return f"role must be one of {', '.join(ROLES)}, got {ch['role']!r}"
    for key, sources in ONLY_FOR.items():
        if key in ch and source not in sources:
            return f"{key} is for source {' or '.join(sources)}, not {source!r}"
    need = REQUIRED.get(source)
    if need and not ch.get(need):
        return f"source {source!r} needs {need!r}"
    if source == "http":
        parts = urlsplit(ch["url"])
        try:
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError:
            return f"url has a bad port: {ch['url']!r}"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"url must be http(s)://host[:port]/path, got {ch['url']!r}"
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in ch.get("tags", {}).items()):
        return "tag keys and values must be strings"
    interval_s = ch.get("interval_s", 1.0)
    if not 0.1 <= interval_s <= 3600:
        return f"interval_s must be from 0.1 to 3600, got {interval_s!r}"
    if "timeout_s" in ch and not 0 < ch["timeout_s"] < interval_s:
        return f"timeout_s must be above 0 and below interval_s ({interval_s:g}): a slow " \
               f"meter must never delay the next poll"
    if ch.get("serial", 0) < 0:
        return "serial must be >= 0 (0: the first meter heard)"
    return None


def check_channels(entries: list) -> str | None:
    names = set()
    for i, entry in enumerate(entries):
        problem = check_channel(entry)
        if problem:
            return f"entry {i}: {problem}"
        name = spec_from_table(entry, i, "leistung", "value").name
        if name in names:
            return f"entry {i}: name {name!r} is used twice"
        names.add(name)
    if entries and not any(expand(e).get("role", "grid") == "grid" for e in entries):
        return "at least one channel needs role 'grid' (the default)"
    return None


def spec_from_table(entry: dict[str, Any], index: int, measurement: str,
                    field: str) -> ChannelSpec:
    ch = expand(entry)
    source = ch.get("source", "influx")
    interval_s = float(ch.get("interval_s", 1.0))
    timeout_s = float(ch.get("timeout_s", min(0.8 * interval_s, MAX_TIMEOUT_S)))
    measurement = ch.get("measurement", measurement if source == "influx" else "")
    default_name = f"{measurement}#{index}" if source == "influx" else f"{source}#{index}"
    return ChannelSpec(
        ch.get("name", default_name), measurement, ch.get("field", field),
        tuple(sorted(ch.get("tags", {}).items())), float(ch.get("scale", 1.0)), source,
        ch.get("role", "grid"), ch.get("topic", ""), ch.get("json_path", ""),
        ch.get("time_path", ""), ch.get("url", ""), interval_s, timeout_s,
        int(ch.get("serial", 0)), ch.get("uuid", "").lower())


def specs_from_config(cfg: Any) -> list[ChannelSpec]:
    """``[ingest] channels`` if given, else one channel from measurement/field/tags."""
    ing = cfg.ingest
    if not ing.channels:
        return [ChannelSpec("grid", ing.measurement, ing.field, tuple(sorted(ing.tags.items())))]
    return [spec_from_table(ch, i, ing.measurement, ing.field)
            for i, ch in enumerate(ing.channels)]
