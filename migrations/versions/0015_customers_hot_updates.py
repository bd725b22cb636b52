"""customers: HOT updates on the order path (drop the last_order_at index, leave room in each page)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 05:40:00

Every order event writes a new version of its customer's row. While an indexed column changes
(last_order_at did, on every sale) or the page is full, that version is not a HOT update: each
of the table's indexes gets an entry per event. Nothing reads customers by last_order_at
(win-back walks (shop_id, id) and filters the column; the lapsing forecast reads the shop's
customers whole), so the index goes, and a fill factor of 80 leaves room for the new versions
in the same page. The fill factor applies to pages written from now on; a `VACUUM FULL
customers` in a quiet hour applies it to the existing ones.
"""
from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("ALTER TABLE customers SET (fillfactor = 80)")
    with op.get_context().autocommit_block():
        op.drop_index("ix_customers_shop_last_order", table_name="customers", postgresql_concurrently=True,
                      if_exists=True)


def downgrade():
    with op.get_context().autocommit_block():
        op.create_index("ix_customers_shop_last_order", "customers", ["shop_id", "last_order_at"], unique=False,
                        postgresql_concurrently=True, if_not_exists=True)
    op.execute("ALTER TABLE customers RESET (fillfactor)")
