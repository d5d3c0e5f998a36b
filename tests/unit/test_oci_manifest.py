"""The OCI manifest of a version: deterministic bytes from stored facts, ModelPack's shape,
and the repository references the /v2 paths accept."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelregistry.domain.artifacts import ManifestEntry
from modelregistry.domain.errors import InvalidArgument, NotFound
from modelregistry.domain.models import (
    Lineage,
    ModelVersion,
    Stage,
    VersionContent,
    VersionStatus,
)
from modelregistry.domain.oci import build_manifest, oci_manifest_digest, param_size
from modelregistry.http.oci.references import parse_digest, parse_name, parse_reference

CREATED = datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC)


def version(entries: list[ManifestEntry], **content: object) -> ModelVersion:
    return ModelVersion(
        id=7, model="llama", version=3, content=VersionContent(**content),  # type: ignore[arg-type]
        stage=Stage.STAGING, status=VersionStatus.READY, aliases=["champion"],
        created_by="ci", revision=4, create_time=CREATED, update_time=datetime.now(UTC),
        manifest=entries,
    )  # fmt: skip


FILES = [
    ManifestEntry("weights/b.safetensors", 10, "b" * 64, ("safetensors", {"parameters": "4096"})),
    ManifestEntry("a.safetensors", 20, "a" * 64, ("safetensors", {"parameters": "6738411520"})),
    ManifestEntry("README.md", 5, "c" * 64),
]


def test_the_same_facts_give_the_same_bytes_whatever_the_order_clock_or_zone() -> None:
    first = build_manifest(version(FILES))
    shuffled = version(list(reversed(FILES)))
    shuffled.create_time = CREATED.astimezone(timezone(timedelta(hours=-7)))
    shuffled.update_time = datetime(2030, 1, 1, tzinfo=UTC)  # not part of the manifest
    shuffled.aliases = []
    second = build_manifest(shuffled)
    assert second.body == first.body
    assert second.digest == first.digest
    assert second.config == first.config


def test_the_manifest_is_a_modelpack_artifact_with_one_titled_layer_per_file() -> None:
    built = build_manifest(
        version(FILES, lineage=Lineage(source_repository="https://git/x", source_commit="abc"))
    )
    manifest = json.loads(built.body)
    config = json.loads(built.config)
    assert manifest["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
    assert manifest["config"]["digest"] == built.config_digest
    titles = [
        layer["annotations"]["org.opencontainers.image.title"] for layer in manifest["layers"]
    ]
    assert titles == ["README.md", "a.safetensors", "weights/b.safetensors"]
    assert manifest["layers"][0]["mediaType"] == "application/vnd.cncf.model.doc.v1.raw"
    assert manifest["layers"][1]["digest"] == "sha256:" + "a" * 64
    assert config["descriptor"] == {
        "name": "llama", "version": "3", "createdAt": "2026-03-01T12:30:05.123456Z",
        "sourceURL": "https://git/x", "revision": "abc",
    }  # fmt: skip
    assert config["config"] == {"format": "safetensors", "paramSize": "6.7B"}
    assert config["modelfs"]["diff_ids"][0] == "sha256:" + "c" * 64
    assert json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode() == built.body


def test_lineage_is_part_of_the_digest_but_pending_versions_have_none() -> None:
    plain = oci_manifest_digest(version(FILES))
    assert plain.startswith("sha256:")
    assert oci_manifest_digest(version(FILES, lineage=Lineage(run_id="r1"))) != plain
    pending = version(FILES)
    pending.status = VersionStatus.PENDING
    assert oci_manifest_digest(pending) == ""


@pytest.mark.parametrize(
    ("count", "size"),
    [(999, ""), (1000, "1.0K"), (4096, "4.1K"), (6_738_411_520, "6.7B"), (10**12, "1.0T")],
)
def test_param_size_writes_modelpacks_count_and_scale(count: int, size: str) -> None:
    assert param_size(count) == size


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("../etc", "NAME_INVALID"), ("a" * 256, "NAME_INVALID"), ("Llama", "NAME_INVALID"),
        ("a//b", "NAME_INVALID"), ("a/b", "MODEL_NOT_FOUND"), ("a" * 64, "MODEL_NOT_FOUND"),
    ],
)  # fmt: skip
def test_repository_names_are_model_ids(text: str, reason: str) -> None:
    with pytest.raises((InvalidArgument, NotFound)) as raised:
        parse_name(text)
    assert raised.value.reason == reason


def test_references_are_numbers_aliases_or_sha256_digests() -> None:
    assert parse_reference("m", "7").version is not None
    assert parse_reference("m", "champion").version is not None
    assert parse_reference("m", "sha256:" + "0" * 64).digest == "sha256:" + "0" * 64
    for bad in ("sha512:" + "0" * 128, "sha256:" + "0" * 63, "sha256:" + "G" * 64, "x:"):
        with pytest.raises(InvalidArgument):
            parse_digest(bad)


@given(st.text(max_size=300))
def test_no_reference_raises_anything_but_a_domain_error(text: str) -> None:
    with contextlib.suppress(InvalidArgument, NotFound):
        parse_reference("m", text)
