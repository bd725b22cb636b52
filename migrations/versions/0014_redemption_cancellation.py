"""redemption cancellation: the code is revoked on the platform before the points come back

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 02:40:00

A cancellation is now a job (jobs.cancellations): the redemption is `cancelling` until the
platform has deleted the code; the columns keep who asked, why, and how the last attempt ended
(cancelled / refused because the code was used / failed), for the console and the admin API.
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('redemptions') as batch_op:
        batch_op.add_column(sa.Column('cancel_state', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('cancel_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('cancel_actor', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('cancel_requested_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('cancel_detail', sa.Text(), nullable=True))
    # The sweeper looks for cancellations whose job was lost (Redis down at enqueue time).
    op.create_index('ix_redemptions_cancelling', 'redemptions', ['cancel_requested_at'],
                    postgresql_where=sa.text("status = 'cancelling'"))


def downgrade():
    op.drop_index('ix_redemptions_cancelling', table_name='redemptions')
    with op.batch_alter_table('redemptions') as batch_op:
        for column in ('cancel_detail', 'cancel_requested_at', 'cancel_actor', 'cancel_reason', 'cancel_state'):
            batch_op.drop_column(column)
