"""Browser tests: a real faceledger server (tests/live.py) driven by headless Chromium.

Every page a test visits is saved as a full-page screenshot under test-artifacts/screenshots/.
Console errors (a CSP violation shows up as one) fail the test that caused them."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from tests.live import LiveServer, live_server  # noqa: F401

CHROMIUM = Path(os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        if CHROMIUM.exists():
            executable: str | None = str(CHROMIUM)
        elif Path(pw.chromium.executable_path).exists():
            executable = None  # Playwright's own build (`playwright install chromium`)
        else:
            pytest.fail(f"{CHROMIUM} is missing and Playwright has no Chromium of its own: the browser "
                        "tests need one; `make test` installs it (scripts/ensure-browser)", pytrace=False)
        b = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Session:
    """One signed-in (or anonymous) browser context with its own cookie jar."""

    server: LiveServer
    context: BrowserContext
    page: Page
    name: str
    errors: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.server.url + path

    def goto(self, path: str, shot: str | None = None) -> Any:
        response = self.page.goto(self.url(path))
        self.page.wait_for_load_state("networkidle")
        if shot:
            self.snap(shot)
        return response

    def snap(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{re.sub(r'[^a-z0-9_-]+', '-', name.lower())}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def sign_in(self, user: str, password: str | None = None) -> None:
        self.goto("/login")
        self.page.get_by_label("User name").fill(user)
        self.page.get_by_label("Password").fill(password or self.server.users[user]["password"])
        with self.page.expect_navigation():
            self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state("networkidle")

    def csrf(self) -> str:
        token = self.page.locator('meta[name="csrf-token"]').get_attribute("content")
        assert token, "the page carries no CSRF token"
        return token

    def assert_clean(self) -> None:
        """No console errors so far: no CSP violations, no failed scripts."""
        assert not self.errors, "browser console errors:\n" + "\n".join(self.errors)


@pytest.fixture
def open_session(browser: Browser, live_server: LiveServer  # noqa: F811
                 ) -> Iterator[Any]:
    """Factory: ``open_session("ivy")`` gives a signed-in Session in a fresh context."""
    sessions: list[Session] = []

    def make(user: str | None = None, password: str | None = None) -> Session:
        context = browser.new_context(viewport={"width": 1360, "height": 900},
                                      accept_downloads=False)
        context.set_default_timeout(30_000)
        page = context.new_page()
        s = Session(live_server, context, page, user or "anonymous")

        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error" and not _expected(msg.text):
                s.errors.append(msg.text)

        page.on("console", on_console)
        page.on("pageerror", lambda exc: s.errors.append(f"uncaught: {exc}"))
        sessions.append(s)
        if user:
            s.sign_in(user, password)
        return s

    yield make
    for s in sessions:
        s.context.close()


def _expected(text: str) -> bool:
    # Pages that answer 4xx on purpose log "Failed to load resource"; that is not a defect.
    return "Failed to load resource" in text and "status of 4" in text


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failure, attach the tail of the live server's log to the report."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or not report.failed:
        return
    server = getattr(item, "funcargs", {}).get("live_server")
    log = server.home.parent / "server.log" if server is not None else None
    if log is not None and log.exists():
        tail = log.read_text(errors="replace").splitlines()[-80:]
        report.sections.append(("faceledger server log (last 80 lines)", "\n".join(tail)))
