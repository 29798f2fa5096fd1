"""`vzdivert parse`: show how the ingest reads one write body (line protocol on stdin).

Prints one JSON object per point or bad line, in input order; exit status 1 if any line
was bad. Blank and comment lines print nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import BinaryIO

from vzdivert.ingest.lineproto import PRECISIONS, Point, parse_ordered


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision",
        default="ns",
        choices=list(PRECISIONS),
        help="unit of the timestamps, as in /write?precision= (default: ns)",
    )


def run(args: argparse.Namespace, stdin: BinaryIO | None = None, stdout=None) -> int:
    """Read one body from stdin, print its points and errors as JSON lines."""
    if args.precision not in PRECISIONS:
        print(f"vzdivert parse: invalid precision {args.precision!r} (use n, u, ms, s, m or h)",
              file=sys.stderr)
        return 2
    body = (stdin or sys.stdin.buffer).read()
    out = stdout or sys.stdout
    all_good = True
    lines = []
    for r in parse_ordered(body, args.precision):
        if r.__class__ is Point:
            obj = {"measurement": r.measurement, "tags": r.tags, "fields": r.fields,
                   "time": r.time_ns}
        else:
            obj = {"line": r.line, "error": r.reason}
            all_good = False
        lines.append(json.dumps(obj, ensure_ascii=False))
    if lines:
        try:
            out.write("\n".join(lines) + "\n")
            out.flush()
        except BrokenPipeError:  # e.g. piped into head
            sys.stderr.close()
    return 0 if all_good else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vzdivert parse",
        description="Parse one InfluxDB line-protocol write body from stdin; print each "
        "point and each bad line as JSON, in input order. Exit status 1 if any line is bad.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
