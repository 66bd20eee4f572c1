# ruff: noqa: F811 - the fixtures are shared with test_engagement (imported by name)
"""The ambassador portal through the app proxy, signed like Shopify signs: a customer sees their
own page and nobody else's, the magic-link login (single use, expiring, stored hashed, sent
through the outbox), forms that act only for the caller, and everything escaped."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from connector.domain.ambassadors import Ambassador, AmbassadorStatus, CodeState
from entrypoints import jobs
from tests.conftest import SHOP, install_shop
from tests.functional.test_engagement import (  # noqa: F401
    NOW,
    api,
    c,
    client,
    clock,
    enrol,
    order,
    shop,
)
from tests.proxy import form_token, proxy_path

SCRIPT = "<script>alert(1)</script>"


def customer_ambassador(c, shop, customer_id: int, first: str, last: str, code: str) -> int:
    with c.uow() as uow:
        a = uow.ambassadors.add(Ambassador(
            None, shop.id, f"{code.lower()}@example.com", AmbassadorStatus.ACTIVE,
            first_name=first, last_name=last, code=code, code_state=CodeState.ACTIVE,
            customer_id=customer_id, since=NOW,
        ))
        uow.commit()
    return a.id


def page(client, path: str = "/proxy/dashboard", **kwargs) -> tuple[int, str]:
    response = client.get(proxy_path(path, **kwargs))
    return response.status_code, response.get_data(as_text=True)


def post(client, path: str, data: dict, **kwargs):
    return client.post(proxy_path(path, **kwargs), data=data)


def test_a_customer_sees_their_own_page_and_nobody_elses(c, client, shop):
    mine = customer_ambassador(c, shop, 501, "Ann", "Able", "ANN10")
    customer_ambassador(c, shop, 502, "Bob", "Baker", "BOB10")
    order(client, "ANN10", "80.00", NOW - timedelta(days=1), customer=9)
    status, html = page(client, customer_id=501)
    assert status == 200
    assert "ANN10" in html and f"https://{SHOP}/discount/ANN10?redirect=%2F" in html
    assert "BOB10" not in html and "bob10@example.com" not in html
    assert "1 orders, 80.00 USD in sales." in html
    assert "Your next reward unlocks on" in html  # the order's reward is on hold
    assert "not engaged" in html and "How to rise" in html
    status, other = page(client, customer_id=502)
    assert "BOB10" in other and "ANN10" not in other
    # a customer who is not an ambassador, and a guest, get the sign-in form and no data
    for kwargs in ({"customer_id": 999}, {}):
        status, html = page(client, **kwargs)
        assert status == 200 and "Email me a sign-in link" in html
        assert "ANN10" not in html and "BOB10" not in html
    # the visit counts toward engagement
    jobs.score_engagement()
    parts = {p["name"]: p for p in
             api(client, "GET", f"/ambassadors/{mine}/engagement").get_json()["components"]}
    assert parts["portal_visits"]["value"] == "1"


def test_unsigned_or_tampered_requests_are_401(client, shop):
    assert client.get("/proxy/dashboard").status_code == 401
    tampered = proxy_path("/proxy/dashboard", customer_id=501).replace(
        "logged_in_customer_id=501", "logged_in_customer_id=502")
    assert client.get(tampered).status_code == 401


class _Recorder:
    """The notifier: what reached the ambassador's inbox (the outbox forgets a link's text)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, body))


def _sent(c) -> list[tuple[str, str]]:
    if not isinstance(c.notifier, _Recorder):
        c.notifier = _Recorder()
    return c.notifier.sent


def _login_link(c, client, email: str) -> str | None:
    _, html = page(client)
    before = list(_sent(c))
    response = post(client, "/proxy/dashboard/login",
                    {"email": email, "form_token": form_token(html)})
    assert response.status_code == 200
    assert "If this address belongs to one of our ambassadors" in response.get_data(as_text=True)
    new = _sent(c)[len(before):]
    if not new:
        return None
    [(to, body)] = new
    assert to == email
    return re.search(r"https://\S+", body).group(0)


def _outbox(c) -> list[tuple[str, str]]:
    with c.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.text('SELECT "to", body FROM notifications ORDER BY id'))]


def test_the_magic_link_signs_in_once_and_expires(c, client, shop):
    aid = enrol(c, shop, "Guest", "Ambassador", "GUEST10")
    link = _login_link(c, client, "guest10@example.com")
    assert link and link.startswith(f"https://{SHOP}/apps/ambassadors/dashboard/login?token=")
    token = parse_qs(urlsplit(link).query)["token"][0]
    assert len(token) >= 43  # 32 bytes from the CSPRNG
    with c.engine.connect() as conn:
        stored = [r[0] for r in conn.execute(sa.text("SELECT token_hash FROM portal_login_tokens"))]
    assert len(stored) == 1 and token not in stored[0]  # only a hash is kept
    [(_, kept)] = _outbox(c)  # sent: the outbox no longer holds the link either
    assert token not in kept and "one-time link" in kept

    response = client.get(proxy_path("/proxy/dashboard/login", extra={"token": token}))
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/apps/ambassadors/dashboard?s=")
    session = parse_qs(urlsplit(location).query)["s"][0]
    status, html = page(client, extra={"s": session})
    assert status == 200 and "GUEST10" in html
    again = client.get(proxy_path("/proxy/dashboard/login", extra={"token": token}))
    assert again.status_code == 400  # single use

    late = parse_qs(urlsplit(_login_link(c, client, "guest10@example.com")).query)["token"][0]
    c.clock.advance(minutes=16)
    assert client.get(
        proxy_path("/proxy/dashboard/login", extra={"token": late})).status_code == 400
    assert aid


def test_unknown_addresses_get_the_same_answer_and_no_mail(c, client, shop):
    enrol(c, shop, "Paused", "One", "PAUSED10", status=AmbassadorStatus.PAUSED)
    for email in ("nobody@example.com", "paused10@example.com", "not an email"):
        assert _login_link(c, client, email) is None


def test_links_are_rate_limited_per_ambassador(c, client, shop):
    enrol(c, shop, "Many", "Links", "MANY10")
    sent = [_login_link(c, client, "many10@example.com") for _ in range(5)]
    assert sum(1 for x in sent if x) == 3


def test_a_session_is_bound_to_its_ambassador_and_shop(c, client, shop):
    from admin_ui.portal import issue_session

    mine = enrol(c, shop, "Ann", "Able", "ANN10")
    theirs = enrol(c, shop, "Bob", "Baker", "BOB10")
    with client.application.app_context():
        session = issue_session(SHOP, mine, c.clock.now())
        other_shop = issue_session("other-shop.myshopify.com", theirs, c.clock.now())
    forged = session.replace(f"{mine}.", f"{theirs}.", 1)
    for bad in (forged, other_shop, "1.2.3", session[:-1] + "0"):
        status, html = page(client, extra={"s": bad})
        assert status == 200
        assert "BOB10" not in html and "ANN10" not in html
        assert "Email me a sign-in link" in html
    install_shop(c, "other-shop.myshopify.com")
    _, html = page(client, "/proxy/dashboard", shop="other-shop.myshopify.com",
                        extra={"s": session})
    assert "ANN10" not in html
    # and a post with another ambassador's session cannot act for them
    _, html = page(client, extra={"s": session})
    response = post(client, "/proxy/dashboard/submissions",
                    {"url": "https://x.com/p/1", "text": "#ad", "s": forged,
                     "form_token": form_token(html)}, extra={"s": forged})
    assert response.status_code == 401
    assert api(client, "GET", "/submissions").get_json()["items"] == []


def test_portal_forms_act_for_the_caller_and_everything_is_escaped(c, client, shop):
    aid = customer_ambassador(c, shop, 601, SCRIPT, "{{ shop.name }}", "ESC10")
    rival = customer_ambassador(c, shop, 602, SCRIPT, "<b>bold</b>", "RIVAL10")
    cid = api(client, "POST", "/challenges", {
        "name": f"Win {SCRIPT}", "metric": "orders",
        "starts_at": (NOW - timedelta(days=1)).isoformat(),
        "ends_at": (NOW + timedelta(days=3)).isoformat()}).get_json()["id"]
    api(client, "POST", f"/challenges/{cid}/participants", {"ambassador_id": rival})
    order(client, "RIVAL10", "10.00", NOW - timedelta(hours=1), customer=77)
    _, html = page(client, customer_id=601)
    token = form_token(html)
    assert "I will disclose my partnership" in html

    assert post(client, "/proxy/dashboard/disclosure", {"form_token": token},
                customer_id=601).status_code == 303
    ack = api(client, "GET", f"/ambassadors/{aid}/disclosure").get_json()
    assert ack["acknowledged_at"] is not None
    assert post(client, f"/proxy/dashboard/challenges/{cid}/join", {"form_token": token},
                customer_id=601).status_code == 303
    response = post(client, "/proxy/dashboard/submissions",
                    {"url": "https://x.com/p/<script>", "text": f"{SCRIPT} #ad",
                     "form_token": token}, customer_id=601)
    assert response.status_code == 303
    duplicate = post(client, "/proxy/dashboard/submissions",
                     {"url": "https://x.com/p/<script>", "text": "#ad", "form_token": token},
                     customer_id=601)
    assert duplicate.status_code == 409
    assert "you already submitted this post" in duplicate.get_data(as_text=True)
    expired = post(client, "/proxy/dashboard/submissions",
                   {"url": "https://x.com/p/2", "form_token": "1.abc"}, customer_id=601)
    assert expired.status_code == 400
    # a token for one ambassador does not work for another
    assert post(client, "/proxy/dashboard/disclosure", {"form_token": token},
                customer_id=602).status_code == 400

    _, html = page(client, customer_id=601)
    assert SCRIPT not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{{ shop.name }}" not in html  # Liquid in a name is shown, never run
    # the rival on the board: first name (cut to 20 characters) and initial, escaped
    assert "<td>&lt;script&gt;alert(1)&lt;/sc &lt;.</td>" in html
    assert "RIVAL10" not in html and "rival10@example.com" not in html
    assert "I will disclose my partnership" not in html  # acknowledged
    mine = api(client, "GET", f"/submissions?ambassador_id={aid}").get_json()["items"]
    assert [s["url"] for s in mine] == ["https://x.com/p/<script>"]
