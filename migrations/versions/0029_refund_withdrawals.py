"""order_refunds.withdrawn_at, orders.refunds_withdrawn: refunds the store no longer lists

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-04 19:50:00

A WooCommerce merchant can delete a refund; no webhook says so, but the order's next payload
lists its refunds without it. Such a refund is kept, marked withdrawn (a late delivery listing it
again must not count it twice), and its share of the points is given back. Each withdrawal
counted against the order bumps orders.refunds_withdrawn, which keys the reversals after it
(the cumulative target can come back to a value whose key is used). Nullable or constant
default: adding them rewrites nothing.
"""
from alembic import op
import sqlalchemy as sa


revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('order_refunds', sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('orders', sa.Column('refunds_withdrawn', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    op.drop_column('orders', 'refunds_withdrawn')
    op.drop_column('order_refunds', 'withdrawn_at')
