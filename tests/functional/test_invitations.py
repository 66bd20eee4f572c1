# ruff: noqa: F811 - the fixtures are shared with test_engagement (imported by name)
"""``POST /api/v1/ambassadors/invitations``: each selected ambassador gets one message through
the outbox (code, share link, a single-use sign-in link) per idempotency key; paused, applied
and removed ambassadors and other shops' ids are refused with a reason."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from connector.domain.ambassadors import AmbassadorStatus
from tests.conftest import SHOP, install_shop
from tests.functional.test_engagement import (  # noqa: F401
    api,
    c,
    client,
    clock,
    enrol,
    shop,
)
from tests.proxy import proxy_path

OTHER = "victim-shop.myshopify.com"
KEY = "click-0001-abcdef"


def outbox(c) -> list[tuple[str, str, str]]:
    with c.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text('SELECT "to", subject, body FROM notifications ORDER BY id')
            )
        ]


class _Inbox:
    """The notifier: what reached the ambassadors (the outbox forgets a link's text once sent)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, str]] = []

    def send(self, to: str, subject: str, body: str) -> None:
        self.messages.append((to, subject, body))


def test_each_ambassador_is_invited_once_per_request_with_code_and_links(c, client, shop):
    c.notifier = inbox = _Inbox()
    ann = enrol(c, shop, "Ann", "Lee", "ANN10")
    paused = enrol(c, shop, "Pat", "Paused", "PAT10", status=AmbassadorStatus.PAUSED)
    applied = enrol(c, shop, "Al", "Applied", "AL10", status=AmbassadorStatus.APPLIED)
    body = {"ambassador_ids": [ann, paused, applied, ann, 999999], "idempotency_key": KEY}
    first = api(client, "POST", "/ambassadors/invitations", body)
    assert first.status_code == 200
    assert first.get_json() == {
        "invited": 1,
        "items": [
            {"ambassador_id": ann, "outcome": "invited", "reason": None},
            {
                "ambassador_id": paused,
                "outcome": "refused",
                "reason": "paused: activate them first",
            },
            {"ambassador_id": applied, "outcome": "refused", "reason": "not approved yet"},
            {"ambassador_id": 999999, "outcome": "refused", "reason": "no such ambassador"},
        ],
    }
    [(to, subject, text)] = inbox.messages
    assert to == "ann10@example.com" and "ambassador portal" in subject
    [(_, _, kept)] = outbox(c)
    assert "login?token=" not in kept  # sent: the outbox no longer holds the sign-in link
    assert "ANN10" in text and f"https://{SHOP}/discount/ANN10?redirect=%2F" in text
    link = re.search(rf"https://{re.escape(SHOP)}/apps/ambassadors/dashboard/login\?\S+", text)
    assert link is not None

    # The same request again (double click, retry): nothing more is sent.
    again = api(client, "POST", "/ambassadors/invitations", body).get_json()
    assert again["invited"] == 0 and again["items"][0]["outcome"] == "already_invited"
    assert len(outbox(c)) == 1
    with c.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM portal_login_tokens")).scalar_one() == 1

    # The sign-in link works once, for Ann.
    token = parse_qs(urlsplit(link.group(0)).query)["token"][0]
    response = client.get(proxy_path("/proxy/dashboard/login", extra={"token": token}))
    assert response.status_code == 303
    assert (
        client.get(proxy_path("/proxy/dashboard/login", extra={"token": token})).status_code == 400
    )

    # A new request (a new key) invites again.
    fresh = api(
        client,
        "POST",
        "/ambassadors/invitations",
        {"ambassador_ids": [ann], "idempotency_key": "click-0002-abcdef"},
    )
    assert fresh.get_json()["invited"] == 1 and len(outbox(c)) == 2


def test_another_shops_ambassador_is_refused_and_gets_nothing(c, client, shop):
    other = install_shop(c, OTHER)
    theirs = enrol(c, other, "Vic", "Tim", "VIC10")
    response = api(
        client,
        "POST",
        "/ambassadors/invitations",
        {"ambassador_ids": [theirs], "idempotency_key": KEY},
    )
    assert response.get_json()["items"] == [
        {"ambassador_id": theirs, "outcome": "refused", "reason": "no such ambassador"}
    ]
    assert outbox(c) == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"ambassador_ids": [1]}, "invalid_idempotency_key"),
        ({"ambassador_ids": [1], "idempotency_key": "short"}, "invalid_idempotency_key"),
        (
            {"ambassador_ids": [1], "idempotency_key": "bad key with spaces"},
            "invalid_idempotency_key",
        ),
        ({"ambassador_ids": [], "idempotency_key": KEY}, "invalid_ambassador_ids"),
        ({"ambassador_ids": ["1"], "idempotency_key": KEY}, "invalid_ambassador_ids"),
        ({"ambassador_ids": [True], "idempotency_key": KEY}, "invalid_ambassador_ids"),
        ({"ambassador_ids": [2**63], "idempotency_key": KEY}, "invalid_ambassador_ids"),
        ({"ambassador_ids": list(range(1, 202)), "idempotency_key": KEY}, "invalid_ambassador_ids"),
    ],
)
def test_bad_requests_are_422(c, client, shop, body, code):
    response = api(client, "POST", "/ambassadors/invitations", body)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == code
