"""The rtworker process: real-time setup, open the output, run the loop; SIGTERM/SIGINT end
in the loop's single shutdown path (output 0)."""

from __future__ import annotations

import signal

import zmq

from vzdivert import process
from vzdivert.rtworker import realtime
from vzdivert.rtworker.drivers import OutputError, open_output
from vzdivert.rtworker.loop import Worker


def main(argv: list[str] | None = None) -> int:
    cfg, runtime_dir, log = process.start("rtworker", argv)
    rt = cfg.rtworker
    report = realtime.apply(rt.priority, rt.cpu, rt.lock_memory)
    ctx = zmq.Context(io_threads=1)
    realtime.tune_zmq(ctx, rt.priority, rt.cpu, report)
    for step, result in report.items():
        if result is not True:
            log.warning("real-time: %s not applied: %s", step, result)
    try:
        output = open_output(cfg, runtime_dir)
    except OutputError as exc:
        log.error("cannot open output: %s", exc)
        return 3
    worker = Worker(cfg, runtime_dir, output, ctx, report)
    signal.signal(signal.SIGTERM, lambda s, f: setattr(worker, "running", False))
    signal.signal(signal.SIGINT, lambda s, f: setattr(worker, "running", False))
    realtime.quiet_gc()
    log.info("running: %s, curve %s, target %.0f W", output.describe(), cfg.load.curve,
             cfg.control.target_w)
    try:
        worker.run()
    finally:
        worker.shutdown("stopped")
        output.close()
        ctx.destroy(0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
