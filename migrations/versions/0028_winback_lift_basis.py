"""winback_enrollments.holdout_percent and .returned: what the win-back lift compares

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-04 19:30:00

The lift compared every treated sequence in the period, including those enrolled before the
shop turned its holdout on, with a holdout that only existed since then; and it counted the
treated group's orders only after a delivered email but every holdout order. Each enrollment
now records the holdout percent in force when it was made (NULL for older rows: they are left
out of the lift, having no known comparison group) and whether the customer ordered within the
sequence's window whatever the emails did (`returned`). Both columns are nullable or
constant-default: adding them rewrites nothing, and no backfill runs under the ALTER's lock (the
lift reads `returned` only of rows with a holdout_percent, i.e. none from before this).
"""
from alembic import op
import sqlalchemy as sa


revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('winback_enrollments', sa.Column('holdout_percent', sa.SmallInteger(), nullable=True))
    op.add_column('winback_enrollments', sa.Column('returned', sa.Boolean(), server_default=sa.text('false'),
                                                   nullable=False))


def downgrade():
    op.drop_column('winback_enrollments', 'returned')
    op.drop_column('winback_enrollments', 'holdout_percent')
