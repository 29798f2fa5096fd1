"""Settings backup documents: a restore is validated as a whole and is all or nothing."""

from __future__ import annotations

import json

import pytest

from vzdivert.config import ConfigError, validate
from vzdivert.settings_backup import backup_document, parse_backup, restore

BASE = validate({"control": {"target_w": -20.0}})


def test_round_trip_restores_exactly_and_drops_overrides_equal_to_the_file() -> None:
    cfg = BASE.with_settings({"rating_w": 1500.0, "import_price": 0.31})
    doc = json.loads(json.dumps(backup_document(cfg.tunables(), {"rating_w": 1500.0})))
    restored, overrides = restore(BASE, doc)
    assert restored.tunables() == cfg.tunables()
    assert overrides == {"rating_w": 1500.0, "import_price": 0.31}  # target_w is the file's


@pytest.mark.parametrize("raw,problem", [
    (b"{nope", "not a JSON document"),
    ([1, 2], "expected a JSON object"),
    ({"settings": {"rating_w": 1}}, "format: expected 'vzdivert-settings'"),
    ({"format": "vzdivert-settings", "version": 9, "settings": {"rating_w": 1}}, "version"),
    ({"format": "vzdivert-settings", "version": 1, "settings": {}}, "settings: expected"),
])
def test_bad_documents_say_why(raw: object, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_backup(raw)
    assert problem in str(info.value)


def test_one_bad_key_refuses_the_whole_file() -> None:
    doc = backup_document({**BASE.tunables(), "rating_w": -5, "bogus": 1}, {})
    with pytest.raises(ConfigError) as info:
        restore(BASE, doc)
    assert any(e.startswith("rating_w:") for e in info.value.errors)
    assert any(e.startswith("bogus:") for e in info.value.errors)
