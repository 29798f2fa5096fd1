"""The demo's meter, a process (the supervisor's child `house`): steps the simulated house
(plant.House) in real time, reads the heater's duty from the `sim` output, and posts the
meter reading to the ingest exactly as vzlogger does (HTTP/1.1 keep-alive, form content
type, one line per reading, ms time)."""

from __future__ import annotations

import http.client
import signal
import time

from vzdivert import process
from vzdivert.plant import House
from vzdivert.rtworker.drivers.sim import read_sim_duty

INTERVAL_S = 1.0


def vzlogger_request(conn: http.client.HTTPConnection, database: str, body: bytes) -> int:
    conn.request("POST", f"/write?db={database}&precision=ms", body=body,
                 headers={"Content-Type": "application/x-www-form-urlencoded",
                          "Accept": "*/*"})
    response = conn.getresponse()
    response.read()
    return response.status


def main(argv: list[str] | None = None) -> int:
    cfg, runtime_dir, log = process.start("house", argv)
    actuator = "pfc" if cfg.load.curve in ("pfc", "parametric") else "linear"
    house = House("demo_day", seed=1, dt_s=INTERVAL_S, meter_delay_samples=1,
                  actuator=actuator, rating_w=cfg.load.rating_w)
    host, _, port = cfg.ingest.listen.rpartition(":")
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "[::]") else host.strip("[]")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    running = True

    def stop(signum: int, frame: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("simulated house posting to %s:%s every %.1f s", host, port, INTERVAL_S)
    next_t = time.monotonic()
    failures = 0
    while running:
        grid_w = house.step(read_sim_duty(runtime_dir / "sim-output"))
        ts_ms = int(time.time() * 1000)
        line = f"{cfg.ingest.measurement} {cfg.ingest.field}={grid_w:.6f} {ts_ms}\n"
        try:
            status = vzlogger_request(conn, cfg.ingest.database, line.encode())
            failures = 0
            if status >= 300:
                log.warning("ingest answered %d", status)
        except OSError as exc:  # ingest restarting: vzlogger logs it and carries on too
            conn.close()
            failures += 1
            if failures == 3:
                log.warning("ingest unreachable: %s", exc)
        next_t += INTERVAL_S
        time.sleep(max(0.0, next_t - time.monotonic()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
