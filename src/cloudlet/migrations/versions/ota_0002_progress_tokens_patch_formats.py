"""ota: download progress, re-answerable tokens, package file names and patch formats

Revision ID: ota_0002
Revises: ota_0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ota_0002"
down_revision: str | Sequence[str] | None = "ota_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ota_task_device") as batch:
        batch.add_column(sa.Column("progress", sa.Integer(), nullable=True))
    with op.batch_alter_table("ota_download_token") as batch:
        batch.add_column(
            sa.Column("token_enc", sa.String(length=255), nullable=False, server_default="")
        )
    with op.batch_alter_table("ota_package") as batch:
        batch.add_column(
            sa.Column("filename", sa.String(length=128), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("patch_format", sa.String(length=32), nullable=False, server_default="")
        )
    # Existing differential packages are all bsdiff4 (the only format before this revision).
    op.execute("UPDATE ota_package SET patch_format = 'bsdiff4' WHERE kind = 2")


def downgrade() -> None:
    with op.batch_alter_table("ota_package") as batch:
        batch.drop_column("patch_format")
        batch.drop_column("filename")
    with op.batch_alter_table("ota_download_token") as batch:
        batch.drop_column("token_enc")
    with op.batch_alter_table("ota_task_device") as batch:
        batch.drop_column("progress")
