"""The local Salesforce emulator honours Salesforce's contract: driven over real HTTP (httpx,
and simple-salesforce 1.12.10 as the project pins it), answers compared with real and documented
responses in ``tests/fixtures/salesforce/`` (same keys, same value types), every injectable
fault exercised.

Run: ``.venv/bin/python -m pytest tests/integration/test_salesforce_emulator.py -q``
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
import secrets
import ssl
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceMalformedRequest

from adapters.salesforce.emulator import (
    AMBASSADOR_FIELDS,
    SalesforceEmulator,
    pkce_challenge,
    serve_in_thread,
)
from adapters.salesforce.emulator.ids import checksum_suffix, is_valid_id, to18

FIXTURES = Path(__file__).parent.parent / "fixtures" / "salesforce"
CALLBACK = "http://127.0.0.1:8000/salesforce/callback"
V = "62.0"
API = f"/services/data/v{V}"


def fixture(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text())


def wiremock_body(path: str) -> Any:
    """The response body of a WireMock mapping (``jsonBody`` or the JSON string ``body``)."""
    response = fixture(path)["response"]
    if "jsonBody" in response:
        return response["jsonBody"]
    return json.loads(response["body"])


def same_shape(actual: Any, expected: Any, *, optional: set[str] | None = None) -> None:
    """Same keys (recursively for objects; first element for lists) and the same JSON kinds
    (ints and floats count as numbers; null in the fixture accepts anything)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), actual
        missing = set(expected) - set(actual) - (optional or set())
        extra = set(actual) - set(expected) - (optional or set())
        assert not missing and not extra, f"missing {missing}, extra {extra}"
        for key in set(expected) & set(actual):
            same_shape(actual[key], expected[key], optional=optional)
    elif isinstance(expected, list):
        assert isinstance(actual, list), actual
        if expected and actual:
            same_shape(actual[0], expected[0], optional=optional)
    elif expected is None:
        return
    elif isinstance(expected, bool):
        assert isinstance(actual, bool), actual
    elif isinstance(expected, int | float):
        assert isinstance(actual, int | float) and not isinstance(actual, bool), actual
    else:
        assert isinstance(actual, type(expected)), (actual, expected)


@pytest.fixture
def emu() -> SalesforceEmulator:
    return SalesforceEmulator(redirect_uris=[CALLBACK], ambassador_fields=True)


@pytest.fixture
def served(emu: SalesforceEmulator) -> Iterator[tuple[SalesforceEmulator, httpx.Client]]:
    server, base_url = serve_in_thread(emu)
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield emu, client
    server.shutdown()


def connect(
    emu: SalesforceEmulator, client: httpx.Client, *, scope: str = "api refresh_token"
) -> dict[str, Any]:
    """The whole web server flow with PKCE, through the consent page; the token answer."""
    verifier = secrets.token_urlsafe(48)
    query = {
        "response_type": "code",
        "client_id": emu.client_id,
        "redirect_uri": CALLBACK,
        "code_challenge": pkce_challenge(verifier),
        "code_challenge_method": "S256",
        "state": "st-1",
        "scope": scope,
    }
    page = client.get("/services/oauth2/authorize", params=query)
    assert page.status_code == 200 and "Allow" in page.text
    decision = client.post("/services/oauth2/authorize", data={**query, "decision": "allow"})
    assert decision.status_code == 302
    back = parse_qs(urlsplit(decision.headers["Location"]).query)
    assert back["state"] == ["st-1"]
    answer = client.post(
        "/services/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": back["code"][0],
            "redirect_uri": CALLBACK,
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
            "code_verifier": verifier,
        },
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


@contextmanager
def org(emu: SalesforceEmulator) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    """Serve ``emu``, connect through the OAuth flow, yield an authorised client."""
    server, base_url = serve_in_thread(emu)
    try:
        with httpx.Client(base_url=base_url, timeout=10) as client:
            token = connect(emu, client)
            client.headers.update(bearer(token))
            yield client, token
    finally:
        server.shutdown()


@pytest.fixture
def api(
    served: tuple[SalesforceEmulator, httpx.Client],
) -> tuple[SalesforceEmulator, httpx.Client, dict[str, Any]]:
    emu, client = served
    token = connect(emu, client)
    client.headers.update(bearer(token))
    return emu, client, token


def upsert(client: httpx.Client, records: list[dict[str, Any]], all_or_none: bool = False) -> Any:
    body = {
        "allOrNone": all_or_none,
        "records": [{"attributes": {"type": "Contact"}, **r} for r in records],
    }
    return client.patch(f"{API}/composite/sobjects/Contact/Ambassador_Id__c", json=body)


def soql(client: httpx.Client, text: str) -> httpx.Response:
    return client.get(f"{API}/query", params={"q": text})


# --- ids ---------------------------------------------------------------------------------------


def test_ids_have_salesforce_checksums() -> None:
    # Known pair: the 15-character id from Salesforce's docs and its 18-character form.
    assert to18("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    assert checksum_suffix("003000000000000") == "AAA"
    emu = SalesforceEmulator()
    contact = emu.add_contact(LastName="X")
    assert contact["Id"].startswith("003") and len(contact["Id"]) == 18
    assert is_valid_id(contact["Id"], "003")
    assert not is_valid_id(contact["Id"][:15] + "ZZZ")


# --- OAuth -------------------------------------------------------------------------------------


def test_web_server_flow_with_pkce_answers_like_salesforce(
    served: tuple[SalesforceEmulator, httpx.Client],
) -> None:
    emu, client = served
    token = connect(emu, client)
    expected = fixture("synthetic/oauth_web_server_token_response.json")
    same_shape(token, expected)
    assert "expires_in" not in token
    assert token["instance_url"] == str(client.base_url).rstrip("/")
    assert token["scope"] == "refresh_token api" and token["token_type"] == "Bearer"
    assert token["issued_at"].isdigit() and abs(int(token["issued_at"]) / 1000 - time.time()) < 60
    signed = hmac.new(
        emu.client_secret.encode(), (token["id"] + token["issued_at"]).encode(), hashlib.sha256
    )
    assert base64.b64decode(token["signature"]) == signed.digest()
    identity = client.get(token["id"], headers=bearer(token))
    assert identity.status_code == 200
    assert identity.json()["user_id"] == emu.user.id
    assert identity.json()["organization_id"] == emu.org_id
    assert client.get(token["id"]).status_code == 403


def test_pkce_mismatch_and_missing_verifier_are_invalid_grant(
    served: tuple[SalesforceEmulator, httpx.Client],
) -> None:
    emu, client = served
    emu.auto_approve = True
    verifier = secrets.token_urlsafe(48)

    def code() -> str:
        back = client.get(
            "/services/oauth2/authorize",
            params={
                "response_type": "code",
                "client_id": emu.client_id,
                "redirect_uri": CALLBACK,
                "code_challenge": pkce_challenge(verifier),
                "state": "s",
            },
        )
        assert back.status_code == 302 and back.headers["Location"].startswith(CALLBACK)
        return parse_qs(urlsplit(back.headers["Location"]).query)["code"][0]

    form = {
        "grant_type": "authorization_code",
        "redirect_uri": CALLBACK,
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
    }
    wrong = client.post(
        "/services/oauth2/token", data={**form, "code": code(), "code_verifier": "not-it" * 8}
    )
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "invalid_grant", "error_description": "invalid code verifier"}
    missing = client.post("/services/oauth2/token", data={**form, "code": code()})
    assert missing.json()["error"] == "invalid_grant"
    good_code = code()
    ok = client.post(
        "/services/oauth2/token", data={**form, "code": good_code, "code_verifier": verifier}
    )
    assert ok.status_code == 200
    again = client.post(
        "/services/oauth2/token", data={**form, "code": good_code, "code_verifier": verifier}
    )
    assert again.json() == {
        "error": "invalid_grant",
        "error_description": "expired authorization code",
    }
    # client_secret_basic (authlib's default) works as well as client_secret_post
    basic = base64.b64encode(f"{emu.client_id}:{emu.client_secret}".encode()).decode()
    via_basic = client.post(
        "/services/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "redirect_uri": CALLBACK,
            "code": code(),
            "code_verifier": verifier,
        },
        headers={"Authorization": f"Basic {basic}"},
    )
    assert via_basic.status_code == 200
    bad_secret = client.post(
        "/services/oauth2/token",
        data={**form, "client_secret": "nope", "code": code(), "code_verifier": verifier},
    )
    assert bad_secret.json()["error"] == "invalid_client"


def test_authorize_refuses_unknown_client_and_callback_without_redirecting_to_them(
    served: tuple[SalesforceEmulator, httpx.Client],
) -> None:
    emu, client = served
    base = {"response_type": "code", "client_id": emu.client_id, "redirect_uri": CALLBACK}
    for params, error in (
        ({**base, "client_id": "someone-else"}, "invalid_client_id"),
        ({**base, "redirect_uri": "https://evil.example/cb"}, "redirect_uri_mismatch"),
    ):
        answer = client.get("/services/oauth2/authorize", params=params)
        assert answer.status_code == 302
        location = answer.headers["Location"]
        assert location.startswith("/setup/secur/RemoteAccessErrorPage.apexp")
        assert parse_qs(urlsplit(location).query)["error"] == [error]
        assert "evil.example" not in location
        assert error in client.get(location).text
    denied = client.post("/services/oauth2/authorize", data={**base, "state": "z"})
    back = parse_qs(urlsplit(denied.headers["Location"]).query)
    assert back["error"] == ["access_denied"] and back["state"] == ["z"]


def test_refresh_without_and_with_rotation(
    served: tuple[SalesforceEmulator, httpx.Client],
) -> None:
    emu, client = served
    token = connect(emu, client)
    form = {
        "grant_type": "refresh_token",
        "refresh_token": token["refresh_token"],
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
    }
    plain = client.post("/services/oauth2/token", data=form)
    same_shape(plain.json(), fixture("synthetic/oauth_refresh_token_response_no_rotation.json"))
    assert "refresh_token" not in plain.json()
    assert client.post("/services/oauth2/token", data=form).status_code == 200  # reusable
    assert client.get(f"{API}/limits", headers=bearer(plain.json())).status_code == 200

    emu.rotate_refresh_tokens = True
    rotated = client.post("/services/oauth2/token", data=form)
    same_shape(rotated.json(), fixture("synthetic/oauth_refresh_token_response_with_rotation.json"))
    successor = rotated.json()["refresh_token"]
    assert successor != token["refresh_token"]
    reused = client.post("/services/oauth2/token", data=form)
    assert reused.status_code == 400
    assert reused.json() == fixture("synthetic/oauth_error_invalid_grant_expired.json")
    next_one = client.post("/services/oauth2/token", data={**form, "refresh_token": successor})
    assert next_one.status_code == 200 and next_one.json()["refresh_token"] != successor


def test_revoked_refresh_token_is_invalid_grant(
    served: tuple[SalesforceEmulator, httpx.Client],
) -> None:
    emu, client = served
    first, second = connect(emu, client), connect(emu, client)
    form = {
        "grant_type": "refresh_token",
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
    }
    # through the revoke endpoint: the refresh token and its access tokens end
    assert (
        client.post("/services/oauth2/revoke", data={"token": first["refresh_token"]}).status_code
        == 200
    )
    refused = client.post(
        "/services/oauth2/token", data={**form, "refresh_token": first["refresh_token"]}
    )
    assert refused.json() == fixture("restforce/refresh_error_response.json")
    assert client.get(f"{API}/limits", headers=bearer(first)).status_code == 401
    assert client.post("/services/oauth2/revoke", data={"token": "junk"}).status_code == 400
    # through the control method
    emu.revoke_refresh_token(second["refresh_token"])
    again = client.post(
        "/services/oauth2/token", data={**form, "refresh_token": second["refresh_token"]}
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert emu.token_requests()[-1] == {
        "grant_type": "refresh_token",
        "status": 400,
        "error": "invalid_grant",
    }


def test_expired_session_is_401_like_salesforce_and_refresh_recovers(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, token = api
    assert client.get(f"{API}/limits").status_code == 200
    emu.expire_sessions()
    expired = client.get(f"{API}/limits")
    assert expired.status_code == 401
    assert expired.json() == fixture("restforce/expired_session_response.json")
    assert expired.json() == wiremock_body("heroku_applink_wiremock/create-invalid-token.json")
    assert expired.headers["WWW-Authenticate"] == "Token"
    refreshed = client.post(
        "/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
        },
    )
    assert client.get(f"{API}/limits", headers=bearer(refreshed.json())).status_code == 200
    assert client.get(f"{API}/limits", headers={"Authorization": ""}).status_code == 401


# --- versions, limits, budget ------------------------------------------------------------------


def test_versions_and_unknown_version(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, _ = api
    versions = client.get("/services/data/").json()
    same_shape(versions, fixture("restforce/services_data_success_response.json"))
    assert versions[0] == {"version": "20.0", "url": "/services/data/v20.0", "label": "Winter '11"}
    assert {"version": "59.0", "url": "/services/data/v59.0", "label": "Winter '24"} in versions
    assert versions[-1]["version"] == emu.latest_api_version
    missing = client.get("/services/data/viAmABadVersion/limits")
    assert missing.status_code == 404
    assert missing.json() == wiremock_body(
        "heroku_applink_wiremock/create-invalid-api-version.json"
    )


def test_every_api_answer_carries_limit_info_and_the_pool_runs_out(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, _ = api
    emu.set_api_usage(10, 13)
    limits = client.get(f"{API}/limits")
    assert limits.headers["Sforce-Limit-Info"] == "api-usage=11/13"
    expected = fixture("simple_salesforce_extracted/organization_limits_response.json")
    assert limits.json()["DailyApiRequests"] == {"Max": 13, "Remaining": 2}
    same_shape(limits.json()["DailyApiRequests"], expected["DailyApiRequests"])
    assert soql(client, "SELECT Id FROM Contact").headers["Sforce-Limit-Info"] == (
        "api-usage=12/13"
    )
    assert upsert(client, []).headers["Sforce-Limit-Info"] == "api-usage=13/13"
    spent = client.get(f"{API}/limits")
    assert spent.status_code == 403
    assert spent.json() == fixture("synthetic/error_request_limit_exceeded_daily_403.json")
    assert spent.headers["Sforce-Limit-Info"] == "api-usage=13/13"
    assert emu.api_usage == 13  # a refused call is not charged
    # OAuth does not count against the pool
    before = emu.api_call_count()
    connect(emu, client)
    assert emu.api_call_count() == before and emu.api_usage == 13
    emu.set_api_usage(0)
    assert client.get(f"{API}/limits").status_code == 200
    emu.exhaust_api_pool()
    assert client.get(f"{API}/limits").status_code == 403


# --- query -------------------------------------------------------------------------------------


def test_query_subset_the_connector_uses(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, _ = api
    ana = emu.add_contact(Email="Ana@Example.com", FirstName="Ana", LastName="Lima")
    emu.add_contact(Email="bo@example.com", LastName="Berg", Ambassador_Id__c="shop:2")
    emu.add_contact(Email="cy@example.com", LastName="Chen")
    found = soql(
        client,
        "SELECT Id, Email, LastModifiedDate FROM Contact "
        "WHERE Email IN ('ana@example.com', 'BO@example.com') ORDER BY Email DESC",
    )
    assert found.status_code == 200
    body = found.json()
    same_shape(
        body,
        fixture("restforce/sobject__query_success_response.json"),
        optional={
            "Id",
            "Email",
            "LastModifiedDate",
            "Checkbox_Label",
            "Text_Label",
            "Date_Label",
            "DateTime_Label",
            "Picklist_Multiselect_Label",
            "ParentWhizbang__r",
            "Whizbangs__r",
        },
    )
    assert [r["Email"] for r in body["records"]] == ["bo@example.com", "Ana@Example.com"]
    assert body["records"][1]["attributes"] == {
        "type": "Contact",
        "url": f"{API}/sobjects/Contact/{ana['Id']}",
    }
    equal = soql(client, "select id from contact where email = 'ANA@example.com'").json()
    assert [r["Id"] for r in equal["records"]] == [ana["Id"]]
    by_short_id = soql(client, f"SELECT Id FROM Contact WHERE Id = '{ana['Id'][:15]}'").json()
    assert [r["Id"] for r in by_short_id["records"]] == [ana["Id"]]
    by_ext = soql(
        client, "SELECT Id, Ambassador_Id__c FROM Contact WHERE Ambassador_Id__c IN ('SHOP:2')"
    ).json()
    assert by_ext["records"][0]["Ambassador_Id__c"] == "shop:2"
    limited = soql(client, "SELECT Id FROM Contact ORDER BY LastName LIMIT 2").json()
    assert limited["totalSize"] == 2 and limited["done"] is True
    count = soql(client, "SELECT COUNT() FROM Contact WHERE Ambassador_Id__c = null").json()
    assert count == {"totalSize": 2, "done": True, "records": []}
    permission = soql(
        client, "SELECT Id, Name FROM PermissionSet WHERE Name = 'Ambassador_Connector'"
    ).json()
    assert permission["records"][0]["Name"] == "Ambassador_Connector"
    assert permission["records"][0]["Id"].startswith("0PS")
    empty = soql(client, "SELECT Id FROM Contact WHERE Email = 'nobody@example.com'")
    assert empty.json() == fixture("restforce/sobject__query_empty_response.json")


def test_query_pages_through_next_records_url(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, _ = api
    emu.query_batch_size = 3
    for n in range(7):
        emu.add_contact(LastName=f"P{n}", Email=f"p{n}@example.com")
    first = soql(client, "SELECT Id, LastName FROM Contact ORDER BY LastName").json()
    same_shape(
        first,
        fixture("restforce/sobject__query_paginated_first_page_response.json"),
        optional={"Text_Label", "Id", "LastName"},
    )
    names = [r["LastName"] for r in first["records"]]
    page = first
    while not page["done"]:
        assert page["nextRecordsUrl"].startswith(f"{API}/query/01g")
        page = client.get(page["nextRecordsUrl"]).json()
        names += [r["LastName"] for r in page["records"]]
    assert names == [f"P{n}" for n in range(7)] and page["totalSize"] == 7
    assert "nextRecordsUrl" not in page
    assert client.get(f"{API}/query/01gnothing-3").status_code == 400


def test_query_errors_are_salesforce_errors(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    _emu, client, _ = api
    malformed = soql(client, "SELEKT Name FROM Account")
    assert malformed.status_code == 400
    assert malformed.json() == wiremock_body("heroku_applink_wiremock/query-malformed-soql.json")
    for text in ("SELECT Id FROM Contact WHERE", "SELECT Id, FROM Contact", "SELECT Id Contact"):
        answer = soql(client, text)
        assert answer.status_code == 400 and answer.json()[0]["errorCode"] == "MALFORMED_QUERY"
    unknown = soql(client, "SELECT Id, Favorite__c FROM Contact")
    assert unknown.status_code == 400
    same_shape(unknown.json(), fixture("restforce/sobject__query_error_response.json"))
    assert unknown.json()[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Favorite__c' on entity 'Contact'" in unknown.json()[0]["message"]
    assert "ERROR at Row:1:Column:12" in unknown.json()[0]["message"]
    assert soql(client, "SELECT Id FROM Widget__c").json()[0]["errorCode"] == "INVALID_TYPE"


# --- describe and field-level security ----------------------------------------------------------


def test_describe_lists_fields_as_salesforce_does(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    _emu, client, _ = api
    describe = client.get(f"{API}/sobjects/Contact/describe")
    assert describe.status_code == 200
    real = fixture("restforce/sobject__sobject_describe_success_response.json")
    body = describe.json()
    assert set(real) - set(body) <= {"listviewable", "lookupLayoutable", "searchLayoutable"}
    real_field_keys = set(real["fields"][0])
    fields = {f["name"]: f for f in body["fields"]}
    for entry in fields.values():
        assert set(entry) <= real_field_keys | {"aggregatable"}
        assert real_field_keys - set(entry) == set()
    ext = fields["Ambassador_Id__c"]
    assert (ext["type"], ext["length"], ext["externalId"], ext["unique"]) == (
        "string",
        64,
        True,
        True,
    )
    assert ext["caseSensitive"] is False and ext["custom"] is True
    status = fields["Ambassador_Status__c"]
    assert status["type"] == "picklist" and status["restrictedPicklist"] is True
    assert [p["value"] for p in status["picklistValues"]] == [
        "applied",
        "active",
        "paused",
        "removed",
    ]
    assert (fields["Ambassador_Revenue__c"]["type"], fields["Ambassador_Revenue__c"]["scale"]) == (
        "currency",
        2,
    )
    assert fields["Ambassador_Since__c"]["type"] == "date"
    assert fields["Ambassador_Referral_URL__c"]["type"] == "url"
    assert all(
        fields[f.name]["updateable"] and fields[f.name]["createable"] for f in AMBASSADOR_FIELDS
    )
    assert fields["Id"]["updateable"] is False and fields["Name"]["createable"] is False
    same_shape(
        client.get(f"{API}/sobjects").json(),
        fixture("restforce/sobject__describe_sobjects_success_response.json"),
        optional={"mergeable"},
    )


def test_fields_are_invisible_until_a_permission_set_grants_them() -> None:
    emu = SalesforceEmulator(redirect_uris=[CALLBACK])  # nothing provisioned
    with org(emu) as (client, _token):

        def names() -> set[str]:
            return {
                f["name"] for f in client.get(f"{API}/sobjects/Contact/describe").json()["fields"]
            }

        assert not any(n.startswith("Ambassador_") for n in names())
        emu.provision_ambassador_fields(assign=False)  # deployed, not yet granted
        assert not any(n.startswith("Ambassador_") for n in names())
        missing = upsert(client, [{"Ambassador_Id__c": "s:1", "LastName": "L"}])
        assert missing.status_code == 404
        assert missing.json() == fixture("synthetic/error_external_id_field_missing_404.json")
        emu.assign_permission_set()
        assert {f.name for f in AMBASSADOR_FIELDS} <= names()
        emu.set_field_permission("Ambassador_Tier__c", readable=True, editable=False)
        tier = next(
            f
            for f in client.get(f"{API}/sobjects/Contact/describe").json()["fields"]
            if f["name"] == "Ambassador_Tier__c"
        )
        assert tier["updateable"] is False and tier["createable"] is False
        read_only = upsert(
            client, [{"Ambassador_Id__c": "s:1", "LastName": "L", "Ambassador_Tier__c": "Gold"}]
        ).json()
        assert read_only[0]["success"] is False
        assert read_only[0]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
        assert read_only[0]["errors"][0]["fields"] == ["Ambassador_Tier__c"]
        emu.unassign_permission_set()
        gone = client.patch(
            f"{API}/composite/sobjects",
            json={
                "records": [
                    {
                        "attributes": {"type": "Contact"},
                        "id": "003000000000000AAA",
                        "Ambassador_Code__c": "X",
                    }
                ]
            },
        )
        assert gone.status_code == 400
        assert gone.json()[0]["errorCode"] == "INVALID_FIELD"
        assert "Ambassador_Code__c" in gone.json()[0]["message"]
        same_shape(gone.json(), fixture("restforce/sobject__write_error_response.json"))


def test_removed_field_disappears(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, _ = api
    emu.remove_field("Ambassador_Engagement__c")
    names = {f["name"] for f in client.get(f"{API}/sobjects/Contact/describe").json()["fields"]}
    assert "Ambassador_Engagement__c" not in names and "Ambassador_Tier__c" in names
    refused = upsert(
        client,
        [{"Ambassador_Id__c": "s:1", "LastName": "L", "Ambassador_Engagement__c": "engaged"}],
    )
    assert refused.status_code == 400 and refused.json()[0]["errorCode"] == "INVALID_FIELD"
    assert soql(client, "SELECT Ambassador_Engagement__c FROM Contact").status_code == 400
    assert emu.write_log() == []


# --- writes ------------------------------------------------------------------------------------


def test_collections_upsert_per_record_results_like_the_documented_shapes(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, _ = api
    emu.add_contact(LastName="Okafor", Ambassador_Id__c="amb_1002")
    emu.add_validation_rule(
        lambda r: (
            r.get("Ambassador_Engagement_Score__c") is not None
            and not 0 <= r["Ambassador_Engagement_Score__c"] <= 100
        ),
        "Engagement score must be between 0 and 100.",
        field="Ambassador_Engagement_Score__c",
    )
    request = fixture("synthetic/composite_sobjects_upsert_request.json")
    records = request["records"]
    # the documented request puts a dateTime into a date field, which the JSON reader refuses;
    # send the date, and make record 3 collide with the unique external id of record 2 instead
    records[0]["Ambassador_Last_Referral__c"] = "2026-09-01"
    records[2]["Ambassador_Id__c"] = "AMB_1002"
    records[4]["Ambassador_Status__c"] = "Diamond"  # restricted picklist (Tier is Text here)
    answer = client.patch(
        f"{API}/composite/sobjects/Contact/Ambassador_Id__c",
        json={"allOrNone": False, "records": records},
    )
    assert answer.status_code == 200
    results = answer.json()
    expected = fixture("synthetic/composite_sobjects_upsert_response_mixed_allOrNone_false.json")
    same_shape(results[0], expected[0])
    for failed in results[1:]:
        same_shape(failed, expected[2])
    assert results[0]["created"] is True
    codes = [r["errors"][0]["statusCode"] if not r["success"] else None for r in results]
    assert codes == [
        None,
        "DUPLICATE_VALUE",
        "DUPLICATE_VALUE",
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    ]
    assert results[3]["errors"][0] == {
        "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "message": "Engagement score must be between 0 and 100.",
        "fields": ["Ambassador_Engagement_Score__c"],
    }
    same_shape(results[4], expected[4])
    stored = emu.contact_by_external_id("amb_1001")
    assert stored is not None and stored["Ambassador_Revenue__c"] == Decimal("1250.50")
    assert stored["Ambassador_Engagement_Score__c"] == Decimal("82.5")
    assert [e["operation"] for e in emu.write_log()] == ["create"]


def test_upsert_matches_the_external_id_case_insensitively_and_never_duplicates(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, _ = api
    first = upsert(client, [{"Ambassador_Id__c": "shop:7", "LastName": "Ng"}]).json()[0]
    again = upsert(client, [{"Ambassador_Id__c": "SHOP:7", "Ambassador_Tier__c": "Gold"}]).json()
    assert again == [{"id": first["id"], "success": True, "errors": [], "created": False}]
    assert len(emu.contacts()) == 1
    assert emu.contacts()[0]["Ambassador_Tier__c"] == "Gold"
    assert emu.contacts()[0]["LastName"] == "Ng"  # fields not sent are unchanged
    # a second Contact trying to take the same external id through an update
    other = emu.add_contact(LastName="Other")
    clash = client.patch(
        f"{API}/composite/sobjects",
        json={
            "records": [
                {"attributes": {"type": "Contact"}, "id": other["Id"], "Ambassador_Id__c": "Shop:7"}
            ]
        },
    ).json()
    assert clash[0]["success"] is False
    assert clash[0]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    assert first["id"] in clash[0]["errors"][0]["message"]
    same_shape(clash[0]["errors"][0], {"statusCode": "", "message": "", "fields": []})
    log = emu.write_log()
    assert [(e["api"], e["operation"]) for e in log] == [
        ("rest.collections.upsert", "create"),
        ("rest.collections.upsert", "update"),
    ]
    # the external id is matched ignoring case but stored as sent, so it changed too
    assert log[1]["changed"] == ["Ambassador_Id__c", "Ambassador_Tier__c"]


def test_all_or_none_rolls_back_the_batch(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, _ = api
    answer = upsert(
        client,
        [
            {"Ambassador_Id__c": "a:1", "LastName": "One"},
            {"Ambassador_Id__c": "a:2", "LastName": "Two", "Ambassador_Engagement__c": "very"},
            {"Ambassador_Id__c": "a:3", "LastName": "Three"},
        ],
        all_or_none=True,
    ).json()
    expected = fixture("synthetic/composite_sobjects_upsert_response_allOrNone_true.json")
    for got, want in zip(answer, expected, strict=True):
        same_shape(got, want)
    assert answer[0]["errors"][0] == expected[0]["errors"][0]
    assert answer[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert emu.contacts() == [] and emu.write_log() == []


def test_collections_limits_and_malformed_batches(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    _emu, client, _ = api
    too_many = upsert(client, [{"Ambassador_Id__c": f"x:{n}", "LastName": "L"} for n in range(201)])
    assert too_many.status_code == 400
    assert too_many.json() == fixture(
        "synthetic/composite_sobjects_upsert_response_too_many_records_400.json"
    )
    exactly = upsert(client, [{"Ambassador_Id__c": f"x:{n}", "LastName": "L"} for n in range(200)])
    assert exactly.status_code == 200 and all(r["created"] for r in exactly.json())
    untyped = client.patch(
        f"{API}/composite/sobjects/Contact/Ambassador_Id__c",
        json={"records": [{"Ambassador_Id__c": "x:1"}]},
    )
    assert untyped.status_code == 400
    wrong_kind = upsert(client, [{"Ambassador_Id__c": "x:1", "Ambassador_Orders__c": "many"}])
    assert wrong_kind.status_code == 400
    assert wrong_kind.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    date_time = upsert(
        client, [{"Ambassador_Id__c": "x:1", "Ambassador_Since__c": "2026-09-01T12:00:00Z"}]
    )
    assert date_time.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    not_json = client.patch(
        f"{API}/composite/sobjects/Contact/Ambassador_Id__c",
        content=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status_code == 400 and not_json.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    old = client.patch(
        "/services/data/v45.0/composite/sobjects/Contact/Ambassador_Id__c",
        json={"records": []},
    )
    assert old.status_code == 404


def test_field_types_are_enforced(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, _ = api
    cases = [
        ({"Ambassador_Code__c": "C" * 65}, "STRING_TOO_LONG"),
        ({"Ambassador_Tier__c": "T" * 81}, "STRING_TOO_LONG"),
        ({"Ambassador_Referral_URL__c": "https://x.example/" + "p" * 250}, "STRING_TOO_LONG"),
        ({"Ambassador_Engagement__c": "Engaged"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        ({"Ambassador_Orders__c": 10**18}, "NUMBER_OUTSIDE_VALID_RANGE"),
        ({"Ambassador_Engagement_Score__c": 10000}, "NUMBER_OUTSIDE_VALID_RANGE"),
        ({"Ambassador_Revenue__c": 10**14}, "NUMBER_OUTSIDE_VALID_RANGE"),
        ({"Email": "not-an-email"}, "INVALID_EMAIL_ADDRESS"),
        ({"LastName": None}, "REQUIRED_FIELD_MISSING"),
    ]
    records = [
        {"Ambassador_Id__c": f"t:{n}", "LastName": "L", **values}
        for n, (values, _) in enumerate(cases)
    ]
    results = upsert(client, records).json()
    assert [r["errors"][0]["statusCode"] for r in results] == [code for _, code in cases]
    assert results[3]["errors"][0] == {
        "statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "message": "Ambassador Engagement: bad value for restricted picklist field: Engaged",
        "fields": ["Ambassador_Engagement__c"],
    }
    ok = upsert(
        client,
        [
            {
                "Ambassador_Id__c": "ok:1",
                "LastName": "Fine",
                "Ambassador_Revenue__c": "99999999999999.994",
                "Ambassador_Orders__c": 3,
                "Ambassador_Engagement_Score__c": 66.66,
                "Ambassador_Since__c": "2026-01-31",
                "Ambassador_Status__c": None,
            }
        ],
    ).json()
    assert ok[0]["success"], ok
    stored = emu.contact_by_external_id("ok:1")
    assert stored is not None
    assert stored["Ambassador_Revenue__c"] == Decimal("99999999999999.99")
    assert stored["Ambassador_Engagement_Score__c"] == Decimal("66.7")
    row = soql(
        client,
        "SELECT Ambassador_Orders__c, Ambassador_Since__c FROM Contact "
        "WHERE Ambassador_Id__c = 'ok:1'",
    ).json()["records"][0]
    assert row["Ambassador_Orders__c"] == 3 and row["Ambassador_Since__c"] == "2026-01-31"


def test_single_record_calls(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    _emu, client, _ = api
    created = client.post(f"{API}/sobjects/Contact", json={"LastName": "Solo", "Email": "s@x.io"})
    assert created.status_code == 201
    same_shape(created.json(), wiremock_body("heroku_applink_wiremock/create.json"))
    contact_id = created.json()["id"]
    assert created.headers["Location"] == f"{API}/sobjects/Contact/{contact_id}"
    patched = client.patch(f"{API}/sobjects/Contact/{contact_id}", json={"FirstName": "Han"})
    assert (
        patched.status_code == fixture("heroku_applink_wiremock/update.json")["response"]["status"]
    )
    assert patched.content == b""
    got = client.get(f"{API}/sobjects/Contact/{contact_id}", params={"fields": "Name,Email"})
    assert got.json()["Name"] == "Han Solo" and set(got.json()) == {"attributes", "Name", "Email"}
    bad = client.patch(f"{API}/sobjects/Contact/003XYZ", json={"FirstName": "x"})
    assert bad.status_code == 400
    same_shape(bad.json(), wiremock_body("heroku_applink_wiremock/update-malformed-id.json"))
    picklist = client.patch(
        f"{API}/sobjects/Contact/{contact_id}", json={"Ambassador_Status__c": "gone"}
    )
    assert picklist.status_code == 400
    same_shape(
        picklist.json(), wiremock_body("heroku_applink_wiremock/create-invalid-picklist-value.json")
    )
    one = client.patch(f"{API}/sobjects/Contact/Ambassador_Id__c/s:9", json={"LastName": "Nine"})
    assert one.status_code == 201 and one.json()["created"] is True
    same_shape(
        one.json(),
        fixture("restforce/sobject__upsert_created_success_response.json"),
        optional={"created"},
    )
    again = client.patch(f"{API}/sobjects/Contact/Ambassador_Id__c/S:9", json={"FirstName": "N"})
    assert again.status_code == 200 and again.json()["id"] == one.json()["id"]
    assert client.delete(f"{API}/sobjects/Contact/{contact_id}").status_code == 204
    assert client.get(f"{API}/sobjects/Contact/{contact_id}").status_code == 404
    not_allowed = client.put(f"{API}/sobjects/Contact/{contact_id}", json={})
    assert not_allowed.status_code == 405


def test_permission_set_assignment() -> None:
    emu = SalesforceEmulator(redirect_uris=[CALLBACK])
    emu.provision_ambassador_fields(assign=False)
    with org(emu) as (client, token):
        user_id = client.get(token["id"]).json()["user_id"]
        ps_id = soql(
            client, "SELECT Id FROM PermissionSet WHERE Name = 'Ambassador_Connector'"
        ).json()["records"][0]["Id"]
        body = {"AssigneeId": user_id, "PermissionSetId": ps_id}
        assigned = client.post(f"{API}/sobjects/PermissionSetAssignment", json=body)
        assert assigned.status_code == 201 and assigned.json()["id"].startswith("0Pa")
        duplicate = client.post(f"{API}/sobjects/PermissionSetAssignment", json=body)
        assert duplicate.status_code == 400
        assert duplicate.json()[0]["errorCode"] == "DUPLICATE_VALUE"
        rows = soql(
            client,
            f"SELECT Id FROM PermissionSetAssignment WHERE AssigneeId = '{user_id}' "
            f"AND PermissionSetId = '{ps_id}'",
        ).json()
        assert rows["totalSize"] == 1
        names = {f["name"] for f in client.get(f"{API}/sobjects/Contact/describe").json()["fields"]}
        assert "Ambassador_Id__c" in names


# --- faults ------------------------------------------------------------------------------------


def test_validation_rule_rejects_some_records_of_a_batch_of_200(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, _ = api
    emu.add_validation_rule(
        lambda r: str(r.get("Ambassador_Code__c") or "").startswith("BAD"),
        "Code is not allowed.",
        field="Ambassador_Code__c",
    )
    records = [
        {
            "Ambassador_Id__c": f"v:{n}",
            "LastName": f"L{n}",
            "Ambassador_Code__c": ("BAD" if n % 50 == 0 else "OK") + str(n),
        }
        for n in range(200)
    ]
    results = upsert(client, records).json()
    failed = [n for n, r in enumerate(results) if not r["success"]]
    assert failed == [0, 50, 100, 150]
    assert results[50]["errors"][0]["statusCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    same_shape(
        {
            "message": results[50]["errors"][0]["message"],
            "errorCode": "x",
            "fields": results[50]["errors"][0]["fields"],
        },
        fixture("synthetic/error_field_custom_validation_400.json")[0],
    )
    assert len(emu.contacts()) == 196
    emu.clear_validation_rules()
    assert all(r["success"] for r in upsert(client, [records[0]]).json())


def test_lock_errors_for_records_and_for_calls(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, _ = api
    emu.fail_next_records_with_lock(2)
    results = upsert(
        client, [{"Ambassador_Id__c": f"l:{n}", "LastName": "L"} for n in range(3)]
    ).json()
    assert [r["success"] for r in results] == [False, False, True]
    assert results[0]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    retry = upsert(client, [{"Ambassador_Id__c": f"l:{n}", "LastName": "L"} for n in range(2)])
    assert all(r["success"] for r in retry.json())
    emu.fail_next_calls_with_lock(1)
    whole = upsert(client, [{"Ambassador_Id__c": "l:9", "LastName": "L"}])
    assert whole.status_code == 400
    same_shape(whole.json(), fixture("synthetic/error_unable_to_lock_row.json"))
    assert whole.headers["Sforce-Limit-Info"]  # charged: it reached Salesforce
    assert upsert(client, [{"Ambassador_Id__c": "l:9", "LastName": "L"}]).status_code == 200
    emu.fail_next_calls(2, status=500)
    assert client.get(f"{API}/limits").status_code == 500
    assert client.get(f"{API}/limits").json()[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    assert client.get(f"{API}/limits").status_code == 200


def test_down_and_latency(served: tuple[SalesforceEmulator, httpx.Client]) -> None:
    emu, client = served
    token = connect(emu, client)
    used = emu.api_usage
    emu.set_down()
    for answer in (
        client.get(f"{API}/limits", headers=bearer(token)),
        client.post("/services/oauth2/token", data={"grant_type": "refresh_token"}),
        client.get("/services/oauth2/authorize"),
    ):
        assert answer.status_code == 503
    assert emu.api_usage == used
    emu.set_down(False)
    emu.set_latency(0.3)
    started = time.monotonic()
    assert client.get(f"{API}/limits", headers=bearer(token)).status_code == 200
    assert time.monotonic() - started >= 0.3
    emu.clear_faults()
    assert emu.latency == 0


def test_duplicate_contacts_by_email_are_all_found(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, _ = api
    twins = emu.seed_duplicate_contacts("twin@example.com", 3)
    found = soql(client, "SELECT Id FROM Contact WHERE Email = 'Twin@Example.com'").json()
    assert sorted(r["Id"] for r in found["records"]) == sorted(t["Id"] for t in twins)


def test_audit_counts_calls_and_writes(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, _ = api
    emu.reset_audit()
    upsert(client, [{"Ambassador_Id__c": "w:1", "LastName": "W", "Ambassador_Tier__c": "Gold"}])
    upsert(client, [{"Ambassador_Id__c": "w:1", "Ambassador_Tier__c": "Gold"}])
    calls = emu.api_calls()
    assert [(c["method"], c["status"], c["counted"]) for c in calls] == [
        ("PATCH", 200, True),
        ("PATCH", 200, True),
    ]
    assert emu.api_call_count() == 2
    log = emu.write_log()
    assert [e["changed"] for e in log] == [
        ["Ambassador_Id__c", "Ambassador_Tier__c", "LastName"],
        [],
    ]
    assert all(e["external_id"] == "w:1" for e in log)


# --- simple-salesforce ---------------------------------------------------------------------------


def test_simple_salesforce_can_query_describe_and_call_rest() -> None:
    emu = SalesforceEmulator(redirect_uris=[CALLBACK], ambassador_fields=True)
    # simple-salesforce builds https:// URLs: serve TLS with a throw-away certificate
    server, base_url = serve_in_thread(emu, tls=True)
    try:
        assert base_url.startswith("https://") and server.ca_file
        trust = ssl.create_default_context(cafile=server.ca_file)
        with httpx.Client(base_url=base_url, verify=trust) as client:
            token = connect(emu, client)
        session = requests.Session()
        session.verify = server.ca_file
        session.trust_env = False  # else REQUESTS_CA_BUNDLE in the environment wins over verify
        sf = Salesforce(
            instance_url=token["instance_url"],
            session_id=token["access_token"],
            version=V,
            session=session,
        )
        emu.add_contact(LastName="Simple", Email="simple@example.com")
        result = sf.query("SELECT Id, Email FROM Contact WHERE Email = 'simple@example.com'")
        assert result["totalSize"] == 1
        assert result["records"][0]["Email"] == "simple@example.com"
        described = sf.Contact.describe()
        assert "Ambassador_Id__c" in {f["name"] for f in described["fields"]}
        answer = sf.restful(
            "composite/sobjects/Contact/Ambassador_Id__c",
            method="PATCH",
            json={
                "allOrNone": False,
                "records": [
                    {"attributes": {"type": "Contact"}, "Ambassador_Id__c": "ss:1", "LastName": "S"}
                ],
            },
        )
        assert answer[0]["success"] is True and answer[0]["created"] is True
        assert sf.query_all("SELECT Id FROM Contact")["totalSize"] == 2
        with pytest.raises(SalesforceMalformedRequest):
            sf.query("SELEKT Id FROM Contact")
        emu.expire_sessions()
        with pytest.raises(SalesforceExpiredSession):
            sf.query("SELECT Id FROM Contact")
    finally:
        server.shutdown()


# --- Bulk API 2.0 ------------------------------------------------------------------------------


def bulk_job(client: httpx.Client, body: dict[str, Any], data: bytes) -> str:
    created = client.post(f"{API}/jobs/ingest", json=body)
    assert created.status_code == 200, created.text
    job_id = str(created.json()["id"])
    put = client.put(
        f"{API}/jobs/ingest/{job_id}/batches", content=data, headers={"Content-Type": "text/csv"}
    )
    assert put.status_code == 201 and put.content == b""
    closed = client.patch(f"{API}/jobs/ingest/{job_id}", json={"state": "UploadComplete"})
    assert closed.status_code == 200 and closed.json()["state"] == "UploadComplete"
    return job_id


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


UPSERT_JOB = {
    "object": "Contact",
    "externalIdFieldName": "Ambassador_Id__c",
    "contentType": "CSV",
    "operation": "upsert",
    "lineEnding": "LF",
    "columnDelimiter": "COMMA",
}


def test_bulk_upsert_end_to_end_like_the_recorded_jobs(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, _ = api
    okafor = emu.add_contact(
        LastName="Okafor",
        Email="okafor@example.com",
        Ambassador_Id__c="amb_1002",
        Ambassador_Code__c="OK10",
    )
    request_body = fixture("synthetic/bulk2_create_ingest_upsert_job_request.json")
    assert request_body == UPSERT_JOB
    created = client.post(f"{API}/jobs/ingest", json=request_body)
    same_shape(created.json(), fixture("synthetic/bulk2_create_ingest_upsert_job_response.json"))
    job_id = created.json()["id"]
    assert job_id.startswith("750") and created.json()["state"] == "Open"
    assert created.json()["contentUrl"] == f"services/data/v{V}/jobs/ingest/{job_id}/batches"
    data = (FIXTURES / "synthetic/bulk2_upsert_data.csv").read_bytes()
    assert client.put(f"{API}/jobs/ingest/{job_id}/batches", content=data).status_code == 201
    twice = client.put(f"{API}/jobs/ingest/{job_id}/batches", content=data)
    assert twice.status_code == 400 and twice.json()[0]["errorCode"] == "INVALIDJOBSTATE"
    closed = client.patch(f"{API}/jobs/ingest/{job_id}", json={"state": "UploadComplete"})
    assert closed.json()["state"] == "UploadComplete"
    info = client.get(f"{API}/jobs/ingest/{job_id}").json()
    recorded = wiremock_body("heroku_applink_wiremock/get-info-7508z00000lSXvxQAG.json")
    same_shape(info, recorded, optional={"externalIdFieldName"})
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (
        "JobComplete",
        2,
        0,
    )
    ok = client.get(f"{API}/jobs/ingest/{job_id}/successfulResults/")
    assert ok.headers["Content-Type"].startswith("text/csv")
    rows = csv_rows(ok.text)
    header = data.decode().splitlines()[0].split(",")
    assert rows[0] == ["sf__Id", "sf__Created", *header]
    assert (
        rows[0][:2]
        == csv_rows(
            fixture("heroku_applink_wiremock/bulk-api-ingest-7508Z00000lSXvxQAG.json")["response"][
                "body"
            ]
        )[0][:2]
    )
    assert [(r[1], r[2]) for r in rows[1:]] == [("true", "amb_1001"), ("false", "amb_1002")]
    assert rows[2][0] == okafor["Id"]
    failed = client.get(f"{API}/jobs/ingest/{job_id}/failedResults")
    assert csv_rows(failed.text) == [["sf__Id", "sf__Error", *header]]
    updated = emu.contact(okafor["Id"])
    assert updated is not None
    assert updated["Email"] == "okafor@example.com"  # empty cell: unchanged
    assert updated["Ambassador_Code__c"] is None  # #N/A: null
    assert updated["Ambassador_Tier__c"] == "Silver"
    linh = emu.contact_by_external_id("amb_1001")
    assert linh is not None and linh["Ambassador_Revenue__c"] == Decimal("1250.50")
    assert {e["api"] for e in emu.write_log()} == {"bulk2.ingest"}


def test_bulk_rows_fail_alone_with_salesforce_error_cells(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, _ = api
    emu.add_validation_rule(
        lambda r: r.get("LastName") == "Rejected", "Not this one.", field="LastName"
    )
    emu.fail_next_records_with_lock(1)
    data = (
        b"Ambassador_Id__c,LastName,Ambassador_Status__c,Ambassador_Orders__c\n"
        b"k:1,Locked,active,1\n"
        b"k:2,Fine,active,2\n"
        b"k:3,Bad,Diamond,3\n"
        b"k:4,Rejected,active,4\n"
        b"k:5,Typed,active,many\n"
        b"k:6,Twice,active,6\n"
        b"K:6,Twice,active,6\n"
        b",Nobody,active,7\n"
    )
    job_id = bulk_job(client, UPSERT_JOB, data)
    info = client.get(f"{API}/jobs/ingest/{job_id}").json()
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (8, 7)
    ok = csv_rows(client.get(f"{API}/jobs/ingest/{job_id}/successfulResults").text)
    assert [r[2] for r in ok[1:]] == ["k:2"]
    failed = csv_rows(client.get(f"{API}/jobs/ingest/{job_id}/failedResults").text)
    expected_header = csv_rows((FIXTURES / "synthetic/bulk2_failedResults.csv").read_text())[0]
    assert failed[0][:2] == expected_header[:2]
    errors = {r[2]: r[1] for r in failed[1:]}
    assert errors["k:1"].startswith("UNABLE_TO_LOCK_ROW:")
    assert errors["k:3"] == (
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:Ambassador Status: bad value for restricted "
        "picklist field: Diamond:Ambassador_Status__c --"
    )
    assert errors["k:4"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION:Not this one.:LastName --"
    assert errors["k:5"].startswith("INVALID_TYPE_ON_FIELD_IN_RECORD:")
    assert errors["k:6"].startswith("DUPLICATE_VALUE:Duplicate external id specified: k:6")
    assert errors["K:6"].startswith("DUPLICATE_VALUE:")
    assert errors[""].startswith("MISSING_ARGUMENT:")
    assert [c["Ambassador_Id__c"] for c in emu.contacts()] == ["k:2"]


def test_bulk_job_states_failed_aborted_and_delayed(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, _ = api
    bad_column = bulk_job(client, UPSERT_JOB, b"Ambassador_Id__c,Ambassador_Tierr__c\nx:1,Gold\n")
    info = client.get(f"{API}/jobs/ingest/{bad_column}").json()
    same_shape(
        info,
        fixture("synthetic/bulk2_ingest_job_failed_state.json"),
        optional={
            "createdById",
            "createdDate",
            "systemModstamp",
            "concurrencyMode",
            "contentType",
            "lineEnding",
            "columnDelimiter",
            "totalProcessingTime",
            "apiActiveProcessingTime",
            "apexProcessingTime",
        },
    )
    assert info["state"] == "Failed"
    assert info["errorMessage"] == "InvalidBatch : Field name not found : Ambassador_Tierr__c"
    assert emu.contacts() == []

    created = client.post(f"{API}/jobs/ingest", json=UPSERT_JOB).json()
    client.put(
        f"{API}/jobs/ingest/{created['id']}/batches",
        content=b"Ambassador_Id__c,LastName\nu:1,One\nu:2,Two\n",
    )
    aborted = client.patch(f"{API}/jobs/ingest/{created['id']}", json={"state": "Aborted"})
    assert aborted.json()["state"] == "Aborted"
    unprocessed = client.get(f"{API}/jobs/ingest/{created['id']}/unprocessedrecords")
    recorded = fixture(
        "heroku_applink_wiremock/bulk-api-ingest-7508Z00000lSXvxQAG-unprocessed.json"
    )
    assert not csv_rows(recorded["response"]["body"])[0][0].startswith("sf__")
    assert csv_rows(unprocessed.text) == [
        ["Ambassador_Id__c", "LastName"],
        ["u:1", "One"],
        ["u:2", "Two"],
    ]
    assert emu.contacts() == []

    emu.bulk_delay = 60
    slow = bulk_job(client, UPSERT_JOB, b"Ambassador_Id__c,LastName\nd:1,Later\n")
    assert client.get(f"{API}/jobs/ingest/{slow}").json()["state"] == "InProgress"
    early = client.get(f"{API}/jobs/ingest/{slow}/successfulResults")
    assert early.status_code == 400
    emu.bulk_delay = 0
    assert client.get(f"{API}/jobs/ingest/{slow}").json()["state"] == "JobComplete"
    assert client.get(f"{API}/jobs/ingest/750000000000000AAA").status_code == 404
    assert client.delete(f"{API}/jobs/ingest/{slow}").status_code == 204
    wrong = client.post(f"{API}/jobs/ingest", json={**UPSERT_JOB, "externalIdFieldName": "Email"})
    assert wrong.status_code == 400 and wrong.json()[0]["errorCode"] == "INVALIDJOB"


# --- Metadata API deploy -------------------------------------------------------------------------

MD = "http://soap.sforce.com/2006/04/metadata"


def provisioning_zip(*, extra_permission: str | None = None, base64_wrapped: bool = False) -> bytes:
    package = f"""<?xml version="1.0" encoding="UTF-8"?>
<Package xmlns="{MD}">
  <types><members>Contact.Ambassador_Id__c</members><members>Contact.Ambassador_Status__c</members>
  <members>Contact.Ambassador_Revenue__c</members><name>CustomField</name></types>
  <types><members>Ambassador_Connector</members><name>PermissionSet</name></types>
  <version>{V}</version>
</Package>"""
    contact = f"""<?xml version="1.0" encoding="UTF-8"?>
<CustomObject xmlns="{MD}">
  <fields><fullName>Ambassador_Id__c</fullName><label>Ambassador Id</label><type>Text</type>
    <length>64</length><externalId>true</externalId><unique>true</unique>
    <caseSensitive>false</caseSensitive></fields>
  <fields><fullName>Ambassador_Status__c</fullName><label>Ambassador Status</label>
    <type>Picklist</type><valueSet><restricted>true</restricted><valueSetDefinition>
    <sorted>false</sorted>
    <value><fullName>active</fullName><default>false</default><label>active</label></value>
    <value><fullName>paused</fullName><default>false</default><label>paused</label></value>
    </valueSetDefinition></valueSet></fields>
  <fields><fullName>Ambassador_Revenue__c</fullName><label>Ambassador Revenue</label>
    <type>Currency</type><precision>16</precision><scale>2</scale></fields>
  <fields><fullName>Not_Listed__c</fullName><label>Not listed</label><type>Text</type>
    <length>5</length></fields>
</CustomObject>"""
    permissions = "".join(
        f"<fieldPermissions><editable>true</editable><field>Contact.{name}</field>"
        "<readable>true</readable></fieldPermissions>"
        for name in ("Ambassador_Status__c", "Ambassador_Revenue__c", extra_permission)
        if name
    )
    permission_set = f"""<?xml version="1.0" encoding="UTF-8"?>
<PermissionSet xmlns="{MD}"><label>Ambassador Connector</label>{permissions}
<fieldPermissions><editable>false</editable><field>Contact.Ambassador_Id__c</field>
<readable>true</readable></fieldPermissions></PermissionSet>"""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("package.xml", package)
        archive.writestr("objects/Contact.object", contact)
        archive.writestr("permissionsets/Ambassador_Connector.permissionset", permission_set)
    data = buffer.getvalue()
    return base64.b64encode(data) if base64_wrapped else data


def deploy(client: httpx.Client, data: bytes, **options: Any) -> httpx.Response:
    return client.post(
        f"{API}/metadata/deployRequest",
        files={
            "json": (
                None,
                json.dumps({"deployOptions": {"singlePackage": True, **options}}),
                "application/json",
            ),
            "file": ("deploy.zip", data, "application/zip"),
        },
    )


def test_metadata_deploy_creates_fields_and_permission_set() -> None:
    emu = SalesforceEmulator(redirect_uris=[CALLBACK])  # an org without the fields
    with org(emu) as (client, _token):
        started = deploy(client, provisioning_zip())
        assert started.status_code == 201
        body = started.json()
        assert set(body) == {
            "id",
            "validatedDeployRequestId",
            "deployOptions",
            "deployResult",
            "url",
        }
        assert body["id"].startswith("0Af") and body["deployResult"]["done"] is False
        assert body["deployResult"]["status"] == "Pending"
        assert body["deployOptions"]["rollbackOnError"] is True
        status = client.get(
            f"{API}/metadata/deployRequest/{body['id']}", params={"includeDetails": "true"}
        ).json()["deployResult"]
        assert (status["status"], status["done"], status["success"]) == (
            "Succeeded",
            True,
            True,
        )
        successes = {c["fullName"] for c in status["details"]["componentSuccesses"]}
        assert successes == {
            "package.xml",
            "Contact.Ambassador_Id__c",
            "Contact.Ambassador_Status__c",
            "Contact.Ambassador_Revenue__c",
            "Ambassador_Connector",
        }
        assert status["numberComponentsDeployed"] == 4
        assert "Not_Listed__c" not in emu.field_names()

        def described() -> dict[str, Any]:
            fields = client.get(f"{API}/sobjects/Contact/describe").json()["fields"]
            return {f["name"]: f for f in fields}

        assert "Ambassador_Id__c" not in described()  # granted, but not yet assigned
        ps = soql(client, "SELECT Id FROM PermissionSet WHERE Name = 'Ambassador_Connector'")
        client.post(
            f"{API}/sobjects/PermissionSetAssignment",
            json={"AssigneeId": emu.user.id, "PermissionSetId": ps.json()["records"][0]["Id"]},
        )
        fields = described()
        assert fields["Ambassador_Id__c"]["externalId"] is True
        assert fields["Ambassador_Id__c"]["updateable"] is False  # read-only in the set
        assert fields["Ambassador_Status__c"]["restrictedPicklist"] is True
        assert [p["value"] for p in fields["Ambassador_Status__c"]["picklistValues"]] == [
            "active",
            "paused",
        ]
        assert (
            fields["Ambassador_Revenue__c"]["precision"],
            fields["Ambassador_Revenue__c"]["scale"],
        ) == (16, 2)
        wrapped = deploy(client, provisioning_zip(base64_wrapped=True))
        again = client.get(f"{API}/metadata/deployRequest/{wrapped.json()['id']}").json()
        assert again["deployResult"]["status"] == "Succeeded"
        assert again["deployResult"]["details"] is None  # only with includeDetails


def test_failed_or_check_only_deploys_change_nothing() -> None:
    emu = SalesforceEmulator(redirect_uris=[CALLBACK])
    with org(emu) as (client, _token):
        before = emu.field_names()
        broken = deploy(client, provisioning_zip(extra_permission="Ambassador_Nope__c"))
        result = client.get(
            f"{API}/metadata/deployRequest/{broken.json()['id']}?includeDetails=true"
        ).json()["deployResult"]
        assert (result["status"], result["done"], result["success"]) == ("Failed", True, False)
        failure = result["details"]["componentFailures"][0]
        assert failure["fullName"] == "Ambassador_Connector"
        assert "Contact.Ambassador_Nope__c" in failure["problem"]
        assert emu.field_names() == before and emu.permission_set("Ambassador_Connector") is None
        checked = deploy(client, provisioning_zip(), checkOnly=True)
        state = client.get(f"{API}/metadata/deployRequest/{checked.json()['id']}").json()
        assert state["deployResult"]["status"] == "Succeeded"
        assert emu.field_names() == before
        not_zip = deploy(client, b"this is not a zip")
        state = client.get(f"{API}/metadata/deployRequest/{not_zip.json()['id']}").json()
        assert state["deployResult"]["status"] == "Failed"
        assert state["deployResult"]["errorMessage"].startswith("Invalid zip file")
        emu.deploy_delay = 60
        slow = deploy(client, provisioning_zip())
        state = client.get(f"{API}/metadata/deployRequest/{slow.json()['id']}").json()
        assert (state["deployResult"]["status"], state["deployResult"]["done"]) == (
            "InProgress",
            False,
        )
        assert client.get(f"{API}/metadata/deployRequest/0Af000000000000AAA").status_code == 404


def test_concurrent_upserts_of_the_same_ambassadors_never_duplicate(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, token = api
    records = [{"Ambassador_Id__c": f"c:{n}", "LastName": f"L{n}"} for n in range(50)]

    def run(worker: int) -> list[bool]:
        with httpx.Client(base_url=client.base_url, headers=bearer(token), timeout=10) as own:
            outcomes: list[bool] = []
            for _ in range(3):
                body = [{**r, "Ambassador_Tier__c": f"T{worker}"} for r in records]
                outcomes += [r["success"] for r in upsert(own, body).json()]
            return outcomes

    before = emu.api_usage
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = [ok for result in pool.map(run, range(8)) for ok in result]
    assert all(outcomes) and len(outcomes) == 8 * 3 * 50
    assert len(emu.contacts()) == 50
    assert sum(1 for e in emu.write_log() if e["operation"] == "create") == 50
    assert emu.api_usage - before == 24 and emu.api_call_count() >= 24


def test_uri_longer_than_salesforce_accepts_is_414(
    api: tuple[SalesforceEmulator, httpx.Client, dict[str, Any]],
) -> None:
    emu, client, _ = api
    used = emu.api_usage
    emails = ", ".join(f"'someone.with.a.long.address{n}@example-brand.com'" for n in range(400))
    too_long = soql(client, f"SELECT Id FROM Contact WHERE Email IN ({emails})")
    assert too_long.status_code == 414
    assert emu.api_usage == used  # refused before it reached the API
    fits = ", ".join(f"'a{n}@example.com'" for n in range(200))
    assert soql(client, f"SELECT Id FROM Contact WHERE Email IN ({fits})").status_code == 200


def test_org_page_and_control_api_for_the_demo(
    served: tuple[SalesforceEmulator, httpx.Client],
) -> None:
    emu, client = served
    seeded = client.post(
        "/_emulator/contacts",
        json={"LastName": "Demo", "Email": "demo@example.com", "Ambassador_Tier__c": "Gold"},
    )
    assert seeded.status_code == 201 and seeded.json()["Id"].startswith("003")
    assert client.post("/_emulator/contacts", json={"Nope__c": 1}).status_code == 400
    page = client.get("/")
    assert "demo@example.com" in page.text and "Gold" in page.text
    assert client.post("/_emulator/faults", json={"kind": "down"}).status_code == 200
    assert client.get("/services/data/").status_code == 503
    state = client.get("/_emulator/state").json()  # the control API works while "down"
    assert state["contacts"] == 1 and state["assigned_permission_sets"] == ["Ambassador_Connector"]
    assert client.delete("/_emulator/faults").status_code == 200
    assert client.get("/services/data/").status_code == 200
    assert client.post("/_emulator/faults", json={"kind": "bogus"}).status_code == 400
    client.post("/_emulator/faults", json={"kind": "api_usage", "used": 5, "limit": 5})
    assert emu.api_usage == 5 and emu.daily_api_limit == 5
    # only the two versions-list requests were logged, and neither was charged
    assert [(c["path"], c["counted"]) for c in emu.api_calls()] == [
        ("/services/data/", False),
        ("/services/data/", False),
    ]


def test_idle_sessions_time_out() -> None:
    now = [1_800_000_000.0]
    emu = SalesforceEmulator(redirect_uris=[CALLBACK], session_timeout=7200, clock=lambda: now[0])
    with org(emu) as (client, _token):
        now[0] += 7000
        assert client.get(f"{API}/limits").status_code == 200  # use keeps it alive
        now[0] += 7000
        assert client.get(f"{API}/limits").status_code == 200
        now[0] += 7201
        assert client.get(f"{API}/limits").status_code == 401


def test_the_daily_pool_is_a_rolling_24_hours() -> None:
    now = [1_800_000_000.0]
    emu = SalesforceEmulator(redirect_uris=[CALLBACK], daily_api_limit=3, clock=lambda: now[0])
    with org(emu) as (client, _token):
        for _ in range(3):
            assert client.get(f"{API}/limits").status_code == 200
            now[0] += 3600
        assert client.get(f"{API}/limits").status_code == 403
        now[0] += 21 * 3600 + 1  # the first call is now more than 24 hours old
        recovered = client.get(f"{API}/limits")
        assert recovered.status_code == 200
        assert recovered.headers["Sforce-Limit-Info"] == "api-usage=3/3"
        assert client.get(f"{API}/limits").status_code == 403
