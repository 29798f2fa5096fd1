"""The web UI process: Bottle app behind vzdivert.httpfront (app threads), fed by one
bus-subscriber thread; it only listens to the streams and sends commands to the supervisor
and the hot-water process (boost, pause), never to the worker."""

from __future__ import annotations

import json
import threading

import zmq

from vzdivert import bus, process
from vzdivert.httpfront import FrontEnd, Limits, trusted_proxy
from vzdivert.webui.app import SECURITY_HEADERS, SupervisorClient, make_app
from vzdivert.webui.feed import Feed

PER_CLIENT_CONNECTIONS = 24  # a browser opens ~6 per host; a few tabs and devices behind NAT


def error_document(status: int, reason: str) -> tuple[list[tuple[str, str]], bytes]:
    """Errors the front end answers itself look like the app's: JSON, security headers."""
    headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store"),
               *SECURITY_HEADERS.items()]
    return headers, json.dumps({"errors": [reason]}).encode()


def main(argv: list[str] | None = None) -> int:
    cfg, runtime_dir, log = process.start("webui", argv)
    ctx = zmq.Context()
    feed = Feed(ctx, runtime_dir).start()
    supervisor = SupervisorClient(bus.Requester(ctx, runtime_dir, "supervisor", timeout_s=3.0))
    hotwater = SupervisorClient(bus.Requester(ctx, runtime_dir, "hotwater", timeout_s=3.0))
    app = make_app(cfg, feed, supervisor, hotwater=hotwater)
    host, _, port = cfg.webui.listen.rpartition(":")
    proxy = cfg.webui.trusted_proxy
    limits = Limits(max_connections=256, per_client=PER_CLIENT_CONNECTIONS,
                    idle_timeout_s=30.0, max_body_bytes=1 << 20, large_body_bytes=1 << 20,
                    uncapped=frozenset({proxy} if proxy else ()))
    server = FrontEnd(app, host.strip("[]"), int(port), limits, threads=cfg.webui.threads,
                      error_document=error_document,
                      adjust_environ=trusted_proxy(proxy) if proxy else None)
    stopping = threading.Event()

    def heartbeat() -> None:
        """Tell the supervisor we live (it replaces a UI silent for 10 s)."""
        beat = bus.Requester(ctx, runtime_dir, "supervisor", timeout_s=1.0)
        while not stopping.wait(1.0):
            try:
                beat.call("alive", name="webui")
            except bus.CommandError:
                pass  # supervisor busy or restarting: the next beat tries again
            except zmq.ZMQError:
                return  # the context is going away: we are stopping

    threading.Thread(target=heartbeat, name="heartbeat", daemon=True).start()
    log.info("web UI on http://%s (login %s)", cfg.webui.listen,
             "required" if cfg.webui.password else "not required: loopback only")
    process.serve_until_stopped(server, stopping)
    feed.stop()
    supervisor.requester.close()
    hotwater.requester.close()
    ctx.destroy(0)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
