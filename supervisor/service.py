"""Running the supervisor (what systemd starts, ``vzdivert run``): load and check the
config, make the runtime directory, run the arbiter until it stops."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from vzdivert import bus, process
from vzdivert import config as configmod
from vzdivert.config import ConfigError
from vzdivert.supervisor.arbiter import Arbiter
from vzdivert.supervisor.sdnotify import Notifier


def load_checked(path: str) -> configmod.Config:
    """Load a config and run the output driver's own checks too; raises ConfigError."""
    from vzdivert.rtworker.drivers import config_problems

    cfg = configmod.load(path)
    problems = config_problems(cfg)
    if problems:
        raise ConfigError([f"{path}: {p}" for p in problems])
    return cfg


def run(config_path: str, extra_children: tuple[str, ...] = ()) -> int:
    log = process.setup_logging("supervisor")
    try:
        base = load_checked(config_path)
        Path(base.state.dir).mkdir(parents=True, exist_ok=True)
    except (ConfigError, OSError) as exc:
        print(f"vzdivert: bad configuration:\n{exc}", file=sys.stderr)
        return 2
    own_runtime_dir = "RUNTIME_DIRECTORY" not in os.environ  # systemd cleans its own
    runtime_dir = bus.make_runtime_dir()
    try:
        arbiter = Arbiter(base, config_path, runtime_dir, extra_children, Notifier())
        bus.publish_runtime_dir(base.state.dir, runtime_dir)
        log.info("runtime dir %s, state dir %s", runtime_dir, base.state.dir)
        return arbiter.run()
    except ConfigError as exc:
        print(f"vzdivert: bad persisted settings:\n{exc}", file=sys.stderr)
        return 2
    finally:
        if own_runtime_dir:
            shutil.rmtree(runtime_dir, ignore_errors=True)

