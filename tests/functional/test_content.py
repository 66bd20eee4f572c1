# ruff: noqa: F811 - the fixtures are shared with test_engagement (imported by name)
"""Content submissions over HTTP: the disclosure flag, the same post twice (409 with a clear
JSON error), the merchant's decision, and approved content raising the engagement score."""

from __future__ import annotations

import pytest

from connector.domain.ambassadors import AmbassadorStatus
from entrypoints import jobs
from tests.conftest import SHOP as SHOP_DOMAIN
from tests.functional.test_engagement import api, c, client, clock, enrol, shop  # noqa: F401


def submit(client, aid: int, url: str, text: str = "", kind: str = "post"):
    return api(client, "POST", "/submissions",
               {"ambassador_id": aid, "url": url, "text": text, "kind": kind})


@pytest.mark.parametrize(
    ("text", "ok", "found"),
    [
        ("Loving these shoes #ad", True, "#ad"),
        ("#Sponsored: my new favourite", True, "#sponsored"),
        ("In Paid Partnership with the brand", True, "paid partnership"),
        ("Best #adventure gear ever", False, None),  # #adventure is not #ad
        ("Gifted by @brand — ambassador", True, "gifted by @brand"),  # the program's wording
        ("", False, None),
    ],
)
def test_the_disclosure_check_flags_posts_without_one(c, client, shop, text, ok, found):
    api(client, "PATCH", "/program/settings", {"disclosure_text": "Gifted by @brand"})
    aid = enrol(c, shop, "Dee", "Closure", "DEE10")
    response = submit(client, aid, "https://instagram.com/p/abc", text)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()["disclosure"]
    assert (body["ok"], body["found"]) == (ok, found)
    assert (body["flag"] is None) == ok
    listed = api(client, "GET", "/submissions?status=pending").get_json()["items"]
    assert [s["disclosure"]["ok"] for s in listed] == [ok]  # the merchant sees the flag


def test_the_same_post_twice_is_409_with_a_clear_error(c, client, shop):
    one = enrol(c, shop, "One", "Poster", "ONE10")
    two = enrol(c, shop, "Two", "Poster", "TWO10")
    assert submit(client, one, "https://www.instagram.com/p/xyz/", "#ad").status_code == 201
    for again, who, message in (
        ("https://www.instagram.com/p/xyz/", one, "you already submitted this post"),
        ("http://instagram.com/p/xyz?utm_source=ig#top", one, "you already submitted this post"),
        ("https://INSTAGRAM.com/p/xyz", two, "this post was already submitted"),
    ):
        response = submit(client, who, again, "#ad")
        assert response.status_code == 409
        assert response.get_json() == {
            "error": {"code": "duplicate_url", "message": message}}
    assert len(api(client, "GET", "/submissions").get_json()["items"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"ambassador_id": 1, "url": "javascript:alert(1)"},
        {"ambassador_id": 1, "url": "not a url"},
        {"ambassador_id": 1, "url": "https://x.com/" + "a" * 3000},
        {"ambassador_id": 1, "url": "https://x.com/p", "kind": "video"},
        {"ambassador_id": 1, "url": "https://x.com/p", "text": 5},
        {"ambassador_id": "1", "url": "https://x.com/p"},
        {"url": "https://x.com/p"},
    ],
)
def test_bad_submissions_are_422_and_nothing_is_stored(c, client, shop, body):
    enrol(c, shop, "Only", "One", "ONLY10")  # id 1
    response = submit(client, **{"aid": body.get("ambassador_id"), "url": body.get("url"),
                                 "text": body.get("text", ""), "kind": body.get("kind", "post")})
    assert response.status_code == 422, response.get_json()
    assert response.is_json
    assert api(client, "GET", "/submissions").get_json()["items"] == []


def test_the_merchant_approves_or_rejects_once_and_approved_content_counts(c, client, shop):
    aid = enrol(c, shop, "<script>alert(1)</script>", "Poster", "POST10")
    paused = enrol(c, shop, "Paused", "Poster", "PAUSED10", status=AmbassadorStatus.PAUSED)
    assert submit(client, paused, "https://x.com/p/0", "#ad").status_code == 409
    first = submit(client, aid, "https://x.com/p/1", "<script>alert(1)</script> #ad").get_json()
    second = submit(client, aid, "https://x.com/p/2", "no tag", kind="review").get_json()
    assert first["text"] == "<script>alert(1)</script> #ad"  # JSON carries the raw text

    approved = api(client, "POST", f"/submissions/{first['id']}/approve")
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"
    assert approved.get_json()["decided_by"] == "merchant:42"
    no_reason = api(client, "POST", f"/submissions/{second['id']}/reject", {})
    assert no_reason.status_code == 422
    rejected = api(client, "POST", f"/submissions/{second['id']}/reject",
                   {"reason": "no disclosure"})
    assert rejected.get_json()["status"] == "rejected"
    again = api(client, "POST", f"/submissions/{first['id']}/reject", {"reason": "x"})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_decided"
    assert api(client, "POST", "/submissions/999999/approve").status_code == 404

    jobs.score_engagement()
    parts = {p["name"]: p for p in
             api(client, "GET", f"/ambassadors/{aid}/engagement").get_json()["components"]}
    # two submitted (half each) + one approved (the other half): 3 halves of 2 → 0.75 × 15
    assert parts["content"]["value"] == "1 approved of 2"
    assert parts["content"]["points"] == "11.25"
    assert [s["id"] for s in api(
        client, "GET", f"/submissions?ambassador_id={aid}&status=approved").get_json()["items"]
    ] == [first["id"]]


def test_privacy_requests_export_and_erase_what_an_ambassador_submitted(c, client, shop):
    import json as _json

    from tests.conftest import webhook_headers
    from tests.functional.test_portal import customer_ambassador

    aid = customer_ambassador(c, shop, 4242, "Priv", "Acy", "PRIV10")
    submit(client, aid, "https://x.com/p/private", "my private caption #ad")
    api(client, "POST", "/submissions/1/approve")

    def send(topic: str, payload: dict) -> None:
        raw = _json.dumps({"shop_domain": SHOP_DOMAIN, "customer": {"id": 4242},
                           **payload}).encode()
        assert client.post("/webhooks/shopify", data=raw,
                           headers=webhook_headers(topic, raw)).status_code == 200

    send("customers/data_request", {"orders_requested": [], "data_request": {"id": 1}})
    export = api(client, "GET", "/privacy/requests").get_json()["items"][0]
    [item] = export["summary"]["ambassador"]["content_submissions"]
    assert item["url"] == "https://x.com/p/private" and "private caption" in item["text"]

    send("customers/redact", {"orders_to_redact": []})
    [after] = api(client, "GET", f"/submissions?ambassador_id={aid}").get_json()["items"]
    assert (after["url"], after["text"], after["status"]) == ("redacted", "", "approved")
    with c.engine.connect() as conn:
        dump = str(conn.exec_driver_sql("SELECT * FROM content_submissions").all())
    assert "private" not in dump


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"])
def test_text_the_database_cannot_keep_is_422_everywhere(c, client, shop, bad):
    aid = enrol(c, shop, "Nul", "Byte", "NUL10")
    for method, path, body in (
        ("POST", "/submissions", {"ambassador_id": aid, "url": "https://x.com/1", "text": bad}),
        ("POST", "/submissions", {"ambassador_id": aid, "url": f"https://x.com/{bad}"}),
        ("POST", "/challenges", {"name": bad, "metric": "orders",
                                 "starts_at": "2026-12-01T00:00:00Z",
                                 "ends_at": "2026-12-31T00:00:00Z"}),
        ("POST", "/resources", {"title": "t", "body": bad}),
        ("POST", "/resources", {"title": bad, "body": "b"}),
        ("PATCH", "/program/settings", {"disclosure_text": f"#{bad}"}),
    ):
        response = api(client, method, path, body)
        assert response.status_code == 422, (path, body, response.get_json())
    assert api(client, "GET", "/ambassadors?q=a%00b").status_code == 422


def test_ids_and_dates_out_of_range_are_422(c, client, shop):
    for body in ({"ambassador_id": 2**63, "url": "https://x.com/1"},
                 {"ambassador_id": 0, "url": "https://x.com/1"}):
        assert api(client, "POST", "/submissions", body).status_code == 422
    early = api(client, "POST", "/challenges", {
        "name": "x", "metric": "orders", "starts_at": "0001-01-01T00:00:00+01:00",
        "ends_at": "2026-12-31T00:00:00Z"})
    assert early.status_code == 422
