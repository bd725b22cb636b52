"""shops.console_session_version: ends a Shopify merchant's console cookie sessions

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04 19:30:00

A merchant signed in through App Bridge gets a console cookie with no staff row behind it, so
staff_users.session_version could not end a copy of it. The shop's own version, carried in such a
cookie, is bumped by signing out and by an uninstall.
"""
from alembic import op
import sqlalchemy as sa


revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('shops', sa.Column('console_session_version', sa.Integer(), server_default='1', nullable=False))


def downgrade():
    op.drop_column('shops', 'console_session_version')
