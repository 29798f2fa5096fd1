"""The config blocks the issues publish as contracts, verbatim, through the real
`vzdivert check-config`: external acceptance tests write exactly these files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

ISSUE_2 = """
[ingest]
listen = "0.0.0.0:8080"       # vzlogger's "host" points here
database = "vzlogger"
measurement = "leistung"
field = "value"

[output]
driver = "pigpio"             # pigpio | sim   (sysfs comes later)
gpio = 12
frequency_hz = 600
pigpio_host = "127.0.0.1"
pigpio_port = 8888

[load]
rating_w = 2000
curve = "linear"              # linear | pfc   (more later)

[control]
target_w = 0                  # grid power setpoint; negative allows some export

[watchdog]
stale_after_s = 10

[webui]
listen = "127.0.0.1:8081"
password = ""                 # empty: no login (refused unless listening on loopback)

[state]
dir = "/var/lib/vzdivert"
"""

ISSUE_11 = """
[tank]
sensor = "mqtt:tele/tank/SENSOR"
json_path = "DS18B20.Temperature"
max_c = 60             # no diverting at or above this ...
hysteresis_c = 3       # ... until it falls below max_c - hysteresis_c
sensor_timeout_s = 120 # no temperature this long: stop heating that load, say why

[guarantee]
by = "07:00"           # "HH:MM" local time; "" = off
min_energy_wh = 2000   # delivered to the load since the previous deadline (surplus counts)
min_c = 45             # and/or the tank at this temperature then (needs a sensor); 0 = unused
windows = ["22:00-06:00"]
"""

ISSUE_12 = """
[output]
driver = "sim"

[[relays]]
name = "heater stage 2"
gpio = 17              # plain GPIO level: 1 = on (see active_low)
rating_w = 1000
min_on_s = 60          # once switched, stays at least this long ...
min_off_s = 60         # ... and off at least this long (contact wear, compressors)
active_low = false
"""

ISSUE_13 = """
[[ingest.channels]]
source = "mqtt"                 # on the [mqtt] broker
topic = "tele/meter/SENSOR"
json_path = "SML.Power"         # "" = the payload is the number
scale = 1                       # e.g. -1 if the meter reports export positive, 1000 for kW

[[ingest.channels]]
source = "http"                 # polled
url = "http://shelly.local/rpc/EM.GetStatus?id=0"
json_path = "total_act_power"
interval_s = 1

[[ingest.channels]]
source = "sma-em"               # SMA Energy Meter / Home Manager 2.0
serial = 0                      # 0 = the first meter heard

[[ingest.channels]]
source = "volkszaehler"         # vzlogger "api": "volkszaehler" or its "push" target
uuid = "4a2677c0-0f1f-11ed-aa45-a39ab6e64720"
"""


def check_config(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vzdivert.cli", "check-config", str(path)],
                          capture_output=True, text=True, cwd=REPO, timeout=60)


@pytest.mark.parametrize("text, shown", [
    (ISSUE_2, 'measurement = "leistung"'),
    (ISSUE_11, 'windows = ["22:00-06:00"]'),
    (ISSUE_12, 'name = "heater stage 2"'),
    (ISSUE_13, 'uuid = "4a2677c0-0f1f-11ed-aa45-a39ab6e64720"'),
], ids=["issue2", "issue11", "issue12", "issue13"])
def test_issue_examples_are_valid(tmp_path: Path, text: str, shown: str) -> None:
    path = tmp_path / "vzdivert.toml"
    path.write_text(text)
    result = check_config(path)
    assert result.returncode == 0, result.stderr
    assert shown in result.stdout


def test_a_window_given_as_a_string_says_what_is_allowed(tmp_path: Path) -> None:
    """`windows = "22:00-06:00"` (the brackets forgotten) must not be answered with
    "expected a list of tables"."""
    path = tmp_path / "vzdivert.toml"
    path.write_text('[guarantee]\nby = "07:00"\nmin_energy_wh = 1000\n'
                    'windows = "22:00-06:00"\n')
    result = check_config(path)
    assert result.returncode != 0
    assert 'guarantee.windows: expected a list of "HH:MM-HH:MM" strings' in result.stderr
