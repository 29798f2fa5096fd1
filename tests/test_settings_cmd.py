"""`vzdivert settings export|import` with the system stopped: it reads and writes the
settings file itself, with the same all-or-nothing validation as the running supervisor."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from syshelp import free_port, write_config


def cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vzdivert.cli", "settings", *args,
                           "--config", str(config)], capture_output=True, text=True,
                          timeout=30)


def test_export_and_import_while_stopped(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    config = write_config(tmp_path / "c.toml", state, free_port(), free_port(),
                          'driver = "sim"', "\n[control]\ntarget_w = -10\n")
    r = cli(config, "export", "-")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["settings"]["target_w"] == -10.0 and doc["overrides"] == []
    doc["settings"].update(target_w=-50, import_price=0.28)
    (tmp_path / "b.json").write_text(json.dumps(doc))
    r = cli(config, "import", str(tmp_path / "b.json"))
    assert r.returncode == 0 and "system not running" in r.stdout, r.stderr
    saved = json.loads((state / "settings.json").read_text())
    assert saved["settings"] == {"target_w": -50.0, "import_price": 0.28}
    assert saved["changes"][-1]["who"] == "cli"
    before = (state / "settings.json").read_text()
    doc["settings"]["stale_after_s"] = 0
    (tmp_path / "b.json").write_text(json.dumps(doc))
    r = cli(config, "import", str(tmp_path / "b.json"))
    assert r.returncode == 2 and "stale_after_s" in r.stderr
    (tmp_path / "b.json").write_text("{ not json")
    r = cli(config, "import", str(tmp_path / "b.json"))
    assert r.returncode == 2 and "not a JSON document" in r.stderr
    assert (state / "settings.json").read_text() == before  # nothing changed


def test_config_defaults_to_the_installed_one(tmp_path: Path) -> None:
    """The issue's command line, `vzdivert settings export|import FILE`, has no --config:
    it acts on the installed /etc/vzdivert/vzdivert.toml (here under a root prefix)."""
    state = tmp_path / "state"
    state.mkdir()
    etc = tmp_path / "root" / "etc" / "vzdivert"
    etc.mkdir(parents=True)
    write_config(etc / "vzdivert.toml", state, free_port(), free_port(), 'driver = "sim"',
                 "\n[control]\ntarget_w = -15\n")
    root = ("--root", str(tmp_path / "root"))
    r = subprocess.run([sys.executable, "-m", "vzdivert.cli", "settings", "export",
                        str(tmp_path / "b.json"), *root], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "b.json").read_text())
    assert doc["settings"]["target_w"] == -15.0
    doc["settings"]["target_w"] = -40
    (tmp_path / "b.json").write_text(json.dumps(doc))
    r = subprocess.run([sys.executable, "-m", "vzdivert.cli", "settings", "import",
                        str(tmp_path / "b.json"), *root], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert json.loads((state / "settings.json").read_text())["settings"] == {"target_w": -40.0}
