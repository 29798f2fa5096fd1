"""The hot-water process (`python -m vzdivert.hotwater`, started by the supervisor): tank
sensor, boost and pause, the daily guarantee; SIGTERM/SIGINT end it cleanly."""

from __future__ import annotations

import signal

import zmq

from vzdivert import process
from vzdivert.hotwater.process import HotWater
from vzdivert.hotwater.tankread import make_reader


def main(argv: list[str] | None = None) -> int:
    cfg, runtime_dir, log = process.start("hotwater", argv)
    ctx = zmq.Context()
    hw = HotWater(cfg, runtime_dir, ctx, make_reader(cfg))

    def stop(signum: int, frame: object) -> None:
        hw.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("running: sensor %s, guarantee %s", cfg.tank.sensor or "none",
             f"by {cfg.guarantee.by}" if cfg.guarantee.by else "off")
    try:
        hw.run()
    finally:
        ctx.destroy(0)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
