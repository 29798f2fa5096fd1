"""Ingest benchmark: line-protocol parser throughput beside the line-protocol-parser C
extension measured in the same run (target: ours within 3x of C).

Run: /work/venv/bin/python bench/ingest.py
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ingest.lineproto import parse  # noqa: E402

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


def main() -> int:
    print(f"python {sys.version.split()[0]}; best of 30 runs")
    for name, r in bench_parser().items():
        print(
            f"parser {name:14s} ours {r['ours_ms']:6.2f} ms ({r['ours_lines_per_s']:9,.0f} lines/s)"
            f"  C {r['c_ms']:6.2f} ms ({r['c_lines_per_s']:9,.0f} lines/s)"
            f"  ratio ours/C {r['ratio_ours_over_c']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
