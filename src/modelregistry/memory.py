"""How the C allocator treats a server that streams large buffers (glibc; elsewhere no-ops).

Every transfer message carries ~1 MiB, allocated a few times over: gRPC's receive buffer, the
protobuf field, an S3 read. Above glibc's mmap threshold (128 KiB at start, raised on the fly to
the largest mapping freed so far) each allocation is a fresh mapping whose pages fault in and
are zeroed, then unmapped when freed: ~500 page faults per MB moved, which cost as much server
CPU as everything else on the path (issue 14, measured with perf). With the threshold fixed
above that size such buffers come from the heap and are reused instead. The heap keeps what is
freed for the process, up to the trim threshold; `return_free_memory` gives it all back once
transfers have gone quiet.
"""

from __future__ import annotations

import ctypes
import functools
import sys

# mallopt parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# Allocations below this come from the heap. 32 MiB is glibc's own ceiling for the dynamic
# threshold; setting it also stops the dynamic adjustment.
MMAP_THRESHOLD_BYTES = 32 << 20
# Free memory at the top of a heap beyond this goes back to the OS at once; below it, when
# transfers go quiet (return_free_memory).
TRIM_THRESHOLD_BYTES = 64 << 20
# glibc gives threads arenas of their own, up to 8 per core; the ones the transfer threads
# (gRPC, hashing, S3) leave behind each pin a few MiB of fragments after a burst. Two arenas
# hold what the server's allocation rate needs.
ARENAS = 2


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None)  # the C library this process already runs on
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None  # not glibc (musl, for one, has neither)
    return libc


def tune_for_transfers() -> bool:
    """Set the thresholds above for this process; False where the allocator is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
        and libc.mallopt(_M_ARENA_MAX, ARENAS)
    )


def return_free_memory() -> None:
    """Give the heap's free pages back to the OS (malloc_trim: all arenas, a few ms)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
