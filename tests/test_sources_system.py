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
from test_webui_browser import browser, expect, new_page  # noqa: F401 (a fixture)

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


def test_heater_first_battery_through_the_system(tmp_path: Path, browser) -> None:  # noqa: F811
    """Grid at 0 while the battery charges 1.5 kW at 90 %: heater first makes that charge
    surplus, so the output opens; the dashboard's ingest section shows the battery view."""
    from syshelp import vzlogger_post

    system = System(tmp_path, 'driver = "sim"', RT + (
        '\n[[ingest.channels]]\nname = "grid"\nmeasurement = "leistung"\n'
        '\n[[ingest.channels]]\nname = "battery"\nmeasurement = "batterie"\nrole = "battery_w"\n'
        '\n[[ingest.channels]]\nname = "soc"\nmeasurement = "soc"\nrole = "battery_soc"\n'
        '\n[battery]\npolicy = "heater_first"\nheater_first_above_soc_pct = 80\n'))
    try:
        system.start(60)

        def post() -> bool:
            t = int(time.time() * 1000)
            vzlogger_post(system.ingest_port, f"batterie value=1500 {t}\nsoc value=90 {t}\n")
            vzlogger_post(system.ingest_port, f"leistung value=0 {t}\n")
            s = system.state()
            return s["duty"] > 0 and s["grid_w"] == -1500.0

        wait_for(post, 30, 0.3, what="the battery's charge diverted")
        battery = wait_for(lambda: system.state()["ingest"].get("battery"), 10,
                           what="the battery view in the ingest stats")
        assert battery["heater_first"] is True and battery["meter_grid_w"] == 0.0
        page = new_page(browser)
        page.goto(f"http://127.0.0.1:{system.ui_port}/")
        expect(page.locator("#ingest")).to_contain_text("1,500 W, 90 % · heater first")
        expect(page.locator('[data-channel="battery"]')).to_contain_text("battery_w")
        page.context.close()
    finally:
        system.kill_all()
