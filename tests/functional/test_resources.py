# ruff: noqa: F811 - the fixtures are shared with test_engagement (imported by name)
"""The resources library: uploads checked by type, name, bytes and size (4xx JSON errors, nothing
stored), files served as attachments, posts with the disclosure built in, and portal downloads
counted toward engagement."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from connector.domain.content import MAX_UPLOAD
from entrypoints import jobs
from tests.conftest import SHOP
from tests.functional.test_engagement import (  # noqa: F401
    api,
    c,
    client,
    clock,
    enrol,
    shop,
)
from tests.functional.test_portal import customer_ambassador
from tests.proxy import proxy_path
from tests.tokens import session_token

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"x" * 64


def upload(client, data: bytes, filename: str, content_type: str, title="Spring flyer",
           kind="flyer"):
    return client.post(
        "/api/v1/resources",
        data={"file": (io.BytesIO(data), filename, content_type), "title": title, "kind": kind},
        content_type="multipart/form-data",
        headers={"Authorization": f"Bearer {session_token(SHOP)}"},
    )


def stored_files(c) -> list[Path]:
    root = c.settings.storage_dir
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_flyer_is_uploaded_listed_and_served_as_an_attachment(c, client, shop):
    response = upload(client, PDF, "../../etc/Spring Flyer.pdf", "application/pdf")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["filename"] == "Spring_Flyer.pdf" and body["size"] == len(PDF)
    [listed] = api(client, "GET", "/resources").get_json()["items"]
    assert listed["download_url"] == f"/api/v1/resources/{body['id']}/file"
    file = client.get(listed["download_url"],
                      headers={"Authorization": f"Bearer {session_token(SHOP)}"})
    assert file.status_code == 200 and file.data == PDF
    assert file.headers["Content-Disposition"] == 'attachment; filename="Spring_Flyer.pdf"'
    assert file.headers["X-Content-Type-Options"] == "nosniff"
    [path] = stored_files(c)
    assert path.read_bytes() == PDF and str(path).startswith(str(c.settings.storage_dir))

    assert api(client, "DELETE", f"/resources/{body['id']}").status_code == 204
    assert api(client, "GET", f"/resources/{body['id']}/file").status_code == 404
    assert api(client, "GET", "/resources").get_json()["items"] == []
    assert stored_files(c) == []


@pytest.mark.parametrize(
    ("data", "filename", "content_type", "status", "code"),
    [
        (b"<html><script>alert(1)</script>", "flyer.html", "text/html", 422, "invalid_file"),
        (b"MZ\x90\x00", "tool.exe", "application/octet-stream", 422, "invalid_file"),
        (b"<svg onload=alert(1)>", "image.png", "image/png", 422, "invalid_file"),  # not a PNG
        (PNG, "image.pdf", "image/png", 422, "invalid_file"),  # name and type disagree
        (b"", "empty.png", "image/png", 422, "invalid_file"),
        (PNG + b"\x00" * MAX_UPLOAD, "huge.png", "image/png", 413, "too_large"),
        (PNG + b"\x00" * (MAX_UPLOAD + 200_000), "huger.png", "image/png", 413, None),
    ],
)
def test_bad_uploads_are_4xx_json_and_nothing_is_stored(
    c, client, shop, data, filename, content_type, status, code
):
    response = upload(client, data, filename, content_type)
    assert response.status_code == status
    assert response.is_json
    if code:
        assert response.get_json()["error"]["code"] == code
    assert api(client, "GET", "/resources").get_json()["items"] == []
    assert stored_files(c) == []


def test_missing_fields_are_422(client, shop):
    assert upload(client, PNG, "a.png", "image/png", title="").status_code == 422
    assert upload(client, PNG, "a.png", "image/png", kind="video").status_code == 422
    response = client.post("/api/v1/resources", data={"title": "x"},
                           content_type="multipart/form-data",
                           headers={"Authorization": f"Bearer {session_token(SHOP)}"})
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "missing_file"
    assert api(client, "POST", "/resources", {"title": "x", "kind": "flyer"}).status_code == 422


def test_a_prewritten_post_carries_the_disclosure(client, shop):
    api(client, "PATCH", "/program/settings", {"disclosure_text": "#BrandPartner"})
    added = api(client, "POST", "/resources", {"title": "Launch post",
                                               "body": "Our new range is here!"})
    assert added.status_code == 201
    assert added.get_json()["body"] == "Our new range is here! #BrandPartner"
    kept = api(client, "POST", "/resources", {"title": "Tagged", "body": "Love it #ad"})
    assert kept.get_json()["body"] == "Love it #ad"


def test_portal_downloads_count_toward_engagement(c, client, shop):
    aid = customer_ambassador(c, shop, 701, "Dana", "Down", "DANA10")
    rid = upload(client, PNG, "graphic.png", "image/png", kind="graphic").get_json()["id"]
    page = client.get(proxy_path("/proxy/dashboard", customer_id=701)).get_data(as_text=True)
    assert f"/apps/ambassadors/dashboard/resources/{rid}" in page
    file = client.get(proxy_path(f"/proxy/dashboard/resources/{rid}", customer_id=701))
    assert file.status_code == 200 and file.data == PNG
    assert file.headers["Content-Disposition"].startswith("attachment")
    guest = client.get(proxy_path(f"/proxy/dashboard/resources/{rid}"))
    assert guest.status_code == 401 and guest.data != PNG
    assert api(client, "GET", "/resources").get_json()["items"][0]["downloads"] == 1
    c.clock.advance(days=1)  # another day: a second active day in the portal
    client.get(proxy_path(f"/proxy/dashboard/resources/{rid}", customer_id=701))
    jobs.score_engagement()
    parts = {p["name"]: p for p in
             api(client, "GET", f"/ambassadors/{aid}/engagement").get_json()["components"]}
    assert parts["portal_visits"]["value"] == "2"


def test_an_upload_whose_row_cannot_be_written_leaves_no_file(c, client, shop, monkeypatch):
    from adapters.db.engagement_repositories import SqlAlchemyContentRepository

    def broken(self, resource):
        raise RuntimeError("database went away")

    monkeypatch.setattr(SqlAlchemyContentRepository, "add_resource", broken)
    client.application.config["PROPAGATE_EXCEPTIONS"] = False  # the app's own error answer
    response = upload(client, PDF, "flyer.pdf", "application/pdf")
    assert response.status_code >= 500
    assert stored_files(c) == []
