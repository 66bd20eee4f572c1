"""The Salesforce domain: values and their digest, the matching rule, query batching, error
classification, the budget, the field check, and the provisioning package."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest

from connector.domain.salesforce import (
    EXTERNAL_ID,
    FIELDS,
    MAX_QUERY_CHARS,
    AmbassadorSnapshot,
    ApiUsage,
    ContactMatch,
    Outcome,
    calls_needed,
    check_fields,
    choose_contact,
    chunks,
    classify,
    contact_values,
    email_query_batches,
    external_id,
    may_resume,
    org_and_user,
    over_budget,
    parse_limit_info,
    values_hash,
)

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "salesforce"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def snapshot(**changes: object) -> AmbassadorSnapshot:
    base = dict(
        ambassador_id=7,
        email="ava@example.com",
        first_name="Ava",
        last_name="Lee",
        status="active",
        tier="Gold",
        code="AVA15",
        since=NOW,
        orders=3,
        revenue=Decimal("120.505"),
        rewards_earned=Decimal("12.05"),
        rewards_paid=Decimal("5"),
        last_referral_at=NOW,
    )
    base.update(changes)
    return AmbassadorSnapshot(**base)  # type: ignore[arg-type]


def test_external_id_is_shop_and_id_and_fits_the_field():
    assert external_id("x.myshopify.com", 7) == "x.myshopify.com:7"
    long = "a" * 70 + ".myshopify.com"
    value = external_id(long, 123456789)
    assert len(value) <= 64 and value.endswith(":123456789")
    assert value == external_id(long, 123456789) != external_id("b" + long, 123456789)


def test_values_of_an_active_ambassador_fill_every_owned_field():
    values = contact_values(snapshot(), "x.myshopify.com")
    assert set(values) == set(FIELDS)
    assert values[EXTERNAL_ID] == "x.myshopify.com:7"
    assert values["Ambassador_Revenue__c"] == 120.51  # Currency(16,2), half up
    assert (
        values["Ambassador_Referral_URL__c"]
        == "https://x.myshopify.com/discount/AVA15?redirect=%2F"
    )
    assert values["Ambassador_Since__c"] == "2026-11-22"
    json.dumps(values)  # JSON-ready


def test_removal_clears_everything_but_the_link_and_erasure_clears_everything():
    removed = contact_values(snapshot(status="removed"), "x.myshopify.com")
    assert removed[EXTERNAL_ID] and removed["Ambassador_Status__c"] == "removed"
    assert all(
        v is None for k, v in removed.items() if k not in {EXTERNAL_ID, "Ambassador_Status__c"}
    )
    erased = contact_values(snapshot(erased=True), "x.myshopify.com")
    assert all(v is None for v in erased.values())


def test_the_digest_changes_with_any_synced_value_and_only_then():
    a = contact_values(snapshot(), "s")
    assert values_hash(a) == values_hash(dict(reversed(list(a.items()))))
    assert values_hash(a) != values_hash(contact_values(snapshot(orders=4), "s"))
    # The name is not a synced value (only written when a Contact is created).
    assert values_hash(a) == values_hash(contact_values(snapshot(last_name="Other"), "s"))


def m(cid: str, modified: str, amb: str | None = None) -> ContactMatch:
    return ContactMatch(cid, "ava@example.com", modified, amb)


def test_one_match_is_used_without_a_note():
    decision = choose_contact("s:7", [m("003A", "2026-01-01")])
    assert (decision.contact_id, decision.note) == ("003A", None)


def test_several_matches_pick_the_most_recently_modified_and_say_so():
    decision = choose_contact(
        "s:7", [m("003A", "2025-01-01"), m("003B", "2026-05-01"), m("003C", "2024-01-01")]
    )
    assert decision.contact_id == "003B"
    assert "3 Contacts" in (decision.note or "") and "003A" in decision.note


def test_a_contact_already_ours_wins_and_one_of_another_ambassador_is_never_taken():
    assert (
        choose_contact("S:7", [m("003A", "2026-09-01"), m("003B", "2020-01-01", "s:7")]).contact_id
        == "003B"
    )
    decision = choose_contact("s:7", [m("003A", "2026-01-01", "other:1")])
    assert decision.contact_id is None and decision.conflict


def test_email_queries_cover_every_email_escaped_and_stay_short():
    emails = [f"o'brien{i}@example.com" for i in range(2000)] + ["O'BRIEN1@example.com"]
    queries = list(email_query_batches(emails))
    assert len(queries) > 1
    assert all(len(quote(q)) < 16_384 for q in queries)
    assert all(len(quote(q, safe="")) <= MAX_QUERY_CHARS for q in queries)
    assert len(quote(queries[0], safe="")) > MAX_QUERY_CHARS - 100  # and each is filled
    joined = " ".join(queries)
    assert joined.count("'o\\'brien1@example.com'") == 1  # lower-cased, deduplicated
    assert all(f"'o\\'brien{i}@example.com'" in joined for i in range(2000))


def test_chunks_of_200():
    assert [len(c) for c in chunks(list(range(450)))] == [200, 200, 50]


@pytest.mark.parametrize(
    ("code", "message", "status", "outcome"),
    [
        ("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access", 400, Outcome.RETRY),
        ("SERVER_UNAVAILABLE", "", 503, Outcome.RETRY),
        ("", "", 500, Outcome.RETRY),
        ("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.", 403, Outcome.RETRY),
        ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", 403, Outcome.PAUSE),
        ("INVALID_SESSION_ID", "Session expired or invalid", 401, Outcome.REAUTH),
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Engagement score…", 400, Outcome.PARK),
        ("DUPLICATE_VALUE", "duplicate value found", 400, Outcome.PARK),
        ("DUPLICATES_DETECTED", "", 400, Outcome.PARK),
        ("REQUIRED_FIELD_MISSING", "", 400, Outcome.PARK),
        ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "bad value", 400, Outcome.PARK),
        ("INVALID_FIELD", "No such column", 400, Outcome.SETUP),
    ],
)
def test_errors_are_classified_as_platform_md_says(code, message, status, outcome):
    assert classify(code, message, status) is outcome


def test_limit_info_header_is_parsed_from_the_documented_and_observed_values():
    lines = (FIXTURES / "synthetic" / "sforce_limit_info_headers.txt").read_text().splitlines()
    values = [
        parse_limit_info(line.split(":", 1)[1])
        for line in lines
        if line.startswith("Sforce-Limit-Info")
    ]
    assert values == [ApiUsage(18, 5000), ApiUsage(25, 5000), ApiUsage(60, 100000)]
    assert parse_limit_info(None) is None and parse_limit_info("nonsense") is None


def test_budget_pauses_at_the_share_and_resumes_below_it_with_a_margin():
    assert not over_budget(None, 0.8)
    assert not over_budget(ApiUsage(79, 100), 0.8)
    assert over_budget(ApiUsage(80, 100), 0.8)
    assert not may_resume(ApiUsage(78, 100), 0.8)  # no flapping at the edge
    assert may_resume(ApiUsage(74, 100), 0.8)
    assert not may_resume(None, 0.8)


def test_call_floor():
    assert calls_needed(0) == 0 and calls_needed(1) == 1 and calls_needed(10_000) == 50
    assert calls_needed(10_000, bulk=True) == 6


def test_field_check_names_missing_and_not_writable_fields():
    described = {name: True for name in FIELDS}
    assert check_fields(described, NOW).ok
    del described["Ambassador_Tier__c"]
    described["Ambassador_Code__c"] = False
    report = check_fields(described, NOW)
    assert report.missing == ("Ambassador_Tier__c",)
    assert report.not_writable == ("Ambassador_Code__c",)
    assert "Ambassador_Tier__c" in report.message() and "permission set" in report.message()


def test_org_and_user_come_from_the_identity_url():
    raw = (FIXTURES / "synthetic" / "oauth_web_server_token_response.json").read_text()
    token = json.loads(raw)
    assert org_and_user(token["id"]) == ("00DXX0000000001EAA", "005XX000001b2c3QAA")
    assert org_and_user(None) == (None, None)


def test_the_provisioning_package_holds_every_field_and_the_permission_set():
    from adapters.salesforce.metadata import package_zip

    source = Path(__file__).resolve().parents[2] / "salesforce" / "force-app"
    data = package_zip(source)
    assert data == package_zip(source)  # deterministic
    archive = zipfile.ZipFile(io.BytesIO(data))
    package = archive.read("package.xml").decode()
    obj = archive.read("objects/Contact.object").decode()
    perms = archive.read("permissionsets/Ambassador_Connector.permissionset").decode()
    for name in FIELDS:
        assert f"<members>Contact.{name}</members>" in package
        assert f"<fullName>{name}</fullName>" in obj
        assert f"<field>Contact.{name}</field>" in perms
    assert "<externalId>true</externalId>" in obj and "<unique>true</unique>" in obj
