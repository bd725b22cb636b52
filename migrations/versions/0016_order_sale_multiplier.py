"""orders.sale_multiplier: the tier multiplier held when the sale was counted

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 14:00:00

With award on fulfilment the points come days after the sale, by which time that very sale
may have lifted the customer into a higher tier; the order earns at the tier held when it was
counted, so that multiplier is kept on the order. Existing rows stay NULL and earn, as before,
at the tier held when they are awarded. Adding a nullable column without a default rewrites
nothing.
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('orders', sa.Column('sale_multiplier', sa.Numeric(precision=6, scale=3), nullable=True))


def downgrade():
    op.drop_column('orders', 'sale_multiplier')
