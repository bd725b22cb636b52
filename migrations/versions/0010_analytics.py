"""analytics indexes: a shop's rows in a period, by their time column

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 15:30:00

Each index lets app.loyalty.analytics read only one shop's rows of one period (the tables are
shared by every shop); README "Analytics" has the plans and timings. Built CONCURRENTLY so a
live ledger and order stream are not blocked while they build.
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# (name, table, columns, partial-index condition or None)
INDEXES = (
    ("ix_orders_shop_paid", "orders", ["shop_id", "paid_at"], None),
    ("ix_orders_shop_customer_sales", "orders", ["shop_id", "customer_id", "paid_at"],
     "paid_at IS NOT NULL AND status <> 'cancelled'"),
    ("ix_ledger_entries_shop_created", "ledger_entries", ["shop_id", "created_at"], None),
    ("ix_ledger_entries_shop_customer_created", "ledger_entries", ["shop_id", "customer_id", "created_at"], None),
    ("ix_email_sends_shop_template_sent", "email_sends", ["shop_id", "template", "sent_at"], "status = 'sent'"),
    ("ix_winback_enrollments_converted", "winback_enrollments", ["shop_id", "ended_at"], "status = 'converted'"),
    ("ix_referrals_completed", "referrals", ["shop_id", "completed_at"], "status = 'completed'"),
    ("ix_referral_clicks_shop_clicked", "referral_clicks", ["shop_id", "clicked_at"], None),
)


def upgrade():
    with op.get_context().autocommit_block():
        for name, table, columns, where in INDEXES:
            op.create_index(name, table, columns, unique=False, postgresql_concurrently=True, if_not_exists=True,
                            postgresql_where=sa.text(where) if where else None)


def downgrade():
    with op.get_context().autocommit_block():
        for name, table, _, _ in reversed(INDEXES):
            op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
