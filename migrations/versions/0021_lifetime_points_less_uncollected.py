"""customers.points_earned_lifetime: less what clamped reversals left uncollected

Revision ID: 0021
Revises: 0018
Create Date: 2026-12-03 19:05:00

With negative_balance = clamp, a reversal the balance could not repay records the rest as
`uncollected`; the points earned (what points-based tiers count) kept that rest, so a refunded
order whose points were spent still qualified. app.loyalty.ledger.post_entry now takes it out;
this takes it out of the cached sums already stored (a collect entry's negative uncollected
gives back what it settled, as post_entry does). The ledger itself is unchanged.
"""
from alembic import op


revision = '0021'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("""
        UPDATE customers c SET points_earned_lifetime = c.points_earned_lifetime - u.rest
        FROM (SELECT shop_id, customer_id, SUM(uncollected) AS rest FROM ledger_entries
              WHERE kind = 'reverse' AND uncollected <> 0 GROUP BY shop_id, customer_id) u
        WHERE c.shop_id = u.shop_id AND c.id = u.customer_id AND u.rest <> 0
    """)


def downgrade():
    op.execute("""
        UPDATE customers c SET points_earned_lifetime = c.points_earned_lifetime + u.rest
        FROM (SELECT shop_id, customer_id, SUM(uncollected) AS rest FROM ledger_entries
              WHERE kind = 'reverse' AND uncollected <> 0 GROUP BY shop_id, customer_id) u
        WHERE c.shop_id = u.shop_id AND c.id = u.customer_id AND u.rest <> 0
    """)
