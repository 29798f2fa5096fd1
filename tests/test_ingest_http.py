"""The ingest process over real HTTP: vzlogger's exact requests, InfluxDB's answers, real
Influx client libraries, and the readings it publishes on the real bus."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import signal
import time
from pathlib import Path

import pytest
from syshelp import IngestProcess as Ingest
from syshelp import wait_for


@pytest.fixture
def ingest(tmp_path: Path):
    ing = Ingest(tmp_path)
    yield ing
    ing.close()


def now_ms(offset_s: float = 0) -> int:
    return int((time.time() + offset_s) * 1000)


def test_vzlogger_request_exactly_as_sent(ingest: Ingest) -> None:
    """HTTP/1.1 keep-alive, no User-Agent, form content type, the last failed reading plus
    the new one (vzlogger 0.8.10 after a failed send): the newest reaches the bus."""
    conn = http.client.HTTPConnection("127.0.0.1", ingest.port, timeout=5)
    conn.putrequest("POST", "/write?db=vzlogger&precision=ms", skip_host=True,
                    skip_accept_encoding=True)  # curl sends one Host header: the one below
    body = (f"leistung value=-480.000000 {now_ms(-1)}\n"
            f"leistung value=-500.000000 {now_ms()}\n").encode()
    conn.putheader("Host", f"127.0.0.1:{ingest.port}")
    conn.putheader("Accept", "*/*")
    conn.putheader("Content-Type", "application/x-www-form-urlencoded")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    resp = conn.getresponse()
    assert resp.status == 204 and resp.read() == b""
    assert ingest.next_reading()["grid_w"] == -500.0
    # same connection again (keep-alive)
    conn.request("POST", "/write?db=vzlogger&precision=ms",
                 body=f"leistung value=-20.000000 {now_ms()}\n",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert conn.getresponse().status == 204
    assert ingest.next_reading()["grid_w"] == -20.0
    conn.close()


def test_bad_lines_get_influx_error_and_good_lines_still_count(ingest: Ingest) -> None:
    body = f"leistung value=-100 {now_ms()}\nleistung value= 123\nleistung value=-200 {now_ms()}\n"
    status, headers, data = ingest.write(body)
    assert status == 400
    error = json.loads(data)["error"]
    assert error.startswith("partial write: unable to parse 'leistung value= 123'")
    assert ingest.next_reading()["grid_w"] == -200.0


def test_nan_rejected_with_reason(ingest: Ingest) -> None:
    status, _, data = ingest.write(f"leistung value=NaN {now_ms()}\n")
    assert status == 400 and "unable to parse" in json.loads(data)["error"]
    assert ingest.no_reading()


def test_unknown_database_404(ingest: Ingest) -> None:
    status, _, data = ingest.write(f"leistung value=1 {now_ms()}\n", db="other")
    assert status == 404 and json.loads(data)["error"] == 'database not found: "other"'
    assert ingest.no_reading()


def test_oversized_body_413(ingest: Ingest) -> None:
    status, _, _ = ingest.write("leistung value=1\n" * 400)  # > 4096 bytes
    assert status == 413
    bomb = gzip.compress(b"leistung value=1\n" * 50_000)  # small, inflates far past 4096
    assert len(bomb) < 4096
    status, _, _ = ingest.write(bomb, headers={"Content-Encoding": "gzip"})
    assert status == 413


def test_gzip_body_accepted(ingest: Ingest) -> None:
    status, _, _ = ingest.write(gzip.compress(f"leistung value=-42 {now_ms()}\n".encode()),
                                headers={"Content-Encoding": "gzip"})
    assert status == 204
    assert ingest.next_reading()["grid_w"] == -42.0


def test_ping_and_query_probe(ingest: Ingest) -> None:
    for method in ("GET", "HEAD"):
        status, headers, _ = ingest.request(method, "/ping")
        assert status == 204 and "X-Influxdb-Version" in headers
    status, _, data = ingest.request("GET", "/query?q=SHOW+DATABASES")
    assert status == 200
    assert json.loads(data)["results"][0]["series"][0]["values"] == [["vzlogger"]]
    status, _, _ = ingest.request("POST", "/query?q=CREATE+DATABASE+vzlogger")
    assert status == 200


def test_stale_replay_not_published(ingest: Ingest) -> None:
    body = "".join(f"leistung value={-i} {now_ms(-3600 + i)}\n" for i in range(100))
    assert ingest.write(body)[0] == 204
    assert ingest.no_reading(0.5)


def test_influxdb_v1_client_library(ingest: Ingest) -> None:
    from influxdb import InfluxDBClient

    client = InfluxDBClient("127.0.0.1", ingest.port, database="vzlogger")
    client.create_database("vzlogger")  # the probe clients do at start
    assert client.write_points([{"measurement": "leistung", "fields": {"value": -321.5},
                                 "tags": {"uuid": "x"}}], time_precision="ms")
    assert ingest.next_reading()["grid_w"] == -321.5
    assert client.ping()


def test_influxdb_v2_client_library(tmp_path: Path) -> None:
    from influxdb_client import InfluxDBClient, Point
    from influxdb_client.client.write_api import SYNCHRONOUS

    ing = Ingest(tmp_path, 'token = "s3cret"')
    try:
        client = InfluxDBClient(url=f"http://127.0.0.1:{ing.port}", token="s3cret", org="home")
        client.write_api(write_options=SYNCHRONOUS).write(
            "vzlogger", "home", Point("leistung").field("value", -77.0))
        assert ing.next_reading()["grid_w"] == -77.0
        bad = InfluxDBClient(url=f"http://127.0.0.1:{ing.port}", token="wrong", org="home")
        with pytest.raises(Exception, match="401"):
            bad.write_api(write_options=SYNCHRONOUS).write(
                "vzlogger", "home", Point("leistung").field("value", -1.0))
        client.close()
        bad.close()
    finally:
        ing.close()


def test_basic_auth_and_query_credentials(tmp_path: Path) -> None:
    ing = Ingest(tmp_path, 'username = "vz"\npassword = "pw"')
    try:
        line = f"leistung value=-5 {now_ms()}\n"
        assert ing.write(line)[0] == 401
        good = base64.b64encode(b"vz:pw").decode()
        assert ing.write(line, headers={"Authorization": f"Basic {good}"})[0] == 204
        status, _, _ = ing.request("POST", "/write?db=vzlogger&precision=ms&u=vz&p=pw",
                                   line.encode())
        assert status == 204
        status, _, _ = ing.request("POST", "/write?db=vzlogger&u=vz&p=no", line.encode())
        assert status == 401
    finally:
        ing.close()


def test_forwarding_to_a_real_influxdb(tmp_path: Path, influx) -> None:
    influx.query("fwd", 'CREATE DATABASE "fwd"')
    ing = Ingest(tmp_path, f'forward_url = "{influx.base}/write?db=fwd"')
    try:
        ts = now_ms()
        body = f"leistung value=-123.5 {ts}\nleistung value= oops\n"
        assert ing.write(body)[0] == 400  # partial write: the good line still counts
        assert ing.next_reading()["grid_w"] == -123.5

        def stored() -> list:
            result = influx.query("fwd", "SELECT value FROM leistung WHERE value < 0")
            return result["series"][0]["values"] if "series" in result else []

        rows = wait_for(stored, 10, what="the forwarded point in InfluxDB")
        assert [row[1] for row in rows] == [-123.5] and rows[0][0] == ts * 1_000_000
    finally:
        ing.close()


class LoggedIngest(Ingest):
    """The ingest process with its log (stderr) kept in a file."""

    def __init__(self, tmp: Path) -> None:
        self.log_path = tmp / "ingest.log"
        super().__init__(tmp)


@pytest.fixture
def logged_ingest(tmp_path: Path):
    ing = LoggedIngest(tmp_path)
    yield ing
    ing.close()


def test_sigterm_with_idle_keep_alive_connections_logs_no_traceback(
        logged_ingest: LoggedIngest) -> None:
    """Connections still open at a clean stop end quietly: Python 3.11's start_server logged
    each handler cancelled at shutdown as an error, with a CancelledError traceback."""
    ing = logged_ingest
    conns = []
    for _ in range(3):
        conn = http.client.HTTPConnection("127.0.0.1", ing.port, timeout=5)
        conn.request("GET", "/ping")
        assert conn.getresponse().read() == b""
        conns.append(conn)  # kept alive, idle: its handler waits for the next request
    ing.proc.send_signal(signal.SIGTERM)
    assert ing.proc.wait(10) == 0
    log = ing.log_text()
    assert "INFO stopped" in log
    assert "Traceback" not in log and "CancelledError" not in log, log
    for conn in conns:
        conn.close()


def test_sigterm_with_a_keep_alive_client_still_posting(tmp_path: Path) -> None:
    """vzlogger keeps its connection open and goes on posting; stopping must not wait
    for it to stop (a server that drains open connections would wait until they go quiet)."""
    ing = Ingest(tmp_path)
    conn = http.client.HTTPConnection("127.0.0.1", ing.port, timeout=5)

    def post() -> None:
        conn.request("POST", "/write?db=vzlogger&precision=ms",
                     body=f"leistung value=-1 {now_ms()}\n")
        conn.getresponse().read()

    post()
    ing.proc.send_signal(signal.SIGTERM)
    try:
        for _ in range(100):  # 5 s of posting at 20 Hz on the same connection
            if ing.proc.poll() is not None:
                break
            post()
            time.sleep(0.05)
    except (OSError, http.client.HTTPException):
        pass  # the server went away mid-request: what should happen
    assert ing.proc.wait(1) == 0
    conn.close()
    ing.ctx.destroy(0)
