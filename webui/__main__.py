"""The web UI process: Bottle app under waitress (threads), fed by one bus-subscriber thread;
it only listens to the streams and sends commands to the supervisor, never to the worker."""

from __future__ import annotations

import threading

import waitress
import zmq

from vzdivert import bus, process
from vzdivert.webui.app import SupervisorClient, make_app
from vzdivert.webui.feed import Feed


def main(argv: list[str] | None = None) -> int:
    cfg, runtime_dir, log = process.start("webui", argv)
    ctx = zmq.Context()
    feed = Feed(ctx, runtime_dir).start()
    supervisor = SupervisorClient(bus.Requester(ctx, runtime_dir, "supervisor", timeout_s=3.0))
    app = make_app(cfg, feed, supervisor)
    host, _, port = cfg.webui.listen.rpartition(":")
    server = waitress.create_server(app, host=host.strip("[]"), port=int(port),
                                    threads=cfg.webui.threads, channel_timeout=60,
                                    max_request_body_size=1 << 20, ident="vzdivert",
                                    clear_untrusted_proxy_headers=True)
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
    ctx.destroy(0)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
