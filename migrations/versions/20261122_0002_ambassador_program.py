"""ambassador program

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 06:25:40.685702
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('notifications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('to', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_notifications_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('shop_id', 'key', name=op.f('uq_notifications_shop_id_key'))
    )
    op.create_table('program_settings',
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_program_settings_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('shop_id', name=op.f('pk_program_settings'))
    )
    op.create_table('shared_discounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('terms_key', sa.String(length=120), nullable=False),
    sa.Column('discount_gid', sa.String(length=128), nullable=False),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('codes_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_shared_discounts_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shared_discounts')),
    sa.UniqueConstraint('shop_id', 'terms_key', 'discount_gid', name=op.f('uq_shared_discounts_shop_id_terms_key_discount_gid'))
    )
    op.create_table('task_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('total', sa.Integer(), server_default='0', nullable=False),
    sa.Column('done', sa.Integer(), server_default='0', nullable=False),
    sa.Column('failed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_task_runs_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task_runs'))
    )
    with op.batch_alter_table('task_runs', schema=None) as batch_op:
        batch_op.create_index('ix_task_runs_shop_id_id', ['shop_id', 'id'], unique=False)

    op.create_table('tiers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('commission_rate', sa.Numeric(precision=7, scale=4), nullable=False),
    sa.Column('min_revenue', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('min_orders', sa.Integer(), nullable=True),
    sa.Column('min_new_customers', sa.Integer(), nullable=True),
    sa.Column('perks', sa.JSON(), nullable=False),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_tiers_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tiers')),
    sa.UniqueConstraint('shop_id', 'name', name=op.f('uq_tiers_shop_id_name'))
    )
    op.create_table('ambassadors',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('first_name', sa.String(length=120), server_default='', nullable=False),
    sa.Column('last_name', sa.String(length=120), server_default='', nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('tier_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('tier_locked', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('demotion_pending_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('code', sa.String(length=32), nullable=True),
    sa.Column('code_state', sa.String(length=16), server_default='none', nullable=False),
    sa.Column('discount_gid', sa.String(length=128), nullable=True),
    sa.Column('redeem_code_gid', sa.String(length=128), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('customer_tagged', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('social', sa.JSON(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("code_state IN ('none', 'pending', 'active', 'inactive', 'missing')", name=op.f('ck_ambassadors_code_state')),
    sa.CheckConstraint("status IN ('applied', 'active', 'paused', 'removed')", name=op.f('ck_ambassadors_status')),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_ambassadors_shop_id_shops'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tier_id'], ['tiers.id'], name=op.f('fk_ambassadors_tier_id_tiers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ambassadors')),
    sa.UniqueConstraint('shop_id', 'code', name=op.f('uq_ambassadors_shop_id_code')),
    sa.UniqueConstraint('shop_id', 'email', name=op.f('uq_ambassadors_shop_id_email'))
    )
    with op.batch_alter_table('ambassadors', schema=None) as batch_op:
        batch_op.create_index('ix_ambassadors_shop_status_id', ['shop_id', 'status', 'id'], unique=False)
        batch_op.create_index('ix_ambassadors_shop_tier_id', ['shop_id', 'tier_id', 'id'], unique=False)
        batch_op.create_index('uq_ambassadors_shop_customer', ['shop_id', 'customer_id'], unique=True, postgresql_where=sa.text('customer_id IS NOT NULL'), sqlite_where=sa.text('customer_id IS NOT NULL'))

    op.create_table('ambassador_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ambassador_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('before', sa.String(length=80), nullable=True),
    sa.Column('after', sa.String(length=80), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ambassador_id'], ['ambassadors.id'], name=op.f('fk_ambassador_events_ambassador_id_ambassadors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_ambassador_events_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ambassador_events'))
    )
    with op.batch_alter_table('ambassador_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ambassador_events_ambassador_id'), ['ambassador_id'], unique=False)

    op.create_table('applications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ambassador_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=True),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('social', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('tier_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('decided_by', sa.String(length=80), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('client_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name=op.f('ck_applications_status')),
    sa.ForeignKeyConstraint(['ambassador_id'], ['ambassadors.id'], name=op.f('fk_applications_ambassador_id_ambassadors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_applications_shop_id_shops'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tier_id'], ['tiers.id'], name=op.f('fk_applications_tier_id_tiers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_applications'))
    )
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_applications_ambassador_id'), ['ambassador_id'], unique=False)
        batch_op.create_index('ix_applications_shop_client_created', ['shop_id', 'client_hash', 'created_at'], unique=False)
        batch_op.create_index('ix_applications_shop_status_id', ['shop_id', 'status', 'id'], unique=False)

    op.create_table('code_retirements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ambassador_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('discount_gid', sa.String(length=128), nullable=False),
    sa.Column('redeem_code_gid', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['ambassador_id'], ['ambassadors.id'], name=op.f('fk_code_retirements_ambassador_id_ambassadors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_code_retirements_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_code_retirements'))
    )
    with op.batch_alter_table('code_retirements', schema=None) as batch_op:
        batch_op.create_index('ix_code_retirements_shop_done', ['shop_id', 'done_at'], unique=False)

    op.create_table('application_votes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('application_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('reviewer', sa.String(length=80), nullable=False),
    sa.Column('vote', sa.String(length=8), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("vote IN ('approve', 'reject')", name=op.f('ck_application_votes_vote')),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], name=op.f('fk_application_votes_application_id_applications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_application_votes')),
    sa.UniqueConstraint('application_id', 'reviewer', name=op.f('uq_application_votes_application_id_reviewer'))
    )


def downgrade() -> None:
    op.drop_table('application_votes')
    with op.batch_alter_table('code_retirements', schema=None) as batch_op:
        batch_op.drop_index('ix_code_retirements_shop_done')

    op.drop_table('code_retirements')
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_index('ix_applications_shop_status_id')
        batch_op.drop_index('ix_applications_shop_client_created')
        batch_op.drop_index(batch_op.f('ix_applications_ambassador_id'))

    op.drop_table('applications')
    with op.batch_alter_table('ambassador_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ambassador_events_ambassador_id'))

    op.drop_table('ambassador_events')
    with op.batch_alter_table('ambassadors', schema=None) as batch_op:
        batch_op.drop_index('uq_ambassadors_shop_customer', postgresql_where=sa.text('customer_id IS NOT NULL'), sqlite_where=sa.text('customer_id IS NOT NULL'))
        batch_op.drop_index('ix_ambassadors_shop_tier_id')
        batch_op.drop_index('ix_ambassadors_shop_status_id')

    op.drop_table('ambassadors')
    op.drop_table('tiers')
    with op.batch_alter_table('task_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_task_runs_shop_id_id')

    op.drop_table('task_runs')
    op.drop_table('shared_discounts')
    op.drop_table('program_settings')
    op.drop_table('notifications')
