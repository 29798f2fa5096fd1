"""glibc malloc tuning for a process that takes large transient buffers (the ingest's 1 MB
write bodies). glibc raises its mmap threshold each time a large mmapped block is freed, so
after the first maximum-size write every later one came from the heap, which then stayed
fragmented and grew: the ingest's RSS crept by ~4 MB in the issue 16 soak while Python's own
objects stayed flat (tracemalloc). A fixed threshold keeps large blocks in mmap, returned to
the kernel on free (bench/README.md, issue 16 soak)."""

from __future__ import annotations

import ctypes
import os

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's default, but fixed (no dynamic raise)


def is_glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError):
        return False


def fix_mmap_threshold(nbytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Blocks of ``nbytes`` and more always come from (and go back to) mmap. False, doing
    nothing, off glibc (musl has no such threshold)."""
    if not is_glibc():
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, nbytes))
    except (OSError, AttributeError):
        return False
