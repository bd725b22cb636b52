"""shopper widget: referral link clicks

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 15:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('referral_clicks',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('advocate_id', sa.BigInteger(), nullable=False),
    sa.Column('clicked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ip_hash', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=512), nullable=True),
    sa.Column('shop_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['advocate_id'], ['customers.id'], name=op.f('fk_referral_clicks_advocate_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_referral_clicks_shop_id_shops'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_clicks'))
    )
    with op.batch_alter_table('referral_clicks', schema=None) as batch_op:
        batch_op.create_index('ix_referral_clicks_advocate', ['shop_id', 'advocate_id', 'clicked_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_referral_clicks_shop_id'), ['shop_id'], unique=False)


def downgrade():
    with op.batch_alter_table('referral_clicks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referral_clicks_shop_id'))
        batch_op.drop_index('ix_referral_clicks_advocate')
    op.drop_table('referral_clicks')
