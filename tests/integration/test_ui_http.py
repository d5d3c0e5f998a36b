"""The web UI over plain HTTP (httpx against the real server): sessions, CSRF, security
headers, error pages, paging, downloads and the live feed's resumption. What needs a real
browser (scripts, rendering, clicking) is in tests/e2e."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import grpc
import httpx
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from integration.helpers import Stub
from integration.test_http_edge import edge_services
from integration.test_tls import Pki, pki
from integration.test_tls import _trusting as trusting
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from support.auth import make_token
from support.ui import (
    FILE_BYTES,
    IMG,
    MODEL,
    SCRIPT,
    Catalogue,
    page_csrf,
    seed_catalogue,
    sign_in,
    stubs,
)

from modelregistry.config import Settings
from modelregistry.domain.access import Role
from modelregistry.http import ui
from modelregistry.http.app import edge_app, surface
from modelregistry.http.serving import start_http
from modelregistry.http.ui import render_error
from modelregistry.service.auth import IssuedToken, issue_token
from modelregistry.service.container import Services
from modelregistry.storage.database import Database
from modelregistry.v1 import access_service_pb2 as apb
from modelregistry.v1 import access_service_pb2_grpc, collaboration_pb2, model_pb2
from modelregistry.v1 import collaboration_service_pb2 as cpb
from modelregistry.v1 import registry_service_pb2 as pb

__all__ = ["edge_services", "pki"]  # fixtures shared with test_http_edge and test_tls

REQUEST_ID = re.compile(r'class="request-id">([^<]+)<')


@pytest.fixture
async def catalogue(channel: grpc.aio.Channel, tmp_path: Path) -> Catalogue:
    return await seed_catalogue(channel, tmp_path)


@pytest.fixture
async def client(http_base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=http_base_url, timeout=30) as plain:
        yield plain


@pytest.fixture
async def admin(http_base_url: str, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=http_base_url, timeout=30) as signed_in:
        await sign_in(signed_in, admin_token)
        yield signed_in


def assert_security_headers(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"]
    if response.headers.get("content-type", "").startswith("text/html"):
        assert response.headers["cache-control"] == "no-store"


async def token_with_id(database_url: str, principal: str, role: Role) -> IssuedToken:
    """A token and its id (to revoke it through the API)."""
    db = await Database.connect(database_url, min_size=1, max_size=1)
    try:
        return await issue_token(db, principal, role)
    finally:
        await db.close()


async def revoke(channel: grpc.aio.Channel, issued: IssuedToken) -> None:
    access = access_service_pb2_grpc.AccessServiceStub(channel)
    await access.RevokeToken(apb.RevokeTokenRequest(name=f"tokens/{issued.token_id}"))


async def comment_bodies(channel: grpc.aio.Channel, version: str) -> list[str]:
    _, collaboration, _, _ = stubs(channel)
    listed = await collaboration.ListComments(cpb.ListCommentsRequest(parent=version))
    return [c.body for c in listed.comments]


# -- signing in and out -----------------------------------------------------------------------


async def test_pages_need_a_session_and_send_the_browser_to_sign_in(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/models/vision?chart=loss")
    assert response.status_code == 303
    # Back to the same page, query included, once signed in.
    assert response.headers["location"] == "/signin?next=/models/vision%3Fchart%3Dloss"
    assert_security_headers(response)


async def test_sign_in_sets_a_strict_httponly_cookie_and_never_shows_the_token(
    client: httpx.AsyncClient, admin_token: str, migrated_database_url: str
) -> None:
    response = await sign_in(client, admin_token)
    cookie = next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and "mr_session" in v
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert admin_token not in cookie
    session_id = client.cookies["mr_session"]
    for path in ("/models", "/activity", "/models/nothing-here"):
        page = await client.get(path)
        assert admin_token not in page.text
        assert session_id not in page.text
    # At rest: neither the session id nor the token, only hashes of them.
    conn = await asyncpg.connect(migrated_database_url)
    try:
        rows = await conn.fetch("SELECT id_hash, token_hash FROM ui_sessions")
    finally:
        await conn.close()
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hashlib.sha256(admin_token.encode()).digest()
    assert session_id.encode() not in bytes(rows[0]["id_hash"])


async def test_a_wrong_token_is_refused_without_echoing_it(client: httpx.AsyncClient) -> None:
    form = await client.get("/signin")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None
    wrong = "mrt_not-a-real-token-1234567890"
    response = await client.post("/signin", data={"csrf_token": csrf.group(1), "token": wrong})
    assert response.status_code == 401
    assert "not accepted" in response.text
    assert wrong not in response.text
    assert "mr_session" not in client.cookies


async def test_sign_in_without_the_form_nonce_is_refused(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    response = await client.post("/signin", data={"token": admin_token})
    assert response.status_code == 403
    assert "mr_session" not in client.cookies


async def test_sign_out_ends_the_session_on_the_server(
    admin: httpx.AsyncClient, http_base_url: str
) -> None:
    session_id = admin.cookies["mr_session"]
    csrf = await page_csrf(admin, "/models")
    response = await admin.post("/signout", data={"csrf_token": csrf})
    assert response.status_code == 303
    # Replaying the old cookie (as a thief would) no longer works.
    async with httpx.AsyncClient(
        base_url=http_base_url, cookies={"mr_session": session_id}
    ) as replay:
        assert (await replay.get("/models")).status_code == 303


async def test_an_expired_session_sends_the_browser_to_sign_in(
    admin: httpx.AsyncClient, migrated_database_url: str
) -> None:
    assert (await admin.get("/models")).status_code == 200
    conn = await asyncpg.connect(migrated_database_url)
    try:
        await conn.execute("UPDATE ui_sessions SET expire_time = now() - interval '1 second'")
    finally:
        await conn.close()
    response = await admin.get("/models")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/signin")


async def test_revoking_the_token_ends_its_sessions(
    http_base_url: str, migrated_database_url: str, channel: grpc.aio.Channel
) -> None:
    issued = await token_with_id(migrated_database_url, "eve", Role.EDITOR)
    async with httpx.AsyncClient(base_url=http_base_url) as browser:
        await sign_in(browser, issued.token)
        assert (await browser.get("/models")).status_code == 200
        await revoke(channel, issued)
        # The Authenticator caches answers for up to 5 s; the session must end by then.
        for _ in range(100):
            response = await browser.get("/models")
            if response.status_code == 303:
                break
            await asyncio.sleep(0.2)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/signin")


# -- CSRF -----------------------------------------------------------------------------------------


async def test_a_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(
    admin: httpx.AsyncClient, catalogue: Catalogue, channel: grpc.aio.Channel
) -> None:
    version = catalogue.versions[2]
    before = await comment_bodies(channel, version)
    good = await page_csrf(admin, f"/{version}")
    attempts = [
        {"body": "no token"},
        {"body": "wrong token", "csrf_token": "0" * 64},
        {"body": "other site", "csrf_token": good, "_origin": "https://evil.example"},
    ]
    for form in attempts:
        headers = {"origin": form.pop("_origin")} if "_origin" in form else {}
        response = await admin.post(f"/{version}/comments", data=form, headers=headers)
        assert response.status_code == 403, form
        assert "CSRF" in response.text
        assert_security_headers(response)
    assert await comment_bodies(channel, version) == before
    accepted = await admin.post(f"/{version}/comments", data={"body": "ok", "csrf_token": good})
    assert accepted.status_code == 303
    assert await comment_bodies(channel, version) == [*before, "ok"]


async def test_a_viewer_sees_no_stage_controls_and_a_forged_stage_move_gets_403(
    http_base_url: str, migrated_database_url: str, catalogue: Catalogue, registry: Stub
) -> None:
    viewer_token = await make_token(migrated_database_url, "vic", Role.VIEWER)
    version = catalogue.versions[2]
    async with httpx.AsyncClient(base_url=http_base_url) as viewer:
        await sign_in(viewer, viewer_token)
        page = await viewer.get(f"/{version}")
        assert page.status_code == 200
        for control in ("/stage", "/approvals", "/aliases", "/resolve"):
            assert f'action="/{version}{control}' not in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        forged = await viewer.post(
            f"/{version}/stage",
            data={"csrf_token": csrf.group(1), "stage": "STAGING", "reason": "sneaky"},
        )
        assert forged.status_code == 403
        assert "editor" in forged.text
    stub = registry
    current = await stub.GetModelVersion(pb.GetModelVersionRequest(name=version))
    assert current.stage == 1  # still DEVELOPMENT


# -- headers, static files and error pages -----------------------------------------------------


async def test_every_ui_response_carries_the_security_headers(
    admin: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    for path in ("/models", f"/models/{MODEL}", f"/{catalogue.production}", "/activity",
                 "/signin", "/no/such/page"):  # fmt: skip
        assert_security_headers(await admin.get(path))


async def test_static_files_are_served_with_cache_headers(admin: httpx.AsyncClient) -> None:
    page = await admin.get("/models")
    script = re.search(r'src="(/static/app\.js\?v=[0-9a-f]+)"', page.text)
    assert script is not None
    response = await admin.get(script.group(1))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "max-age=31536000" in response.headers["cache-control"]
    again = await admin.get(script.group(1), headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304


async def test_error_pages_show_a_request_id_and_no_traceback(admin: httpx.AsyncClient) -> None:
    for path, status in [
        ("/no/such/page", 404),
        ("/models/no-such-model", 404),
        (f"/models/{MODEL}/versions/not_a_version!", 400),
        ("/activity?start=yesterday", 400),
    ]:
        response = await admin.get(path)
        assert response.status_code == status, path
        assert response.headers["content-type"].startswith("text/html")
        shown = REQUEST_ID.search(response.text)
        assert shown is not None
        assert shown.group(1) == response.headers["x-request-id"]
        assert "Traceback" not in response.text
        assert 'File "' not in response.text


# -- pages with data ------------------------------------------------------------------------------


async def test_models_list_shows_filter_errors_next_to_the_box(
    admin: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    response = await admin.get("/models", params={"filter": 'owner = "ana" AND ('})
    assert response.status_code == 200
    assert 'id="filter-error"' in response.text
    assert 'aria-invalid="true"' in response.text


async def test_models_list_searches_shows_production_and_escapes_labels(
    admin: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    response = await admin.get("/models", params={"q": "small text"})  # a description
    assert 'href="/models/text-small"' in response.text
    assert f'href="/models/{MODEL}"' not in response.text
    response = await admin.get("/models", params={"q": "Vision model"})
    assert f'href="/models/{MODEL}"' in response.text
    assert "text-small" not in response.text
    everything = await admin.get("/models", params={"filter": 'owner = "ana"'})
    assert f'href="/{catalogue.production}"' in everything.text
    assert IMG not in everything.text  # the hostile label is escaped


async def test_model_list_paging_survives_concurrent_inserts(
    admin: httpx.AsyncClient, registry: Stub
) -> None:
    stub = registry
    for index in range(30):
        await stub.CreateModel(pb.CreateModelRequest(model_id=f"m{index:02d}"))
    first = await admin.get("/models")
    seen = re.findall(r'<td><a href="/models/(m\d\d)">', first.text)
    following = re.search(r'href="/models\?page_token=([^"]+)"', first.text)
    assert following is not None
    # Models inserted before the cursor while the person reads page one must not shift page two.
    for index in range(5):
        await stub.CreateModel(pb.CreateModelRequest(model_id=f"a{index}"))
    second = await admin.get("/models?page_token=" + following.group(1).replace("&amp;", "&"))
    seen += re.findall(r'<td><a href="/models/(m\d\d)">', second.text)
    assert seen == [f"m{index:02d}" for index in range(30)]


async def test_hostile_text_is_escaped_in_the_html(
    admin: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    for path in (f"/models/{MODEL}", f"/{catalogue.versions[0]}", f"/{catalogue.versions[1]}"):
        html = (await admin.get(path)).text
        assert SCRIPT not in html
        assert IMG not in html
        assert not re.search(r"<a\s[^>]*href=\"\s*javascript:", html, re.IGNORECASE)
        assert not re.search(r"<img\s[^>]*onerror", html, re.IGNORECASE)
        assert not re.search(r"<script>window", html)


async def test_a_refused_promotion_lists_every_unmet_condition(
    admin: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    version = catalogue.versions[1]  # accuracy 0.87, no approval, one open flag
    csrf = await page_csrf(admin, f"/{version}")
    response = await admin.post(
        f"/{version}/stage",
        data={"csrf_token": csrf, "stage": "PRODUCTION", "reason": "ship it"},
    )
    assert response.status_code == 400
    assert "Metric requirement not met" in response.text
    assert "accuracy is 0.87, needs &gt;= 0.9" in response.text
    assert "has 0 of 1 approvals" in response.text
    assert "Open flag" in response.text
    assert f'href="/{version}"' in response.text


async def test_files_download_through_the_registry_with_range(
    admin: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    page = await admin.get(f"/{catalogue.production}")
    link = re.search(r'href="(/models/vision/versions/1/files/[^"]+)" download', page.text)
    assert link is not None
    whole = await admin.get(link.group(1).replace("&amp;", "&"))
    assert whole.status_code == 200
    assert whole.content == FILE_BYTES
    assert whole.headers["content-disposition"].startswith("attachment")
    part = await admin.get(link.group(1).replace("&amp;", "&"), headers={"range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == FILE_BYTES[10:20]


async def test_the_activity_stream_resumes_after_last_event_id(
    admin: httpx.AsyncClient, registry: Stub
) -> None:
    stub = registry
    for index in range(3):
        await stub.CreateModel(
            pb.CreateModelRequest(model_id=f"feed{index}", model=model_pb2.Model())
        )
    page = await admin.get("/activity")
    sequences = [int(s) for s in re.findall(r"<tr><td>(\d+)</td>", page.text)]
    assert len(sequences) >= 3
    assert sequences == sorted(sequences, reverse=True)  # newest first
    sequences.reverse()
    resume_after = sequences[-2]
    received: list[dict[str, object]] = []
    async with admin.stream(
        "GET", "/activity/events", headers={"last-event-id": str(resume_after)}
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        event_id = None
        async for line in stream.aiter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                received.append({"id": event_id, **json.loads(line[6:])})
                if len(received) == 1:
                    await stub.CreateModel(pb.CreateModelRequest(model_id="live-one"))
                if len(received) == 2:
                    break
    assert [e["id"] for e in received] == [sequences[-1], sequences[-1] + 1]
    assert received[1]["resource"] == "models/live-one"
    assert received[1]["action"] == "CreateModel"


async def test_the_activity_stream_ends_when_the_token_is_revoked(
    http_base_url: str, migrated_database_url: str, channel: grpc.aio.Channel
) -> None:
    issued = await token_with_id(migrated_database_url, "sam", Role.VIEWER)
    async with httpx.AsyncClient(base_url=http_base_url, timeout=60) as browser:
        await sign_in(browser, issued.token)
        async with browser.stream("GET", "/activity/events") as stream:
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith("retry:")
            await revoke(channel, issued)
            # The stream re-checks its session every few seconds and then ends by itself
            # (events may arrive before that; the stream must not run on forever).
            async with asyncio.timeout(60):
                async for _ in lines:
                    pass


async def test_an_unexpected_error_renders_a_500_page_with_only_the_request_id(
    edge_services: Services,
) -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("secret detail: password=hunter2")

    settings = Settings(http_listen="127.0.0.1:0", shutdown_grace_s=1.0)
    app = edge_app(edge_services, settings, [surface("", [Route("/boom", broken)], render_error)])
    server = await start_http(app, settings)
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.get("/boom")
    finally:
        await server.stop(1.0)
    assert response.status_code == 500
    shown = REQUEST_ID.search(response.text)
    assert shown is not None
    assert shown.group(1) == response.headers["x-request-id"]
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert_security_headers(response)


async def test_activity_pages_newest_first_with_filters(
    admin: httpx.AsyncClient, registry: Stub
) -> None:
    for index in range(55):
        await registry.CreateModel(pb.CreateModelRequest(model_id=f"act{index:02d}"))
    await registry.UpdateModel(
        pb.UpdateModelRequest(
            model=model_pb2.Model(name="models/act00", owner="zoe"),
            update_mask=FieldMask(paths=["owner"]),
        )
    )
    first = await admin.get("/activity", params={"action": "CreateModel"})
    shown = re.findall(r'<a href="/models/(act\d\d)">', first.text)
    assert shown == [f"act{index:02d}" for index in range(54, 4, -1)]
    older = re.search(r'href="/activity\?([^"]*page_token=[^"]+)"', first.text)
    assert older is not None
    # An event made meanwhile never shifts the older page.
    await registry.CreateModel(pb.CreateModelRequest(model_id="act-late"))
    second = await admin.get("/activity?" + older.group(1).replace("&amp;", "&"))
    assert re.findall(r'<a href="/models/(act\d\d)">', second.text) == [
        f"act{index:02d}" for index in range(4, -1, -1)
    ]
    updates = await admin.get("/activity", params={"resource": "models/act00"})
    assert re.findall(r"<td>(CreateModel|UpdateModel)</td>", updates.text) == [
        "UpdateModel",
        "CreateModel",
    ]
    bad = await admin.get("/activity", params={"action": "not an action"})
    assert bad.status_code == 400
    assert "is not a method name" in bad.text


async def test_under_tls_the_session_cookie_is_secure(
    edge_services: Services, pki: Pki, admin_token: str
) -> None:
    settings = Settings(
        http_listen="127.0.0.1:0",
        shutdown_grace_s=1.0,
        tls_cert_file=str(pki.server_cert),
        tls_key_file=str(pki.server_key),
    )
    app = edge_app(edge_services, settings, [surface("", ui.routes(edge_services), render_error)])
    server = await start_http(app, settings)
    try:
        async with httpx.AsyncClient(base_url=server.url, verify=trusting(pki)) as browser:
            response = await sign_in(browser, admin_token)
    finally:
        await server.stop(1.0)
    cookie = next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and "mr_session" in v
    )
    assert "Secure" in cookie
    assert "HttpOnly" in cookie


# -- page details ----------------------------------------------------------------------------------

STAGE_SELECT = re.compile(r'<select id="stage-target" name="stage">(.*?)</select>', re.DOTALL)
OPTION = re.compile(r'<option value="(\w+)" ?(selected)?>')


async def test_the_stage_control_offers_only_allowed_moves_with_the_next_preselected(
    admin: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    expected = {
        catalogue.versions[0]: (["STAGING", "ARCHIVED"], "ARCHIVED"),  # PRODUCTION
        catalogue.versions[1]: (["PRODUCTION", "ARCHIVED"], "PRODUCTION"),  # STAGING
        catalogue.versions[2]: (["STAGING", "PRODUCTION", "ARCHIVED"], "STAGING"),  # DEVELOPMENT
    }
    for version, (offered, preselected) in expected.items():
        select = STAGE_SELECT.search((await admin.get(f"/{version}")).text)
        assert select is not None
        options = OPTION.findall(select.group(1))
        assert [value for value, _ in options] == offered, version
        assert [value for value, chosen in options if chosen] == [preselected], version


async def test_a_bare_version_has_no_stray_separator_and_one_empty_marker(
    admin: httpx.AsyncClient, registry: Stub
) -> None:
    await registry.CreateModel(pb.CreateModelRequest(model_id="bare"))
    await registry.CreateModelVersion(pb.CreateModelVersionRequest(parent="models/bare"))
    html = (await admin.get("/models/bare/versions/1")).text
    meta = re.search(r'<p class="meta">(.*?)</p>', html, re.DOTALL)
    assert meta is not None
    assert not meta.group(1).rstrip().endswith("·")
    lineage = re.search(r'<dl class="pairs">(.*?)</dl>', html, re.DOTALL)
    assert lineage is not None
    # Source, commit, entry point, run id, derived from, training and evaluation data.
    assert lineage.group(1).count('<span class="empty">—</span>') == 7
    model_html = (await admin.get("/models/bare")).text
    assert 'Owner <strong><span class="empty">—</span></strong> · updated' in model_html
    for shown in (html, model_html):
        assert "\u2013" not in shown  # no en dash standing in for "nothing"


async def test_comments_render_sanitised_markdown(
    admin: httpx.AsyncClient, catalogue: Catalogue, channel: grpc.aio.Channel
) -> None:
    _, collaboration, _, _ = stubs(channel)
    version = catalogue.versions[2]
    await collaboration.CreateComment(
        cpb.CreateCommentRequest(
            parent=version, comment=collaboration_pb2.Comment(body=f"**bold** claim {SCRIPT} {IMG}")
        )
    )
    html = (await admin.get(f"/{version}")).text
    assert "<strong>bold</strong> claim" in html
    assert "**bold**" not in html.split('<textarea id="edit-')[0]  # rendered, not literal
    assert not re.search(r"<script>window", html)
    assert not re.search(r"<img\s[^>]*onerror", html, re.IGNORECASE)


async def test_the_files_table_wraps_paths_at_slashes_and_keeps_the_full_digest(
    admin: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    html = (await admin.get(f"/{catalogue.production}")).text
    assert '<td class="path"><code>weights/<wbr>' in html
    full = hashlib.sha256(FILE_BYTES).hexdigest()
    assert f'title="{full}">{full}</code>' in html  # copied and read aloud in full
    assert '<td class="num size">1000 B</td>' in html


async def test_a_favicon_is_linked_and_served(admin: httpx.AsyncClient) -> None:
    page = await admin.get("/models")
    icon = re.search(r'<link rel="icon" href="(/static/favicon\.svg\?v=[0-9a-f]+)"', page.text)
    assert icon is not None
    response = await admin.get(icon.group(1))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.content.startswith(b"<svg")


async def test_the_model_page_sends_ticked_versions_to_compare(
    admin: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    html = (await admin.get(f"/models/{MODEL}")).text
    form = re.search(r'<form method="get" action="/models/vision/compare"(.*?)</form>', html, re.S)
    assert form is not None
    assert form.group(1).count('<input type="checkbox" name="v"') == 3
    compared = (await admin.get(f"/models/{MODEL}/compare", params=[("v", "1"), ("v", "3")])).text
    assert re.search(r'value="1" checked', compared)
    assert re.search(r'value="3" checked', compared)
    assert not re.search(r'value="2" checked', compared)
