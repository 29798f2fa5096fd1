"""End to end through `vzdivert run` (sim output): each meter source drives the duty, and
when it stops the output goes to 0 after stale_after_s (the usual watchdog)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from meterfakes import UUID, MeterServer, free_udp_port, send_sma, sma_datagram
from syshelp import System, wait_for
from test_mqtt import Broker, Observer
from test_sources_ingest import vzlogger_request

RT = "\n[rtworker]\npriority = 0\nlock_memory = false\n"


class Feed:
    """Sends -800 W by one source while on; ``stop()`` makes the source go quiet."""

    def __init__(self, source: str, tmp: Path):
        self.source, self.tmp = source, tmp
        self.broker = self.pub = self.meter = None
        self.sma_port = free_udp_port()
        if source == "mqtt":
            self.broker = Broker(tmp).start()
            self.pub = Observer(self.broker.port, "nothing/#")
        if source == "http":
            self.meter = MeterServer("shelly-pro-3em", -800.0)

    def config(self) -> tuple[str, str]:
        """(keys for [ingest], tables after it)."""
        if self.source == "mqtt":
            return "", ('\n[[ingest.channels]]\ndevice = "tasmota-sml"\ndevice_id = "meter"\n'
                        f"\n[mqtt]\nport = {self.broker.port}\n")
        if self.source == "http":
            return "", ('\n[[ingest.channels]]\ndevice = "shelly-pro-3em"\n'
                        f'host = "127.0.0.1:{self.meter.port}"\ninterval_s = 0.5\n')
        if self.source == "sma-em":
            return (f'sma_listen = "127.0.0.1:{self.sma_port}"\nsma_group = ""\n',
                    '\n[[ingest.channels]]\nsource = "sma-em"\n')
        return "", f'\n[[ingest.channels]]\nsource = "volkszaehler"\nuuid = "{UUID}"\n'

    def send(self, port: int) -> None:
        t = int(time.time() * 1000)
        if self.source == "mqtt":
            self.pub.publish("tele/meter/SENSOR", json.dumps({"SML": {"Power": -800}}))
        elif self.source == "sma-em":
            send_sma(self.sma_port, sma_datagram(0, 800))
        elif self.source == "volkszaehler":
            vzlogger_request(port, f"/middleware.php/data/{UUID}.json", f"[ [ {t}, -800 ] ]")

    def stop(self) -> None:
        if self.meter is not None:
            self.meter.mode = "error"

    def close(self) -> None:
        if self.pub is not None:
            self.pub.close()
        if self.broker is not None:
            self.broker.stop()
            self.broker.log.close()
        if self.meter is not None:
            self.meter.close()


@pytest.mark.parametrize("source", ["mqtt", "http", "sma-em", "volkszaehler"])
def test_source_drives_the_duty_and_its_silence_zeroes_it(source: str, tmp_path: Path) -> None:
    feed = Feed(source, tmp_path)
    ingest_keys, tables = feed.config()
    system = System(tmp_path, 'driver = "sim"', RT + tables)
    text = system.config.read_text().replace("[ingest]\n", "[ingest]\n" + ingest_keys, 1)
    system.config.write_text(text)
    try:
        system.start(60)

        def driving() -> bool:
            feed.send(system.ingest_port)
            s = system.state()
            return s["duty"] > 0 and not s["stale"] and s["grid_w"] == -800

        wait_for(driving, 30, 0.3, what=f"{source} driving the duty")
        channels = wait_for(lambda: system.state()["ingest"].get("channels"), 10,
                            what="per-channel stats")
        assert [c["source"] for c in channels.values()] == [source]
        feed.stop()
        t0 = time.monotonic()
        wait_for(lambda: system.state()["stale"] and system.state()["duty"] == 0.0, 10,
                 what="stale data zeroing the output")
        assert time.monotonic() - t0 > 1.0  # stale_after_s is 2: not before that
    finally:
        system.kill_all()
        feed.close()
