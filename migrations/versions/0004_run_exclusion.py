"""run_exclusion: the recordings a run left out, each with its reason

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

A run's selection leaves recordings out (status, too short, no start time while a time window
or date range is set, outside the window, ...). Each is recorded with one reason code and a
human message, so ``fieldkit catalog run N`` can say why a recording is not in the store.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('run_exclusion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['recording_id'], ['recording.id'], name=op.f('fk_run_exclusion_recording_id_recording'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['run_id'], ['processing_run.id'], name=op.f('fk_run_exclusion_run_id_processing_run'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run_exclusion')),
    sa.UniqueConstraint('run_id', 'recording_id', name=op.f('uq_run_exclusion_run_id_recording_id'))
    )
    with op.batch_alter_table('run_exclusion', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_exclusion_recording_id'), ['recording_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_run_exclusion_run_id'), ['run_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('run_exclusion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_exclusion_run_id'))
        batch_op.drop_index(batch_op.f('ix_run_exclusion_recording_id'))
    op.drop_table('run_exclusion')
