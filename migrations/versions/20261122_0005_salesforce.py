"""salesforce connections and contact links

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 08:44:48.832886
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('salesforce_connections',
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('instance_url', sa.String(length=255), server_default='', nullable=False),
    sa.Column('access_token_enc', sa.Text(), nullable=True),
    sa.Column('refresh_token_enc', sa.Text(), nullable=True),
    sa.Column('org_id', sa.String(length=18), nullable=True),
    sa.Column('user_id', sa.String(length=18), nullable=True),
    sa.Column('scope', sa.Text(), nullable=True),
    sa.Column('connected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('fields', sa.JSON(), nullable=True),
    sa.Column('api_used', sa.Integer(), nullable=True),
    sa.Column('api_limit', sa.Integer(), nullable=True),
    sa.Column('paused_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pause_reason', sa.String(length=255), nullable=True),
    sa.Column('last_sync_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_sync', sa.JSON(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sync_lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('connected', 'needs_reconnect', 'disconnected')", name=op.f('ck_salesforce_connections_status')),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_salesforce_connections_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('shop_id', name=op.f('pk_salesforce_connections'))
    )
    op.create_table('salesforce_contacts',
    sa.Column('ambassador_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('shop_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.String(length=18), nullable=True),
    sa.Column('synced_hash', sa.String(length=64), nullable=True),
    sa.Column('failed_hash', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('erase', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("state IN ('synced', 'retry', 'parked')", name=op.f('ck_salesforce_contacts_state')),
    sa.ForeignKeyConstraint(['ambassador_id'], ['ambassadors.id'], name=op.f('fk_salesforce_contacts_ambassador_id_ambassadors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_salesforce_contacts_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('ambassador_id', name=op.f('pk_salesforce_contacts'))
    )
    with op.batch_alter_table('salesforce_contacts', schema=None) as batch_op:
        batch_op.create_index('ix_salesforce_contacts_shop_state', ['shop_id', 'state'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('salesforce_contacts', schema=None) as batch_op:
        batch_op.drop_index('ix_salesforce_contacts_shop_state')

    op.drop_table('salesforce_contacts')
    op.drop_table('salesforce_connections')
