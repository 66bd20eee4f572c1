"""Salesforce over HTTP: OAuth 2.0 web server flow with PKCE (authlib) and the REST, Bulk API
2.0 and Metadata (REST ``deployRequest``) calls the sync needs (httpx).

Implements :class:`connector.ports.CrmGateway` / :class:`connector.ports.CrmSession`.

- Every call has a timeout; failures come back as the typed :class:`connector.ports.CrmError`
  family (session expired / reauth required / daily pool spent / unavailable / setup).
- ``Sforce-Limit-Info`` is read on every response into ``session.usage``.
- A session never refreshes itself (Salesforce's token response has no ``expires_in``): the
  service refreshes on :class:`CrmSessionExpired` and asks for a new session.
- Tokens are never logged.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client

from connector.domain.salesforce import (
    EXTERNAL_ID,
    ApiUsage,
    ContactMatch,
    parse_limit_info,
)
from connector.ports import (
    CrmError,
    CrmLimitExceeded,
    CrmReauthRequired,
    CrmSessionExpired,
    CrmSetupError,
    CrmToken,
    CrmUnavailable,
    CrmWriteResult,
)

log = logging.getLogger(__name__)

#: The REST API version this build is written and tested against (pinned; bump deliberately).
API_VERSION = "62.0"
SCOPE = "api refresh_token"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
#: Bulk jobs are polled with a growing interval up to this, and given up on after BULK_WAIT.
BULK_POLL_MAX = 10.0
BULK_WAIT = 900.0


def _errors(response: httpx.Response) -> tuple[str, str]:
    """(errorCode, message) of an error body: ``[{message, errorCode}]`` or an OAuth object."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:300]
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("errorCode") or ""), str(body[0].get("message") or "")
    if isinstance(body, dict):
        if "error" in body:
            return str(body.get("error") or ""), str(body.get("error_description") or "")
        return str(body.get("errorCode") or ""), str(body.get("message") or "")
    return "", str(body)[:300]


def raise_for(response: httpx.Response) -> None:
    """Map an HTTP error response to the :class:`CrmError` family."""
    status = response.status_code
    if status < 300:
        return
    code, message = _errors(response)
    text = f"{code}: {message}" if code else message or f"HTTP {status}"
    if status == 401 or code == "INVALID_SESSION_ID":
        raise CrmSessionExpired(text, code=code or "INVALID_SESSION_ID", http_status=status)
    if code == "REQUEST_LIMIT_EXCEEDED":
        if "concurrent" in message.lower():
            raise CrmUnavailable(text, code=code, http_status=status)
        raise CrmLimitExceeded(text, code=code, http_status=status)
    if status >= 500 or code in {"SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW"}:
        raise CrmUnavailable(text, code=code, http_status=status)
    if code in {"INVALID_FIELD", "INVALID_TYPE"} or (
        status == 404 and "external id" in message.lower()
    ):
        raise CrmSetupError(text, code=code, http_status=status)
    raise CrmError(text, code=code, http_status=status)


class SalesforceGateway:
    """OAuth against ``login_url`` (production, test, or My Domain) and a session factory."""

    def __init__(
        self,
        client_id: str | None,
        client_secret: str | None,
        login_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        bulk_poll: float = 0.5,
    ) -> None:
        self._client_id = client_id or ""
        self._client_secret = client_secret or ""
        self._login_url = login_url.rstrip("/")
        self._transport = transport
        self._bulk_poll = bulk_poll

    def _oauth(self, redirect_uri: str | None = None) -> OAuth2Client:
        return OAuth2Client(
            client_id=self._client_id,
            client_secret=self._client_secret,
            redirect_uri=redirect_uri,
            scope=SCOPE,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name
            timeout=TIMEOUT,
            transport=self._transport,
        )

    def authorize_url(self, state: str, code_verifier: str, redirect_uri: str) -> str:
        with self._oauth(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                f"{self._login_url}/services/oauth2/authorize",
                state=state,
                code_verifier=code_verifier,
            )
        return str(url)

    def _token(self, call: Callable[[OAuth2Client], Any], redirect_uri: str | None) -> CrmToken:
        try:
            with self._oauth(redirect_uri) as client:
                token = call(client)
        except OAuthError as exc:
            if exc.error == "invalid_grant":
                raise CrmReauthRequired(f"invalid_grant: {exc.description}") from None
            raise CrmError(f"{exc.error}: {exc.description}", code=str(exc.error)) from None
        except httpx.HTTPError as exc:
            raise CrmUnavailable(f"{type(exc).__name__} talking to {self._login_url}") from None
        if not token.get("access_token") or not token.get("instance_url"):
            raise CrmError("token response without access_token or instance_url")
        return CrmToken(
            access_token=str(token["access_token"]),
            refresh_token=token.get("refresh_token"),
            instance_url=str(token["instance_url"]).rstrip("/"),
            identity_url=token.get("id"),
            scope=str(token.get("scope") or ""),
        )

    def exchange_code(self, code: str, code_verifier: str, redirect_uri: str) -> CrmToken:
        return self._token(
            lambda c: c.fetch_token(
                f"{self._login_url}/services/oauth2/token",
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
                redirect_uri=redirect_uri,
            ),
            redirect_uri,
        )

    def refresh(self, refresh_token: str) -> CrmToken:
        return self._token(
            lambda c: c.refresh_token(
                f"{self._login_url}/services/oauth2/token", refresh_token=refresh_token
            ),
            None,
        )

    def revoke(self, token: str) -> None:
        try:
            with httpx.Client(timeout=TIMEOUT, transport=self._transport) as http:
                http.post(f"{self._login_url}/services/oauth2/revoke", data={"token": token})
        except httpx.HTTPError:
            log.warning("salesforce.revoke_failed")

    def session(self, instance_url: str, access_token: str) -> SalesforceSession:
        return SalesforceSession(
            instance_url, access_token, transport=self._transport, bulk_poll=self._bulk_poll
        )


class SalesforceSession:
    """One org, one access token. Not thread-safe; cheap to build."""

    def __init__(
        self,
        instance_url: str,
        access_token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        bulk_poll: float = 0.5,
    ) -> None:
        self.usage: ApiUsage | None = None
        self.calls = 0
        self._bulk_poll = bulk_poll
        self._base = f"/services/data/v{API_VERSION}"
        self._http = httpx.Client(
            base_url=instance_url.rstrip("/"),
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            timeout=TIMEOUT,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = path if path.startswith("/services/") else f"{self._base}{path}"
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise CrmUnavailable(f"{type(exc).__name__} calling Salesforce") from None
        finally:
            self.calls += 1
        usage = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
        if usage is not None:
            self.usage = usage
        raise_for(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        return response.json() if response.content else None

    # --- reads ------------------------------------------------------------------------------

    def describe_contact(self) -> dict[str, bool]:
        body = self._json("GET", "/sobjects/Contact/describe")
        return {
            str(f["name"]): bool(f.get("updateable")) and bool(f.get("createable", True))
            for f in body.get("fields", [])
        }

    def query(self, soql: str) -> list[dict[str, Any]]:
        body = self._json("GET", "/query", params={"q": soql})
        records = list(body.get("records", []))
        while not body.get("done", True) and body.get("nextRecordsUrl"):
            body = self._json("GET", str(body["nextRecordsUrl"]))
            records.extend(body.get("records", []))
        return records

    def find_contacts(self, soql: str) -> list[ContactMatch]:
        return [
            ContactMatch(
                contact_id=str(r["Id"]),
                email=str(r.get("Email") or "").lower(),
                last_modified=str(r.get("LastModifiedDate") or ""),
                ambassador_id=r.get(EXTERNAL_ID),
            )
            for r in self.query(soql)
        ]

    def limits(self) -> ApiUsage | None:
        body = self._json("GET", "/limits")
        daily = (body or {}).get("DailyApiRequests") or {}
        if "Max" not in daily:
            return self.usage
        usage = ApiUsage(int(daily["Max"]) - int(daily.get("Remaining", 0)), int(daily["Max"]))
        self.usage = usage
        return usage

    # --- writes -----------------------------------------------------------------------------

    @staticmethod
    def _records(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [{"attributes": {"type": "Contact"}, **r} for r in records]

    @staticmethod
    def _results(body: Any, n: int) -> list[CrmWriteResult]:
        if not isinstance(body, list) or len(body) != n:
            raise CrmError(f"unexpected collection response ({type(body).__name__})")
        out = []
        for item in body:
            if item.get("success"):
                out.append(CrmWriteResult(True, item.get("id"), bool(item.get("created"))))
            else:
                error = (item.get("errors") or [{}])[0]
                out.append(
                    CrmWriteResult(
                        False,
                        item.get("id"),
                        error_code=str(error.get("statusCode") or "UNKNOWN"),
                        message=str(error.get("message") or ""),
                    )
                )
        return out

    def upsert(self, records: Sequence[Mapping[str, Any]]) -> list[CrmWriteResult]:
        body = self._json(
            "PATCH",
            f"/composite/sobjects/Contact/{EXTERNAL_ID}",
            json={"allOrNone": False, "records": self._records(records)},
        )
        return self._results(body, len(records))

    def update(self, records: Sequence[Mapping[str, Any]]) -> list[CrmWriteResult]:
        body = self._json(
            "PATCH",
            "/composite/sobjects",
            json={"allOrNone": False, "records": self._records(records)},
        )
        return self._results(body, len(records))

    def bulk(self, operation: str, records: Sequence[Mapping[str, Any]]) -> list[CrmWriteResult]:
        key = EXTERNAL_ID if operation == "upsert" else "Id"
        job: dict[str, Any] = {
            "object": "Contact",
            "operation": operation,
            "contentType": "CSV",
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
        }
        if operation == "upsert":
            job["externalIdFieldName"] = EXTERNAL_ID
        created = self._json("POST", "/jobs/ingest", json=job)
        job_id = str(created["id"])
        self._request(
            "PUT",
            f"/jobs/ingest/{job_id}/batches",
            content=_csv(records).encode(),
            headers={"Content-Type": "text/csv"},
        )
        self._json("PATCH", f"/jobs/ingest/{job_id}", json={"state": "UploadComplete"})
        waited, interval = 0.0, self._bulk_poll
        while True:
            info = self._json("GET", f"/jobs/ingest/{job_id}")
            state = info.get("state")
            if state == "JobComplete":
                break
            if state in {"Failed", "Aborted"}:
                message = str(info.get("errorMessage") or state)
                if "field name not found" in message.lower():
                    raise CrmSetupError(f"bulk job {job_id}: {message}", code="INVALID_FIELD")
                raise CrmUnavailable(f"bulk job {job_id}: {message}", code=str(state))
            if waited >= BULK_WAIT:
                raise CrmUnavailable(f"bulk job {job_id} still {state} after {int(waited)} s")
            time.sleep(interval)
            waited += interval
            interval = min(BULK_POLL_MAX, interval * 2)
        by_key: dict[str, CrmWriteResult] = {}
        ok = self._request("GET", f"/jobs/ingest/{job_id}/successfulResults/").text
        for row in csv.DictReader(io.StringIO(ok)):
            by_key[row.get(key) or ""] = CrmWriteResult(
                True, row.get("sf__Id") or None, (row.get("sf__Created") or "") == "true"
            )
        failed = self._request("GET", f"/jobs/ingest/{job_id}/failedResults/").text
        for row in csv.DictReader(io.StringIO(failed)):
            error = row.get("sf__Error") or "UNKNOWN:"
            code, _, message = error.partition(":")
            by_key[row.get(key) or ""] = CrmWriteResult(
                False, row.get("sf__Id") or None, error_code=code, message=message.rstrip(" -")
            )
        # Records in neither file were not processed: retried like a transient failure.
        missing = CrmWriteResult(False, error_code="UNPROCESSED", message="not processed")
        return [by_key.get(str(r.get(key) or ""), missing) for r in records]

    def assign_permission_set(self, name: str, user_id: str) -> bool:
        # The name is reduced to [A-Za-z0-9_]: nothing to escape in the literal.
        soql = f"SELECT Id FROM PermissionSet WHERE Name = '{_soql_name(name)}'"  # noqa: S608
        found = self.query(soql)
        if not found:
            return False
        try:
            self._json(
                "POST",
                "/sobjects/PermissionSetAssignment",
                json={"AssigneeId": user_id, "PermissionSetId": found[0]["Id"]},
            )
        except CrmError as exc:
            if exc.code != "DUPLICATE_VALUE":  # already assigned: that is what we wanted
                raise
        return True

    def deploy(self, package_zip: bytes) -> str:
        options = {"deployOptions": {"rollbackOnError": True, "singlePackage": True}}
        files = {
            "json": (None, json.dumps(options), "application/json"),
            "file": ("ambassador_connector.zip", package_zip, "application/zip"),
        }
        body = self._json("POST", "/metadata/deployRequest", files=files)
        return str(body["id"])

    def deploy_status(self, deploy_id: str) -> tuple[bool, bool, str | None]:
        body = self._json("GET", f"/metadata/deployRequest/{deploy_id}?includeDetails=true")
        result = body.get("deployResult") or {}
        done = bool(result.get("done"))
        success = bool(result.get("success")) or result.get("status") == "Succeeded"
        message = result.get("errorMessage")
        failures = (result.get("details") or {}).get("componentFailures") or []
        if isinstance(failures, dict):
            failures = [failures]
        if failures and not message:
            message = "; ".join(f"{f.get('fullName')}: {f.get('problem')}" for f in failures[:5])
        return done, success, message


def _soql_name(value: str) -> str:
    return "".join(ch for ch in value if ch.isalnum() or ch == "_")


def _csv_value(value: Any) -> str:
    if value is None:
        return "#N/A"  # Bulk 2.0: an empty cell leaves the field unchanged; #N/A sets null
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _csv(records: Sequence[Mapping[str, Any]]) -> str:
    columns: list[str] = []
    for record in records:
        for name in record:
            if name not in columns:
                columns.append(name)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([_csv_value(record.get(c)) if c in record else "" for c in columns])
    return out.getvalue()
