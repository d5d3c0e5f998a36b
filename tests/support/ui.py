"""Shared by the web UI's HTTP and browser tests: a catalogue seeded through gRPC (with
hostile text in every user-written field) and a signed-in httpx client."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import httpx

from modelregistry.v1 import (
    artifact_service_pb2_grpc,
    collaboration_pb2,
    collaboration_service_pb2_grpc,
    model_pb2,
    model_version_pb2,
    policy_pb2,
    policy_service_pb2_grpc,
    registry_service_pb2_grpc,
)
from modelregistry.v1 import collaboration_service_pb2 as cpb
from modelregistry.v1 import policy_service_pb2 as ppb
from modelregistry.v1 import registry_service_pb2 as pb

if TYPE_CHECKING:
    from playwright.async_api import ViewportSize

# Each payload sets window.__xss if it ever runs; the browser tests check it stays unset.
SCRIPT = "<script>window.__xss = 1</script>"
IMG = '"><img src=x onerror="window.__xss=1">'
JS_URI = "javascript:window.__xss=1"
MODEL = "vision"
OTHER_MODEL = "text-small"
FILE_PATH = f"weights/{IMG.replace('/', '')}.bin"
FILE_BYTES = b"0123456789" * 100
HOSTILE_DESCRIPTION = (
    "# Vision model card\n\nDetects **objects**. "
    f'{SCRIPT} {IMG} [click me]({JS_URI}) <a href="{JS_URI}">raw link</a>\n\n'
    "| metric | value |\n|---|---|\n| accuracy | 0.93 |\n"
)
# The viewports the browser tests screenshot at.
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Catalogue:
    model: str
    versions: list[str]  # names, version 1 first
    production: str
    file_path: str


def stubs(
    channel: grpc.aio.Channel,
) -> tuple[
    registry_service_pb2_grpc.RegistryServiceAsyncStub,
    collaboration_service_pb2_grpc.CollaborationServiceAsyncStub,
    policy_service_pb2_grpc.PolicyServiceAsyncStub,
    artifact_service_pb2_grpc.ArtifactServiceAsyncStub,
]:
    return (
        registry_service_pb2_grpc.RegistryServiceStub(channel),
        collaboration_service_pb2_grpc.CollaborationServiceStub(channel),
        policy_service_pb2_grpc.PolicyServiceStub(channel),
        artifact_service_pb2_grpc.ArtifactServiceStub(channel),
    )


async def seed_catalogue(channel: grpc.aio.Channel, tmp_path: Path) -> Catalogue:
    """Model `vision`: v1 in PRODUCTION with a file, v2 derived from v1 in STAGING, v3 in
    DEVELOPMENT; a policy needing accuracy >= 0.9, one approval and no open flags; hostile
    text in the description, labels, parameters, lineage URIs, a comment, a flag reason and
    the file's path. Model `text-small` beside it."""
    from integration.artifact_helpers import LocalFile, upload

    registry, collaboration, _, artifacts = stubs(channel)
    await registry.CreateModel(
        pb.CreateModelRequest(
            model_id=MODEL,
            model=model_pb2.Model(
                description=HOSTILE_DESCRIPTION, owner="ana", labels={"team": IMG, "task": "det"}
            ),
        )
    )
    await registry.CreateModel(
        pb.CreateModelRequest(
            model_id=OTHER_MODEL,
            model=model_pb2.Model(description="A small text model", owner="bo"),
        )
    )
    names: list[str] = []
    for number, (accuracy, loss) in enumerate([(0.91, 0.4), (0.87, 0.35), (0.95, 0.3)], 1):
        lineage = model_version_pb2.Lineage(
            source=model_version_pb2.SourceCode(
                repository_uri=JS_URI if number == 1 else "https://git.example.com/vision.git",
                commit=f"abc{number}",
                entry_point="train.py",
            ),
            run_id=f"run-{number}",
            training_datasets=[model_version_pb2.DatasetReference(name="coco", uri=JS_URI)],
            derived_from=names[0] if number == 2 else "",
        )
        version = await registry.CreateModelVersion(
            pb.CreateModelVersionRequest(
                parent=f"models/{MODEL}",
                model_version=model_version_pb2.ModelVersion(
                    description=f"Version {number}",
                    metrics={"accuracy": accuracy, "loss": loss},
                    parameters={"lr": str(0.001 * number), "note": SCRIPT},
                    lineage=lineage,
                    labels={"xss": IMG},
                    input_schema=model_version_pb2.Schema(
                        fields=[
                            model_version_pb2.SchemaField(
                                name="image",
                                dtype=model_version_pb2.DATA_TYPE_FLOAT32,
                                shape=[-1, 3, 224, 224 if number < 3 else 320],
                            )
                        ]
                    ),
                ),
            )
        )
        names.append(version.name)
    await upload(
        artifacts, names[0], FILE_PATH, LocalFile.of_bytes(tmp_path / "weights.bin", FILE_BYTES)
    )
    await registry.TransitionModelVersionStage(
        pb.TransitionModelVersionStageRequest(
            name=names[0], stage=model_version_pb2.STAGE_PRODUCTION, reason="first release"
        )
    )
    await registry.TransitionModelVersionStage(
        pb.TransitionModelVersionStageRequest(
            name=names[1], stage=model_version_pb2.STAGE_STAGING, reason="try it"
        )
    )
    await registry.SetModelVersionAlias(
        pb.SetModelVersionAliasRequest(name=names[0], alias="champion")
    )
    _, _, policies, _ = stubs(channel)
    await policies.UpdatePromotionPolicy(
        ppb.UpdatePromotionPolicyRequest(
            promotion_policy=policy_pb2.PromotionPolicy(
                name=f"models/{MODEL}/promotionPolicy",
                required_metrics=[
                    policy_pb2.MetricRequirement(
                        metric="accuracy",
                        comparator=policy_pb2.COMPARATOR_GREATER_OR_EQUAL,
                        threshold=0.9,
                    )
                ],
                required_approvals=1,
            )
        )
    )
    await collaboration.CreateComment(
        cpb.CreateCommentRequest(
            parent=names[1], comment=collaboration_pb2.Comment(body=f"Looks odd {SCRIPT} {IMG}")
        )
    )
    await collaboration.CreateFlag(
        cpb.CreateFlagRequest(
            parent=names[1],
            flag=collaboration_pb2.Flag(
                severity=collaboration_pb2.FLAG_SEVERITY_HIGH, reason=f"drifts {IMG}"
            ),
        )
    )
    return Catalogue(MODEL, names, names[0], FILE_PATH)


def csrf_of(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match is not None, "the page has no CSRF token"
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    """Sign `client` in through the form, as a browser does; returns the redirect."""
    form_page = await client.get("/signin")
    response = await client.post(
        "/signin", data={"csrf_token": csrf_of(form_page.text), "token": token, "next": "/models"}
    )
    assert response.status_code == 303, response.text
    return response


async def page_csrf(client: httpx.AsyncClient, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return csrf_of(response.text)
