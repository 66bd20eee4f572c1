# ruff: noqa: F811 - the fixtures are shared with test_admin_pages (imported by name)
"""The embedded Resources and Return on influence pages: the same id-token checks as every admin
page, escaped, labelled controls and no inline script; the upload form sends the fields the API
reads, and every refusal code of the upload API has a field on the form to be shown next to."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from connector.domain.content import ALLOWED_TYPES, MAX_UPLOAD, ResourceKind
from tests.conftest import SHOP
from tests.functional.test_admin_pages import (  # noqa: F401
    ADMIN_JS,
    HOST,
    Markup,
    api_calls,
    app,
    c,
    client,
    open_page,
    platform,
)
from tests.tokens import session_token

PAGES = {"/app/resources": "resources", "/app/roi": "roi"}


@pytest.mark.parametrize("path", list(PAGES))
def test_the_page_renders_for_a_valid_id_token_and_only_then(client, path):
    response = open_page(client, path)
    assert response.status_code == 200
    assert f'data-page="{PAGES[path]}"' in response.text
    assert f"frame-ancestors https://{SHOP} https://admin.shopify.com" in (
        response.headers["Content-Security-Policy"])
    assert 'aria-current="page"' in response.text
    bounced = open_page(client, path, token=False)
    assert bounced.status_code == 302 and "/app/patch-id-token" in bounced.headers["Location"]
    for token in (session_token(secret="forged"), session_token("other-shop.myshopify.com")):
        assert open_page(client, path, token=token).status_code == 401


@pytest.mark.parametrize("path", list(PAGES))
def test_no_inline_script_a_label_for_every_control_and_markup_escaped(
    client, platform, monkeypatch, path
):
    from connector.ports import ShopInfo

    evil = '<script>alert("x")</script>'
    monkeypatch.setattr(platform, "shop_info", lambda *a: ShopInfo(evil, None, "USD"))
    response = open_page(client, path)
    assert b"<script>alert" not in response.data and b"&lt;script&gt;alert(" in response.data
    markup = Markup(response.text)
    for attrs, text in markup.scripts:
        assert attrs.get("src") and not text.strip(), attrs
    assert not [a for a in markup.attributes if a[1].startswith("on")]
    assert markup.controls
    for control in markup.controls:
        assert control.get("aria-label") or control.get("id") in markup.labels, control
    for href in markup.links:
        if href.startswith("/app"):
            assert f"shop={SHOP}" in href and f"host={HOST}" in href and "id_token" not in href


def test_both_pages_are_in_the_navigation_and_linked_from_engagement(client):
    links = Markup(open_page(client, "/app").text).links
    assert any(h.startswith("/app/resources?") for h in links)
    assert any(h.startswith("/app/roi?") for h in links)
    engagement = Markup(open_page(client, "/app/engagement").text)
    assert any(h.startswith("/app/roi?") for h in engagement.links)


def test_the_upload_form_offers_what_the_api_takes(client):
    html = open_page(client, "/app/resources").text
    select = html.split('id="res-kind"', 1)[1].split("</select>")[0]
    kinds = re.findall(r'<option value="([a-z]+)"', select)
    assert sorted(kinds) == sorted(k.value for k in ResourceKind)
    names = {a.get("name") for a in Markup(html).controls}
    assert {"kind", "title", "file", "body"} <= names
    assert f'data-max-upload="{MAX_UPLOAD}"' in html
    accept = re.search(r'accept="([^"]+)"', html)
    extensions = {e for x in ALLOWED_TYPES.values() for e in x}
    assert accept and set(accept.group(1).split(",")) == extensions
    # The confirmation is a dialog, never a form that posts (no CSRF surface).
    assert '<form method="dialog">' in html


def _mapped_fields() -> dict[str, str]:
    source = ADMIN_JS.read_text()
    block = re.search(r"const RESOURCE_FIELDS = \{([^}]+)\}", source)
    assert block
    return dict(re.findall(r"([a-z_]+): \"([a-z]+)\"", block.group(1)))


def _upload(client: Any, data: bytes, filename: str, content_type: str, **form: str) -> Any:
    return client.post(
        "/api/v1/resources",
        data={"file": (io.BytesIO(data), filename, content_type), "title": "Flyer",
              "kind": "flyer", **form},
        content_type="multipart/form-data",
        headers={"Authorization": f"Bearer {session_token(SHOP)}"},
    )


def test_every_refusal_of_an_upload_has_a_field_on_the_page(client):
    """The page shows each refusal next to the field its code maps to (admin.js
    RESOURCE_FIELDS): each code the API gives must be mapped, to a field the form has."""
    html = open_page(client, "/app/resources").text
    fields_on_page = set(re.findall(r'data-error-for="([a-z]+)"', html))
    mapped = _mapped_fields()
    assert set(mapped.values()) <= fields_on_page
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    refusals = [
        _upload(client, b"<html>", "flyer.html", "text/html"),
        _upload(client, png, "a.png", "image/png", title=""),
        _upload(client, png, "a.png", "image/png", kind="video"),
        _upload(client, png + b"\x00" * MAX_UPLOAD, "huge.png", "image/png"),
        _upload(client, png + b"\x00" * (MAX_UPLOAD + 200_000), "huger.png", "image/png"),
        client.post("/api/v1/resources", json={"kind": "post", "title": "x", "body": ""},
                    headers={"Authorization": f"Bearer {session_token(SHOP)}"}),
    ]
    codes = set()
    for response in refusals:
        assert 400 <= response.status_code < 500 and response.is_json
        codes.add(response.get_json()["error"]["code"])
    assert codes == {"invalid_file", "invalid_title", "invalid_kind", "too_large",
                     "request_entity_too_large", "invalid_body"}
    assert codes <= set(mapped), codes - set(mapped)


def test_the_script_reaches_resources_roi_and_standings_through_routes_the_api_has(app):
    calls = api_calls(ADMIN_JS.read_text())
    adapter = app.url_map.bind("localhost")
    for method, path in calls:
        endpoint, _ = adapter.match(f"/api/v1{path}", method=method)
        assert endpoint.startswith("api_v1."), (method, path)
    called = {(m, re.sub(r"/1(?=/|$)", "/{id}", p)) for m, p in calls}
    for needed in [("GET", "/resources"), ("POST", "/resources"), ("DELETE", "/resources/{id}"),
                   ("GET", "/roi"), ("GET", "/challenges/{id}/leaderboard")]:
        assert needed in called, needed
