"""manifest generations; recording.status check

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Adds the table of ASC-MHL-style manifest generations and a CHECK constraint on
``recording.status``. On SQLite the constraint needs a batch "move and copy" of ``recording``,
a parent table of ``source_file``, ``derivative``, ``annotation`` and ``dataset_item``: env.py
runs this with foreign keys OFF so that no child row is cascaded away, and the migration tests
prove the children survive the round trip.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STATUS_CHECK = "status IN ('ok', 'truncated', 'quarantined')"


def upgrade() -> None:
    op.create_table('manifest',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=True),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('files', sa.Integer(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('report', JSON, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('ingest', 'verify')", name=op.f('ck_manifest_kind')),
    sa.ForeignKeyConstraint(['session_id'], ['ingest_session.id'], name=op.f('fk_manifest_session_id_ingest_session'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_manifest')),
    sa.UniqueConstraint('sequence', name=op.f('uq_manifest_sequence'))
    )
    with op.batch_alter_table('manifest', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_manifest_session_id'), ['session_id'], unique=False)

    with op.batch_alter_table("recording", recreate="auto") as batch_op:
        batch_op.create_check_constraint("status", STATUS_CHECK)


def downgrade() -> None:
    with op.batch_alter_table("recording", recreate="auto") as batch_op:
        batch_op.drop_constraint(op.f("ck_recording_status"), type_="check")
    with op.batch_alter_table("manifest", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_manifest_session_id"))
    op.drop_table("manifest")
