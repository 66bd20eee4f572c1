"""The Salesforce sync service against real PostgreSQL and an in-memory org
(``tests/salesforce_fakes.py``): connect, change-only writes, matching by email, and every
fault the issue lists. The HTTP client and the routes are tested against the emulator in
``tests/functional/test_salesforce_against_emulator.py``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.bootstrap import Container, bootstrap
from adapters.clock import FakeClock
from adapters.db.tables import salesforce_connections
from adapters.queue.inprocess import InProcessJobQueue
from connector.domain.ambassadors import AmbassadorStatus
from connector.domain.salesforce import (
    EXTERNAL_ID,
    FIELDS,
    ConnectionStatus,
    LinkState,
    email_query_batches,
)
from connector.services import privacy, salesforce
from entrypoints import jobs
from tests.conftest import SHOP, make_settings
from tests.salesforce_fakes import FakeCrmGateway, FakeOrg, enrol, set_stats
from tests.salesforce_fakes import shop_of as _shop

REDIRECT = "http://127.0.0.1:8000/salesforce/callback"


@pytest.fixture
def org() -> FakeOrg:
    return FakeOrg()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))


@pytest.fixture
def sf(tmp_path: Path, db_url: str, org: FakeOrg, clock: FakeClock) -> Iterator[Container]:
    settings = make_settings(
        tmp_path, db_url, SALESFORCE_CLIENT_ID="cid", SALESFORCE_CLIENT_SECRET="secret"
    )
    c = bootstrap(
        settings,
        jobs=InProcessJobQueue(threaded=False),
        salesforce=FakeCrmGateway(org),
        clock=clock,
    )
    jobs.configure(c)
    yield c
    jobs.configure(None)
    c.close()


def connect(c: Container) -> None:
    shop = _shop(c)
    url = salesforce.begin_connect(c.uow, c.salesforce, c.ids, c.clock, shop, REDIRECT)
    params = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))
    salesforce.complete_connect(
        c.uow, c.salesforce, c.jobs, c.clock, params["state"], params["code"], REDIRECT
    )


def sync(c: Container, **kwargs: Any) -> salesforce.SyncReport:
    return salesforce.sync(c.uow, c.salesforce, c.clock, SHOP, **kwargs)


def contact(org: FakeOrg, ambassador_id: int) -> dict[str, Any]:
    found = org.by_external_id(f"{SHOP}:{ambassador_id}")
    assert found is not None, f"no Contact for ambassador {ambassador_id}"
    return found


def links(c: Container) -> dict[int, Any]:
    shop = _shop(c)
    with c.uow() as uow:
        return {s.ambassador_id: link for s, link in uow.salesforce.snapshots(shop.id)}


def connection(c: Container) -> Any:
    with c.uow() as uow:
        return uow.salesforce.connection(_shop(c).id)


# --- connecting ----------------------------------------------------------------------------


def test_connect_stores_tokens_encrypted_checks_fields_and_starts_the_backfill(sf, org):
    ids = enrol(sf, 3)
    connect(sf)
    conn = connection(sf)
    assert conn.status is ConnectionStatus.CONNECTED
    assert conn.org_id == org.org_id and conn.user_id == org.user_id
    assert conn.fields.ok
    with sf.engine.connect() as db:
        row = db.execute(sa.select(salesforce_connections)).one()
    assert conn.access_token and conn.access_token not in row.access_token_enc
    assert conn.refresh_token and conn.refresh_token not in row.refresh_token_enc
    # The backfill ran by itself after the callback.
    for i, aid in enumerate(ids):
        c = contact(org, aid)
        assert c["Email"] == f"amb{i}@example.com" and c["Ambassador_Status__c"] == "active"
        assert c["Ambassador_Code__c"] == f"CODE{i}"
        assert c["Ambassador_Referral_URL__c"] == f"https://{SHOP}/discount/CODE{i}?redirect=%2F"


def test_a_connect_state_is_single_use_and_expires(sf, clock):
    shop = _shop(sf)
    url = salesforce.begin_connect(sf.uow, sf.salesforce, sf.ids, sf.clock, shop, REDIRECT)
    params = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))
    assert len(params["state"]) >= 43  # 256 bits
    salesforce.complete_connect(
        sf.uow, sf.salesforce, sf.jobs, sf.clock, params["state"], params["code"], REDIRECT
    )
    with pytest.raises(salesforce.SalesforceError) as reused:
        salesforce.complete_connect(
            sf.uow, sf.salesforce, sf.jobs, sf.clock, params["state"], params["code"], REDIRECT
        )
    assert reused.value.code == "invalid_state"
    url = salesforce.begin_connect(sf.uow, sf.salesforce, sf.ids, sf.clock, shop, REDIRECT)
    params = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))
    clock.advance(minutes=11)
    with pytest.raises(salesforce.SalesforceError):
        salesforce.complete_connect(
            sf.uow, sf.salesforce, sf.jobs, sf.clock, params["state"], params["code"], REDIRECT
        )


def test_disconnect_drops_and_revokes_the_refresh_token(sf, org):
    connect(sf)
    refresh = connection(sf).refresh_token
    assert salesforce.disconnect(sf.uow, sf.salesforce, sf.clock, _shop(sf))
    conn = connection(sf)
    assert conn.status is ConnectionStatus.DISCONNECTED and conn.access_token is None
    assert org.revoked == [refresh]
    assert sync(sf).status == "not_connected"


# --- change-only sync ----------------------------------------------------------------------


def test_only_changed_ambassadors_are_written_and_nothing_changed_costs_no_call(sf, org):
    ids = enrol(sf, 250)
    connect(sf)
    assert len(org.contacts) == 250
    before = len(org.calls)
    report = sync(sf)
    assert report.status == "nothing_to_do" and report.calls == 0 and len(org.calls) == before

    set_stats(sf, ids[7], orders=3, revenue="120.50", paid="10")
    report = sync(sf)
    assert (report.due, report.written, report.calls) == (1, 1, 1)
    c = contact(org, ids[7])
    assert c["Ambassador_Orders__c"] == 3 and c["Ambassador_Revenue__c"] == 120.5
    assert c["Ambassador_Rewards_Earned__c"] == 11.5 and c["Ambassador_Rewards_Paid__c"] == 10.0
    assert c["Ambassador_Last_Referral__c"] == "2026-11-22"
    assert sync(sf).calls == 0


def test_first_write_matches_an_existing_contact_by_email_and_never_duplicates(sf, org):
    existing = org.add_contact("AMB0@example.com", last_name="Kept")
    ids = enrol(sf, 2)
    connect(sf)
    assert len(org.contacts) == 2  # one matched, one created
    c = org.contacts[existing]
    assert c[EXTERNAL_ID] == f"{SHOP}:{ids[0]}" and c["LastName"] == "Kept"
    assert links(sf)[ids[0]].contact_id == existing
    # Later writes go by the external id onto the same Contact.
    set_stats(sf, ids[0], 1, "10")
    sync(sf)
    assert len(org.contacts) == 2 and org.contacts[existing]["Ambassador_Orders__c"] == 1


def test_several_contacts_with_the_email_the_most_recently_modified_is_used_and_reported(sf, org):
    old = org.add_contact("amb0@example.com", modified="2025-01-01T00:00:00.000+0000")
    new = org.add_contact("amb0@example.com", modified="2026-06-01T00:00:00.000+0000")
    taken = org.add_contact("amb1@example.com", **{EXTERNAL_ID: "other-shop.myshopify.com:9"})
    ids = enrol(sf, 2)
    connect(sf)
    assert org.contacts[new].get(EXTERNAL_ID) == f"{SHOP}:{ids[0]}"
    assert org.contacts[old].get(EXTERNAL_ID) is None
    link = links(sf)[ids[0]]
    assert link.contact_id == new and "most recently modified" in link.note and old in link.note
    # The only Contact with amb1's email belongs to another ambassador: not taken over, parked.
    assert org.contacts[taken][EXTERNAL_ID] == "other-shop.myshopify.com:9"
    assert links(sf)[ids[1]].state is LinkState.PARKED
    state = salesforce.state(sf.uow, sf.clock, _shop(sf))
    assert state["parked"][0]["error_code"] == "CONTACT_CONFLICT"
    assert state["matches"] == [
        {"ambassador_id": ids[0], "email": "amb0@example.com", "contact_id": new, "note": link.note}
    ]
    assert len(org.contacts) == 3  # no duplicate created


# --- faults --------------------------------------------------------------------------------


def test_an_expired_session_mid_sync_is_refreshed_once_and_the_sync_completes(sf, org):
    connect(sf)
    ids = enrol(sf, 450)
    org.expire_after_calls = 2  # the query and the first upsert succeed, then 401
    report = sync(sf)
    assert report.status == "done" and report.written == 450
    assert org.refreshes == 1
    assert all(contact(org, a) for a in ids)
    assert connection(sf).access_token in org.access_tokens


def test_a_revoked_refresh_token_marks_the_connection_for_reconnection(sf, org):
    connect(sf)
    enrol(sf, 2)
    org.expire_sessions()
    org.refresh_tokens.clear()  # revoked in Salesforce
    report = sync(sf)
    assert report.status == "needs_reconnect"
    conn = connection(sf)
    assert conn.status is ConnectionStatus.NEEDS_RECONNECT
    state = salesforce.state(sf.uow, sf.clock, _shop(sf))
    assert state["status"] == "needs_reconnect" and "connect again" in state["message"]
    assert sync(sf).status == "needs_reconnect" and org.refreshes == 0


def test_missing_fields_are_named_and_nothing_is_written(sf, org):
    del org.fields["Ambassador_Tier__c"]
    enrol(sf, 2)
    connect(sf)
    report = connection(sf).fields
    assert report.missing == ("Ambassador_Tier__c",) and not report.ok
    assert "Ambassador_Tier__c" in report.message()
    assert org.contacts == {}
    assert sync(sf).status == "setup_needed"


def test_fields_not_writable_get_the_permission_set_assigned(sf, org):
    org.fields["Ambassador_Code__c"] = False
    org.fields["Ambassador_Tier__c"] = False
    enrol(sf, 1)
    connect(sf)
    report = connection(sf).fields
    assert report.ok and report.permission_set_assigned is True
    assert "assign" in org.calls and len(org.contacts) == 1


def test_fields_not_writable_and_no_permission_set_says_exactly_which(sf, org):
    org.fields["Ambassador_Code__c"] = False
    org.permission_set_grants = False
    connect(sf)
    report = connection(sf).fields
    assert report.not_writable == ("Ambassador_Code__c",)
    assert "not writable" in report.message() and "Ambassador_Code__c" in report.message()


def test_a_validation_rule_rejecting_some_records_of_a_batch_parks_them_with_the_message(sf, org):
    connect(sf)
    ids = enrol(sf, 200)
    rejected = set(ids[::10])
    org.validation = lambda r: (
        "Tier is required for active ambassadors"
        if int(str(r.get(EXTERNAL_ID) or ":0").rsplit(":", 1)[1]) in rejected
        else None
    )
    report = sync(sf)
    assert report.status == "partial"
    assert (report.written, report.parked) == (180, 20)
    assert org.calls.count("upsert") == 1  # one call for the batch of 200
    state = salesforce.state(sf.uow, sf.clock, _shop(sf))
    assert state["records"]["parked"] == 20 and state["records"]["synced"] == 180
    assert {p["message"] for p in state["parked"]} == {"Tier is required for active ambassadors"}
    # Parked values that did not change are not tried again on their own...
    assert sync(sf).calls == 0
    # ...the merchant's retry (after fixing the rule) does.
    org.validation = None
    assert salesforce.retry_parked(sf.uow, sf.jobs, _shop(sf)) == 20
    assert all(contact(org, a) for a in rejected)
    assert salesforce.state(sf.uow, sf.clock, _shop(sf))["records"]["parked"] == 0


def test_a_locked_row_is_retried_after_a_back_off(sf, org, clock):
    connect(sf)
    ids = enrol(sf, 3)
    org.lock_once.add(f"{SHOP}:{ids[1]}")
    report = sync(sf)
    assert (report.written, report.retrying) == (2, 1)
    assert links(sf)[ids[1]].state is LinkState.RETRY
    assert sync(sf).calls == 0  # still backing off
    clock.advance(minutes=2)
    report = sync(sf)
    assert report.written == 1 and links(sf)[ids[1]].state is LinkState.SYNCED


def test_a_spent_daily_pool_pauses_the_org_and_is_never_retried_in_a_loop(sf, org, clock):
    connect(sf)
    enrol(sf, 5)
    org.used = org.limit  # every integration of the org together spent the pool
    calls = len(org.calls)
    report = sync(sf)
    assert report.status == "paused" and report.written == 0
    conn = connection(sf)
    assert conn.paused_until is not None and "pool" in conn.pause_reason
    assert len(org.calls) == calls  # the refused call is the only one
    assert sync(sf).status == "paused"  # nothing is tried while paused
    clock.advance(minutes=16)
    org.used = 100  # the rolling 24 hours moved on
    report = sync(sf)
    assert report.status == "done" and report.written == 5
    assert connection(sf).paused_until is None


def test_the_sync_pauses_at_the_budget_share_and_resumes_when_usage_recovers(sf, org, clock):
    connect(sf)
    enrol(sf, 450)
    queries = len(list(email_query_batches(f"amb{i}@example.com" for i in range(450))))
    org.used = int(org.limit * 0.8) - queries - 2  # room for the queries and two upserts
    report = sync(sf, budget_share=0.8)
    # The first call's header shows usage crossing 80 %: the sync stops before the next call.
    assert report.status == "paused" and report.written == 400
    assert org.used == org.limit * 0.8
    clock.advance(minutes=16)
    assert sync(sf, budget_share=0.8).status == "paused"  # one look at /limits, still high
    assert org.calls[-1] == "limits"
    org.used = int(org.limit * 0.5)
    clock.advance(minutes=16)
    report = sync(sf, budget_share=0.8)
    assert report.status == "done" and len(org.contacts) == 450


def test_salesforce_down_leaves_everything_due_and_the_next_run_catches_up(sf, org):
    connect(sf)
    ids = enrol(sf, 3)
    org.down = True
    report = sync(sf)
    assert report.status == "unavailable" and report.written == 0
    assert all(links(sf)[a] is None for a in ids)
    assert connection(sf).last_error
    org.down = False
    assert sync(sf).written == 3


def test_an_ambassador_changed_while_their_sync_is_in_flight_is_synced_again(sf, org):
    connect(sf)
    ids = enrol(sf, 2)
    changed = []

    def change_during_write(records: Any) -> None:
        if not changed:
            changed.append(True)
            set_stats(sf, ids[0], orders=9, revenue="900")

    org.on_write = change_during_write
    sync(sf)
    assert contact(org, ids[0])["Ambassador_Orders__c"] == 0  # the values read before
    report = sync(sf)
    assert report.written == 1
    assert contact(org, ids[0])["Ambassador_Orders__c"] == 9


def test_a_second_sync_of_the_same_org_is_turned_away_while_one_runs(sf, org):
    connect(sf)
    enrol(sf, 1)
    shop = _shop(sf)
    with sf.uow() as uow:
        assert uow.salesforce.begin_sync(shop.id, sf.clock.now() + timedelta(minutes=5))
        uow.commit()
    assert sync(sf).status == "running"


def test_large_backfills_go_through_bulk_api_2(sf, org):
    enrol(sf, 30)
    connect(sf)  # backfill with the default threshold: collections
    ids = enrol(sf, 40, start=100)
    report = sync(sf, bulk_threshold=20)
    assert report.bulk_jobs == 1 and report.written == 40
    assert "bulk_upsert" in org.calls and all(contact(org, a) for a in ids)


# --- privacy ---------------------------------------------------------------------------------


def test_removal_clears_the_ambassador_fields_but_keeps_the_link(sf, org):
    connect(sf)
    ids = enrol(sf, 1)
    set_stats(sf, ids[0], 2, "50")
    sync(sf)
    shop = _shop(sf)
    with sf.uow() as uow:
        a = uow.ambassadors.get(shop.id, ids[0])
        uow.ambassadors.save(replace(a, status=AmbassadorStatus.REMOVED))
        uow.commit()
    sync(sf)
    c = contact(org, ids[0])
    assert c["Ambassador_Status__c"] == "removed"
    assert c["Ambassador_Code__c"] is None and c["Ambassador_Revenue__c"] is None


def test_customers_redact_clears_every_ambassador_field_on_the_contact(sf, org):
    existing = org.add_contact("amb0@example.com", last_name="Kept")
    connect(sf)
    enrol(sf, 1)
    sync(sf)
    shop = _shop(sf)
    with sf.uow() as uow:  # what customers/redact does to an ambassador (privacy service)
        assert privacy._anonymise_ambassador(uow, sf.clock, shop.id, 1000) == 1
        uow.commit()
    report = sync(sf)
    assert report.erased == 1
    c = org.contacts[existing]
    assert all(c.get(f) is None for f in FIELDS) and c["LastName"] == "Kept"
    assert sync(sf).calls == 0  # forgotten; the removed, anonymised ambassador is not rewritten


def test_concurrent_refreshes_of_one_org_are_serialised_and_refresh_once(sf, org):
    import threading
    import time

    connect(sf)
    shop = _shop(sf)
    gateway = sf.salesforce
    real_refresh = gateway.refresh

    def slow_refresh(token: str) -> Any:
        time.sleep(0.3)  # long enough for the other worker to reach the row lock
        return real_refresh(token)

    gateway.refresh = slow_refresh
    org.expire_sessions()
    results: list[Any] = []

    def worker() -> None:
        client = salesforce.OrgClient(sf.uow, gateway, shop.id, connection(sf))
        results.append(client.call(lambda s: s.describe_contact()))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 3 and org.refreshes == 1
