"""SHA-256 whose running state can be saved and restored, so an upload resumed on another
replica, or after a restart, still ends with the digest of the whole file.

hashlib cannot export its state, so this drives OpenSSL's SHA256_* functions (the libcrypto
that Python's own hashlib links) on a context buffer we own. OpenSSL releases the GIL for us
by way of ctypes, and uses SHA-NI where the CPU has it, as hashlib does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path

# sizeof(SHA256_CTX) is 112 bytes on every OpenSSL since 0.9.8; leave room to spare.
_CONTEXT_BYTES = 128
STATE_FORMAT = "openssl-sha256-ctx-v1"


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
    def from_state(cls, state: bytes) -> ResumableSha256:
        if len(state) != _CONTEXT_BYTES:
            raise ValueError("not a saved SHA-256 state")
        restored = cls.__new__(cls)
        restored._context = ctypes.create_string_buffer(state, _CONTEXT_BYTES)
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
        return self._context.raw

    def hexdigest(self) -> str:
        """The digest so far; the running state is left as it was."""
        scratch = ctypes.create_string_buffer(self._context.raw, _CONTEXT_BYTES)
        digest = ctypes.create_string_buffer(32)
        if _lib.SHA256_Final(digest, scratch) != 1:
            raise RuntimeError("SHA256_Final failed")
        return digest.raw.hex()
