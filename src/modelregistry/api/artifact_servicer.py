"""ArtifactService: request validation and conversion; the use cases live in service/."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TypeAlias

import grpc
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from modelregistry.api import conversions as conv
from modelregistry.api.call_context import call_context
from modelregistry.domain import artifacts as da
from modelregistry.domain import names
from modelregistry.domain.errors import InvalidArgument
from modelregistry.service.artifacts import ArtifactService
from modelregistry.service.upload_writer import WriteChunk
from modelregistry.v1 import artifact_pb2, artifact_service_pb2_grpc
from modelregistry.v1 import artifact_service_pb2 as pb

# Servicers read metadata and abort through the context; every message is a protobuf one.
Context: TypeAlias = grpc.aio.ServicerContext[Message, Message]


class ArtifactServicer(artifact_service_pb2_grpc.ArtifactServiceServicer):
    def __init__(self, artifacts: ArtifactService) -> None:
        self._artifacts = artifacts

    async def StartUpload(
        self, request: pb.StartUploadRequest, context: Context
    ) -> artifact_pb2.UploadSession:
        ref = names.parse_version_name(request.parent, "parent")
        path = names.validate_path(request.path, "path")
        size = request.size_bytes if request.HasField("size_bytes") else None
        da.validate_size(size, "size_bytes")
        sha256 = da.validate_sha256(request.sha256, "sha256")
        if len(request.content_type) > da.MAX_CONTENT_TYPE_CHARS:
            raise InvalidArgument.for_field("content_type", "at most 256 characters")
        session = await self._artifacts.start_upload(
            call_context(), ref, path, size, sha256, request.content_type
        )
        return conv.upload_session_to_proto(session)

    async def Write(
        self, request_iterator: AsyncIterator[pb.WriteRequest], context: Context
    ) -> pb.WriteResponse:
        committed, artifact = await self._artifacts.write(call_context(), _chunks(request_iterator))
        response = pb.WriteResponse(committed_size=committed)
        if artifact is not None:
            response.artifact.CopyFrom(conv.artifact_to_proto(artifact))
        return response

    async def QueryUpload(
        self, request: pb.QueryUploadRequest, context: Context
    ) -> artifact_pb2.UploadSession:
        upload_id = _valid_upload_id(request.upload_id)
        return conv.upload_session_to_proto(await self._artifacts.query_upload(upload_id))

    async def AbortUpload(
        self, request: pb.AbortUploadRequest, context: Context
    ) -> artifact_pb2.UploadSession:
        upload_id = _valid_upload_id(request.upload_id)
        session = await self._artifacts.abort_upload(call_context(), upload_id)
        return conv.upload_session_to_proto(session)

    async def Download(
        self, request: pb.DownloadRequest, context: Context
    ) -> AsyncIterator[pb.DownloadResponse]:
        ref, path = names.parse_artifact_name(request.name, "name")
        artifact, data = await self._artifacts.download(ref, path, request.offset, request.length)
        yield pb.DownloadResponse(artifact=conv.artifact_to_proto(artifact))
        async for chunk in data:
            yield pb.DownloadResponse(data=chunk)

    async def GetArtifact(
        self, request: pb.GetArtifactRequest, context: Context
    ) -> artifact_pb2.Artifact:
        ref, path = names.parse_artifact_name(request.name, "name")
        return conv.artifact_to_proto(await self._artifacts.get(ref, path))

    async def GetArtifactDownloadUrl(
        self, request: pb.GetArtifactDownloadUrlRequest, context: Context
    ) -> pb.GetArtifactDownloadUrlResponse:
        ref, path = names.parse_artifact_name(request.name, "name")
        lifetime = _lifetime(request) if request.HasField("lifetime") else None
        found = await self._artifacts.download_url(call_context(), ref, path, lifetime)
        return pb.GetArtifactDownloadUrlResponse(
            url=found.url,
            expire_time=conv.timestamp(found.expire_time),
            size_bytes=found.artifact.size_bytes,
            sha256=found.artifact.sha256,
        )

    async def ListArtifacts(
        self, request: pb.ListArtifactsRequest, context: Context
    ) -> pb.ListArtifactsResponse:
        ref = names.parse_version_name(request.parent, "parent")
        page = await self._artifacts.list(ref, request.page_size, request.page_token)
        return pb.ListArtifactsResponse(
            artifacts=[conv.artifact_to_proto(a) for a in page.items],
            next_page_token=page.next_page_token,
        )

    async def DeleteArtifact(
        self, request: pb.DeleteArtifactRequest, context: Context
    ) -> empty_pb2.Empty:
        ref, path = names.parse_artifact_name(request.name, "name")
        await self._artifacts.delete(call_context(), ref, path)
        return empty_pb2.Empty()


def _lifetime(request: pb.GetArtifactDownloadUrlRequest) -> timedelta:
    duration = request.lifetime
    # A Duration's own limits (about 10,000 years, nanos agreeing in sign) keep the
    # conversion from overflowing; the use case bounds the value itself.
    if (
        abs(duration.seconds) > 315_576_000_000
        or abs(duration.nanos) >= 1_000_000_000
        or (duration.seconds * duration.nanos < 0)
    ):
        raise InvalidArgument.for_field("lifetime", "not a valid Duration")
    return duration.ToTimedelta()


async def _chunks(requests: AsyncIterator[pb.WriteRequest]) -> AsyncIterator[WriteChunk]:
    async for request in requests:
        # Each access to a bytes field copies it: read `data` once. A malformed upload id is
        # refused here, as QueryUpload and AbortUpload refuse it, before it reaches SQL.
        upload_id = _valid_upload_id(request.upload_id)
        yield WriteChunk(upload_id, request.offset, request.data, request.finish)


def _valid_upload_id(upload_id: str) -> str:
    try:
        return str(uuid.UUID(upload_id))
    except ValueError:
        raise InvalidArgument.for_field(
            "upload_id", "not an upload id: use the one StartUpload returned"
        ) from None
