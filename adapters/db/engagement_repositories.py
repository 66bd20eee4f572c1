"""Repositories of engagement: scores and daily band snapshots, activity events and portal
login tokens, challenges and their participants, content submissions and resources."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from adapters.db.ledger_repositories import SqlAlchemyOrderRepository, _to_order
from adapters.db.repositories import _insert
from adapters.db.tables import (
    ambassadors,
    challenge_participants,
    challenges,
    content_submissions,
    engagement_events,
    engagement_scores,
    engagement_snapshots,
    ledger_entries,
    order_attributions,
    order_rewards,
    orders,
    portal_login_tokens,
    resources,
)
from connector.domain.challenges import (
    Challenge,
    ChallengeStatus,
    Metric,
    Mode,
    Prize,
    Standing,
)
from connector.domain.content import (
    Resource,
    ResourceKind,
    Submission,
    SubmissionKind,
    SubmissionStatus,
)
from connector.domain.engagement import BandCounts, Score
from connector.domain.ledger import commission_base
from connector.domain.roi import CostEntry, RoiOrder
from connector.ports import ActivityCounts, StoredScore

_E = engagement_scores.c
_V = engagement_events.c
_CH = challenges.c
_P = challenge_participants.c
_CS = content_submissions.c
_R = resources.c
_T = order_attributions.c


def _utc(value: Any) -> datetime | None:
    """Aggregates (max) bypass the column type: SQLite gives text or naive datetimes."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SqlAlchemyEngagementRepository:
    def __init__(self, conn: sa.Connection, now: datetime) -> None:
        self._conn = conn
        self._now = now

    def scorable(self, shop_id: int) -> list[int]:
        a = ambassadors.c
        return list(
            self._conn.execute(
                sa.select(a.id)
                .where(a.shop_id == shop_id, a.status.in_(("active", "paused")))
                .order_by(a.id)
            ).scalars()
        )

    def activity(self, shop_id: int, since: datetime) -> dict[int, ActivityCounts]:
        out: dict[int, dict[str, int]] = {}

        def put(aid: int, key: str, value: int) -> None:
            out.setdefault(aid, {})[key] = int(value or 0)

        for aid, submitted, approved in self._conn.execute(
            sa.select(
                _CS.ambassador_id,
                sa.func.count(),
                sa.func.sum(sa.case((_CS.status == "approved", 1), else_=0)),
            )
            .where(_CS.shop_id == shop_id, _CS.created_at >= since)
            .group_by(_CS.ambassador_id)
        ):
            put(aid, "content_submitted", submitted)
            put(aid, "content_approved", approved)
        for aid, joined in self._conn.execute(
            sa.select(_P.ambassador_id, sa.func.count())
            .select_from(challenge_participants.join(challenges, _CH.id == _P.challenge_id))
            .where(_P.shop_id == shop_id, _CH.ends_at >= since)
            .group_by(_P.ambassador_id)
        ):
            put(aid, "challenges", joined)
        for aid, days in self._conn.execute(
            sa.select(_V.ambassador_id, sa.func.count(sa.distinct(_V.day)))
            .where(
                _V.shop_id == shop_id,
                _V.kind.in_(("portal_visit", "resource_download")),
                _V.day >= since.date(),
            )
            .group_by(_V.ambassador_id)
        ):
            put(aid, "portal_visits", days)
        return {aid: ActivityCounts(**values) for aid, values in out.items()}

    def save_scores(self, shop_id: int, scores: Sequence[tuple[int, Score]]) -> None:
        if not scores:
            return
        rows = [
            {
                "ambassador_id": aid,
                "shop_id": shop_id,
                "score": s.score,
                "band": s.band.value,
                "components": [c.to_dict() for c in s.components],
                "computed_at": self._now,
            }
            for aid, s in scores
        ]
        stmt = _insert(self._conn, engagement_scores)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_E.ambassador_id],
            set_={k: stmt.excluded[k] for k in ("score", "band", "components", "computed_at")},
        )
        self._conn.execute(stmt, rows)

    def drop_unscored(self, shop_id: int, keep: Sequence[int]) -> int:
        stmt = sa.delete(engagement_scores).where(_E.shop_id == shop_id)
        if keep:
            stmt = stmt.where(_E.ambassador_id.not_in(list(keep)))
        return self._conn.execute(stmt).rowcount or 0

    def scores(
        self, shop_id: int, ambassador_ids: Sequence[int] | None = None
    ) -> dict[int, StoredScore]:
        query = sa.select(engagement_scores).where(_E.shop_id == shop_id)
        if ambassador_ids is not None:
            if not ambassador_ids:
                return {}
            query = query.where(_E.ambassador_id.in_(list(ambassador_ids)))
        return {
            r.ambassador_id: StoredScore(
                ambassador_id=r.ambassador_id,
                score=Decimal(r.score).quantize(Decimal("0.1")),
                band=r.band,
                components=tuple(r.components or ()),
                computed_at=r.computed_at,
            )
            for r in self._conn.execute(query)
        }

    def band_counts(self, shop_id: int) -> BandCounts:
        counts: dict[str, int] = dict(
            self._conn.execute(
                sa.select(_E.band, sa.func.count()).where(_E.shop_id == shop_id).group_by(_E.band)
            ).all()
        )
        return BandCounts(
            not_engaged=int(counts.get("not engaged", 0)),
            marginal=int(counts.get("marginal", 0)),
            engaged=int(counts.get("engaged", 0)),
        )

    def save_snapshot(self, shop_id: int, day: date, counts: BandCounts) -> None:
        values = {
            "not_engaged": counts.not_engaged,
            "marginal": counts.marginal,
            "engaged": counts.engaged,
            "taken_at": self._now,
        }
        stmt = _insert(self._conn, engagement_snapshots).values(shop_id=shop_id, day=day, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[engagement_snapshots.c.shop_id, engagement_snapshots.c.day],
            set_=values,
        )
        self._conn.execute(stmt)

    def snapshots(self, shop_id: int, since: date) -> list[tuple[date, BandCounts]]:
        s = engagement_snapshots.c
        rows = self._conn.execute(
            sa.select(s.day, s.not_engaged, s.marginal, s.engaged)
            .where(s.shop_id == shop_id, s.day >= since)
            .order_by(s.day)
        )
        return [(r.day, BandCounts(r.not_engaged, r.marginal, r.engaged)) for r in rows]

    def record(self, shop_id: int, ambassador_id: int, kind: str, ref: str, at: datetime) -> bool:
        stmt = (
            _insert(self._conn, engagement_events)
            .values(
                shop_id=shop_id,
                ambassador_id=ambassador_id,
                kind=kind,
                ref=ref[:64],
                day=at.astimezone(UTC).date(),
                at=at,
            )
            .on_conflict_do_nothing()
            .returning(_V.id)
        )
        # RETURNING, not rowcount: with an (implicit) RETURNING the driver reports -1.
        return self._conn.execute(stmt).first() is not None

    def first_event(self, shop_id: int, ambassador_id: int, kind: str) -> datetime | None:
        return _utc(
            self._conn.execute(
                sa.select(sa.func.min(_V.at)).where(
                    _V.shop_id == shop_id, _V.ambassador_id == ambassador_id, _V.kind == kind
                )
            ).scalar()
        )

    def add_login_token(
        self, shop_id: int, ambassador_id: int, token_hash: str, expires_at: datetime
    ) -> None:
        self._conn.execute(
            sa.insert(portal_login_tokens).values(
                token_hash=token_hash,
                shop_id=shop_id,
                ambassador_id=ambassador_id,
                expires_at=expires_at,
                created_at=self._now,
            )
        )

    def use_login_token(self, token_hash: str, now: datetime) -> tuple[int, int] | None:
        t = portal_login_tokens.c
        # One UPDATE … WHERE used_at IS NULL: of two concurrent uses, only one gets the row.
        row = self._conn.execute(
            sa.update(portal_login_tokens)
            .where(t.token_hash == token_hash, t.used_at.is_(None), t.expires_at > now)
            .values(used_at=now)
            .returning(t.shop_id, t.ambassador_id)
        ).first()
        return (row.shop_id, row.ambassador_id) if row else None

    def recent_login_tokens(self, shop_id: int, ambassador_id: int, since: datetime) -> int:
        t = portal_login_tokens.c
        return int(
            self._conn.execute(
                sa.select(sa.func.count()).where(
                    t.shop_id == shop_id, t.ambassador_id == ambassador_id, t.created_at >= since
                )
            ).scalar_one()
        )

    def next_unlock(self, shop_id: int, ambassador_id: int) -> tuple[datetime, int] | None:
        w = order_rewards.c
        row = self._conn.execute(
            sa.select(sa.func.min(w.hold_until), sa.func.count()).where(
                w.shop_id == shop_id, w.ambassador_id == ambassador_id, w.status == "pending"
            )
        ).first()
        if row is None or not row[1]:
            return None
        first = _utc(row[0])
        assert first is not None
        return first, int(row[1])

    def roi_inputs(
        self, shop_id: int, since: datetime, until: datetime
    ) -> tuple[list[RoiOrder], list[CostEntry], list[tuple[datetime, int, int | None]]]:
        # The report reads a window of orders into memory (one row each, a few hundred bytes):
        # a year of a busy store is tens of thousands, fine for a report; see the README.
        a = ambassadors.c
        tier_of = dict(
            self._conn.execute(sa.select(a.id, a.tier_id).where(a.shop_id == shop_id)).all()
        )
        o = orders.c
        rows = self._conn.execute(
            sa.select(orders).where(
                o.shop_id == shop_id, o.placed_at >= since, o.placed_at < until
            )
        ).all()
        refunds = SqlAlchemyOrderRepository(self._conn, self._now).refunds(
            shop_id, [r.order_id for r in rows]
        )
        earlier = orders.alias("earlier")
        buyer = orders.alias("buyer")
        first_time = ~sa.exists().where(
            earlier.c.shop_id == buyer.c.shop_id,
            earlier.c.placed_at < buyer.c.placed_at,
            sa.or_(
                sa.and_(
                    buyer.c.customer_id.is_not(None), earlier.c.customer_id == buyer.c.customer_id
                ),
                sa.and_(buyer.c.email.is_not(None), earlier.c.email == buyer.c.email),
            ),
        )
        credited = {
            r.order_id: r
            for r in self._conn.execute(
                sa.select(
                    _T.order_id,
                    _T.ambassador_id,
                    _T.code,
                    _T.base,
                    sa.case((first_time, True), else_=False).label("new"),
                )
                .select_from(
                    order_attributions.join(
                        buyer,
                        sa.and_(buyer.c.shop_id == _T.shop_id, buyer.c.order_id == _T.order_id),
                    )
                )
                .where(
                    _T.shop_id == shop_id,
                    _T.ambassador_id.is_not(None),
                    _T.cancelled.is_(False),
                    _T.placed_at >= since,
                    _T.placed_at < until,
                )
            )
        }
        out_orders = []
        for r in rows:
            order = _to_order(r, refunds.get(r.order_id, ()))
            counts = not order.test and order.cancelled_at is None and order.paid
            store = commission_base(order).shop if counts else Decimal(0)
            t = credited.get(r.order_id)
            out_orders.append(
                RoiOrder(
                    placed_at=r.placed_at,
                    store_base=store,
                    ambassador_id=t.ambassador_id if t else None,
                    code=t.code if t else None,
                    attributed_base=Decimal(t.base) if t else Decimal(0),
                    new_customer=bool(t.new) if t else False,
                    refunded=bool(order.refunds),
                    tier_id=tier_of.get(t.ambassador_id) if t else None,
                )
            )
        l_ = ledger_entries.c
        costs = []
        for r in self._conn.execute(
            sa.select(l_.created_at, l_.ambassador_id, l_.kind, l_.amount, l_.idempotency_key)
            .where(l_.shop_id == shop_id, l_.created_at >= since, l_.created_at < until)
            .order_by(l_.id)
        ):
            challenge = None
            key = r.idempotency_key or ""
            if r.kind == "bonus" and key.startswith("challenge:"):
                part = key.split(":")[1]
                challenge = int(part) if part.isdigit() else None
            costs.append(
                CostEntry(
                    r.created_at, r.ambassador_id, r.kind, Decimal(r.amount),
                    tier_of.get(r.ambassador_id), challenge,
                )
            )
        approved = [
            (r.decided_at, r.ambassador_id, tier_of.get(r.ambassador_id))
            for r in self._conn.execute(
                sa.select(_CS.decided_at, _CS.ambassador_id).where(
                    _CS.shop_id == shop_id,
                    _CS.status == "approved",
                    _CS.decided_at >= since,
                    _CS.decided_at < until,
                )
            )
        ]
        return out_orders, costs, approved


# --- challenges -------------------------------------------------------------------------------


def _to_challenge(r: Any) -> Challenge:
    return Challenge(
        id=r.id,
        shop_id=r.shop_id,
        name=r.name,
        metric=Metric(r.metric),
        mode=Mode(r.mode),
        starts_at=r.starts_at,
        ends_at=r.ends_at,
        currency=r.currency,
        target=Decimal(r.target) if r.target is not None else None,
        prizes=tuple(
            Prize(Decimal(p["amount"]), p.get("rank"), p.get("label", "")) for p in r.prizes or ()
        ),
        preset=r.preset,
        status=ChallengeStatus(r.status),
        results=tuple(Standing.from_dict(x) for x in r.results) if r.results is not None else None,
        closed_at=r.closed_at,
        created_by=r.created_by,
        created_at=r.created_at,
    )


class SqlAlchemyChallengeRepository:
    def __init__(self, conn: sa.Connection, now: datetime) -> None:
        self._conn = conn
        self._now = now

    def add(self, challenge: Challenge) -> Challenge:
        new_id = self._conn.execute(
            sa.insert(challenges)
            .values(
                shop_id=challenge.shop_id,
                name=challenge.name,
                metric=challenge.metric.value,
                mode=challenge.mode.value,
                target=challenge.target,
                starts_at=challenge.starts_at,
                ends_at=challenge.ends_at,
                prizes=[p.to_dict() for p in challenge.prizes],
                currency=challenge.currency,
                preset=challenge.preset,
                status=challenge.status.value,
                created_by=challenge.created_by,
                created_at=self._now,
            )
            .returning(_CH.id)
        ).scalar_one()
        found = self.get(challenge.shop_id, new_id)
        assert found is not None
        return found

    def get(self, shop_id: int, challenge_id: int, *, for_update: bool = False) -> Challenge | None:
        query = sa.select(challenges).where(_CH.shop_id == shop_id, _CH.id == challenge_id)
        if for_update:
            query = query.with_for_update()
        row = self._conn.execute(query).first()
        return _to_challenge(row) if row else None

    def search(self, shop_id: int, *, status: str | None = None) -> list[Challenge]:
        query = sa.select(challenges).where(_CH.shop_id == shop_id)
        if status:
            query = query.where(_CH.status == status)
        query = query.order_by(_CH.starts_at.desc(), _CH.id.desc()).limit(500)
        return [_to_challenge(r) for r in self._conn.execute(query)]

    def due(self, now: datetime) -> list[tuple[int, int]]:
        rows = self._conn.execute(
            sa.select(_CH.shop_id, _CH.id)
            .where(_CH.status == "open", _CH.ends_at <= now)
            .order_by(_CH.id)
        )
        return [(r.shop_id, r.id) for r in rows]

    def join(self, shop_id: int, challenge_id: int, ambassador_id: int, at: datetime) -> bool:
        stmt = (
            _insert(self._conn, challenge_participants)
            .values(
                challenge_id=challenge_id, ambassador_id=ambassador_id, shop_id=shop_id,
                joined_at=at,
            )
            .on_conflict_do_nothing()
            .returning(_P.challenge_id)
        )
        return self._conn.execute(stmt).first() is not None

    def participants(self, shop_id: int, challenge_id: int) -> list[int]:
        return list(
            self._conn.execute(
                sa.select(_P.ambassador_id)
                .where(_P.shop_id == shop_id, _P.challenge_id == challenge_id)
                .order_by(_P.ambassador_id)
            ).scalars()
        )

    def joined(self, shop_id: int, ambassador_id: int) -> set[int]:
        return set(
            self._conn.execute(
                sa.select(_P.challenge_id).where(
                    _P.shop_id == shop_id, _P.ambassador_id == ambassador_id
                )
            ).scalars()
        )

    def standings(self, challenge: Challenge) -> list[Standing]:
        ids = self.participants(challenge.shop_id, challenge.id or 0)
        if not ids:
            return []
        found: dict[int, tuple[Decimal, datetime | None]] = {}
        if challenge.metric is Metric.APPROVED_CONTENT:
            query = (
                sa.select(_CS.ambassador_id, sa.func.count(), sa.func.max(_CS.decided_at))
                .where(
                    _CS.shop_id == challenge.shop_id,
                    _CS.ambassador_id.in_(ids),
                    _CS.status == "approved",
                    _CS.created_at >= challenge.starts_at,
                    _CS.created_at < challenge.ends_at,
                )
                .group_by(_CS.ambassador_id)
            )
        else:
            window = [
                _T.shop_id == challenge.shop_id,
                _T.ambassador_id.in_(ids),
                _T.cancelled.is_(False),
                _T.placed_at >= challenge.starts_at,
                _T.placed_at < challenge.ends_at,
            ]
            value: Any = (
                sa.func.coalesce(sa.func.sum(_T.base), 0)
                if challenge.metric is Metric.REVENUE
                else sa.func.count()
            )
            source: Any = order_attributions
            if challenge.metric is Metric.NEW_CUSTOMERS:
                earlier = orders.alias("earlier")
                buyer = orders.alias("buyer")
                source = order_attributions.join(
                    buyer, sa.and_(buyer.c.shop_id == _T.shop_id, buyer.c.order_id == _T.order_id)
                )
                window.append(
                    ~sa.exists().where(
                        earlier.c.shop_id == buyer.c.shop_id,
                        earlier.c.placed_at < buyer.c.placed_at,
                        sa.or_(
                            sa.and_(
                                buyer.c.customer_id.is_not(None),
                                earlier.c.customer_id == buyer.c.customer_id,
                            ),
                            sa.and_(buyer.c.email.is_not(None), earlier.c.email == buyer.c.email),
                        ),
                    )
                )
            query = (
                sa.select(_T.ambassador_id, value, sa.func.max(_T.placed_at))
                .select_from(source)
                .where(*window)
                .group_by(_T.ambassador_id)
            )
        for aid, amount, reached in self._conn.execute(query):
            found[aid] = (Decimal(str(amount or 0)).normalize(), _utc(reached))
        out = []
        for aid in ids:
            amount, reached = found.get(aid, (Decimal(0), None))
            if amount == amount.to_integral_value():
                amount = amount.quantize(Decimal(1))
            out.append(Standing(aid, amount, reached if amount > 0 else None))
        return out

    def close(self, challenge: Challenge, results: Sequence[Standing], at: datetime) -> bool:
        done = self._conn.execute(
            sa.update(challenges)
            .where(_CH.id == challenge.id, _CH.shop_id == challenge.shop_id, _CH.status == "open")
            .values(status="closed", results=[s.to_dict() for s in results], closed_at=at)
        )
        return bool(done.rowcount)


# --- content submissions and resources ----------------------------------------------------------


def _to_submission(r: Any) -> Submission:
    return Submission(
        id=r.id,
        shop_id=r.shop_id,
        ambassador_id=r.ambassador_id,
        kind=SubmissionKind(r.kind),
        url=r.url,
        text=r.text,
        status=SubmissionStatus(r.status),
        disclosure_ok=r.disclosure_ok,
        disclosure_found=r.disclosure_found,
        reason=r.reason,
        decided_by=r.decided_by,
        decided_at=r.decided_at,
        created_at=r.created_at,
    )


def _to_resource(r: Any) -> Resource:
    return Resource(
        id=r.id,
        shop_id=r.shop_id,
        title=r.title,
        kind=ResourceKind(r.kind),
        filename=r.filename,
        content_type=r.content_type,
        size=r.size,
        storage_key=r.storage_key,
        body=r.body,
        downloads=r.downloads,
        created_at=r.created_at,
    )


class SqlAlchemyContentRepository:
    def __init__(self, conn: sa.Connection, now: datetime) -> None:
        self._conn = conn
        self._now = now

    def add_submission(self, submission: Submission) -> Submission | None:
        stmt = (
            _insert(self._conn, content_submissions)
            .values(
                shop_id=submission.shop_id,
                ambassador_id=submission.ambassador_id,
                kind=submission.kind.value,
                url=submission.url,
                url_key=submission.url_key,
                text=submission.text,
                status=submission.status.value,
                disclosure_ok=submission.disclosure_ok,
                disclosure_found=submission.disclosure_found,
                created_at=self._now,
            )
            .on_conflict_do_nothing(index_elements=[_CS.shop_id, _CS.url_key])
            .returning(_CS.id)
        )
        new_id = self._conn.execute(stmt).scalar()
        if new_id is None:
            return None
        return self.get_submission(submission.shop_id, new_id)

    def submission_by_url(self, shop_id: int, url_key: str) -> Submission | None:
        row = self._conn.execute(
            sa.select(content_submissions).where(_CS.shop_id == shop_id, _CS.url_key == url_key)
        ).first()
        return _to_submission(row) if row else None

    def get_submission(
        self, shop_id: int, submission_id: int, *, for_update: bool = False
    ) -> Submission | None:
        query = sa.select(content_submissions).where(
            _CS.shop_id == shop_id, _CS.id == submission_id
        )
        if for_update:
            query = query.with_for_update()
        row = self._conn.execute(query).first()
        return _to_submission(row) if row else None

    def submissions(
        self,
        shop_id: int,
        *,
        status: SubmissionStatus | None = None,
        ambassador_id: int | None = None,
        after_id: int | None = None,
        limit: int = 50,
    ) -> list[Submission]:
        query = sa.select(content_submissions).where(_CS.shop_id == shop_id)
        if status is not None:
            query = query.where(_CS.status == status.value)
        if ambassador_id is not None:
            query = query.where(_CS.ambassador_id == ambassador_id)
        if after_id is not None:
            query = query.where(_CS.id < after_id)
        query = query.order_by(_CS.id.desc()).limit(limit)
        return [_to_submission(r) for r in self._conn.execute(query)]

    def decide(self, submission: Submission) -> bool:
        done = self._conn.execute(
            sa.update(content_submissions)
            .where(
                _CS.shop_id == submission.shop_id,
                _CS.id == submission.id,
                _CS.status == "pending",
            )
            .values(
                status=submission.status.value,
                reason=submission.reason,
                decided_by=submission.decided_by,
                decided_at=submission.decided_at,
            )
        )
        return bool(done.rowcount)

    def add_resource(self, resource: Resource) -> Resource:
        new_id = self._conn.execute(
            sa.insert(resources)
            .values(
                shop_id=resource.shop_id,
                title=resource.title,
                kind=resource.kind.value,
                filename=resource.filename,
                content_type=resource.content_type,
                size=resource.size,
                storage_key=resource.storage_key,
                body=resource.body,
                created_at=self._now,
            )
            .returning(_R.id)
        ).scalar_one()
        found = self.get_resource(resource.shop_id, new_id)
        assert found is not None
        return found

    def get_resource(self, shop_id: int, resource_id: int) -> Resource | None:
        row = self._conn.execute(
            sa.select(resources).where(
                _R.shop_id == shop_id, _R.id == resource_id, _R.archived_at.is_(None)
            )
        ).first()
        return _to_resource(row) if row else None

    def resources(self, shop_id: int) -> list[Resource]:
        rows = self._conn.execute(
            sa.select(resources)
            .where(_R.shop_id == shop_id, _R.archived_at.is_(None))
            .order_by(_R.id.desc())
            .limit(500)
        )
        return [_to_resource(r) for r in rows]

    def archive_resource(self, shop_id: int, resource_id: int) -> Resource | None:
        found = self.get_resource(shop_id, resource_id)
        if found is None:
            return None
        self._conn.execute(
            sa.update(resources)
            .where(_R.shop_id == shop_id, _R.id == resource_id)
            .values(archived_at=self._now)
        )
        return found

    def count_download(self, shop_id: int, resource_id: int) -> None:
        self._conn.execute(
            sa.update(resources)
            .where(_R.shop_id == shop_id, _R.id == resource_id)
            .values(downloads=_R.downloads + 1)
        )

    def redact_ambassador(self, shop_id: int, ambassador_id: int) -> int:
        ids = list(
            self._conn.execute(
                sa.select(_CS.id).where(
                    _CS.shop_id == shop_id, _CS.ambassador_id == ambassador_id
                )
            ).scalars()
        )
        for sid in ids:
            self._conn.execute(
                sa.update(content_submissions)
                .where(_CS.id == sid)
                .values(
                    url="redacted",
                    text="",
                    # still unique per shop, and no longer the post's: it may be submitted anew
                    url_key=hashlib.sha256(f"redacted:{sid}".encode()).hexdigest(),
                    disclosure_found=None,
                )
            )
        return len(ids)
