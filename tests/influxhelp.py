"""A real InfluxDB 1.x (Debian's influxd) on loopback, for the differential parser test and
the forwarding test."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest
from syshelp import free_port

INFLUXD = shutil.which("influxd") or shutil.which("influxd", path="/usr/bin:/usr/sbin")


class Influx:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self._dbs = count()

    _opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only

    def request(self, path: str, params: dict, body: bytes | None = None) -> tuple[int, str]:
        """POST (GET without a body); returns (status, response text)."""
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        req = urllib.request.Request(url, data=body, method="GET" if body is None else "POST")
        try:
            with self._opener.open(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def query(self, db: str, q: str) -> dict:
        status, text = self.request("/query", {"db": db, "q": q, "epoch": "ns"}, b"")
        assert status == 200, text
        return json.loads(text)["results"][0]

    def write_and_read(self, body: bytes, precision: str):
        """Write body into a fresh database; return (status, error text, stored points)."""
        db = f"case{next(self._dbs)}"
        self.query(db, f'CREATE DATABASE "{db}"')
        try:
            status, text = self.request("/write", {"db": db, "precision": precision}, body)
            error = json.loads(text)["error"] if text.strip() else None
            types = {
                s["name"]: dict(map(tuple, s["values"]))
                for s in self.query(db, "SHOW FIELD KEYS").get("series", [])
            }
            stored = []
            for s in self.query(db, "SELECT * FROM /.*/ GROUP BY *").get("series", []):
                tags = {k: v for k, v in s.get("tags", {}).items() if v}
                for row in s["values"]:
                    values = dict(zip(s["columns"], row, strict=True))
                    t = values.pop("time")
                    fields = {k: _typed(v, types[s["name"]][k]) for k, v in values.items()
                              if v is not None}
                    stored.append((s["name"], tags, fields, t))
            return status, error, stored
        finally:
            self.query(db, f'DROP DATABASE "{db}"')


def _typed(value, influx_type: str):
    kind = {"float": float, "integer": int, "boolean": bool, "string": str}[influx_type]
    return (kind.__name__, kind(value))


def start_influxd(root: Path) -> Iterator[Influx]:
    """Run influxd in its own process group until the generator is closed."""
    if INFLUXD is None:
        pytest.fail(
            "influxd not found: this test needs InfluxDB 1.x (Debian package 'influxdb'); "
            ".ci/run installs it (apt-get install influxdb)"
        )
    http_port, rpc_port = free_port(), free_port()
    config = root / "influxdb.conf"
    config.write_text(
        f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
  logging-enabled = false
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
[subscriber]
  enabled = false
[retention]
  enabled = false
[shard-precreation]
  enabled = false
[continuous_queries]
  enabled = false
"""
    )
    log = open(root / "influxd.log", "wb")  # noqa: SIM115 - closed in the finaliser
    proc = subprocess.Popen(
        [INFLUXD, "run", "-config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        server = Influx(http_port)
        deadline = time.monotonic() + 30
        while True:
            try:
                if server.request("/ping", {})[0] == 204:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"influxd did not start:\n{(root / 'influxd.log').read_text()[-3000:]}")
            time.sleep(0.05)
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
