"""The upload part buffers: reused while transfers run, given back to the OS once quiet
(issue 14: the server kept ~160 MiB of idle buffers for good)."""

from __future__ import annotations

import asyncio
import mmap
import time

import psutil

from modelregistry.service.upload_writer import BufferPool

MIB = 1 << 20
PART = 16 * MIB
# Generous: the release is due after 0.2 s; a loaded machine may run the timer late.
WITHIN_S = 30.0


def _touch(buffer: mmap.mmap) -> None:
    """Write a byte per page, so that every page is resident, as a filled part's are."""
    for offset in range(0, len(buffer), mmap.PAGESIZE):
        buffer[offset] = 1


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


async def test_idle_buffers_go_back_to_the_os_once_transfers_are_quiet() -> None:
    pool = BufferPool(max_idle=8, release_after_s=0.2)
    buffers = [pool.take(PART) for _ in range(4)]
    for buffer in buffers:
        _touch(buffer)
    resident = _rss()
    for buffer in buffers:
        pool.give(buffer)
    buffers.clear()
    assert pool.idle_bytes == 4 * PART  # kept for the next upload, for now

    deadline = time.monotonic() + WITHIN_S
    while pool.idle_bytes or _rss() > resident - 3 * PART:
        assert time.monotonic() < deadline, (
            f"after {WITHIN_S:g} s the pool holds {pool.idle_bytes} idle bytes and RSS fell "
            f"by {(resident - _rss()) / MIB:.0f} MiB of the {4 * PART / MIB:.0f} MiB given back"
        )
        await asyncio.sleep(0.05)


async def test_a_buffer_given_back_is_reused_while_transfers_continue() -> None:
    pool = BufferPool(max_idle=8, release_after_s=60.0)
    buffer = pool.take(PART)
    pool.give(buffer)
    assert pool.take(PART) is buffer
    assert pool.take(PART) is not buffer  # the pool holds no second one: a new buffer
