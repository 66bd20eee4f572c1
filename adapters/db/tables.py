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
    # The fair claim's per-shop lookups of the oldest rows still to do.
    sa.Index(
        "ix_webhook_deliveries_claimable_shop",
        "shop_domain",
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

# --- the ambassador program ---------------------------------------------------------------

program_settings = sa.Table(
    "program_settings",
    metadata,
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

tiers = sa.Table(
    "tiers",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("commission_rate", sa.Numeric(7, 4), nullable=False),
    sa.Column("min_revenue", sa.Numeric(14, 2)),
    sa.Column("min_orders", sa.Integer),
    sa.Column("min_new_customers", sa.Integer),
    sa.Column("perks", sa.JSON, nullable=False),
    sa.Column("archived_at", UTCDateTime),
    sa.UniqueConstraint("shop_id", "name"),
)

ambassadors = sa.Table(
    "ambassadors",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("first_name", sa.String(120), nullable=False, server_default=""),
    sa.Column("last_name", sa.String(120), nullable=False, server_default=""),
    sa.Column("customer_id", sa.BigInteger),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("tier_id", BigId, sa.ForeignKey("tiers.id", ondelete="SET NULL")),
    sa.Column("tier_locked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("demotion_pending_since", UTCDateTime),
    sa.Column("code", sa.String(32)),
    sa.Column("code_state", sa.String(16), nullable=False, server_default="none"),
    sa.Column("discount_gid", sa.String(128)),
    sa.Column("redeem_code_gid", sa.String(128)),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("customer_tagged", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("social", sa.JSON, nullable=False),
    sa.Column("since", UTCDateTime),
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("shop_id", "email"),
    sa.UniqueConstraint("shop_id", "code"),  # codes are stored upper-case: case-insensitive
    sa.CheckConstraint("status IN ('applied', 'active', 'paused', 'removed')", name="status"),
    sa.CheckConstraint(
        "code_state IN ('none', 'pending', 'active', 'inactive', 'missing')", name="code_state"
    ),
    # One ambassador per Shopify customer (partial: guests have no customer id).
    sa.Index(
        "uq_ambassadors_shop_customer",
        "shop_id",
        "customer_id",
        unique=True,
        postgresql_where=sa.text("customer_id IS NOT NULL"),
        sqlite_where=sa.text("customer_id IS NOT NULL"),
    ),
    # The admin's list: filter by status, newest first, keyset pagination on id.
    sa.Index("ix_ambassadors_shop_status_id", "shop_id", "status", "id"),
    sa.Index("ix_ambassadors_shop_tier_id", "shop_id", "tier_id", "id"),
    # The list sorted by name: a keyset walk from the cursor in either direction.
    sa.Index("ix_ambassadors_shop_name_id", "shop_id", "first_name", "last_name", "id"),
)

ambassador_events = sa.Table(
    "ambassador_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "ambassador_id",
        BigId,
        sa.ForeignKey("ambassadors.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(80), nullable=False),
    sa.Column("before", sa.String(80)),
    sa.Column("after", sa.String(80)),
    sa.Column("reason", sa.Text),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
)

shared_discounts = sa.Table(
    "shared_discounts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column("terms_key", sa.String(120), nullable=False),
    sa.Column("discount_gid", sa.String(128), nullable=False),
    sa.Column("title", sa.String(255), nullable=False),
    sa.Column("codes_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("shop_id", "terms_key", "discount_gid"),
)

task_runs = sa.Table(
    "task_runs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("total", sa.Integer, nullable=False, server_default="0"),
    sa.Column("done", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("report", sa.JSON, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Index("ix_task_runs_shop_id_id", "shop_id", "id"),
)

applications = sa.Table(
    "applications",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "ambassador_id",
        BigId,
        sa.ForeignKey("ambassadors.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("customer_id", sa.BigInteger),
    sa.Column("answers", sa.JSON, nullable=False),
    sa.Column("social", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("tier_id", BigId, sa.ForeignKey("tiers.id", ondelete="SET NULL")),
    sa.Column("reason", sa.Text),
    sa.Column("decided_by", sa.String(80)),
    sa.Column("decided_at", UTCDateTime),
    sa.Column("client_hash", sa.String(64)),  # keyed hash of the applicant's IP (rate limits)
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),
    sa.Index("ix_applications_shop_status_id", "shop_id", "status", "id"),
    sa.Index("ix_applications_shop_client_created", "shop_id", "client_hash", "created_at"),
)

application_votes = sa.Table(
    "application_votes",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "application_id",
        BigId,
        sa.ForeignKey("applications.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("reviewer", sa.String(80), nullable=False),
    sa.Column("vote", sa.String(8), nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("application_id", "reviewer"),
    sa.CheckConstraint("vote IN ('approve', 'reject')", name="vote"),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.String(160), nullable=False),  # idempotency: one message per event
    sa.Column("to", sa.String(254), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.UniqueConstraint("shop_id", "key"),
)

code_retirements = sa.Table(
    "code_retirements",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column("ambassador_id", BigId, sa.ForeignKey("ambassadors.id", ondelete="CASCADE")),
    sa.Column("discount_gid", sa.String(128), nullable=False),
    sa.Column("redeem_code_gid", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("done_at", UTCDateTime),
    sa.Index("ix_code_retirements_shop_done", "shop_id", "done_at"),
)


# --- attribution and the reward ledger ------------------------------------------------------

Amount = sa.Numeric(18, 4)  # money: exact; 4 places hold every ISO minor unit

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("order_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("shopify_updated_at", UTCDateTime),
    sa.Column("placed_at", UTCDateTime),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("customer_id", sa.BigInteger),
    sa.Column("email", sa.String(254)),  # normalised; blanked on customers/redact
    sa.Column("phone", sa.String(16)),
    sa.Column("address_key", sa.String(32)),
    sa.Column("data", sa.JSON, nullable=False),  # lines, codes, status: see OrderRepository
    sa.Column("source", sa.String(16), nullable=False),  # webhook | reconciliation
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Index("ix_orders_shop_customer", "shop_id", "customer_id"),
    sa.Index("ix_orders_shop_email", "shop_id", "email"),
)

order_refunds = sa.Table(
    "order_refunds",
    metadata,
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("refund_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("order_id", sa.BigInteger, nullable=False),
    sa.Column("created_at", UTCDateTime),
    sa.Column("lines", sa.JSON, nullable=False),
    sa.Index("ix_order_refunds_shop_order", "shop_id", "order_id"),
)

order_attributions = sa.Table(
    "order_attributions",
    metadata,
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("order_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("ambassador_id", BigId, sa.ForeignKey("ambassadors.id", ondelete="SET NULL")),
    sa.Column("code", sa.String(32)),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("candidates", sa.JSON, nullable=False),
    sa.Column("rate", sa.Numeric(7, 4)),  # fixed when first credited (the tier rate then)
    sa.Column("base", Amount, nullable=False, server_default="0"),  # revenue credited, net
    sa.Column("reward", Amount, nullable=False, server_default="0"),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("placed_at", UTCDateTime),
    sa.Column("cancelled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("decided_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_order_attributions_ambassador", "shop_id", "ambassador_id", "placed_at"),
)

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "ambassador_id",
        BigId,
        sa.ForeignKey("ambassadors.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("order_id", sa.BigInteger),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("amount", Amount, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("presentment_amount", Amount),
    sa.Column("presentment_currency", sa.String(3)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("idempotency_key", sa.String(160), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_ledger_entries_ambassador", "shop_id", "ambassador_id", "id"),
    sa.Index("ix_ledger_entries_order", "shop_id", "order_id"),
)

order_rewards = sa.Table(
    "order_rewards",
    metadata,
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("order_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column(
        "ambassador_id",
        BigId,
        sa.ForeignKey("ambassadors.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("status", sa.String(16), nullable=False),  # pending | approved | paid
    sa.Column("hold_until", UTCDateTime, nullable=False),
    sa.Column("approved_at", UTCDateTime),
    sa.CheckConstraint("status IN ('pending', 'approved', 'paid')", name="status"),
    sa.Index("ix_order_rewards_due", "status", "hold_until"),
)

ambassador_stats = sa.Table(
    "ambassador_stats",
    metadata,
    sa.Column(
        "ambassador_id",
        BigId,
        sa.ForeignKey("ambassadors.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column("attributed_orders", sa.Integer, nullable=False),
    sa.Column("attributed_revenue", Amount, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("pending", Amount, nullable=False),
    sa.Column("approved", Amount, nullable=False),
    sa.Column("paid", Amount, nullable=False),
    sa.Column("reversed", Amount, nullable=False),
    sa.Column("balance", Amount, nullable=False),
    sa.Column("last_referral_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # The admin's list sorted by orders or revenue: keyset walks in either direction.
    sa.Index("ix_ambassador_stats_shop_orders", "shop_id", "attributed_orders", "ambassador_id"),
    sa.Index(
        "ix_ambassador_stats_shop_revenue", "shop_id", "attributed_revenue", "ambassador_id"
    ),
)


# --- reconciliation of missed webhooks ----------------------------------------------------------

reconciliation_runs = sa.Table(
    "reconciliation_runs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # Orders updated in [window_start, window_end] were read; the latest done run's window_end
    # is where the next run starts (less an overlap).
    sa.Column("window_start", UTCDateTime, nullable=False),
    sa.Column("window_end", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("seen", sa.Integer, nullable=False, server_default="0"),
    sa.Column("applied", sa.Integer, nullable=False, server_default="0"),
    sa.Column("found_only_by_reconciliation", sa.Integer, nullable=False, server_default="0"),
    sa.Column("stale", sa.Integer, nullable=False, server_default="0"),
    sa.Column("errors", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text),
    sa.CheckConstraint("status IN ('running', 'done', 'failed')", name="status"),
    sa.Index("ix_reconciliation_runs_shop_started", "shop_id", "started_at"),
)


# --- Salesforce ---------------------------------------------------------------------------------

salesforce_connections = sa.Table(
    "salesforce_connections",
    metadata,
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("instance_url", sa.String(255), nullable=False, server_default=""),
    sa.Column("access_token_enc", sa.Text),
    sa.Column("refresh_token_enc", sa.Text),
    sa.Column("org_id", sa.String(18)),
    sa.Column("user_id", sa.String(18)),
    sa.Column("scope", sa.Text),
    sa.Column("connected_at", UTCDateTime),
    sa.Column("fields", sa.JSON),
    sa.Column("api_used", sa.Integer),
    sa.Column("api_limit", sa.Integer),
    sa.Column("paused_until", UTCDateTime),
    sa.Column("pause_reason", sa.String(255)),
    sa.Column("last_sync_at", UTCDateTime),
    sa.Column("last_sync", sa.JSON),
    sa.Column("last_error", sa.Text),
    # One sync per org at a time; a lease (not a held row lock) because a sync makes HTTP calls.
    sa.Column("sync_lease_until", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(
        "status IN ('connected', 'needs_reconnect', 'disconnected')", name="status"
    ),
)

salesforce_contacts = sa.Table(
    "salesforce_contacts",
    metadata,
    sa.Column(
        "ambassador_id",
        BigId,
        sa.ForeignKey("ambassadors.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column("contact_id", sa.String(18)),
    sa.Column("synced_hash", sa.String(64)),
    sa.Column("failed_hash", sa.String(64)),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error_message", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("retry_at", UTCDateTime),
    sa.Column("note", sa.Text),
    sa.Column("erase", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("synced_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("state IN ('synced', 'retry', 'parked')", name="state"),
    sa.Index("ix_salesforce_contacts_shop_state", "shop_id", "state"),
)


# --- reward fulfilment ----------------------------------------------------------------------

PAYOUT_STATES = "'awaiting_approval', 'approved', 'fulfilling', 'fulfilled', 'failed', 'cancelled'"

payout_batches = sa.Table(
    "payout_batches",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    # One run per shop and period ("2026-12", "2026-W49", "manual:…", "redeem:…").
    sa.Column("period", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(120), nullable=False),
    sa.Column("approved_at", UTCDateTime),
    sa.Column("approved_by", sa.String(120)),
    sa.Column("exported_at", UTCDateTime),
    sa.Column("paid_at", UTCDateTime),
    sa.UniqueConstraint("shop_id", "period"),
)

payouts = sa.Table(
    "payouts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "ambassador_id",
        BigId,
        sa.ForeignKey("ambassadors.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("batch_id", BigId, sa.ForeignKey("payout_batches.id", ondelete="SET NULL")),
    sa.Column("form", sa.String(16), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("amount", Amount, nullable=False),  # leaves the balance
    sa.Column("value", Amount, nullable=False),  # reaches the ambassador (bonus included)
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("idempotency_key", sa.String(80), nullable=False, unique=True),
    sa.Column("recipient_email", sa.String(254)),  # cash: where the money goes
    sa.Column("reward_code", sa.String(40)),  # discount / free-product payouts: the code
    sa.Column("external_id", sa.String(120)),  # what Shopify created (gift card, txn, discount)
    sa.Column("external_hint", sa.String(64)),  # e.g. a gift card's last characters
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("first_attempt_at", UTCDateTime),  # lookups before create search from here
    sa.Column("retry_at", UTCDateTime),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("fulfilled_at", UTCDateTime),
    sa.CheckConstraint(f"state IN ({PAYOUT_STATES})", name="state"),
    sa.Index("ix_payouts_state_retry", "state", "retry_at"),
    sa.Index("ix_payouts_ambassador", "shop_id", "ambassador_id", "id"),
    sa.Index("ix_payouts_batch", "batch_id"),
)

payout_events = sa.Table(
    "payout_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("payout_id", BigId, sa.ForeignKey("payouts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("from_state", sa.String(20)),
    sa.Column("to_state", sa.String(20), nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_payout_events_payout", "payout_id", "id"),
)

payout_preferences = sa.Table(
    "payout_preferences",
    metadata,
    sa.Column(
        "ambassador_id",
        BigId,
        sa.ForeignKey("ambassadors.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column("form", sa.String(16), nullable=False),
    sa.Column("paypal_email", sa.String(254)),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


# --- engagement: scores, challenges, content, resources, the portal -----------------------------

engagement_scores = sa.Table(
    "engagement_scores",
    metadata,
    sa.Column(
        "ambassador_id",
        BigId,
        sa.ForeignKey("ambassadors.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column("score", sa.Numeric(4, 1), nullable=False),
    sa.Column("band", sa.String(16), nullable=False),
    sa.Column("components", sa.JSON, nullable=False),
    sa.Column("computed_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("band IN ('not engaged', 'marginal', 'engaged')", name="band"),
    sa.Index("ix_engagement_scores_shop_band", "shop_id", "band"),
    sa.Index("ix_engagement_scores_shop_score", "shop_id", "score", "ambassador_id"),
)

# One row per shop per day: the band counts as the day's last scoring left them.
engagement_snapshots = sa.Table(
    "engagement_snapshots",
    metadata,
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("not_engaged", sa.Integer, nullable=False),
    sa.Column("marginal", sa.Integer, nullable=False),
    sa.Column("engaged", sa.Integer, nullable=False),
    sa.Column("taken_at", UTCDateTime, nullable=False),
)

# What ambassadors do outside orders: portal visits, resource downloads, the disclosure
# acknowledgement. One row per (ambassador, kind, ref, day): a busy day is one visit.
engagement_events = sa.Table(
    "engagement_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "ambassador_id",
        BigId,
        sa.ForeignKey("ambassadors.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("ref", sa.String(64), nullable=False, server_default=""),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("ambassador_id", "kind", "ref", "day"),
    sa.Index("ix_engagement_events_shop_kind_day", "shop_id", "kind", "day"),
)

challenges = sa.Table(
    "challenges",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("metric", sa.String(24), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("target", Amount),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime, nullable=False),
    sa.Column("prizes", sa.JSON, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("preset", sa.String(32)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("results", sa.JSON),
    sa.Column("closed_at", UTCDateTime),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("status IN ('open', 'closed')", name="status"),
    sa.CheckConstraint("mode IN ('target', 'ranking')", name="mode"),
    sa.Index("ix_challenges_shop_ends", "shop_id", "ends_at"),
    sa.Index("ix_challenges_status_ends", "status", "ends_at"),
)

challenge_participants = sa.Table(
    "challenge_participants",
    metadata,
    sa.Column(
        "challenge_id",
        BigId,
        sa.ForeignKey("challenges.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column(
        "ambassador_id",
        BigId,
        sa.ForeignKey("ambassadors.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column("joined_at", UTCDateTime, nullable=False),
    sa.Index("ix_challenge_participants_ambassador", "shop_id", "ambassador_id"),
)

content_submissions = sa.Table(
    "content_submissions",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "ambassador_id",
        BigId,
        sa.ForeignKey("ambassadors.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("url_key", sa.String(64), nullable=False),  # sha256 of the normalised URL
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("disclosure_ok", sa.Boolean, nullable=False),
    sa.Column("disclosure_found", sa.String(200)),
    sa.Column("reason", sa.Text),
    sa.Column("decided_by", sa.String(80)),
    sa.Column("decided_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("shop_id", "url_key"),
    sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),
    sa.CheckConstraint("kind IN ('post', 'review')", name="kind"),
    sa.Index("ix_content_submissions_shop_status_id", "shop_id", "status", "id"),
    sa.Index("ix_content_submissions_ambassador", "shop_id", "ambassador_id"),
)

resources = sa.Table(
    "resources",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("filename", sa.String(255)),
    sa.Column("content_type", sa.String(100)),
    sa.Column("size", sa.Integer, nullable=False, server_default="0"),
    sa.Column("storage_key", sa.String(255)),
    sa.Column("body", sa.Text),  # a pre-written post (the disclosure text built in)
    sa.Column("downloads", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("archived_at", UTCDateTime),
    sa.CheckConstraint("kind IN ('flyer', 'graphic', 'post')", name="kind"),
    sa.Index("ix_resources_shop_id", "shop_id", "id"),
)

# Magic links for ambassadors who are not customers: only a hash of the token is kept.
portal_login_tokens = sa.Table(
    "portal_login_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("shop_id", BigId, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "ambassador_id",
        BigId,
        sa.ForeignKey("ambassadors.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_portal_login_tokens_ambassador", "shop_id", "ambassador_id", "created_at"),
)


# The shop's Admin GraphQL bucket as the last response reported it (throttleStatus), for the
# health page. Written at most every few seconds per shop and process (adapters/shopify/graphql.py).
shopify_api_budget = sa.Table(
    "shopify_api_budget",
    metadata,
    sa.Column("shop_domain", sa.String(255), primary_key=True),
    sa.Column("currently_available", sa.Float, nullable=False),
    sa.Column("maximum_available", sa.Float, nullable=False),
    sa.Column("restore_rate", sa.Float, nullable=False),
    sa.Column("read_at", UTCDateTime, nullable=False),
)
