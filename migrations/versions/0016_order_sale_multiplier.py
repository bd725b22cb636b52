"""orders.sale_multiplier: the tier multiplier held when the sale was counted; a reversal after
an expiry does not take the expired points again

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 14:00:00

With award on fulfilment the points come days after the sale, by which time that very sale
may have lifted the customer into a higher tier; the order earns at the tier held when it was
counted, so that multiplier is kept on the order. Existing rows stay NULL and earn, as before,
at the tier held when they are awarded. Adding a nullable column without a default rewrites
nothing.

A refund or cancellation arriving after an expiry took the order's points draws on that
expire entry first (README "Refunds and cancellations"): ledger_entries.expiry_cover records
the part so drawn (a fully covered reversal moves no points, hence the relaxed nonzero
check), customers.last_expire_id / orders.grant_expire_id tell a reversal, without a query,
whether an expiry came after the grant. A column with a constant default rewrites nothing
either; the relaxed check is added NOT VALID: it holds for every row (the old, stricter one
did) and binds every new one, and validating would only scan the ledger (and fail after a
downgrade, which leaves fully covered reversals behind with every amount zero).
last_expire_id is filled in for customers whose points already expired (one pass over the
ledger, after the DDL's locks are released); their orders keep a NULL grant_expire_id, so
their reversals look the expiry up.
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

_OLD_CHECK = "points <> 0 OR pending_delta <> 0 OR uncollected <> 0"
_NEW_CHECK = _OLD_CHECK + " OR expiry_cover <> 0"


def upgrade():
    op.add_column('orders', sa.Column('sale_multiplier', sa.Numeric(precision=6, scale=3), nullable=True))
    op.add_column('orders', sa.Column('grant_expire_id', sa.BigInteger(), nullable=True))
    op.add_column('customers', sa.Column('last_expire_id', sa.BigInteger(), nullable=True))
    op.add_column('ledger_entries', sa.Column('expiry_cover', sa.Integer(), server_default='0', nullable=False))
    op.execute("ALTER TABLE ledger_entries DROP CONSTRAINT ck_ledger_entries_nonzero")
    op.execute(f"ALTER TABLE ledger_entries ADD CONSTRAINT ck_ledger_entries_nonzero CHECK ({_NEW_CHECK}) NOT VALID")
    with op.get_context().autocommit_block():
        op.execute(
            "UPDATE customers c SET last_expire_id = e.id"
            " FROM (SELECT customer_id, max(id) AS id FROM ledger_entries WHERE kind = 'expire' GROUP BY customer_id) e"
            " WHERE c.id = e.customer_id AND (c.last_expire_id IS NULL OR c.last_expire_id < e.id)"
        )


def downgrade():
    # Fully covered reversals (every amount zero but expiry_cover) stay in the append-only
    # ledger, moving no points: the old check binds new rows only.
    op.execute("ALTER TABLE ledger_entries DROP CONSTRAINT ck_ledger_entries_nonzero")
    op.execute(f"ALTER TABLE ledger_entries ADD CONSTRAINT ck_ledger_entries_nonzero CHECK ({_OLD_CHECK}) NOT VALID")
    op.drop_column('ledger_entries', 'expiry_cover')
    op.drop_column('customers', 'last_expire_id')
    op.drop_column('orders', 'grant_expire_id')
    op.drop_column('orders', 'sale_multiplier')
