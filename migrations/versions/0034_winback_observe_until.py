"""winback_enrollments.observe_until: a stopped sequence's window, for the lift

Revision ID: 0034
Revises: 0031
Create Date: 2026-12-06 21:30:00

A sequence stopped before step 2 (the customer unsubscribed, or the campaign was turned off)
ended its outcome too: a later sale in the window it would have had counted as no return, so a
treated customer whom the reminder drove to unsubscribe but who bought anyway was a failure of
the emails (the lift biased down). The stop now records until when its sale still counts (step
2's time + winback_recovery_days). A nullable column, no default: adding it rewrites nothing.
No backfill: earlier stops stay as they were counted.
"""
from alembic import op
import sqlalchemy as sa


revision = '0034'
down_revision = '0031'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('winback_enrollments', sa.Column('observe_until', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.drop_column('winback_enrollments', 'observe_until')
