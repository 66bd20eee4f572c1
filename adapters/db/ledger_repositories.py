"""Repositories for attribution and the reward ledger: order snapshots, refunds, attribution
records (the explanations), ledger entries, per-order reward state, ambassador statistics."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from adapters.db.repositories import _as_utc, _insert
from adapters.db.tables import (
    ambassador_stats,
    ambassadors,
    ledger_entries,
    order_attributions,
    order_refunds,
    order_rewards,
    orders,
)
from connector.domain.attribution import AmbassadorIdentity, Candidate, Reason
from connector.domain.orders import Line, Order, Refund, parse_ts
from connector.domain.tiers import Results
from connector.ports import AttributionRecord, LedgerEntry, RewardTotals

_O = orders.c
_R = order_refunds.c
_T = order_attributions.c
_L = ledger_entries.c
_W = order_rewards.c
_S = ambassador_stats.c


def _order_data(order: Order) -> dict[str, Any]:
    return {
        "lines": [
            [
                ln.id,
                ln.quantity,
                str(ln.price),
                str(ln.discount),
                str(ln.presentment_paid),
                ln.gift_card,
            ]
            for ln in order.lines
        ],
        "codes": [[code, str(discount)] for code, discount in order.codes],
        "financial_status": order.financial_status,
        "cancelled_at": order.cancelled_at.isoformat() if order.cancelled_at else None,
        "test": order.test,
        "presentment_currency": order.presentment_currency,
        "customer_created_at": order.customer_created_at.isoformat()
        if order.customer_created_at
        else None,
    }


def _to_order(row: Any, refunds: tuple[Refund, ...]) -> Order:
    data = row.data
    return Order(
        id=row.order_id,
        name=row.name,
        updated_at=row.shopify_updated_at,
        created_at=row.placed_at,
        currency=row.currency,
        presentment_currency=data.get("presentment_currency") or row.currency,
        financial_status=data["financial_status"],
        cancelled_at=parse_ts(data.get("cancelled_at")),
        test=bool(data.get("test")),
        codes=tuple((c, Decimal(d)) for c, d in data["codes"]),
        lines=tuple(
            Line(i, q, Decimal(p), Decimal(d), Decimal(pp), bool(g))
            for i, q, p, d, pp, g in data["lines"]
        ),
        customer_id=row.customer_id,
        customer_created_at=parse_ts(data.get("customer_created_at")),
        email=row.email,
        phone=row.phone,
        address=row.address_key,
        refunds=refunds,
    )


class SqlAlchemyOrderRepository:
    def __init__(self, conn: sa.Connection, now: datetime) -> None:
        self._conn = conn
        self._now = now

    def lock(self, shop_id: int, order_id: int) -> Order | None:
        """The stored snapshot, row-locked until the transaction ends (one writer per order)."""
        row = self._conn.execute(
            sa.select(orders)
            .where(_O.shop_id == shop_id, _O.order_id == order_id)
            .with_for_update()
        ).first()
        return _to_order(row, self.refunds(shop_id, order_id)) if row else None

    def get(self, shop_id: int, order_id: int) -> Order | None:
        row = self._conn.execute(
            sa.select(orders).where(_O.shop_id == shop_id, _O.order_id == order_id)
        ).first()
        return _to_order(row, self.refunds(shop_id, order_id)) if row else None

    def save(self, shop_id: int, order: Order, source: str) -> bool:
        """Insert or replace the snapshot; returns False (and keeps the stored one) when the
        stored version is newer (``updated_at``), so a stale webhook cannot roll it back."""
        values = {
            "name": order.name,
            "shopify_updated_at": order.updated_at,
            "placed_at": order.created_at,
            "currency": order.currency,
            "customer_id": order.customer_id,
            "email": order.email,
            "phone": order.phone,
            "address_key": order.address,
            "data": _order_data(order),
            "source": source,
            "received_at": self._now,
        }
        stmt = _insert(self._conn, orders).values(shop_id=shop_id, order_id=order.id, **values)
        newer = (
            sa.or_(
                _O.shopify_updated_at.is_(None),
                stmt.excluded.shopify_updated_at >= _O.shopify_updated_at,
            )
            if order.updated_at
            else sa.false()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[_O.shop_id, _O.order_id], set_=values, where=newer
        )
        return bool(self._conn.execute(stmt).rowcount)

    def add_refunds(self, shop_id: int, refunds: Iterable[Refund]) -> int:
        added = 0
        for refund in refunds:
            stmt = (
                _insert(self._conn, order_refunds)
                .values(
                    shop_id=shop_id,
                    refund_id=refund.id,
                    order_id=refund.order_id,
                    created_at=refund.created_at,
                    lines=[[line_id, qty, str(amount)] for line_id, qty, amount in refund.lines],
                )
                .on_conflict_do_nothing(index_elements=[_R.shop_id, _R.refund_id])
            )
            added += self._conn.execute(stmt).rowcount or 0
        return added

    def refunds(self, shop_id: int, order_id: int) -> tuple[Refund, ...]:
        rows = self._conn.execute(
            sa.select(order_refunds)
            .where(_R.shop_id == shop_id, _R.order_id == order_id)
            .order_by(_R.refund_id)
        )
        return tuple(
            Refund(
                r.refund_id,
                r.order_id,
                r.created_at,
                tuple((int(i), int(q), Decimal(a)) for i, q, a in r.lines),
            )
            for r in rows
        )

    def identities(self, shop_id: int, codes: list[str]) -> dict[str, AmbassadorIdentity]:
        """Ambassadors holding these codes, with the phones and addresses of their own orders
        (the self-referral signals)."""
        if not codes:
            return {}
        a = ambassadors.c
        rows = self._conn.execute(
            sa.select(a.id, a.code, a.status, a.customer_id, a.email).where(
                a.shop_id == shop_id, a.code.in_([c.upper() for c in codes])
            )
        )
        found: dict[str, AmbassadorIdentity] = {}
        for r in rows:
            phones: set[str] = set()
            addresses: set[str] = set()
            own = [_O.email == _normal(r.email)]
            if r.customer_id is not None:
                own.append(_O.customer_id == r.customer_id)
            for o in self._conn.execute(
                sa.select(_O.phone, _O.address_key)
                .where(_O.shop_id == shop_id, sa.or_(*own))
                .limit(50)
            ):
                if o.phone:
                    phones.add(o.phone)
                if o.address_key:
                    addresses.add(o.address_key)
            found[r.code] = AmbassadorIdentity(
                id=r.id,
                code=r.code,
                active=r.status == "active",
                customer_id=r.customer_id,
                email=_normal(r.email),
                phones=frozenset(phones),
                addresses=frozenset(addresses),
            )
        return found

    def returning_customer(self, shop_id: int, order: Order) -> bool:
        """Has this buyer ordered before this order (in what we know)? Shopify's customer
        record created more than a day before the order counts as returning too."""
        if (
            order.customer_created_at
            and order.created_at
            and ((order.created_at - order.customer_created_at).total_seconds() > 86400)
        ):
            return True
        who = []
        if order.customer_id is not None:
            who.append(_O.customer_id == order.customer_id)
        if order.email:
            who.append(_O.email == order.email)
        if not who or order.created_at is None:
            return False
        return (
            self._conn.execute(
                sa.select(_O.order_id)
                .where(
                    _O.shop_id == shop_id,
                    sa.or_(*who),
                    _O.order_id != order.id,
                    _O.placed_at < order.created_at,
                )
                .limit(1)
            ).first()
            is not None
        )

    def redact_customer(self, shop_id: int, customer_id: int | None, order_ids: list[int]) -> int:
        match = []
        if customer_id is not None:
            match.append(_O.customer_id == customer_id)
        if order_ids:
            match.append(_O.order_id.in_(order_ids))
        if not match:
            return 0
        return (
            self._conn.execute(
                sa.update(orders)
                .where(_O.shop_id == shop_id, sa.or_(*match))
                .values(email=None, phone=None, address_key=None, customer_id=None)
            ).rowcount
            or 0
        )

    def for_customer(
        self, shop_id: int, customer_id: int | None, order_ids: list[int]
    ) -> list[dict[str, Any]]:
        match = []
        if customer_id is not None:
            match.append(_O.customer_id == customer_id)
        if order_ids:
            match.append(_O.order_id.in_(order_ids))
        if not match:
            return []
        rows = self._conn.execute(
            sa.select(_O.order_id, _O.name, _O.email, _O.phone).where(
                _O.shop_id == shop_id, sa.or_(*match)
            )
        )
        return [
            {"order_id": r.order_id, "name": r.name, "email": r.email, "phone": r.phone}
            for r in rows
        ]


_SCALE = Decimal("0.0001")  # the Amount columns' scale


def _exact(value: Any) -> Decimal:
    """A SUM of amounts as an exact Decimal. SQLite sums NUMERIC as binary floats
    (3.55e-15 instead of 0); rounding to the column's scale restores the exact value."""
    if value is None:
        return Decimal(0)
    return Decimal(str(value)).quantize(_SCALE)


def _normal(email: str | None) -> str | None:
    from connector.domain.orders import normalise_email

    return normalise_email(email)


class SqlAlchemyLedgerRepository:
    def __init__(self, conn: sa.Connection, now: datetime) -> None:
        self._conn = conn
        self._now = now
        self._stale: dict[tuple[int, int], str | None] = {}

    # --- attribution records ----------------------------------------------------------

    def attribution(self, shop_id: int, order_id: int) -> AttributionRecord | None:
        row = self._conn.execute(
            sa.select(order_attributions).where(_T.shop_id == shop_id, _T.order_id == order_id)
        ).first()
        if row is None:
            return None
        return AttributionRecord(
            order_id=row.order_id,
            ambassador_id=row.ambassador_id,
            code=row.code,
            rule=row.rule,
            reason=Reason(row.reason),
            candidates=tuple(
                Candidate(
                    c["ambassador_id"], c["code"], Decimal(c["discount"]), Reason(c["verdict"])
                )
                for c in row.candidates
            ),
            rate=Decimal(row.rate) if row.rate is not None else None,
            base=Decimal(row.base),
            reward=Decimal(row.reward),
            currency=row.currency,
            placed_at=row.placed_at,
            cancelled=row.cancelled,
            decided_at=row.decided_at,
            updated_at=row.updated_at,
        )

    def save_attribution(self, shop_id: int, record: AttributionRecord) -> None:
        values = {
            "ambassador_id": record.ambassador_id,
            "code": record.code,
            "rule": record.rule,
            "reason": record.reason.value,
            "candidates": [
                {
                    "ambassador_id": c.ambassador_id,
                    "code": c.code,
                    "discount": str(c.discount),
                    "verdict": c.verdict.value,
                }
                for c in record.candidates
            ],
            "rate": record.rate,
            "base": record.base,
            "reward": record.reward,
            "currency": record.currency,
            "placed_at": record.placed_at,
            "cancelled": record.cancelled,
            "updated_at": self._now,
        }
        stmt = _insert(self._conn, order_attributions).values(
            shop_id=shop_id, order_id=record.order_id, decided_at=self._now, **values
        )
        self._conn.execute(
            stmt.on_conflict_do_update(index_elements=[_T.shop_id, _T.order_id], set_=values)
        )

    # --- entries ------------------------------------------------------------------------

    def booked(self, shop_id: int, order_id: int) -> dict[int, tuple[Decimal, int]]:
        """Per ambassador: the sum of this order's entries and how many there are."""
        rows = self._conn.execute(
            sa.select(_L.ambassador_id, sa.func.sum(_L.amount), sa.func.count())
            .where(_L.shop_id == shop_id, _L.order_id == order_id)
            .group_by(_L.ambassador_id)
        )
        return {r[0]: (_exact(r[1]), int(r[2])) for r in rows}

    def append(self, shop_id: int, entry: LedgerEntry) -> bool:
        """Append one entry; a repeated idempotency key is ignored (returns False)."""
        stmt = (
            _insert(self._conn, ledger_entries)
            .values(
                shop_id=shop_id,
                ambassador_id=entry.ambassador_id,
                order_id=entry.order_id,
                kind=entry.kind,
                amount=entry.amount,
                currency=entry.currency,
                presentment_amount=entry.presentment_amount,
                presentment_currency=entry.presentment_currency,
                reason=entry.reason,
                idempotency_key=entry.idempotency_key,
                created_at=self._now,
            )
            .on_conflict_do_nothing(index_elements=[_L.idempotency_key])
        )
        return bool(self._conn.execute(stmt).rowcount)

    def entries(
        self, shop_id: int, ambassador_id: int, *, after_id: int | None = None, limit: int = 100
    ) -> list[LedgerEntry]:
        stmt = sa.select(ledger_entries).where(
            _L.shop_id == shop_id, _L.ambassador_id == ambassador_id
        )
        if after_id is not None:
            stmt = stmt.where(_L.id < after_id)
        rows = self._conn.execute(stmt.order_by(_L.id.desc()).limit(limit))
        return [
            LedgerEntry(
                r.ambassador_id,
                r.order_id,
                r.kind,
                Decimal(r.amount),
                r.currency,
                Decimal(r.presentment_amount) if r.presentment_amount is not None else None,
                r.presentment_currency,
                r.reason,
                r.idempotency_key,
                id=r.id,
                created_at=r.created_at,
            )
            for r in rows
        ]

    # --- reward state -------------------------------------------------------------------

    def hold(self, shop_id: int, order_id: int, ambassador_id: int, hold_until: datetime) -> None:
        """Start the order's hold for this ambassador (kept if it already started)."""
        stmt = (
            _insert(self._conn, order_rewards)
            .values(
                shop_id=shop_id,
                order_id=order_id,
                ambassador_id=ambassador_id,
                status="pending",
                hold_until=hold_until,
            )
            .on_conflict_do_nothing(index_elements=[_W.shop_id, _W.order_id, _W.ambassador_id])
        )
        self._conn.execute(stmt)

    def approve_due(self, now: datetime, limit: int = 5000) -> list[tuple[int, int]]:
        """Approve rewards whose hold ended; returns the (shop id, ambassador id) touched."""
        due = self._conn.execute(
            sa.select(_W.shop_id, _W.order_id, _W.ambassador_id)
            .where(_W.status == "pending", _W.hold_until <= now)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for r in due:
            self._conn.execute(
                sa.update(order_rewards)
                .where(
                    _W.shop_id == r.shop_id,
                    _W.order_id == r.order_id,
                    _W.ambassador_id == r.ambassador_id,
                )
                .values(status="approved", approved_at=now)
            )
        return sorted({(r.shop_id, r.ambassador_id) for r in due})

    def refresh_stats(self, shop_id: int, ambassador_id: int, currency: str | None) -> None:
        """Mark the ambassador's figures for recomputation; :meth:`flush` (run by the unit of
        work just before it commits) recomputes each marked ambassador once, in the same
        transaction as the entries that changed them, so they are never out of step."""
        key = (shop_id, ambassador_id)
        self._stale[key] = currency or self._stale.get(key)

    def flush(self) -> None:
        stale, self._stale = self._stale, {}
        for (shop_id, ambassador_id), currency in sorted(stale.items()):
            self._recompute_stats(shop_id, ambassador_id, currency)

    def _recompute_stats(self, shop_id: int, ambassador_id: int, currency: str | None) -> None:
        currency = (
            currency
            or self._conn.execute(
                sa.select(_L.currency)
                .where(_L.shop_id == shop_id, _L.ambassador_id == ambassador_id)
                .limit(1)
            ).scalar()
            or "USD"
        )
        credited = self._conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(_T.base), 0),
                sa.func.max(_T.placed_at),
            ).where(
                _T.shop_id == shop_id, _T.ambassador_id == ambassador_id, _T.cancelled.is_(False)
            )
        ).one()
        by_status = dict(
            self._conn.execute(
                sa.select(sa.func.coalesce(_W.status, "none"), sa.func.sum(_L.amount))
                .select_from(
                    ledger_entries.outerjoin(
                        order_rewards,
                        sa.and_(
                            _W.shop_id == _L.shop_id,
                            _W.order_id == _L.order_id,
                            _W.ambassador_id == _L.ambassador_id,
                        ),
                    )
                )
                .where(_L.shop_id == shop_id, _L.ambassador_id == ambassador_id)
                .group_by(_W.status)
            ).all()
        )
        reversed_total = self._conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(_L.amount), 0)).where(
                _L.shop_id == shop_id, _L.ambassador_id == ambassador_id, _L.kind == "reversal"
            )
        ).scalar_one()
        by_status = {k: _exact(v) for k, v in by_status.items()}
        balance = sum(by_status.values(), Decimal(0))
        last = _as_utc(credited[2])
        values = {
            "shop_id": shop_id,
            "attributed_orders": int(credited[0]),
            "attributed_revenue": _exact(credited[1]),
            "currency": currency,
            "pending": Decimal(by_status.get("pending") or 0),
            "approved": Decimal(by_status.get("approved") or 0),
            "paid": Decimal(by_status.get("paid") or 0),
            "reversed": -_exact(reversed_total),
            "balance": balance,
            "last_referral_at": last,
            "updated_at": self._now,
        }
        stmt = _insert(self._conn, ambassador_stats).values(ambassador_id=ambassador_id, **values)
        self._conn.execute(
            stmt.on_conflict_do_update(index_elements=[_S.ambassador_id], set_=values)
        )

    def results_since(self, shop_id: int, since: datetime) -> dict[int, Results]:
        """Per ambassador, over orders placed since ``since`` and not cancelled: revenue
        credited (net of refunds), orders, and new customers (buyers with no earlier order)."""
        earlier = orders.alias("earlier")
        buyer = orders.alias("buyer")
        first_time = ~sa.exists().where(
            earlier.c.shop_id == buyer.c.shop_id,
            earlier.c.placed_at < buyer.c.placed_at,
            sa.or_(sa.and_(buyer.c.customer_id.is_not(None),
                           earlier.c.customer_id == buyer.c.customer_id),
                   sa.and_(buyer.c.email.is_not(None), earlier.c.email == buyer.c.email)),
        )
        rows = self._conn.execute(
            sa.select(_T.ambassador_id, sa.func.count(), sa.func.coalesce(sa.func.sum(_T.base), 0),
                      sa.func.sum(sa.case((first_time, 1), else_=0)))
            .select_from(order_attributions.join(buyer, sa.and_(
                buyer.c.shop_id == _T.shop_id, buyer.c.order_id == _T.order_id)))
            .where(_T.shop_id == shop_id, _T.ambassador_id.is_not(None),
                   _T.cancelled.is_(False), _T.placed_at >= since)
            .group_by(_T.ambassador_id))
        return {r[0]: Results(revenue=_exact(r[2]), orders=int(r[1]),
                              new_customers=int(r[3] or 0)) for r in rows}

    def totals(self, shop_id: int, ambassador_ids: list[int]) -> dict[int, RewardTotals]:
        self.flush()
        if not ambassador_ids:
            return {}
        rows = self._conn.execute(
            sa.select(ambassador_stats).where(
                _S.shop_id == shop_id, _S.ambassador_id.in_(ambassador_ids)
            )
        )
        out = {}
        for r in rows:
            last = r.last_referral_at
            out[r.ambassador_id] = RewardTotals(
                attributed_orders=r.attributed_orders,
                attributed_revenue=Decimal(r.attributed_revenue),
                currency=r.currency,
                pending=Decimal(r.pending),
                approved=Decimal(r.approved),
                paid=Decimal(r.paid),
                reversed=Decimal(r.reversed),
                balance=Decimal(r.balance),
                last_referral_at=last,
            )
        return out
