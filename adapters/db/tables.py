"""Table definitions: the one metadata Alembic compares against (``alembic check`` in CI)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: BIGINT on PostgreSQL; INTEGER on SQLite, where only that aliases the rowid (autoincrement).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


shops = sa.Table(
    "shops",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("domain", sa.String(255), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("name", sa.String(255)),
    sa.Column("email", sa.String(320)),
    sa.Column("currency", sa.String(3)),
    sa.Column("scope", sa.Text),
    sa.Column("access_token_enc", sa.Text),
    sa.Column("access_token_expires_at", UTCDateTime),
    sa.Column("refresh_token_enc", sa.Text),
    sa.Column("refresh_token_expires_at", UTCDateTime),
    sa.Column("installed_at", UTCDateTime),
    sa.Column("uninstalled_at", UTCDateTime),
    sa.Column("webhooks_registered_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("status IN ('installed', 'uninstalled')", name="status"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(64), nullable=False),
    sa.Column("webhook_id", sa.String(128), nullable=False),
    sa.Column("shop_domain", sa.String(255), nullable=False),
    sa.Column("event_id", sa.String(128)),
    sa.Column("api_version", sa.String(16)),
    sa.Column("triggered_at", UTCDateTime),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", UTCDateTime),
    sa.Column("processed_at", UTCDateTime),
    sa.Column("customer_id", sa.BigInteger),
    sa.Column("order_id", sa.BigInteger),
    sa.Column("note", sa.Text),
    sa.Column("last_error", sa.Text),
    sa.UniqueConstraint("topic", "webhook_id"),
    sa.CheckConstraint(
        "status IN ('pending', 'processing', 'processed', 'skipped', 'failed')", name="status"
    ),
    # Claims scan only the rows still to do; processed rows (the vast majority) stay out of it.
    sa.Index(
        "ix_webhook_deliveries_claimable",
        "id",
        postgresql_where=sa.text("status IN ('pending', 'processing')"),
        sqlite_where=sa.text("status IN ('pending', 'processing')"),
    ),
    sa.Index("ix_webhook_deliveries_shop_customer", "shop_domain", "customer_id"),
    sa.Index("ix_webhook_deliveries_shop_order", "shop_domain", "order_id"),
)

oauth_states = sa.Table(
    "oauth_states",
    metadata,
    sa.Column("state", sa.String(128), primary_key=True),
    sa.Column("shop_domain", sa.String(255), nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("secret_enc", sa.Text),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

privacy_requests = sa.Table(
    "privacy_requests",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("shop_domain", sa.String(255), nullable=False, index=True),
    sa.Column("topic", sa.String(64), nullable=False),
    sa.Column("customer_id", sa.BigInteger),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime),
    sa.Column("summary", sa.JSON, nullable=False),
)
