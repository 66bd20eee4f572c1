"""admin: the ambassadors list sorted by name, orders, revenue, engagement (indexes); the
Shopify API budget per shop

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('ambassadors', schema=None) as batch_op:
        batch_op.create_index('ix_ambassadors_shop_name_id',
                              ['shop_id', 'first_name', 'last_name', 'id'], unique=False)
    with op.batch_alter_table('ambassador_stats', schema=None) as batch_op:
        batch_op.create_index('ix_ambassador_stats_shop_orders',
                              ['shop_id', 'attributed_orders', 'ambassador_id'], unique=False)
        batch_op.create_index('ix_ambassador_stats_shop_revenue',
                              ['shop_id', 'attributed_revenue', 'ambassador_id'], unique=False)
    with op.batch_alter_table('engagement_scores', schema=None) as batch_op:
        batch_op.create_index('ix_engagement_scores_shop_score',
                              ['shop_id', 'score', 'ambassador_id'], unique=False)
    op.create_table(
        'shopify_api_budget',
        sa.Column('shop_domain', sa.String(length=255), nullable=False),
        sa.Column('currently_available', sa.Float(), nullable=False),
        sa.Column('maximum_available', sa.Float(), nullable=False),
        sa.Column('restore_rate', sa.Float(), nullable=False),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('shop_domain', name=op.f('pk_shopify_api_budget')),
    )


def downgrade() -> None:
    op.drop_table('shopify_api_budget')
    with op.batch_alter_table('engagement_scores', schema=None) as batch_op:
        batch_op.drop_index('ix_engagement_scores_shop_score')
    with op.batch_alter_table('ambassador_stats', schema=None) as batch_op:
        batch_op.drop_index('ix_ambassador_stats_shop_revenue')
        batch_op.drop_index('ix_ambassador_stats_shop_orders')
    with op.batch_alter_table('ambassadors', schema=None) as batch_op:
        batch_op.drop_index('ix_ambassadors_shop_name_id')
