"""``FakeCrmGateway``: an in-memory Salesforce org behind the :class:`connector.ports.CrmGateway`
port, for service tests of the sync's logic and faults (the HTTP client is tested against the
emulator). Behaves like the real API where the sync depends on it: upsert by external id
(case-insensitive), update by Id, per-record errors with allOrNone false, a daily pool counted
per call, 401 for a dead access token, ``invalid_grant`` for a revoked refresh token."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from adapters.bootstrap import Container
from adapters.db.tables import ambassador_stats
from connector.domain.ambassadors import Ambassador, AmbassadorStatus
from connector.domain.salesforce import EXTERNAL_ID, FIELDS, ApiUsage, ContactMatch
from connector.ports import (
    CrmLimitExceeded,
    CrmReauthRequired,
    CrmSessionExpired,
    CrmToken,
    CrmUnavailable,
    CrmWriteResult,
)
from tests.conftest import SHOP, install_shop

_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")
STANDARD = {"Id": False, "Email": True, "FirstName": True, "LastName": True}


@dataclass
class FakeOrg:
    org_id: str = "00DXX0000000001EAA"
    user_id: str = "005XX000001b2c3QAA"
    instance_url: str = "https://acme.my.salesforce.com"
    limit: int = 15_000
    used: int = 0
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    fields: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(FIELDS, True))
    access_tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    permission_set_grants: bool = True  # assigning the set makes the fields writable
    down: bool = False
    lock_once: set[str] = field(default_factory=set)  # external ids: UNABLE_TO_LOCK_ROW once
    validation: Callable[[Mapping[str, Any]], str | None] | None = None
    on_write: Callable[[Sequence[Mapping[str, Any]]], None] | None = None
    expire_after_calls: int | None = None  # the session dies after this many calls
    calls: list[str] = field(default_factory=list)
    refreshes: int = 0
    revoked: list[str] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def new_id(self) -> str:
        return f"003XX{next(self._ids):010d}AAA"

    def add_contact(
        self,
        email: str,
        last_name: str = "Existing",
        modified: str = "2026-01-01T00:00:00.000+0000",
        **values: Any,
    ) -> str:
        cid = self.new_id()
        self.contacts[cid] = {
            "Id": cid,
            "Email": email,
            "LastName": last_name,
            "LastModifiedDate": modified,
            **values,
        }
        return cid

    def by_external_id(self, ext: str) -> dict[str, Any] | None:
        for c in self.contacts.values():
            if (c.get(EXTERNAL_ID) or "").lower() == ext.lower():
                return c
        return None

    def issue(self) -> CrmToken:
        n = len(self.access_tokens) + len(self.refresh_tokens) + self.refreshes
        access = f"00D!access-{n}"
        self.access_tokens.add(access)
        return CrmToken(
            access,
            None,
            self.instance_url,
            f"https://login.salesforce.com/id/{self.org_id}/{self.user_id}",
            "api refresh_token",
        )

    def expire_sessions(self) -> None:
        self.access_tokens.clear()


class FakeCrmGateway:
    def __init__(self, org: FakeOrg) -> None:
        self.org = org
        self.codes: dict[str, str] = {}  # code → verifier expected

    def authorize_url(self, state: str, code_verifier: str, redirect_uri: str) -> str:
        code = f"code-{len(self.codes)}"
        self.codes[code] = code_verifier
        return f"https://login.example/services/oauth2/authorize?state={state}&code={code}"

    def exchange_code(self, code: str, code_verifier: str, redirect_uri: str) -> CrmToken:
        if self.codes.pop(code, None) != code_verifier:
            raise CrmReauthRequired("invalid_grant: authorization code or verifier")
        token = self.org.issue()
        refresh = f"5Aep-{len(self.org.refresh_tokens)}"
        self.org.refresh_tokens.add(refresh)
        return CrmToken(
            token.access_token, refresh, token.instance_url, token.identity_url, token.scope
        )

    def refresh(self, refresh_token: str) -> CrmToken:
        if refresh_token not in self.org.refresh_tokens:
            raise CrmReauthRequired("invalid_grant: expired access/refresh token")
        self.org.refreshes += 1
        return self.org.issue()

    def revoke(self, token: str) -> None:
        self.org.revoked.append(token)
        self.org.refresh_tokens.discard(token)

    def session(self, instance_url: str, access_token: str) -> FakeSession:
        return FakeSession(self.org, access_token)


class FakeSession:
    def __init__(self, org: FakeOrg, token: str) -> None:
        self.org, self.token = org, token
        self.usage: ApiUsage | None = None
        self.calls = 0

    def _call(self, name: str, cost: int = 1) -> None:
        org = self.org
        if org.down:
            self.calls += 1
            raise CrmUnavailable("HTTP 503", http_status=503)
        if org.expire_after_calls is not None:
            if org.expire_after_calls <= 0:
                org.expire_after_calls = None
                org.expire_sessions()
            else:
                org.expire_after_calls -= 1
        if self.token not in org.access_tokens:
            self.calls += 1
            raise CrmSessionExpired(
                "INVALID_SESSION_ID: Session expired or invalid",
                code="INVALID_SESSION_ID",
                http_status=401,
            )
        if org.used + cost > org.limit:
            self.calls += 1
            raise CrmLimitExceeded(
                "REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.",
                code="REQUEST_LIMIT_EXCEEDED",
                http_status=403,
            )
        org.used += cost
        self.calls += cost
        org.calls.append(name)
        self.usage = ApiUsage(org.used, org.limit)

    def describe_contact(self) -> dict[str, bool]:
        self._call("describe")
        return {**STANDARD, **self.org.fields}

    def find_contacts(self, soql: str) -> list[ContactMatch]:
        self._call("query")
        emails = {m.replace("\\'", "'").lower() for m in _LITERAL.findall(soql)}
        return [
            ContactMatch(c["Id"], c["Email"].lower(), c["LastModifiedDate"], c.get(EXTERNAL_ID))
            for c in self.org.contacts.values()
            if (c.get("Email") or "").lower() in emails
        ]

    def _check(self, record: Mapping[str, Any]) -> CrmWriteResult | None:
        for name in record:
            if name in FIELDS and not self.org.fields.get(name, False):
                return CrmWriteResult(
                    False,
                    error_code="INVALID_FIELD",
                    message=f"No such column '{name}' on sobject of type Contact",
                )
        ext = record.get(EXTERNAL_ID)
        if ext and ext in self.org.lock_once:
            self.org.lock_once.discard(ext)
            return CrmWriteResult(
                False,
                error_code="UNABLE_TO_LOCK_ROW",
                message="unable to obtain exclusive access to this record",
            )
        if self.org.validation is not None and (message := self.org.validation(record)):
            return CrmWriteResult(
                False, error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION", message=message
            )
        return None

    def _write(self, record: Mapping[str, Any], by: str) -> CrmWriteResult:
        if (refused := self._check(record)) is not None:
            return refused
        values = {k: v for k, v in record.items() if k != "attributes"}
        if by == "Id":
            contact = self.org.contacts.get(values.get("Id") or "")
            if contact is None:
                return CrmWriteResult(
                    False, error_code="ENTITY_IS_DELETED", message="entity is deleted"
                )
            contact.update(values)
            return CrmWriteResult(True, contact["Id"], False)
        contact = self.org.by_external_id(values[EXTERNAL_ID])
        if contact is None:
            if not values.get("LastName"):
                return CrmWriteResult(
                    False,
                    error_code="REQUIRED_FIELD_MISSING",
                    message="Required fields are missing: [LastName]",
                )
            cid = self.org.new_id()
            self.org.contacts[cid] = {
                "Id": cid,
                "LastModifiedDate": "2026-11-22T00:00:00Z",
                **values,
            }
            return CrmWriteResult(True, cid, True)
        contact.update(values)
        return CrmWriteResult(True, contact["Id"], False)

    def _collection(
        self, name: str, records: Sequence[Mapping[str, Any]], by: str
    ) -> list[CrmWriteResult]:
        assert len(records) <= 200, "EXCEEDED_ID_LIMIT"
        self._call(name)
        if self.org.on_write is not None:
            self.org.on_write(records)
        return [self._write(r, by) for r in records]

    def upsert(self, records: Sequence[Mapping[str, Any]]) -> list[CrmWriteResult]:
        return self._collection("upsert", records, EXTERNAL_ID)

    def update(self, records: Sequence[Mapping[str, Any]]) -> list[CrmWriteResult]:
        return self._collection("update", records, "Id")

    def bulk(self, operation: str, records: Sequence[Mapping[str, Any]]) -> list[CrmWriteResult]:
        self._call(f"bulk_{operation}", cost=6)  # create, upload, close, poll, two results
        by = EXTERNAL_ID if operation == "upsert" else "Id"
        return [self._write(r, by) for r in records]

    def limits(self) -> ApiUsage | None:
        self._call("limits")
        return self.usage

    def assign_permission_set(self, name: str, user_id: str) -> bool:
        self._call("assign")
        if self.org.permission_set_grants:
            for f in self.org.fields:
                self.org.fields[f] = True
        return True

    def deploy(self, package_zip: bytes) -> str:
        self._call("deploy")
        return "0AfXX0000000001AAA"

    def deploy_status(self, deploy_id: str) -> tuple[bool, bool, str | None]:
        self._call("deploy_status")
        for f in FIELDS:
            self.org.fields.setdefault(f, False)
        return True, True, None


# --- helpers shared by the Salesforce tests ---------------------------------------------------


def enrol(
    c: Container, n: int, *, status: AmbassadorStatus = AmbassadorStatus.ACTIVE, start: int = 0
) -> list[int]:
    """Ambassadors saved directly (no Shopify code issuance involved)."""
    shop = shop_of(c)
    ids = []
    with c.uow() as uow:
        for i in range(start, start + n):
            a = uow.ambassadors.add(
                Ambassador(
                    id=None,
                    shop_id=shop.id,
                    email=f"amb{i}@example.com",
                    status=status,
                    first_name=f"First{i}",
                    last_name=f"Last{i}",
                    code=f"CODE{i}",
                    customer_id=1000 + i,
                    since=c.clock.now(),
                )
            )
            assert a is not None and a.id is not None
            ids.append(a.id)
        uow.commit()
    return ids


def set_stats(c: Container, ambassador_id: int, orders: int, revenue: str, paid: str = "0") -> None:
    shop = shop_of(c)
    row = {
        "ambassador_id": ambassador_id,
        "shop_id": shop.id,
        "attributed_orders": orders,
        "attributed_revenue": Decimal(revenue),
        "currency": "USD",
        "pending": Decimal("1.50"),
        "approved": Decimal(0),
        "paid": Decimal(paid),
        "reversed": Decimal(0),
        "balance": Decimal(0),
        "last_referral_at": c.clock.now(),
        "updated_at": c.clock.now(),
    }
    with c.engine.begin() as conn:
        conn.execute(
            sa.delete(ambassador_stats).where(ambassador_stats.c.ambassador_id == ambassador_id)
        )
        conn.execute(sa.insert(ambassador_stats).values(**row))


def shop_of(c: Container) -> Any:
    with c.uow() as uow:
        shop = uow.shops.get(SHOP)
    if shop is None:
        shop = install_shop(c)
    return shop
