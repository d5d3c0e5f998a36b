"""The UI's error pages: status, a message a person can act on, what exactly was refused
(every unmet condition of a policy, every bad field), and the request id; never a stack."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from modelregistry.domain.errors import FailedPrecondition, InvalidArgument
from modelregistry.domain.policy import APPROVALS_UNMET, FLAG_OPEN, METRIC_UNMET
from modelregistry.http.errors import HttpError
from modelregistry.http.ui.rendering import SECURITY_HEADERS, page

# The kinds of PreconditionFailure violations, as a person reads them.
_KINDS = {
    METRIC_UNMET: "Metric requirement not met",
    APPROVALS_UNMET: "Not enough approvals",
    FLAG_OPEN: "Open flag",
}
_TITLES = {
    400: "This request cannot be done",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Changed by someone else",
    429: "Too many requests",
    500: "Something went wrong",
    503: "The registry is unavailable",
}


def _back_link(request: Request) -> str:
    """For a refused form, the page it came from (its path minus the action's segments)."""
    parts = request.url.path.split("/")
    if len(parts) >= 5 and parts[1] == "models" and parts[3] == "versions":
        return "/".join(parts[:5])
    if len(parts) >= 3 and parts[1] == "models":
        return "/".join(parts[:3])
    return "/models"


def render_error(request: Request, error: HttpError) -> Response:
    if error.status == 401:
        target = _back_link(request)
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response: Response = RedirectResponse(
            f"/signin?next={quote(target, safe='/')}", status_code=303, headers=SECURITY_HEADERS
        )
        return response
    violations: list[tuple[str, str, str]] = []
    cause = error.cause
    if isinstance(cause, FailedPrecondition):
        violations = [
            (_KINDS.get(v.type, v.type.replace("_", " ").capitalize()), v.subject, v.description)
            for v in cause.violations
        ]
    elif isinstance(cause, InvalidArgument):
        violations = [("Field", v.field, v.description) for v in cause.violations]
    response = page(
        request,
        "error.html",
        {
            "status": error.status,
            "title": _TITLES.get(error.status, "Error"),
            "code": error.code,
            "message": error.message,
            "violations": violations,
            "back": _back_link(request) if request.method == "POST" else "",
        },
        status_code=error.status,
    )
    response.headers.update(dict(error.headers))
    response.headers["cache-control"] = "no-store"
    return response
