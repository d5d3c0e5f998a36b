"""The web UI (issue 11), mounted at `/` after every other surface: it owns the paths no
other surface claims. Pages read and forms act through the same use cases as the gRPC
servicers, as the caller of the browser's server-side session."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from modelregistry.http.errors import HttpError
from modelregistry.http.ui import actions, activity, pages, signing, static_files
from modelregistry.http.ui.errors import render_error
from modelregistry.http.ui.rendering import SecurityHeaders
from modelregistry.service.container import Services

_VERSION = "/models/{model}/versions/{version}"

__all__ = ["HttpError", "render_error", "routes"]


async def home(request: Request) -> Response:
    return RedirectResponse("/models", status_code=303)


def routes(services: Services) -> list[BaseRoute]:
    """The UI's routes, paths relative to `/`."""
    post = ["POST"]
    return [
        Mount(
            "",
            routes=[
                Route("/", home),
                Route("/static/{name}", static_files.static_file),
                Route("/signin", signing.sign_in_page, methods=["GET"]),
                Route("/signin", signing.sign_in, methods=post),
                Route("/signout", signing.sign_out, methods=post),
                Route("/models", pages.models_list),
                Route("/models/{model}", pages.model_page),
                Route("/models/{model}/compare", pages.compare_page),
                Route(_VERSION, pages.version_page),
                Route(_VERSION + "/files/{path:path}", pages.download, methods=["GET", "HEAD"]),
                Route(_VERSION + "/comments", actions.create_comment, methods=post),
                Route(_VERSION + "/comments/{comment}/edit", actions.update_comment, methods=post),
                Route(
                    _VERSION + "/comments/{comment}/delete", actions.delete_comment, methods=post
                ),
                Route(_VERSION + "/flags", actions.create_flag, methods=post),
                Route(_VERSION + "/flags/{flag}/resolve", actions.resolve_flag, methods=post),
                Route(_VERSION + "/approvals", actions.approve, methods=post),
                Route(_VERSION + "/deployments", actions.create_deployment, methods=post),
                Route(
                    _VERSION + "/deployments/{deployment}/status",
                    actions.update_deployment,
                    methods=post,
                ),
                Route(_VERSION + "/stage", actions.move_stage, methods=post),
                Route(_VERSION + "/aliases", actions.set_alias, methods=post),
                Route(_VERSION + "/aliases/{alias}/delete", actions.delete_alias, methods=post),
                Route("/activity", pages.activity_page),
                Route("/activity/events", activity.activity_events),
            ],
            middleware=[Middleware(SecurityHeaders)],
        )
    ]
