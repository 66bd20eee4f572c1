"""Payouts, batches, transitions and payout preferences (``PayoutRepository``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from adapters.db.ledger_repositories import _exact
from adapters.db.repositories import _as_utc, _insert
from adapters.db.tables import (
    ambassadors,
    ledger_entries,
    order_rewards,
    payout_batches,
    payout_events,
    payout_preferences,
    payouts,
    shops,
)
from connector.domain.payouts import (
    OPEN_STATES,
    SHOPIFY_FORMS,
    PayoutState,
    RewardForm,
    idempotency_key,
)
from connector.ports import NewPayout, Payout, PayoutBatch, PayoutEvent, PayoutPreference

_P = payouts.c
_B = payout_batches.c
_E = payout_events.c
_F = payout_preferences.c
_L = ledger_entries.c
_W = order_rewards.c


def _at(value: Any) -> datetime:
    found = _as_utc(value)
    assert found is not None  # a NOT NULL column
    return found


def _payout(row: Any) -> Payout:
    return Payout(
        id=row.id,
        shop_id=row.shop_id,
        ambassador_id=row.ambassador_id,
        batch_id=row.batch_id,
        form=RewardForm(row.form),
        state=PayoutState(row.state),
        amount=_exact(row.amount),
        value=_exact(row.value),
        currency=row.currency,
        idempotency_key=row.idempotency_key,
        created_at=_at(row.created_at),
        updated_at=_at(row.updated_at),
        recipient_email=row.recipient_email,
        reward_code=row.reward_code,
        external_id=row.external_id,
        external_hint=row.external_hint,
        attempts=row.attempts,
        first_attempt_at=_as_utc(row.first_attempt_at),
        retry_at=_as_utc(row.retry_at),
        lease_until=_as_utc(row.lease_until),
        error_code=row.error_code,
        error=row.error,
        fulfilled_at=_as_utc(row.fulfilled_at),
    )


def _batch(row: Any) -> PayoutBatch:
    return PayoutBatch(
        id=row.id,
        shop_id=row.shop_id,
        period=row.period,
        created_at=_at(row.created_at),
        created_by=row.created_by,
        approved_at=_as_utc(row.approved_at),
        approved_by=row.approved_by,
        exported_at=_as_utc(row.exported_at),
        paid_at=_as_utc(row.paid_at),
    )


class SqlAlchemyPayoutRepository:
    def __init__(self, conn: sa.Connection, now: datetime) -> None:
        self._conn = conn
        self._now = now

    def lock_ambassador(self, shop_id: int, ambassador_id: int) -> bool:
        stmt = sa.select(ambassadors.c.id).where(
            ambassadors.c.shop_id == shop_id, ambassadors.c.id == ambassador_id
        )
        if self._conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return self._conn.execute(stmt).first() is not None

    def lock_ambassadors(self, shop_id: int, ambassador_ids: Sequence[int]) -> None:
        ids = sorted(ambassador_ids)  # one order for every locker: no deadlock between runs
        if self._conn.dialect.name != "postgresql":  # SQLite: the write lock serialises
            return
        for start in range(0, len(ids), 5000):  # bounded statement size
            chunk = ids[start : start + 5000]
            self._conn.execute(
                sa.select(ambassadors.c.id)
                .where(ambassadors.c.shop_id == shop_id, ambassadors.c.id.in_(chunk))
                .order_by(ambassadors.c.id)
                .with_for_update()
            ).all()

    def payable(
        self, shop_id: int, ambassador_ids: Sequence[int] | None = None
    ) -> dict[int, Decimal]:
        approved = sa.or_(_L.order_id.is_(None), _W.status == "approved")
        stmt = (
            sa.select(_L.ambassador_id, sa.func.sum(_L.amount))
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
            .where(_L.shop_id == shop_id, approved)
            .group_by(_L.ambassador_id)
        )
        if ambassador_ids is not None:
            stmt = stmt.where(_L.ambassador_id.in_(list(ambassador_ids)))
        return {r[0]: _exact(r[1]) for r in self._conn.execute(stmt)}

    # --- batches ---------------------------------------------------------------------------

    def add_batch(self, shop_id: int, period: str, actor: str) -> PayoutBatch | None:
        try:
            with self._conn.begin_nested():
                new_id = self._conn.execute(
                    sa.insert(payout_batches)
                    .values(shop_id=shop_id, period=period, created_at=self._now, created_by=actor)
                    .returning(_B.id)
                ).scalar_one()
        except IntegrityError:
            return None
        return self.batch(shop_id, new_id)

    def batch(self, shop_id: int, batch_id: int) -> PayoutBatch | None:
        row = self._conn.execute(
            sa.select(payout_batches).where(_B.shop_id == shop_id, _B.id == batch_id)
        ).first()
        return _batch(row) if row else None

    def batches(self, shop_id: int, limit: int = 50) -> list[PayoutBatch]:
        rows = self._conn.execute(
            sa.select(payout_batches)
            .where(_B.shop_id == shop_id)
            .order_by(_B.id.desc())
            .limit(limit)
        )
        return [_batch(r) for r in rows]

    def update_batch(self, batch: PayoutBatch) -> None:
        self._conn.execute(
            sa.update(payout_batches)
            .where(_B.id == batch.id, _B.shop_id == batch.shop_id)
            .values(
                approved_at=batch.approved_at,
                approved_by=batch.approved_by,
                exported_at=batch.exported_at,
                paid_at=batch.paid_at,
            )
        )

    # --- payouts ---------------------------------------------------------------------------

    def add(self, shop_id: int, payout: NewPayout, actor: str, reason: str) -> Payout:
        # The key needs the id: insert with a unique placeholder, then set the real key.
        placeholder = f"new-{uuid.uuid4().hex}"
        new_id = self._conn.execute(
            sa.insert(payouts)
            .values(
                shop_id=shop_id,
                ambassador_id=payout.ambassador_id,
                batch_id=payout.batch_id,
                form=payout.form.value,
                state=payout.state.value,
                amount=payout.amount,
                value=payout.value,
                currency=payout.currency,
                idempotency_key=placeholder,
                recipient_email=payout.recipient_email,
                created_at=self._now,
                updated_at=self._now,
            )
            .returning(_P.id)
        ).scalar_one()
        self._conn.execute(
            sa.update(payouts)
            .where(_P.id == new_id)
            .values(idempotency_key=idempotency_key(shop_id, new_id))
        )
        self._event(new_id, None, payout.state.value, actor, reason)
        found = self.get(shop_id, new_id)
        assert found is not None
        return found

    def get(self, shop_id: int, payout_id: int, *, for_update: bool = False) -> Payout | None:
        stmt = sa.select(payouts).where(_P.shop_id == shop_id, _P.id == payout_id)
        if for_update and self._conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = self._conn.execute(stmt).first()
        return _payout(row) if row else None

    def move(self, payout: Payout, target: Payout, actor: str, reason: str | None) -> None:
        self._conn.execute(
            sa.update(payouts)
            .where(_P.id == payout.id, _P.shop_id == payout.shop_id)
            .values(
                state=target.state.value,
                form=target.form.value,
                batch_id=target.batch_id,
                reward_code=target.reward_code,
                external_id=target.external_id,
                external_hint=target.external_hint,
                attempts=target.attempts,
                first_attempt_at=target.first_attempt_at,
                retry_at=target.retry_at,
                lease_until=target.lease_until,
                error_code=target.error_code,
                error=target.error,
                fulfilled_at=target.fulfilled_at,
                recipient_email=target.recipient_email,
                updated_at=self._now,
            )
        )
        if payout.state != target.state or reason:
            self._event(payout.id, payout.state.value, target.state.value, actor, reason)

    def _event(
        self, payout_id: int, from_state: str | None, to_state: str, actor: str, reason: str | None
    ) -> None:
        self._conn.execute(
            sa.insert(payout_events).values(
                payout_id=payout_id,
                from_state=from_state,
                to_state=to_state,
                actor=actor[:120],
                reason=reason,
                at=self._now,
            )
        )

    def search(
        self,
        shop_id: int,
        *,
        states: Sequence[PayoutState] = (),
        ambassador_id: int | None = None,
        batch_id: int | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[Payout]:
        stmt = sa.select(payouts).where(_P.shop_id == shop_id)
        if states:
            stmt = stmt.where(_P.state.in_([s.value for s in states]))
        if ambassador_id is not None:
            stmt = stmt.where(_P.ambassador_id == ambassador_id)
        if batch_id is not None:
            stmt = stmt.where(_P.batch_id == batch_id)
        if before_id is not None:
            stmt = stmt.where(_P.id < before_id)
        rows = self._conn.execute(stmt.order_by(_P.id.desc()).limit(limit))
        return [_payout(r) for r in rows]

    def due(self, now: datetime, limit: int = 500) -> list[tuple[int, int]]:
        forms = [f.value for f in SHOPIFY_FORMS]
        rows = self._conn.execute(
            sa.select(_P.shop_id, _P.id)
            .where(
                _P.form.in_(forms),
                sa.or_(
                    sa.and_(
                        _P.state == PayoutState.APPROVED.value,
                        sa.or_(_P.retry_at.is_(None), _P.retry_at <= now),
                    ),
                    sa.and_(_P.state == PayoutState.FULFILLING.value, _P.lease_until < now),
                ),
            )
            .order_by(_P.id)
            .limit(limit)
        )
        return [(r[0], r[1]) for r in rows]

    def open_figures(self, now: datetime) -> tuple[dict[str, int], datetime | None]:
        open_states = [s.value for s in OPEN_STATES]
        counts = {s: 0 for s in open_states}
        rows = self._conn.execute(
            sa.select(_P.state, sa.func.count())
            .where(_P.state.in_(open_states))  # ix_payouts_state_retry: never the history
            .group_by(_P.state)
        )
        counts.update({r[0]: int(r[1]) for r in rows})
        oldest = self._conn.execute(
            sa.select(sa.func.min(_P.updated_at)).where(
                _P.form.in_([f.value for f in SHOPIFY_FORMS]),
                _P.state == PayoutState.APPROVED.value,
                sa.or_(_P.retry_at.is_(None), _P.retry_at <= now),
            )
        ).scalar()
        return counts, _at(oldest) if oldest is not None else None

    def events(self, shop_id: int, payout_id: int) -> list[PayoutEvent]:
        rows = self._conn.execute(
            sa.select(payout_events)
            .join(payouts, _P.id == _E.payout_id)
            .where(_P.shop_id == shop_id, _E.payout_id == payout_id)
            .order_by(_E.id)
        )
        return [
            PayoutEvent(r.payout_id, r.from_state, r.to_state, r.actor, r.reason, _at(r.at))
            for r in rows
        ]

    def batch_totals(
        self, shop_id: int, batch_ids: Sequence[int]
    ) -> dict[int, list[tuple[str, str, str, Decimal, int]]]:
        out: dict[int, list[tuple[str, str, str, Decimal, int]]] = {b: [] for b in batch_ids}
        if not batch_ids:
            return out
        rows = self._conn.execute(
            sa.select(
                _P.batch_id, _P.form, _P.state, _P.currency, sa.func.sum(_P.amount), sa.func.count()
            )
            .where(_P.shop_id == shop_id, _P.batch_id.in_(list(batch_ids)))
            .group_by(_P.batch_id, _P.form, _P.state, _P.currency)
        )
        for r in rows:
            out[r[0]].append((r[1], r[2], r[3], _exact(r[4]), int(r[5])))
        return out

    def recorded_externals(self, shop_id: int, form: RewardForm, ambassador_id: int) -> set[str]:
        rows = self._conn.execute(
            sa.select(_P.external_id).where(
                _P.shop_id == shop_id,
                _P.ambassador_id == ambassador_id,
                _P.form == form.value,
                _P.external_id.is_not(None),
            )
        )
        return {r[0] for r in rows}

    # --- preferences -----------------------------------------------------------------------

    def preference(self, shop_id: int, ambassador_id: int) -> PayoutPreference | None:
        row = self._conn.execute(
            sa.select(payout_preferences).where(
                _F.shop_id == shop_id, _F.ambassador_id == ambassador_id
            )
        ).first()
        return (
            PayoutPreference(row.ambassador_id, RewardForm(row.form), row.paypal_email)
            if row
            else None
        )

    def preferences(self, shop_id: int) -> dict[int, PayoutPreference]:
        rows = self._conn.execute(sa.select(payout_preferences).where(_F.shop_id == shop_id))
        return {
            r.ambassador_id: PayoutPreference(r.ambassador_id, RewardForm(r.form), r.paypal_email)
            for r in rows
        }

    def save_preference(self, shop_id: int, preference: PayoutPreference) -> None:
        values = {
            "ambassador_id": preference.ambassador_id,
            "shop_id": shop_id,
            "form": preference.form.value,
            "paypal_email": preference.paypal_email,
            "updated_at": self._now,
        }
        stmt = _insert(self._conn, payout_preferences).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_F.ambassador_id],
            set_={k: v for k, v in values.items() if k != "ambassador_id"},
        )
        self._conn.execute(stmt)

    def totals_by_form(self, shop_id: int) -> dict[tuple[str, str], tuple[Decimal, int]]:
        rows = self._conn.execute(
            sa.select(_P.form, _P.state, sa.func.sum(_P.amount), sa.func.count())
            .where(_P.shop_id == shop_id)
            .group_by(_P.form, _P.state)
        )
        return {(r[0], r[1]): (_exact(r[2]), int(r[3])) for r in rows}

    def shop_domains(self, shop_ids: Iterable[int]) -> dict[int, str]:
        ids = list(shop_ids)
        if not ids:
            return {}
        rows = self._conn.execute(sa.select(shops.c.id, shops.c.domain).where(shops.c.id.in_(ids)))
        return {r.id: r.domain for r in rows}

    def unlocks(self, shop_id: int, ambassador_id: int) -> list[tuple[datetime, Decimal]]:
        rows = self._conn.execute(
            sa.select(_W.hold_until, sa.func.sum(_L.amount))
            .select_from(
                ledger_entries.join(
                    order_rewards,
                    sa.and_(
                        _W.shop_id == _L.shop_id,
                        _W.order_id == _L.order_id,
                        _W.ambassador_id == _L.ambassador_id,
                    ),
                )
            )
            .where(
                _L.shop_id == shop_id,
                _L.ambassador_id == ambassador_id,
                _W.status == "pending",
            )
            .group_by(_W.hold_until)
            .order_by(_W.hold_until)
        )
        return [(_at(r[0]), _exact(r[1])) for r in rows if _exact(r[1]) != 0]

    def pending_total(self, shop_id: int) -> Decimal:
        total = self._conn.execute(
            sa.select(sa.func.sum(_L.amount))
            .select_from(
                ledger_entries.join(
                    order_rewards,
                    sa.and_(
                        _W.shop_id == _L.shop_id,
                        _W.order_id == _L.order_id,
                        _W.ambassador_id == _L.ambassador_id,
                    ),
                )
            )
            .where(_L.shop_id == shop_id, _W.status == "pending")
        ).scalar()
        return _exact(total)
