"""Browser tests: headless Chromium (Debian's `chromium` package, driven by Playwright for
Python through `executable_path`; Playwright's own browser download is never used).

One browser per session; each test gets a fresh context (cookies) on its own server. Pages
are screenshotted at 1280 px and at phone width into the session's pytest tmp dir."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from support.server import (
    admin_token,
    channel,
    http_base_url,
    registry,
    registry_endpoints,
    registry_target,
)
from support.ui import DESKTOP

__all__ = [
    "admin_token",
    "channel",
    "http_base_url",
    "registry",
    "registry_endpoints",
    "registry_target",
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if Path(CHROMIUM).exists():
        return
    skip = pytest.mark.skip(
        reason=f"browser tests need Debian's chromium at {CHROMIUM}: run `apt-get install "
        "chromium` (make test's tests/system-deps.sh does it as root on Debian)"
    )
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(skip)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
async def context(browser: Browser, http_base_url: str) -> AsyncIterator[BrowserContext]:
    made = await browser.new_context(base_url=http_base_url, viewport=DESKTOP)
    made.set_default_timeout(15_000)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()
