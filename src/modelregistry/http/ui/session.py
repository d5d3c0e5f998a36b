"""Who is signed in to the UI, and the checks every state-changing request passes.

The session cookie (HttpOnly, SameSite=Strict, Secure under TLS) holds a random session id;
the session itself is in PostgreSQL (SessionService). Every POST carries the session's CSRF
token in a form field and is refused with 403 before anything else happens when it is
missing or wrong, or when the browser says the request came from another site.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from modelregistry.domain.access import Access
from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import InvalidArgument, PermissionDenied
from modelregistry.domain.models import CallContext
from modelregistry.http.auth import context_for
from modelregistry.http.context import services_of, settings_of
from modelregistry.service.ui_sessions import SESSION_LIFETIME, csrf_token

SESSION_COOKIE = "mr_session"
# Before sign-in there is no session: the sign-in form's CSRF token is a random value that
# must match this cookie (double submit), so no other site can sign a browser in.
SIGN_IN_COOKIE = "mr_signin"
CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 256 * 1024
_CSRF_REFUSED = (
    "this form was not sent from a page of this registry (missing or wrong CSRF token); "
    "reload the page and try again"
)


def csrf_refused() -> PermissionDenied:
    return PermissionDenied(_CSRF_REFUSED, reason=ErrorReason.CSRF_TOKEN_INVALID)


async def caller(request: Request) -> tuple[CallContext, Access]:
    """The signed-in caller (Unauthenticated when there is no live session)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    access = await services_of(request).sessions.resume(session_id)
    state = request.scope.setdefault("state", {})
    state["ui.caller"] = access
    state["ui.csrf"] = csrf_token(session_id) if session_id else ""
    return context_for(request, access), access


def _check_same_site(request: Request) -> None:
    """Refuse what the browser marks as sent from another site (a forged form or fetch)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise csrf_refused()
    origin = request.headers.get("origin")
    if origin is not None and origin != _own_origin(request):
        raise csrf_refused()


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


async def read_form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body, size-capped (first value of each key)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise csrf_refused()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidArgument(f"the form is larger than {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise InvalidArgument("the form is not valid UTF-8") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


async def checked_form(request: Request) -> tuple[CallContext, Access, dict[str, str]]:
    """The form of a state-changing request from the signed-in caller, after the CSRF check
    (PermissionDenied 403 first, before the session or the form are used)."""
    _check_same_site(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    form = await read_form(request)
    sent = form.get(CSRF_FIELD, "")
    if not session_id or not hmac.compare_digest(sent.encode(), csrf_token(session_id).encode()):
        raise csrf_refused()
    ctx, access = await caller(request)
    return ctx, access, form


async def checked_sign_in_form(request: Request) -> dict[str, str]:
    _check_same_site(request)
    form = await read_form(request)
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    sent = form.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise csrf_refused()
    return form


def new_sign_in_nonce() -> str:
    return secrets.token_urlsafe(24)


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings_of(request).tls,
    )


def set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    set_cookie(request, response, SESSION_COOKIE, session_id, int(SESSION_LIFETIME.total_seconds()))


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path="/", httponly=True, samesite="strict", secure=settings_of(request).tls
    )
