"""Pages: Jinja2 with autoescaping, Markdown through a sanitiser, and the headers every UI
response carries."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import nh3
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelregistry.domain.models import DatasetRef, Lineage, ModelVersion
from modelregistry.http.context import request_id_of

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"

# No inline script or style anywhere: everything the page runs or wears comes from /static.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_SAFE_URL_SCHEMES = {"http", "https", "mailto"}
_ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
    "del", "img",
}  # fmt: skip


def markdown_html(text: str) -> Markup:
    """A description as sanitised HTML: Markdown without raw HTML, then an allow-list of tags
    and attributes, links limited to http(s)/mailto and marked noopener."""
    rendered = _markdown.render(text)
    clean = nh3.clean(
        rendered,
        tags=_ALLOWED_TAGS,
        attributes={"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"align"}},
        url_schemes=_SAFE_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
    return Markup(clean)  # noqa: S704  (nh3 output: sanitised to the allow-list above)


def safe_link(uri: str) -> str | None:
    """`uri` if a browser may follow it from a page (http or https), else None, so a
    `javascript:` or `data:` lineage URI is shown as text and never becomes a link."""
    try:
        scheme = urlsplit(uri.strip()).scheme.lower()
    except ValueError:
        return None
    return uri if scheme in ("http", "https") and not re.search(r"[\x00-\x20]", uri) else None


_LINEAGE_FIELDS: dict[str, Callable[[Lineage], object]] = {
    "source.repository_uri": lambda lineage: lineage.source_repository,
    "source.commit": lambda lineage: lineage.source_commit,
    "source.entry_point": lambda lineage: lineage.source_entry_point,
    "run_id": lambda lineage: lineage.run_id,
    "derived_from": lambda lineage: lineage.derived_from,
    "training_datasets": lambda lineage: _datasets(lineage.training_datasets),
    "evaluation_datasets": lambda lineage: _datasets(lineage.evaluation_datasets),
}


def _datasets(datasets: list[DatasetRef]) -> str:
    return ", ".join(d.name + (f" ({d.uri})" if d.uri else "") for d in datasets)


def lineage_value(version: ModelVersion, field: str) -> str:
    """The text of one lineage field of CompareModelVersions' `lineage_differences`."""
    reader = _LINEAGE_FIELDS.get(field)
    return str(reader(version.content.lineage)) if reader is not None else ""


def path_breaks(path: str) -> Markup:
    """A file path that may wrap only after a `/` (a <wbr> there; the text itself escaped)."""
    return Markup("/<wbr>").join(escape(part) for part in path.split("/"))


def resource_link(resource: str) -> str | None:
    """The UI page of an audited resource (a model or a version), if it has one."""
    parts = resource.split("/")
    is_model = len(parts) == 2
    is_version = len(parts) == 4 and parts[2] == "versions"
    if (is_model or is_version) and parts[0] == "models" and all(parts):
        return "/" + resource
    return None


def when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def human_size(size: int) -> str:
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    amount = float(size)
    for unit in units:
        if amount < 1024 or unit == units[-1]:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{size} B"


def number(value: float) -> str:
    return f"{value:.6g}"


def query(params: Mapping[str, Any]) -> str:
    """A query string of the non-empty parameters (lists repeat the key)."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if isinstance(value, list | tuple):
            pairs.extend((key, str(v)) for v in value if v != "")
        elif value not in (None, ""):
            pairs.append((key, str(value)))
    return urlencode(pairs)


environment = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(
    markdown=markdown_html,
    when=when,
    size=human_size,
    number=number,
    safe_link=safe_link,
    path_breaks=path_breaks,
)
environment.globals.update(query=query, lineage_value=lineage_value)
environment.filters["resource_link"] = resource_link


def page(
    request: Request, template: str, values: Mapping[str, Any], status_code: int = 200
) -> HTMLResponse:
    """The rendered template; `request`, the request id, the signed-in caller and the CSRF
    token (when the route set them) are there for every template."""
    state = request.scope.get("state", {})
    body = environment.get_template(template).render(
        request=request,
        request_id=request_id_of(request),
        caller=state.get("ui.caller"),
        csrf_token=state.get("ui.csrf", ""),
        **values,
    )
    # Pages show what one caller may see: never kept by shared caches or after sign-out.
    headers = {**SECURITY_HEADERS, "cache-control": "no-store"}
    return HTMLResponse(body, status_code=status_code, headers=headers)


class SecurityHeaders:
    """ASGI middleware: the security headers on every UI response (pages, redirects, static
    files, streams), whatever produced it. Pages and error pages also set them themselves."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (name.encode(), value.encode())
                    for name, value in SECURITY_HEADERS.items()
                    if name.encode() not in present
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
