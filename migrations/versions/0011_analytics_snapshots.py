"""analytics snapshots: each shop's standard periods precomputed hourly

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 16:50:00

app.loyalty.analytics.snapshots writes them (jobs.analytics, hourly); the console dashboard and
the admin API read one row instead of aggregating the shop's ledger and orders live.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'analytics_snapshots',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('period_start', sa.Date(), nullable=False),
        sa.Column('period_end', sa.Date(), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('summary', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('series', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('shop_id', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_analytics_snapshots_shop_id_shops'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_snapshots')),
        sa.UniqueConstraint('shop_id', 'period_start', 'period_end', name='uq_analytics_snapshots_shop_period'),
    )
    op.create_index(op.f('ix_analytics_snapshots_shop_id'), 'analytics_snapshots', ['shop_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_analytics_snapshots_shop_id'), table_name='analytics_snapshots')
    op.drop_table('analytics_snapshots')
