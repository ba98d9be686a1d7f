"""ota: staged rollouts, the per-device timeline, SHA-256 and replaced files of packages

Revision ID: ota_0003
Revises: ota_0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cloudlet.core.db import UTCDateTime

revision: str = "ota_0003"
down_revision: str | Sequence[str] | None = "ota_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ota_rollout",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "task_id",
            sa.Integer(),
            sa.ForeignKey("ota_task.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False, server_default=""),
        sa.Column("waves", sa.Integer(), nullable=False),
        sa.Column("current_wave", sa.Integer(), nullable=False),
        sa.Column("success_threshold", sa.Integer(), nullable=False),
        sa.Column("error_threshold", sa.Integer(), nullable=False),
        sa.Column("start_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("window_start", sa.Integer(), nullable=True),
        sa.Column("window_end", sa.Integer(), nullable=True),
        sa.Column("window_zone", sa.String(length=64), nullable=False, server_default="UTC"),
        sa.Column("max_downloads", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("ota_task_device") as batch:
        batch.add_column(sa.Column("wave", sa.Integer(), nullable=True))
    with op.batch_alter_table("ota_device") as batch:
        batch.add_column(sa.Column("last_check_errno", sa.Integer(), nullable=True))
    with op.batch_alter_table("ota_package") as batch:
        batch.add_column(
            sa.Column("sha256", sa.String(length=64), nullable=False, server_default="")
        )
    # Blobs are stored under their SHA-256: the existing packages' digest is their blob id.
    op.execute("UPDATE ota_package SET sha256 = blob_id")
    op.create_table(
        "ota_package_file",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "package_id",
            sa.Integer(),
            sa.ForeignKey("ota_package.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("blob_id", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=128), nullable=False),
        sa.Column("replaced_at", UTCDateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ota_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "device_id",
            sa.Integer(),
            sa.ForeignKey("ota_device.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_ota_event_device_id_id", "ota_event", ["device_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_ota_event_device_id_id", table_name="ota_event")
    op.drop_table("ota_event")
    op.drop_table("ota_package_file")
    with op.batch_alter_table("ota_package") as batch:
        batch.drop_column("sha256")
    with op.batch_alter_table("ota_device") as batch:
        batch.drop_column("last_check_errno")
    with op.batch_alter_table("ota_task_device") as batch:
        batch.drop_column("wave")
    op.drop_table("ota_rollout")
