"""Config schema: defaults, validation messages naming the key, the example file, the CLI."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from vzdivert import config as configmod
from vzdivert.config import SCHEMA, ConfigError, validate

REPO = Path(__file__).resolve().parent.parent

CONTRACT = {  # issue #2: public keys with their documented defaults
    "ingest.listen": "0.0.0.0:8080", "ingest.database": "vzlogger",
    "ingest.measurement": "leistung", "ingest.field": "value",
    "output.driver": "pigpio", "output.gpio": 12, "output.frequency_hz": 600,
    "output.pigpio_host": "127.0.0.1", "output.pigpio_port": 8888,
    "load.rating_w": 2000, "load.curve": "linear", "control.target_w": 0,
    "watchdog.stale_after_s": 10, "webui.listen": "127.0.0.1:8081", "webui.password": "",
    "state.dir": "/var/lib/vzdivert",
}


def test_empty_file_gives_contract_defaults() -> None:
    cfg = validate({})
    for path, default in CONTRACT.items():
        assert cfg.values[path] == default, path
    assert cfg.control.target_w == 0 and cfg.output.gpio == 12


def test_partial_file_keeps_other_defaults() -> None:
    cfg = validate({"control": {"target_w": -15}})
    assert cfg.control.target_w == -15.0 and cfg.load.rating_w == 2000


@pytest.mark.parametrize("data, fragment", [
    ({"control": {"target_w": "abc"}}, "control.target_w: expected a number"),
    ({"output": {"gpio": 99}}, "output.gpio: expected an integer from 0 to 53"),
    ({"output": {"driver": "gpiozero"}}, "output.driver: expected one of 'pigpio'"),
    ({"load": {"rating_w": True}}, "load.rating_w"),
    ({"load": {"watts": 5}}, "load.watts: unknown key"),
    ({"lod": {}}, "lod: unknown section"),
    ({"watchdog": {"stale_after_s": 0}}, "watchdog.stale_after_s: expected a number from 0.5"),
    ({"ingest": {"listen": "8080"}}, "ingest.listen: expected HOST:PORT"),
    ({"webui": {"listen": "0.0.0.0:8081"}}, "webui.password: required"),
    ({"ingest": {"channels": [{"measurement": "a", "colour": 1}]}}, "unknown key 'colour'"),
    # list keys say what their entries are, not "a list of tables"
    ({"guarantee": {"windows": "22:00-06:00"}},
     'guarantee.windows: expected a list of "HH:MM-HH:MM" strings'),
    ({"load": {"curve_points": {"duty": 1}}},
     "load.curve_points: expected a list of [duty, fraction] pairs"),
])
def test_bad_values_name_the_key(data: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(data)
    assert fragment in str(info.value)


def test_all_errors_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        validate({"control": {"target_w": "x"}, "output": {"gpio": -1}})
    assert len(info.value.errors) == 2


def test_settings_overlay_validates_by_flat_name() -> None:
    cfg = validate({})
    assert cfg.with_settings({"target_w": -20}).control.target_w == -20
    with pytest.raises(ConfigError, match="target_w: expected a number"):
        cfg.with_settings({"target_w": "cold"})
    with pytest.raises(ConfigError, match="gpio: not a setting"):
        cfg.with_settings({"gpio": 13})


def test_problems_are_data_keyed_by_what_the_reader_knows() -> None:
    """A file's problems are keyed by path, live settings' by setting name; the sentences
    are made from them, never the other way round."""
    with pytest.raises(ConfigError) as info:
        validate({"control": {"target_w": "x"}, "lod": {}}, source="f.toml")
    assert set(info.value.problems) == {"control.target_w", "lod"}
    assert info.value.problems["control.target_w"].startswith("expected a number")
    assert "f.toml: control.target_w: expected a number" in info.value.errors[0]
    cfg = validate({})
    with pytest.raises(ConfigError) as info:
        cfg.with_settings({"target_w": "cold", "gpio": 13, "curve": "table"})
    assert set(info.value.problems) == {"target_w", "gpio"}
    with pytest.raises(ConfigError) as info:  # a rule between keys, named by setting
        cfg.with_settings({"curve": "table"})
    assert list(info.value.problems) == ["curve_points"]


def test_example_file_is_the_schema_rendered() -> None:
    """etc/vzdivert.toml documents every key and parses back to the defaults."""
    text = (REPO / "etc" / "vzdivert.toml").read_text()
    assert text == configmod.render(), "regenerate: vzdivert example-config > etc/vzdivert.toml"
    cfg = validate(tomllib.loads(text))
    assert cfg.values == validate({}).values
    for key in SCHEMA:
        assert f"\n{key.name} = " in text
    assert '# Allowed: a list of "HH:MM-HH:MM" strings. Default: [].\nwindows = []' in text


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vzdivert.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=60)


def test_check_config_cli(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[control]\ntarget_w = -15\n")
    result = run_cli("check-config", str(good))
    assert result.returncode == 0, result.stderr
    assert "target_w = -15" in result.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[output]\ngpio = 'twelve'\n")
    result = run_cli("check-config", str(bad))
    assert result.returncode != 0
    assert "output.gpio" in result.stderr and "integer" in result.stderr


def test_run_refuses_bad_config_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[load]\ncurve = 'cubic'\n")
    result = run_cli("run", "--config", str(bad))
    assert result.returncode != 0
    assert "load.curve" in result.stderr
