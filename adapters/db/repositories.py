"""Repositories over SQLAlchemy Core. Tokens are encrypted here, on the way in and out."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from adapters.crypto import TokenCipher
from adapters.db.tables import oauth_states, privacy_requests, shops, webhook_deliveries
from connector.domain.shops import OfflineToken, Shop, ShopStatus
from connector.domain.webhooks import Delivery, DeliveryStatus, IncomingWebhook
from connector.ports import Completion, InboxStats, OAuthState, PrivacyRequest

REDACTED_BODY = '{"redacted":true}'


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_*`` on both PostgreSQL and SQLite."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def _parse_ts(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")[:32])
    except ValueError:
        # Shopify sends nanoseconds (…00.000000000Z): keep microseconds.
        head, _, rest = value.partition(".")
        try:
            return datetime.fromisoformat(f"{head}.{rest[:6]}+00:00")
        except ValueError:
            return None


@functools.cache
def _inbox_insert(dialect: str) -> Any:
    """The intake INSERT, built once per dialect: building it per request (and its cache key)
    cost ~10 % of a webhook's CPU in the intake benchmark."""
    columns = (
        "topic",
        "webhook_id",
        "shop_domain",
        "event_id",
        "api_version",
        "triggered_at",
        "received_at",
        "body",
        "status",
        "attempts",
    )
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(webhook_deliveries)
    return (
        insert.values({c: sa.bindparam(c, type_=webhook_deliveries.c[c].type) for c in columns})
        .on_conflict_do_nothing(
            index_elements=[webhook_deliveries.c.topic, webhook_deliveries.c.webhook_id]
        )
        .returning(webhook_deliveries.c.id)
    )


class SqlAlchemyShopRepository:
    def __init__(self, conn: sa.Connection, cipher: TokenCipher, now: datetime) -> None:
        self._conn = conn
        self._cipher = cipher
        self._now = now
        self._seen: dict[str, Shop | None] = {}  # read once per transaction

    def _to_shop(self, row: Any) -> Shop:
        token = None
        if row.access_token_enc:
            token = OfflineToken(
                access_token=self._cipher.decrypt(row.access_token_enc) or "",
                scope=row.scope or "",
                expires_at=row.access_token_expires_at,
                refresh_token=self._cipher.decrypt(row.refresh_token_enc),
                refresh_token_expires_at=row.refresh_token_expires_at,
            )
        return Shop(
            id=row.id,
            domain=row.domain,
            status=ShopStatus(row.status),
            token=token,
            name=row.name,
            currency=row.currency,
            email=row.email,
            installed_at=row.installed_at,
            uninstalled_at=row.uninstalled_at,
            webhooks_registered_at=row.webhooks_registered_at,
        )

    def get(self, domain: str) -> Shop | None:
        if domain in self._seen:  # a batch of webhooks asks once per event
            return self._seen[domain]
        row = self._conn.execute(sa.select(shops).where(shops.c.domain == domain)).first()
        self._seen[domain] = self._to_shop(row) if row else None
        return self._seen[domain]

    def get_for_update(self, domain: str) -> Shop | None:
        row = self._conn.execute(
            sa.select(shops).where(shops.c.domain == domain).with_for_update()
        ).first()
        self._seen[domain] = self._to_shop(row) if row else None
        return self._seen[domain]

    def save(self, shop: Shop) -> Shop:
        token = shop.token
        values = {
            "domain": shop.domain,
            "status": shop.status.value,
            "name": shop.name,
            "email": shop.email,
            "currency": shop.currency,
            "scope": token.scope if token else None,
            "access_token_enc": self._cipher.encrypt(token.access_token) if token else None,
            "access_token_expires_at": token.expires_at if token else None,
            "refresh_token_enc": self._cipher.encrypt(token.refresh_token) if token else None,
            "refresh_token_expires_at": token.refresh_token_expires_at if token else None,
            "installed_at": shop.installed_at,
            "uninstalled_at": shop.uninstalled_at,
            "webhooks_registered_at": shop.webhooks_registered_at,
            "updated_at": self._now,
        }
        stmt = _insert(self._conn, shops).values(created_at=self._now, **values)
        stmt = stmt.on_conflict_do_update(index_elements=[shops.c.domain], set_=values)
        shop_id = self._conn.execute(stmt.returning(shops.c.id)).scalar_one()
        self._seen.pop(shop.domain, None)  # re-read (decrypted, as stored) when asked again
        return replace(shop, id=shop_id)

    def delete(self, domain: str) -> bool:
        result = self._conn.execute(sa.delete(shops).where(shops.c.domain == domain))
        self._seen[domain] = None
        return bool(result.rowcount)

    def installed_domains(self) -> list[str]:
        rows = self._conn.execute(
            sa.select(shops.c.domain)
            .where(shops.c.status == ShopStatus.INSTALLED.value)
            .order_by(shops.c.id)
        )
        return [r.domain for r in rows]

    def expiring_tokens(self, before: datetime) -> list[str]:
        rows = self._conn.execute(
            sa.select(shops.c.domain).where(
                shops.c.status == ShopStatus.INSTALLED.value,
                shops.c.refresh_token_enc.is_not(None),
                shops.c.access_token_expires_at < before,
            )
        )
        return [r.domain for r in rows]


# The shops with claimable deliveries, in the order of their oldest one (PostgreSQL): a loose
# index scan over ix_webhook_deliveries_claimable_shop, each step the next shop's oldest
# claimable row (a shop whose rows are all leased is passed over). Every ORDER BY is the
# index's (shop_domain, id), so no other index can serve it: with ``shop_domain = x`` the
# planner walked the id index past the big shop's backlog instead (EXPLAIN: 9,000 rows read
# to find a small shop's oldest row; 10 ms a claim, 0.1 ms this way).
_TO_DO = (DeliveryStatus.PENDING.value, DeliveryStatus.PROCESSING.value)
_WAITING_SHOPS = sa.text(
    """
    WITH RECURSIVE s(shop_domain, id) AS (
        (SELECT d.shop_domain, d.id FROM webhook_deliveries d
          WHERE d.status IN ('pending', 'processing')
            AND ((d.status = 'pending' AND (d.locked_until IS NULL OR d.locked_until <= :now))
                 OR (d.status = 'processing' AND d.locked_until < :now))
          ORDER BY d.shop_domain, d.id LIMIT 1)
        UNION ALL
        SELECT n.shop_domain, n.id FROM s CROSS JOIN LATERAL (
            SELECT d.shop_domain, d.id FROM webhook_deliveries d
             WHERE d.status IN ('pending', 'processing') AND d.shop_domain > s.shop_domain
               AND ((d.status = 'pending' AND (d.locked_until IS NULL OR d.locked_until <= :now))
                    OR (d.status = 'processing' AND d.locked_until < :now))
             ORDER BY d.shop_domain, d.id LIMIT 1) n
    )
    SELECT shop_domain FROM s ORDER BY id
    """
).columns(sa.column("shop_domain", sa.String))


class SqlAlchemyInboxRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def add(self, webhook: IncomingWebhook, received_at: datetime) -> int | None:
        params = {
            "topic": webhook.topic,
            "webhook_id": webhook.webhook_id,
            "shop_domain": webhook.shop_domain,
            "event_id": webhook.event_id,
            "api_version": webhook.api_version,
            "triggered_at": _parse_ts(webhook.triggered_at),
            "received_at": received_at,
            "body": webhook.body,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
        }
        stmt = _inbox_insert(self._conn.dialect.name)
        return self._conn.execute(stmt, params).scalar_one_or_none()

    def _claimable(self, now: datetime, table: Any = webhook_deliveries) -> Any:
        t = table.c
        # ``locked_until``: a claim's lease (processing) or a retry's back-off (pending).
        return sa.or_(
            sa.and_(
                t.status == DeliveryStatus.PENDING.value,
                sa.or_(t.locked_until.is_(None), t.locked_until <= now),
            ),
            sa.and_(t.status == DeliveryStatus.PROCESSING.value, t.locked_until < now),
        )

    def claim(
        self,
        limit: int,
        now: datetime,
        lease: timedelta,
        *,
        shared_limit: int | None = None,
    ) -> list[Delivery]:
        """Fair across shops: each shop with work gets an equal share of the batch (its
        oldest rows), and what a shop leaves unused goes to the oldest rows of the others, so
        one shop's backlog never makes another shop's deliveries wait for it to drain. With
        more than one shop waiting the batch holds at most ``shared_limit`` rows (if given)."""
        t = webhook_deliveries.c
        shops = self._waiting_shops(now)
        if len(shops) > 1 and shared_limit is not None:
            limit = min(limit, shared_limit)
        if not shops:
            return []
        ids = self._fair_ids(shops, limit, now) if len(shops) > 1 else []
        if len(ids) < limit:
            rest = (
                sa.select(t.id)
                .where(self._claimable(now), t.id.not_in(ids) if ids else sa.true())
                .order_by(t.id)
                .limit(limit - len(ids))
                .with_for_update(skip_locked=True)
            )
            ids += list(self._conn.execute(rest).scalars())
        if not ids:
            return []
        stmt = (
            sa.update(webhook_deliveries)
            .where(t.id.in_(ids))
            .values(
                status=DeliveryStatus.PROCESSING.value,
                locked_until=now + lease,
                attempts=t.attempts + 1,
            )
            .returning(
                t.id,
                t.topic,
                t.webhook_id,
                t.shop_domain,
                t.body,
                t.attempts,
                t.received_at,
                t.triggered_at,
            )
        )
        rows = self._conn.execute(stmt).all()
        return sorted(
            (
                Delivery(
                    id=r.id,
                    topic=r.topic,
                    webhook_id=r.webhook_id,
                    shop_domain=r.shop_domain,
                    body=r.body,
                    attempts=r.attempts,
                    received_at=r.received_at,
                    triggered_at=r.triggered_at,
                )
                for r in rows
            ),
            key=lambda d: d.id,
        )

    def _waiting_shops(self, now: datetime) -> list[str]:
        """Shops with claimable rows, in the order of their oldest one (with more shops than
        a batch holds, those waiting longest come first)."""
        t = webhook_deliveries.c
        if self._conn.dialect.name != "postgresql":
            return list(
                self._conn.execute(
                    sa.select(t.shop_domain)
                    .where(self._claimable(now))
                    .group_by(t.shop_domain)
                    .order_by(sa.func.min(t.id))
                ).scalars()
            )
        # A GROUP BY reads every row still to do: during a flash sale that is the whole
        # backlog on every claim (bench/shop_fairness.py: 10+ ms a claim). Skipping from shop
        # to shop through ix_webhook_deliveries_claimable_shop costs a probe per shop instead.
        return list(self._conn.execute(_WAITING_SHOPS, {"now": now}).scalars())

    def _fair_ids(self, shops: list[str], limit: int, now: datetime) -> list[int]:
        """Up to an equal share of the batch of the oldest claimable rows of every shop,
        row-locked (``SKIP LOCKED``: rows another worker is claiming are passed over, as in a
        FIFO claim)."""
        t = webhook_deliveries.c
        per_shop = -(-limit // len(shops))
        if self._conn.dialect.name != "postgresql":
            # SQLite: no row locks (writes are serialised at BEGIN); rank rows per shop.
            rank = sa.func.row_number().over(partition_by=t.shop_domain, order_by=t.id)
            ranked = sa.select(t.id, rank.label("rank")).where(self._claimable(now)).subquery()
            return list(
                self._conn.execute(
                    sa.select(ranked.c.id)
                    .where(ranked.c.rank <= per_shop)
                    .order_by(ranked.c.rank, ranked.c.id)
                    .limit(limit)
                ).scalars()
            )
        waiting = sa.values(
            sa.column("shop_domain", sa.String), sa.column("position", sa.Integer), name="s"
        ).data([(shop, i) for i, shop in enumerate(shops)])
        d = webhook_deliveries.alias("d")
        # Per shop, its oldest rows through ix_webhook_deliveries_claimable_shop.
        oldest = (
            sa.select(d.c.id)
            # A range, not ``=``, and the index's order: see _WAITING_SHOPS.
            .where(
                d.c.shop_domain >= waiting.c.shop_domain,
                d.c.shop_domain <= waiting.c.shop_domain,
                d.c.status.in_(_TO_DO),  # the partial index's predicate
                self._claimable(now, d),
            )
            .order_by(d.c.shop_domain, d.c.id)
            .limit(per_shop)
            .with_for_update(skip_locked=True)
            .lateral("oldest")
        )
        picked = (
            sa.select(oldest.c.id)
            .select_from(waiting.join(oldest, sa.true()))
            .order_by(waiting.c.position, oldest.c.id)
            .limit(limit)
        )
        return list(self._conn.execute(picked).scalars())

    def complete_many(self, completions: Sequence[Completion], now: datetime) -> None:
        """One statement for the batch (an executemany, pipelined by the driver)."""
        if not completions:
            return
        t = webhook_deliveries.c
        stmt = (
            sa.update(webhook_deliveries)
            .where(t.id == sa.bindparam("b_id"))
            .values(
                status=sa.bindparam("b_status"),
                processed_at=now,
                locked_until=None,
                customer_id=sa.bindparam("b_customer_id"),
                order_id=sa.bindparam("b_order_id"),
                note=sa.bindparam("b_note"),
                last_error=None,
            )
        )
        self._conn.execute(
            stmt,
            [
                {
                    "b_id": c.delivery_id,
                    "b_status": c.status,
                    "b_customer_id": c.customer_id,
                    "b_order_id": c.order_id,
                    "b_note": c.note,
                }
                for c in completions
            ],
        )

    def fail(
        self, delivery_id: int, error: str, now: datetime, *, retry_at: datetime | None
    ) -> None:
        status = DeliveryStatus.PENDING if retry_at else DeliveryStatus.FAILED
        self._conn.execute(
            sa.update(webhook_deliveries)
            .where(webhook_deliveries.c.id == delivery_id)
            .values(status=status.value, locked_until=retry_at, last_error=error)
        )

    def replay(self, shop_domain: str, delivery_id: int) -> bool:
        t = webhook_deliveries.c
        result = self._conn.execute(
            sa.update(webhook_deliveries)
            .where(
                t.id == delivery_id,
                t.shop_domain == shop_domain,
                t.status == DeliveryStatus.FAILED.value,
            )
            .values(status=DeliveryStatus.PENDING.value, attempts=0, locked_until=None)
        )
        return bool(result.rowcount)

    def release(self, delivery_ids: Sequence[int], leased_until: datetime) -> int:
        t = webhook_deliveries.c
        result = self._conn.execute(
            sa.update(webhook_deliveries)
            .where(
                t.id.in_(list(delivery_ids)),
                t.status == DeliveryStatus.PROCESSING.value,
                t.locked_until == leased_until,
            )
            .values(status=DeliveryStatus.PENDING.value, locked_until=None)
        )
        return result.rowcount or 0

    def has_claimable(self, now: datetime) -> bool:
        t = webhook_deliveries.c
        return (
            self._conn.execute(sa.select(t.id).where(self._claimable(now)).limit(1)).first()
            is not None
        )

    def stats(self, now: datetime, shop_domain: str | None = None) -> InboxStats:
        t = webhook_deliveries.c
        scope = [t.shop_domain == shop_domain] if shop_domain else []
        counts: dict[str, int] = dict(
            self._conn.execute(
                sa.select(t.status, sa.func.count())
                .where(t.status.in_(["pending", "processing", "failed"]), *scope)
                .group_by(t.status)
            ).all()
        )
        oldest = self._conn.execute(
            sa.select(sa.func.min(t.received_at)).where(t.status == "pending", *scope)
        ).scalar()
        last, stored = self._conn.execute(
            sa.select(sa.func.max(t.received_at), sa.func.max(t.id)).where(*scope)
        ).one()
        return InboxStats(
            pending=counts.get("pending", 0),
            processing=counts.get("processing", 0),
            failed=counts.get("failed", 0),
            oldest_pending_at=_as_utc(oldest),
            last_received_at=_as_utc(last),
            stored_total=int(stored or 0) if shop_domain is None else 0,
        )

    def _subject(self, shop_domain: str, customer_id: int | None, order_ids: list[int]) -> Any:
        t = webhook_deliveries.c
        matches = []
        if customer_id is not None:
            matches.append(t.customer_id == customer_id)
        if order_ids:
            matches.append(t.order_id.in_(order_ids))
        if not matches:
            return sa.false()
        return sa.and_(t.shop_domain == shop_domain, sa.or_(*matches))

    def for_customer(
        self, shop_domain: str, customer_id: int | None, order_ids: list[int]
    ) -> list[dict[str, Any]]:
        t = webhook_deliveries.c
        rows = self._conn.execute(
            sa.select(t.topic, t.received_at, t.body)
            .where(self._subject(shop_domain, customer_id, order_ids))
            .order_by(t.id)
        )
        return [
            {"topic": r.topic, "received_at": r.received_at.isoformat(), "body": json.loads(r.body)}
            for r in rows
        ]

    def redact_customer(
        self,
        shop_domain: str,
        customer_id: int | None,
        order_ids: list[int],
        also_ids: list[int] | None = None,
    ) -> int:
        subject = self._subject(shop_domain, customer_id, order_ids)
        if also_ids:
            subject = sa.or_(subject, webhook_deliveries.c.id.in_(also_ids))
        result = self._conn.execute(
            sa.update(webhook_deliveries)
            .where(subject)
            .values(body=REDACTED_BODY, customer_id=None)
        )
        return result.rowcount or 0

    def delete_shop(self, shop_domain: str, keep_id: int | None = None) -> int:
        t = webhook_deliveries.c
        stmt = sa.delete(webhook_deliveries).where(t.shop_domain == shop_domain)
        if keep_id is not None:
            stmt = stmt.where(t.id != keep_id)
        return self._conn.execute(stmt).rowcount or 0


def _as_utc(value: Any) -> datetime | None:
    """Aggregates bypass the column type: SQLite returns text, without a zone."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SqlAlchemyOAuthStateRepository:
    def __init__(self, conn: sa.Connection, cipher: TokenCipher, now: datetime) -> None:
        self._conn = conn
        self._cipher = cipher
        self._now = now

    def add(self, state: OAuthState) -> None:
        # Expired states are garbage: clean a few up whenever a new one is made.
        self._conn.execute(sa.delete(oauth_states).where(oauth_states.c.expires_at < self._now))
        self._conn.execute(
            sa.insert(oauth_states).values(
                state=state.state,
                shop_domain=state.shop_domain,
                purpose=state.purpose,
                secret_enc=self._cipher.encrypt(state.secret),
                expires_at=state.expires_at,
                created_at=self._now,
            )
        )

    def consume(self, state: str, now: datetime) -> OAuthState | None:
        row = self._conn.execute(
            sa.delete(oauth_states).where(oauth_states.c.state == state).returning(*oauth_states.c)
        ).first()
        if row is None or row.expires_at <= now:
            return None
        return OAuthState(
            state=row.state,
            shop_domain=row.shop_domain,
            purpose=row.purpose,
            expires_at=row.expires_at,
            secret=self._cipher.decrypt(row.secret_enc),
        )


class SqlAlchemyPrivacyRequestRepository:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def add(self, request: PrivacyRequest) -> int:
        return self._conn.execute(
            sa.insert(privacy_requests)
            .values(
                shop_domain=request.shop_domain,
                topic=request.topic,
                customer_id=request.customer_id,
                received_at=request.received_at,
                completed_at=request.completed_at,
                summary=dict(request.summary),
            )
            .returning(privacy_requests.c.id)
        ).scalar_one()

    def _to_request(self, row: Any) -> PrivacyRequest:
        return PrivacyRequest(
            id=row.id,
            shop_domain=row.shop_domain,
            topic=row.topic,
            received_at=row.received_at,
            completed_at=row.completed_at,
            customer_id=row.customer_id,
            summary=row.summary,
        )

    def list(self, shop_domain: str) -> list[PrivacyRequest]:
        rows = self._conn.execute(
            sa.select(privacy_requests)
            .where(privacy_requests.c.shop_domain == shop_domain)
            .order_by(privacy_requests.c.id.desc())
        )
        return [self._to_request(r) for r in rows]

    def get(self, shop_domain: str, request_id: int) -> PrivacyRequest | None:
        row = self._conn.execute(
            sa.select(privacy_requests).where(
                privacy_requests.c.shop_domain == shop_domain,
                privacy_requests.c.id == request_id,
            )
        ).first()
        return self._to_request(row) if row else None

    def delete_for(self, shop_domain: str, customer_id: int | None = None) -> int:
        t = privacy_requests.c
        stmt = sa.delete(privacy_requests).where(
            t.shop_domain == shop_domain, t.topic == "customers/data_request"
        )
        if customer_id is not None:
            stmt = stmt.where(t.customer_id == customer_id)
        return self._conn.execute(stmt).rowcount or 0
