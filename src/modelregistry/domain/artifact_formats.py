"""Artifact summaries: recognise a weights file from its first bytes and say what it holds.

The server calls ``summarize`` once per upload with the first part it received (up to 16 MiB)
and stores the result as the artifact's ``ArtifactSummary``. Two formats are recognised:

* **safetensors**: an 8-byte little-endian header length N, then N bytes of UTF-8 JSON
  mapping tensor names to ``{"dtype", "shape", "data_offsets"}`` plus an optional
  ``__metadata__`` string map. The format has no magic number, so the header is validated as
  strictly as the reference implementation does (object, known keys, contiguous offsets that
  match each tensor's size, and the file size when it is known): a random file is never taken
  for one. A header that does not fit in ``head`` is not summarised.
* **GGUF**: the magic ``GGUF``, a version, tensor and key/value counts, then typed key/value
  pairs. The counts are always reported; pairs are read only as far as they fit in ``head``
  (at most 1024 of them, stopping early once every wanted key is found), and reading stops at
  the first pair it cannot read (an unknown type, a length beyond ``head``).

Everything here is pure and total: the bytes come from whoever uploads, so any malformed,
truncated or hostile input yields None (or, for GGUF, what could be read before the damage),
never an exception, a large allocation or a long loop. The path only chooses which parser to
try first; the bytes decide.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable

Summary = tuple[str, dict[str, str]]

FORMAT_SAFETENSORS = "safetensors"
FORMAT_GGUF = "gguf"

MAX_METADATA_ENTRIES = 16
MAX_VALUE_CHARS = 256
MAX_KEY_CHARS = 128

# The reference implementation (huggingface/safetensors) refuses headers of 100 MB or more.
_SAFETENSORS_MAX_HEADER = 100_000_000
_U64_LIMIT = 1 << 64
# Bits per element of the dtypes the reference implementation knows. Other names that look
# like dtypes are accepted (new ones appear) but their byte sizes cannot be checked.
_DTYPE_BITS = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}
_DTYPE_PATTERN = re.compile(r"[A-Z][A-Z0-9_]{0,15}")
_TENSOR_KEYS = frozenset({"dtype", "shape", "data_offsets"})

_GGUF_MAGIC = b"GGUF"
_GGUF_PARSED_VERSIONS = frozenset({2, 3})
_GGUF_MAX_VERSION = 0xFFFF  # anything larger is not a version but garbage (or the wrong byte order)
_GGUF_MAX_KEY_BYTES = 65535  # the GGUF spec's limit on key length
# Real files have a few dozen pairs; reading more would only let a hostile head burn CPU.
_GGUF_MAX_PAIRS = 1024
# Smallest possible encodings, to reject counts no file of the stated size could hold.
_GGUF_HEADER_BYTES = 24
_GGUF_MIN_KV_BYTES = 8 + 4 + 1
_GGUF_MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8
_GGUF_MAX_FILE_BYTES = 1 << 50  # used when the total size is not known
_GGUF_STRING = 8
_GGUF_ARRAY = 9
# GGUF value type -> struct format character of its fixed-size scalar.
_GGUF_SCALARS = {
    0: "B",  # uint8
    1: "b",  # int8
    2: "H",  # uint16
    3: "h",  # int16
    4: "I",  # uint32
    5: "i",  # int32
    6: "f",  # float32
    7: "?",  # bool
    10: "Q",  # uint64
    11: "q",  # int64
    12: "d",  # float64
}
_GGUF_GENERAL_KEYS = ("general.architecture", "general.name", "general.file_type")
_GGUF_ARCH_SUFFIXES = ("context_length", "block_count")


def summarize(head: bytes | memoryview, path: str, total_size: int | None) -> Summary | None:
    """Return ``(format, properties)`` for a recognised file, else None; never raises.

    ``head`` is the start of the file (all of it for small files), ``path`` its relative path
    within the version, ``total_size`` its full size in bytes when known (a negative value
    means unknown). Properties are strings, ready for ``ArtifactSummary.properties``.
    """
    try:
        view = _byte_view(head)
    except (TypeError, ValueError):
        return None
    if total_size is not None and total_size < 0:
        total_size = None
    if total_size is not None and len(view) > total_size:
        return None  # more bytes than the file has: the caller is confused, say nothing
    parsers: list[Callable[[memoryview, int | None], Summary | None]] = [
        _summarize_gguf,
        _summarize_safetensors,
    ]
    if path.lower().endswith(".safetensors"):
        parsers.reverse()
    for parse in parsers:
        summary = parse(view, total_size)
        if summary is not None:
            return summary
    return None


def _byte_view(head: bytes | memoryview) -> memoryview:
    view = memoryview(head)
    if view.format == "B" and view.ndim == 1 and view.c_contiguous:
        return view
    try:
        return view.cast("B")
    except (TypeError, ValueError):  # not contiguous, or a format cast() does not know
        return memoryview(view.tobytes())


# --- safetensors ----------------------------------------------------------------------------


class _Invalid(Exception):
    """The bytes are not a well-formed safetensors header."""


def _summarize_safetensors(view: memoryview, total_size: int | None) -> Summary | None:
    if len(view) < 8:
        return None
    (header_len,) = struct.unpack_from("<Q", view, 0)
    if header_len >= _SAFETENSORS_MAX_HEADER or 8 + header_len > len(view):
        return None
    if header_len < 2 or view[8] != ord("{"):
        return None
    try:
        header = _parse_header_json(view[8 : 8 + header_len])
        return FORMAT_SAFETENSORS, _safetensors_properties(header, header_len, total_size)
    except (_Invalid, ValueError, RecursionError):
        # ValueError covers bad UTF-8, bad JSON and integers too long to convert.
        return None


def _parse_header_json(raw: memoryview) -> dict[str, object]:
    text = str(raw, "utf-8")
    parsed = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    if not isinstance(parsed, dict):
        raise _Invalid("header is not a JSON object")
    return parsed


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Invalid("duplicate key")
    return result


def _reject_constant(name: str) -> object:
    raise _Invalid(f"{name} is not JSON")


def _safetensors_properties(
    header: dict[str, object], header_len: int, total_size: int | None
) -> dict[str, str]:
    metadata = header.pop("__metadata__", None)
    spans: list[tuple[int, int]] = []
    dtypes: set[str] = set()
    parameters = 0
    for name, info in header.items():
        _require_text(name)
        dtype, elements, begin, end = _tensor_info(info)
        dtypes.add(dtype)
        parameters += elements
        spans.append((begin, end))
    _check_contiguous(spans, header_len, total_size)
    properties = {
        "tensors": str(len(header)),
        "parameters": str(parameters),
        "dtypes": ",".join(sorted(dtypes)),
    }
    properties.update(_metadata_properties(metadata))
    return properties


def _tensor_info(info: object) -> tuple[str, int, int, int]:
    """Return ``(dtype, element count, begin, end)`` of one tensor entry, or raise _Invalid."""
    if not isinstance(info, dict) or not info.keys() >= _TENSOR_KEYS:
        raise _Invalid("tensor entry needs dtype, shape and data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or not _DTYPE_PATTERN.fullmatch(dtype):
        raise _Invalid("bad dtype")
    if not isinstance(shape, list) or not all(_is_u64(dim) for dim in shape):
        raise _Invalid("bad shape")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_is_u64, offsets)):
        raise _Invalid("bad data_offsets")
    begin, end = offsets
    if begin > end:
        raise _Invalid("data_offsets decrease")
    elements = _element_count(shape)
    bits = _DTYPE_BITS.get(dtype)
    if bits is not None and elements * bits != (end - begin) * 8:
        raise _Invalid("data_offsets do not match shape and dtype")
    return dtype, elements, begin, end


def _is_u64(value: object) -> bool:
    return type(value) is int and 0 <= value < _U64_LIMIT


def _element_count(shape: list[int]) -> int:
    if 0 in shape:
        return 0
    count = 1
    for dim in shape:
        count *= dim
        if count >= _U64_LIMIT:  # stop before a hostile shape builds a gigantic integer
            raise _Invalid("shape too large")
    return count


def _check_contiguous(
    spans: list[tuple[int, int]], header_len: int, total_size: int | None
) -> None:
    """Tensor data must tile the data section exactly: no gaps, no overlaps, no trailing bytes."""
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise _Invalid("data_offsets leave a gap or overlap")
        position = end
    if total_size is not None and 8 + header_len + position != total_size:
        raise _Invalid("data section does not match the file size")


def _metadata_properties(metadata: object) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise _Invalid("__metadata__ is not an object")
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise _Invalid("__metadata__ values must be strings")
        _require_text(key)
        _require_text(value)
    kept = sorted(key for key in metadata if len(key) <= MAX_KEY_CHARS)[:MAX_METADATA_ENTRIES]
    return {f"metadata.{key}": str(metadata[key])[:MAX_VALUE_CHARS] for key in kept}


def _require_text(text: str) -> None:
    """JSON escapes can spell lone surrogates, which are not text (and protobuf refuses them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid("not valid Unicode") from None


# --- GGUF -------------------------------------------------------------------------------------


class _Truncated(Exception):
    """The next item does not fit in head, or cannot be read: stop and keep what we have."""


class _Reader:
    """Bounds-checked reads from the head; every length is checked before anything is read."""

    def __init__(self, view: memoryview, order: str) -> None:
        self._view = view
        self._order = order
        self.position = 0

    def remaining(self) -> int:
        return len(self._view) - self.position

    def scalar(self, code: str) -> int | float | bool:
        size = struct.calcsize(code)
        if size > self.remaining():
            raise _Truncated
        (value,) = struct.unpack_from(self._order + code, self._view, self.position)
        self.position += size
        result: int | float | bool = value
        return result

    def u32(self) -> int:
        return int(self.scalar("I"))

    def u64(self) -> int:
        return int(self.scalar("Q"))

    def skip(self, size: int) -> None:
        if size > self.remaining():
            raise _Truncated
        self.position += size

    def skip_strings(self, count: int) -> None:
        """Skip ``count`` strings: a tokenizer's vocabulary, often 100k+ of them, so kept tight."""
        unpack_from, length_format = struct.unpack_from, self._order + "Q"
        view, position, end = self._view, self.position, len(self._view)
        for _ in range(count):
            if position + 8 > end:
                raise _Truncated
            position += 8 + unpack_from(length_format, view, position)[0]
        if position > end:
            raise _Truncated
        self.position = position

    def raw_string(self, limit: int | None = None) -> memoryview:
        length = self.u64()
        if length > self.remaining() or (limit is not None and length > limit):
            raise _Truncated
        start = self.position
        self.position += length
        return self._view[start : self.position]


def _summarize_gguf(view: memoryview, total_size: int | None) -> Summary | None:
    if len(view) < 8 or view[:4] != _GGUF_MAGIC:
        return None
    (version,) = struct.unpack_from("<I", view, 4)
    order = "<"
    if version > _GGUF_MAX_VERSION:
        # Big-endian files (for s390x and friends) exist; their version reads byte-swapped.
        (version,) = struct.unpack_from(">I", view, 4)
        order = ">"
    if not 1 <= version <= _GGUF_MAX_VERSION:
        return None
    properties = {"gguf_version": str(version)}
    if order == ">":
        properties["byte_order"] = "big"
    if version not in _GGUF_PARSED_VERSIONS:
        return FORMAT_GGUF, properties  # v1 (obsolete) or newer: the layout may differ
    if len(view) < _GGUF_HEADER_BYTES:
        return None
    reader = _Reader(view, order)
    reader.skip(8)
    tensor_count, kv_count = reader.u64(), reader.u64()
    smallest_file = (
        _GGUF_HEADER_BYTES
        + kv_count * _GGUF_MIN_KV_BYTES
        + tensor_count * _GGUF_MIN_TENSOR_INFO_BYTES
    )
    if smallest_file > (_GGUF_MAX_FILE_BYTES if total_size is None else total_size):
        return None  # counts no file of this size could hold: garbage, not a GGUF file
    properties["tensors"] = str(tensor_count)
    properties["metadata_keys"] = str(kv_count)
    properties.update(_gguf_metadata(reader, kv_count))
    return FORMAT_GGUF, properties


def _gguf_metadata(reader: _Reader, kv_count: int) -> dict[str, str]:
    """The interesting key/value pairs among those that fit; stops at the first damaged one."""
    wanted: dict[str, str] = {}
    arch_values: dict[str, str] = {}  # `<anything>.context_length` etc., resolved at the end
    try:
        for _ in range(min(kv_count, _GGUF_MAX_PAIRS)):
            key = str(reader.raw_string(_GGUF_MAX_KEY_BYTES), "utf-8")
            value_type = reader.u32()
            value = _gguf_value(reader, value_type)
            if value is None:
                continue
            if key in _GGUF_GENERAL_KEYS:
                wanted[key] = value
            elif key.rpartition(".")[2] in _GGUF_ARCH_SUFFIXES and len(key) <= MAX_KEY_CHARS:
                arch_values[key] = value
            if _found_all(wanted, arch_values):
                break  # writers put these first; the tokenizer's big arrays need not be read
    except (_Truncated, UnicodeDecodeError):
        pass
    architecture = wanted.get("general.architecture")
    if architecture is not None:
        for suffix in _GGUF_ARCH_SUFFIXES:
            key = f"{architecture}.{suffix}"
            if key in arch_values:
                wanted[key] = arch_values[key]
    return wanted


def _found_all(wanted: dict[str, str], arch_values: dict[str, str]) -> bool:
    architecture = wanted.get("general.architecture")
    return (
        architecture is not None
        and all(key in wanted for key in _GGUF_GENERAL_KEYS)
        and all(f"{architecture}.{suffix}" in arch_values for suffix in _GGUF_ARCH_SUFFIXES)
    )


def _gguf_value(reader: _Reader, value_type: int) -> str | None:
    """Read one value; return it as text if it is a scalar or string, None for arrays."""
    code = _GGUF_SCALARS.get(value_type)
    if code is not None:
        return _scalar_text(reader.scalar(code))
    if value_type == _GGUF_STRING:
        raw = reader.raw_string()
        return str(raw[: MAX_VALUE_CHARS * 4], "utf-8", "replace")[:MAX_VALUE_CHARS]
    if value_type == _GGUF_ARRAY:
        _skip_array(reader)
        return None
    raise _Truncated  # an unknown type has an unknown size: nothing after it can be read


def _skip_array(reader: _Reader) -> None:
    element_type = reader.u32()
    count = reader.u64()
    code = _GGUF_SCALARS.get(element_type)
    if code is not None:
        reader.skip(count * struct.calcsize(code))
    elif element_type == _GGUF_STRING:
        if count * 8 > reader.remaining():  # each string takes >= 8 bytes: bounds the loop
            raise _Truncated
        reader.skip_strings(count)
    else:
        # Unknown element types, and arrays of arrays, which llama.cpp does not read either.
        raise _Truncated


def _scalar_text(value: int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)
