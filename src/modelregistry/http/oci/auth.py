"""Who pulls: a registry token (Basic with any user name and the token as password, or
Bearer), or a pull token from the token endpoint (the Docker token flow)."""

from __future__ import annotations

from starlette.requests import Request

from modelregistry.domain.access import Role
from modelregistry.domain.errors import PermissionDenied
from modelregistry.domain.models import CallContext
from modelregistry.http.auth import authenticate, context_for, token_from
from modelregistry.http.context import services_of
from modelregistry.http.oci.errors import INSUFFICIENT_SCOPE


async def caller(request: Request, model: str | None, *, catalog: bool = False) -> CallContext:
    """The caller of a request on `model` (None: the version check or, with `catalog`, the
    catalog). A pull token must carry the request's scope: without it a caller who may read
    the model gets 403 with a challenge for that scope (oras fetches a new token on a 403, and
    re-sends the one it holds on a 401), one who may not gets a plain 403."""
    oci = services_of(request).oci
    token = token_from(request.headers)
    bearer = request.headers.get("authorization", "")[:7].lower() == "bearer "
    if not (token and bearer and oci.is_pull_token(token)):
        return await authenticate(request)
    grant = await oci.check_pull_token(token)
    ctx = context_for(request, grant.access)
    if model is not None and model not in grant.repositories:
        ctx.require(Role.VIEWER, model, "pull this model")
        raise PermissionDenied(
            f"this token does not grant repository:{model}:pull; fetch one that does",
            reason=INSUFFICIENT_SCOPE,
        )
    if catalog and not grant.catalog:
        raise PermissionDenied(
            "this token does not grant registry:catalog:*; fetch one that does",
            reason=INSUFFICIENT_SCOPE,
        )
    return ctx
