"""The OCI Distribution API (issue 13), mounted at `/v2`: versions pulled as ModelPack
artifacts by skopeo, oras, containerd, Kubernetes and KServe. See handlers.py for what is
served and domain/oci.py for the manifest."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from modelregistry.http.oci import handlers
from modelregistry.http.oci.errors import render_error
from modelregistry.service.container import Services

__all__ = ["render_error", "routes"]

_ALL = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def routes(services: Services) -> list[BaseRoute]:
    """Routes relative to `/v2`. Push methods reach the handlers, which refuse them with
    UNSUPPORTED (never a bare 405 that would leave a body unread)."""
    return [
        Route("/", handlers.version_check, methods=["GET", "HEAD"]),
        Route("/token", handlers.token, methods=["GET"]),
        Route("/_catalog", handlers.catalog, methods=["GET"]),
        Route("/{name:path}/manifests/{reference}", handlers.manifests, methods=_ALL),
        Route("/{name:path}/blobs/uploads/", handlers.uploads, methods=_ALL),
        Route("/{name:path}/blobs/uploads/{upload:path}", handlers.uploads, methods=_ALL),
        Route("/{name:path}/blobs/{digest}", handlers.blobs, methods=_ALL),
        Route("/{name:path}/tags/list", handlers.tags_list, methods=["GET"]),
    ]
