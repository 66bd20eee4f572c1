"""fair inbox claim: per-shop index of the deliveries still to do

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-03 17:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = "status IN ('pending', 'processing')"


def upgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_deliveries_claimable_shop', ['shop_domain', 'id'],
                              unique=False, postgresql_where=sa.text(WHERE),
                              sqlite_where=sa.text(WHERE))


def downgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_claimable_shop',
                            postgresql_where=sa.text(WHERE), sqlite_where=sa.text(WHERE))
