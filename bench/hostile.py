"""Hostile-LAN bench (issue 16), on loopback against a whole running system (sim output):
each figure beside the same figure for an undisturbed run in the same run.

  1. ingest peak RSS under 4 parallel maximum-size writes (target <= 1.5 x idle), beside
     4 parallel vzlogger-size batches;
  2. a well-behaved logger's success rate and the reading age control sees, with 300 slow
     connections open (from 30 addresses, then from one), beside no attack (target: every
     write succeeds, never stale);
  2b. a logger sending vzlogger catch-up batches (200 kB, once a second) while clients
     trickle 1 MB bodies or send most of one and stall, beside no attack (target: every
     batch answered promptly, never stale);
  3. login availability for a known client (and a new one) while 6 addresses try to lock
     the UI out, beside no attack.
  --soak MIN: MIN minutes of a 1 Hz logger with a hostile burst every minute, RSS per
  process sampled each minute.
  --bursts N: the soak's burst N times back to back against the ingest alone (4 parallel
  max-size writes, 100 slow connections from 10 addresses, 5 logger writes), its RSS and
  heap every 25 bursts: a creep shows in minutes instead of hours.

Attackers bind 127.0.0.2 and up (all of 127.0.0.0/8 is loopback on Linux).
Run: .venv/bin/python bench/hostile.py [--soak 20]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[0] = REPO
sys.path.insert(1, os.path.join(REPO, "tests"))

from syshelp import wait_for  # noqa: E402
from webui_help import UISystem  # noqa: E402

PASSWORD = "bench-pass-1"
MAX_BODY = 1_000_000  # the default [ingest] max_body_bytes
PHASE_S = 15.0
LOGGER_HZ = 5.0


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def lines_body(size: int) -> bytes:
    line = f"leistung,uuid=0a1b2c3d value=-123.456000 {int(time.time() * 1000)}\n".encode()
    return line * (size // len(line))


def post(port: int, body: bytes, conn: http.client.HTTPConnection | None = None,
         timeout_s: float = 30.0) -> int:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("POST", "/write?db=vzlogger&precision=ms", body=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        if own:
            conn.close()


def parallel(n: int, fn, *args) -> list:
    out: list = []
    threads = [threading.Thread(target=lambda: out.append(fn(*args))) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


# --- 1. memory ------------------------------------------------------------------------------
def bench_memory(system: UISystem) -> None:
    pid = pid_of(system, "ingest")
    for _ in range(3):
        post(system.ingest_port, lines_body(50_000))
    idle = rss_mb(pid)
    vz = parallel(4, post, system.ingest_port, lines_body(200_000))
    peak_vz = rss_mb(pid, "VmHWM")
    big = parallel(4, post, system.ingest_port, lines_body(MAX_BODY))
    big += parallel(4, post, system.ingest_port, lines_body(MAX_BODY))
    peak_big = rss_mb(pid, "VmHWM")
    after = rss_mb(pid)
    print("1. ingest memory (RSS)")
    print(f"   idle                                 {idle:7.1f} MB")
    print(f"   4 x 200 kB vzlogger batches (undist.) peak {peak_vz:7.1f} MB  "
          f"{peak_vz / idle:4.2f} x idle  statuses {sorted(set(vz))}")
    print(f"   2 x 4 x {MAX_BODY // 1000} kB max-size writes       peak {peak_big:7.1f} MB  "
          f"{peak_big / idle:4.2f} x idle  statuses {sorted(set(big))}  "
          f"[target <= 1.5 x] {'OK' if peak_big <= 1.5 * idle else 'MISSED'}")
    print(f"   afterwards                            {after:7.1f} MB")


# --- 2. slow connections ----------------------------------------------------------------------
SLOW_HEAD = b"POST /write?db=vzlogger HTTP/1.1\r\nHost: x\r\n"
LARGE_HEAD = (b"POST /write?db=vzlogger&precision=ms HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 1000000\r\n\r\n")


class SlowAttack:
    """``n`` connections that send a request head (and ``burst`` of its body), then a byte a
    second, and never finish; closed or answered ones are reopened at once (a sustained
    slowloris)."""

    def __init__(self, port: int, n: int, sources: list[str], head: bytes = SLOW_HEAD,
                 burst: bytes = b""):
        self.port, self.n, self.sources = port, n, sources
        self.head, self.burst = head, burst
        self.stop = threading.Event()
        self.opened = self.refused = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def connect(self, i: int) -> socket.socket | None:
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=2,
                                         source_address=(self.sources[i % len(self.sources)], 0))
            s.sendall(self.head + self.burst)
            s.setblocking(False)
            self.opened += 1
            return s
        except OSError:
            self.refused += 1
            return None

    def run(self) -> None:
        socks: list[socket.socket | None] = [self.connect(i) for i in range(self.n)]
        while not self.stop.wait(1.0):
            for i, s in enumerate(socks):
                try:
                    if s is None:
                        raise OSError
                    s.send(b"X")
                    s.recv(4096)  # closed, or answered (503, 408): either way it is over
                    raise OSError
                except BlockingIOError:
                    pass  # nothing to read: still open
                except OSError:
                    if s is not None:
                        s.close()
                    socks[i] = self.connect(i)
        for s in socks:
            if s is not None:
                s.close()

    def __enter__(self) -> SlowAttack:
        self.thread.start()
        time.sleep(0.3)  # a head start (the logger must not pause: stale_after_s is 2 s)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def get_state(system: UISystem) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", system.ui_port, timeout=3)
    try:
        auth = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        conn.request("GET", "/api/state", headers={"Authorization": f"Basic {auth}"})
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def pid_of(system: UISystem, name: str) -> int:
    return wait_for(lambda: get_state(system)["processes"][name]["pid"], 20,
                    what=f"{name} in the health stream")


def batch_body(lines: int = 4500) -> bytes:
    """A vzlogger catch-up batch (4,500 lines, ~190 kB: domain.md §1), newest now."""
    now_ms = int(time.time() * 1000)
    return "".join(f"leistung value={-300 - i % 50}.000000 {now_ms - (lines - 1 - i) * 10}\n"
                   for i in range(lines)).encode()


def logger_phase(system: UISystem, seconds: float, batches: bool = False,
                 hz: float | None = None) -> dict:
    """A vzlogger-like client (one keep-alive connection, reconnect on error, 30 s timeout)
    at LOGGER_HZ (or ``hz``), one line or a ~200 kB batch per write, and the control state
    polled from the UI meanwhile."""
    hz = hz or LOGGER_HZ
    ok = failed = 0
    latencies: list[float] = []
    ages: list[float] = []
    stale = 0
    conn = http.client.HTTPConnection("127.0.0.1", system.ingest_port, timeout=30)
    end = time.monotonic() + seconds
    next_state = 0.0
    i = 0
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            body = batch_body() if batches else (f"leistung value={-300 - i % 50}.000000 "
                                                 f"{int(time.time() * 1000)}\n".encode())
            status = post(system.ingest_port, body, conn)
        except (OSError, http.client.HTTPException):
            status = 0
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", system.ingest_port, timeout=30)
        latencies.append(time.monotonic() - t0)
        ok += status == 204
        failed += status != 204
        if time.monotonic() >= next_state:
            next_state = time.monotonic() + 0.5
            st = get_state(system)
            stale += bool(st.get("stale"))
            if st.get("stale") and os.environ.get("BENCH_DEBUG"):
                print("      stale:", st.get("stale_reason"), st.get("reading_age_s"))
            if st.get("reading_age_s") is not None:
                ages.append(st["reading_age_s"])
        i += 1
        time.sleep(max(0.0, 1 / hz - (time.monotonic() - t0)))
    conn.close()
    latencies.sort()
    return {"writes": ok + failed, "ok": ok, "p50_ms": 1000 * latencies[len(latencies) // 2],
            "max_ms": 1000 * latencies[-1], "max_age_s": max(ages, default=float("nan")),
            "stale_polls": stale, "polls": len(ages)}


def print_phase(name: str, r: dict, attack: SlowAttack | None = None) -> None:
    extra = f"  attack: {attack.opened} opened, {attack.refused} refused" if attack else ""
    print(f"   {name:34s} {r['ok']:4d}/{r['writes']:<4d} ok ({100 * r['ok'] / r['writes']:5.1f} %)"
          f"  latency p50 {r['p50_ms']:6.1f} ms max {r['max_ms']:7.1f} ms"
          f"  reading age max {r['max_age_s']:5.2f} s  stale {r['stale_polls']}/{r['polls']}"
          f"{extra}")


def bench_slow(system: UISystem) -> None:
    print(f"2. a logger at {LOGGER_HZ:g} Hz for {PHASE_S:g} s per phase "
          "(target: all ok, never stale)")
    print_phase("undisturbed", logger_phase(system, PHASE_S))
    many = [f"127.0.0.{2 + i}" for i in range(30)]
    with SlowAttack(system.ingest_port, 300, many) as attack:
        print_phase("300 slow conns from 30 addresses", logger_phase(system, PHASE_S), attack)
    with SlowAttack(system.ingest_port, 300, ["127.0.0.2"]) as attack:
        print_phase("300 slow conns from 1 address", logger_phase(system, PHASE_S), attack)
    print(f"   ingest stats: {json.dumps({k: get_state(system)['ingest'].get(k) for k in ('connection_limit', 'header_timeout', 'body_timeout')})}")  # noqa: E501


def bench_large(system: UISystem) -> None:
    print(f"2b. a logger sending a ~{len(batch_body()) // 1000} kB batch once a second for "
          f"{PHASE_S:g} s per phase (target: all ok promptly, never stale)")
    print_phase("undisturbed", logger_phase(system, PHASE_S, batches=True, hz=1.0))
    sources = [f"127.0.0.{2 + i}" for i in range(16)]
    with SlowAttack(system.ingest_port, 30, sources[:10], LARGE_HEAD) as attack:
        print_phase("30 trickled 1 MB bodies, 10 addr.",
                    logger_phase(system, PHASE_S, batches=True, hz=1.0), attack)
    with SlowAttack(system.ingest_port, 64, sources, LARGE_HEAD, b"x" * 950_000) as attack:
        print_phase("64 x 950 kB then stall, 16 addr.",
                    logger_phase(system, PHASE_S, batches=True, hz=1.0), attack)
    print(f"   ingest peak RSS {rss_mb(pid_of(system, 'ingest'), 'VmHWM'):.1f} MB; stats: "
          + json.dumps({k: get_state(system)['ingest'].get(k)
                        for k in ('connection_limit', 'header_timeout', 'body_timeout')}))


# --- 3. login lockout ----------------------------------------------------------------------
def ui_request(system: UISystem, method: str, path: str, source: str, body: dict | None = None,
               basic: str | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", system.ui_port, timeout=10,
                                      source_address=(source, 0))
    headers = {"Content-Type": "application/json"}
    if basic is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"admin:{basic}".encode()).decode()
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def availability(system: UISystem, source: str, tries: int = 5) -> tuple[int, int]:
    """(logins ok, Basic API calls ok) out of ``tries`` each."""
    logins = sum(ui_request(system, "POST", "/api/login", source, {"password": PASSWORD}) == 200
                 for _ in range(tries))
    api = sum(ui_request(system, "GET", "/api/settings", source, basic=PASSWORD) == 200
              for _ in range(tries))
    return logins, api


def bench_lockout(system: UISystem) -> None:
    print("3. login availability (5 logins + 5 Basic API calls each)")
    known, new = "127.0.0.1", "127.0.0.77"
    ui_request(system, "GET", "/api/settings", known, basic=PASSWORD)  # known: used it before
    lk, ak = availability(system, known)
    print(f"   undisturbed: known client logins {lk}/5, API {ak}/5")
    attackers = [f"127.0.0.{100 + i}" for i in range(6)]
    statuses = parallel(1, lambda: [ui_request(system, "POST", "/api/login", a,
                                               {"password": f"guess{i}"})
                                    for i in range(10) for a in attackers])[0]
    lk, ak = availability(system, known)
    ln, an = availability(system, new)
    print(f"   after 60 wrong logins from 6 addresses (answers {sorted(set(statuses))}): "
          f"known client logins {lk}/5, API {ak}/5 [target 5/5]; "
          f"a never-seen address logins {ln}/5, API {an}/5")


# --- soak -----------------------------------------------------------------------------------
def soak(system: UISystem, minutes: float) -> None:
    names = ("supervisor", "ingest", "rtworker", "webui")
    pids = {n: (system.proc.pid if n == "supervisor" else pid_of(system, n)) for n in names}
    print(f"soak: {minutes:g} min, logger at 1 Hz, a hostile burst each minute "
          "(4 max-size writes, 100 slow conns for 15 s, 20 wrong logins); RSS MB:")
    print("   min  " + "  ".join(f"{n:>10s}" for n in names) + "   writes ok  max age s")
    total = ok = 0
    max_age = 0.0
    start = time.monotonic()
    minute = 0
    while True:
        print(f"   {minute:3d}  " + "  ".join(f"{rss_mb(pids[n]):10.1f}" for n in names)
              + f"   {ok:5d}/{total:<5d} {max_age:5.2f}", flush=True)
        if time.monotonic() - start >= minutes * 60:
            break
        parallel(4, post, system.ingest_port, lines_body(MAX_BODY))
        for i in range(20):
            ui_request(system, "POST", "/api/login", f"127.0.0.{100 + i % 4}",
                       {"password": "wrong"})
        with SlowAttack(system.ingest_port, 100, [f"127.0.0.{2 + i}" for i in range(10)]):
            r = logger_phase(system, 15)
        r2 = logger_phase(system, 60 - 17 - 2)
        for part in (r, r2):
            total += part["writes"]
            ok += part["ok"]
            max_age = max(max_age, part["max_age_s"])
        minute += 1
    print(f"   pids restarted: {sorted(n for n in names[1:] if pid_of(system, n) != pids[n])}")


def heap_mb(pid: int) -> float:
    """RSS of the process's brk heap (glibc's main arena), from smaps."""
    lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.endswith("[heap]"):
            return next(int(v.split()[1]) for v in lines[i:] if v.startswith("Rss:")) / 1024
    return 0.0


def bursts(n: int) -> None:
    from syshelp import IngestProcess
    with tempfile.TemporaryDirectory() as tmp:
        ing = IngestProcess(Path(tmp), max_body_bytes=MAX_BODY)
        try:
            pid, body = ing.proc.pid, lines_body(MAX_BODY)
            for _ in range(3):
                post(ing.port, lines_body(50_000))
            print(f"ingest alone, {n} bursts back to back; MB:\n  burst     RSS   heap  peak RSS")
            for i in range(n + 1):
                if i % 25 == 0:
                    print(f"   {i:4d}  {rss_mb(pid):6.1f} {heap_mb(pid):6.1f}  "
                          f"{rss_mb(pid, 'VmHWM'):6.1f}", flush=True)
                if i == n:
                    break
                assert parallel(4, post, ing.port, body) == [204] * 4
                with SlowAttack(ing.port, 100, [f"127.0.0.{2 + j % 10}" for j in range(10)]):
                    for k in range(5):
                        post(ing.port, f"leistung value=-{k} {int(time.time() * 1000)}\n"
                             .encode())
        finally:
            ing.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--soak", type=float, default=0.0, help="minutes; 0: no soak")
    parser.add_argument("--only", choices=("memory", "slow", "large", "lockout"),
                        help="run one part only")
    parser.add_argument("--bursts", type=int, default=0, help="the ingest alone; 0: no")
    args = parser.parse_args()
    if args.bursts:
        bursts(args.bursts)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        system = UISystem(Path(tmp), webui=f'password = "{PASSWORD}"', password=PASSWORD,
                          need_worker=True)
        system.start()
        try:
            if args.soak:
                global LOGGER_HZ
                LOGGER_HZ = 1.0
                soak(system, args.soak)
            else:
                parts = {"memory": bench_memory, "slow": bench_slow, "large": bench_large,
                         "lockout": bench_lockout}
                for name, part in parts.items():
                    if args.only in (None, name):
                        part(system)
        finally:
            system.kill_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
