"""The ingest's glibc tuning (vzdivert/libc_malloc.py, issue 16 soak): after one large
block is freed, glibc serves the next large ones from the heap (its threshold rises), which
fragmented and grew the ingest's heap under repeated 1 MB writes. With the fixed threshold
each large block is mmapped and returned. Checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vzdivert import libc_malloc

PROBE = """
import sys
from vzdivert import libc_malloc
if sys.argv[1] == "fixed":
    assert libc_malloc.fix_mmap_threshold()

def in_heap(addr):
    for line in open("/proc/self/maps"):
        if line.rstrip().endswith("[heap]"):
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            return lo <= addr < hi
    return False

placed = []
for _ in range(5):  # a maximum-size body, freed, then the next one
    body = bytes(1_000_000)
    placed.append(in_heap(id(body)))  # a bytes object and its data are one block
    del body
print(sum(placed))
"""


def blocks_in_heap(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         timeout=30, check=True)
    return int(out.stdout)


@pytest.mark.skipif(not libc_malloc.is_glibc(), reason="glibc's allocator only")
def test_large_blocks_stay_out_of_the_heap_with_the_fixed_threshold() -> None:
    assert blocks_in_heap("default") >= 3  # what the ingest did before: the heap took them
    assert blocks_in_heap("fixed") == 0

