"""Salesforce end to end over HTTP: the app served on a loopback port, the Salesforce emulator
(``adapters/salesforce/emulator``) on another, real PostgreSQL; the merchant connects through
the API (OAuth web server flow with PKCE), the browser follows the emulator's redirect to the
app's callback, and the backfill, later syncs and every listed fault run through the real
HTTP client (``adapters/salesforce/client.py``)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from werkzeug.serving import make_server

from adapters.bootstrap import Container, bootstrap
from adapters.queue.inprocess import InProcessJobQueue
from adapters.salesforce.client import SalesforceGateway
from adapters.salesforce.emulator import SalesforceEmulator, serve_in_thread
from connector.domain.salesforce import EXTERNAL_ID, FIELDS
from connector.services import salesforce
from entrypoints import jobs
from tests.conftest import SHOP, install_shop, make_settings
from tests.salesforce_fakes import enrol, set_stats
from tests.tokens import session_token

CLIENT_ID, CLIENT_SECRET = "sf-client-id", "sf-client-secret"


@dataclass
class SfLive:
    container: Container
    emulator: SalesforceEmulator
    url: str

    def api(self, method: str, path: str, shop: str = SHOP, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.url}/api/v1{path}",
            timeout=60,
            headers={"Authorization": f"Bearer {session_token(shop)}"},
            **kwargs,
        )

    def connect(self) -> httpx.Response:
        """The merchant's whole connect: the API gives the authorize URL, the browser opens it
        (the emulator approves at once and redirects), then follows to the app's callback."""
        response = self.api("POST", "/salesforce/connect")
        assert response.status_code == 200, response.text
        authorize = response.json()["authorize_url"]
        redirect = httpx.get(authorize, follow_redirects=False, timeout=30)
        assert redirect.status_code in (302, 303), redirect.text[:300]
        return httpx.get(redirect.headers["Location"], timeout=120)

    def sync(self, **kwargs: Any) -> salesforce.SyncReport:
        c = self.container
        return salesforce.sync(c.uow, c.salesforce, c.clock, SHOP, **kwargs)

    def state(self) -> dict[str, Any]:
        response = self.api("GET", "/salesforce")
        assert response.status_code == 200, response.text
        return response.json()

    def calls(self) -> int:
        return self.emulator.api_call_count()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    return {"ambassador_fields": True}


@pytest.fixture
def sf_live(tmp_path: Path, db_url: str, emulator_options: dict[str, Any]) -> Iterator[SfLive]:
    from entrypoints.wsgi import create_app

    port = _free_port()
    app_url = f"http://127.0.0.1:{port}"
    emulator = SalesforceEmulator(
        CLIENT_ID,
        CLIENT_SECRET,
        redirect_uris=[f"{app_url}/salesforce/callback"],
        auto_approve=True,
        **emulator_options,
    )
    emu_server, emu_url = serve_in_thread(emulator)
    settings = make_settings(
        tmp_path,
        db_url,
        APP_URL=app_url,
        SALESFORCE_CLIENT_ID=CLIENT_ID,
        SALESFORCE_CLIENT_SECRET=CLIENT_SECRET,
        SALESFORCE_LOGIN_URL=emu_url,
    )
    container = bootstrap(
        settings,
        jobs=InProcessJobQueue(threaded=False),
        salesforce=SalesforceGateway(CLIENT_ID, CLIENT_SECRET, emu_url, bulk_poll=0.05),
    )
    app = create_app(container=container)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    install_shop(container)
    yield SfLive(container, emulator, app_url)
    server.shutdown()
    emu_server.shutdown()
    jobs.configure(None)
    container.close()


def test_connect_with_pkce_then_the_backfill_fills_existing_contacts_without_duplicates(sf_live):
    emu = sf_live.emulator
    kept = emu.add_contact(LastName="Kept", Email="AMB0@example.com")
    old, new = (emu.add_contact(LastName=f"Dup{i}", Email="amb1@example.com") for i in range(2))
    ids = enrol(sf_live.container, 3)
    set_stats(sf_live.container, ids[0], orders=2, revenue="99.90", paid="5")

    authorize = sf_live.api("POST", "/salesforce/connect").json()["authorize_url"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 43 and "code_verifier" not in authorize
    callback = sf_live.connect()
    assert callback.status_code == 200 and "connected" in callback.text

    a0 = emu.contact(kept["Id"])
    assert a0["Ambassador_Id__c"] == f"{SHOP}:{ids[0]}" and a0["LastName"] == "Kept"
    assert a0["Ambassador_Orders__c"] == 2 and float(a0["Ambassador_Revenue__c"]) == 99.9
    assert a0["Ambassador_Status__c"] == "active" and a0["Ambassador_Code__c"] == "CODE0"
    # Two Contacts share amb1's email: the most recently modified one got the fields.
    dup = [c for c in emu.contacts_by_email("amb1@example.com") if c.get(EXTERNAL_ID)]
    assert len(dup) == 1 and dup[0]["Id"] in {old["Id"], new["Id"]}
    created = emu.contact_by_external_id(f"{SHOP}:{ids[2]}")
    assert created is not None and created["Email"] == "amb2@example.com"
    assert len(emu.contacts()) == 4  # 3 seeded + 1 created: no duplicate

    state = sf_live.state()
    assert state["status"] == "connected" and state["fields"]["ok"]
    assert state["records"]["synced"] == 3 and state["last_sync"]["written"] == 3
    assert state["budget"]["used"] and state["budget"]["limit"] == 15000

    # Nothing changed: no API call. One ambassador changed: one collection call.
    before = sf_live.calls()
    assert sf_live.sync().calls == 0 and sf_live.calls() == before
    set_stats(sf_live.container, ids[2], orders=5, revenue="250")
    report = sf_live.sync()
    assert (report.written, report.calls) == (1, 1) and sf_live.calls() == before + 1
    assert emu.contact_by_external_id(f"{SHOP}:{ids[2]}")["Ambassador_Orders__c"] == 5


def test_the_callback_refuses_reused_unknown_and_denied_states(sf_live):
    authorize = sf_live.api("POST", "/salesforce/connect").json()["authorize_url"]
    location = httpx.get(authorize, follow_redirects=False, timeout=30).headers["Location"]
    assert httpx.get(location, timeout=60).status_code == 200
    replay = httpx.get(location, timeout=60)
    assert replay.status_code == 400 and "already used" in replay.text
    forged = httpx.get(
        f"{sf_live.url}/salesforce/callback", params={"state": "x" * 43, "code": "c"}, timeout=30
    )
    assert forged.status_code == 400
    denied = httpx.get(
        f"{sf_live.url}/salesforce/callback",
        params={"error": "access_denied", "state": "y"},
        timeout=30,
    )
    assert denied.status_code == 400
    assert httpx.get(f"{sf_live.url}/salesforce/callback", timeout=30).status_code == 400


def test_every_route_is_scoped_to_the_signed_in_shop(sf_live):
    install_shop(sf_live.container, "other-shop.myshopify.com")
    enrol(sf_live.container, 1)
    sf_live.connect()
    other = sf_live.api("GET", "/salesforce", shop="other-shop.myshopify.com").json()
    assert other["status"] == "not_connected" and other["records"]["synced"] == 0
    assert sf_live.api(
        "POST", "/salesforce/disconnect", shop="other-shop.myshopify.com"
    ).json() == {"disconnected": False}
    assert sf_live.state()["status"] == "connected"
    assert sf_live.api("GET", "/salesforce").status_code == 200
    unauthenticated = httpx.get(f"{sf_live.url}/api/v1/salesforce", timeout=30)
    assert unauthenticated.status_code == 401
    bad = sf_live.api("GET", "/salesforce/provision/not-an-id!")
    assert bad.status_code in (404, 422) and "error" in bad.json()


def test_an_expired_session_mid_sync_is_refreshed_and_the_sync_completes(sf_live):
    sf_live.connect()
    ids = enrol(sf_live.container, 450, start=10)
    calls = {"n": 0}
    session = sf_live.container.salesforce

    class Expiring:
        """Expire the org's sessions after the first write call of the sync."""

        def __getattr__(self, name: str) -> Any:
            return getattr(session, name)

        def session(self, instance_url: str, token: str) -> Any:
            real = session.session(instance_url, token)
            upsert = real.upsert

            def upsert_then_expire(records: Any) -> Any:
                result = upsert(records)
                calls["n"] += 1
                if calls["n"] == 1:
                    sf_live.emulator.expire_sessions()
                return result

            real.upsert = upsert_then_expire
            return real

    c = sf_live.container
    report = salesforce.sync(c.uow, Expiring(), c.clock, SHOP)
    assert report.status == "done" and report.written == 450
    assert all(sf_live.emulator.contact_by_external_id(f"{SHOP}:{i}") for i in ids)
    assert any(r.get("grant_type") == "refresh_token" for r in sf_live.emulator.token_requests())


def test_a_revoked_refresh_token_asks_the_merchant_to_reconnect(sf_live):
    sf_live.connect()
    enrol(sf_live.container, 1)
    sf_live.emulator.expire_sessions()
    sf_live.emulator.revoke_refresh_token()
    assert sf_live.sync().status == "needs_reconnect"
    state = sf_live.state()
    assert state["status"] == "needs_reconnect" and "connect again" in state["message"]
    # Connecting again recovers.
    assert sf_live.connect().status_code == 200
    assert sf_live.state()["status"] == "connected"


@pytest.mark.parametrize("emulator_options", [{"ambassador_fields": False}])
def test_missing_fields_are_reported_then_provisioned_through_the_metadata_api(sf_live):
    enrol(sf_live.container, 2)
    sf_live.connect()
    state = sf_live.state()
    assert not state["fields"]["ok"] and set(state["fields"]["missing"]) == set(FIELDS)
    assert sf_live.emulator.contacts() == []
    deploy = sf_live.api("POST", "/salesforce/provision")
    assert deploy.status_code == 202, deploy.text
    status = sf_live.api("GET", f"/salesforce/provision/{deploy.json()['deploy_id']}").json()
    assert status["done"] and status["success"], status
    assert status["fields"]["ok"], status["fields"]
    assert sf_live.sync().written == 2


def test_fields_not_writable_get_the_permission_set_assigned_at_connect(sf_live):
    sf_live.emulator.unassign_permission_set()
    sf_live.connect()
    fields = sf_live.state()["fields"]
    assert fields["ok"] and fields["permission_set_assigned"] is True


def test_a_validation_rule_rejecting_some_of_a_batch_of_200_parks_them(sf_live):
    sf_live.connect()
    ids = enrol(sf_live.container, 200, start=1000)
    rejected = {f"CODE{i}" for i in range(1000, 1200, 10)}
    sf_live.emulator.add_validation_rule(
        lambda r: r.get("Ambassador_Code__c") in rejected,
        "Codes ending in 0 are reserved",
        field="Ambassador_Code__c",
    )
    before = sf_live.calls()
    report = sf_live.sync()
    assert (report.written, report.parked) == (180, 20)
    assert sf_live.calls() - before == 2  # one email query, one collection upsert
    state = sf_live.state()
    assert state["records"]["parked"] == 20
    assert {p["message"] for p in state["parked"]} == {"Codes ending in 0 are reserved"}
    sf_live.emulator.clear_validation_rules()
    assert sf_live.api("POST", "/salesforce/retry").json() == {"retried": 20}
    assert sf_live.state()["records"]["parked"] == 0
    assert all(sf_live.emulator.contact_by_external_id(f"{SHOP}:{i}") for i in ids)


def test_a_spent_daily_pool_pauses_the_sync_without_retrying(sf_live):
    sf_live.connect()
    enrol(sf_live.container, 3)
    sf_live.emulator.exhaust_api_pool()
    before = sf_live.calls()
    assert sf_live.sync().status == "paused"
    assert sf_live.calls() - before <= 1
    assert sf_live.sync().status == "paused" and sf_live.calls() - before <= 1
    state = sf_live.state()
    assert state["budget"]["paused"] and "pool" in state["budget"]["pause_reason"]


def test_the_sync_stops_at_the_budget_share(sf_live):
    sf_live.connect()
    enrol(sf_live.container, 3)
    sf_live.emulator.set_api_usage(12_100)  # of 15,000: above 80 %
    report = sf_live.sync()
    assert report.status == "paused" and report.written == 0 and report.calls == 1


def test_salesforce_down_leaves_everything_due_then_catches_up(sf_live):
    sf_live.connect()
    ids = enrol(sf_live.container, 2)
    sf_live.emulator.set_down(True)
    report = sf_live.sync()
    assert report.status == "unavailable" and report.written == 0
    assert "error" not in sf_live.state() or sf_live.state()["last_error"]
    sf_live.emulator.set_down(False)
    assert sf_live.sync().written == 2
    assert all(sf_live.emulator.contact_by_external_id(f"{SHOP}:{i}") for i in ids)


def test_a_locked_row_is_retried_not_parked(sf_live):
    sf_live.connect()
    enrol(sf_live.container, 3)
    sf_live.emulator.fail_next_records_with_lock(1)
    report = sf_live.sync()
    assert (report.written, report.retrying, report.parked) == (2, 1, 0)


def test_large_backfills_use_bulk_api_2(sf_live):
    sf_live.connect()
    ids = enrol(sf_live.container, 60, start=500)
    report = sf_live.sync(bulk_threshold=50)
    assert report.bulk_jobs == 1 and report.written == 60, report.figures()
    assert all(sf_live.emulator.contact_by_external_id(f"{SHOP}:{i}") for i in ids)


def test_disconnect_revokes_the_token(sf_live):
    sf_live.connect()
    assert sf_live.api("POST", "/salesforce/disconnect").json() == {"disconnected": True}
    assert sf_live.state()["status"] == "disconnected"
    enrol(sf_live.container, 1)
    assert sf_live.sync().status == "not_connected"


def test_without_salesforce_credentials_the_routes_say_so_and_nothing_breaks(client, container):
    install_shop(container)
    headers = {"Authorization": f"Bearer {session_token()}"}
    state = client.get("/api/v1/salesforce", headers=headers)
    assert state.status_code == 200
    assert state.get_json()["enabled"] is False and state.get_json()["status"] == "not_connected"
    for path in (
        "/salesforce/connect",
        "/salesforce/sync",
        "/salesforce/retry",
        "/salesforce/fields/check",
        "/salesforce/provision",
    ):
        response = client.post(f"/api/v1{path}", headers=headers)
        assert response.status_code == 409, path
        assert response.get_json()["error"]["code"] == "salesforce_disabled"
    callback = client.get("/salesforce/callback", query_string={"state": "s", "code": "c"})
    assert callback.status_code == 409
    page = client.get(
        "/app/salesforce",
        query_string={"shop": SHOP, "host": "aG9zdA", "id_token": session_token()},
    )
    assert page.status_code == 200 and "Salesforce" in page.get_data(as_text=True)


def test_a_customers_redact_webhook_clears_the_ambassador_fields_on_the_contact(sf_live):
    import json

    from tests.conftest import fixture_json, webhook_headers

    emu = sf_live.emulator
    kept = emu.add_contact(LastName="Kept", Email="amb0@example.com", Phone="555-0100")
    sf_live.connect()
    enrol(sf_live.container, 1)  # customer id 1000
    assert sf_live.sync().written == 1
    assert emu.contact(kept["Id"])["Ambassador_Code__c"] == "CODE0"
    payload = fixture_json("customers_redact.json")
    payload.update(shop_domain=SHOP, customer={"id": 1000}, orders_to_redact=[])
    raw = json.dumps(payload).encode()
    response = httpx.post(
        f"{sf_live.url}/webhooks/shopify",
        content=raw,
        headers=webhook_headers("customers/redact", raw),
        timeout=30,
    )
    assert response.status_code == 200
    assert sf_live.api("POST", "/salesforce/sync").status_code == 202  # or the next minute
    contact = emu.contact(kept["Id"])
    assert all(contact.get(f) is None for f in FIELDS)
    assert contact["LastName"] == "Kept" and contact["Phone"] == "555-0100"  # not ours: kept
    assert sf_live.sync().calls == 0


def test_the_cli_backfills_with_a_progress_bar(sf_live):
    from click.testing import CliRunner

    from entrypoints.cli import main

    sf_live.connect()
    ids = enrol(sf_live.container, 30, start=300)
    settings = sf_live.container.settings
    env = {
        "APP_ENV": "test",
        "DATABASE_URL": settings.database_url,
        "SHOPIFY_API_KEY": "test_client_id",
        "SHOPIFY_API_SECRET": "test_client_secret",
        "APP_URL": sf_live.url,
        "ENCRYPTION_KEY": settings.encryption_key,
        "SECRET_KEY": settings.secret_key,
        "INSTANCE_PATH": str(settings.instance_path),
        "REDIS_URL": "",
        "SALESFORCE_CLIENT_ID": CLIENT_ID,
        "SALESFORCE_CLIENT_SECRET": CLIENT_SECRET,
        "SALESFORCE_LOGIN_URL": settings.salesforce_login_url,
    }
    try:
        result = CliRunner().invoke(main, ["sync-salesforce", "--shop", SHOP], env=env)
        assert result.exit_code == 0, result.output
        assert "syncing to Salesforce" in result.output
        assert "done: 30 written (30 new Contacts, 0 matched by email)" in result.output
        assert all(sf_live.emulator.contact_by_external_id(f"{SHOP}:{i}") for i in ids)
        again = CliRunner().invoke(main, ["sync-salesforce", "--shop", SHOP, "--full"], env=env)
        assert again.exit_code == 0 and "done: 30 written" in again.output, again.output
    finally:
        jobs.configure(sf_live.container)
