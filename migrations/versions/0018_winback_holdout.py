"""winback_enrollments.holdout: the win-back control group

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 16:30:00

With winback_holdout_percent > 0 a share of the sequences is a holdout: no email, no points,
the same timeline, so the campaign's results compare the two groups (the lift). Existing rows
were all emailed: false. A column with a constant default rewrites nothing.
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('winback_enrollments', sa.Column('holdout', sa.Boolean(), server_default=sa.text('false'),
                                                   nullable=False))


def downgrade():
    op.drop_column('winback_enrollments', 'holdout')
