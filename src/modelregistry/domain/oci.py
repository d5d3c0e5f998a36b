"""A version as an OCI artifact: the CNCF ModelPack manifest and config of a READY version.

Pure and deterministic: the bytes depend only on stored facts (the version's number, creation
time and lineage, and its files' paths, sizes, SHA-256 and summaries), written as canonical
JSON (sorted keys, no whitespace, UTF-8). Every replica, before and after a restart, serves
the same bytes and so the same digest.

How the OCI digest relates to `manifest_digest`: both cover the same files (path, size,
SHA-256); `manifest_digest` covers nothing else, while the OCI manifest also covers its config
(the version's number, creation time, formats, parameter count and lineage). A new file means
a new value of both; an edit of the version's lineage (UpdateModelVersion) changes only the
OCI digest.

References: opencontainers/image-spec manifest.md, modelpack/model-spec docs/spec.md and
docs/config.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelregistry.domain.artifacts import ManifestEntry
from modelregistry.domain.models import ModelVersion, VersionStatus

IMAGE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MODEL_MANIFEST = "application/vnd.cncf.model.manifest.v1+json"
MODEL_CONFIG = "application/vnd.cncf.model.config.v1+json"
WEIGHT_LAYER = "application/vnd.cncf.model.weight.v1.raw"
WEIGHT_CONFIG_LAYER = "application/vnd.cncf.model.weight.config.v1.raw"
DOC_LAYER = "application/vnd.cncf.model.doc.v1.raw"
CODE_LAYER = "application/vnd.cncf.model.code.v1.raw"

TITLE = "org.opencontainers.image.title"
FILEPATH = "org.cncf.model.filepath"
_LINEAGE_PREFIX = "io.modelregistry.lineage."

_WEIGHT_SUFFIXES = (
    ".safetensors", ".gguf", ".ggml", ".bin", ".pt", ".pth", ".onnx", ".ckpt", ".h5", ".npz",
    ".pb", ".tflite", ".engine", ".plan",
)  # fmt: skip
_CONFIG_SUFFIXES = (
    ".json", ".yaml", ".yml", ".toml", ".model", ".tiktoken", ".vocab", ".merges", ".jinja",
)  # fmt: skip
_DOC_SUFFIXES = (".md", ".txt", ".rst", ".pdf", ".html")
_DOC_NAMES = ("license", "readme", "notice", "copying")
_CODE_SUFFIXES = (".py", ".sh", ".js", ".ts", ".ipynb")
_SCALES = (("Q", 10**15), ("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3))


@dataclass(frozen=True)
class OciManifest:
    """The manifest of one version as served: its bytes, their digest, and its config blob."""

    model: str
    version: int
    body: bytes
    digest: str
    config: bytes
    config_digest: str


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def has_manifest(version: ModelVersion) -> bool:
    """Only READY versions (no upload open) have a manifest: their file list is complete."""
    return version.status == VersionStatus.READY and version.manifest is not None


def build_manifest(version: ModelVersion) -> OciManifest:
    """The ModelPack manifest of a READY version (see has_manifest), one layer per file."""
    assert version.manifest is not None
    entries = sorted(version.manifest, key=lambda e: e.path.encode())
    config = canonical_json(_config(version, entries))
    config_digest = sha256_digest(config)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": IMAGE_MANIFEST,
        "artifactType": MODEL_MANIFEST,
        "config": {"mediaType": MODEL_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [
            {
                "mediaType": layer_media_type(e),
                "digest": f"sha256:{e.sha256}",
                "size": e.size_bytes,
                "annotations": {TITLE: e.path, FILEPATH: e.path},
            }
            for e in entries
        ],
        "annotations": _annotations(version),
    }
    body = canonical_json(manifest)
    return OciManifest(
        model=version.model,
        version=version.version,
        body=body,
        digest=sha256_digest(body),
        config=config,
        config_digest=config_digest,
    )


def oci_manifest_digest(version: ModelVersion) -> str:
    """The digest a deployment pins (`registry/model@sha256:...`); empty without a manifest."""
    return build_manifest(version).digest if has_manifest(version) else ""


def layer_media_type(entry: ManifestEntry) -> str:
    """Weights when the registry recognised the file's format, else by its name."""
    if entry.summary is not None:
        return WEIGHT_LAYER
    name = entry.path.rsplit("/", 1)[-1].lower()
    if name.endswith(_WEIGHT_SUFFIXES):
        return WEIGHT_LAYER
    if name.endswith(_CONFIG_SUFFIXES) or (name.endswith(".txt") and "vocab" in name):
        return WEIGHT_CONFIG_LAYER
    if name.endswith(_DOC_SUFFIXES) or name.startswith(_DOC_NAMES):
        return DOC_LAYER
    if name.endswith(_CODE_SUFFIXES):
        return CODE_LAYER
    return WEIGHT_LAYER


def param_size(parameters: int) -> str:
    """ModelPack's `<count><scale>` with one decimal (6738415616 → `6.7B`); empty below 1K."""
    for letter, scale in _SCALES:
        if parameters >= scale:
            return f"{parameters / scale:.1f}{letter}"
    return ""


def _config(version: ModelVersion, entries: list[ManifestEntry]) -> dict[str, Any]:
    lineage = version.content.lineage
    descriptor: dict[str, Any] = {
        "name": version.model,
        "version": str(version.version),
        "createdAt": _time(version.create_time),
    }
    if lineage.source_repository:
        descriptor["sourceURL"] = lineage.source_repository
    if lineage.source_commit:
        descriptor["revision"] = lineage.source_commit
    model_config: dict[str, Any] = {}
    formats = sorted({e.summary[0] for e in entries if e.summary is not None})
    if formats:
        model_config["format"] = ",".join(formats)
    size = param_size(_parameters(entries))
    if size:
        model_config["paramSize"] = size
    return {
        "descriptor": descriptor,
        "config": model_config,
        # Layers are raw files, not tars: a layer's DiffID is the digest of its bytes.
        "modelfs": {"type": "layers", "diff_ids": [f"sha256:{e.sha256}" for e in entries]},
    }


def _parameters(entries: Iterable[ManifestEntry]) -> int:
    """The parameters of every file that says (sharded weights add up)."""
    total = 0
    for entry in entries:
        if entry.summary is None:
            continue
        count = entry.summary[1].get("parameters", "")
        if count.isdigit():
            total += int(count)
    return total


def _annotations(version: ModelVersion) -> dict[str, str]:
    lineage = version.content.lineage
    annotations = {
        "org.opencontainers.image.created": _time(version.create_time),
        "org.opencontainers.image.version": str(version.version),
    }
    if lineage.source_repository:
        annotations["org.opencontainers.image.source"] = lineage.source_repository
    if lineage.source_commit:
        annotations["org.opencontainers.image.revision"] = lineage.source_commit
    extra = {
        "entry-point": lineage.source_entry_point,
        "run-id": lineage.run_id,
        "derived-from": lineage.derived_from,
        "training-datasets": _datasets(lineage.training_datasets),
        "evaluation-datasets": _datasets(lineage.evaluation_datasets),
    }
    annotations.update({_LINEAGE_PREFIX + k: v for k, v in extra.items() if v})
    return annotations


def _datasets(datasets: Iterable[Any]) -> str:
    listed = [{"name": d.name, "uri": d.uri, "digest": d.digest} for d in datasets]
    return canonical_json(listed).decode() if listed else ""


def _time(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds, as stored (never the clock of the moment)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
