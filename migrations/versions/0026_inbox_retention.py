"""webhook_events: a BRIN index on received_at, for the daily inbox prune

Revision ID: 0026
Revises: 0022
Create Date: 2026-12-04 19:00:00

Processed inbox rows were kept for ever, payloads (shopper data) included. jobs.inbox.prune_inbox
now deletes them after INBOX_RETENTION_DAYS; rows arrive in received_at order, so a BRIN index
finds the old ones at a few pages' cost, and costs the webhook hot path next to nothing. Built
CONCURRENTLY (outside the migration's transaction): a plain build would block webhook ingest.
"""
from alembic import op


revision = '0026'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    with op.get_context().autocommit_block():
        op.create_index('ix_webhook_events_received_brin', 'webhook_events', ['received_at'], postgresql_using='brin',
                        postgresql_concurrently=True, if_not_exists=True)


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index('ix_webhook_events_received_brin', table_name='webhook_events', postgresql_concurrently=True,
                      if_exists=True)
