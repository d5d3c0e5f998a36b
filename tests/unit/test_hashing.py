"""The saved SHA-256 state is portable and versioned: restored anywhere, it continues to the
digest hashlib computes over the whole input; a state this code cannot read is refused."""

from __future__ import annotations

import hashlib
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelregistry.hashing import STATE_TAG, ResumableSha256, UnreadableHashState


def _hash_in_pieces(pieces: list[bytes]) -> tuple[str, list[bytes]]:
    """Hash `pieces`, saving and restoring the state after each one, as an upload does."""
    hasher = ResumableSha256()
    states = []
    hashed = 0
    for piece in pieces:
        hasher.update(bytearray(piece))
        hashed += len(piece)
        state = hasher.state()
        states.append(state)
        hasher = ResumableSha256.from_state(state, hashed)
    return hasher.hexdigest(), states


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_save_and_restore_between_any_pieces_gives_hashlibs_digest(pieces: list[bytes]) -> None:
    digest, _ = _hash_in_pieces(pieces)
    assert digest == hashlib.sha256(b"".join(pieces)).hexdigest()


def test_parts_of_whole_blocks_continue_across_restores() -> None:
    parts = [os.urandom(64 * 1024) for _ in range(3)] + [os.urandom(1000)]
    digest, states = _hash_in_pieces(parts)
    assert digest == hashlib.sha256(b"".join(parts)).hexdigest()
    # At a part boundary nothing of an open block is pending: the state is words and count.
    assert len(states[0]) == len(STATE_TAG) + 1 + 8 * 4 + 8


def test_the_state_is_the_sha256_words_and_byte_count_in_big_endian() -> None:
    hasher = ResumableSha256()
    block = b"abc" * 100
    hasher.update(block[:128])
    state = hasher.state()
    assert state.startswith(STATE_TAG + b"\x01")
    *_, count = struct.unpack_from(">8IQ", state, len(STATE_TAG) + 1)
    assert count == 128


def test_an_unknown_version_is_refused() -> None:
    state = bytearray(ResumableSha256().state())
    state[len(STATE_TAG)] = 2
    with pytest.raises(UnreadableHashState, match="version 2"):
        ResumableSha256.from_state(bytes(state))


@pytest.mark.parametrize(
    "damage", [lambda s: s[:-3], lambda s: s + b"x", lambda s: b"garbage", lambda s: b""]
)
def test_a_damaged_state_is_refused(damage: object) -> None:
    hasher = ResumableSha256()
    hasher.update(b"x" * 70)
    with pytest.raises(UnreadableHashState):
        ResumableSha256.from_state(damage(hasher.state()), 70)  # type: ignore[operator]


def test_a_state_covering_other_than_the_committed_bytes_is_refused() -> None:
    hasher = ResumableSha256()
    hasher.update(b"x" * 128)
    with pytest.raises(UnreadableHashState, match="covers 128 bytes"):
        ResumableSha256.from_state(hasher.state(), 64)


def _legacy_state(data: bytes) -> bytes:
    """What releases before the versioned form stored: OpenSSL's SHA256_CTX, little-endian."""
    hasher = ResumableSha256()
    hasher.update(data)
    return bytes(hasher._context.raw)  # the raw context this build keeps


def test_a_legacy_state_that_matches_the_committed_size_resumes_to_the_right_digest() -> None:
    head, rest = os.urandom(64 * 3 + 17), os.urandom(500)
    restored = ResumableSha256.from_state(_legacy_state(head), len(head))
    restored.update(rest)
    assert restored.hexdigest() == hashlib.sha256(head + rest).hexdigest()


def test_a_legacy_state_that_does_not_prove_itself_is_refused() -> None:
    state = _legacy_state(b"y" * 128)
    with pytest.raises(UnreadableHashState):
        ResumableSha256.from_state(state, 192)  # another count than the session committed
    with pytest.raises(UnreadableHashState):
        ResumableSha256.from_state(state)  # nothing to check it against
