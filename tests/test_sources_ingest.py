"""Each meter source into the real ingest process, against real parts on loopback: Mosquitto
carrying exactly what Tasmota SML, Shelly Gen2 and vzlogger publish; HTTP fakes of Shelly
Gen1/Gen2, Tasmota, HomeWizard and vzlogger's local server; SMA EM datagrams to 127.0.0.1;
vzlogger's own middleware and push requests. Garbage is rejected with a reason and counted;
a lost source is logged once per outage, retried, and comes back."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any

import pytest
from meterfakes import (
    UUID,
    MeterServer,
    free_udp_port,
    send_sma,
    shelly_pro_3em,
    sma_datagram,
    tasmota_sensor,
)
from syshelp import IngestProcess, wait_for
from test_mqtt import Broker, Observer

from vzdivert import bus


class SourceIngest(IngestProcess):
    """The ingest alone with source channels, its log captured, its stats subscribed."""

    def __init__(self, tmp: Path, extra: str):
        self.log_path = tmp / "ingest.log"
        super().__init__(tmp, extra)
        self.stats_sub = bus.subscribe(self.ctx, self.runtime, "ingest_stats", conflate=True)

    def subscribed(self) -> bool:
        return True  # no influx channel to probe with: tests wait for their own readings

    def stats(self) -> dict[str, Any]:
        assert self.stats_sub.poll(3000), "no ingest_stats"
        return bus.decode(self.stats_sub.recv(), expect="ingest_stats")

    def channel(self, name: str) -> dict[str, Any]:
        return self.stats()["channels"][name]

    def reading_where(self, ok, feed=None, timeout_s: float = 10.0) -> dict:
        """The first reading for which ``ok(reading)`` holds, calling ``feed()`` while
        waiting (the PUB/SUB slow joiner drops the first ones)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if feed is not None:
                feed()
            if self.sub.poll(100):
                r = bus.decode(self.sub.recv(), expect="reading")
                if ok(r):
                    return r
        raise AssertionError("no matching reading")


@pytest.fixture
def ingest_factory(tmp_path: Path):
    made: list[SourceIngest] = []

    def make(extra: str) -> SourceIngest:
        sub = tmp_path / f"i{len(made)}"
        sub.mkdir()
        ing = SourceIngest(sub, extra)
        made.append(ing)
        return ing

    yield make
    for ing in made:
        ing.close()


@pytest.fixture
def broker(tmp_path: Path):
    b = Broker(tmp_path).start()
    yield b
    b.stop()
    b.log.close()


def mqtt_conf(port: int, channel: str) -> str:
    return f"\n[[ingest.channels]]\n{channel}\n[mqtt]\nport = {port}\n"


# -- MQTT ----------------------------------------------------------------------------------
MQTT_CASES = {
    "tasmota-sml": ('device = "tasmota-sml"\ndevice_id = "meter"', "tele/meter/SENSOR",
                    lambda w: json.dumps(tasmota_sensor(w))),
    "shelly-gen2": ('device = "shelly-pro-3em"\nsource = "mqtt"\n'
                    'device_id = "shellypro3em-c8f09e8f1234"',
                    "shellypro3em-c8f09e8f1234/status/em:0",
                    lambda w: json.dumps(shelly_pro_3em(w))),
    "vzlogger-raw": ('source = "mqtt"\ntopic = "vzlogger/chn0/raw"', "vzlogger/chn0/raw",
                     lambda w: f"{w:f}"),  # std::to_string(double)
    "vzlogger-timestamp": ('source = "mqtt"\ntopic = "vzlogger/chn0/raw"\njson_path = "value"\n'
                           'time_path = "timestamp"', "vzlogger/chn0/raw",
                           lambda w: f'{{ "timestamp": {int(time.time() * 1000)}, '
                                     f'"value": {float(w)!r} }}'),
}


@pytest.mark.parametrize("case", sorted(MQTT_CASES))
def test_mqtt_sources(case: str, broker: Broker, ingest_factory) -> None:
    channel, topic, payload = MQTT_CASES[case]
    ing = ingest_factory(mqtt_conf(broker.port, channel))
    pub = Observer(broker.port, "nothing/#")
    try:
        r = ing.reading_where(lambda r: r["grid_w"] == -812.5,
                              lambda: pub.publish(topic, payload(-812.5)))
        assert r["rx"] - r["ts"] < 1.0
        if case.startswith("vzlogger"):  # its once-only announcements are not readings
            pub.publish("vzlogger/chn0/uuid", UUID)
            pub.publish("vzlogger/chn0/id", "1-0:16.7.0")
        pub.publish(topic, "<garbage>")
        name = "mqtt#0"
        wait_for(lambda: sum(ing.channel(name)["rejects"].values()) >= 1, 10,
                 what="garbage counted")
        ch = ing.channel(name)
        assert ch["source"] == "mqtt" and ch["received"] >= 1 and ch["error"] == ""
        assert set(ch["rejects"]) <= {"not_numeric", "bad_json"}
    finally:
        pub.close()


def test_mqtt_retained_without_timestamp_is_skipped(broker: Broker, ingest_factory) -> None:
    pub = Observer(broker.port, "nothing/#")
    try:
        pub.client.publish("vzlogger/chn0/raw", "-500.000000", qos=1,
                           retain=True).wait_for_publish(5)
        ing = ingest_factory(mqtt_conf(broker.port, 'source = "mqtt"\n'
                                                    'topic = "vzlogger/chn0/raw"'))
        wait_for(lambda: ing.channel("mqtt#0").get("retained_skipped") == 1, 15,
                 what="the retained value skipped")
        r = ing.reading_where(lambda r: True, lambda: pub.publish("vzlogger/chn0/raw", "-7.0"))
        assert r["grid_w"] == -7.0
    finally:
        pub.close()


def test_mqtt_broker_restart_is_logged_once_and_recovers(broker: Broker,
                                                         ingest_factory) -> None:
    ing = ingest_factory(mqtt_conf(broker.port, 'source = "mqtt"\ntopic = "m/p"'))
    pub = Observer(broker.port, "nothing/#")
    ing.reading_where(lambda r: r["grid_w"] == 1.0, lambda: pub.publish("m/p", "1"))
    pub.close()
    broker.stop()
    wait_for(lambda: "lost broker" in ing.channel("mqtt#0")["error"], 15,
             what="the outage on the dashboard")
    time.sleep(3)  # several reconnect attempts fail meanwhile
    broker.start()
    pub = Observer(broker.port, "nothing/#")
    try:
        ing.reading_where(lambda r: r["grid_w"] == 2.0, lambda: pub.publish("m/p", "2"),
                          timeout_s=40)
        wait_for(lambda: ing.channel("mqtt#0")["error"] == "", 5, what="outage cleared")
    finally:
        pub.close()
    log = ing.log_text()
    assert log.count("MQTT broker 127.0.0.1") >= 2, log  # the failure, then the recovery
    assert log.count("failed: ") == 1, log  # once per outage, not per attempt
    assert "is back after" in log


# -- HTTP polling --------------------------------------------------------------------------
@pytest.mark.parametrize("device", ["shelly-pro-3em", "shelly-3em", "shelly-em",
                                    "tasmota-sml", "homewizard-p1", "vzlogger-local"])
def test_http_presets(device: str, ingest_factory) -> None:
    meter = MeterServer(device, -812.5)
    source = '\nsource = "http"' if device == "tasmota-sml" else ""
    ing = ingest_factory(f'\n[[ingest.channels]]\ndevice = "{device}"{source}\n'
                         f'host = "127.0.0.1:{meter.port}"\nuuid = "{UUID}"\n'
                         "interval_s = 0.2\n")
    try:
        ing.reading_where(lambda r: r["grid_w"] == -812.5)
        meter.mode = "garbage"
        wait_for(lambda: "garbage" in ing.channel("http#0")["error"], 10,
                 what="garbage reported")
        assert ing.channel("http#0")["rejects"]["bad_json"] >= 1
        meter.mode, meter.grid_w = "ok", -100.0
        ing.reading_where(lambda r: r["grid_w"] == -100.0)
        wait_for(lambda: ing.channel("http#0")["error"] == "", 5, what="recovered")
    finally:
        meter.close()


def test_slow_meter_times_out_and_never_blocks_another(ingest_factory) -> None:
    fast, slow = MeterServer("homewizard-p1", -300.0), MeterServer("shelly-pro-3em", 900.0)
    slow.mode, slow.slow_s = "slow", 1.5
    ing = ingest_factory(
        f'\n[[ingest.channels]]\nname = "grid"\ndevice = "homewizard-p1"\n'
        f'host = "127.0.0.1:{fast.port}"\ninterval_s = 0.2\n'
        f'\n[[ingest.channels]]\nname = "battery"\nrole = "battery_w"\n'
        f'device = "shelly-pro-3em"\nhost = "127.0.0.1:{slow.port}"\ninterval_s = 0.5\n')
    try:
        ing.reading_where(lambda r: r["grid_w"] == -300.0)
        t0, n = time.monotonic(), 0
        while time.monotonic() - t0 < 2.0:  # the fast one keeps its rate meanwhile
            if ing.sub.poll(100):
                ing.sub.recv()
                n += 1
        assert n >= 6, n
        wait_for(lambda: "timed out" in ing.channel("battery")["error"], 10,
                 what="the timeout reported")
        assert ing.channel("battery")["errors"] >= 1
        assert ing.log_text().count(f"polling http://127.0.0.1:{slow.port}") == 1
    finally:
        fast.close()
        slow.close()


# -- SMA Energy Meter ----------------------------------------------------------------------
def test_sma_energy_meter_unicast(ingest_factory) -> None:
    port = free_udp_port()
    ing = ingest_factory(f'sma_listen = "127.0.0.1:{port}"\nsma_group = ""\n'
                         '\n[[ingest.channels]]\nsource = "sma-em"\nserial = 0\n')
    r = ing.reading_where(lambda r: r["grid_w"] == -800.2,
                          lambda: send_sma(port, sma_datagram(0, 800.2)))
    assert r["rx"] - r["ts"] < 0.1
    send_sma(port, sma_datagram(0, 1000, serial=42))  # another meter: not ours (latched)
    send_sma(port, b"SMA\0garbage")
    send_sma(port, sma_datagram(150.0, 0))
    r = ing.reading_where(lambda r: True, timeout_s=5)
    assert r["grid_w"] == 150.0
    wait_for(lambda: ing.channel("sma-em#0")["rejects"].get("bad_datagram") == 1, 5,
             what="garbage counted")


# -- vzlogger's middleware and push requests -----------------------------------------------
def vzlogger_request(port: int, path: str, body: str,
                     conn: http.client.HTTPConnection | None = None) -> tuple[int, dict]:
    """As vzlogger 0.8.x sends it through libcurl (api/Volkszaehler.cpp, PushData.cpp)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", path, body=body.encode(), headers={
        "Content-type": "application/json", "Accept": "application/json",
        "User-Agent": "vzlogger/0.8.10 (libcurl/7.88.1 OpenSSL/3.0.15 zlib/1.2.13)"})
    resp = conn.getresponse()
    result = resp.status, json.loads(resp.read())
    if own:
        conn.close()
    return result


def test_vzlogger_middleware_and_push(ingest_factory) -> None:
    ing = ingest_factory(f'\n[[ingest.channels]]\nsource = "volkszaehler"\nuuid = "{UUID}"\n')
    path = f"/middleware.php/data/{UUID}.json"

    def post() -> None:
        t = int(time.time() * 1000)
        assert vzlogger_request(ing.port, path, f"[ [ {t}, -1234.5 ] ]") \
            == (200, {"version": "0.3", "rows": 1})

    ing.reading_where(lambda r: r["grid_w"] == -1234.5, post)
    t = int(time.time() * 1000)
    push = f'{{ "data": [ {{ "uuid": "{UUID}", "tuples": [ [ {t}, -99.000000 ] ] }} ] }}'
    ing.reading_where(lambda r: r["grid_w"] == -99.0,
                      lambda: vzlogger_request(ing.port, "/push", push))
    # a 64-tuple backlog chunk of another (unconfigured) channel: 200, counted, hinted
    chunk = ", ".join(f"[ {t - i * 1000}, 5.0 ]" for i in range(64))
    other = "11111111-2222-3333-4444-555555555555"
    status, answer = vzlogger_request(ing.port, f"/middleware.php/data/{other}.json",
                                      f"[ {chunk} ]")
    assert (status, answer["rows"]) == (200, 64)
    wait_for(lambda: other in ing.stats()["problem"], 5, what="the hint on the dashboard")
    status, answer = vzlogger_request(ing.port, path, "{}")
    assert status == 400 and "exception" in answer
    assert "no channel uses" in ing.log_text()


# -- the likeliest vzlogger mistakes are logged with the fix (item 5 of the issue) -----------
def test_misconfigurations_are_logged_with_the_fix(ingest_factory) -> None:
    ing = ingest_factory("")  # the default: one influx channel, measurement "leistung"
    now_ms = int(time.time() * 1000)
    assert ing.write(f"vzlogger value=-5 {now_ms}\n")[0] == 204  # vzlogger's default name
    wait_for(lambda: "measurement_name" in ing.log_text(), 5, what="the unmatched warning")
    assert "'vzlogger'" in ing.stats()["problem"]
    assert ing.write(f"leistung value=-5 {now_ms - 600_000}\n")[0] == 204  # a stale replay
    wait_for(lambda: "dropped a reading" in ing.log_text(), 5, what="the stale drop logged")
    # vzlogger's default api against a diverter that has no volkszaehler channel yet
    status, answer = vzlogger_request(ing.port, f"/middleware.php/data/{UUID}.json",
                                      f"[ [ {now_ms}, -5 ] ]")
    assert status == 200 and answer["rows"] == 1
    wait_for(lambda: UUID in ing.stats()["problem"], 5, what="the uuid hint")
    assert ing.request("POST", "/api/v1/write", b"x")[0] == 404
    wait_for(lambda: "no such endpoint" in ing.stats()["problem"], 5, what="the 404 hint")


NETNS_SMA = r"""
import json, socket, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from meterfakes import sma_datagram
from vzdivert.ingest.channels import Channels, ChannelSpec
from vzdivert.ingest.sources.sink import Outage, Sink
from vzdivert.ingest.sources.sma_em import SmaListener
from vzdivert.ingest.stats import IngestStats

subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["ip", "route", "add", "224.0.0.0/4", "dev", "lo"], check=True)
spec = ChannelSpec("sma", source="sma-em")
stats, got = IngestStats(), []
channels = Channels([spec], stale_after_s=10)
listener = SmaListener([spec], Sink(channels, stats, got.extend),
                       Outage("sma", ["sma"], stats), "0.0.0.0:9522", "239.12.255.254").start()
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    for _ in range(50):
        s.sendto(sma_datagram(0, 432.1), ("239.12.255.254", 9522))
        time.sleep(0.05)
        if got:
            break
listener.stop()
print(json.dumps(got[:1]))
"""


def test_sma_multicast_group_inside_a_private_network_namespace() -> None:
    """The default config (join 239.12.255.254, listen on 0.0.0.0:9522), with multicast
    sent only inside a network namespace this test creates (unshare -rn), on its loopback."""
    import subprocess
    import sys

    from syshelp import REPO

    out = subprocess.run(["unshare", "-rn", sys.executable, "-c", NETNS_SMA,
                          str(REPO / "tests")], capture_output=True, text=True, timeout=60,
                         cwd=REPO)
    assert out.returncode == 0, out.stderr
    [reading] = json.loads(out.stdout)
    assert reading["grid_w"] == -432.1


def test_middleware_chunk_with_expect_100_continue(ingest_factory) -> None:
    """libcurl 7.x sends `Expect: 100-continue` with POST bodies over 1 kB, as vzlogger's
    64-tuple backlog chunks are: the ingest must say Continue, then answer 200."""
    import socket

    ing = ingest_factory(f'\n[[ingest.channels]]\nsource = "volkszaehler"\nuuid = "{UUID}"\n')
    path = f"/middleware.php/data/{UUID}.json"
    ing.reading_where(lambda r: True, lambda: vzlogger_request(  # subscribed (slow joiner)
        ing.port, path, f"[ [ {int(time.time() * 1000) - 100}, 1 ] ]"))
    t = int(time.time() * 1000)
    body = ("[ " + ", ".join(f"[ {t - (63 - i) * 1000}, -{i}.5 ]" for i in range(64))
            + " ]").encode()
    assert len(body) > 1024
    head = (f"POST /middleware.php/data/{UUID}.json HTTP/1.1\r\nHost: 127.0.0.1:{ing.port}\r\n"
            "User-Agent: vzlogger/0.8.10\r\nAccept: application/json\r\n"
            "Content-type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", ing.port), timeout=5) as s:
        s.sendall(head)
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(body)
        answer = b""
        while b'"rows"' not in answer:
            chunk = s.recv(4096)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK") and b'"rows": 64' in answer
    r = ing.reading_where(lambda r: r["grid_w"] != 1, timeout_s=5)
    assert r["grid_w"] == -63.5  # the newest tuple of the chunk


def test_sma_port_taken_is_reported_and_retried(ingest_factory) -> None:
    """A port another program holds without SO_REUSEPORT: the ingest keeps serving, says
    why the channel has no data, and listens once the port is free."""
    import socket

    port = free_udp_port()
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", port))
    ing = ingest_factory(f'sma_listen = "127.0.0.1:{port}"\nsma_group = ""\n'
                         '\n[[ingest.channels]]\nsource = "sma-em"\n')
    try:
        wait_for(lambda: "cannot listen" in ing.channel("sma-em#0")["error"], 10,
                 what="the bind failure on the dashboard")
        assert ing.ping()
    finally:
        blocker.close()
    ing.reading_where(lambda r: r["grid_w"] == -5.0,
                      lambda: send_sma(port, sma_datagram(0, 5.0)), timeout_s=20)
