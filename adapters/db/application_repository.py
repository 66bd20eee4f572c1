"""Repositories of applications (with committee votes) and of the notification outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from adapters.db.repositories import _insert
from adapters.db.tables import ambassadors, application_votes, applications, notifications
from connector.domain.applications import (
    Answer,
    Application,
    ApplicationStatus,
    ApplicationVote,
    VoteChoice,
)
from connector.ports import Notification

_P = applications.c
_V = application_votes.c
_N = notifications.c


def _answers(raw: Any) -> tuple[Answer, ...]:
    out = []
    for item in raw or ():
        if isinstance(item, dict):
            out.append(
                Answer(str(item.get("id", "")), str(item.get("label", "")), str(item.get("answer")))
            )
    return tuple(out)


def _to_application(row: Any) -> Application:
    return Application(
        id=row.id,
        shop_id=row.shop_id,
        ambassador_id=row.ambassador_id,
        email=row.email,
        status=ApplicationStatus(row.status),
        customer_id=row.customer_id,
        answers=_answers(row.answers),
        social=dict(row.social or {}),
        tier_id=row.tier_id,
        reason=row.reason,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        client_hash=row.client_hash,
        created_at=row.created_at,
        first_name=row.first_name or "",
        last_name=row.last_name or "",
    )


class SqlAlchemyApplicationRepository:
    def __init__(self, conn: sa.Connection, now: datetime) -> None:
        self._conn = conn
        self._now = now

    def _select(self) -> sa.Select[Any]:
        return sa.select(applications, ambassadors.c.first_name, ambassadors.c.last_name).join_from(
            applications,
            ambassadors,
            sa.and_(ambassadors.c.id == _P.ambassador_id, ambassadors.c.shop_id == _P.shop_id),
        )

    def add(self, application: Application) -> Application:
        new_id = self._conn.execute(
            sa.insert(applications)
            .values(
                shop_id=application.shop_id,
                ambassador_id=application.ambassador_id,
                email=application.email,
                customer_id=application.customer_id,
                answers=[
                    {"id": a.id, "label": a.label, "answer": a.answer} for a in application.answers
                ],
                social=dict(application.social),
                status=application.status.value,
                tier_id=application.tier_id,
                reason=application.reason,
                decided_by=application.decided_by,
                decided_at=application.decided_at,
                client_hash=application.client_hash,
                created_at=application.created_at or self._now,
            )
            .returning(_P.id)
        ).scalar_one()
        added = self.get(application.shop_id, new_id)
        assert added is not None
        return added

    def get(
        self, shop_id: int, application_id: int, *, for_update: bool = False
    ) -> Application | None:
        stmt = self._select().where(_P.shop_id == shop_id, _P.id == application_id)
        if for_update:
            stmt = stmt.with_for_update(of=applications)  # the application row only
        row = self._conn.execute(stmt).first()
        return _to_application(row) if row else None

    def pending_for(self, shop_id: int, ambassador_id: int) -> Application | None:
        row = self._conn.execute(
            self._select()
            .where(
                _P.shop_id == shop_id,
                _P.ambassador_id == ambassador_id,
                _P.status == ApplicationStatus.PENDING.value,
            )
            .order_by(_P.id.desc())
            .limit(1)
        ).first()
        return _to_application(row) if row else None

    def search(
        self,
        shop_id: int,
        status: ApplicationStatus | None,
        after_id: int | None,
        limit: int,
    ) -> list[Application]:
        stmt = self._select().where(_P.shop_id == shop_id)
        if status is not None:
            stmt = stmt.where(_P.status == status.value)
        if after_id is not None:
            stmt = stmt.where(_P.id > after_id)
        stmt = stmt.order_by(_P.id).limit(limit)
        return [_to_application(r) for r in self._conn.execute(stmt)]

    def count_recent(
        self,
        shop_id: int,
        since: datetime,
        *,
        client_hash: str | None = None,
        email: str | None = None,
    ) -> int:
        stmt = (
            sa.select(sa.func.count())
            .select_from(applications)
            .where(_P.shop_id == shop_id, _P.created_at >= since)
        )
        if client_hash is not None:
            stmt = stmt.where(_P.client_hash == client_hash)
        if email is not None:
            stmt = stmt.where(_P.email == email.lower())
        return int(self._conn.execute(stmt).scalar_one())

    def decide(self, application: Application) -> bool:
        assert application.id is not None
        result = self._conn.execute(
            sa.update(applications)
            .where(
                _P.id == application.id,
                _P.shop_id == application.shop_id,
                _P.status == ApplicationStatus.PENDING.value,
            )
            .values(
                status=application.status.value,
                reason=application.reason,
                decided_by=application.decided_by[:80] if application.decided_by else None,
                decided_at=application.decided_at,
                tier_id=application.tier_id,
            )
        )
        return bool(result.rowcount)

    def record_vote(self, application_id: int, vote: ApplicationVote) -> None:
        values = {"vote": vote.choice.value, "comment": vote.comment, "at": vote.at}
        stmt = _insert(self._conn, application_votes).values(
            application_id=application_id, reviewer=vote.reviewer[:80], **values
        )
        self._conn.execute(
            stmt.on_conflict_do_update(index_elements=[_V.application_id, _V.reviewer], set_=values)
        )

    def votes(self, application_id: int) -> list[ApplicationVote]:
        rows = self._conn.execute(
            sa.select(application_votes)
            .where(_V.application_id == application_id)
            .order_by(_V.at, _V.id)
        )
        return [ApplicationVote(r.reviewer, VoteChoice(r.vote), r.at, r.comment) for r in rows]

    def vote_counts(self, application_ids: list[int]) -> dict[int, tuple[int, int]]:
        counts: dict[int, tuple[int, int]] = {i: (0, 0) for i in application_ids}
        if not application_ids:
            return counts
        rows = self._conn.execute(
            sa.select(_V.application_id, _V.vote, sa.func.count())
            .where(_V.application_id.in_(application_ids))
            .group_by(_V.application_id, _V.vote)
        )
        for application_id, vote, n in rows:
            approve, reject = counts[application_id]
            if vote == VoteChoice.APPROVE.value:
                approve = int(n)
            else:
                reject = int(n)
            counts[application_id] = (approve, reject)
        return counts

    def for_ambassador(self, shop_id: int, ambassador_id: int) -> list[Application]:
        rows = self._conn.execute(
            self._select()
            .where(_P.shop_id == shop_id, _P.ambassador_id == ambassador_id)
            .order_by(_P.id)
        )
        return [_to_application(r) for r in rows]

    def redact_ambassador(self, shop_id: int, ambassador_id: int, email: str) -> int:
        mine = sa.select(_P.id).where(_P.shop_id == shop_id, _P.ambassador_id == ambassador_id)
        self._conn.execute(
            sa.update(application_votes)
            .where(_V.application_id.in_(mine.scalar_subquery()))
            .values(comment=None)
        )
        result = self._conn.execute(
            sa.update(applications)
            .where(_P.shop_id == shop_id, _P.ambassador_id == ambassador_id)
            .values(email=email, customer_id=None, answers=[], social={}, client_hash=None)
        )
        return int(result.rowcount)


def _to_notification(row: Any) -> Notification:
    return Notification(
        id=row.id,
        shop_id=row.shop_id,
        key=row.key,
        to=row.to,
        subject=row.subject,
        body=row.body,
        status=row.status,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


class SqlAlchemyNotificationOutbox:
    def __init__(self, conn: sa.Connection, now: datetime) -> None:
        self._conn = conn
        self._now = now

    def add(self, shop_id: int, key: str, to: str, subject: str, body: str) -> bool:
        stmt = _insert(self._conn, notifications).values(
            shop_id=shop_id,
            key=key[:160],
            to=to,
            subject=subject[:255],
            body=body,
            status="pending",
            created_at=self._now,
        )
        # RETURNING, not rowcount: with an (implicit) RETURNING the driver reports -1.
        added = self._conn.execute(
            stmt.on_conflict_do_nothing(index_elements=[_N.shop_id, _N.key]).returning(_N.id)
        ).first()
        return added is not None

    def claim_next(self, after_id: int = 0) -> Notification | None:
        row = self._conn.execute(
            sa.select(notifications)
            .where(_N.status == "pending", _N.id > after_id)
            .order_by(_N.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        return _to_notification(row) if row else None

    def mark_sent(self, notification_id: int, at: datetime, *, forget_body: bool = False) -> None:
        values: dict[str, Any] = {"status": "sent", "sent_at": at}
        if forget_body:
            values["body"] = "(this message held a one-time link; its text is not kept once sent)"
        self._conn.execute(sa.update(notifications).where(_N.id == notification_id).values(values))

    def redact_to(self, shop_id: int, to: str) -> int:
        result = self._conn.execute(
            sa.delete(notifications).where(_N.shop_id == shop_id, _N.to == to.lower())
        )
        return int(result.rowcount)
