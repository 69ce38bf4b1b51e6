"""The browser tier: real Chromium (Debian's /usr/bin/chromium) driven by Playwright's sync
API against pytest-django's live server. Never `playwright install`: the browser is the
system's. Run with `make browser` (part of `make test`), or `pytest tests/browser -m browser`.

Without /usr/bin/chromium the tier is skipped, except under CI=true, where that fails.
"""

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Playwright's sync API keeps an asyncio loop on the main thread, which makes Django
# refuse ORM calls from the test body between browser steps; the test is synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium() -> Iterator:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} not found (CI=true: the browser tier must run)")
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def artifacts(request) -> Path:
    """Where a test saves its screenshots: $PYTEST_ARTIFACTS (default var/test-artifacts,
    git-ignored) / the test module's subject (`test_portal.py` -> portal)."""
    subject = Path(request.node.fspath).stem.removeprefix("test_").split("_")[0]
    folder = Path(os.environ.get("PYTEST_ARTIFACTS") or ROOT / "var" / "test-artifacts") / subject
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def sign_in(page, live_server, settings, make_user) -> Callable[..., object]:
    """sign_in(username, roles, start="/"): a local user holding `roles`, signed in through
    the login form the portal redirects `start` to; returns the page, back at `start`."""
    settings.LARDER_LOCAL_LOGIN = True

    def _sign_in(username: str, roles: tuple[str, ...], start: str = "/", width: int = 1280, height: int = 800):
        make_user(username, roles=roles)
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server.url}{start}")
        page.wait_for_url(re.compile(r"/accounts/login/"))
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", f"pw-{username}")
        page.locator("form:has(input[name=password]) button[type=submit]").click()
        page.wait_for_url(f"{live_server.url}{start}")
        return page

    return _sign_in
