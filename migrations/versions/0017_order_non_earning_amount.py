"""orders.non_earning_amount / refunded_non_earning, order_refunds.non_earning: a refund's share
is of the part of the order that earns

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 15:00:00

Gift cards bought in an order and tips are in its total but earn nothing; a refund's share was
of the whole total, so refunding the 100 shirt of a 100 shirt + 50 gift card order took back 67
of its 100 points. The order now keeps its non-earning part (frozen with its other amounts once
points are granted), and a refund the part of it the platform says was for non-earning lines
(Shopify's gift-card and tip refund lines); the share is (refunded - its non-earning part) /
(total - the order's non-earning part). Existing rows get 0 for all three, so they refund as
before. A column with a constant default rewrites nothing.
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

_MONEY = sa.Numeric(precision=18, scale=4)


def upgrade():
    op.add_column('orders', sa.Column('non_earning_amount', _MONEY, server_default='0', nullable=False))
    op.add_column('orders', sa.Column('refunded_non_earning', _MONEY, server_default='0', nullable=False))
    op.add_column('order_refunds', sa.Column('non_earning', _MONEY, server_default='0', nullable=False))


def downgrade():
    op.drop_column('order_refunds', 'non_earning')
    op.drop_column('orders', 'refunded_non_earning')
    op.drop_column('orders', 'non_earning_amount')
