"""recording.status may be 'sidecar'

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Recorder cards carry text files that belong with the recordings — AudioMoth ``CONFIG.TXT``,
Song Meter ``*_Summary.txt``, ``GPS.TXT`` — which are archived like everything else but are not
audio and not a problem either: they get status ``sidecar`` instead of ``quarantined``.
"""
from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD = "status IN ('ok', 'truncated', 'quarantined')"
NEW = "status IN ('ok', 'truncated', 'quarantined', 'sidecar')"


def _replace(check: str) -> None:
    with op.batch_alter_table("recording", recreate="auto") as batch_op:
        batch_op.drop_constraint(op.f("ck_recording_status"), type_="check")
        batch_op.create_check_constraint("status", check)


def upgrade() -> None:
    _replace(NEW)


def downgrade() -> None:
    op.execute("UPDATE recording SET status = 'quarantined', reason = 'not_audio' WHERE status = 'sidecar'")
    _replace(OLD)
