"""Keep a worker's heap from ratcheting up under images of varying size.

glibc serves allocations above a threshold (128 KiB) with mmap and gives them back on free, but
the first time such a block is freed it raises the threshold to that block's size (up to 32 MiB).
From then on image-sized buffers (decoded pixels, mattes, encode buffers: 1-50 MiB) come from
the heap, where a small allocation made meanwhile pins them: the worker's RSS creeps up request
after request. Fixing the threshold turns that adjustment off (and with it the trim threshold's,
which stays at 128 KiB, so the heap's free top goes back too). At 1 MiB every image buffer would
be a fresh mapping, page-faulted on each request (+50 ms at 1500 px); the default, 32 MiB, keeps
buffers of images up to ~8 MP on the heap and maps only larger ones. docs/reliability.md has
the soak figures.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("cutout.worker")

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)


def fix_mmap_threshold(threshold_bytes: int) -> bool:
    """Set glibc's mmap threshold for this process; 0 leaves glibc's default. Returns whether
    the setting took (False on a C library without mallopt, e.g. musl or macOS)."""
    if threshold_bytes <= 0:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.info("no glibc mallopt here: the mmap threshold stays the C library's default")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, int(threshold_bytes)) == 1
