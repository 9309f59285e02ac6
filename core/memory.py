"""How the C allocator hands memory back, set once at start-up (glibc on Linux; elsewhere nothing).

A conversation makes and drops many short-lived buffers on many threads: every frame, every
clause's audio, each reply's workers. glibc's defaults suit that poorly over hours. Each thread that
allocates may get an arena of its own, up to eight per core, and freed memory inside an arena
mostly stays with the process; and after a large buffer is freed, glibc raises the size above which
it maps buffers directly, so later clause-sized buffers come from the arenas too and fragment
them. Resident memory then creeps upward with every reply although nothing is kept. Fewer arenas
and a fixed mapping threshold (buffers above it are mapped and, once freed, unmapped) give it back
(tests/test_memory.py shows the difference; bench soak measures a long conversation).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD = 256 * 1024  # bytes: a clause's audio is above, a microphone frame far below
ARENA_MAX = 4  # enough that threads seldom wait for one another's allocations


def tune_allocator() -> bool:
    """Set the two glibc options; True if they were set. Call before worker threads start."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): its defaults stay
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = mallopt(M_ARENA_MAX, ARENA_MAX) == 1 and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    if not done:
        log.warning("the C allocator did not take its options: memory may grow over long conversations")
    return done
