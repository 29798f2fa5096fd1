"""`[[relays]]` and the bypass keys: validated per entry with the key named, defaults filled
in, pins and names unique, rendered back as valid TOML; configs without them unchanged."""

from __future__ import annotations

import tomllib

import pytest

from vzdivert.config import ConfigError, render, validate

STAGE = {"name": "heater stage 2", "gpio": 17, "rating_w": 1000, "min_on_s": 60,
         "min_off_s": 60, "active_low": False}


def test_the_issues_example_is_valid_with_defaults() -> None:
    cfg = validate({"relays": [STAGE, {"name": "pool", "gpio": 27, "rating_w": 800}]})
    assert cfg.relays[0].name == "heater stage 2" and cfg.relays[0].priority == 0
    assert cfg.relays[1].min_on_s == 60.0 and cfg.relays[1].active_low is False
    assert validate({}).relays == () and cfg.load.bypass_gpio == -1


def test_each_problem_names_its_entry_and_key() -> None:
    with pytest.raises(ConfigError) as err:
        validate({"relays": [{"name": "x", "gpio": 99, "rating_w": 0, "colour": "red"},
                             {"gpio": 5}]})
    problems = err.value.problems
    assert set(problems) >= {"relays[0].gpio", "relays[0].rating_w", "relays[0].colour",
                             "relays[1].name", "relays[1].rating_w"}


def test_pins_and_names_are_unique() -> None:
    with pytest.raises(ConfigError) as err:
        validate({"output": {"gpio": 12}, "load": {"bypass_gpio": 17},
                  "relays": [STAGE, {**STAGE, "gpio": 12}]})
    problems = err.value.problems
    assert "load.bypass_gpio" in problems["relays[0].gpio"]
    assert "output.gpio" in problems["relays[1].gpio"]
    assert "already the name" in problems["relays[1].name"]


def test_rendered_effective_config_parses_back() -> None:
    cfg = validate({"load": {"bypass_gpio": 22}, "relays": [STAGE]})
    again = validate(tomllib.loads(render(cfg, comments=False)))
    assert again.relays == cfg.relays and again.load.bypass_gpio == 22
    assert "# [[relays]]" in render()  # the example file documents the table
