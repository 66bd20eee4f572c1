"""Salesforce connections (tokens encrypted here, on the way in and out) and each ambassador's
Contact link (``SalesforceRepository``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from adapters.crypto import TokenCipher
from adapters.db.tables import (
    ambassador_stats,
    ambassadors,
    salesforce_connections,
    salesforce_contacts,
    shops,
    tiers,
)
from connector.domain.salesforce import (
    AmbassadorSnapshot,
    ConnectionStatus,
    ContactLink,
    FieldReport,
    LinkState,
    SalesforceConnection,
)

_C = salesforce_connections.c
_L = salesforce_contacts.c
_A = ambassadors.c
_S = ambassador_stats.c
_T = tiers.c


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def _fields_json(report: FieldReport) -> dict[str, Any]:
    data = asdict(report)
    data["checked_at"] = report.checked_at.isoformat() if report.checked_at else None
    return data


def _fields(data: Mapping[str, Any] | None) -> FieldReport:
    if not data:
        return FieldReport()
    checked = data.get("checked_at")
    return FieldReport(
        missing=tuple(data.get("missing") or ()),
        not_writable=tuple(data.get("not_writable") or ()),
        checked_at=datetime.fromisoformat(checked) if checked else None,
        permission_set_assigned=data.get("permission_set_assigned"),
        note=data.get("note"),
    )


class SqlAlchemySalesforceRepository:
    def __init__(self, conn: sa.Connection, cipher: TokenCipher, now: datetime) -> None:
        self._conn = conn
        self._cipher = cipher
        self._now = now

    # --- the connection ---------------------------------------------------------------------

    def connection(self, shop_id: int, *, for_update: bool = False) -> SalesforceConnection | None:
        query = sa.select(salesforce_connections).where(_C.shop_id == shop_id)
        if for_update:
            query = query.with_for_update()
        row = self._conn.execute(query).first()
        if row is None:
            return None
        return SalesforceConnection(
            shop_id=row.shop_id,
            status=ConnectionStatus(row.status),
            instance_url=row.instance_url,
            access_token=self._cipher.decrypt(row.access_token_enc),
            refresh_token=self._cipher.decrypt(row.refresh_token_enc),
            org_id=row.org_id,
            user_id=row.user_id,
            scope=row.scope or "",
            connected_at=row.connected_at,
            fields=_fields(row.fields),
            api_used=row.api_used,
            api_limit=row.api_limit,
            paused_until=row.paused_until,
            pause_reason=row.pause_reason,
            last_sync_at=row.last_sync_at,
            last_sync=row.last_sync,
            last_error=row.last_error,
        )

    def save_connection(self, connection: SalesforceConnection) -> None:
        c = connection
        values = {
            "status": c.status.value,
            "instance_url": c.instance_url,
            "access_token_enc": self._cipher.encrypt(c.access_token),
            "refresh_token_enc": self._cipher.encrypt(c.refresh_token),
            "org_id": c.org_id,
            "user_id": c.user_id,
            "scope": c.scope,
            "connected_at": c.connected_at,
            "fields": _fields_json(c.fields),
            "api_used": c.api_used,
            "api_limit": c.api_limit,
            "paused_until": c.paused_until,
            "pause_reason": (c.pause_reason or None) and c.pause_reason[:255],
            "last_sync_at": c.last_sync_at,
            "last_sync": dict(c.last_sync) if c.last_sync is not None else None,
            "last_error": c.last_error,
            "updated_at": self._now,
        }
        stmt = _insert(self._conn, salesforce_connections).values(shop_id=c.shop_id, **values)
        self._conn.execute(stmt.on_conflict_do_update(index_elements=[_C.shop_id], set_=values))

    def connected_shops(self) -> list[str]:
        rows = self._conn.execute(
            sa.select(shops.c.domain)
            .join(salesforce_connections, _C.shop_id == shops.c.id)
            .where(_C.status == ConnectionStatus.CONNECTED.value, shops.c.status == "installed")
            .order_by(shops.c.id)
        )
        return [r.domain for r in rows]

    def begin_sync(self, shop_id: int, until: datetime) -> bool:
        result = self._conn.execute(
            sa.update(salesforce_connections)
            .where(
                _C.shop_id == shop_id,
                sa.or_(_C.sync_lease_until.is_(None), _C.sync_lease_until < self._now),
            )
            .values(sync_lease_until=until)
        )
        return bool(result.rowcount)

    def end_sync(self, shop_id: int) -> None:
        self._conn.execute(
            sa.update(salesforce_connections)
            .where(_C.shop_id == shop_id)
            .values(sync_lease_until=None)
        )

    # --- ambassadors and their links -------------------------------------------------------

    def snapshots(self, shop_id: int) -> list[tuple[AmbassadorSnapshot, ContactLink | None]]:
        query = (
            sa.select(
                _A.id,
                _A.email,
                _A.first_name,
                _A.last_name,
                _A.status,
                _A.code,
                _A.since,
                _T.name.label("tier"),
                _S.attributed_orders,
                _S.attributed_revenue,
                _S.pending,
                _S.approved,
                _S.paid,
                _S.last_referral_at,
                *[col.label(f"l_{col.name}") for col in salesforce_contacts.c],
            )
            .select_from(ambassadors)
            .outerjoin(tiers, _T.id == _A.tier_id)
            .outerjoin(ambassador_stats, _S.ambassador_id == _A.id)
            .outerjoin(salesforce_contacts, _L.ambassador_id == _A.id)
            .where(_A.shop_id == shop_id)
            .order_by(_A.id)
        )
        out = []
        zero = Decimal(0)
        for r in self._conn.execute(query):
            link = self._link(r) if r.l_ambassador_id is not None else None
            pending, approved, paid = (
                Decimal(r.pending or 0),
                Decimal(r.approved or 0),
                Decimal(r.paid or 0),
            )
            snapshot = AmbassadorSnapshot(
                ambassador_id=r.id,
                email=r.email,
                first_name=r.first_name or "",
                last_name=r.last_name or "",
                status=r.status,
                tier=r.tier,
                code=r.code,
                since=r.since,
                orders=int(r.attributed_orders or 0),
                revenue=Decimal(r.attributed_revenue) if r.attributed_revenue is not None else zero,
                rewards_earned=pending + approved + paid,
                rewards_paid=paid,
                last_referral_at=r.last_referral_at,
                erased=bool(link and link.erase),
            )
            out.append((snapshot, link))
        return out

    @staticmethod
    def _link(r: Any) -> ContactLink:
        return ContactLink(
            ambassador_id=r.l_ambassador_id,
            contact_id=r.l_contact_id,
            synced_hash=r.l_synced_hash,
            state=LinkState(r.l_state),
            failed_hash=r.l_failed_hash,
            error_code=r.l_error_code,
            error_message=r.l_error_message,
            attempts=r.l_attempts,
            retry_at=r.l_retry_at,
            note=r.l_note,
            synced_at=r.l_synced_at,
            erase=bool(r.l_erase),
        )

    def save_links(self, shop_id: int, links: Sequence[ContactLink]) -> None:
        if not links:
            return
        rows = [
            {
                "ambassador_id": link.ambassador_id,
                "shop_id": shop_id,
                "contact_id": link.contact_id,
                "synced_hash": link.synced_hash,
                "failed_hash": link.failed_hash,
                "state": link.state.value,
                "error_code": (link.error_code or None) and link.error_code[:64],
                "error_message": (link.error_message or None) and link.error_message[:2000],
                "attempts": link.attempts,
                "retry_at": link.retry_at,
                "note": link.note,
                "erase": link.erase,
                "synced_at": link.synced_at,
                "updated_at": self._now,
            }
            for link in links
        ]
        stmt = _insert(self._conn, salesforce_contacts)
        excluded = stmt.excluded
        update = {
            name: getattr(excluded, name)
            for name in (
                "contact_id",
                "synced_hash",
                "failed_hash",
                "state",
                "error_code",
                "error_message",
                "attempts",
                "retry_at",
                "note",
                "synced_at",
                "updated_at",
            )
        }
        # A redaction that arrived meanwhile stays requested (OR, never cleared here).
        update["erase"] = sa.or_(_L.erase, excluded.erase)
        self._conn.execute(
            stmt.on_conflict_do_update(index_elements=[_L.ambassador_id], set_=update), rows
        )

    def forget(self, shop_id: int, ambassador_ids: Sequence[int]) -> None:
        if ambassador_ids:
            self._conn.execute(
                sa.delete(salesforce_contacts).where(
                    _L.shop_id == shop_id, _L.ambassador_id.in_(list(ambassador_ids))
                )
            )

    def forget_all(self, shop_id: int) -> None:
        self._conn.execute(sa.delete(salesforce_contacts).where(_L.shop_id == shop_id))

    def request_erasure(self, shop_id: int, ambassador_id: int) -> None:
        stmt = _insert(self._conn, salesforce_contacts).values(
            ambassador_id=ambassador_id,
            shop_id=shop_id,
            state=LinkState.SYNCED.value,
            erase=True,
            attempts=0,
            updated_at=self._now,
        )
        self._conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[_L.ambassador_id],
                set_={"erase": True, "updated_at": self._now},
                where=_L.shop_id == shop_id,
            )
        )

    def parked(self, shop_id: int, limit: int = 100) -> list[tuple[ContactLink, str]]:
        rows = self._conn.execute(
            sa.select(*[col.label(f"l_{col.name}") for col in salesforce_contacts.c], _A.email)
            .join(ambassadors, _A.id == _L.ambassador_id)
            .where(_L.shop_id == shop_id, _L.state == LinkState.PARKED.value)
            .order_by(_L.updated_at.desc(), _L.ambassador_id.desc())
            .limit(limit)
        )
        return [(self._link(r), r.email) for r in rows]

    def noted(self, shop_id: int, limit: int = 100) -> list[tuple[ContactLink, str]]:
        rows = self._conn.execute(
            sa.select(*[col.label(f"l_{col.name}") for col in salesforce_contacts.c], _A.email)
            .join(ambassadors, _A.id == _L.ambassador_id)
            .where(
                _L.shop_id == shop_id,
                _L.state == LinkState.SYNCED.value,
                _L.note.is_not(None),
            )
            .order_by(_L.ambassador_id.desc())
            .limit(limit)
        )
        return [(self._link(r), r.email) for r in rows]

    def retry_parked(self, shop_id: int) -> int:
        result = self._conn.execute(
            sa.update(salesforce_contacts)
            .where(
                _L.shop_id == shop_id,
                _L.state.in_([LinkState.PARKED.value, LinkState.RETRY.value]),
            )
            .values(failed_hash=None, retry_at=None, attempts=0, updated_at=self._now)
        )
        return int(result.rowcount or 0)

    def counts(self, shop_id: int) -> dict[str, int]:
        rows = self._conn.execute(
            sa.select(_L.state, sa.func.count())
            .where(_L.shop_id == shop_id, _L.synced_hash.is_not(None) | (_L.state != "synced"))
            .group_by(_L.state)
        )
        out = {state.value: 0 for state in LinkState}
        out.update({r[0]: int(r[1]) for r in rows})
        return out
