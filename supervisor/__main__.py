"""`python -m vzdivert.supervisor CONFIG`: the supervisor process (``vzdivert run``)."""

from __future__ import annotations

import sys

from vzdivert.supervisor.service import run

if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1]))
