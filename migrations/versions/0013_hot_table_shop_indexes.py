"""hot tables: drop the single-column shop_id indexes of customers, orders and ledger_entries

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 03:00:00

Every order event writes a row to orders and ledger_entries and a new version of a customers row
(not a HOT update: last_order_at is indexed), so each index on them costs an entry per event.
These three are prefixes of composite indexes that start with shop_id (the unique
(shop_id, platform_order_id), (shop_id, idempotency_key), (shop_id, platform_customer_id) and
others), which serve every shop-scoped lookup and the ON DELETE CASCADE from shops just as well.
Dropped CONCURRENTLY so a live order stream is not blocked.
"""
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

INDEXES = (("ix_customers_shop_id", "customers"), ("ix_orders_shop_id", "orders"),
           ("ix_ledger_entries_shop_id", "ledger_entries"))


def upgrade():
    with op.get_context().autocommit_block():
        for name, table in INDEXES:
            op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)


def downgrade():
    with op.get_context().autocommit_block():
        for name, table in INDEXES:
            op.create_index(name, table, ["shop_id"], unique=False, postgresql_concurrently=True, if_not_exists=True)
