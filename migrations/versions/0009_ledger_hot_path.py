"""ledger hot path

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 15:30:00

Reserved for the ledger hot path, which turned out to need no schema change (app/loyalty/new_sale.py
uses the existing tables and indexes); kept, empty, so databases already at 0009 or later upgrade on.
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
