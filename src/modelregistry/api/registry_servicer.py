"""RegistryService: request validation and conversion; the use cases live in service/."""

from __future__ import annotations

from typing import TypeAlias

import grpc
from google.protobuf import empty_pb2

from modelregistry.api import conversions as conv
from modelregistry.api import history_conversions
from modelregistry.api.call_context import call_context
from modelregistry.domain import names, update_masks
from modelregistry.domain.comparison import MAX_COMPARED, MIN_COMPARED
from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.history import check_query
from modelregistry.domain.models import ModelContent, Stage, VersionContent
from modelregistry.domain.validation import (
    Violations,
    check_model_content,
    check_reason,
    check_request_id,
    check_version_content,
)
from modelregistry.service.history import HistoryService
from modelregistry.service.listing import ListingService
from modelregistry.service.models import ModelService
from modelregistry.service.versions import VersionService
from modelregistry.v1 import model_pb2, model_version_pb2, registry_service_pb2_grpc
from modelregistry.v1 import registry_service_pb2 as pb

Context: TypeAlias = grpc.aio.ServicerContext


class RegistryServicer(registry_service_pb2_grpc.RegistryServiceServicer):
    def __init__(
        self,
        models: ModelService,
        versions: VersionService,
        listing: ListingService,
        history: HistoryService,
    ) -> None:
        self._models = models
        self._versions = versions
        self._listing = listing
        self._history = history

    # -- models -----------------------------------------------------------------------------

    async def CreateModel(
        self, request: pb.CreateModelRequest, context: Context
    ) -> model_pb2.Model:
        model_id = names.validate_model_id(request.model_id, "model_id")
        content = _valid_model_content(request.model, "model")
        request_id = _valid_request_id(request.request_id)
        model = await self._models.create(call_context(), model_id, content, request_id)
        return conv.model_to_proto(model)

    async def GetModel(self, request: pb.GetModelRequest, context: Context) -> model_pb2.Model:
        model_id = names.parse_model_name(request.name, "name")
        return conv.model_to_proto(await self._models.get(model_id))

    async def ListModels(
        self, request: pb.ListModelsRequest, context: Context
    ) -> pb.ListModelsResponse:
        page = await self._listing.list_models(
            request.page_size, request.page_token, request.filter, request.order_by
        )
        return pb.ListModelsResponse(
            models=[conv.model_to_proto(m) for m in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateModel(
        self, request: pb.UpdateModelRequest, context: Context
    ) -> model_pb2.Model:
        model_id = names.parse_model_name(request.model.name, "model.name")
        fields = update_masks.resolve_mask(
            request.update_mask.paths, update_masks.MODEL_UPDATABLE, update_masks.MODEL_OUTPUT_ONLY
        )
        content = _valid_model_content(request.model, "model")
        model = await self._models.update(
            call_context(), model_id, content, fields, request.model.etag
        )
        return conv.model_to_proto(model)

    async def DeleteModel(
        self, request: pb.DeleteModelRequest, context: Context
    ) -> empty_pb2.Empty:
        model_id = names.parse_model_name(request.name, "name")
        await self._models.delete(call_context(), model_id, request.etag, request.force)
        return empty_pb2.Empty()

    # -- versions ---------------------------------------------------------------------------

    async def CreateModelVersion(
        self, request: pb.CreateModelVersionRequest, context: Context
    ) -> model_version_pb2.ModelVersion:
        model_id = names.parse_model_name(request.parent, "parent")
        content = _valid_version_content(request.model_version, "model_version")
        request_id = _valid_request_id(request.request_id)
        version = await self._versions.create(call_context(), model_id, content, request_id)
        return conv.version_to_proto(version)

    async def GetModelVersion(
        self, request: pb.GetModelVersionRequest, context: Context
    ) -> model_version_pb2.ModelVersion:
        ref = names.parse_version_name(request.name, "name")
        version = await self._versions.get(ref)
        message = conv.version_to_proto(version)
        conv.manifest_to_proto(message, version.manifest or [])
        conv.oci_digest_to_proto(message, version)
        return message

    async def ListModelVersions(
        self, request: pb.ListModelVersionsRequest, context: Context
    ) -> pb.ListModelVersionsResponse:
        model_id = names.parse_model_name(request.parent, "parent", allow_wildcard=True)
        page = await self._listing.list_versions(
            model_id, request.page_size, request.page_token, request.filter, request.order_by
        )
        return pb.ListModelVersionsResponse(
            model_versions=[conv.version_to_proto(v) for v in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateModelVersion(
        self, request: pb.UpdateModelVersionRequest, context: Context
    ) -> model_version_pb2.ModelVersion:
        ref = names.parse_version_name(request.model_version.name, "model_version.name")
        fields = update_masks.resolve_mask(
            request.update_mask.paths,
            update_masks.VERSION_UPDATABLE,
            update_masks.VERSION_OUTPUT_ONLY,
        )
        content = _valid_version_content(request.model_version, "model_version")
        version = await self._versions.update(
            call_context(), ref, content, fields, request.model_version.etag
        )
        return conv.version_to_proto(version)

    async def DeleteModelVersion(
        self, request: pb.DeleteModelVersionRequest, context: Context
    ) -> empty_pb2.Empty:
        ref = names.parse_version_name(request.name, "name")
        await self._versions.delete(call_context(), ref, request.etag)
        return empty_pb2.Empty()

    # -- lifecycle and aliases --------------------------------------------------------------

    async def TransitionModelVersionStage(
        self, request: pb.TransitionModelVersionStageRequest, context: Context
    ) -> pb.TransitionModelVersionStageResponse:
        ref = names.parse_version_name(request.name, "name")
        target = _valid_stage(request.stage)
        violations = Violations()
        check_reason(request.reason, "reason", violations)
        violations.raise_if_any()
        moved, archived = await self._versions.transition(
            call_context(), ref, target, request.reason, request.archive_existing, request.etag
        )
        return pb.TransitionModelVersionStageResponse(
            model_version=conv.version_to_proto(moved),
            archived_versions=[conv.version_to_proto(v) for v in archived],
        )

    async def ListStageTransitions(
        self, request: pb.ListStageTransitionsRequest, context: Context
    ) -> pb.ListStageTransitionsResponse:
        ref = names.parse_version_name(request.parent, "parent", allow_wildcard=True)
        page = await self._listing.list_stage_transitions(
            ref, request.page_size, request.page_token
        )
        return pb.ListStageTransitionsResponse(
            stage_transitions=[conv.stage_transition_to_proto(t) for t in page.items],
            next_page_token=page.next_page_token,
        )

    async def SetModelVersionAlias(
        self, request: pb.SetModelVersionAliasRequest, context: Context
    ) -> model_version_pb2.ModelVersion:
        ref = names.parse_version_name(request.name, "name")
        alias = names.validate_alias(request.alias, "alias")
        return conv.version_to_proto(await self._versions.set_alias(call_context(), ref, alias))

    async def DeleteModelVersionAlias(
        self, request: pb.DeleteModelVersionAliasRequest, context: Context
    ) -> model_version_pb2.ModelVersion:
        model_id = names.parse_model_name(request.model, "model")
        alias = names.validate_alias(request.alias, "alias")
        version = await self._versions.delete_alias(call_context(), model_id, alias)
        return conv.version_to_proto(version)

    async def ListAliasChanges(
        self, request: pb.ListAliasChangesRequest, context: Context
    ) -> pb.ListAliasChangesResponse:
        model_id = names.parse_model_name(request.parent, "parent")
        page = await self._listing.list_alias_changes(
            model_id, request.page_size, request.page_token
        )
        return pb.ListAliasChangesResponse(
            alias_changes=[conv.alias_change_to_proto(c) for c in page.items],
            next_page_token=page.next_page_token,
        )

    async def CompareModelVersions(
        self, request: pb.CompareModelVersionsRequest, context: Context
    ) -> pb.CompareModelVersionsResponse:
        count = len(request.names)
        if not MIN_COMPARED <= count <= MAX_COMPARED:
            raise InvalidArgument.for_field(
                "names", f"compare {MIN_COMPARED} to {MAX_COMPARED} versions (got {count})"
            )
        refs = [names.parse_version_name(n, f"names[{i}]") for i, n in enumerate(request.names)]
        return conv.comparison_to_proto(await self._versions.compare(refs))

    async def ListModelHistory(
        self, request: pb.ListModelHistoryRequest, context: Context
    ) -> pb.ListModelHistoryResponse:
        model_id = names.parse_model_name(request.parent, "parent")
        kind = None
        if request.kind != pb.HOLDING_KIND_UNSPECIFIED:
            kind = history_conversions.KIND_FROM_PROTO.get(request.kind)
            if kind is None:
                raise InvalidArgument.for_field(
                    "kind",
                    "use HOLDING_KIND_STAGE, _ALIAS, _DEPLOYMENT, or leave it unset for all",
                )
        as_of = None
        if request.HasField("as_of_time"):
            violations = Violations()
            as_of = conv.datetime_from_timestamp(request.as_of_time, "as_of_time", violations)
            violations.raise_if_any()
        query = check_query(kind, request.key, as_of)
        page = await self._history.list_history(
            model_id, query, request.page_size, request.page_token
        )
        return pb.ListModelHistoryResponse(
            entries=[history_conversions.history_entry_to_proto(e) for e in page.items],
            next_page_token=page.next_page_token,
        )


def _valid_model_content(model: model_pb2.Model, prefix: str) -> ModelContent:
    content = conv.model_content_from_proto(model)
    violations = Violations()
    check_model_content(content, prefix, violations)
    violations.raise_if_any()
    return content


def _valid_version_content(version: model_version_pb2.ModelVersion, prefix: str) -> VersionContent:
    content = conv.version_content_from_proto(version)
    violations = Violations()
    check_version_content(content, prefix, violations)
    if content.lineage.derived_from:
        try:
            names.parse_version_name(content.lineage.derived_from, f"{prefix}.lineage.derived_from")
        except InvalidArgument as exc:
            violations.items.extend(exc.violations)
    violations.raise_if_any()
    return content


def _valid_request_id(request_id: str) -> str | None:
    if not request_id:
        return None
    violations = Violations()
    check_request_id(request_id, "request_id", violations)
    violations.raise_if_any()
    return request_id


def _valid_stage(stage: int) -> Stage:
    target: Stage | None = conv.STAGE_FROM_PROTO.get(stage)  # type: ignore[call-overload]
    if target is None:
        raise InvalidArgument.for_field(
            "stage", "set a target stage: STAGE_STAGING, STAGE_PRODUCTION or STAGE_ARCHIVED"
        )
    return target
