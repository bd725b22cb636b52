"""analytics indexes

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 15:30:00

Placeholder in the revision chain so parallel work can land in any order; it may stay empty.
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
