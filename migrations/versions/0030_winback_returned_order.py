"""winback_enrollments.returned_order_id: the sale that ended a sequence, for the lift

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-04 20:10:00

The lift counts `returned` for both groups, but only a conversion kept its order's id, so a
return whose order was later cancelled or fully refunded still counted — and unequally: a
treated sequence stopped without a delivered email kept no order, a holdout one converted with
its order. Every sequence a sale ends now records that order (set in the UPDATE that already
sets `returned`), and the lift drops a return whose order was cancelled or fully refunded. A
nullable column: adding it rewrites nothing. No backfill: the rows it would cover are those
with `returned` set, all made since 0028 (earlier rows have holdout_percent NULL and are out
of the lift); a NULL returned_order_id with `returned` true is read as a standing return.
"""
from alembic import op
import sqlalchemy as sa


revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('winback_enrollments', sa.Column('returned_order_id', sa.BigInteger(), nullable=True))
    op.create_foreign_key(op.f('fk_winback_enrollments_returned_order_id_orders'), 'winback_enrollments', 'orders',
                          ['returned_order_id'], ['id'], ondelete='SET NULL')


def downgrade():
    op.drop_constraint(op.f('fk_winback_enrollments_returned_order_id_orders'), 'winback_enrollments',
                       type_='foreignkey')
    op.drop_column('winback_enrollments', 'returned_order_id')
