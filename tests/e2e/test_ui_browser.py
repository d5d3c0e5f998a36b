"""The web UI in a real browser: sign in and out, every page with real data, the
collaboration actions, promotions refused and made, compare, the live activity feed, a
viewer's page, hostile text that must stay inert, and a forged cross-site POST."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import grpc
from playwright.async_api import BrowserContext, ConsoleMessage, Page, Response, expect
from support.auth import make_token
from support.ui import DESKTOP, FILE_BYTES, MODEL, PHONE, SCRIPT, seed_catalogue, stubs

from modelregistry.domain.access import Role
from modelregistry.v1 import collaboration_service_pb2 as cpb
from modelregistry.v1 import model_pb2
from modelregistry.v1 import registry_service_pb2 as pb

EVIL_ORIGIN = "http://evil.example"


async def shoot(page: Page, screenshot_dir: Path, name: str) -> None:
    """Screenshots of the current page at 1280 px and at phone width (test artifacts)."""
    await page.screenshot(path=screenshot_dir / f"{name}-1280.png", full_page=True)
    await page.set_viewport_size(PHONE)
    await page.screenshot(path=screenshot_dir / f"{name}-phone.png", full_page=True)
    await page.set_viewport_size(DESKTOP)


async def sign_in(page: Page, token: str) -> None:
    await page.goto("/signin")
    await page.get_by_label("Token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()


async def assert_inert(page: Page) -> None:
    """No payload ran, and no unsafe URI became a link."""
    assert await page.evaluate("window.__xss") is None
    assert await page.locator('a[href^="javascript:" i]').count() == 0
    assert await page.locator("img[onerror]").count() == 0


async def comments_of(channel: grpc.aio.Channel, version: str) -> list[str]:
    _, collaboration, _, _ = stubs(channel)
    listed = await collaboration.ListComments(cpb.ListCommentsRequest(parent=version))
    return [c.body for c in listed.comments]


async def test_sign_in_and_out(page: Page, admin_token: str, screenshot_dir: Path) -> None:
    await page.goto("/models")
    await expect(page).to_have_url(re.compile(r"/signin\?next=/models$"))
    await shoot(page, screenshot_dir, "signin")
    await page.get_by_label("Token").fill("mrt_wrong")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not accepted")
    await sign_in(page, admin_token)
    assert admin_token not in await page.content()
    cookies = await page.context.cookies()
    session = next(c for c in cookies if c["name"] == "mr_session")
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert await page.evaluate("document.cookie") == ""  # nothing readable by scripts
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.goto("/models")
    await expect(page).to_have_url(re.compile(r"/signin"))


async def test_every_page_with_real_data_and_hostile_text_inert(
    page: Page,
    admin_token: str,
    channel: grpc.aio.Channel,
    tmp_path: Path,
    screenshot_dir: Path,
) -> None:
    catalogue = await seed_catalogue(channel, tmp_path)
    await sign_in(page, admin_token)

    rows = page.locator("table.models tbody tr")
    await expect(rows).to_have_count(2)
    vision = rows.filter(has_text=MODEL)
    await expect(vision).to_contain_text("ana")
    await expect(vision.get_by_role("link", name="v3")).to_be_visible()
    await expect(vision.get_by_role("link", name="v1")).to_be_visible()  # in PRODUCTION
    await page.get_by_label("Filter").fill('owner = "ana" AND')
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("#filter-error")).to_contain_text("column")
    await assert_inert(page)
    await shoot(page, screenshot_dir, "models")

    await page.goto(f"/models/{MODEL}")
    await page.keyboard.press("Tab")  # the first stop is the skip link, then the main content
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()
    await expect(page.locator(".markdown strong")).to_have_text("objects")
    await expect(page.locator(".markdown table")).to_be_visible()
    await expect(page.locator("table.versions tbody tr")).to_have_count(3)
    await expect(page.locator("table.versions thead")).to_contain_text("accuracy")
    await page.get_by_role("checkbox", name="accuracy").uncheck()
    await page.get_by_label("Chart metric").select_option("loss")
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("table.versions thead")).not_to_contain_text("accuracy")
    chart = page.locator("figure.chart svg")
    await expect(chart.locator("text.production-label")).to_have_text("PRODUCTION v1")
    await expect(chart.locator("path.point.production")).to_have_count(1)
    await expect(chart.locator("circle.point")).to_have_count(2)
    await expect(page.locator("#timeline-h + ol")).to_contain_text("took alias @champion")
    await expect(page.locator("section", has=page.locator("#policy-h"))).to_contain_text(
        "Approvals required: 1"
    )
    await assert_inert(page)
    await shoot(page, screenshot_dir, "model")

    await page.goto(f"/{catalogue.production}")
    await expect(page.locator("h1")).to_contain_text("PRODUCTION")
    lineage = page.locator("section", has=page.locator("#lineage-h"))
    await expect(lineage).to_contain_text("javascript:window.__xss=1")  # shown as text only
    await expect(page.locator("table.files")).to_contain_text("1000 B")
    digest = await page.locator("#manifest-digest").inner_text()
    assert digest.startswith("sha256:")
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await page.get_by_role("button", name="Copy", exact=True).click()
    await expect(page.locator("#manifest-digest ~ .copied")).to_have_text("Copied")
    assert await page.evaluate("navigator.clipboard.readText()") == digest
    # A file's digest is shown shortened; its title and its copy button give the full value.
    full_sha = hashlib.sha256(FILE_BYTES).hexdigest()
    await expect(page.locator("table.files code.hash")).to_have_attribute("title", full_sha)
    await page.get_by_role("button", name=re.compile("Copy SHA-256")).click()
    await expect(page.locator("table.files .copied")).to_have_text("Copied")
    assert await page.evaluate("navigator.clipboard.readText()") == full_sha
    async with page.expect_download() as download_info:
        await page.locator("table.files").get_by_role("link", name=re.compile("Download")).click()
    download = await download_info.value
    saved = tmp_path / "downloaded.bin"
    await download.save_as(saved)
    assert saved.read_bytes() == FILE_BYTES
    await assert_inert(page)
    await shoot(page, screenshot_dir, "version")

    await page.goto(f"/{catalogue.versions[1]}")
    await expect(page.locator(".comment-body")).to_contain_text("<script>")
    await expect(page.locator(".flag-reason")).to_contain_text("onerror")
    await expect(page.locator("dl.pairs")).to_contain_text("models/vision/versions/1")
    await page.get_by_role("link", name="models/vision/versions/1").click()
    await expect(page).to_have_url(re.compile(r"/models/vision/versions/1$"))
    await assert_inert(page)


async def test_comment_post_reply_edit_delete(
    page: Page, admin_token: str, channel: grpc.aio.Channel, tmp_path: Path
) -> None:
    catalogue = await seed_catalogue(channel, tmp_path)
    version = catalogue.versions[2]
    await sign_in(page, admin_token)
    await page.goto(f"/{version}")
    await page.get_by_label("Add a comment").fill("First look: <b>fine</b>")
    await page.get_by_role("button", name="Post comment").click()
    comment = page.locator("article.comment").first
    await expect(comment.locator(".comment-body")).to_have_text("First look: <b>fine</b>")
    await comment.get_by_text("Reply", exact=True).click()
    await comment.get_by_label("Reply to test-admin").fill("A reply")
    await comment.get_by_role("button", name="Post reply").click()
    reply = page.locator('article.comment[data-depth="1"]')
    await expect(reply.locator(".comment-body")).to_have_text("A reply")
    await reply.get_by_text("Edit", exact=True).click()
    await reply.get_by_label("Edit comment").fill("An edited reply")
    await reply.get_by_role("button", name="Save").click()
    await expect(page.locator('article.comment[data-depth="1"] .comment-body')).to_have_text(
        "An edited reply"
    )
    assert await comments_of(channel, version) == ["First look: <b>fine</b>", "An edited reply"]
    # Comments render Markdown like descriptions do, through the same sanitiser.
    await page.get_by_label("Add a comment").fill(f"**bold** verdict {SCRIPT}")
    await page.get_by_role("button", name="Post comment").click()
    rendered = page.locator("article.comment .comment-body").last
    await expect(rendered.locator("strong")).to_have_text("bold")
    await expect(rendered).to_contain_text("<script>")  # shown as text, never run
    await assert_inert(page)
    await (
        page.locator("article.comment")
        .last.get_by_role("button", name=re.compile("Delete"))
        .click()
    )
    await expect(page.locator("article.comment")).to_have_count(2)
    await (
        page.locator('article.comment[data-depth="1"]')
        .get_by_role("button", name=re.compile("Delete"))
        .click()
    )
    await expect(page.locator("article.comment")).to_have_count(1)
    assert await comments_of(channel, version) == ["First look: <b>fine</b>"]


async def test_flag_approve_refused_and_successful_promotion(
    page: Page,
    admin_token: str,
    channel: grpc.aio.Channel,
    tmp_path: Path,
    screenshot_dir: Path,
) -> None:
    catalogue = await seed_catalogue(channel, tmp_path)
    await sign_in(page, admin_token)

    # Version 2: accuracy 0.87 < 0.9, no approval, one open flag (seeded) plus one raised here.
    await page.goto(f"/{catalogue.versions[1]}")
    await page.get_by_label("Severity").select_option("CRITICAL")
    await page.get_by_label("Reason for the flag").fill("latency spikes")
    await page.get_by_role("button", name="Raise flag").click()
    await expect(page.locator("li.flag-open")).to_have_count(2)
    await page.get_by_label("Move to").select_option("PRODUCTION")
    await page.locator("#stage-reason").fill("ship it")
    await page.get_by_role("button", name="Move stage").click()
    problems = page.locator("ul.violations li")
    await expect(problems).to_have_count(4)
    await expect(problems.nth(0)).to_contain_text("accuracy is 0.87, needs >= 0.9")
    await expect(problems.nth(1)).to_contain_text("has 0 of 1 approvals")
    await expect(problems.filter(has_text="Open flag")).to_have_count(2)
    await expect(page.locator("ul.violations")).to_contain_text("latency spikes")
    await shoot(page, screenshot_dir, "refused-promotion")
    await page.get_by_role("link", name="Back to the page").click()

    first_open = page.locator("li.flag-open").first
    await first_open.get_by_label("Resolution").fill("false alarm")
    await first_open.get_by_role("button", name=re.compile("Resolve")).click()
    await expect(page.locator("li.flag-open")).to_have_count(1)
    await expect(page.locator("li.flag-resolved")).to_contain_text("false alarm")

    # Version 3 meets the metric; one approval makes it promotable.
    await page.goto(f"/{catalogue.versions[2]}")
    await page.get_by_label("Comment", exact=True).fill("looks good")
    await page.get_by_role("button", name="Approve").click()
    await expect(page.locator("#approvals")).to_contain_text("test-admin")
    await page.get_by_label("Move to").select_option("PRODUCTION")
    await page.locator("#stage-reason").fill("better accuracy")
    await page.get_by_label("Archive the version now in PRODUCTION").check()
    await page.get_by_role("button", name="Move stage").click()
    await expect(page.locator("h1 .badge")).to_have_text("PRODUCTION")
    registry, _, _, _ = stubs(channel)
    first = await registry.GetModelVersion(pb.GetModelVersionRequest(name=catalogue.production))
    assert first.stage == 4  # ARCHIVED

    await page.get_by_label("Set alias").fill("winner")
    await page.get_by_role("button", name="Set alias").click()
    await expect(page.locator("#aliases")).to_contain_text("@winner")
    await page.locator("#aliases").get_by_role("button", name=re.compile("Remove")).click()
    await expect(page.locator("#aliases")).not_to_contain_text("@winner")
    await page.get_by_label("Environment").fill("prod")
    await page.get_by_label("Endpoint").fill("https://serve.example/vision")
    await page.get_by_role("button", name="Record deployment").click()
    deployments = page.locator("#deployments")
    await expect(
        deployments.get_by_role("link", name="https://serve.example/vision")
    ).to_be_visible()
    await deployments.get_by_label("Status of prod").select_option("RETIRED")
    await deployments.get_by_role("button", name=re.compile("Update")).click()
    await expect(deployments.locator("tbody")).to_contain_text("RETIRED")
    await shoot(page, screenshot_dir, "promoted")
    await page.goto(f"/models/{MODEL}")
    timeline = page.locator("#timeline-h + ol")
    await expect(timeline).to_contain_text("deployed to prod")
    await expect(timeline).to_contain_text(re.compile(r"v3\s+entered PRODUCTION"))


async def test_compare_versions(
    page: Page,
    admin_token: str,
    channel: grpc.aio.Channel,
    tmp_path: Path,
    screenshot_dir: Path,
) -> None:
    await seed_catalogue(channel, tmp_path)
    await sign_in(page, admin_token)
    # A direct visit gets the picker with nothing ticked.
    await page.goto(f"/models/{MODEL}/compare")
    for number in ("v1", "v2", "v3"):
        await expect(page.get_by_role("checkbox", name=number, exact=True)).not_to_be_checked()
    # From the model page, the versions ticked in its table carry over.
    await page.goto(f"/models/{MODEL}")
    for number in ("v1", "v2", "v3"):
        await page.get_by_role("checkbox", name=f"Compare {number}", exact=True).check()
    await page.get_by_role("button", name="Compare selected versions").click()
    for number in ("v1", "v2", "v3"):
        await expect(page.get_by_role("checkbox", name=number, exact=True)).to_be_checked()
    metrics = page.locator("#cmp-metrics-h + div table")
    await expect(metrics).to_contain_text("accuracy")
    accuracy = metrics.locator("tr", has_text="accuracy")
    await expect(accuracy.locator(".delta.down")).to_have_text("(\u22120.04)")
    await expect(accuracy.locator(".delta.up")).to_have_text("(+0.04)")
    await expect(page.locator("#cmp-params-h + div")).to_contain_text("lr")
    await expect(page.locator("#cmp-schema-h + ul")).to_contain_text("shape changed")
    await expect(page.locator("#cmp-lineage-h + div")).to_contain_text("source.repository_uri")
    await expect(page.locator("figure.chart text.production-label")).to_have_text("PRODUCTION v1")
    await assert_inert(page)
    await shoot(page, screenshot_dir, "compare")


async def test_live_activity_receives_an_event_made_through_grpc(
    page: Page, admin_token: str, channel: grpc.aio.Channel, screenshot_dir: Path
) -> None:
    registry, _, _, _ = stubs(channel)
    await registry.CreateModel(pb.CreateModelRequest(model_id="before"))
    await sign_in(page, admin_token)
    await page.goto("/activity")
    await expect(page.locator("#live-status")).to_have_text("Live updates: on")
    await expect(page.locator("table.activity tbody tr")).to_have_count(1)
    await registry.CreateModel(
        pb.CreateModelRequest(model_id="arrives-live", model=model_pb2.Model(owner="x"))
    )
    fresh = page.locator("table.activity tbody tr.fresh")
    await expect(fresh).to_have_count(1)
    await expect(fresh).to_contain_text("CreateModel")
    await expect(fresh.get_by_role("link", name="models/arrives-live")).to_be_visible()
    await page.get_by_label("Actions (comma-separated)").fill("UpdateModel")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("table.activity tbody tr")).to_have_count(0)
    await shoot(page, screenshot_dir, "activity")


async def test_a_viewer_sees_no_mutating_controls(
    context: BrowserContext,
    migrated_database_url: str,
    channel: grpc.aio.Channel,
    tmp_path: Path,
    screenshot_dir: Path,
) -> None:
    catalogue = await seed_catalogue(channel, tmp_path)
    page = await context.new_page()
    await sign_in(page, await make_token(migrated_database_url, "vic", Role.VIEWER))
    await page.goto(f"/{catalogue.versions[1]}")
    for name in ("Move stage", "Approve", "Set alias", re.compile("Resolve"),
                 re.compile("Remove")):  # fmt: skip
        await expect(page.get_by_role("button", name=name)).to_have_count(0)
    # What a viewer may do (comment, flag) stays; edits only on their own comments.
    await expect(page.get_by_role("button", name="Post comment")).to_be_visible()
    await expect(page.get_by_role("button", name="Raise flag")).to_be_visible()
    await expect(page.locator("article.comment").get_by_text("Edit", exact=True)).to_have_count(0)
    await shoot(page, screenshot_dir, "viewer")


async def test_a_forged_cross_site_post_is_refused(
    page: Page,
    admin_token: str,
    channel: grpc.aio.Channel,
    http_base_url: str,
    tmp_path: Path,
) -> None:
    catalogue = await seed_catalogue(channel, tmp_path)
    version = catalogue.versions[2]
    await sign_in(page, admin_token)
    before = await comments_of(channel, version)
    evil_page = f"""<!doctype html><form id="f" method="post"
        action="{http_base_url}/{version}/comments">
        <input name="body" value="forged"><input name="csrf_token" value="guess"></form>
        <script>document.getElementById("f").submit()</script>"""

    async def serve_evil(route: object) -> None:
        await route.fulfill(status=200, content_type="text/html", body=evil_page)  # type: ignore[attr-defined]

    await page.route(f"{EVIL_ORIGIN}/**", serve_evil)
    async with page.expect_response(re.compile(r"/comments$")) as answer:
        await page.goto(f"{EVIL_ORIGIN}/attack")
    response = await answer.value
    assert response.status == 403
    assert await comments_of(channel, version) == before


# How many lines an element's text takes (its content's height over its line height).
LINES = """(element) => {
  const range = document.createRange();
  range.selectNodeContents(element);
  const height = range.getBoundingClientRect().height;
  return Math.round(height / parseFloat(getComputedStyle(element).lineHeight));
}"""


# The elements sticking out of the window (outside a scroll container), to say what is wide.
WIDER_THAN_WINDOW = """[...document.querySelectorAll("body *")]
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth)
  .filter((e) => !(e.parentElement && e.parentElement.closest(".scroll")))
  .slice(0, 5).map((e) => e.tagName + "." + e.className + " " + e.getBoundingClientRect().right)"""


async def lines_of(page: Page, selector: str) -> list[int]:
    lines: list[int] = await page.locator(selector).evaluate_all(
        f"(elements) => elements.map({LINES})"
    )
    return lines


async def test_every_page_fits_a_phone_keeps_tokens_whole_and_loads_cleanly(
    page: Page,
    admin_token: str,
    channel: grpc.aio.Channel,
    tmp_path: Path,
    screenshot_dir: Path,
) -> None:
    catalogue = await seed_catalogue(channel, tmp_path)
    await sign_in(page, admin_token)
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            problems.append(f"{response.status}: {response.url}")

    page.on("console", on_console)
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
    page.on("response", on_response)

    # At 1280 px the files table keeps sizes and the download link on one line.
    await page.goto(f"/{catalogue.production}")
    assert await lines_of(page, "table.files td.size") == [1]
    assert await lines_of(page, "table.files td.download a") == [1]

    await page.set_viewport_size(PHONE)
    pages = {
        "models": "/models",
        "model": f"/models/{MODEL}",
        "version": f"/{catalogue.production}",
        "compare": f"/models/{MODEL}/compare?v=1&v=2&v=3",
        "activity": "/activity",  # last: leaving it would cancel its live feed's request
    }
    for name, path in pages.items():
        await page.goto(path)
        if name == "activity":
            await expect(page.locator("#live-status")).to_have_text("Live updates: on")
        width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        wide = await page.evaluate(WIDER_THAN_WINDOW)
        assert width[0] <= width[1], f"{name} is {width[0]} px wide: {wide}"
        await page.screenshot(path=screenshot_dir / f"fit-{name}-phone.png", full_page=True)
        if name == "models":
            assert set(await lines_of(page, "table.models td:first-child a")) == {1}
            assert set(await lines_of(page, "table.models .label")) == {1}
        elif name == "model":
            assert max(await lines_of(page, "table.versions tbody td")) == 1
            tick = page.locator("figure.chart text.tick").first
            box = await tick.bounding_box()
            assert box is not None
            assert box["height"] >= 10, "chart labels too small to read"
        elif name == "version":
            assert await lines_of(page, "table.files td.size") == [1]
        elif name == "activity":
            for column in (1, 4):  # sequence number and action
                cells = f"table.activity tbody td:nth-child({column})"
                assert set(await lines_of(page, cells)) == {1}
            # The time wraps only between the date and the clock.
            assert set(await lines_of(page, "table.activity tbody td .nowrap")) == {1}
    assert problems == []
