"""The issue's "done when", end to end over HTTP: Shopify emulator + Salesforce emulator + the
app. Connecting an org, enrolling an ambassador and attributing an order puts the right values
on the right existing Contact (no duplicate) by the next scheduled sync, through an expired
session on the way."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug.serving import make_server

from adapters.bootstrap import bootstrap
from adapters.queue.inprocess import InProcessJobQueue
from adapters.salesforce.emulator import SalesforceEmulator
from adapters.salesforce.emulator import serve_in_thread as serve_salesforce
from entrypoints import jobs
from tests.conftest import API_KEY, API_SECRET, SHOP, Live, make_settings


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def both(tmp_path: Path, db_url: str) -> Iterator[tuple[Live, SalesforceEmulator]]:
    from adapters.shopify.emulator import ShopifyEmulator, serve_in_thread
    from entrypoints.wsgi import create_app

    port = _port()
    app_url = f"http://127.0.0.1:{port}"
    shopify = ShopifyEmulator(api_key=API_KEY, api_secret=API_SECRET, app_url=app_url)
    shopify.add_shop(SHOP, currency="USD", name="Test Shop")
    shopify_server, shopify_url = serve_in_thread(shopify)
    org = SalesforceEmulator(
        "sf-id",
        "sf-secret",
        redirect_uris=[f"{app_url}/salesforce/callback"],
        auto_approve=True,
        ambassador_fields=True,
        rotate_refresh_tokens=True,
    )
    org_server, org_url = serve_salesforce(org)
    settings = make_settings(
        tmp_path,
        db_url,
        SHOPIFY_API_BASE_URL=shopify_url,
        APP_URL=app_url,
        SALESFORCE_CLIENT_ID="sf-id",
        SALESFORCE_CLIENT_SECRET="sf-secret",
        SALESFORCE_LOGIN_URL=org_url,
    )
    container = bootstrap(settings, jobs=InProcessJobQueue(threaded=False))
    app = create_app(container=container)
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Live(container, shopify, app_url, SHOP), org
    server.shutdown()
    shopify_server.shutdown()
    org_server.shutdown()
    jobs.configure(None)
    container.close()


def test_enrolled_and_credited_ambassador_lands_on_their_existing_contact(both: Any) -> None:
    live, org = both
    live.install()
    ava = org.add_contact(FirstName="Ava", LastName="Martin (CRM)", Email="Ava@Example.com")
    authorize = live.api("POST", "/salesforce/connect").json()["authorize_url"]
    back = httpx.get(authorize, follow_redirects=False, timeout=30).headers["Location"]
    assert httpx.get(back, timeout=60).status_code == 200

    body = live.api(
        "POST",
        "/ambassadors",
        json={"email": "ava@example.com", "first_name": "Ava", "last_name": "Martin"},
    ).json()
    contact = org.contact(ava["Id"])  # the enrolment's own sync (debounced job) wrote it
    assert contact["Ambassador_Id__c"] == f"{SHOP}:{body['id']}"
    assert contact["Ambassador_Code__c"] == "AVAM" and contact["Ambassador_Orders__c"] == 0

    org.expire_sessions()  # the stored access token dies before the order's sync
    live.emulator.checkout(
        SHOP,
        customer_email="friend@example.com",
        discount_codes=["AVAM"],
        line_items=[
            {"title": "Rain Shell", "price": "100.00", "quantity": 2},
            {"title": "Wool Socks", "price": "20.00", "quantity": 1},
        ],
    )
    jobs.sync_salesforce()  # the minute's scheduled tick (ledger changes)
    contact = org.contact(ava["Id"])
    assert contact["Ambassador_Orders__c"] == 1
    assert float(contact["Ambassador_Revenue__c"]) == 198.0
    assert float(contact["Ambassador_Rewards_Earned__c"]) == 19.8
    assert float(contact["Ambassador_Rewards_Paid__c"]) == 0.0
    assert contact["Ambassador_Status__c"] == "active"
    assert contact["Ambassador_Referral_URL__c"] == f"https://{SHOP}/discount/AVAM?redirect=%2F"
    assert contact["Ambassador_Last_Referral__c"] and contact["Ambassador_Since__c"]
    assert contact["LastName"] == "Martin (CRM)"  # the CRM's own fields are not ours
    assert len(org.contacts()) == 1  # matched, never duplicated
    assert any(r.get("grant_type") == "refresh_token" for r in org.token_requests())
    state = live.api("GET", "/salesforce").json()
    assert state["records"] == {"synced": 1, "retry": 0, "parked": 0}
