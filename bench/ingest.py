"""Ingest benchmark: line-protocol parser throughput beside the line-protocol-parser C
extension measured in the same run (target: ours within 3x of C).

Run: /work/venv/bin/python bench/ingest.py
"""

from __future__ import annotations

import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[0] = REPO  # not bench/: this file's name would shadow the ingest package
sys.path.insert(1, os.path.join(REPO, "tests"))

from vzdivert.ingest.lineproto import parse  # noqa: E402

VZLOGGER_LINE = "leistung,uuid=4a2677c0-0f1f-11ed-aa45-a39ab6e64720 value={:.6f} {}"
BATCH_LINES = 4500  # vzlogger's default max_batch_inserts

# What Telegraf, the Python clients and hand-written scripts send; 1 line in 50 is bad.
MIXED_TEMPLATES = (
    "cpu,cpu=cpu0,host=pi usage_idle=98.5,usage_user=1.2,usage_system=0.3 {ns}",
    "mem,host=pi active=123456i,available=789012i,used_percent=12.5 {ns}",
    'system,host=pi uptime_format="3 days,  4:05",load1=0.5,n_users=2i {ns}',
    "disk,device=mmcblk0p2,fstype=ext4,host=pi,mode=rw,path=/ free=1234i,used_percent=42.1 {ns}",
    r"weather,location=us\ midwest temperature=82,humidity=0.71 {ns}",
    "switch,room=kitchen on=true,count=3i",
    "net,interface=eth0,host=pi bytes_recv=123456789u,bytes_sent=98765u {ns}",
    'syslog,host=pi,severity=info message="Started \\"vzlogger\\" service",facility=3i {ns}',
    "vzlogger,uuid=8e1b6a1e-8f3f-11ed-a1eb-0242ac120002 value=1234.500000 {ns}",
    "power,phase=L1 value=-512.25 {ns}",
    "power,phase=L2 value=230.0 {ns}",
    "power,phase=L3 value=7.5e2 {ns}",
)
MIXED_BAD = "cpu,host=pi usage_idle=NaN {ns}"


def vzlogger_batch(lines: int = BATCH_LINES) -> bytes:
    t0_ms = 1_795_475_164_222
    return "".join(
        VZLOGGER_LINE.format(-500.0 + i % 997, t0_ms + i * 1000) + "\n" for i in range(lines)
    ).encode()


def mixed_corpus(lines: int = BATCH_LINES) -> bytes:
    t0_ns = 1_795_475_164_222_000_000
    out = []
    for i in range(lines):
        template = MIXED_BAD if i % 50 == 49 else MIXED_TEMPLATES[i % len(MIXED_TEMPLATES)]
        out.append(template.format(ns=t0_ns + i) + "\n")
    return "".join(out).encode()


def _best_of(fn, repeat: int) -> float:
    """Best wall time of fn() over repeat runs, in seconds (least disturbed by the OS)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _c_parse(body: bytes):
    """The baseline: the C extension, one call per line, bad lines skipped."""
    from line_protocol_parser import LineFormatError, parse_line

    points = []
    for line in body.decode().split("\n"):
        if line and line[0] != "#":
            try:
                points.append(parse_line(line))
            except LineFormatError:
                pass
    return points


def bench_parser(repeat: int = 30) -> dict:
    """Lines/s of our parser and of the C extension on a vzlogger batch and a mixed corpus."""
    results = {}
    for name, body, precision in (
        ("vzlogger_4500", vzlogger_batch(), "ms"),
        ("mixed_4500", mixed_corpus(), "ns"),
    ):
        lines = body.count(b"\n")
        points, errors = parse(body, precision)
        assert len(points) + len(errors) == lines
        ours_s = _best_of(lambda b=body, p=precision: parse(b, p), repeat)
        c_s = _best_of(lambda b=body: _c_parse(b), repeat)
        results[name] = {
            "lines": lines,
            "ours_ms": ours_s * 1e3,
            "c_ms": c_s * 1e3,
            "ours_lines_per_s": lines / ours_s,
            "c_lines_per_s": lines / c_s,
            "ratio_ours_over_c": ours_s / c_s,
        }
    return results


def fresh_vzlogger_batch(lines: int = BATCH_LINES) -> bytes:
    """A replayed buffer whose newest line is now (vzlogger sends newest last)."""
    now_ms = int(time.time() * 1000)
    return "".join(VZLOGGER_LINE.format(-500.0 - i % 997, now_ms - (lines - 1 - i) * 1000)
                   + "\n" for i in range(lines)).encode()


def bench_http(repeat: int = 30) -> dict:
    """A 4500-line vzlogger batch through HTTP into the real ingest process until its newest
    reading arrives on the bus, beside the C extension parsing the same batch alone."""
    import tempfile
    from pathlib import Path

    from syshelp import IngestProcess

    tmp = Path(tempfile.mkdtemp(prefix="vzdivert-bench-ingest-"))
    ing = IngestProcess(tmp, max_body_bytes=10_000_000)
    try:
        times, c_times = [], []
        for _ in range(repeat):
            body = fresh_vzlogger_batch()
            t0 = time.perf_counter()
            status, _, _ = ing.write(body, headers={"Authorization": "Token s3cret"})
            reading = ing.next_reading()
            times.append(time.perf_counter() - t0)
            assert status == 204 and reading["grid_w"] == -500.0 - (BATCH_LINES - 1) % 997
            c_times.append(_best_of(lambda b=body: _c_parse(b), 1))
    finally:
        ing.close()
    times.sort()
    c_times.sort()
    return {"batches": repeat, "p50_ms": times[len(times) // 2] * 1e3,
            "min_ms": times[0] * 1e3, "max_ms": times[-1] * 1e3,
            "c_parse_p50_ms": c_times[len(c_times) // 2] * 1e3}


def main() -> int:
    print(f"python {sys.version.split()[0]}; best of 30 runs")
    for name, r in bench_parser().items():
        print(
            f"parser {name:14s} ours {r['ours_ms']:6.2f} ms ({r['ours_lines_per_s']:9,.0f} lines/s)"
            f"  C {r['c_ms']:6.2f} ms ({r['c_lines_per_s']:9,.0f} lines/s)"
            f"  ratio ours/C {r['ratio_ours_over_c']:.2f}"
        )
    h = bench_http()
    print(f"HTTP 4500-line vzlogger batch -> newest reading on the bus ({h['batches']} batches):"
          f" p50 {h['p50_ms']:.2f} ms, min {h['min_ms']:.2f}, max {h['max_ms']:.2f}"
          " (target < 10 ms)"
          f"; C extension parsing the same batch alone: {h['c_parse_p50_ms']:.2f} ms"
          f" (ratio {h['p50_ms'] / h['c_parse_p50_ms']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
