"""`vzdivert settings export|import FILE`: backup and restore of the live settings from a
shell. With the system running it goes through the supervisor (the one writer of settings,
which also applies them live); stopped, it reads or writes the settings file itself. The
config defaults to the installed one (`vzdivert setup`'s), so the issue's command line works
as written."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vzdivert import bus
from vzdivert import config as configmod
from vzdivert.config import ConfigError
from vzdivert.host import CONFIG
from vzdivert.settings import SettingsStore, change_entry
from vzdivert.settings_backup import backup_document, restore

WHO = "cli"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("export", "import"))
    p.add_argument("file", help="the backup file; - for stdout/stdin")
    p.add_argument("--config", default="", help=f"TOML config file (default {CONFIG})")
    p.add_argument("--root", default="/", help=argparse.SUPPRESS)  # tests: a system image


def _supervisor(state_dir: str) -> bus.Requester | None:
    runtime_dir = bus.find_runtime_dir(state_dir)
    if runtime_dir is None:
        return None
    import zmq

    return bus.Requester(zmq.Context.instance(), runtime_dir, "supervisor", timeout_s=5.0)


def export(base: configmod.Config, supervisor: bus.Requester | None) -> dict[str, Any]:
    if supervisor is not None:
        doc = supervisor.call("get_settings")
        return backup_document(doc["settings"], doc["overrides"])
    overrides = SettingsStore(base.state.dir).load()["settings"]
    return backup_document(base.with_settings(overrides).tunables(), overrides)


def import_(base: configmod.Config, supervisor: bus.Requester | None,
            document: Any) -> dict[str, Any]:
    if supervisor is not None:
        return supervisor.call("import_settings", document=document, who=WHO)
    cfg, overrides = restore(base, document)  # raises before anything is written
    store = SettingsStore(base.state.dir)
    data = store.load()
    before = base.with_settings(data["settings"]).tunables()
    changed = {k: v for k, v in cfg.tunables().items() if before[k] != v}
    changes = data["changes"] + ([change_entry(WHO, changed, before)] if changed else [])
    store.save(overrides, changes)
    return {"settings": cfg.tunables(), "overrides": overrides}


def run(args: argparse.Namespace) -> int:
    try:
        base = configmod.load(args.config or Path(args.root) / CONFIG.lstrip("/"))
        supervisor = _supervisor(base.state.dir)
        if args.action == "export":
            text = json.dumps(export(base, supervisor), indent=1, sort_keys=True) + "\n"
            if args.file == "-":
                sys.stdout.write(text)
            else:
                Path(args.file).write_text(text, encoding="utf-8")
                print(f"vzdivert settings: exported to {args.file}", file=sys.stderr)
            return 0
        raw = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise ConfigError([f"{args.file}: not a JSON document: {exc}"]) from exc
        result = import_(base, supervisor, document)
        how = "applied live" if supervisor is not None else "saved (system not running)"
        print(f"vzdivert settings: restored {len(result['settings'])} settings from "
              f"{args.file}, {how}; {len(result['overrides'])} differ from the config file")
        return 0
    except OSError as exc:
        print(f"vzdivert settings: {exc}", file=sys.stderr)
        return 1
    except (ConfigError, bus.CommandError) as exc:
        print("vzdivert settings: nothing changed:\n  " + "\n  ".join(exc.errors),
              file=sys.stderr)
        return 2
