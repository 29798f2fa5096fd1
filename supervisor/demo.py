"""`vzdivert demo`: the whole system on any PC, no hardware, no config. A simulated house
posts vzlogger-style writes to the real ingest; the `sim` output feeds the heater back."""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import tempfile
from pathlib import Path

from vzdivert.supervisor.service import run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_config(state_dir: Path, ui_port: int, ingest_port: int) -> str:
    return f"""# written by `vzdivert demo`
[ingest]
listen = "127.0.0.1:{ingest_port}"

[output]
driver = "sim"

[load]
curve = "pfc"

[rtworker]
priority = 0        # a demo needs no real-time priority
lock_memory = false

[webui]
listen = "127.0.0.1:{ui_port}"

[state]
dir = "{state_dir}"
"""


def demo(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="vzdivert-demo-"))
    state_dir = Path(args.state_dir) if args.state_dir else tmp / "state"
    state_dir.mkdir(parents=True, exist_ok=True)
    ingest_port = args.ingest_port or free_port()
    config_path = tmp / "demo.toml"
    config_path.write_text(demo_config(state_dir, args.port, ingest_port))
    print(f"vzdivert demo: simulated house -> ingest on 127.0.0.1:{ingest_port}\n"
          f"  open the dashboard: http://127.0.0.1:{args.port}/\n"
          f"  config: {config_path}  (Ctrl-C to stop)", flush=True)
    if args.seconds:
        signal.signal(signal.SIGALRM, lambda s, f: signal.raise_signal(signal.SIGTERM))
        signal.setitimer(signal.ITIMER_REAL, args.seconds)
    try:
        return run(str(config_path), extra_children=("house",))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
