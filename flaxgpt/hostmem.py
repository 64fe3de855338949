"""Keep freed host memory in the process so XLA:CPU's large buffers are not page-faulted in every step.

glibc serves big allocations with mmap and returns them to the kernel on free; XLA:CPU allocates
and frees each step's activations, so every step pays for zeroing fresh pages (measured: the LM-head
matmul of GPT-2 124M took 0.44 s instead of 0.23 s). Turning mmap off for malloc and never trimming
the heap makes freed buffers reusable. This is process-wide and only touches glibc on Linux.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


@functools.cache
def keep_freed_memory() -> bool:
    """Tells glibc malloc not to mmap or trim; returns whether it applied (False off glibc/Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(M_MMAP_MAX, 0) == 1
    ok = mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1 and ok
    return ok
