"""webhook_events.claimed_until: an inbox row's claim while its job reads the platform

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06 21:40:00

An `orders/edited` delivery needs the order's state from the Admin API. The job used to read it
holding the row's FOR UPDATE lock (its claim) in an open transaction; it now commits a claim
(this column: until when) and reads with no transaction open, then re-locks the row to apply.
Other workers and the sweeper leave a row whose claim has not run out to its job. A nullable
column without a default: adding it rewrites nothing.
"""
from alembic import op
import sqlalchemy as sa


revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('webhook_events', sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.drop_column('webhook_events', 'claimed_until')
