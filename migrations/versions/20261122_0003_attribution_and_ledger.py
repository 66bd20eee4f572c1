"""attribution and ledger

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 06:40:56.812814
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('order_refunds',
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('refund_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_order_refunds_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('shop_id', 'refund_id', name=op.f('pk_order_refunds'))
    )
    with op.batch_alter_table('order_refunds', schema=None) as batch_op:
        batch_op.create_index('ix_order_refunds_shop_order', ['shop_id', 'order_id'], unique=False)

    op.create_table('orders',
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('shopify_updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('placed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('phone', sa.String(length=16), nullable=True),
    sa.Column('address_key', sa.String(length=32), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_orders_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('shop_id', 'order_id', name=op.f('pk_orders'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_shop_customer', ['shop_id', 'customer_id'], unique=False)
        batch_op.create_index('ix_orders_shop_email', ['shop_id', 'email'], unique=False)

    op.create_table('ambassador_stats',
    sa.Column('ambassador_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('attributed_orders', sa.Integer(), nullable=False),
    sa.Column('attributed_revenue', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('pending', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('approved', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('paid', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('reversed', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('balance', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('last_referral_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ambassador_id'], ['ambassadors.id'], name=op.f('fk_ambassador_stats_ambassador_id_ambassadors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_ambassador_stats_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('ambassador_id', name=op.f('pk_ambassador_stats'))
    )
    op.create_table('ledger_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ambassador_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('presentment_amount', sa.Numeric(precision=18, scale=4), nullable=True),
    sa.Column('presentment_currency', sa.String(length=3), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=160), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ambassador_id'], ['ambassadors.id'], name=op.f('fk_ledger_entries_ambassador_id_ambassadors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_ledger_entries_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_ledger_entries_idempotency_key'))
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entries_ambassador', ['shop_id', 'ambassador_id', 'id'], unique=False)
        batch_op.create_index('ix_ledger_entries_order', ['shop_id', 'order_id'], unique=False)

    op.create_table('order_attributions',
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('ambassador_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('code', sa.String(length=32), nullable=True),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('candidates', sa.JSON(), nullable=False),
    sa.Column('rate', sa.Numeric(precision=7, scale=4), nullable=True),
    sa.Column('base', sa.Numeric(precision=18, scale=4), server_default='0', nullable=False),
    sa.Column('reward', sa.Numeric(precision=18, scale=4), server_default='0', nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('placed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ambassador_id'], ['ambassadors.id'], name=op.f('fk_order_attributions_ambassador_id_ambassadors'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_order_attributions_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('shop_id', 'order_id', name=op.f('pk_order_attributions'))
    )
    with op.batch_alter_table('order_attributions', schema=None) as batch_op:
        batch_op.create_index('ix_order_attributions_ambassador', ['shop_id', 'ambassador_id', 'placed_at'], unique=False)

    op.create_table('order_rewards',
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('ambassador_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('hold_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'approved', 'paid')", name=op.f('ck_order_rewards_status')),
    sa.ForeignKeyConstraint(['ambassador_id'], ['ambassadors.id'], name=op.f('fk_order_rewards_ambassador_id_ambassadors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_order_rewards_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('shop_id', 'order_id', 'ambassador_id', name=op.f('pk_order_rewards'))
    )
    with op.batch_alter_table('order_rewards', schema=None) as batch_op:
        batch_op.create_index('ix_order_rewards_due', ['status', 'hold_until'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('order_rewards', schema=None) as batch_op:
        batch_op.drop_index('ix_order_rewards_due')

    op.drop_table('order_rewards')
    with op.batch_alter_table('order_attributions', schema=None) as batch_op:
        batch_op.drop_index('ix_order_attributions_ambassador')

    op.drop_table('order_attributions')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entries_order')
        batch_op.drop_index('ix_ledger_entries_ambassador')

    op.drop_table('ledger_entries')
    op.drop_table('ambassador_stats')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_shop_email')
        batch_op.drop_index('ix_orders_shop_customer')

    op.drop_table('orders')
    with op.batch_alter_table('order_refunds', schema=None) as batch_op:
        batch_op.drop_index('ix_order_refunds_shop_order')

    op.drop_table('order_refunds')
