"""The ingest process: serves the write endpoint (httpfront: asyncio + h11, the app in
threads) and publishes readings and, once a second, its counters on the bus."""

from __future__ import annotations

import threading

import zmq

from vzdivert import bus, libc_malloc, process
from vzdivert.httpfront import FrontEnd, Limits
from vzdivert.ingest.auth import Auth, open_listener_warning
from vzdivert.ingest.battery import BatteryPolicy
from vzdivert.ingest.channels import Channels, specs_from_config
from vzdivert.ingest.forward import Forwarder
from vzdivert.ingest.server import WriteApp
from vzdivert.ingest.sources import start_sources
from vzdivert.ingest.stats import IngestStats


def main(argv: list[str] | None = None) -> int:
    cfg, runtime_dir, log = process.start("ingest", argv)
    libc_malloc.fix_mmap_threshold()  # 1 MB bodies must not fragment the heap (issue 16)
    ctx = zmq.Context()
    readings_sock = bus.bind(ctx, runtime_dir, "readings")
    stats_sock = bus.bind(ctx, runtime_dir, "ingest_stats")
    pub_lock = threading.Lock()  # zmq sockets are not thread-safe; the app runs in threads
    stats = IngestStats()

    def publish(readings: list[dict]) -> None:
        with pub_lock:
            for r in readings:
                readings_sock.send(bus.encode("reading", **r))

    ing = cfg.ingest
    b = cfg.battery
    channels = Channels(specs_from_config(cfg), cfg.watchdog.stale_after_s,
                        ing.clock_skew_s, ing.clock_far_past_s,
                        battery=BatteryPolicy(b.policy, b.heater_first_above_soc_pct,
                                              b.charge_reserve_w, b.soc_hysteresis_pct,
                                              b.give_back_w))
    forward = None
    if ing.forward_url:
        forward = Forwarder(ing.forward_url, stats, ing.forward_token, ing.forward_username,
                            ing.forward_password, ing.forward_queue).submit
    app = WriteApp([ing.database], channels, Auth(ing.username, ing.password, ing.token),
                   stats, publish, ing.max_body_bytes, forward)
    host, _, port = ing.listen.rpartition(":")
    most = ing.max_body_bytes  # a few largest writes from one address, four addresses' worth
    limits = Limits(max_body_bytes=most, body_budget_per_client=max(4 << 20, most),
                    body_budget=max(16 << 20, 4 * most))
    server = FrontEnd(app, host.strip("[]"), int(port), limits, threads=4, count=stats.count)
    stopping = threading.Event()

    def stats_loop() -> None:
        while not stopping.wait(1.0):
            with pub_lock:
                stats_sock.send(bus.encode("ingest_stats", **stats.snapshot()))

    threading.Thread(target=stats_loop, name="stats", daemon=True).start()
    sources = start_sources(cfg, channels, stats, publish)  # threads; nothing blocks the server
    log.info("listening on %s for database %r; channels: %s", ing.listen, ing.database,
             ", ".join(f"{s.name} ({s.source}, {s.role})" for s in channels.specs))
    warning = open_listener_warning(ing)
    if warning:
        log.warning("%s", warning)
    process.serve_until_stopped(server, stopping)
    sources.stop()
    with pub_lock:
        ctx.destroy(0)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
