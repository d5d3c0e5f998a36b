"""AccessService: tokens and grants (admin only), and who the caller is. Validation and
conversion here; the use cases live in service/access.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeAlias

import grpc
from google.protobuf import empty_pb2

from modelregistry.api import access_conversions as conv
from modelregistry.api.call_context import call_context
from modelregistry.domain import access as da
from modelregistry.domain import names
from modelregistry.domain.access import Grant
from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.validation import Violations
from modelregistry.service.access import AccessService
from modelregistry.v1 import access_pb2, access_service_pb2_grpc
from modelregistry.v1 import access_service_pb2 as pb

Context: TypeAlias = grpc.aio.ServicerContext

_ROLE_RULE = "set a role: ROLE_VIEWER, ROLE_EDITOR, ROLE_APPROVER or ROLE_ADMIN"


class AccessServicer(access_service_pb2_grpc.AccessServiceServicer):
    def __init__(self, access: AccessService) -> None:
        self._service = access

    # -- tokens -----------------------------------------------------------------------------

    async def CreateToken(
        self, request: pb.CreateTokenRequest, context: Context
    ) -> pb.CreateTokenResponse:
        token = request.token
        violations = Violations()
        da.check_principal(token.principal, "token.principal", violations)
        da.check_token_description(token.description, "token.description", violations)
        expire_time = None
        if token.HasField("expire_time"):
            expire_time = conv.datetime_from_proto(
                token.expire_time, "token.expire_time", violations
            )
            if expire_time is not None:
                da.check_expire_time(
                    expire_time, datetime.now(UTC), "token.expire_time", violations
                )
        violations.raise_if_any()
        created, secret = await self._service.create_token(
            call_context(), token.principal, token.description, expire_time
        )
        return pb.CreateTokenResponse(token=conv.token_to_proto(created), secret=secret)

    async def ListTokens(
        self, request: pb.ListTokensRequest, context: Context
    ) -> pb.ListTokensResponse:
        principal = _optional_principal(request.principal, "principal")
        page = await self._service.list_tokens(
            call_context(), principal, request.show_inactive, request.page_size,
            request.page_token,
        )  # fmt: skip
        return pb.ListTokensResponse(
            tokens=[conv.token_to_proto(t) for t in page.items],
            next_page_token=page.next_page_token,
        )

    async def RevokeToken(
        self, request: pb.RevokeTokenRequest, context: Context
    ) -> access_pb2.Token:
        token_id = names.parse_token_name(request.name, "name")
        revoked = await self._service.revoke_token(call_context(), token_id)
        return conv.token_to_proto(revoked)

    # -- grants -----------------------------------------------------------------------------

    async def SetGrant(self, request: pb.SetGrantRequest, context: Context) -> access_pb2.Grant:
        grant = request.grant
        violations = Violations()
        da.check_principal(grant.principal, "grant.principal", violations)
        model = _optional_model(grant.model, "grant.model", violations)
        role = conv.ROLE_FROM_PROTO.get(grant.role)
        if role is None:
            violations.add("grant.role", _ROLE_RULE)
        violations.raise_if_any()
        assert role is not None
        held = await self._service.set_grant(call_context(), Grant(grant.principal, model, role))
        return conv.grant_to_proto(held)

    async def DeleteGrant(
        self, request: pb.DeleteGrantRequest, context: Context
    ) -> empty_pb2.Empty:
        violations = Violations()
        da.check_principal(request.principal, "principal", violations)
        model = _optional_model(request.model, "model", violations)
        violations.raise_if_any()
        await self._service.delete_grant(call_context(), request.principal, model)
        return empty_pb2.Empty()

    async def ListGrants(
        self, request: pb.ListGrantsRequest, context: Context
    ) -> pb.ListGrantsResponse:
        violations = Violations()
        principal = None
        if request.principal:
            da.check_principal(request.principal, "principal", violations)
            principal = request.principal
        model = _optional_model(request.model, "model", violations)
        violations.raise_if_any()
        page = await self._service.list_grants(
            call_context(), principal, model, request.page_size, request.page_token
        )
        return pb.ListGrantsResponse(
            grants=[conv.grant_to_proto(g) for g in page.items],
            next_page_token=page.next_page_token,
        )

    # -- the caller -------------------------------------------------------------------------

    async def GetCaller(self, request: pb.GetCallerRequest, context: Context) -> pb.Caller:
        return conv.caller_to_proto(self._service.caller(call_context()))


def _optional_principal(principal: str, path: str) -> str | None:
    return da.validate_principal(principal, path) if principal else None


def _optional_model(model: str, path: str, violations: Violations) -> str | None:
    """`models/{model}` → the model id; empty → None (everywhere)."""
    if not model:
        return None
    try:
        return names.parse_model_name(model, path)
    except InvalidArgument as exc:
        violations.items.extend(exc.violations)
        return None
