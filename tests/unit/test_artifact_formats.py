"""Artifact summaries: real safetensors and GGUF headers are described; anything else is None.

The bytes come from uploaders, so every malformed or hostile input must give None (or a partial
GGUF summary) without raising.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelregistry.domain.artifact_formats import summarize

# --- builders ---------------------------------------------------------------------------------

_DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U8": 1}


def safetensors_file(
    tensors: dict[str, tuple[str, list[int]]],
    metadata: dict[str, str] | None = None,
    padding: int = 0,
) -> bytes:
    """A complete safetensors file laid out as the reference writer does."""
    header: dict[str, Any] = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = _DTYPE_BYTES[dtype]
        for dim in shape:
            size *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    return raw_safetensors(json.dumps(header).encode() + b" " * padding, data=b"\0" * offset)


def raw_safetensors(header: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + data


def gguf_string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def kv_string(key: str, value: str) -> bytes:
    return gguf_string(key) + struct.pack("<I", 8) + gguf_string(value)


def kv_u32(key: str, value: int) -> bytes:
    return gguf_string(key) + struct.pack("<II", 4, value)


def kv_f32(key: str, value: float) -> bytes:
    return gguf_string(key) + struct.pack("<If", 6, value)


def kv_string_array(key: str, values: list[str]) -> bytes:
    body = b"".join(gguf_string(v) for v in values)
    return gguf_string(key) + struct.pack("<IIQ", 9, 8, len(values)) + body


def kv_i32_array(key: str, values: list[int]) -> bytes:
    body = struct.pack(f"<{len(values)}i", *values)
    return gguf_string(key) + struct.pack("<IIQ", 9, 5, len(values)) + body


def gguf_file(kvs: list[bytes], tensors: int = 3, version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, tensors, len(kvs)) + b"".join(kvs)


LLAMA_KVS = [
    kv_string("general.architecture", "llama"),
    kv_string("general.name", "Tiny Llama"),
    kv_u32("general.file_type", 15),
    kv_string_array("tokenizer.ggml.tokens", ["<s>", "</s>", "hello", "ünïcode"]),
    kv_i32_array("tokenizer.ggml.token_type", [1, 3, 1, 1]),
    kv_f32("llama.rope.freq_base", 10000.0),
    kv_u32("llama.context_length", 4096),
    kv_u32("llama.block_count", 22),
]


# --- safetensors ------------------------------------------------------------------------------


def test_safetensors_header_is_summarised() -> None:
    data = safetensors_file(
        {
            "embed.weight": ("BF16", [32000, 64]),
            "layers.0.weight": ("F32", [64, 64]),
            "layers.0.bias": ("F32", [64]),
            "step": ("I64", []),
        },
        metadata={"format": "pt", "note": "x" * 1000},
    )
    assert summarize(data, "model.safetensors", len(data)) == (
        "safetensors",
        {
            "tensors": "4",
            "parameters": str(32000 * 64 + 64 * 64 + 64 + 1),
            "dtypes": "BF16,F32,I64",
            "metadata.format": "pt",
            "metadata.note": "x" * 256,
        },
    )


def test_safetensors_is_recognised_from_the_first_part_alone() -> None:
    data = safetensors_file({"w": ("F16", [1024, 1024])}, padding=5)
    head = memoryview(data)[:4096]
    summary = summarize(head, "weights/model-00001-of-00002.bin", len(data))
    assert summary == ("safetensors", {"tensors": "1", "parameters": "1048576", "dtypes": "F16"})
    # The size is unknown until the upload finishes: still summarised.
    assert summarize(head, "w", None) == summary


def test_safetensors_keeps_at_most_16_metadata_entries() -> None:
    metadata = {f"k{i:02}": str(i) for i in range(40)}
    data = safetensors_file({"w": ("U8", [3])}, metadata=metadata)
    summary = summarize(data, "a.safetensors", len(data))
    assert summary is not None
    kept = sorted(k for k in summary[1] if k.startswith("metadata."))
    assert kept == [f"metadata.k{i:02}" for i in range(16)]


def test_empty_safetensors_file_is_summarised() -> None:
    data = raw_safetensors(b"{}")
    assert summarize(data, "empty.safetensors", len(data)) == (
        "safetensors",
        {"tensors": "0", "parameters": "0", "dtypes": ""},
    )


def test_safetensors_header_beyond_the_first_part_is_not_summarised() -> None:
    data = safetensors_file({f"t{i}": ("F32", [2]) for i in range(1000)})
    assert summarize(data[:1000], "big.safetensors", len(data)) is None


def _entry(dtype: Any = "F32", shape: Any = None, offsets: Any = None) -> dict[str, Any]:
    return {
        "dtype": dtype,
        "shape": [2] if shape is None else shape,
        "data_offsets": [0, 8] if offsets is None else offsets,
    }


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"[]", id="not-an-object"),
        pytest.param(b'{"a": 1}', id="entry-not-an-object"),
        pytest.param(b'{"w": {"dtype": "F32", "shape": [2]}}', id="missing-offsets"),
        pytest.param(json.dumps({"w": _entry(offsets=[0, 12])}).encode(), id="size-mismatch"),
        pytest.param(json.dumps({"w": _entry(offsets=[4, 12])}).encode(), id="gap-at-start"),
        pytest.param(json.dumps({"w": _entry(offsets=[8, 0])}).encode(), id="reversed"),
        pytest.param(json.dumps({"w": _entry(offsets=[-8, 0])}).encode(), id="negative"),
        pytest.param(json.dumps({"w": _entry(offsets=[0.0, 8])}).encode(), id="float-offset"),
        pytest.param(json.dumps({"w": _entry(offsets=[0, 8, 9])}).encode(), id="three-offsets"),
        pytest.param(json.dumps({"w": _entry(shape=[True, 2])}).encode(), id="bool-dim"),
        pytest.param(json.dumps({"w": _entry(shape=[-1, -2])}).encode(), id="negative-dims"),
        pytest.param(json.dumps({"w": _entry(shape=[2**40] * 3)}).encode(), id="huge-shape"),
        pytest.param(json.dumps({"w": _entry(dtype="f32")}).encode(), id="bad-dtype"),
        pytest.param(json.dumps({"w": _entry(dtype=7)}).encode(), id="dtype-not-string"),
        pytest.param(
            json.dumps({"a": _entry(), "b": _entry(offsets=[4, 12])}).encode(), id="overlap"
        ),
        pytest.param(
            json.dumps({"w": _entry(), "__metadata__": {"n": 1}}).encode(), id="metadata-int"
        ),
        pytest.param(
            json.dumps({"w": _entry(), "__metadata__": ["x"]}).encode(), id="metadata-list"
        ),
        pytest.param(b'{"w": 1, "w": 2}', id="duplicate-keys"),
        pytest.param(b'{"w": NaN}', id="nan"),
        pytest.param(b'{"\\ud800": {}}', id="lone-surrogate"),
        pytest.param(b'{"w": "\xff\xfe"}', id="not-utf8"),
        pytest.param(b"\xef\xbb\xbf{}", id="bom"),
        pytest.param(b'{"w": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", id="deep-nesting"),
        pytest.param(b'{"w": ' + b"9" * 5000 + b"}", id="giant-integer"),
        pytest.param(b'{"w": {', id="truncated-json"),
        pytest.param(b" {}", id="leading-space"),
    ],
)
def test_malformed_safetensors_headers_are_not_summarised(header: bytes) -> None:
    data = raw_safetensors(header, data=b"\0" * 8)
    assert summarize(data, "model.safetensors", len(data)) is None
    assert summarize(data, "model.safetensors", None) is None


def test_safetensors_data_must_match_the_declared_size() -> None:
    data = safetensors_file({"w": ("F32", [4])})
    assert summarize(data, "m.safetensors", len(data)) is not None
    assert summarize(data, "m.safetensors", len(data) + 1) is None
    assert summarize(data[:-1], "m.safetensors", len(data) - 1) is None


@pytest.mark.parametrize(
    "length",
    [2**64 - 1, 2**63, 100_000_000, 99_999_999, 17],
    ids=["max-u64", "negative-looking", "at-limit", "below-limit-but-beyond-head", "just-over"],
)
def test_header_lengths_beyond_the_head_are_not_summarised(length: int) -> None:
    head = struct.pack("<Q", length) + b"{}" + b" " * 7
    assert summarize(head, "model.safetensors", None) is None


def test_head_longer_than_the_declared_size_is_not_summarised() -> None:
    data = safetensors_file({"w": ("F32", [4])})
    assert summarize(data, "m.safetensors", len(data) - 1) is None


def test_unknown_but_plausible_dtypes_are_accepted() -> None:
    header = json.dumps({"w": {"dtype": "F2_NEW", "shape": [3], "data_offsets": [0, 1]}})
    data = raw_safetensors(header.encode(), data=b"\0")
    assert summarize(data, "m.safetensors", len(data)) == (
        "safetensors",
        {"tensors": "1", "parameters": "3", "dtypes": "F2_NEW"},
    )


# --- GGUF -------------------------------------------------------------------------------------


def test_gguf_v3_header_is_summarised() -> None:
    data = gguf_file(LLAMA_KVS, tensors=201)
    assert summarize(data, "tinyllama.Q4_K_M.gguf", None) == (
        "gguf",
        {
            "gguf_version": "3",
            "tensors": "201",
            "metadata_keys": str(len(LLAMA_KVS)),
            "general.architecture": "llama",
            "general.name": "Tiny Llama",
            "general.file_type": "15",
            "llama.context_length": "4096",
            "llama.block_count": "22",
        },
    )


def test_big_endian_gguf_is_summarised() -> None:
    kv = struct.pack(">Q", 20) + b"general.architecture" + struct.pack(">IQ", 8, 5) + b"llama"
    data = b"GGUF" + struct.pack(">IQQ", 3, 7, 1) + kv
    assert summarize(data, "model-be.gguf", None) == (
        "gguf",
        {
            "gguf_version": "3",
            "byte_order": "big",
            "tensors": "7",
            "metadata_keys": "1",
            "general.architecture": "llama",
        },
    )


def test_gguf_keys_beyond_the_head_are_left_out() -> None:
    data = gguf_file(LLAMA_KVS)
    cut = data.index(b"llama.context_length") - 8  # inside the kv pairs, before context_length
    summary = summarize(data[:cut], "m.gguf", None)
    assert summary is not None
    assert summary[1]["metadata_keys"] == str(len(LLAMA_KVS))
    assert summary[1]["general.file_type"] == "15"
    assert "llama.context_length" not in summary[1]


@pytest.mark.parametrize("cut", range(24))
def test_gguf_fixed_header_must_fit(cut: int) -> None:
    assert summarize(gguf_file(LLAMA_KVS)[:cut], "m.gguf", None) is None


def test_gguf_arch_keys_before_the_architecture_are_still_found() -> None:
    kvs = [kv_u32("llama.block_count", 22), kv_string("general.architecture", "llama")]
    summary = summarize(gguf_file(kvs), "m.gguf", None)
    assert summary is not None
    assert summary[1]["llama.block_count"] == "22"


def test_other_architectures_keys_are_ignored() -> None:
    kvs = [kv_string("general.architecture", "llama"), kv_u32("qwen2.context_length", 1)]
    summary = summarize(gguf_file(kvs), "m.gguf", None)
    assert summary is not None
    assert "qwen2.context_length" not in summary[1]


def test_unknown_value_type_stops_parsing_but_keeps_what_was_read() -> None:
    kvs = [
        kv_string("general.architecture", "llama"),
        gguf_string("weird") + struct.pack("<I", 99) + b"\0" * 16,
        kv_string("general.name", "never read"),
    ]
    assert summarize(gguf_file(kvs), "m.gguf", None) == (
        "gguf",
        {
            "gguf_version": "3",
            "tensors": "3",
            "metadata_keys": "3",
            "general.architecture": "llama",
        },
    )


@pytest.mark.parametrize(
    "bad_kv",
    [
        pytest.param(struct.pack("<Q", 2**64 - 1) + b"key", id="huge-key-length"),
        pytest.param(struct.pack("<Q", 70_000) + b"k" * 70_000, id="key-over-spec-limit"),
        pytest.param(gguf_string(b"\xff\xfe") + struct.pack("<II", 4, 1), id="non-utf8-key"),
        pytest.param(
            gguf_string("general.name") + struct.pack("<IQ", 8, 2**63) + b"x", id="huge-string"
        ),
        pytest.param(
            gguf_string("a") + struct.pack("<IIQ", 9, 8, 2**64 - 1) + b"\0" * 64,
            id="huge-string-array",
        ),
        pytest.param(
            gguf_string("a") + struct.pack("<IIQ", 9, 12, 2**62) + b"\0" * 64,
            id="huge-f64-array",
        ),
        pytest.param(
            gguf_string("a") + struct.pack("<IIQ", 9, 42, 1) + b"\0" * 64,
            id="array-of-unknown-type",
        ),
        pytest.param(
            gguf_string("a") + struct.pack("<IIQIQ", 9, 9, 1, 0, 0),
            id="array-of-arrays",
        ),
    ],
)
def test_hostile_gguf_pairs_give_a_partial_summary(bad_kv: bytes) -> None:
    kvs = [kv_string("general.architecture", "llama"), bad_kv, kv_u32("llama.block_count", 2)]
    summary = summarize(gguf_file(kvs), "m.gguf", None)
    assert summary is not None
    assert summary[1]["general.architecture"] == "llama"
    assert "llama.block_count" not in summary[1]


def test_string_values_are_truncated_and_non_utf8_is_replaced() -> None:
    kvs = [kv_string("general.name", "n" * 5000), kv_string("general.architecture", "é")]
    kvs[1] = gguf_string("general.architecture") + struct.pack("<I", 8) + gguf_string(b"ll\xff")
    summary = summarize(gguf_file(kvs), "m.gguf", None)
    assert summary is not None
    assert summary[1]["general.name"] == "n" * 256
    assert summary[1]["general.architecture"] == "ll\ufffd"


def test_huge_kv_count_loops_only_over_the_head() -> None:
    data = b"GGUF" + struct.pack("<IQQ", 3, 1, 2**40) + kv_u32("general.file_type", 1)
    assert summarize(data, "m.gguf", None) == (
        "gguf",
        {
            "gguf_version": "3",
            "tensors": "1",
            "metadata_keys": str(2**40),
            "general.file_type": "1",
        },
    )


@pytest.mark.parametrize(
    ("tensors", "kvs"),
    [(2**64 - 1, 0), (0, 2**64 - 1), (2**63, 2**63)],
)
def test_impossible_gguf_counts_are_not_summarised(tensors: int, kvs: int) -> None:
    data = b"GGUF" + struct.pack("<IQQ", 3, tensors, kvs) + b"\0" * 64
    assert summarize(data, "m.gguf", None) is None


def test_gguf_counts_must_fit_the_declared_size() -> None:
    data = gguf_file(LLAMA_KVS, tensors=100)
    assert summarize(data, "m.gguf", 10_000) is not None
    assert summarize(data, "m.gguf", len(data)) is None  # no room for 100 tensor infos


@pytest.mark.parametrize("version", [1, 4])
def test_gguf_versions_we_do_not_parse_are_still_named(version: int) -> None:
    data = gguf_file(LLAMA_KVS, version=version)
    assert summarize(data, "m.gguf", None) == ("gguf", {"gguf_version": str(version)})


@pytest.mark.parametrize("version", [0, 0x00FF_00FF])
def test_implausible_gguf_versions_are_not_summarised(version: int) -> None:
    assert summarize(gguf_file(LLAMA_KVS, version=version), "m.gguf", None) is None


# --- anything else ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"GGU",
        b"PK\x03\x04" + b"\0" * 100,  # a zip (PyTorch .bin/.pt)
        b"\x80\x02}q\x00." + b"\0" * 100,  # a pickle
        b'{"architectures": ["LlamaForCausalLM"]}',  # config.json
        b"\x89HDF\r\n\x1a\n" + b"\0" * 100,
    ],
)
def test_other_files_are_not_summarised(head: bytes) -> None:
    assert summarize(head, "model.safetensors", len(head)) is None
    assert summarize(head, "model.gguf", None) is None


def test_the_extension_does_not_override_the_bytes() -> None:
    gguf = gguf_file(LLAMA_KVS)
    safetensors = safetensors_file({"w": ("F32", [4])})
    assert summarize(gguf, "looks.safetensors", None) == summarize(gguf, "m.gguf", None)
    assert summarize(safetensors, "looks.gguf", None) == summarize(safetensors, "m", None)
    assert summarize(safetensors, "looks.gguf", None) is not None


def test_any_buffer_is_accepted() -> None:
    data = safetensors_file({"w": ("F32", [4])})
    expected = summarize(data, "m", None)
    assert expected is not None
    assert summarize(memoryview(bytearray(data)), "m", None) == expected
    interleaved = bytes(x for b in data for x in (b, 0))
    assert summarize(memoryview(interleaved)[::2], "m", None) == expected  # not contiguous
    padded = data + b"\0" * (-len(data) % 4)  # trailing bytes are fine when the size is unknown
    two_d = memoryview(padded).cast("B", shape=[len(padded) // 4, 4])
    assert summarize(two_d, "m", None) == expected


@settings(max_examples=500)
@given(st.binary(max_size=512), st.sampled_from(["m.safetensors", "m.gguf", "x"]))
def test_random_bytes_never_raise(head: bytes, path: str) -> None:
    summarize(head, path, None)
    summarize(head, path, len(head))


@settings(max_examples=500)
@given(st.binary(max_size=256), st.integers(min_value=0, max_value=24))
def test_random_bytes_after_real_prefixes_never_raise(tail: bytes, keep: int) -> None:
    for real in (gguf_file(LLAMA_KVS), safetensors_file({"w": ("F32", [4])})):
        head = real[:keep] + tail
        summarize(head, "m", None)
        summarize(head, "m", len(head) + 100)


@given(st.data())
def test_corrupted_real_files_never_raise(data: st.DataObject) -> None:
    real = bytearray(
        data.draw(
            st.sampled_from(
                [
                    gguf_file(LLAMA_KVS),
                    safetensors_file({"a": ("F32", [2, 3]), "b": ("U8", [5])}, metadata={"k": "v"}),
                ]
            )
        )
    )
    for _ in range(data.draw(st.integers(min_value=1, max_value=8))):
        real[data.draw(st.integers(min_value=0, max_value=len(real) - 1))] = data.draw(
            st.integers(min_value=0, max_value=255)
        )
    cut = data.draw(st.integers(min_value=0, max_value=len(real)))
    summarize(bytes(real[:cut]), "m", None)
    summarize(bytes(real), "m", len(real))


def test_only_the_first_1024_gguf_pairs_are_read() -> None:
    filler = [kv_u32(f"filler.{i}", i) for i in range(1024)]
    summary = summarize(gguf_file([*filler, kv_u32("general.file_type", 1)]), "m.gguf", None)
    assert summary is not None
    assert "general.file_type" not in summary[1]
    summary = summarize(gguf_file([*filler[1:], kv_u32("general.file_type", 1)]), "m.gguf", None)
    assert summary is not None
    assert summary[1]["general.file_type"] == "1"


def test_a_large_vocabulary_is_skipped_quickly() -> None:
    vocab = kv_string_array("tokenizer.ggml.tokens", [f"tok{i}" for i in range(300_000)])
    data = gguf_file([vocab, *LLAMA_KVS])
    summary = summarize(data, "m.gguf", None)
    assert summary is not None
    assert summary[1]["llama.block_count"] == "22"
