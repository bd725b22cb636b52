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
Both order references get a partial index (built CONCURRENTLY): deleting orders sets them NULL,
which without one scans the table once per order deleted.
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
    with op.get_context().autocommit_block():
        for column in ('converted_order_id', 'returned_order_id'):
            op.create_index(f'ix_winback_enrollments_{column[:-3]}', 'winback_enrollments', [column],
                            postgresql_where=sa.text(f'{column} IS NOT NULL'), postgresql_concurrently=True,
                            if_not_exists=True)


def downgrade():
    with op.get_context().autocommit_block():
        for column in ('converted_order_id', 'returned_order_id'):
            op.drop_index(f'ix_winback_enrollments_{column[:-3]}', table_name='winback_enrollments',
                          postgresql_concurrently=True, if_exists=True)
    op.drop_constraint(op.f('fk_winback_enrollments_returned_order_id_orders'), 'winback_enrollments',
                       type_='foreignkey')
    op.drop_column('winback_enrollments', 'returned_order_id')
