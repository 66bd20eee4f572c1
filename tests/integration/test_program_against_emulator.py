"""The ambassador program end to end: enrol, codes in Shopify, lifecycle, drift, bulk."""

from __future__ import annotations

import pytest

from adapters.shopify.discounts import CREATE_DISCOUNT, discount_input
from connector.domain.program import FriendDiscount
from connector.services import codes
from tests.conftest import SHOP


@pytest.fixture
def installed(live):
    live.install()
    return live


def customer(live, first="Ava", last="Martin", email=None, **kwargs):
    email = email or f"{first}.{last}@example.com".lower()
    return live.emulator.add_customer(SHOP, email=email, first_name=first, last_name=last, **kwargs)


def enrol(live, **body):
    return live.api("POST", "/ambassadors", json=body)


def buy_with(live, code, email="friend@example.com"):
    return live.emulator.checkout(
        SHOP,
        customer_email=email,
        discount_codes=[code],
        line_items=[{"title": "Tee", "price": "40.00", "quantity": 1}],
    )


def token(live):
    return live.container.access_token(SHOP)


def test_enrolling_a_customer_issues_a_working_code_in_shopify(installed):
    person = customer(installed)
    response = enrol(installed, customer_id=person["admin_graphql_api_id"])
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "active" and body["code"] == "AVAM"  # names shorter than 4 get
    # their surname's initial (a 3-letter code is too easy to guess)
    assert body["customer_id"] == person["admin_graphql_api_id"]
    assert body["share_url"] == f"https://{SHOP}/discount/AVAM?redirect=%2F"
    assert set(body["stats"]) >= {"attributed_orders", "attributed_revenue", "currency", "rewards"}
    fresh = installed.api("GET", f"/ambassadors/{body['id']}").json()
    assert fresh["code_state"] == "active"
    order = buy_with(installed, "avam")  # any case works at checkout
    assert [d["code"].upper() for d in order["discount_codes"]] == ["AVAM"]
    assert order["total_discounts"] == "4.00"


def test_enrolling_the_same_customer_twice_gives_the_existing_ambassador_and_no_second_code(
    installed,
):
    person = customer(installed)
    first = enrol(installed, customer_id=person["admin_graphql_api_id"]).json()
    again = enrol(installed, customer_id=str(person["id"]))
    by_email = enrol(installed, email=person["email"].upper(), first_name="Ava", last_name="M")
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert by_email.status_code == 200 and by_email.json()["id"] == first["id"]
    codes_in_shopify = installed.container.discounts.discount_codes(
        SHOP, token(installed), fresh_discount(installed, first["id"])
    )
    assert list(codes_in_shopify) == ["AVAM"]


def fresh_discount(live, ambassador_id):
    with live.container.uow() as uow:
        shop = uow.shops.get(SHOP)
        return uow.ambassadors.get(shop.id, ambassador_id).discount_gid


def test_a_code_taken_in_shopify_moves_to_the_next_candidate_and_says_so(installed):
    c = installed.container
    c.discounts._gql.execute(
        SHOP,
        token(installed),
        CREATE_DISCOUNT,
        {  # someone else's code
            "input": discount_input(FriendDiscount(), "Summer sale", "avam")
        },
    )
    body = enrol(installed, email="ava@example.com", first_name="Ava", last_name="Martin").json()
    fresh = installed.api("GET", f"/ambassadors/{body['id']}").json()
    assert fresh["code"] == "AVAMARTIN" and fresh["code_state"] == "active"
    history = installed.api("GET", f"/ambassadors/{body['id']}/history").json()["items"]
    assert any(
        h["kind"] == "code" and h["before"] == "AVAM" and h["after"] == "AVAMARTIN" for h in history
    )
    assert buy_with(installed, "avamartin")["discount_codes"][0]["code"].upper() == "AVAMARTIN"


def test_pausing_removes_the_code_from_shopify_and_reactivating_brings_it_back(installed):
    body = enrol(installed, email="leo@example.com", first_name="Leo", last_name="Silva").json()
    paused = installed.api(
        "POST",
        f"/ambassadors/{body['id']}/status",
        json={"status": "paused", "reason": "on holiday"},
    )
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert installed.api("GET", f"/ambassadors/{body['id']}").json()["code_state"] == "inactive"
    with pytest.raises(Exception, match=r"(?i)code|discount"):
        buy_with(installed, "LEOS")
    back = installed.api("POST", f"/ambassadors/{body['id']}/status", json={"status": "active"})
    assert back.json()["code"] == "LEOS"
    assert installed.api("GET", f"/ambassadors/{body['id']}").json()["code_state"] == "active"
    assert buy_with(installed, "leos")["discount_codes"][0]["code"].upper() == "LEOS"
    kinds = [
        (h["before"], h["after"])
        for h in installed.api("GET", f"/ambassadors/{body['id']}/history").json()["items"]
        if h["kind"] == "status"
    ]
    assert kinds == [("active", "paused"), ("paused", "active")]


def test_invalid_transitions_are_409(installed):
    body = enrol(installed, email="kai@example.com", first_name="Kai", last_name="Ito").json()
    response = installed.api(
        "POST", f"/ambassadors/{body['id']}/status", json={"status": "applied"}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"


def test_drift_a_code_deleted_in_shopify_is_found_and_re_added(installed):
    body = enrol(installed, email="mia@example.com", first_name="Mia", last_name="Nguyen").json()
    c = installed.container
    with c.uow() as uow:
        a = uow.ambassadors.get(uow.shops.get(SHOP).id, body["id"])
    # someone deletes the code in the Shopify admin
    c.discounts.delete_redeem_codes(SHOP, token(installed), a.discount_gid, [a.redeem_code_gid])
    with pytest.raises(Exception, match=r"(?i)code|discount"):
        buy_with(installed, "MIAN")
    report = codes.check_drift(c.uow, c.discounts, c.access_token, c.clock, SHOP)
    assert report.missing == ["MIAN"]
    synced = codes.sync_codes(c.uow, c.discounts, c.access_token, c.clock, SHOP)
    assert synced.added == 1
    assert buy_with(installed, "mian")["discount_codes"][0]["code"].upper() == "MIAN"


@pytest.mark.parametrize(
    "code,error",
    [
        ("has space", "invalid_code"),
        ("ÉCOLE", "invalid_code"),
        ("X" * 33, "invalid_code"),
        ("ab", "invalid_code"),
    ],
)
def test_bad_codes_are_rejected_with_a_clear_message(installed, code, error):
    body = enrol(installed, email="sam@example.com", first_name="Sam", last_name="Larsen").json()
    response = installed.api("POST", f"/ambassadors/{body['id']}/code", json={"code": code})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == error
    assert response.json()["error"]["message"]


def test_a_chosen_code_is_normalised_and_the_old_one_retired_in_shopify(installed):
    body = enrol(installed, email="zoe@example.com", first_name="Zoe", last_name="Haddad").json()
    response = installed.api("POST", f"/ambassadors/{body['id']}/code", json={"code": " zoe-20 "})
    assert response.status_code == 200 and response.json()["code"] == "ZOE-20"
    assert installed.api("GET", f"/ambassadors/{body['id']}").json()["code_state"] == "active"
    assert buy_with(installed, "Zoe-20")["discount_codes"][0]["code"].upper() == "ZOE-20"
    with pytest.raises(Exception, match=r"(?i)code|discount"):
        buy_with(installed, "ZOEH")
    other = enrol(installed, email="z2@example.com", first_name="Zed", last_name="Q").json()
    taken = installed.api("POST", f"/ambassadors/{other['id']}/code", json={"code": "zoe-20"})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "code_taken"


@pytest.mark.parametrize(
    "body,status,code",
    [
        ({}, 422, "missing_field"),
        ({"customer_id": "gid://shopify/Order/1"}, 422, "invalid_customer_id"),
        ({"customer_id": "gid://shopify/Customer/999999"}, 404, "customer_not_found"),
        ({"email": "not-an-email"}, 422, "invalid_email"),
        ({"email": 5}, 422, "invalid_field"),
    ],
)
def test_bad_enrolments_are_4xx_and_create_nothing(installed, body, status, code):
    response = enrol(installed, **body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert installed.api("GET", "/ambassadors").json()["items"] == []


def test_throttling_during_issuance_is_paced_never_failed(installed):
    installed.emulator.set_fault("throttled", count=3)
    body = enrol(installed, email="noah@example.com", first_name="Noah", last_name="Kowalski")
    assert body.status_code == 201
    assert installed.api("GET", f"/ambassadors/{body.json()['id']}").json()["code_state"] == (
        "active"
    )
    assert installed.container.discounts._gql.throttled >= 3


def test_top_customers_become_50_active_ambassadors_in_one_action(installed):
    for i in range(70):
        customer(
            installed,
            first=f"Buyer{i}",
            last="Test",
            orders_count=i % 9 + 1,
            amount_spent=f"{(i * 37) % 1000}.00",
        )
    customer(installed, first="Nobody", last="Yet", orders_count=0)
    top = installed.api("GET", "/candidates", params={"limit": 50}).json()["items"]
    assert len(top) == 50
    assert top[0]["score"] >= top[-1]["score"]
    started = installed.api(
        "POST", "/ambassadors/bulk", json={"customer_ids": [t["customer_id"] for t in top]}
    )
    assert started.status_code == 202
    task = installed.api("GET", f"/tasks/{started.json()['task_id']}").json()
    assert task["status"] == "done" and task["done"] == 50 and task["failed"] == 0
    listing = installed.api("GET", "/ambassadors", params={"status": "active", "limit": 200})
    items = listing.json()["items"]
    assert len(items) == 50 and all(i["code_state"] == "active" for i in items)
    assert len({i["code"] for i in items}) == 50
    again = installed.api("GET", "/candidates", params={"limit": 50}).json()["items"]
    assert {t["customer_id"] for t in again}.isdisjoint({t["customer_id"] for t in top})


def test_the_shopify_customer_is_tagged_while_an_ambassador(installed):
    person = customer(installed, first="Omar", last="Larsen")
    body = enrol(installed, customer_id=person["admin_graphql_api_id"]).json()
    tags = installed.emulator.shop(SHOP).customers[person["id"]].tags
    assert "ambassador" in tags
    installed.api("POST", f"/ambassadors/{body['id']}/status",
                  json={"status": "removed", "reason": "left the program"})
    assert "ambassador" not in installed.emulator.shop(SHOP).customers[person["id"]].tags
