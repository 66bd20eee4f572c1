"""The embedded admin in a real browser: Debian's Chromium (``/usr/bin/chromium``, installed by
``scripts/ensure-chromium``) driven by Playwright, headless, against the whole demo system
(``entrypoints.demo.run_demo``: the app over HTTP on a fresh PostgreSQL database, the Shopify
and Salesforce emulators, a seeded store).

Nothing outside this machine is reachable: every request to a host other than 127.0.0.1 or
localhost is aborted (and Chromium resolves no other name), so App Bridge from Shopify's CDN
never loads and the admin runs on the demo's session-token stand-in, as it must when the CDN is
unreachable. Every page's console is watched: an error (or an uncaught exception) fails the test,
except the aborted CDN load itself. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import sqlalchemy as sa

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
SHOP = "demo-store.myshopify.com"
TIMEOUT_MS = 20_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ARTIFACTS.is_dir() and any(ARTIFACTS.glob("*.png")):
        terminalreporter.write_line(f"browser screenshots: {ARTIFACTS}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="package")
def demo(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo system, once for the browser tests, on its own PostgreSQL database; stopped
    (its periodic jobs too) before the rest of the suite runs."""
    from entrypoints.demo import run_demo

    name = f"ambassador_browser_{os.getpid()}"
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    urls = run_demo(
        port=_free_port(),
        emulator_port=_free_port(),
        customers=12,
        instance=tmp_path_factory.mktemp("demo"),
        serve_forever=False,
        keep_running=True,
        database_url=url,
    )
    yield urls
    urls["stop"]()
    urls["container"].close()
    from entrypoints import jobs

    jobs.configure(None)  # the demo's app configured the job functions for this process
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is not at {CHROMIUM}: run the tests with `make test` "
            "(scripts/ensure-chromium installs Debian's chromium) or set CHROMIUM_PATH"
        )
    from playwright.sync_api import sync_playwright

    for old in ARTIFACTS.glob("*.png"):  # this run's screenshots only
        old.unlink()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                # Belt and braces with the request filter below: no name outside resolves.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@dataclass
class Admin:
    """One browser context on the demo: opens admin pages, records console errors and the
    outside requests it refused, takes screenshots."""

    demo: dict[str, Any]
    context: Any
    page: Any
    name: str
    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    allowed_errors: list[re.Pattern[str]] = field(default_factory=list)
    shots: int = 0

    @property
    def app_url(self) -> str:
        return str(self.demo["app_url"])

    def url(self, path: str = "/app", shop: str = SHOP, **query: Any) -> str:
        return f"{self.app_url}{path}?{urlencode({'shop': shop, 'host': 'ZGVtbw', **query})}"

    def open(self, path: str = "/app", shop: str = SHOP, **query: Any) -> Any:
        """An admin page as the merchant opens it: without a token, bounced once for a fresh one
        (the demo's stand-in for App Bridge), then filled by admin.js through the API."""
        self.page.goto(self.url(path, shop, **query), wait_until="load")
        self.page.wait_for_selector("#ac", state="attached")
        return self.page

    def wait_text(self, selector: str, pattern: str, page: Any = None) -> str:
        """Waits until ``selector``'s text matches ``pattern`` (a regex); returns the text."""
        target = page or self.page
        target.wait_for_function(
            "([s, p]) => { const n = document.querySelector(s);"
            " return !!n && new RegExp(p).test(n.textContent); }",
            arg=[selector, pattern],
            timeout=TIMEOUT_MS,
        )
        return str(target.text_content(selector))

    def shot(self, label: str, page: Any = None) -> Path:
        self.shots += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{self.shots:02d}-{label}.png"
        (page or self.page).screenshot(path=str(path), full_page=True)
        return path

    def error_banner(self, page: Any = None) -> str:
        return str((page or self.page).text_content("#ac-error") or "").strip()

    def watch(self, page: Any) -> None:
        def on_console(msg: Any) -> None:
            if msg.type != "error":
                return
            where = (msg.location or {}).get("url", "")
            if urlsplit(where).hostname not in LOCAL_HOSTS and where in self.blocked:
                return  # the outside request we refused on purpose (App Bridge's CDN)
            text = f"{page.url}: {msg.text} ({where})"
            if not any(p.search(text) for p in self.allowed_errors):
                self.errors.append(text)

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: uncaught {exc}"))


def _session(demo: dict[str, Any], chromium: Any, name: str, **options: Any) -> Admin:
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-US",
                                   **options)
    context.set_default_timeout(TIMEOUT_MS)
    session = Admin(demo, context, None, name)

    def only_local(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            session.blocked.append(url)
            route.abort("internetdisconnected")

    context.route("**/*", only_local)
    context.on("page", session.watch)  # every page of the context, popups included
    session.page = context.new_page()
    return session


@pytest.fixture
def admin(demo: dict[str, Any], chromium: Any, request: pytest.FixtureRequest) -> Iterator[Admin]:
    """A fresh browser context on the demo (no state shared between tests)."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:80]
    session = _session(demo, chromium, name)
    yield session
    try:
        if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
            session.shot("failure")
    finally:
        session.context.close()
    assert not session.errors, "console errors:\n" + "\n".join(session.errors)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report
