"""Meter sources' latency: from the reading leaving its source to the duty write arriving at
the pigpiod emulator, through the real processes, for MQTT (via Mosquitto), HTTP polling
(a Shelly Pro 3EM fake) and SMA EM datagrams, beside the InfluxDB write path measured in the
same run (target: each p99 within 1 ms of the Influx path's).

Run: .venv/bin/python bench/sources.py [--readings 1000] [--polls 300]"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[0] = str(REPO)  # not bench/: bench/ingest.py would shadow the ingest package
sys.path.insert(1, str(REPO / "tests"))
sys.path.insert(2, str(REPO / "bench"))

from latency import (  # noqa: E402
    ALL_CPUS,
    CONTROL_CPU,
    GPIO,
    WriteWatch,
    grid_for,
    run_readings,
    summary,
)
from meterfakes import MeterServer, free_udp_port, send_sma, sma_datagram  # noqa: E402
from syshelp import System, wait_for  # noqa: E402
from test_mqtt import Broker, Observer  # noqa: E402

from vzdivert.testing.pigpiod_emulator import PigpiodEmulator  # noqa: E402

INTERVAL_S = 0.1  # the poll interval: the fastest a channel may poll


def start_system(tmp: Path, emu: PigpiodEmulator, ingest_keys: str, tables: str) -> System:
    system = System(tmp, f'driver = "pigpio"\ngpio = {GPIO}\npigpio_port = {emu.port}',
                    extra=f"[rtworker]\ncpu = {CONTROL_CPU}\n{tables}")
    text = system.config.read_text().replace("[ingest]\n", "[ingest]\n" + ingest_keys, 1)
    system.config.write_text(text)
    return system.start(60)


def push_readings(send, watch: WriteWatch, n: int, seed: int) -> tuple[list[float], int]:
    """``send(grid_w)`` n times, each after the previous duty write (or a 1 s timeout)."""
    rng, latencies, lost = random.Random(seed), [], 0
    for _ in range(n):
        before = watch.count
        t0 = time.perf_counter_ns()
        send(grid_for(watch.duty, rng))
        t1 = watch.wait_after(before, 1.0)
        if t1 is None:
            lost += 1
        else:
            latencies.append((t1 - t0) / 1e6)
    return latencies, lost


class MeterProcess:
    """The polled meter in a process of its own, as a real meter is a device of its own: in
    this process its server thread would compete for the GIL with the emulator's. Its
    clock (CLOCK_MONOTONIC behind perf_counter_ns) is the same as ours."""

    def __init__(self, device: str):
        self.proc = subprocess.Popen([sys.executable, __file__, "--meter", device],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def set(self, grid_w: float) -> None:
        self.proc.stdin.write(f"{grid_w}\n")
        self.proc.stdin.flush()

    def finish(self) -> list[int]:
        out, _ = self.proc.communicate(timeout=30)
        return json.loads(out)


def serve_meter(device: str) -> None:
    meter = MeterServer(device, -800.0)
    print(meter.port, flush=True)
    for line in sys.stdin:
        meter.grid_w = float(line)
    print(json.dumps(meter.served_ns), flush=True)
    meter.close()


def poll_readings(meter: MeterProcess, watch: WriteWatch, n: int,
                  seed: int) -> tuple[list[float], int]:
    """The meter's value follows the duty; latency from an answer leaving the meter to the
    write it caused (the newest answer before that write: polls are 100 ms apart)."""
    rng, writes, lost = random.Random(seed), [], 0
    for _ in range(n):
        meter.set(round(grid_for(watch.duty, rng), 1))
        t1 = watch.wait_after(watch.count, 1.0)
        if t1 is None:
            lost += 1
        else:
            writes.append(t1)
    served, latencies = meter.finish(), []
    for t1 in writes:
        t0 = next((t for t in reversed(served) if t <= t1), None)
        if t0 is None:
            lost += 1
        else:
            latencies.append((t1 - t0) / 1e6)
    return latencies, lost


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--readings", type=int, default=1000)
    ap.add_argument("--polls", type=int, default=300)
    ap.add_argument("--meter", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.meter:
        serve_meter(args.meter)
        return 0
    os.sched_setaffinity(0, {CONTROL_CPU})  # the emulator's threads inherit the pin
    watch = WriteWatch()
    emu = PigpiodEmulator(port=0, on_write=watch).start()
    os.sched_setaffinity(0, ALL_CPUS)
    tmp = Path(tempfile.mkdtemp(prefix="vzdivert-bench-sources-"))
    broker = Broker(tmp).start()
    results = {}
    print(f"latency in ms, reading leaves its source -> duty write received by the pigpiod "
          f"emulator; {args.readings} readings per push path, {args.polls} polls "
          f"(interval {INTERVAL_S} s)")
    print(f"{'path':<28} {'n':>6} {'lost':>5} {'p50':>8} {'p99':>8} {'max':>8}")
    try:
        (tmp / "influx").mkdir()
        system = start_system(tmp / "influx", emu, "", "")
        try:
            wait_for(lambda: system.post(-800) == 204 and watch.duty > 0, 20, 0.1,
                     what="system controlling")
            results["influx"] = summary("influx (HTTP /write)", *run_readings(
                system.ingest_port, watch, args.readings, 1))
        finally:
            system.kill_all()

        (tmp / "mqtt").mkdir()
        system = start_system(tmp / "mqtt", emu, "", (
            '\n[[ingest.channels]]\ndevice = "tasmota-sml"\ndevice_id = "meter"\n'
            f"\n[mqtt]\nport = {broker.port}\n"))
        pub = Observer(broker.port, "nothing/#")
        try:
            def publish(w: float) -> None:
                pub.client.publish("tele/meter/SENSOR", json.dumps({"SML": {"Power": w}}))

            wait_for(lambda: publish(-800) or watch.duty > 0, 20, 0.1, what="mqtt controlling")
            results["mqtt"] = summary("mqtt (Tasmota SML)", *push_readings(
                publish, watch, args.readings, 2))
        finally:
            pub.close()
            system.kill_all()

        meter = MeterProcess("shelly-pro-3em")
        (tmp / "http").mkdir()
        system = start_system(tmp / "http", emu, "", (
            f'\n[[ingest.channels]]\ndevice = "shelly-pro-3em"\n'
            f'host = "127.0.0.1:{meter.port}"\ninterval_s = {INTERVAL_S}\n'))
        try:
            wait_for(lambda: watch.duty > 0, 20, 0.1, what="http controlling")
            results["http"] = summary("http poll (Shelly Pro 3EM)", *poll_readings(
                meter, watch, args.polls, 3))
        finally:
            system.kill_all()
            if meter.proc.poll() is None:
                meter.proc.kill()

        port = free_udp_port()
        (tmp / "sma").mkdir()
        system = start_system(tmp / "sma", emu,
                              f'sma_listen = "127.0.0.1:{port}"\nsma_group = ""\n',
                              '\n[[ingest.channels]]\nsource = "sma-em"\n')
        try:
            def datagram(w: float) -> None:
                send_sma(port, sma_datagram(max(w, 0.0), max(-w, 0.0)))

            wait_for(lambda: datagram(-800) or watch.duty > 0, 20, 0.1, what="sma controlling")
            results["sma"] = summary("sma-em (datagram)", *push_readings(
                datagram, watch, args.readings, 4))
        finally:
            system.kill_all()
    finally:
        broker.stop()
        emu.stop()
    base = results["influx"]["p99"]
    print("\np99 against the influx path (target: within 1 ms):")
    for name in ("mqtt", "http", "sma"):
        diff = results[name]["p99"] - base
        print(f"  {name:<5} {diff:+.3f} ms  {'OK' if diff <= 1.0 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
