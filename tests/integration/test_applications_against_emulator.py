"""Applications end to end over real HTTP: the storefront proxy (signed like Shopify), the
signed-in customer looked up in the Shopify emulator, the committee's votes, and a code that
works at the emulator's checkout."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import SHOP
from tests.proxy import form_token, proxy_path


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject, body))


@pytest.fixture
def installed(live):
    live.install()
    live.container.notifier = RecordingNotifier()
    return live


def storefront(live, method, customer_id=None, **kwargs):
    """A request as Shopify's app proxy forwards it (fresh signature each time)."""
    url = f"{live.url}{proxy_path(customer_id=customer_id)}"
    return httpx.request(method, url, timeout=60, **kwargs)


def apply(live, customer_id=None, ip="203.0.113.20", **fields):
    token = form_token(storefront(live, "GET", customer_id).text)
    return storefront(
        live,
        "POST",
        customer_id,
        data={"form_token": token, **fields},
        headers={"X-Forwarded-For": f"{ip}, 23.227.38.65"},
    )


def as_reviewer(live, user_id, method, path, **kwargs):
    token = live.emulator.mint_session_token(SHOP, user_id=user_id)
    return httpx.request(
        method,
        f"{live.url}/api/v1{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
        **kwargs,
    )


def buy_with(live, code):
    return live.emulator.checkout(
        SHOP,
        customer_email="friend@example.com",
        discount_codes=[code],
        line_items=[{"title": "Tee", "price": "40.00", "quantity": 1}],
    )


def test_a_signed_in_customer_applies_two_reviewers_approve_and_the_code_works(installed):
    person = installed.emulator.add_customer(
        SHOP, email="noor@example.com", first_name="Noor", last_name="Haddad"
    )
    settings = installed.api("PATCH", "/program/settings", json={"approvals_required": 2})
    assert settings.status_code == 200

    response = apply(
        installed,
        person["id"],
        **{"answers.why": "I bring your bags everywhere.", "social.instagram": "@noor.h"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/liquid"
    assert "Thank you, Noor!" in response.text

    [item] = installed.api("GET", "/applications", params={"status": "pending"}).json()["items"]
    assert item["customer_id"] == person["admin_graphql_api_id"]
    assert (item["email"], item["first_name"], item["last_name"]) == (
        "noor@example.com",
        "Noor",
        "Haddad",
    )
    assert item["social"] == {"instagram": "noor.h"}

    first = as_reviewer(
        installed, 101, "POST", f"/applications/{item['id']}/votes", json={"vote": "approve"}
    )
    assert first.status_code == 200 and first.json()["status"] == "pending"
    second = as_reviewer(
        installed, 102, "POST", f"/applications/{item['id']}/votes", json={"vote": "approve"}
    )
    body = second.json()
    assert body["status"] == "approved" and body["decided_by"] == "merchant:102"
    assert [r["reviewer"] for r in body["reviews"]] == ["merchant:101", "merchant:102"]
    code = body["ambassador"]["code"]
    assert code == "NOOR" and body["ambassador"]["code_state"] == "active"

    order = buy_with(installed, code.lower())
    assert [d["code"].upper() for d in order["discount_codes"]] == [code]
    assert order["total_discounts"] == "4.00"

    [received, welcome] = installed.container.notifier.sent
    assert received[0] == "noor@example.com" and "received" in received[1]
    assert welcome[0] == "noor@example.com"
    assert code in welcome[2] and f"https://{SHOP}/discount/{code}?redirect=%2F" in welcome[2]

    # Back on the storefront: an ambassador now, no form
    page = storefront(installed, "GET", person["id"])
    assert "You are already an ambassador" in page.text and "form_token" not in page.text


def test_a_rejected_guest_is_told_why_and_when_they_may_apply_again(installed):
    installed.api("PATCH", "/program/settings", json={"reapply_after_days": 45})
    assert (
        apply(
            installed,
            first_name="Sam",
            email="sam@example.com",
            **{"answers.why": "Discount please"},
        ).status_code
        == 200
    )
    [item] = installed.api("GET", "/applications").json()["items"]
    rejected = installed.api(
        "POST", f"/applications/{item['id']}/reject", json={"reason": "We look for creators."}
    )
    assert rejected.status_code == 200 and rejected.json()["ambassador"]["status"] == "removed"
    reapply_on = rejected.json()["reapply_on"][:10]
    _, _subject, text = installed.container.notifier.sent[-1]
    assert "Reason: We look for creators." in text and reapply_on in text

    again = apply(
        installed,
        ip="198.51.100.3",
        first_name="Sam",
        email="sam@example.com",
        **{"answers.why": "Please?"},
    )
    assert again.status_code == 409 and f'datetime="{reapply_on}"' in again.text
    assert len(installed.api("GET", "/applications").json()["items"]) == 1


def test_auto_approve_gives_a_guest_a_working_code_at_once(installed):
    installed.api("PATCH", "/program/settings", json={"auto_approve": True})
    response = apply(
        installed,
        first_name="Iris",
        last_name="Berg",
        email="iris@example.com",
        **{"answers.why": "Love it"},
    )
    assert response.status_code == 200 and "Welcome aboard, Iris!" in response.text
    [item] = installed.api("GET", "/applications").json()["items"]
    assert item["status"] == "approved"
    a = installed.api("GET", f"/ambassadors/{item['ambassador_id']}").json()
    assert a["status"] == "active" and a["code_state"] == "active"
    assert buy_with(installed, a["code"])["discount_codes"][0]["code"].upper() == a["code"]
