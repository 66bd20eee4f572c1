"""Repositories of the ambassador program: ambassadors and their audit trail, program settings
and tiers, shared discounts, task runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from adapters.db.tables import (
    ambassador_events,
    ambassador_stats,
    ambassadors,
    code_retirements,
    engagement_scores,
    program_settings,
    shared_discounts,
    task_runs,
    tiers,
)
from connector.domain.ambassadors import Ambassador, AmbassadorStatus, AuditEntry, CodeState
from connector.domain.program import ProgramSettings
from connector.domain.tiers import Tier
from connector.ports import AmbassadorQuery, TaskRun

_A = ambassadors.c
_S = ambassador_stats.c
_E = engagement_scores.c


def _to_ambassador(row: Any) -> Ambassador:
    return Ambassador(
        id=row.id,
        shop_id=row.shop_id,
        email=row.email,
        status=AmbassadorStatus(row.status),
        first_name=row.first_name,
        last_name=row.last_name,
        customer_id=row.customer_id,
        tier_id=row.tier_id,
        tier_locked=row.tier_locked,
        demotion_pending_since=row.demotion_pending_since,
        code=row.code,
        code_state=CodeState(row.code_state),
        discount_gid=row.discount_gid,
        redeem_code_gid=row.redeem_code_gid,
        source=row.source,
        social=row.social or {},
        since=row.since,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


def _values(a: Ambassador) -> dict[str, Any]:
    return {
        "shop_id": a.shop_id,
        "email": a.email,
        "first_name": a.first_name,
        "last_name": a.last_name,
        "customer_id": a.customer_id,
        "status": a.status.value,
        "tier_id": a.tier_id,
        "tier_locked": a.tier_locked,
        "demotion_pending_since": a.demotion_pending_since,
        "code": a.code.upper() if a.code else None,
        "code_state": a.code_state.value,
        "discount_gid": a.discount_gid,
        "redeem_code_gid": a.redeem_code_gid,
        "source": a.source,
        "social": dict(a.social),
        "since": a.since,
    }


class SqlAlchemyAmbassadorRepository:
    def __init__(self, conn: sa.Connection, now: datetime) -> None:
        self._conn = conn
        self._now = now

    def _one(self, *where: Any, for_update: bool = False) -> Ambassador | None:
        stmt = sa.select(ambassadors).where(*where)
        if for_update:
            stmt = stmt.with_for_update()
        row = self._conn.execute(stmt).first()
        return _to_ambassador(row) if row else None

    def get(
        self, shop_id: int, ambassador_id: int, *, for_update: bool = False
    ) -> Ambassador | None:
        return self._one(_A.shop_id == shop_id, _A.id == ambassador_id, for_update=for_update)

    def by_email(self, shop_id: int, email: str) -> Ambassador | None:
        return self._one(_A.shop_id == shop_id, _A.email == email.lower())

    def names(self, shop_id: int, ambassador_ids: Sequence[int]) -> dict[int, tuple[str, str, str]]:
        if not ambassador_ids:
            return {}
        rows = self._conn.execute(
            sa.select(_A.id, _A.first_name, _A.last_name, _A.email).where(
                _A.shop_id == shop_id, _A.id.in_(list(ambassador_ids))
            )
        )
        return {r.id: (r.first_name or "", r.last_name or "", r.email) for r in rows}

    def by_customer(self, shop_id: int, customer_id: int) -> Ambassador | None:
        return self._one(_A.shop_id == shop_id, _A.customer_id == customer_id)

    def by_code(self, shop_id: int, code: str) -> Ambassador | None:
        return self._one(_A.shop_id == shop_id, _A.code == code.strip().upper())

    def add(self, ambassador: Ambassador) -> Ambassador | None:
        values = {
            **_values(ambassador),
            "created_at": self._now,
            "updated_at": self._now,
            "version": 1,
        }
        # A savepoint, so a unique violation (same email or customer, racing enrolment) leaves
        # the caller's transaction usable.
        try:
            with self._conn.begin_nested():
                new_id = self._conn.execute(
                    sa.insert(ambassadors).values(**values).returning(_A.id)
                ).scalar_one()
        except IntegrityError:
            return None
        return self.get(ambassador.shop_id, new_id)

    def save(self, ambassador: Ambassador) -> Ambassador:
        assert ambassador.id is not None
        self._conn.execute(
            sa.update(ambassadors)
            .where(_A.id == ambassador.id, _A.shop_id == ambassador.shop_id)
            .values(**_values(ambassador), updated_at=self._now, version=_A.version + 1)
        )
        saved = self.get(ambassador.shop_id, ambassador.id)
        assert saved is not None
        return saved

    def reserve_code(self, shop_id: int, ambassador_id: int, code: str) -> bool:
        try:
            with self._conn.begin_nested():
                result = self._conn.execute(
                    sa.update(ambassadors)
                    .where(_A.id == ambassador_id, _A.shop_id == shop_id)
                    .values(
                        code=code.upper(),
                        code_state=CodeState.PENDING.value,
                        redeem_code_gid=None,
                        updated_at=self._now,
                        version=_A.version + 1,
                    )
                )
        except IntegrityError:
            return False
        return bool(result.rowcount)

    def needing_code_sync(self, shop_id: int, limit: int) -> list[Ambassador]:
        active = _A.status == AmbassadorStatus.ACTIVE.value
        rows = self._conn.execute(
            sa.select(ambassadors)
            .where(
                _A.shop_id == shop_id,
                _A.code.is_not(None),
                sa.or_(
                    sa.and_(active, _A.code_state.in_(["pending", "missing", "inactive"])),
                    sa.and_(sa.not_(active), _A.code_state == "active"),
                ),
            )
            .order_by(_A.id)
            .limit(limit)
        )
        return [_to_ambassador(r) for r in rows]

    def issued_codes(self, shop_id: int) -> list[Ambassador]:
        rows = self._conn.execute(
            sa.select(ambassadors)
            .where(
                _A.shop_id == shop_id,
                _A.discount_gid.is_not(None),
                _A.code_state.in_(["active", "inactive"]),
            )
            .order_by(_A.id)
        )
        return [_to_ambassador(r) for r in rows]

    def retire_code(
        self, shop_id: int, ambassador_id: int, discount_gid: str, redeem_code_gid: str
    ) -> None:
        self._conn.execute(
            sa.insert(code_retirements).values(
                shop_id=shop_id,
                ambassador_id=ambassador_id,
                discount_gid=discount_gid,
                redeem_code_gid=redeem_code_gid,
                created_at=self._now,
            )
        )

    def pending_retirements(self, shop_id: int) -> list[tuple[int, str, str]]:
        r = code_retirements.c
        rows = self._conn.execute(
            sa.select(r.id, r.discount_gid, r.redeem_code_gid)
            .where(r.shop_id == shop_id, r.done_at.is_(None))
            .order_by(r.id)
        )
        return [(row.id, row.discount_gid, row.redeem_code_gid) for row in rows]

    def retirement_done(self, shop_id: int, retirement_id: int) -> None:
        r = code_retirements.c
        self._conn.execute(
            sa.update(code_retirements)
            .where(r.id == retirement_id, r.shop_id == shop_id)
            .values(done_at=self._now)
        )

    def search(self, shop_id: int, query: AmbassadorQuery) -> list[Ambassador]:
        return [a for a, _ in self.search_keyed(shop_id, query)]

    def search_keyed(
        self, shop_id: int, query: AmbassadorQuery
    ) -> list[tuple[Ambassador, tuple[Any, ...]]]:
        key = query.sort.lstrip("-")
        if key in _RESULT_SORTS:
            return self._by_result(shop_id, query, key)
        descending = query.sort.startswith("-")
        keys: list[Any] = [_A.first_name, _A.last_name] if key == "name" else []
        stmt = self._filtered(sa.select(ambassadors, *keys), ambassadors, shop_id, query)
        if query.after_id is not None:
            stmt = stmt.where(_A.id < query.after_id)
        if query.after is not None:
            stmt = stmt.where(_after(keys, _A.id, query.after, descending))
        stmt = stmt.order_by(*[c.desc() if descending else c.asc() for c in [*keys, _A.id]])
        rows = self._conn.execute(stmt.limit(query.limit))
        n = len(keys)
        return [(_to_ambassador(r), tuple(r[-n:]) if n else ()) for r in rows]

    def _by_result(
        self, shop_id: int, query: AmbassadorQuery, key: str
    ) -> list[tuple[Ambassador, tuple[Any, ...]]]:
        """Sorted by a statistic or the engagement score. Ambassadors without the row (nothing
        credited, not scored yet) sort below every value. Two keyset walks, each on an index:
        the rows that have a value (``(shop_id, value, ambassador_id)``), then those without
        (by id, an anti-join); descending takes them in that order, ascending the other way."""
        table, value_of = _RESULT_SORTS[key]
        value, owner = value_of(table.c), table.c.ambassador_id
        descending = query.sort.startswith("-")
        after_value, after_id = (query.after[0][0], query.after[1]) if query.after else (None, 0)
        # Where the cursor is: in the walk over values, over the rows without, or before both.
        phases = ["valued", "missing"] if descending else ["missing", "valued"]
        if query.after is not None:
            phases = phases[phases.index("missing" if after_value is None else "valued") :]
        found: list[tuple[Ambassador, tuple[Any, ...]]] = []
        for i, phase in enumerate(phases):
            room = query.limit - len(found)
            if room <= 0:
                break
            bounded = query.after is not None and i == 0
            if phase == "valued":
                source = ambassadors.join(table, owner == _A.id)
                stmt = self._filtered(
                    sa.select(ambassadors, value).where(table.c.shop_id == shop_id),
                    source,
                    shop_id,
                    query,
                    scores_joined=table is engagement_scores,
                )
                if bounded:
                    cursor = ((after_value,), after_id)
                    stmt = stmt.where(_after([value], owner, cursor, descending))
                order = [value, owner]
            else:
                other = table.alias()
                none = ~sa.exists().where(other.c.ambassador_id == _A.id)
                stmt = self._filtered(
                    sa.select(ambassadors, sa.null()).where(none), ambassadors, shop_id, query
                )
                if bounded:
                    stmt = stmt.where(_A.id < after_id if descending else _A.id > after_id)
                order = [_A.id]
            stmt = stmt.order_by(*[c.desc() if descending else c.asc() for c in order])
            for r in self._conn.execute(stmt.limit(room)):
                found.append((_to_ambassador(r), (_sort_value(r[-1]),)))
        return found

    def _filtered(
        self,
        stmt: Any,
        source: Any,
        shop_id: int,
        query: AmbassadorQuery,
        *,
        scores_joined: bool = False,
    ) -> Any:
        """``stmt`` over ``source`` with the shop and the query's filters."""
        if query.band and not scores_joined:
            source = source.outerjoin(engagement_scores, _E.ambassador_id == _A.id)
        stmt = stmt.select_from(source).where(_A.shop_id == shop_id)
        if query.status:
            stmt = stmt.where(_A.status == query.status)
        if query.tier_id is not None:
            stmt = stmt.where(_A.tier_id == query.tier_id)
        if query.band:
            # Not scored yet (applied, removed, or enrolled since the last scoring) reads as
            # "not engaged", as the API shows it.
            stmt = stmt.where(sa.func.coalesce(_E.band, "not engaged") == query.band)
        if query.text:
            needle = query.text.strip().lower()
            like = f"%{_escape_like(needle)}%"
            stmt = stmt.where(
                sa.or_(
                    _A.email.like(like, escape="\\"),
                    sa.func.lower(_A.first_name + " " + _A.last_name).like(like, escape="\\"),
                    _A.code == needle.upper(),
                )
            )
        return stmt

    def count_by_status(self, shop_id: int) -> dict[str, int]:
        rows = self._conn.execute(
            sa.select(_A.status, sa.func.count()).where(_A.shop_id == shop_id).group_by(_A.status)
        )
        return {status: count for status, count in rows}

    def tier_positions(self, shop_id: int) -> list[tuple[int, int | None]]:
        rows = self._conn.execute(
            sa.select(_A.id, _A.tier_id).where(
                _A.shop_id == shop_id, _A.status != AmbassadorStatus.REMOVED.value
            )
        )
        return [(r.id, r.tier_id) for r in rows]

    def enrolled_customers(self, shop_id: int, customer_ids: list[int]) -> set[int]:
        found: set[int] = set()
        for start in range(0, len(customer_ids), 1000):
            rows = self._conn.execute(
                sa.select(_A.customer_id).where(
                    _A.shop_id == shop_id, _A.customer_id.in_(customer_ids[start : start + 1000])
                )
            )
            found.update(r.customer_id for r in rows)
        return found

    def tags_to_sync(self, shop_id: int, limit: int) -> list[tuple[int, int, str, bool]]:
        wants_tag = _A.status.in_([AmbassadorStatus.ACTIVE.value, AmbassadorStatus.PAUSED.value])
        rows = self._conn.execute(
            sa.select(_A.id, _A.customer_id, _A.status, _A.customer_tagged)
            .where(
                _A.shop_id == shop_id,
                _A.customer_id.is_not(None),
                sa.or_(
                    sa.and_(wants_tag, sa.not_(_A.customer_tagged)),
                    sa.and_(sa.not_(wants_tag), _A.customer_tagged),
                ),
            )
            .order_by(_A.id)
            .limit(limit)
        )
        return [(r.id, r.customer_id, r.status, r.customer_tagged) for r in rows]

    def mark_tagged(self, shop_id: int, ambassador_id: int, tagged: bool) -> None:
        self._conn.execute(
            sa.update(ambassadors)
            .where(_A.id == ambassador_id, _A.shop_id == shop_id)
            .values(customer_tagged=tagged)
        )

    def audit(self, shop_id: int, entry: AuditEntry) -> None:
        self._conn.execute(
            sa.insert(ambassador_events).values(
                shop_id=shop_id,
                ambassador_id=entry.ambassador_id,
                kind=entry.kind,
                actor=entry.actor[:80],
                before=entry.before,
                after=entry.after,
                reason=entry.reason,
                data=dict(entry.data),
                at=entry.at,
            )
        )

    def history(self, shop_id: int, ambassador_id: int) -> list[AuditEntry]:
        e = ambassador_events.c
        rows = self._conn.execute(
            sa.select(ambassador_events)
            .where(e.shop_id == shop_id, e.ambassador_id == ambassador_id)
            .order_by(e.id)
        )
        return [
            AuditEntry(
                r.ambassador_id, r.kind, r.actor, r.at, r.before, r.after, r.reason, r.data or {}
            )
            for r in rows
        ]


# Sorts by a value kept in another table: the table and its column.
_RESULT_SORTS: dict[str, tuple[sa.Table, Any]] = {
    "orders": (ambassador_stats, lambda c: c.attributed_orders),
    "revenue": (ambassador_stats, lambda c: c.attributed_revenue),
    "engagement": (engagement_scores, lambda c: c.score),
}


def _after(keys: list[Any], id_column: Any, after: tuple[tuple[Any, ...], int], desc: bool) -> Any:
    """Rows strictly after the cursor: a row comparison, which PostgreSQL turns into an index
    range on ``(shop_id, keys..., id)``."""
    values, last_id = after
    row = sa.tuple_(*keys, id_column)
    bound = sa.tuple_(*[sa.literal(v) for v in values], sa.literal(last_id))
    return row < bound if desc else row > bound


def _sort_value(value: Any) -> Any:
    # SQLite gives NUMERIC sums back as floats: the cursor must hold the exact value.
    return Decimal(str(value)) if isinstance(value, float) else value


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlAlchemyProgramRepository:
    def __init__(self, conn: sa.Connection, now: datetime) -> None:
        self._conn = conn
        self._now = now
        # Read once per transaction: a batch of webhooks asks for them for every event.
        self._settings: dict[int, ProgramSettings] = {}
        self._tiers: dict[int, list[Tier]] = {}

    def settings(self, shop_id: int) -> ProgramSettings:
        if shop_id in self._settings:
            return self._settings[shop_id]
        row = self._conn.execute(
            sa.select(program_settings.c.settings).where(program_settings.c.shop_id == shop_id)
        ).first()
        found = ProgramSettings.from_dict(row.settings) if row else ProgramSettings()
        self._settings[shop_id] = found
        return found

    def save_settings(self, shop_id: int, settings: ProgramSettings) -> None:
        self._settings[shop_id] = settings
        from adapters.db.repositories import _insert

        stmt = _insert(self._conn, program_settings).values(
            shop_id=shop_id, settings=settings.to_dict(), updated_at=self._now
        )
        self._conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[program_settings.c.shop_id],
                set_={"settings": settings.to_dict(), "updated_at": self._now},
            )
        )

    def tiers(self, shop_id: int) -> list[Tier]:
        if shop_id in self._tiers:
            return list(self._tiers[shop_id])
        t = tiers.c
        rows = self._conn.execute(
            sa.select(tiers)
            .where(t.shop_id == shop_id, t.archived_at.is_(None))
            .order_by(t.position, t.id)
        )
        found = [
            Tier(
                r.id,
                r.name,
                r.position,
                Decimal(r.commission_rate),
                _dec(r.min_revenue),
                r.min_orders,
                r.min_new_customers,
                tuple(r.perks or ()),
            )
            for r in rows
        ]
        self._tiers[shop_id] = found
        return list(found)

    def save_tier(self, shop_id: int, tier: Tier) -> Tier:
        self._tiers.pop(shop_id, None)
        values = {
            "shop_id": shop_id,
            "name": tier.name,
            "position": tier.position,
            "commission_rate": tier.commission_rate,
            "min_revenue": tier.min_revenue,
            "min_orders": tier.min_orders,
            "min_new_customers": tier.min_new_customers,
            "perks": list(tier.perks),
        }
        if tier.id is None:
            new_id = self._conn.execute(
                sa.insert(tiers).values(**values).returning(tiers.c.id)
            ).scalar_one()
        else:
            self._conn.execute(
                sa.update(tiers)
                .where(tiers.c.id == tier.id, tiers.c.shop_id == shop_id)
                .values(**values)
            )
            new_id = tier.id
        return Tier(
            new_id,
            tier.name,
            tier.position,
            tier.commission_rate,
            tier.min_revenue,
            tier.min_orders,
            tier.min_new_customers,
            tier.perks,
        )

    def delete_tier(self, shop_id: int, tier_id: int) -> bool:
        self._tiers.pop(shop_id, None)
        # Archived, not deleted: ledger entries and history keep pointing at it.
        result = self._conn.execute(
            sa.update(tiers)
            .where(tiers.c.id == tier_id, tiers.c.shop_id == shop_id, tiers.c.archived_at.is_(None))
            .values(archived_at=self._now, name=tiers.c.name + f" (archived {tier_id})")
        )
        if result.rowcount:
            self._conn.execute(
                sa.update(ambassadors)
                .where(_A.shop_id == shop_id, _A.tier_id == tier_id)
                .values(tier_id=None)
            )
        return bool(result.rowcount)

    def shared_discount(self, shop_id: int, terms_key: str) -> str | None:
        d = shared_discounts.c
        return self._conn.execute(
            sa.select(d.discount_gid)
            .where(d.shop_id == shop_id, d.terms_key == terms_key)
            .order_by(d.id.desc())
            .limit(1)
        ).scalar()

    def add_shared_discount(
        self, shop_id: int, terms_key: str, discount_gid: str, title: str
    ) -> None:
        self._conn.execute(
            sa.insert(shared_discounts).values(
                shop_id=shop_id,
                terms_key=terms_key,
                discount_gid=discount_gid,
                title=title,
                created_at=self._now,
            )
        )

    def forget_shared_discount(self, shop_id: int, discount_gid: str) -> None:
        d = shared_discounts.c
        self._conn.execute(
            sa.delete(shared_discounts).where(d.shop_id == shop_id, d.discount_gid == discount_gid)
        )

    def shared_discounts(self, shop_id: int) -> dict[str, str]:
        d = shared_discounts.c
        rows = self._conn.execute(
            sa.select(d.discount_gid, d.terms_key).where(d.shop_id == shop_id).order_by(d.id)
        )
        return {gid: key for gid, key in rows}


def _dec(value: Any) -> Decimal | None:
    return Decimal(value) if value is not None else None


class SqlAlchemyTaskRunRepository:
    def __init__(self, conn: sa.Connection, now: datetime) -> None:
        self._conn = conn
        self._now = now

    def start(self, shop_id: int, kind: str, total: int) -> int:
        return self._conn.execute(
            sa.insert(task_runs)
            .values(
                shop_id=shop_id,
                kind=kind,
                status="running",
                total=total,
                done=0,
                failed=0,
                report={},
                started_at=self._now,
            )
            .returning(task_runs.c.id)
        ).scalar_one()

    def advance(self, run_id: int, done: int = 0, failed: int = 0) -> None:
        t = task_runs.c
        self._conn.execute(
            sa.update(task_runs)
            .where(t.id == run_id)
            .values(done=t.done + done, failed=t.failed + failed)
        )

    def finish(self, run_id: int, status: str, report: Mapping[str, Any]) -> None:
        self._conn.execute(
            sa.update(task_runs)
            .where(task_runs.c.id == run_id)
            .values(status=status, report=dict(report), finished_at=self._now)
        )

    def get(self, shop_id: int, run_id: int) -> TaskRun | None:
        t = task_runs.c
        row = self._conn.execute(
            sa.select(task_runs).where(t.id == run_id, t.shop_id == shop_id)
        ).first()
        if row is None:
            return None
        return TaskRun(
            row.id,
            row.shop_id,
            row.kind,
            row.status,
            row.total,
            row.done,
            row.failed,
            row.report or {},
            row.started_at,
            row.finished_at,
        )
