"""Applications: the storefront form through the app proxy (signed like Shopify signs), abuse
limits, the review queue in the JSON API, and the notification outbox.

Shopify itself is not involved here: signed-in customers come from ``FakeCustomers`` and the
code sync (which would call Shopify) is recorded, not run. The end to end path with real codes
is in ``tests/integration/test_applications_against_emulator.py``.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from adapters.db.tables import applications, notifications
from adapters.queue.inprocess import InProcessJobQueue
from connector.domain.ambassadors import AmbassadorStatus
from connector.domain.applications import client_fingerprint
from connector.domain.program import ProgramSettings
from connector.domain.shops import Shop
from connector.ports import CustomerSummary, Job
from connector.services import ambassadors as ambassador_service
from entrypoints import jobs as job_functions
from tests.conftest import OLD_SECRET, SHOP, count_rows, install_shop
from tests.proxy import form_token, proxy_path, signature, signed_params
from tests.tokens import session_token

OTHER = "other-shop.myshopify.com"
IP = "203.0.113.7"


# --- fixtures and helpers -------------------------------------------------------------------


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.fail_for: set[str] = set()

    def send(self, to: str, subject: str, body: str) -> None:
        if to in self.fail_for:
            raise RuntimeError("mail server said no")
        self.sent.append((to, subject, body))


class NotificationsOnlyQueue(InProcessJobQueue):
    """Inline, but only the notification sender runs (and only while not held); every other
    job (the code sync, which would call Shopify) is recorded instead."""

    def __init__(self) -> None:
        super().__init__(threaded=False)
        self.hold = False
        self.recorded: list[tuple[Job, tuple[object, ...]]] = []

    def enqueue(self, job: Job, *args: object, job_id: str | None = None) -> None:
        if job is Job.SEND_NOTIFICATIONS and not self.hold:
            super().enqueue(job, *args, job_id=job_id)
        else:
            self.recorded.append((job, args))
            self.acknowledge(job)


class FakeCustomers:
    """The one Shopify call the proxy makes: look up the signed-in customer."""

    def __init__(self) -> None:
        self.customers: dict[int, CustomerSummary] = {}
        self.lookups: list[int] = []

    def add(self, customer_id: int, email: str | None, first: str, last: str) -> None:
        self.customers[customer_id] = CustomerSummary(
            customer_id, email, first, last, 3, Decimal("120.00"), "USD", None, None
        )

    def get_customer(self, shop_domain: str, access_token: str, customer_id: int):
        self.lookups.append(customer_id)
        return self.customers.get(customer_id)


def install(container, domain: str) -> Shop:
    return install_shop(container, domain,
                        name="Test <Shop>" if domain == SHOP else "Other Shop")


@pytest.fixture
def shop(container) -> Shop:
    return install(container, SHOP)


@pytest.fixture
def notifier(container) -> RecordingNotifier:
    container.notifier = RecordingNotifier()
    return container.notifier


@pytest.fixture
def queue(container) -> NotificationsOnlyQueue:
    container.jobs = NotificationsOnlyQueue()
    return container.jobs


@pytest.fixture
def customers(container) -> FakeCustomers:
    container.discounts = FakeCustomers()
    return container.discounts


@pytest.fixture
def env(shop, notifier, queue, customers):
    return shop


def configure(container, **changes) -> None:
    with container.uow() as uow:
        shop = uow.shops.get(SHOP)
        current = uow.program.settings(shop.id)
        uow.program.save_settings(shop.id, ProgramSettings.from_dict(changes, base=current))
        uow.commit()


GOOD = {
    "first_name": "Ava",
    "last_name": "Martin",
    "email": "ava@example.com",
    "answers.why": "I wear your shoes every day.",
}


def apply(client, *, customer_id=None, ip=IP, token=None, shop_domain=SHOP, **fields):
    """Open the form (for its token) and send it, as a visitor's browser would."""
    if token is None:
        page = client.get(proxy_path(customer_id=customer_id, shop=shop_domain))
        assert page.status_code == 200, page.text[:500]
        token = form_token(page.text)
    data = {"form_token": token, **GOOD, **fields}
    return client.post(
        proxy_path(customer_id=customer_id, shop=shop_domain),
        data={k: v for k, v in data.items() if v is not None},
        headers={"X-Forwarded-For": f"{ip}, 23.227.38.65"},
    )


def api(client, method, path, shop_domain=SHOP, sub="42", **kwargs):
    token = session_token(shop_domain, sub=sub)
    return client.open(
        f"/api/v1{path}", method=method, headers={"Authorization": f"Bearer {token}"}, **kwargs
    )


def rows(container, table):
    with container.engine.connect() as conn:
        return [r._asdict() for r in conn.execute(sa.select(table).order_by(table.c.id))]


def ambassador(container, email):
    with container.uow() as uow:
        return uow.ambassadors.by_email(uow.shops.get(SHOP).id, email)


def nothing_stored(container):
    return count_rows(container, "applications") == 0 and count_rows(container, "ambassadors") == 0


# --- the signature --------------------------------------------------------------------------


def test_a_signed_request_gets_the_form_with_the_programs_questions(client, env):
    response = client.get(proxy_path())
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/liquid"
    assert response.headers["Cache-Control"] == "no-store"
    page = response.text
    assert "Why do you love our products?" in page
    assert 'action="/apps/ambassadors/apply"' in page and 'method="post"' in page
    assert 'name="first_name"' in page and 'name="email"' in page
    assert 'name="social.instagram"' in page and 'name="social.website"' in page
    assert form_token(page)
    assert "<html" not in page  # a fragment: Shopify wraps it in the theme
    assert "Test &lt;Shop&gt;" in page  # even the shop's own name is escaped


def _tampered():
    params = signed_params()
    params["shop"] = OTHER
    return params


def _without(name):
    params = signed_params()
    params.pop(name)
    return params


def _doubled_shop():
    params = signed_params(extra={})
    params.pop("signature")
    params["shop"] = [SHOP, OTHER]
    params["signature"] = signature(params)
    return params


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(lambda: _without("signature"), id="missing"),
        pytest.param(lambda: signed_params(secret="not-the-secret"), id="wrong-secret"),
        pytest.param(_tampered, id="tampered-after-signing"),
        pytest.param(lambda: signed_params(timestamp=int(time.time()) - 600), id="stale"),
        pytest.param(lambda: _without("timestamp"), id="no-timestamp"),
        pytest.param(lambda: {**signed_params(), "signature": "é" * 64}, id="non-hex"),
        pytest.param(lambda: {**signed_params(), "signature": "0" * 64}, id="zeros"),
        pytest.param(_doubled_shop, id="two-shops"),
        pytest.param(lambda: {}, id="no-parameters"),
    ],
)
def test_requests_without_shopifys_signature_are_401_and_store_nothing(
    client, env, container, params
):
    query = urlencode(params(), doseq=True)
    assert client.get(f"/proxy/apply?{query}").status_code == 401
    response = client.post(f"/proxy/apply?{query}", data={**GOOD, "form_token": "1.x"})
    assert response.status_code == 401
    assert response.text == "Unauthorized"
    assert nothing_stored(container)


def test_repeated_parameters_are_signed_joined_with_commas(client, env):
    response = client.get(proxy_path(extra={"utm": ["a", "b"]}))
    assert response.status_code == 200


def test_a_signature_made_with_the_previous_secret_is_accepted_during_rotation(client, env):
    assert client.get(proxy_path(secret=OLD_SECRET)).status_code == 200


def test_a_shop_without_the_app_gets_a_closed_page(client, env):
    response = client.get(proxy_path(shop=OTHER))
    assert response.status_code == 404
    assert "not taking applications" in response.text


# --- submitting -----------------------------------------------------------------------------


def test_a_guest_application_is_stored_with_answers_social_and_only_a_keyed_hash_of_the_ip(
    client, env, container, notifier
):
    response = apply(
        client,
        **{
            "social.instagram": "@ava.m",
            "social.tiktok": "https://www.tiktok.com/@ava_m",
            "social.youtube": "",
            "social.website": "ava.example.com",
            "answers.audience": "Instagram, mostly",
        },
    )
    assert response.status_code == 200, response.text
    assert "Thank you, Ava!" in response.text and "ava@example.com" in response.text
    a = ambassador(container, "ava@example.com")
    assert a.status is AmbassadorStatus.APPLIED and a.source == "application"
    assert a.code is None and a.first_name == "Ava" and a.last_name == "Martin"
    [row] = rows(container, applications)
    assert row["status"] == "pending" and row["ambassador_id"] == a.id
    assert row["answers"] == [
        {"id": "why", "label": "Why do you love our products?", "answer": GOOD["answers.why"]},
        {
            "id": "audience",
            "label": "Where do you share (links to your profiles)?",
            "answer": "Instagram, mostly",
        },
    ]
    assert row["social"] == {
        "instagram": "ava.m",
        "tiktok": "ava_m",
        "website": "https://ava.example.com",
    }
    assert re.fullmatch(r"[0-9a-f]{64}", row["client_hash"])
    assert row["client_hash"] == client_fingerprint(container.settings.secret_key, IP)
    assert row["client_hash"] != client_fingerprint("another-key", IP)
    assert IP not in repr(rows(container, applications)) + repr(rows(container, notifications))
    assert [(to, subject) for to, subject, _ in notifier.sent] == [
        ("ava@example.com", "We received your ambassador application to Test <Shop>")
    ]


def test_required_questions_are_enforced_and_the_form_comes_back_filled_in(client, env, container):
    response = apply(client, **{"answers.why": "   ", "answers.audience": "my blog"})
    assert response.status_code == 422
    page = response.text
    assert "this question needs an answer" in page
    assert 'aria-invalid="true"' in page
    assert 'value="ava@example.com"' in page and "my blog" in page  # nothing to type again
    assert form_token(page)  # a fresh token to send it again
    assert nothing_stored(container)


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"first_name": ""}, "first_name"),
        ({"first_name": "Ava\x00"}, "first_name"),
        ({"last_name": "x" * 121}, "last_name"),
        ({"answers.why": "x" * 2001}, "answers.why"),
        ({"answers.audience": "y" * 301}, "answers.audience"),
        ({"social.instagram": "ava martin!"}, "social.instagram"),
        ({"social.tiktok": "https://evil.example.com/@ava"}, "social.tiktok"),
        ({"social.website": "javascript:alert(1)"}, "social.website"),
        ({"social.website": "https://user:pw@example.com"}, "social.website"),
    ],
)
def test_bad_input_is_422_with_the_message_and_stores_nothing(
    client, env, container, notifier, fields, field
):
    response = apply(client, **fields)
    assert response.status_code == 422, response.text[:300]
    assert f'id="e-{field}"' in response.text
    assert nothing_stored(container) and notifier.sent == []


def test_an_oversized_body_is_413_and_stores_nothing(client, env, container):
    response = apply(client, **{"answers.why": "x" * 20_000})
    assert response.status_code == 413
    assert "too long" in response.text
    assert nothing_stored(container)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda app, shop: "", id="missing"),
        pytest.param(lambda app, shop: "1767225600." + "0" * 64, id="forged"),
        pytest.param(lambda app, shop: _token(app, OTHER, None, 0), id="other-shop"),
        pytest.param(lambda app, shop: _token(app, SHOP, 77, 0), id="other-customer"),
        pytest.param(lambda app, shop: _token(app, SHOP, None, -13 * 3600), id="expired"),
        pytest.param(lambda app, shop: _token(app, SHOP, None, 3600), id="from-the-future"),
    ],
)
def test_a_submission_without_a_valid_form_token_is_400_and_stores_nothing(
    client, app, env, container, token
):
    response = apply(client, token=token(app, env) or "")
    assert response.status_code == 400
    assert "expired" in response.text
    assert nothing_stored(container)


def _token(app, shop, customer_id, offset):
    from admin_ui.proxy import issue_form_token

    with app.test_request_context():
        now = app.extensions["ambassador"].clock.now() + timedelta(seconds=offset)
        return issue_form_token(shop, customer_id, now)


def test_a_guest_form_token_cannot_be_used_by_a_signed_in_customer(client, env, container):
    """CSRF: a page elsewhere can fetch a guest form, but not submit it as someone signed in."""
    guest_token = form_token(client.get(proxy_path()).text)
    response = apply(client, customer_id=5, token=guest_token)
    assert response.status_code == 400
    assert nothing_stored(container)


def test_a_filled_honeypot_is_thanked_and_ignored(client, env, container, notifier):
    response = apply(client, ap_confirm_details="http://spam.example.com")
    assert response.status_code == 200 and "Thank you" in response.text
    assert nothing_stored(container) and notifier.sent == []


def test_applying_twice_keeps_one_pending_application(client, env, container, notifier):
    assert apply(client).status_code == 200
    again = apply(client, email="AVA@example.com ", **{"answers.why": "Really!"})
    assert again.status_code == 200
    assert "We already have your application" in again.text
    assert count_rows(container, "applications") == 1
    assert count_rows(container, "notifications") == 1 and len(notifier.sent) == 1


def test_an_active_ambassador_is_told_so_and_does_not_apply(client, env, container, queue):
    ambassador_service.enrol(
        container.uow(),
        container.jobs,
        container.clock,
        env,
        email="ava@example.com",
        first_name="Ava",
    )
    response = apply(client)
    assert response.status_code == 200
    assert "You are already an ambassador" in response.text
    assert count_rows(container, "applications") == 0


def test_a_rejected_applicant_may_reapply_only_after_the_waiting_period(client, env, container):
    configure(container, reapply_after_days=30)
    assert apply(client).status_code == 200
    [first] = rows(container, applications)
    rejected = api(client, "POST", f"/applications/{first['id']}/reject", json={"reason": "Soon"})
    assert rejected.status_code == 200

    too_early = apply(client, ip="198.51.100.1")
    assert too_early.status_code == 409
    expected = (container.clock.now() + timedelta(days=30)).date()
    assert f'datetime="{expected.isoformat()}"' in too_early.text
    assert f"{expected:%B} {expected.day}, {expected.year}" in too_early.text
    assert count_rows(container, "applications") == 1

    # 31 days pass (the removal is what starts the clock)
    with container.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE ambassador_events SET at = at - interval '31 days'")
    again = apply(client, ip="198.51.100.1", **{"answers.why": "Still a fan"})
    assert again.status_code == 200 and "Thank you, Ava!" in again.text
    assert [r["status"] for r in rows(container, applications)] == ["rejected", "pending"]
    a = ambassador(container, "ava@example.com")
    assert a.status is AmbassadorStatus.APPLIED
    history = api(client, "GET", f"/ambassadors/{a.id}/history").get_json()["items"]
    assert [(h["before"], h["after"], h["actor"]) for h in history if h["kind"] == "status"] == [
        ("applied", "removed", "merchant:42"),
        ("removed", "applied", "applicant"),
    ]


def test_too_many_applications_from_one_address_are_429(client, env, container):
    for i in range(5):
        assert apply(client, email=f"person{i}@example.com").status_code == 200
    blocked = apply(client, email="person5@example.com")
    assert blocked.status_code == 429
    assert blocked.headers["Retry-After"] == "3600"
    assert "Too many applications" in blocked.text
    assert count_rows(container, "applications") == 5
    assert apply(client, email="person5@example.com", ip="198.51.100.9").status_code == 200


def test_ipv6_addresses_are_limited_per_64(client, env, container):
    for i in range(5):
        ip = f"2001:db8:1:2::{i + 1}"
        assert apply(client, email=f"p{i}@example.com", ip=ip).status_code == 200
    assert apply(client, email="p5@example.com", ip="2001:db8:1:2:ffff::1").status_code == 429
    assert apply(client, email="p5@example.com", ip="2001:db8:1:3::1").status_code == 200


def test_too_many_applications_for_one_email_in_a_day_are_429(client, env, container):
    configure(container, reapply_after_days=0)
    for n in range(3):
        assert apply(client, ip=f"198.51.100.{n + 1}").status_code == 200
        pending = api(client, "GET", "/applications?status=pending").get_json()["items"]
        assert (
            api(
                client, "POST", f"/applications/{pending[0]['id']}/reject", json={"reason": "No"}
            ).status_code
            == 200
        )
    blocked = apply(client, ip="198.51.100.50")
    assert blocked.status_code == 429 and blocked.headers["Retry-After"] == "86400"
    assert count_rows(container, "applications") == 3


def test_markup_and_liquid_typed_by_applicants_are_escaped_everywhere(client, env, container):
    evil_name = "<script>alert(1)</script>"
    evil_answer = "{{ shop.metafields }} {% raw %} <img src=x onerror=alert(1)>"
    response = apply(client, first_name=evil_name, **{"answers.why": evil_answer})
    assert response.status_code == 200
    assert "<script>alert(1)" not in response.text
    assert "Thank you, &lt;script&gt;alert(1)&lt;/script&gt;!" in response.text

    invalid = apply(client, email="nope", first_name=evil_name, **{"answers.why": evil_answer})
    assert invalid.status_code == 422
    page = invalid.text
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "{{" not in page and "{%" not in page  # Shopify would run them as Liquid
    assert "&#123;&#123; shop.metafields &#125;&#125;" in page

    [item] = api(client, "GET", "/applications").get_json()["items"]
    assert item["first_name"] == evil_name  # JSON is data; the admin UI escapes on display
    assert item["answers"][0]["answer"] == evil_answer


def test_escaping_of_program_questions_on_the_form(client, env, container):
    configure(
        container,
        questions=[{"id": "q1", "label": "Your <b>best</b> {{ post }}", "required": True}],
    )
    page = client.get(proxy_path()).text
    assert "Your &lt;b&gt;best&lt;/b&gt; &#123;&#123; post &#125;&#125;" in page
    assert apply(client, **{"answers.why": None, "answers.q1": "this one"}).status_code == 200


def test_auto_approve_makes_an_active_ambassador_at_once(client, env, container, notifier, queue):
    configure(container, auto_approve=True)
    response = apply(client)
    assert response.status_code == 200 and "Welcome aboard, Ava!" in response.text
    a = ambassador(container, "ava@example.com")
    assert a.status is AmbassadorStatus.ACTIVE and a.code == "AVAM"
    assert (Job.SYNC_CODES, (SHOP,)) in queue.recorded  # the code goes to Shopify
    [row] = rows(container, applications)
    assert row["status"] == "approved" and row["decided_by"] == "system:auto_approve"
    [(_to, subject, body)] = notifier.sent
    assert subject == "Welcome to the Test <Shop> ambassador program"
    assert "AVAM" in body and f"https://{SHOP}/discount/AVAM?redirect=%2F" in body


# --- signed-in customers --------------------------------------------------------------------


def test_a_signed_in_customer_applies_as_their_shopify_account(client, env, container, customers):
    customers.add(501, "Lea.Roux@Example.com", "Léa", "Roux")
    form = client.get(proxy_path(customer_id=501)).text
    assert "You are signed in" in form and 'name="email"' not in form
    response = apply(client, customer_id=501, first_name="Mallory", email="mallory@evil.example")
    assert response.status_code == 200, response.text
    assert "Thank you, Léa!" in response.text
    a = ambassador(container, "lea.roux@example.com")
    assert (a.customer_id, a.first_name, a.last_name) == (501, "Léa", "Roux")
    assert ambassador(container, "mallory@evil.example") is None
    [row] = rows(container, applications)
    assert row["customer_id"] == 501 and row["email"] == "lea.roux@example.com"
    assert customers.lookups == [501]

    # back on the form later: no form, just where they stand (no Shopify call)
    page = client.get(proxy_path(customer_id=501))
    assert "We already have your application" in page.text and "form_token" not in page.text
    assert customers.lookups == [501]


def test_a_signed_in_customer_who_is_an_ambassador_sees_no_form(client, env, container, queue):
    ambassador_service.enrol(
        container.uow(), container.jobs, container.clock, env, email="k@example.com", customer_id=9
    )
    page = client.get(proxy_path(customer_id=9))
    assert page.status_code == 200 and "You are already an ambassador" in page.text


@pytest.mark.parametrize(
    "email,expected",
    [(None, "no email address"), ("missing", "could not find your customer account")],
)
def test_signed_in_customers_shopify_cannot_vouch_for_are_422(
    client, env, container, customers, email, expected
):
    if email is None:
        customers.add(502, None, "No", "Mail")
    response = apply(client, customer_id=502)
    assert response.status_code == 422
    assert expected in response.text
    assert nothing_stored(container)


# --- the review queue -----------------------------------------------------------------------


def submit_pending(client, container, n=1):
    for i in range(n):
        ip = f"198.51.100.{i + 1}"
        assert apply(client, email=f"applicant{i}@example.com", ip=ip).status_code == 200
    return [r["id"] for r in rows(container, applications)]


def test_the_queue_lists_applications_oldest_first_with_cursor_pages(client, env, container):
    ids = submit_pending(client, container, 3)
    first = api(client, "GET", "/applications?status=pending&limit=2").get_json()
    assert [i["id"] for i in first["items"]] == ids[:2]
    assert first["items"][0]["votes"] == {"approve": 0, "reject": 0, "required": 1}
    assert first["items"][0]["answers"][0]["answer"] == GOOD["answers.why"]
    assert "client_hash" not in first["items"][0]
    second = api(client, "GET", f"/applications?status=pending&cursor={first['next_cursor']}")
    assert [i["id"] for i in second.get_json()["items"]] == ids[2:]
    assert second.get_json()["next_cursor"] is None
    assert api(client, "GET", "/applications?status=approved").get_json()["items"] == []
    assert api(client, "GET", "/applications?status=maybe").status_code == 422
    assert api(client, "GET", "/applications?cursor=bogus").status_code == 422


def test_votes_reaching_the_threshold_approve_one_vote_per_reviewer(
    client, env, container, queue, notifier
):
    configure(container, approvals_required=2)
    [aid] = submit_pending(client, container)
    one = api(client, "POST", f"/applications/{aid}/votes", sub="1", json={"vote": "approve"})
    assert one.status_code == 200 and one.get_json()["status"] == "pending"
    again = api(client, "POST", f"/applications/{aid}/votes", sub="1", json={"vote": "approve"})
    assert again.get_json()["votes"] == {"approve": 1, "reject": 0, "required": 2}
    changed = api(
        client,
        "POST",
        f"/applications/{aid}/votes",
        sub="1",
        json={"vote": "reject", "comment": "not sure"},
    ).get_json()
    assert changed["votes"] == {"approve": 0, "reject": 1, "required": 2}
    assert changed["reviews"][0]["reviewer"] == "merchant:1"
    assert changed["reviews"][0]["comment"] == "not sure"
    two = api(client, "POST", f"/applications/{aid}/votes", sub="2", json={"vote": "approve"})
    assert two.get_json()["status"] == "pending"
    decided = api(client, "POST", f"/applications/{aid}/votes", sub="1", json={"vote": "approve"})
    body = decided.get_json()
    assert body["status"] == "approved" and body["decided_by"] == "merchant:1"
    assert body["ambassador"]["status"] == "active" and body["ambassador"]["code"] == "AVAM"
    assert body["ambassador"]["share_url"] == f"https://{SHOP}/discount/AVAM?redirect=%2F"
    history = api(client, "GET", f"/ambassadors/{body['ambassador_id']}/history").get_json()
    assert [
        (h["before"], h["after"], h["actor"], h["reason"])
        for h in history["items"]
        if h["kind"] == "status"
    ] == [("applied", "active", "merchant:1", "approved by 2 of 2 reviewers")]
    assert (Job.SYNC_CODES, (SHOP,)) in queue.recorded
    late = api(client, "POST", f"/applications/{aid}/votes", sub="3", json={"vote": "reject"})
    assert late.status_code == 409 and late.get_json()["error"]["code"] == "already_decided"


@pytest.mark.parametrize(
    "body,code",
    [
        ({"vote": "maybe"}, "invalid_vote"),
        ({}, "invalid_vote"),
        ({"vote": "approve", "comment": "x" * 1001}, "invalid_comment"),
        ({"vote": "approve", "comment": 5}, "invalid_comment"),
    ],
)
def test_bad_votes_are_422_and_change_nothing(client, env, container, body, code):
    [aid] = submit_pending(client, container)
    response = api(client, "POST", f"/applications/{aid}/votes", json=body)
    assert response.status_code == 422 and response.get_json()["error"]["code"] == code
    assert api(client, "GET", f"/applications/{aid}").get_json()["reviews"] == []


def test_an_explicit_approval_can_choose_the_starting_tier(client, env, container):
    tier = api(
        client, "POST", "/tiers", json={"name": "Gold", "position": 2, "commission_rate": "15"}
    ).get_json()
    [aid] = submit_pending(client, container)
    bad = api(client, "POST", f"/applications/{aid}/approve", json={"tier_id": 999999})
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_tier"
    ok = api(client, "POST", f"/applications/{aid}/approve", json={"tier_id": tier["id"]})
    assert ok.status_code == 200 and ok.get_json()["tier_id"] == tier["id"]
    a = api(client, "GET", f"/ambassadors/{ok.get_json()['ambassador_id']}").get_json()
    assert a["status"] == "active" and a["tier"]["name"] == "Gold"


@pytest.mark.parametrize("reason", [None, "", "   ", 42, "x" * 1001])
def test_a_rejection_needs_a_reason(client, env, container, reason):
    [aid] = submit_pending(client, container)
    response = api(client, "POST", f"/applications/{aid}/reject", json={"reason": reason})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_reason"
    assert api(client, "GET", f"/applications/{aid}").get_json()["status"] == "pending"


def test_a_rejection_removes_the_applicant_with_the_reason_and_tells_them(
    client, env, container, notifier
):
    configure(container, reapply_after_days=60)
    [aid] = submit_pending(client, container)
    response = api(
        client, "POST", f"/applications/{aid}/reject", json={"reason": "Audience too small"}
    )
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "rejected"
    assert body["reason"] == "Audience too small" and body["decided_by"] == "merchant:42"
    assert body["ambassador"]["status"] == "removed" and body["ambassador"]["code"] is None
    reapply_on = (container.clock.now() + timedelta(days=60)).date()
    assert body["reapply_on"].startswith(reapply_on.isoformat())
    history = api(client, "GET", f"/ambassadors/{body['ambassador_id']}/history").get_json()
    assert [h["reason"] for h in history["items"] if h["kind"] == "status"] == [
        "Audience too small"
    ]
    to, _subject, text = notifier.sent[-1]
    assert to == "applicant0@example.com"
    assert "Reason: Audience too small" in text and reapply_on.isoformat() in text


@pytest.mark.parametrize(
    "first,then",
    [
        (("approve", {}), ("reject", {"reason": "changed my mind"})),
        (("reject", {"reason": "no"}), ("approve", {})),
        (("approve", {}), ("approve", {})),
        (("reject", {"reason": "no"}), ("reject", {"reason": "no"})),
    ],
)
def test_deciding_a_decided_application_is_409_and_changes_nothing(
    client, env, container, first, then
):
    [aid] = submit_pending(client, container)
    assert api(client, "POST", f"/applications/{aid}/{first[0]}", json=first[1]).status_code == 200
    before = api(client, "GET", f"/applications/{aid}").get_json()
    response = api(client, "POST", f"/applications/{aid}/{then[0]}", json=then[1])
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "already_decided"
    assert api(client, "GET", f"/applications/{aid}").get_json() == before


def test_unknown_applications_are_404(client, env):
    for method, path in [
        ("GET", "/applications/999"),
        ("GET", "/applications/abc"),
        ("POST", "/applications/999/approve"),
        ("POST", "/applications/999/votes"),
    ]:
        response = api(client, method, path, json={"vote": "approve"})
        assert response.status_code == 404, (method, path)
        assert response.get_json()["error"]["code"] == "not_found"


def test_a_token_for_another_shop_never_sees_or_decides_these_applications(client, env, container):
    install(container, OTHER)
    [aid] = submit_pending(client, container)
    assert api(client, "GET", "/applications", shop_domain=OTHER).get_json()["items"] == []
    for method, path, body in [
        ("GET", f"/applications/{aid}", None),
        ("POST", f"/applications/{aid}/votes", {"vote": "approve"}),
        ("POST", f"/applications/{aid}/approve", {}),
        ("POST", f"/applications/{aid}/reject", {"reason": "mine now"}),
    ]:
        response = api(client, method, path, shop_domain=OTHER, json=body)
        assert response.status_code == 404, (method, path)
    mine = api(client, "GET", f"/applications/{aid}").get_json()
    assert mine["status"] == "pending" and mine["reviews"] == []


def test_the_api_requires_a_session_token(client, env):
    response = client.get("/api/v1/applications")
    assert response.status_code == 401


# --- notifications --------------------------------------------------------------------------


def test_notifications_are_written_once_per_event_and_sent_by_the_job(
    client, env, container, notifier, queue
):
    queue.hold = True  # the sender does not run by itself: we run it below
    assert apply(client).status_code == 200
    assert apply(client).status_code == 200  # the duplicate writes no second message
    [aid] = [r["id"] for r in rows(container, applications)]
    assert api(client, "POST", f"/applications/{aid}/approve", json={}).status_code == 200
    assert api(client, "POST", f"/applications/{aid}/approve", json={}).status_code == 409
    assert (Job.SEND_NOTIFICATIONS, ()) in queue.recorded  # the commit woke the sender
    outbox = rows(container, notifications)
    assert [(n["key"], n["status"]) for n in outbox] == [
        (f"application:{aid}:received", "pending"),
        (f"application:{aid}:approved", "pending"),
    ]
    assert notifier.sent == []

    assert job_functions.send_notifications() == 2
    assert [subject for _, subject, _ in notifier.sent] == [
        "We received your ambassador application to Test <Shop>",
        "Welcome to the Test <Shop> ambassador program",
    ]
    assert all(n["status"] == "sent" and n["sent_at"] for n in rows(container, notifications))
    assert job_functions.send_notifications() == 0  # nothing is sent twice
    assert len(notifier.sent) == 2


def test_a_message_the_notifier_refuses_stays_pending_and_the_others_still_go(
    client, env, container, notifier, queue
):
    queue.hold = True
    notifier.fail_for = {"applicant0@example.com"}
    submit_pending(client, container, 2)
    assert job_functions.send_notifications() == 1
    assert [to for to, _, _ in notifier.sent] == ["applicant1@example.com"]
    assert [n["status"] for n in rows(container, notifications)] == ["pending", "sent"]
    notifier.fail_for = set()
    assert job_functions.send_notifications() == 1
    assert [n["status"] for n in rows(container, notifications)] == ["sent", "sent"]


def test_the_console_notifier_prints_the_message(container):
    import io

    from adapters.notify import ConsoleNotifier

    out = io.StringIO()
    ConsoleNotifier(out).send("ava@example.com", "Hello", "Line one\nLine two\n")
    assert out.getvalue() == (
        "--- message ---\nTo: ava@example.com\nSubject: Hello\n\nLine one\nLine two\n--- end ---\n"
    )
    assert isinstance(container.notifier, ConsoleNotifier)  # the default backend


def test_the_outbox_keeps_one_message_per_key(container, shop):
    with container.uow() as uow:
        assert uow.notifications.add(shop.id, "application:1:approved", "a@x.com", "Hi", "1")
        assert not uow.notifications.add(shop.id, "application:1:approved", "a@x.com", "Hi", "2")
        uow.commit()
    assert [n["body"] for n in rows(container, notifications)] == ["1"]


def test_a_decision_is_stored_only_while_the_application_is_pending(client, env, container):
    from dataclasses import replace

    from connector.domain.applications import ApplicationStatus

    [aid] = submit_pending(client, container)
    with container.uow() as uow:
        application = uow.applications.get(env.id, aid)
        approved = replace(application, status=ApplicationStatus.APPROVED, decided_by="x")
        assert uow.applications.decide(approved)
        rejected = replace(application, status=ApplicationStatus.REJECTED, reason="late")
        assert not uow.applications.decide(rejected)
        uow.commit()
    assert rows(container, applications)[0]["status"] == "approved"


def test_the_whole_flow_works_on_sqlite_in_embedded_mode(tmp_path):
    from adapters.bootstrap import bootstrap
    from entrypoints.cli import run_migrations
    from entrypoints.wsgi import create_app
    from tests.conftest import make_settings

    url = f"sqlite:///{tmp_path}/embedded.sqlite3"
    run_migrations(url)
    notifier = RecordingNotifier()
    c = bootstrap(make_settings(tmp_path, url), jobs=NotificationsOnlyQueue(), notifier=notifier)
    try:
        client = create_app(container=c).test_client()
        install(c, SHOP)
        assert apply(client).status_code == 200
        assert "We already have your application" in apply(client).text
        [aid] = [r["id"] for r in rows(c, applications)]
        vote = api(client, "POST", f"/applications/{aid}/votes", json={"vote": "approve"})
        assert vote.status_code == 200 and vote.get_json()["status"] == "approved"
        assert vote.get_json()["ambassador"]["code"] == "AVAM"
        assert (
            api(client, "POST", f"/applications/{aid}/reject", json={"reason": "x"}).status_code
            == 409
        )
        assert [n["status"] for n in rows(c, notifications)] == ["sent", "sent"]
        assert len(notifier.sent) == 2
    finally:
        job_functions.configure(None)
        c.close()


def test_an_approval_needs_no_body_but_a_body_must_be_json(client, env, container):
    [first, second] = submit_pending(client, container, 2)
    assert api(client, "POST", f"/applications/{first}/approve").status_code == 200
    garbage = api(client, "POST", f"/applications/{second}/approve", data="tier=1")
    assert garbage.status_code == 400 and garbage.get_json()["error"]["code"] == "invalid_json"
    assert api(client, "POST", f"/applications/{second}/votes").status_code == 400


def test_an_erased_applicant_leaves_no_personal_data_in_applications_or_the_outbox(
    client, env, container, queue
):
    queue.hold = True  # a message still waiting must never go out after erasure
    configure(container, reapply_after_days=0)
    assert apply(client, **{"social.instagram": "ava.m"}).status_code == 200
    [aid] = [r["id"] for r in rows(container, applications)]
    api(client, "POST", f"/applications/{aid}/votes", json={"vote": "reject", "comment": "Ava?"})
    other = apply(client, email="zoe@example.com", first_name="Zoe", ip="198.51.100.2")
    assert other.status_code == 200
    a = ambassador(container, "ava@example.com")
    with container.uow() as uow:
        assert [x.id for x in uow.applications.for_ambassador(env.id, a.id)] == [aid]
        assert uow.applications.redact_ambassador(env.id, a.id, "redacted@redacted.invalid") == 1
        assert uow.notifications.redact_to(env.id, "ava@example.com") == 1
        uow.commit()
    ava, zoe = rows(container, applications)
    assert (ava["email"], ava["answers"], ava["social"], ava["client_hash"]) == (
        "redacted@redacted.invalid",
        [],
        {},
        None,
    )
    assert zoe["email"] == "zoe@example.com" and zoe["answers"]  # nobody else's
    assert [n["to"] for n in rows(container, notifications)] == ["zoe@example.com"]
    [review] = api(client, "GET", f"/applications/{aid}").get_json()["reviews"]
    assert review["vote"] == "reject" and review["comment"] is None


def test_a_data_request_exports_an_applicants_answers_and_redact_erases_them(
    client, container, env, customers
):
    """The privacy webhooks cover applications too."""
    from datetime import UTC, datetime

    from connector.domain.webhooks import Delivery
    from connector.services import privacy

    customers.add(4242, "ann@example.com", "Ann", "Lee")
    assert apply(client, customer_id=4242).status_code == 200
    now = datetime.now(UTC)
    with container.uow() as uow:
        privacy.export_customer_data(uow, container.clock,
                                     Delivery(1, "customers/data_request", "w1", SHOP, "{}", 1,
                                              now),
                                     {"customer": {"id": 4242}, "orders_requested": []})
        uow.commit()
        export = uow.privacy_requests.list(SHOP)[0].summary
    answers = export["ambassador"]["applications"][0]["answers"]
    assert answers[0]["answer"] == GOOD["answers.why"]
    with container.uow() as uow:
        privacy.redact_customer(uow, container.clock,
                                Delivery(2, "customers/redact", "w2", SHOP, "{}", 1, now),
                                {"customer": {"id": 4242}, "orders_to_redact": []})
        uow.commit()
        a = uow.ambassadors.by_email(env.id, f"redacted-{export['ambassador']['id']}"
                                     "@redacted.invalid")
        apps = uow.applications.for_ambassador(env.id, a.id)
    assert a.first_name == "" and a.status is AmbassadorStatus.REMOVED
    assert apps and all(GOOD["answers.why"] not in q.answer for ap in apps for q in ap.answers)
