"""tier_reviews: per shop, the last tier period start whose review is done

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 19:50:00

The tier review acted only when its job ran on the shop's local first day of a period, with a
Redis marker for once: a day without workers skipped that period's demotions. app.loyalty.tier_review
now records the reviewed boundary here and catches up a missed one on a later day. No backfill:
a shop's first run starts its record (owing nothing before it, but that day's review on a 1st).
"""
from alembic import op
import sqlalchemy as sa


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'tier_reviews',
        sa.Column('shop_id', sa.BigInteger(), nullable=False),
        sa.Column('reviewed_through', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_tier_reviews_shop_id_shops'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('shop_id', name=op.f('pk_tier_reviews')),
    )


def downgrade():
    op.drop_table('tier_reviews')
