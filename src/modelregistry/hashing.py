"""SHA-256 whose running state can be saved and restored, so an upload resumed on another
replica, or after a restart, still ends with the digest of the whole file.

hashlib cannot export its state, so this drives OpenSSL's SHA256_* functions (the libcrypto
that Python's own hashlib links) on a context buffer we own. OpenSSL releases the GIL for us
by way of ctypes, and uses SHA-NI where the CPU has it, as hashlib does.

The saved state is not that context's raw bytes, whose layout and byte order belong to one
build of one library, but a portable, versioned form (see `state()`): what SHA-256 itself
defines as its state, the eight 32-bit chaining words and the count of bytes hashed, plus the
bytes of an unfinished 64-byte block (none at a part boundary, parts being multiples of 64
bytes; at most 63 after the short last part).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import struct
from pathlib import Path

# sizeof(SHA256_CTX) is 112 bytes on every OpenSSL since 0.9.8; leave room to spare.
_CONTEXT_BYTES = 128
_BLOCK = 64
# "sha256-state" then a version byte; version 1 continues with 8 big-endian u32 chaining
# words, a big-endian u64 count of bytes hashed, and the count % 64 bytes of the open block.
STATE_TAG = b"sha256-state"
STATE_VERSION = 1
_V1_HEAD = struct.Struct(">8IQ")
# Before the tag existed the raw SHA256_CTX was stored: 128 bytes as written by a
# little-endian OpenSSL build (the only kind the registry ran on). See `_from_legacy`.
_LEGACY_BYTES = _CONTEXT_BYTES
_LEGACY_CTX = struct.Struct("<8I2I64s2I")
_INITIAL_WORDS = (
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
    0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
)  # fmt: skip


class UnreadableHashState(ValueError):
    """A saved state this code cannot restore: an unknown version, or damaged."""


class _Sha256Ctx(ctypes.Structure):
    """OpenSSL's SHA256_CTX (openssl/sha.h), in this machine's byte order."""

    _fields_ = [
        ("h", ctypes.c_uint32 * 8),
        ("Nl", ctypes.c_uint32),
        ("Nh", ctypes.c_uint32),
        ("data", ctypes.c_uint8 * _BLOCK),
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    ]


def _load_libcrypto() -> ctypes.CDLL:
    import _hashlib  # noqa: F401  (maps the libcrypto that Python itself uses)

    candidates = [_mapped_libcrypto(), ctypes.util.find_library("crypto")]
    for candidate in candidates:
        if candidate:
            lib = ctypes.CDLL(candidate)
            if hasattr(lib, "SHA256_Init"):
                return lib
    raise RuntimeError("OpenSSL's libcrypto (SHA256_Init) was not found; install OpenSSL 3")


def _mapped_libcrypto() -> str | None:
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return None
    for line in maps.read_text().splitlines():
        path = line.rsplit(" ", 1)[-1]
        if "libcrypto" in Path(path).name:
            return path
    return None


_lib = _load_libcrypto()
_lib.SHA256_Init.argtypes = [ctypes.c_void_p]
_lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
_lib.SHA256_Final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]


class ResumableSha256:
    """A SHA-256 running hash with `state()` / `from_state()`."""

    __slots__ = ("_context",)

    def __init__(self) -> None:
        self._context = ctypes.create_string_buffer(_CONTEXT_BYTES)
        if _lib.SHA256_Init(self._context) != 1:
            raise RuntimeError("SHA256_Init failed")

    @classmethod
    def from_state(cls, state: bytes, hashed_bytes: int | None = None) -> ResumableSha256:
        """Restore a `state()`; `hashed_bytes`, if given, must be the count it covers.

        Raises UnreadableHashState for an unknown version or a damaged state.
        """
        words, count, tail = _parse(state, hashed_bytes)
        if hashed_bytes is not None and count != hashed_bytes:
            raise UnreadableHashState(
                f"the saved hash state covers {count} bytes, not the {hashed_bytes} committed"
            )
        restored = cls()
        ctx = restored._ctx()
        whole_blocks = count - len(tail)
        for i, word in enumerate(words):
            ctx.h[i] = word
        ctx.Nl = (whole_blocks << 3) & 0xFFFFFFFF
        ctx.Nh = whole_blocks >> 29
        ctx.num = 0
        restored.update(tail)  # OpenSSL keeps the open block and its count itself
        return restored

    def update(self, data: bytearray | memoryview | bytes) -> None:
        view = memoryview(data)
        if view.nbytes == 0:
            return
        # Writable buffers (our part buffers) are passed without a copy.
        source = bytes(view) if view.readonly else (ctypes.c_char * view.nbytes).from_buffer(view)
        if _lib.SHA256_Update(self._context, source, view.nbytes) != 1:
            raise RuntimeError("SHA256_Update failed")

    def state(self) -> bytes:
        """The running state in the portable form (version STATE_VERSION)."""
        ctx = self._ctx()
        count = ((ctx.Nh << 32) | ctx.Nl) >> 3
        tail = bytes(ctx.data)[: ctx.num]
        return STATE_TAG + bytes([STATE_VERSION]) + _V1_HEAD.pack(*ctx.h, count) + tail

    def hexdigest(self) -> str:
        """The digest so far; the running state is left as it was."""
        scratch = ctypes.create_string_buffer(self._context.raw, _CONTEXT_BYTES)
        digest = ctypes.create_string_buffer(32)
        if _lib.SHA256_Final(digest, scratch) != 1:
            raise RuntimeError("SHA256_Final failed")
        return digest.raw.hex()

    def _ctx(self) -> _Sha256Ctx:
        return _Sha256Ctx.from_buffer(self._context)


def _parse(state: bytes, hashed_bytes: int | None) -> tuple[tuple[int, ...], int, bytes]:
    """(chaining words, bytes hashed, open block) of a saved state."""
    if not state.startswith(STATE_TAG):
        return _from_legacy(state, hashed_bytes)
    version = state[len(STATE_TAG) : len(STATE_TAG) + 1]
    if version != bytes([STATE_VERSION]):
        shown = version[0] if version else "none"
        raise UnreadableHashState(
            f"saved hash state version {shown} is unknown to this server (it reads "
            f"{STATE_VERSION}); a newer release wrote it"
        )
    body = state[len(STATE_TAG) + 1 :]
    if len(body) < _V1_HEAD.size:
        raise UnreadableHashState("the saved hash state is truncated")
    *words, count = _V1_HEAD.unpack_from(body)
    tail = body[_V1_HEAD.size :]
    if len(tail) != count % _BLOCK:
        raise UnreadableHashState("the saved hash state's open block does not match its count")
    return tuple(words), count, tail


def _from_legacy(state: bytes, hashed_bytes: int | None) -> tuple[tuple[int, ...], int, bytes]:
    """A state saved before the versioned form: the raw SHA256_CTX of a little-endian OpenSSL.

    Read as that layout and accepted only if it proves itself: its byte count must equal the
    session's committed size and its open-block length must agree. A state written by another
    layout fails those checks and is refused (its session is then aborted) rather than
    resuming a wrong digest.
    """
    if len(state) != _LEGACY_BYTES or hashed_bytes is None:
        raise UnreadableHashState("the saved hash state is in no form this server knows")
    *words, low, high, block, num, md_len = _LEGACY_CTX.unpack_from(state)
    count = ((high << 32) | low) >> 3
    if md_len != 32 or num >= _BLOCK or count != hashed_bytes or num != count % _BLOCK:
        raise UnreadableHashState("the saved hash state is in no form this server knows")
    return tuple(words), count, block[:num]


def _check_layout() -> None:
    """Refuse to run on a libcrypto whose SHA256_CTX is not the layout we read and write."""
    probe = ResumableSha256()
    ctx = probe._ctx()
    probe.update(b"\x01" * 70)
    if (
        ctx.md_len != 32
        or ctx.num != 6
        or ctx.Nl != 70 * 8
        or bytes(ctx.data)[:6] != b"\x01" * 6
        or tuple(ResumableSha256()._ctx().h) != _INITIAL_WORDS
    ):
        raise RuntimeError("this libcrypto's SHA256_CTX has an unexpected layout")


_check_layout()
