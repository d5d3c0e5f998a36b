"""Sign in with a token, sign out. The token travels once, in the sign-in form's POST body;
it is never put in a page, a URL, a cookie or a log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from modelregistry.domain.errors import Unauthenticated
from modelregistry.http.context import services_of
from modelregistry.http.ui.rendering import page
from modelregistry.http.ui.session import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    checked_form,
    checked_sign_in_form,
    clear_cookie,
    new_sign_in_nonce,
    set_cookie,
    set_session_cookie,
)

_SIGN_IN_NONCE_AGE_S = 3600


def safe_next(target: str) -> str:
    """Where to go after signing in: a path of this site only (never `//evil` or a URL)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/models"


def _sign_in_form(request: Request, message: str = "", status_code: int = 200) -> Response:
    nonce = new_sign_in_nonce()
    response = page(
        request,
        "signin.html",
        {
            "sign_in_csrf": nonce,
            "next": safe_next(request.query_params.get("next", "")),
            "message": message,
        },
        status_code=status_code,
    )
    set_cookie(request, response, SIGN_IN_COOKIE, nonce, _SIGN_IN_NONCE_AGE_S)
    response.headers["cache-control"] = "no-store"
    return response


async def sign_in_page(request: Request) -> Response:
    return _sign_in_form(request)


async def sign_in(request: Request) -> Response:
    form = await checked_sign_in_form(request)
    try:
        session_id, _ = await services_of(request).sessions.sign_in(form.get("token", "").strip())
    except Unauthenticated:
        return _sign_in_form(
            request, "That token was not accepted: it is unknown, expired or revoked.", 401
        )
    response = RedirectResponse(safe_next(form.get("next", "")), status_code=303)
    set_session_cookie(request, response, session_id)
    clear_cookie(request, response, SIGN_IN_COOKIE)
    return response


async def sign_out(request: Request) -> Response:
    await checked_form(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        await services_of(request).sessions.sign_out(session_id)
    response = RedirectResponse("/signin", status_code=303)
    clear_cookie(request, response, SESSION_COOKIE)
    return response


__all__ = ["CSRF_FIELD"]
