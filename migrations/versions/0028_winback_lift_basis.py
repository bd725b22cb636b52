"""winback_enrollments.holdout_percent: the win-back lift compares sequences enrolled while a holdout ran

Revision ID: 0028
Revises: 0026
Create Date: 2026-12-04 19:30:00

The lift compared every treated sequence in the period, including those enrolled before the
shop turned its holdout on, with a holdout that only existed since then. Each enrollment now
records the holdout percent in force when it was made (NULL for older rows: they are left out
of the lift, having no known comparison group). A nullable column rewrites nothing.
"""
from alembic import op
import sqlalchemy as sa


revision = '0028'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('winback_enrollments', sa.Column('holdout_percent', sa.SmallInteger(), nullable=True))


def downgrade():
    op.drop_column('winback_enrollments', 'holdout_percent')
