"""initial catalogue

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23

Every core table of docs/architecture.md except the manifest table (0002).
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('card',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identity', sa.String(length=128), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=True),
    sa.Column('filesystem', sa.String(length=64), nullable=True),
    sa.Column('capacity_bytes', sa.BigInteger(), nullable=True),
    sa.Column('recorder_hint', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card')),
    sa.UniqueConstraint('identity', name=op.f('uq_card_identity'))
    )
    op.create_table('device',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('make', sa.String(length=100), nullable=False),
    sa.Column('model', sa.String(length=100), nullable=False),
    sa.Column('serial', sa.String(length=100), nullable=False),
    sa.Column('firmware', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_device')),
    sa.UniqueConstraint('make', 'model', 'serial', name=op.f('uq_device_make_model_serial'))
    )
    op.create_table('processing_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('workflow', JSON, nullable=False),
    sa.Column('params_hash', sa.String(length=64), nullable=False),
    sa.Column('versions', JSON, nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('store_path', sa.Text(), nullable=False),
    sa.Column('n_clips', sa.Integer(), nullable=False),
    sa.Column('timings', JSON, nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_processing_run'))
    )
    with op.batch_alter_table('processing_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_processing_run_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_processing_run_params_hash'), ['params_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_processing_run_state'), ['state'], unique=False)

    op.create_table('site',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('latitude', sa.Double(), nullable=True),
    sa.Column('longitude', sa.Double(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site')),
    sa.UniqueConstraint('name', name=op.f('uq_site_name'))
    )
    op.create_table('dataset',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('params', JSON, nullable=False),
    sa.Column('manifest_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['processing_run.id'], name=op.f('fk_dataset_run_id_processing_run'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dataset')),
    sa.UniqueConstraint('name', 'version', name=op.f('uq_dataset_name_version'))
    )
    op.create_table('deployment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=True),
    sa.Column('start_utc', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_utc', sa.DateTime(timezone=True), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('schedule', JSON, nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], name=op.f('fk_deployment_device_id_device'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_deployment_site_id_site'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployment')),
    sa.UniqueConstraint('site_id', 'name', name=op.f('uq_deployment_site_id_name'))
    )
    with op.batch_alter_table('deployment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deployment_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_deployment_site_id'), ['site_id'], unique=False)

    op.create_table('export',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('format', sa.String(length=32), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('files', JSON, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], name=op.f('fk_export_dataset_id_dataset'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export'))
    )
    with op.batch_alter_table('export', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_export_dataset_id'), ['dataset_id'], unique=False)

    op.create_table('ingest_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('card_id', sa.Integer(), nullable=False),
    sa.Column('deployment_id', sa.Integer(), nullable=False),
    sa.Column('resumed_from_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('source_root', sa.Text(), nullable=False),
    sa.Column('inventory_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('files_total', sa.Integer(), nullable=False),
    sa.Column('bytes_total', sa.BigInteger(), nullable=False),
    sa.Column('counts', JSON, nullable=True),
    sa.Column('safe_to_erase', sa.Boolean(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('username', sa.String(length=255), nullable=True),
    sa.Column('fieldkit_version', sa.String(length=32), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('started', 'copying', 'complete', 'incomplete', 'failed')", name=op.f('ck_ingest_session_state')),
    sa.ForeignKeyConstraint(['card_id'], ['card.id'], name=op.f('fk_ingest_session_card_id_card'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['deployment_id'], ['deployment.id'], name=op.f('fk_ingest_session_deployment_id_deployment'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['resumed_from_id'], ['ingest_session.id'], name=op.f('fk_ingest_session_resumed_from_id_ingest_session'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_session'))
    )
    with op.batch_alter_table('ingest_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ingest_session_card_id'), ['card_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ingest_session_deployment_id'), ['deployment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ingest_session_inventory_fingerprint'), ['inventory_fingerprint'], unique=False)
        batch_op.create_index(batch_op.f('ix_ingest_session_state'), ['state'], unique=False)

    op.create_table('recording',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('archive_path', sa.Text(), nullable=False),
    sa.Column('deployment_id', sa.Integer(), nullable=True),
    sa.Column('device_id', sa.Integer(), nullable=True),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('declared_extension', sa.String(length=16), nullable=True),
    sa.Column('sample_rate_hz', sa.Integer(), nullable=True),
    sa.Column('channels', sa.Integer(), nullable=True),
    sa.Column('bit_depth', sa.Integer(), nullable=True),
    sa.Column('subtype', sa.String(length=32), nullable=True),
    sa.Column('frames_declared', sa.BigInteger(), nullable=True),
    sa.Column('frames_present', sa.BigInteger(), nullable=True),
    sa.Column('duration_s', sa.Double(), nullable=True),
    sa.Column('start_time_utc', sa.DateTime(timezone=True), nullable=True),
    sa.Column('time_source', sa.String(length=32), nullable=True),
    sa.Column('time_discrepancy_s', sa.Double(), nullable=True),
    sa.Column('times', JSON, nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('status_message', sa.Text(), nullable=True),
    sa.Column('peak_dbfs', sa.Double(), nullable=True),
    sa.Column('clipped_samples', sa.BigInteger(), nullable=True),
    sa.Column('dc_offset', sa.Double(), nullable=True),
    sa.Column('silent_fraction', sa.Double(), nullable=True),
    sa.Column('metadata', JSON, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['deployment_id'], ['deployment.id'], name=op.f('fk_recording_deployment_id_deployment'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], name=op.f('fk_recording_device_id_device'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recording')),
    sa.UniqueConstraint('archive_path', name=op.f('uq_recording_archive_path')),
    sa.UniqueConstraint('sha256', name=op.f('uq_recording_sha256'))
    )
    with op.batch_alter_table('recording', schema=None) as batch_op:
        batch_op.create_index('ix_recording_deployment_start', ['deployment_id', 'start_time_utc'], unique=False)
        batch_op.create_index(batch_op.f('ix_recording_device_id'), ['device_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recording_status'), ['status'], unique=False)

    op.create_table('annotation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('begin_s', sa.Double(), nullable=False),
    sa.Column('end_s', sa.Double(), nullable=False),
    sa.Column('low_hz', sa.Double(), nullable=True),
    sa.Column('high_hz', sa.Double(), nullable=True),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.Integer(), nullable=True),
    sa.Column('source_file', sa.Text(), nullable=True),
    sa.Column('source_line', sa.Integer(), nullable=True),
    sa.Column('annotator', sa.String(length=200), nullable=True),
    sa.Column('extra', JSON, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('end_s >= begin_s', name=op.f('ck_annotation_interval')),
    sa.ForeignKeyConstraint(['recording_id'], ['recording.id'], name=op.f('fk_annotation_recording_id_recording'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_annotation'))
    )
    with op.batch_alter_table('annotation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_annotation_label'), ['label'], unique=False)
        batch_op.create_index(batch_op.f('ix_annotation_recording_id'), ['recording_id'], unique=False)

    op.create_table('dataset_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('clip_index', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('labels', JSON, nullable=False),
    sa.Column('split', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], name=op.f('fk_dataset_item_dataset_id_dataset'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recording_id'], ['recording.id'], name=op.f('fk_dataset_item_recording_id_recording'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dataset_item')),
    sa.UniqueConstraint('dataset_id', 'clip_index', name=op.f('uq_dataset_item_dataset_id_clip_index'))
    )
    with op.batch_alter_table('dataset_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dataset_item_dataset_id'), ['dataset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dataset_item_split'), ['split'], unique=False)

    op.create_table('derivative',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.Integer(), nullable=False),
    sa.Column('clip_start', sa.Integer(), nullable=False),
    sa.Column('clip_stop', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('seconds', sa.Double(), nullable=True),
    sa.ForeignKeyConstraint(['recording_id'], ['recording.id'], name=op.f('fk_derivative_recording_id_recording'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['run_id'], ['processing_run.id'], name=op.f('fk_derivative_run_id_processing_run'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_derivative')),
    sa.UniqueConstraint('run_id', 'recording_id', 'channel', name=op.f('uq_derivative_run_id_recording_id_channel'))
    )
    with op.batch_alter_table('derivative', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_derivative_recording_id'), ['recording_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_derivative_run_id'), ['run_id'], unique=False)

    op.create_table('source_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=True),
    sa.Column('raw_path', sa.LargeBinary(), nullable=False),
    sa.Column('display_path', sa.Text(), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('mtime', sa.DateTime(timezone=True), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'verified', 'duplicate', 'ignored', 'failed')", name=op.f('ck_source_file_state')),
    sa.ForeignKeyConstraint(['recording_id'], ['recording.id'], name=op.f('fk_source_file_recording_id_recording'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['session_id'], ['ingest_session.id'], name=op.f('fk_source_file_session_id_ingest_session'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_source_file')),
    sa.UniqueConstraint('session_id', 'raw_path', name=op.f('uq_source_file_session_id_raw_path'))
    )
    with op.batch_alter_table('source_file', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_source_file_recording_id'), ['recording_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_source_file_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_source_file_sha256'), ['sha256'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('source_file', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_source_file_sha256'))
        batch_op.drop_index(batch_op.f('ix_source_file_session_id'))
        batch_op.drop_index(batch_op.f('ix_source_file_recording_id'))

    op.drop_table('source_file')
    with op.batch_alter_table('derivative', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_derivative_run_id'))
        batch_op.drop_index(batch_op.f('ix_derivative_recording_id'))

    op.drop_table('derivative')
    with op.batch_alter_table('dataset_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dataset_item_split'))
        batch_op.drop_index(batch_op.f('ix_dataset_item_dataset_id'))

    op.drop_table('dataset_item')
    with op.batch_alter_table('annotation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_annotation_recording_id'))
        batch_op.drop_index(batch_op.f('ix_annotation_label'))

    op.drop_table('annotation')
    with op.batch_alter_table('recording', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recording_status'))
        batch_op.drop_index(batch_op.f('ix_recording_device_id'))
        batch_op.drop_index('ix_recording_deployment_start')

    op.drop_table('recording')
    with op.batch_alter_table('ingest_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ingest_session_state'))
        batch_op.drop_index(batch_op.f('ix_ingest_session_inventory_fingerprint'))
        batch_op.drop_index(batch_op.f('ix_ingest_session_deployment_id'))
        batch_op.drop_index(batch_op.f('ix_ingest_session_card_id'))

    op.drop_table('ingest_session')
    with op.batch_alter_table('export', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_export_dataset_id'))

    op.drop_table('export')
    with op.batch_alter_table('deployment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deployment_site_id'))
        batch_op.drop_index(batch_op.f('ix_deployment_name'))

    op.drop_table('deployment')
    op.drop_table('dataset')
    op.drop_table('site')
    with op.batch_alter_table('processing_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_processing_run_state'))
        batch_op.drop_index(batch_op.f('ix_processing_run_params_hash'))
        batch_op.drop_index(batch_op.f('ix_processing_run_name'))

    op.drop_table('processing_run')
    op.drop_table('device')
    op.drop_table('card')
