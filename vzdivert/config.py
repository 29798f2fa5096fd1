"""The configuration schema: one table of keys from which validation, `check-config`,
the example file and the UI's help text are all derived (Klipper-style: name, default and
range sit together, and every error names ``section.key``)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any


class ConfigError(ValueError):
    """A config file or a settings change is invalid. ``problems`` maps each bad key (its
    path in a file, its setting name live) to what is wrong with it; ``errors`` says the
    same in sentences for people, one per key, naming the file where there is one."""

    def __init__(self, errors: list[str], problems: dict[str, str] | None = None):
        super().__init__("\n".join(errors))
        self.errors = errors
        self.problems = problems or {}

    @classmethod
    def of(cls, problems: dict[str, str], source: str = "") -> ConfigError:
        head = f"{source}: " if source else ""
        return cls([f"{head}{key}: {problem}" for key, problem in problems.items()], problems)


def _add(problems: dict[str, str], key: str, problem: str) -> None:
    problems[key] = f"{problems[key]}; {problem}" if key in problems else problem


# Keys whose values never appear in output or errors (check-config prints ***).
SECRET_NAMES = frozenset({"password", "token", "forward_password", "forward_token"})


@dataclass(frozen=True)
class Key:
    section: str
    name: str
    type: type
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    unit: str = ""
    tunable: bool = False  # may be changed live (web UI, API, MQTT) and is persisted
    check: Callable[[Any], str | None] | None = None  # extra rule: returns an error or None
    setting: str = ""  # the live setting's name when not the key's own (`guarantee_by`)
    kind: str = ""  # what the value is, when the type alone says it wrongly (a list of what)

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}"

    def allowed(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        kind = self.kind or {float: "a number", int: "an integer", str: "a string",
                             bool: "true or false", list: "a list of tables",
                             dict: "a table"}[self.type]
        if self.min is not None and self.max is not None:
            return f"{kind} from {self.min:g} to {self.max:g}"
        if self.min is not None:
            return f"{kind} >= {self.min:g}"
        if self.max is not None:
            return f"{kind} <= {self.max:g}"
        return kind

    def coerce(self, value: Any) -> Any:
        """Return the value in this key's type, or raise ValueError saying what is allowed
        (the problem alone: the caller names the key as its reader knows it). A secret's
        value is never echoed."""
        secret = self.name in SECRET_NAMES
        got = f"a value of type {type(value).__name__}" if secret else repr(value)
        bad = ValueError(f"expected {self.allowed()}, got {got}")
        if self.type is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                raise bad
        elif self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise bad
        elif not isinstance(value, self.type):
            raise bad
        if self.choices is not None and value not in self.choices:
            raise bad
        if self.min is not None and value < self.min:
            raise bad
        if self.max is not None and value > self.max:
            raise bad
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise ValueError(problem)
        return value


def _listen_check(value: str) -> str | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return f"expected HOST:PORT (e.g. '0.0.0.0:8080'), got {value!r}"
    return None


def _is_ip(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _tags_check(value: dict) -> str | None:
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return "tag keys and values must be strings"
    return None


def _channels_check(value: list) -> str | None:
    from vzdivert.channel_spec import check_channels
    return check_channels(value)


def _topic_check(value: str) -> str | None:
    if not value or value.startswith("/") or value.endswith("/") or any(
            c in value for c in "+#\0"):
        return f"expected a topic without wildcards or leading/trailing '/', got {value!r}"
    return None


def _password_check(value: str) -> str | None:
    if value.startswith("pbkdf2_sha256$"):
        parts = value.split("$")
        if len(parts) != 4 or not parts[1].isdigit() or not parts[2] or not parts[3]:
            return "malformed hash (expected pbkdf2_sha256$ITERATIONS$SALT$HASH)"
    return None


MIN_DUTY_STEP = 1e-4  # table curve points must be at least this far apart in duty


def check_table_points(points: Any) -> list[tuple[float, float]]:
    """Validate calibration points: >= 2 pairs [duty, fraction] in [0, 1], duty strictly
    increasing, fraction non-decreasing. Returns them as tuples; raises ValueError."""
    if not isinstance(points, (list, tuple)) or len(points) < 2:
        raise ValueError("table curve: need at least 2 points [duty, fraction]")
    out: list[tuple[float, float]] = []
    for p in points:
        if (not isinstance(p, (list, tuple)) or len(p) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)):
            raise ValueError(f"table curve: each point must be [duty, fraction], got {p!r}")
        d, f = float(p[0]), float(p[1])
        if not (0.0 <= d <= 1.0 and 0.0 <= f <= 1.0):
            raise ValueError(f"table curve: duty and fraction must be in [0, 1], got {p!r}")
        if d < MIN_DUTY_STEP and f != 0.0:
            raise ValueError(f"table curve: at duty 0 the load must be off, got {p!r}")
        if out and (d < out[-1][0] + MIN_DUTY_STEP or f < out[-1][1]):
            raise ValueError("table curve: duty must increase (by >= 0.0001) and fraction "
                             f"must not decrease (at {p!r})")
        out.append((d, f))
    if out[-1][1] <= out[0][1]:
        raise ValueError("table curve: power never rises over the points")
    return out


def _problem(parse: Callable[[Any], object]) -> Callable[[Any], str | None]:
    """A schema check from a parser: a non-empty value it refuses (ValueError) is a problem,
    named by the parser's own message."""
    def check(value: Any) -> str | None:
        try:
            if value:
                parse(value)
        except ValueError as exc:
            return str(exc)
        return None
    return check


def _parse_sensor(value: str) -> object:
    from vzdivert.tanksensor import parse_sensor  # the sensor's module owns its syntax
    return parse_sensor(value)


def _parse_hhmm(value: str) -> object:
    from vzdivert.guarantee import parse_hhmm
    return parse_hhmm(value)


_curve_points_check = _problem(check_table_points)
_sensor_check = _problem(_parse_sensor)
_hhmm_check = _problem(_parse_hhmm)


def _timezone_check(value: str) -> str | None:
    if not value:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {value!r} (expected e.g. 'Europe/Berlin')"
    return None


def _windows_check(value: list) -> str | None:
    from vzdivert.guarantee import parse_window
    for item in value:
        try:
            parse_window(item if isinstance(item, str) else "")
        except ValueError as exc:
            return f"{exc} (entry {item!r})" if isinstance(item, str) else \
                f"expected strings like \"22:00-06:00\", got {item!r}"
    return None


HW_PWM_GPIOS = (12, 13, 18, 19)

SCHEMA: tuple[Key, ...] = (
    Key("ingest", "listen", str, "0.0.0.0:8080",
        "Address the InfluxDB-compatible write endpoint listens on; vzlogger's `host` points here.",
        check=_listen_check),
    Key("ingest", "database", str, "vzlogger",
        "Database (v1 `db`) or bucket (v2) that vzlogger writes to; others get 404."),
    Key("ingest", "measurement", str, "leistung",
        "Measurement name carrying the grid power (vzlogger's `measurement_name`)."),
    Key("ingest", "field", str, "value", "Field holding the grid power in watts."),
    Key("ingest", "tags", dict, {},
        "Tags a point must carry to count, e.g. { uuid = \"4a2677c0-...\" } when several "
        "channels post to the same measurement.", check=_tags_check),
    Key("ingest", "channels", list, [],
        "Where the grid power comes from: a list of tables, each with a source (influx, mqtt, "
        "http, sma-em, volkszaehler; or a device preset), its keys (measurement/field/tags, "
        "topic, url, serial, uuid; json_path), scale and role (grid, battery_w, battery_soc); "
        "grid channels are summed. Empty: one influx channel from measurement/field/tags "
        "above. See docs/sources.md.", check=_channels_check),
    Key("ingest", "username", str, "", "Require this user (v1 Basic auth or u/p); empty: none."),
    Key("ingest", "password", str, "", "Password for `username`."),
    Key("ingest", "token", str, "", "Require `Authorization: Token <token>` (v2); empty: none."),
    Key("ingest", "clock_skew_s", float, 60.0,
        "A timestamp further than this in the future means the logger's clock is wrong: the "
        "arrival time is used instead, and it is reported.", min=0, max=86400, unit="s"),
    Key("ingest", "clock_far_past_s", float, 86400.0,
        "A newest timestamp older than this means the logger's clock is wrong (arrival time "
        "used, reported); younger but older than stale_after_s means a replayed old reading, "
        "which is dropped.", min=60, max=10 * 365 * 86400, unit="s"),
    Key("ingest", "forward_url", str, "",
        "Also send every accepted write to this InfluxDB write URL (e.g. "
        "http://nas:8086/write?db=vzlogger or .../api/v2/write?org=home&bucket=vz); "
        "empty: off. Never delays control; drops are counted.",
        check=lambda v: None if not v or v.startswith(("http://", "https://"))
        else "expected an http:// or https:// URL"),
    Key("ingest", "forward_token", str, "", "Token for the upstream (v2); empty: none."),
    Key("ingest", "forward_username", str, "", "User for the upstream (v1 Basic auth)."),
    Key("ingest", "forward_password", str, "", "Password for `forward_username`."),
    Key("ingest", "forward_queue", int, 1000,
        "Writes held while the upstream is slow or down; more are dropped and counted.",
        min=1, max=1_000_000),
    Key("ingest", "max_body_bytes", int, 1_000_000,
        "Largest request body accepted; bigger writes get 413. vzlogger's largest batch "
        "(4,500 lines) is ~200 kB.", min=1024, max=100_000_000, unit="bytes"),
    # -- meter sources and the battery (docs/sources.md) --
    Key("ingest", "sma_listen", str, "0.0.0.0:9522",
        "UDP address sma-em channels listen on (datagrams to the group or sent here directly).",
        check=_listen_check),
    Key("ingest", "sma_group", str, "239.12.255.254",
        "Multicast group sma-em channels join; empty: no join (unicast only)."),
    Key("battery", "policy", str, "battery_first",
        "With battery_w/battery_soc channels: battery_first diverts only what the grid exports; "
        "heater_first counts the battery's charging power above charge_reserve_w as surplus "
        "once its state of charge reaches heater_first_above_soc_pct. Discharge always counts "
        "as import.", choices=("battery_first", "heater_first")),
    Key("battery", "heater_first_above_soc_pct", float, 80.0,
        "State of charge from which the heater comes before the battery (heater_first).",
        min=0, max=100, unit="%"),
    Key("battery", "soc_hysteresis_pct", float, 2.0,
        "heater_first ends only when the state of charge falls this far below the threshold.",
        min=0, max=50, unit="%"),
    Key("battery", "charge_reserve_w", float, 0.0,
        "Charging power left to the battery under heater_first.", min=0, max=100_000, unit="W"),
    Key("battery", "give_back_w", float, 50.0,
        "While the battery charges and the heater does not come first, this much counts as "
        "import, so the heater yields surplus to a battery that regulates to zero more slowly "
        "than we do; 0 = off.", min=0, max=10_000, unit="W"),
    Key("output", "driver", str, "pigpio",
        "Output back-end: pigpio (Pi <= 4), sysfs (kernel PWM, Pi 5; relays through libgpiod) "
        "or sim (no hardware).",
        choices=("pigpio", "sim", "sysfs")),
    Key("output", "gpio", int, 12,
        "BCM GPIO of the PWM output; 12, 13, 18 and 19 use hardware PWM.", min=0, max=53),
    Key("output", "frequency_hz", int, 600,
        "PWM frequency. Phase-fired modules read the duty at a few hundred Hz; an SSR wants a "
        "few Hz so the meter can average it.", min=1, max=30_000_000, unit="Hz", tunable=True),
    Key("output", "pigpio_host", str, "127.0.0.1", "Host of the pigpiod daemon."),
    Key("output", "pigpio_port", int, 8888, "TCP port of the pigpiod daemon.", min=1, max=65535),
    Key("output", "pwm_range", int, 1000,
        "Duty steps of pigpio software PWM (GPIOs other than 12, 13, 18, 19); pigpiod may "
        "offer fewer at the chosen frequency.", min=25, max=40000),
    Key("output", "status_gpio", int, -1,
        "GPIO lit while the output is on (pigpio driver); -1: none.", min=-1, max=53),
    Key("output", "sysfs_root", str, "/sys/class/pwm",
        "Kernel PWM class directory (sysfs driver)."),
    Key("output", "sysfs_device", str, "1f00098000.pwm",
        "The PWM chip's device path ends in this (sysfs driver); 1f00098000.pwm is the Pi 5's."),
    Key("output", "sysfs_channel", int, -1,
        "PWM channel (sysfs driver); -1: from the GPIO (Pi 5: 12, 13, 18, 19 -> 0-3).",
        min=-1, max=15),
    Key("output", "gpiod_chip", str, "pinctrl-rp1",
        "GPIO chip of the relays and the bypass with the sysfs driver (through libgpiod): its "
        "label, or a device path such as /dev/gpiochip4; pinctrl-rp1 is the Pi 5's header."),
    Key("load", "rating_w", float, 2000.0, "Power the load draws at full output.",
        min=1, max=100_000, unit="W", tunable=True),
    Key("load", "curve", str, "linear",
        "Power-to-duty mapping: linear (SSR, burst firing), pfc (phase-fired controller, exact "
        "inverse of its power curve), parametric (the original project's acos + tuned curve, "
        "exponents curve_e1/curve_e2) or table (measured points, see curve_points).",
        choices=("linear", "pfc", "parametric", "table"), tunable=True),
    Key("load", "curve_e1", float, 0.67, "Inner exponent of the parametric curve.",
        min=0.05, max=5, tunable=True),
    Key("load", "curve_e2", float, 0.88, "Outer exponent of the parametric curve.",
        min=0.05, max=5, tunable=True),
    Key("load", "curve_points", list, [],
        "Calibration points [[duty, fraction], ...] for curve = table (duty rising, fraction "
        "not falling, both 0..1); `vzdivert calibrate` writes them.",
        tunable=True, check=_curve_points_check, kind="a list of [duty, fraction] pairs"),
    Key("load", "learn_rating", bool, True,
        "Learn what the load really draws at full output (0.5-1.5x rating_w) from the "
        "controller's own moves, and control and count energy with that; the estimate "
        "starts afresh when rating_w changes. With [[relays]] or a bypass each load learns "
        "its own (a relay from the meter's answer at its switches). false: use the "
        "ratings as they are.", tunable=True),
    # -- several loads (issue 12): the PWM load's place among the relays, the bypass --
    Key("load", "name", str, "heater", "Name of the PWM load (dashboard, MQTT, metrics).",
        check=lambda v: None if v.strip() else "must not be empty"),
    Key("load", "priority", int, 0,
        "Order of filling among the loads: lower first; relays with the same priority come "
        "after the PWM load, in file order.", min=-100, max=100),
    Key("load", "bypass_gpio", int, -1,
        "GPIO of a relay that bridges the SSR or phase-fired module once the PWM load has run "
        "at 100 % for bypass_after_s (the PWM then goes to 0); -1: no bypass.", min=-1, max=53),
    Key("load", "bypass_after_s", float, 60.0,
        "The PWM load must run at 100 % this long before the bypass closes.",
        min=1, max=3600, unit="s"),
    Key("load", "relay_margin_w", float, 100.0,
        "A relay switches on once the surplus covers its rating plus this, and off once it no "
        "longer covers the rating (or the PWM load could take it all with this to spare); the "
        "bypass opens when the surplus falls this far below the rating.",
        min=0, max=10_000, unit="W", tunable=True),
    Key("load", "relay_on_after_s", float, 10.0,
        "A relay switches on only once the surplus has covered it this long (a leaky count: "
        "short dips do not restart it).", min=0, max=3600, unit="s", tunable=True),
    Key("load", "relay_off_after_s", float, 60.0,
        "A relay switches off only once it has lacked surplus this long; a shortfall of its "
        "whole rating counts at that pace, a bigger one faster, a small one up to 16x "
        "slower (with the square of its share): short clouds are ridden through; sooner "
        "when its shortfalls have lasted long lately (learned): riding through would cost "
        "more than two switches priced at this long of its rating.",
        min=0, max=3600, unit="s", tunable=True),
    Key("control", "target_w", float, 0.0,
        "Grid power setpoint; negative allows some export, positive some import.",
        min=-100_000, max=100_000, unit="W", tunable=True),
    Key("control", "response_up_s", float, 0.0,
        "Time constant for raising the power; 0 = as fast as the meter allows (deadbeat).",
        min=0, max=600, unit="s", tunable=True),
    Key("control", "response_down_s", float, 0.0,
        "Time constant for lowering the power; 0 = as fast as the meter allows (deadbeat).",
        min=0, max=600, unit="s", tunable=True),
    Key("control", "deadband_w", float, 0.0,
        "Grid errors smaller than this do not move the output.",
        min=0, max=10_000, unit="W", tunable=True),
    Key("control", "slew_w_per_s", float, 0.0,
        "Largest change of the commanded power per second; 0 = unlimited.",
        min=0, max=1_000_000, unit="W/s", tunable=True),
    Key("control", "max_delay_samples", int, 1,
        "How many readings late the meter may show a change of the output (its averaging "
        "and reporting delay); the controller is deadbeat for any delay up to this.",
        min=0, max=8, unit="readings", tunable=True),
    Key("control", "saturation_w", float, 250.0,
        "Size of the moves that test whether the load still draws (thermostat open?); "
        "keep it well above the household's noise.",
        min=10, max=100_000, unit="W", tunable=True),
    Key("control", "probe_every_s", float, 120.0,
        "At 100 % with export, probe the load (a short dip) after this long, doubling while "
        "it answers; 0 = never probe.", min=0, max=86_400, unit="s", tunable=True),
    Key("control", "ramp_lead", float, 1.0,
        "On a steady ramp (clouds), lead the surplus by this many delay windows; 0 = off.",
        min=0, max=2, tunable=True),
    Key("watchdog", "stale_after_s", float, 10.0,
        "Output goes to 0 when no fresh reading arrived for this long.",
        min=0.5, max=300, unit="s", tunable=True),
    Key("rtworker", "priority", int, 50,
        "SCHED_FIFO priority of the control loop; 0 = normal scheduling.", min=0, max=99),
    Key("rtworker", "cpu", int, -1, "Pin the control loop to this CPU; -1 = no pinning.",
        min=-1, max=1023),
    Key("rtworker", "lock_memory", bool, True, "mlockall() the worker so it never pages."),
    Key("rtworker", "heartbeat_s", float, 0.25,
        "State is published at least this often; the supervisor treats silence as a hang.",
        min=0.05, max=2, unit="s"),
    Key("supervisor", "hang_after_s", float, 1.5,
        "A worker silent this long is killed, the output driven to 0, and it is restarted.",
        min=0.2, max=30, unit="s"),
    Key("webui", "listen", str, "127.0.0.1:8081", "Address of the web UI.", check=_listen_check),
    Key("webui", "password", str, "",
        "Password for changes (user admin), plain text or a hash made by `vzdivert "
        "hash-password` (pbkdf2_sha256$...); empty means no login, allowed only on loopback.",
        check=_password_check),
    Key("webui", "read_only_view", bool, False,
        "With a password set: let anyone who can reach the UI view it (and /api/state) "
        "without logging in; changes still need the password."),
    Key("webui", "trusted_proxy", str, "",
        "Address of a TLS-terminating reverse proxy (Caddy, nginx) in front of the UI, e.g. "
        "127.0.0.1: its X-Forwarded-Proto/-For/-Host are believed (https login, secure "
        "cookies, the real client for login limits). Empty: none.",
        check=lambda v: None if not v or _is_ip(v) else f"expected an IP address, got {v!r}"),
    Key("webui", "threads", int, 8,
        "Web server threads; live-update streams may use all but two of them.", min=4, max=64),
    Key("mqtt", "enabled", bool, False,
        "Run the MQTT bridge: state to topics, Home Assistant discovery, settings commands."),
    Key("mqtt", "host", str, "127.0.0.1", "Host of the MQTT broker."),
    Key("mqtt", "port", int, 1883, "TCP port of the MQTT broker (8883 usually with tls).",
        min=1, max=65535),
    Key("mqtt", "tls", bool, False,
        "Connect with TLS, checking the broker against the system CAs."),
    Key("mqtt", "username", str, "", "Broker user; empty: connect anonymously."),
    Key("mqtt", "password", str, "", "Password for `username`."),
    Key("mqtt", "client_id", str, "", "MQTT client id; empty: vzdivert-<hostname>."),
    Key("mqtt", "topic_prefix", str, "vzdivert",
        "Topics live under this prefix: <prefix>/state, <prefix>/availability, <prefix>/set/...",
        check=_topic_check),
    Key("mqtt", "discovery_prefix", str, "homeassistant",
        "Home Assistant MQTT discovery prefix; empty: publish no discovery configs.",
        check=lambda v: _topic_check(v) if v else None),
    Key("mqtt", "publish_interval_s", float, 5.0,
        "State is published this often, and at once when stale or saturation changes.",
        min=0.5, max=3600, unit="s"),
    Key("mqtt", "commands", bool, True,
        "Accept settings changes on <prefix>/set/<setting> (validated like the web UI's)."),
    # -- hot water (issue: hot water you can count on) ---------------------------------------
    Key("tank", "sensor", str, "",
        "Tank temperature sensor: \"\" none, \"w1:28-0316a2799fff\" (DS18B20 on the 1-Wire "
        "bus) or \"mqtt:<topic>\" on the [mqtt] broker (see json_path).", check=_sensor_check),
    Key("tank", "json_path", str, "",
        "For mqtt JSON payloads: dotted path to the value, e.g. \"DS18B20.Temperature\"; "
        "empty: the payload is a plain number."),
    Key("tank", "max_c", float, 60.0,
        "No heating at or above this tank temperature, in every mode (boost and guarantee "
        "included) ...", min=20, max=95, unit="°C", tunable=True, setting="tank_max_c"),
    Key("tank", "hysteresis_c", float, 3.0,
        "... until it falls below max_c - hysteresis_c.", min=0.5, max=30, unit="K",
        tunable=True, setting="tank_hysteresis_c"),
    Key("tank", "sensor_timeout_s", float, 120.0,
        "No temperature for this long (sensor lost): stop heating the load and say why.",
        min=5, max=3600, unit="s"),
    Key("tank", "read_every_s", float, 15.0,
        "How often the 1-Wire sensor is read (a conversion takes ~750 ms).",
        min=1, max=600, unit="s"),
    Key("tank", "w1_root", str, "/sys/bus/w1/devices", "The kernel's 1-Wire device directory."),
    Key("tank", "volume_l", float, 150.0,
        "Tank volume: what heating it to guarantee.min_c takes (1.163 Wh per litre and K).",
        min=5, max=5000, unit="L"),
    Key("tank", "loss_w", float, 50.0,
        "The tank's standing loss near guarantee.min_c (datasheet kWh/24 h x 42); the planner "
        "adds it until the deadline.", min=0, max=2000, unit="W"),
    Key("guarantee", "by", str, "",
        "Daily deadline, \"HH:MM\" local time; \"\" = no guarantee.", tunable=True,
        setting="guarantee_by", check=_hhmm_check),
    Key("guarantee", "min_energy_wh", float, 0.0,
        "Energy the load must have taken since the previous deadline (surplus counts; only "
        "what the load really drew).", min=0, max=1_000_000, unit="Wh", tunable=True,
        setting="guarantee_min_energy_wh"),
    Key("guarantee", "min_c", float, 0.0,
        "And/or the tank at this temperature at the deadline (needs tank.sensor); 0 = unused.",
        min=0, max=90, unit="°C", tunable=True, setting="guarantee_min_c"),
    Key("guarantee", "windows", list, [],
        "Top up only inside these local-time windows, e.g. [\"22:00-06:00\"] (off-peak); "
        "empty: any time.", tunable=True, setting="guarantee_windows", check=_windows_check,
        kind='a list of "HH:MM-HH:MM" strings'),
    Key("guarantee", "legionella_c", float, 0.0,
        "Anti-legionella: reach this at least every legionella_days, topped up the same way "
        "(needs tank.sensor); 0 = off.", min=0, max=90, unit="°C", tunable=True,
        setting="guarantee_legionella_c"),
    Key("guarantee", "legionella_days", int, 7, "See legionella_c.", min=1, max=60,
        unit="days", tunable=True, setting="guarantee_legionella_days"),
    Key("state", "dir", str, "/var/lib/vzdivert",
        "Where settings and energy counters are persisted (must be writable)."),
    # -- history and tariff (issue 14) --
    Key("history", "enabled", bool, True,
        "Record 1-minute history and daily totals in [state] dir (history.sqlite)."),
    Key("history", "timezone", str, "",
        "Time zone whose midnight starts a day in the history, e.g. Europe/Berlin; "
        "empty: the system's.", check=_timezone_check),
    Key("history", "keep_days", int, 366,
        "Keep 1-minute history this long; daily totals are kept forever.",
        min=1, max=3660, unit="days"),
    Key("history", "max_mb", float, 200.0,
        "Largest size of the history database; the oldest minutes go first.",
        min=1, max=100_000, unit="MB"),
    Key("tariff", "import_price", float, 0.0,
        "Price of a kWh bought from the grid; savings = diverted kWh x (import - feed-in).",
        min=0, max=100, unit="per kWh", tunable=True),
    Key("tariff", "feed_in_price", float, 0.0,
        "What a kWh exported to the grid earns.", min=0, max=100, unit="per kWh",
        tunable=True),
    Key("tariff", "currency", str, "€", "Currency symbol shown with the savings.",
        tunable=True, check=lambda v: None if len(v) <= 8 else "at most 8 characters"),
)

# `[[relays]]`: a list of tables, each validated against these keys (issue 12).
RELAY_KEYS: tuple[Key, ...] = (
    Key("relays", "name", str, "", "Name shown on the dashboard, MQTT and metrics.",
        check=lambda v: None if v.strip() else "must not be empty"),
    Key("relays", "gpio", int, -1, "BCM GPIO driving the relay (a plain level).", min=0, max=53),
    Key("relays", "rating_w", float, 0.0, "Power the load draws when the relay is on.",
        min=1, max=100_000, unit="W"),
    Key("relays", "min_on_s", float, 60.0,
        "Once switched on, the relay stays on at least this long (contact wear, compressors).",
        min=0, max=86_400, unit="s"),
    Key("relays", "min_off_s", float, 60.0, "Once switched off, it stays off at least this long.",
        min=0, max=86_400, unit="s"),
    Key("relays", "active_low", bool, False, "The relay is on when the GPIO is low."),
    Key("relays", "priority", int, 0,
        "Order of filling among the loads: lower first (the PWM load's is [load] priority).",
        min=-100, max=100),
    Key("relays", "heats_tank", bool, True,
        "The load heats the hot-water tank: the tank's temperature limit holds it off and its "
        "energy counts toward the daily guarantee. false for a pool pump, a heat pump's "
        "SG-ready contact or any other sink, which then takes the surplus while the tank is "
        "hot."),
)
REQUIRED_RELAY_KEYS = ("name", "gpio", "rating_w")


def _relays(value: Any) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Validate `[[relays]]`: each entry's keys, defaults filled in; problems keyed
    ``relays[i].key``."""
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        return [], {"relays": "expected [[relays]] tables"}
    out, problems = [], {}
    known = {k.name: k for k in RELAY_KEYS}
    for i, entry in enumerate(value):
        relay = {k.name: k.default for k in RELAY_KEYS}
        for name, v in entry.items():
            key = known.get(name)
            if key is None:
                _add(problems, f"relays[{i}].{name}",
                     f"unknown key (allowed: {', '.join(known)})")
                continue
            try:
                relay[name] = key.coerce(v)
            except ValueError as exc:
                _add(problems, f"relays[{i}].{name}", str(exc))
        for name in REQUIRED_RELAY_KEYS:
            if name not in entry:
                _add(problems, f"relays[{i}].{name}", "required")
        out.append(relay)
    return out, problems


KEYS: dict[str, Key] = {k.path: k for k in SCHEMA}
TUNABLES: dict[str, Key] = {k.setting or k.name: k for k in SCHEMA if k.tunable}
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(k.section for k in SCHEMA))
assert len(TUNABLES) == sum(k.tunable for k in SCHEMA), "tunable names must be unique"


class Config:
    """Validated, immutable configuration: ``cfg.control.target_w``; ``cfg.values`` by path."""

    def __init__(self, values: dict[str, Any], source: str = "<defaults>"):
        self.values = dict(values)
        self.source = source
        for section in SECTIONS:
            ns = SimpleNamespace(**{k.name: self.values[k.path] for k in SCHEMA
                                    if k.section == section})
            setattr(self, section, ns)
        self.relays = tuple(SimpleNamespace(**r) for r in self.values.get("relays", ()))

    def tunables(self) -> dict[str, Any]:
        return {name: self.values[k.path] for name, k in TUNABLES.items()}

    def with_settings(self, settings: dict[str, Any]) -> Config:
        """A copy with live settings (flat tunable names) applied; raises ConfigError whose
        problems are keyed by setting name."""
        values = dict(self.values)
        problems: dict[str, str] = {}
        for name, value in settings.items():
            key = TUNABLES.get(name)
            if key is None:
                _add(problems, name, f"not a setting (allowed: {', '.join(sorted(TUNABLES))})")
                continue
            try:
                values[key.path] = key.coerce(value)
            except ValueError as exc:
                _add(problems, name, str(exc))
        if not problems:  # rules between keys hold for live settings too, by setting name
            names = {k.path: n for n, k in TUNABLES.items()}
            for path, problem in _cross_checks(values).items():
                _add(problems, names.get(path, path), problem)
        if problems:
            raise ConfigError.of(problems)
        return Config(values, self.source)


def validate(data: dict[str, Any], source: str = "<config>") -> Config:
    """Check a parsed TOML document against SCHEMA; collect every problem before raising."""
    problems: dict[str, str] = {}
    values: dict[str, Any] = {k.path: k.default for k in SCHEMA}
    values["relays"] = []
    for section, table in data.items():
        if section == "relays":
            values["relays"], relay_problems = _relays(table)
            problems.update(relay_problems)
            continue
        if section not in SECTIONS:
            allowed = ", ".join((*SECTIONS, "relays"))
            _add(problems, section, f"unknown section (allowed: {allowed})")
            continue
        if not isinstance(table, dict):
            _add(problems, section, f"expected a table [{section}]")
            continue
        for name, value in table.items():
            key = KEYS.get(f"{section}.{name}")
            if key is None:
                known = ", ".join(k.name for k in SCHEMA if k.section == section)
                _add(problems, f"{section}.{name}", f"unknown key (allowed: {known})")
                continue
            try:
                values[key.path] = key.coerce(value)
            except ValueError as exc:
                _add(problems, key.path, str(exc))
    for path, problem in _cross_checks(values).items():
        _add(problems, path, problem)
    if problems:
        raise ConfigError.of(problems, source)
    return Config(values, source)


def _cross_checks(values: dict[str, Any]) -> dict[str, str]:
    """Rules between keys: {path: problem}."""
    problems = {}
    if values["load.curve"] == "table" and not values["load.curve_points"]:
        problems["load.curve_points"] = ("required when load.curve is 'table' "
                                         "(run `vzdivert calibrate`)")
    for path, problem in _output_pin_checks(values).items():
        _add(problems, path, problem)
    for user, password in (("ingest.username", "ingest.password"),
                           ("ingest.forward_username", "ingest.forward_password")):
        if values[password] and not values[user]:
            problems[password] = (f"set {user} too (a password alone leaves "
                                  f"{'writes open' if user == 'ingest.username' else 'it unused'})")
        if values[user] and not values[password]:
            problems[user] = f"set {password} too (the name alone is no credential)"
    host = values["webui.listen"].rpartition(":")[0].strip("[]")
    if not values["webui.password"] and host not in ("127.0.0.1", "localhost", "::1"):
        problems["webui.password"] = (f"required when webui.listen is not loopback "
                                      f"(listen is {values['webui.listen']!r})")
    if not values["tank.sensor"]:
        for path in ("guarantee.min_c", "guarantee.legionella_c"):
            if values[path] > 0:
                problems[path] = "needs a tank temperature (set tank.sensor)"
    for path in ("guarantee.min_c", "guarantee.legionella_c"):
        if values[path] > 0 and path not in problems and values[path] >= values["tank.max_c"]:
            problems[path] = (f"must be below tank.max_c ({values['tank.max_c']:g}): no "
                              f"heating happens at or above it")
    return problems


def _output_pin_checks(values: dict[str, Any]) -> dict[str, str]:
    """Every output on its own GPIO, every load with its own name: {path: problem}."""
    problems: dict[str, str] = {}
    pins = {values["output.gpio"]: "output.gpio"}
    if values["output.status_gpio"] >= 0:
        pins.setdefault(values["output.status_gpio"], "output.status_gpio")
    names = {values["load.name"]: "load.name"}
    claims = [("load.bypass_gpio", values["load.bypass_gpio"])] \
        if values["load.bypass_gpio"] >= 0 else []
    for i, relay in enumerate(values.get("relays", ())):
        claims.append((f"relays[{i}].gpio", relay["gpio"]))
        if relay["name"] in names:
            _add(problems, f"relays[{i}].name",
                 f"{relay['name']!r} is already the name of {names[relay['name']]}")
        names.setdefault(relay["name"], f"relays[{i}].name")
    for path, gpio in claims:
        if gpio in pins:
            _add(problems, path, f"GPIO {gpio} is already used by {pins[gpio]}")
        pins.setdefault(gpio, path)
    return problems


def load(path: str | Path) -> Config:
    """Read and validate a TOML config file; raises ConfigError naming the file and key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc
    return validate(data, str(path))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def render(cfg: Config | None = None, comments: bool = True) -> str:
    """The config as TOML: the example file (defaults, commented) or an effective config."""
    values = cfg.values if cfg is not None else {k.path: k.default for k in SCHEMA}
    out: list[str] = []
    for section in SECTIONS:
        if out:
            out.append("")
        out.append(f"[{section}]")
        for key in (k for k in SCHEMA if k.section == section):
            if comments:
                unit = f" [{key.unit}]" if key.unit else ""
                live = " Can be changed live from the web UI." if key.tunable else ""
                out.append(f"# {key.help}{live}")
                out.append(f"# Allowed: {key.allowed()}{unit}. Default: "
                           f"{_toml_value(key.default)}.")
            out.append(f"{key.name} = {_toml_value(values[key.path])}")
    out += _render_relays(values.get("relays", ()), comments)
    return "\n".join(out) + "\n"


RELAY_EXAMPLE = {"name": "heater stage 2", "gpio": 17, "rating_w": 1000.0}


def _render_relays(relays: Any, comments: bool) -> list[str]:
    out: list[str] = []
    if comments and not relays:  # the example file: one commented-out relay
        out += ["", "# More loads on plain GPIOs (relay stages, a heat pump's SG-ready contact): "
                "one [[relays]] table each; none by default. The PWM load fills the gap around "
                "every relay step."]
        out.append("# [[relays]]")
        for key in RELAY_KEYS:
            unit = f" [{key.unit}]" if key.unit else ""
            need = "Required" if key.name in REQUIRED_RELAY_KEYS else \
                f"Default: {_toml_value(key.default)}"
            out.append(f"#   {key.help} Allowed: {key.allowed()}{unit}. {need}.")
            out.append(f"# {key.name} = {_toml_value(RELAY_EXAMPLE.get(key.name, key.default))}")
    for relay in relays:
        out += ["", "[[relays]]"] + [f"{k} = {_toml_value(v)}" for k, v in relay.items()]
    return out
