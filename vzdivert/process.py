"""What every vzdivert process does for itself: at start parse ``--config/--runtime-dir``,
set up logging, load the effective config (file + persisted settings); a server's stop on
SIGTERM/SIGINT. (The supervisor's view of its children is supervisor/children.py.)"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from vzdivert import config as configmod
from vzdivert.config import Config, ConfigError
from vzdivert.settings import SettingsStore


def setup_logging(name: str) -> logging.Logger:
    """One line per event on stderr (journald adds time and unit); level from VZDIVERT_LOG."""
    level = os.environ.get("VZDIVERT_LOG", "INFO").upper()
    logging.basicConfig(level=level, stream=sys.stderr,
                        format=f"{name}[%(process)d] %(levelname)s %(message)s")
    return logging.getLogger(f"vzdivert.{name}")


def start(name: str, argv: list[str] | None = None) -> tuple[Config, Path, logging.Logger]:
    parser = argparse.ArgumentParser(prog=f"vzdivert-{name}")
    parser.add_argument("--config", required=True)
    parser.add_argument("--runtime-dir", required=True)
    args = parser.parse_args(argv)
    log = setup_logging(name)
    try:
        base = configmod.load(args.config)
        cfg = SettingsStore(base.state.dir).apply(base)
    except ConfigError as exc:
        log.error("bad configuration: %s", exc)
        raise SystemExit(2) from exc
    return cfg, Path(args.runtime_dir), log


def serve_until_stopped(server: Any, stopping: threading.Event) -> None:
    """Run a server (``run()``/``close()``: vzdivert.httpfront) until SIGTERM/SIGINT, then
    set ``stopping``. The handler unwinds ``server.run()`` at once: closing the listener
    alone would wait for every keep-alive client (vzlogger keeps one open) or event stream
    to go quiet."""

    def stop(signum: int, frame: object) -> None:
        stopping.set()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.run()
    except SystemExit:
        pass
    finally:
        stopping.set()
        server.close()
