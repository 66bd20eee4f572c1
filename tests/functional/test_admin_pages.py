"""The embedded admin pages (``/app/...``): the same id-token checks as the app home, escaped
server-side rendering, links that keep ``shop`` and ``host``, one script that renders API data
without HTML and calls only routes the API has, and the demo's session-token stand-in.

Shopify is a fake here (``FakeCommercePlatform``) except in the demo tests, which run the app and
the Shopify emulator over HTTP like ``ambassador demo`` does.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest

from adapters.bootstrap import bootstrap
from adapters.queue.inprocess import InProcessJobQueue
from entrypoints import jobs
from entrypoints.wsgi import create_app
from tests.conftest import API_KEY, API_SECRET, SHOP, make_settings
from tests.fakes import FakeCommercePlatform
from tests.tokens import session_token

HOST = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvdGVzdC1zaG9w"  # base64 of the admin host
PAGES = {
    "/app": "dashboard",
    "/app/ambassadors": "ambassadors",
    "/app/ambassadors/7": "ambassadors",
    "/app/candidates": "candidates",
    "/app/applications": "applications",
    "/app/applications/3": "applications",
    "/app/settings": "settings",
    "/app/tiers": "tiers",
    "/app/payouts": "payouts",
    "/app/health": "health",
}
NAV = ["/app", "/app/ambassadors", "/app/candidates", "/app/applications", "/app/tiers",
       "/app/settings"]
ADMIN_JS = Path(__file__).resolve().parents[2] / "admin_ui" / "static" / "admin.js"


@pytest.fixture
def platform():
    return FakeCommercePlatform()


@pytest.fixture
def c(settings, platform):
    container = bootstrap(settings, shopify=platform, jobs=InProcessJobQueue(threaded=False))
    yield container
    jobs.configure(None)
    container.close()


@pytest.fixture
def app(c):
    return create_app(container=c)


@pytest.fixture
def client(app):
    return app.test_client()


def open_page(client, path, token=None, shop=SHOP, **params):
    query = {"shop": shop, "host": HOST, **params}
    if token is not False:
        query["id_token"] = token if token is not None else session_token(shop)
    return client.get(path, query_string=query)


class Markup(HTMLParser):
    """The links, scripts and attributes of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self.scripts: list[tuple[dict[str, Any], str]] = []
        self.attributes: list[tuple[str, str, str | None]] = []
        self.labels: set[str] = set()
        self.controls: list[dict[str, Any]] = []
        self._script: dict[str, Any] | None = None
        self._text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.attributes += [(tag, k, v) for k, v in attrs]
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "script":
            self._script, self._text = a, []
        if tag == "label" and a.get("for"):
            self.labels.add(a["for"])
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append(a)

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._text)))
            self._script = None


# --- the id token, as on the app home ------------------------------------------------------


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_renders_with_a_valid_id_token(client, path):
    response = open_page(client, path)
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "text/html"
    assert f'data-page="{PAGES[path]}"' in response.text
    assert f'data-shop="{SHOP}"' in response.text
    assert (
        f"frame-ancestors https://{SHOP} https://admin.shopify.com"
        in response.headers["Content-Security-Policy"]
    )
    assert f'<meta name="shopify-api-key" content="{API_KEY}">' in response.text


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_bounces_through_the_patch_page_without_a_token(client, platform, path):
    assert open_page(client, "/app").status_code == 200  # installed: the token is still needed
    response = open_page(client, path, token=False)
    assert response.status_code == 302
    location = urlparse(response.headers["Location"])
    assert location.path == "/app/patch-id-token"
    reload = urlparse(parse_qs(location.query)["shopify-reload"][0])
    assert reload.path == path
    assert parse_qs(reload.query) == {"shop": [SHOP], "host": [HOST]}
    assert platform.exchanges == [SHOP]


@pytest.mark.parametrize("path", [p for p in PAGES if p != "/app"])
def test_a_forged_expired_or_other_shop_token_is_refused(client, platform, path):
    assert open_page(client, "/app").status_code == 200  # installed: the token is still checked
    for token in (
        session_token(secret="forged"),
        session_token(now=0),
        session_token("other-shop.myshopify.com"),
        "garbage",
    ):
        response = open_page(client, path, token=token)
        assert response.status_code == 401
        assert b"Reopen the app from your Shopify admin" in response.data
    assert open_page(client, path, shop="evil.example.com").status_code == 400
    assert platform.exchanges == [SHOP]


def test_the_shop_comes_from_the_token_not_the_query(client):
    """A token for shop A with ``shop=B`` in the query opens nothing of B's."""
    assert open_page(client, "/app").status_code == 200
    response = open_page(
        client, "/app/ambassadors", shop="other-shop.myshopify.com", token=session_token(SHOP)
    )
    assert response.status_code == 401
    assert b"other-shop" not in response.data


def test_a_page_opened_first_installs_the_shop_like_the_app_home(client, c, platform):
    assert open_page(client, "/app/settings").status_code == 200
    assert platform.exchanges == [SHOP]
    with c.uow() as uow:
        assert uow.shops.get(SHOP).installed


# --- escaping, links, scripts --------------------------------------------------------------


def test_markup_in_names_is_escaped_on_every_page(client, platform, monkeypatch):
    from connector.ports import ShopInfo

    evil = '<script>alert("x")</script>'
    monkeypatch.setattr(platform, "shop_info", lambda *a: ShopInfo(evil, None, "USD"))
    for path in PAGES:
        response = open_page(client, path)
        assert response.status_code == 200
        assert b"<script>alert" not in response.data, path
        assert b"&lt;script&gt;alert(" in response.data, path


def test_query_values_shown_back_in_forms_are_escaped(client):
    evil = '"><img src=x onerror=alert(1)>'
    response = open_page(client, "/app/ambassadors", q=evil, tier=evil, status=evil)
    assert response.status_code == 200
    assert b"<img src=x" not in response.data
    assert b"&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in response.data
    markup = Markup(response.text)
    assert not [a for a in markup.attributes if a[1].startswith("on")]


@pytest.mark.parametrize("path", list(PAGES))
def test_the_pages_link_each_other_keeping_shop_and_host(client, path):
    markup = Markup(open_page(client, path).text)
    internal = [urlparse(h) for h in markup.links if h.startswith("/app")]
    assert {u.path for u in internal} >= set(NAV)
    for url in internal:
        query = parse_qs(url.query)
        assert query["shop"] == [SHOP] and query["host"] == [HOST], url
        assert "id_token" not in query
    assert 'aria-current="page"' in open_page(client, path).text


def test_the_dashboard_links_counts_to_the_filtered_list(client):
    markup = Markup(open_page(client, "/app").text)
    filtered = [parse_qs(urlparse(h).query) for h in markup.links if "status=" in h]
    assert sorted(q["status"][0] for q in filtered) == ["active", "applied", "paused", "removed"]


@pytest.mark.parametrize("path", list(PAGES))
def test_pages_have_no_inline_script_and_a_label_for_every_control(client, path):
    markup = Markup(open_page(client, path).text)
    sources = []
    for attrs, text in markup.scripts:
        assert attrs.get("src") or attrs.get("type") == "application/json", attrs
        assert not text.strip() or attrs.get("type") == "application/json"
        sources.append(attrs.get("src"))
    assert "/static/admin.js" in sources
    assert "https://cdn.shopify.com/shopifycloud/app-bridge.js" in sources
    assert not [a for a in markup.attributes if a[1].startswith("on")]  # no inline handlers
    for control in markup.controls:
        assert control.get("aria-label") or control.get("id") in markup.labels, control


def test_messages_and_progress_are_announced(client):
    page = open_page(client, "/app/candidates").text
    assert 'id="ac-error" class="banner banner-critical" role="alert"' in page
    assert 'role="status" aria-live="polite"' in page
    assert re.search(r'<label for="enrol-bar">[^<]+</label>\s*<progress id="enrol-bar"', page)
    assert re.search(r'<label for="scan-bar">[^<]+</label>\s*<progress id="scan-bar"', page)


# --- the script ----------------------------------------------------------------------------


def test_admin_js_is_served_and_never_writes_data_as_html(client):
    response = client.get("/static/admin.js")
    assert response.status_code == 200
    assert "javascript" in response.mimetype
    source = response.get_data(as_text=True)
    assert source == ADMIN_JS.read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function"):
        assert sink not in source, sink
    assert "textContent" in source
    assert "X-Shopify-Retry-Invalid-Session-Request" in source
    assert "open the app from your Shopify admin" in source


def api_calls(source: str) -> list[tuple[str, str]]:
    """Every ``api("METHOD", `/path…`)`` call in the script: a template part that is a path
    segment becomes a sample id, one after it (a query string) is dropped."""
    calls = []
    for method, path in re.findall(r'api\("([A-Z]+)", [`"](/[^`"?]*)', source):
        path = re.sub(r"(?<=/)\$\{[^}]+\}", "1", path)
        calls.append((method, re.sub(r"\$\{[^}]+\}", "", path)))
    return calls


def test_the_script_calls_only_routes_the_api_has(app):
    calls = api_calls(ADMIN_JS.read_text())
    assert len(calls) >= 20
    adapter = app.url_map.bind("localhost")
    for method, path in calls:
        endpoint, _ = adapter.match(f"/api/v1{path}", method=method)
        assert endpoint.startswith("api_v1."), (method, path)
    called = {(m, re.sub(r"/1(?=/|$)", "/{id}", p)) for m, p in calls}
    for needed in [
        ("GET", "/ambassadors"), ("GET", "/ambassadors/{id}"), ("POST", "/ambassadors/{id}/status"),
        ("POST", "/ambassadors/{id}/tier"), ("POST", "/ambassadors/{id}/code"),
        ("GET", "/ambassadors/{id}/history"), ("GET", "/ambassadors/{id}/ledger"),
        ("POST", "/candidates/scans"), ("GET", "/candidates/scans/{id}"),
        ("POST", "/ambassadors/bulk"), ("GET", "/tasks/{id}"),
        ("POST", "/ambassadors/import"), ("GET", "/program/settings"),
        ("PATCH", "/program/settings"), ("GET", "/tiers"), ("POST", "/tiers"),
        ("PUT", "/tiers/{id}"), ("DELETE", "/tiers/{id}"), ("POST", "/tiers/preview"),
        ("GET", "/applications"), ("GET", "/applications/{id}"),
        ("POST", "/applications/{id}/votes"), ("POST", "/applications/{id}/approve"),
        ("POST", "/applications/{id}/reject"), ("GET", "/shop"),
        ("GET", "/payouts/budget"), ("GET", "/payouts/batches"), ("POST", "/payouts/runs"),
        ("POST", "/payouts/{id}/replay"), ("POST", "/payouts/{id}/cancel"),
        ("POST", "/payouts/batches/{id}/approve"), ("POST", "/payouts/batches/{id}/paid"),
    ]:
        assert needed in called, needed


# --- the forms speak the API's language ----------------------------------------------------


def api(client, method, path, **kwargs):
    headers = {"Authorization": f"Bearer {session_token()}"}
    return client.open(f"/api/v1{path}", method=method, headers=headers, **kwargs)


def form_fields(html: str) -> dict[str, str]:
    """``name`` → ``data-type`` of the controls the script sends."""
    return {
        a["name"]: a["data-type"]
        for a in Markup(html).controls
        if a.get("data-type") and a.get("name")
    }


def as_sent(value: Any, kind: str) -> Any:
    """What the script's ``controlValue`` makes of a control showing ``value``."""
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    if kind == "decimal":
        return None if value in (None, "") else str(value)
    return "" if value is None else str(value)


def test_the_settings_form_round_trips_through_the_api(client):
    page = open_page(client, "/app/settings").text
    fields = form_fields(page)
    assert len(fields) >= 20
    current = api(client, "GET", "/program/settings").get_json()
    body: dict[str, Any] = {}
    for name, kind in fields.items():
        value: Any = current
        for key in name.split("."):
            value = value[key]
        target = body
        for key in name.split(".")[:-1]:
            target = target.setdefault(key, {})
        target[name.split(".")[-1]] = as_sent(value, kind)
    body["hold_days"] = 14
    saved = api(client, "PATCH", "/program/settings", json=body)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["hold_days"] == 14


@pytest.mark.parametrize(
    "change",
    [
        {"hold_days": 999},
        {"friend_discount": {"value": "0"}},
        {"code_format": {"prefix": "no spaces"}},
        {"customer_tag": "a,b"},
        {"approvals_required": 0},
        {"default_commission_rate": "101"},
    ],
)
def test_setting_errors_name_a_field_the_page_can_show_them_next_to(client, change):
    page = open_page(client, "/app/settings").text
    error = api(client, "PATCH", "/program/settings", json=change)
    assert error.status_code == 422
    message = error.get_json()["error"]["message"]
    field = message.split(":")[0]
    assert f'data-error-for="{field}"' in page, message


def test_the_tier_form_fields_are_what_the_api_reads(client):
    page = open_page(client, "/app/tiers").text
    fields = form_fields(page)
    assert set(fields) == {"name", "position", "commission_rate", "min_revenue", "min_orders",
                           "min_new_customers", "perks"}
    tier = {"name": "Gold", "position": 2, "commission_rate": "15", "min_revenue": "500",
            "min_orders": None, "min_new_customers": 3, "perks": ["Early access"]}
    preview = api(client, "POST", "/tiers/preview", json={"tiers": [tier]})
    assert preview.status_code == 200
    assert set(preview.get_json()) >= {"up", "down", "same"}
    created = api(client, "POST", "/tiers", json=tier)
    assert created.status_code == 201
    bad = api(client, "POST", "/tiers", json={**tier, "name": "Silver", "min_orders": "x"})
    assert bad.status_code == 422
    assert f'data-error-for="{bad.get_json()["error"]["message"].split()[0]}"' in page


# --- the demo stand-in ---------------------------------------------------------------------


def test_the_session_token_stand_in_is_not_there_outside_the_demo(client):
    assert client.get("/demo/session-token", query_string={"shop": SHOP}).status_code == 404
    page = open_page(client, "/app/ambassadors").text
    assert "data-demo-token-url" not in page


@pytest.fixture
def demo(tmp_path, db_url):
    """The app in demo mode and the Shopify emulator, over HTTP (as ``ambassador demo``)."""
    import socket
    import threading

    from werkzeug.serving import make_server

    from adapters.shopify.emulator import ShopifyEmulator, serve_in_thread

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app_url = f"http://127.0.0.1:{port}"
    emulator = ShopifyEmulator(api_key=API_KEY, api_secret=API_SECRET, app_url=app_url)
    emulator.add_shop(SHOP, currency="USD", name="Demo <b>Shop</b>")
    emu_server, emu_url = serve_in_thread(emulator)
    settings = make_settings(
        tmp_path, db_url, SHOPIFY_API_BASE_URL=emu_url, APP_URL=app_url, AMBASSADOR_DEMO="1"
    )
    container = bootstrap(settings, jobs=InProcessJobQueue(threaded=False))
    server = make_server("127.0.0.1", port, create_app(container=container), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with httpx.Client(base_url=app_url, timeout=30) as browser:
        yield browser
    server.shutdown()
    emu_server.shutdown()
    jobs.configure(None)
    container.close()


def test_the_demo_stand_in_gives_a_token_the_api_accepts(demo):
    # /demo installs through the app home with a token from the emulator.
    home = demo.get("/demo", params={"shop": SHOP}, follow_redirects=True)
    assert home.status_code == 200 and "Demo &lt;b&gt;Shop&lt;/b&gt;" in home.text
    response = demo.get("/demo/session-token", params={"shop": SHOP})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    token = response.json()["token"]
    shop = demo.get("/api/v1/shop", headers={"Authorization": f"Bearer {token}"})
    assert shop.status_code == 200 and shop.json()["domain"] == SHOP
    assert demo.get("/demo/session-token", params={"shop": "evil.com"}).status_code == 400


def test_in_the_demo_a_page_opened_without_a_token_gets_one_from_the_stand_in(demo):
    demo.get("/demo", params={"shop": SHOP}, follow_redirects=True)
    token = demo.get("/demo/session-token", params={"shop": SHOP}).json()["token"]
    created = demo.post(
        "/api/v1/ambassadors",
        json={"email": "ava@example.com", "first_name": "Ava", "last_name": "<i>Stone</i>"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.text
    page = demo.get(
        "/app/ambassadors?" + urlencode({"shop": SHOP, "host": HOST, "status": "active"}),
        follow_redirects=True,
    )
    assert page.status_code == 200
    assert page.url.path == "/app/ambassadors"
    assert page.url.params["status"] == "active" and page.url.params["id_token"]
    assert "data-demo-token-url" in page.text
    home = demo.get("/app?" + urlencode({"shop": SHOP, "host": HOST}), follow_redirects=True)
    status = created.json()["status"]
    count = re.search(
        rf'status={status}">\s*<span class="stat-value">(\d+)</span>', home.text
    )
    assert count and count.group(1) == "1"
    # The bounce never sends the browser elsewhere than this app.
    away = demo.get(
        "/app/patch-id-token",
        params={"shop": SHOP, "shopify-reload": "https://evil.example/app"},
    )
    assert "evil.example" not in away.headers.get("Location", "")
