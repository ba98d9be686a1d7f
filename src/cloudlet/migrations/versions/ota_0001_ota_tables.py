"""ota tables

Revision ID: ota_0001
Revises: core_0001
Create Date: 2026-11-23 04:29:03.227966
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cloudlet.core.db

revision: str = "ota_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("ota",)
depends_on: str | Sequence[str] | None = "core_0001"


def upgrade() -> None:
    op.create_table(
        "ota_product",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key_enc", sa.String(length=255), nullable=False),
        sa.Column("created_at", cloudlet.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ota_product")),
    )
    op.create_table(
        "ota_device",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dev_id", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key_enc", sa.String(length=255), nullable=False),
        sa.Column("manuf", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("fota_version", sa.String(length=20), nullable=True),
        sa.Column("sota_version", sa.String(length=20), nullable=True),
        sa.Column("last_check_at", cloudlet.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_signal", sa.Integer(), nullable=True),
        sa.Column("last_power", sa.Integer(), nullable=True),
        sa.Column("created_at", cloudlet.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["ota_product.id"],
            name=op.f("fk_ota_device_product_id_ota_product"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ota_device")),
        sa.UniqueConstraint("dev_id", name=op.f("uq_ota_device_dev_id")),
        sa.UniqueConstraint("product_id", "name", name=op.f("uq_ota_device_product_id_name")),
    )
    op.create_table(
        "ota_package",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("manuf", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=20), nullable=False),
        sa.Column("source_version", sa.String(length=20), nullable=False),
        sa.Column("blob_id", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("created_at", cloudlet.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["ota_product.id"],
            name=op.f("fk_ota_package_product_id_ota_product"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ota_package")),
        sa.UniqueConstraint(
            "product_id",
            "type",
            "manuf",
            "model",
            "kind",
            "source_version",
            "version",
            name=op.f("uq_ota_package_product_id_type_manuf_model_kind_source_version_version"),
        ),
    )
    op.create_table(
        "ota_strategy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("manuf", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("source_version", sa.String(length=20), nullable=False),
        sa.Column("target_version", sa.String(length=20), nullable=False),
        sa.Column("signal", sa.Integer(), nullable=False),
        sa.Column("power", sa.Integer(), nullable=False),
        sa.Column("retry", sa.Integer(), nullable=False),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", cloudlet.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["ota_product.id"],
            name=op.f("fk_ota_strategy_product_id_ota_product"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ota_strategy")),
    )
    op.create_table(
        "ota_task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("manuf", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("target_version", sa.String(length=20), nullable=False),
        sa.Column("signal", sa.Integer(), nullable=False),
        sa.Column("power", sa.Integer(), nullable=False),
        sa.Column("retry", sa.Integer(), nullable=False),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("strategy_id", sa.Integer(), nullable=True),
        sa.Column("created_at", cloudlet.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["ota_product.id"],
            name=op.f("fk_ota_task_product_id_ota_product"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["strategy_id"],
            ["ota_strategy.id"],
            name=op.f("fk_ota_task_strategy_id_ota_strategy"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ota_task")),
    )
    op.create_table(
        "ota_task_device",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("initial_version", sa.String(length=20), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", cloudlet.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("result", sa.Integer(), nullable=True),
        sa.Column("updated_at", cloudlet.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["ota_device.id"],
            name=op.f("fk_ota_task_device_device_id_ota_device"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["ota_task.id"],
            name=op.f("fk_ota_task_device_task_id_ota_task"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ota_task_device")),
        sa.UniqueConstraint(
            "task_id", "device_id", name=op.f("uq_ota_task_device_task_id_device_id")
        ),
    )
    with op.batch_alter_table("ota_task_device", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ota_task_device_device_state", ["device_id", "state"], unique=False
        )

    op.create_table(
        "ota_download_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("task_device_id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", cloudlet.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["ota_package.id"],
            name=op.f("fk_ota_download_token_package_id_ota_package"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_device_id"],
            ["ota_task_device.id"],
            name=op.f("fk_ota_download_token_task_device_id_ota_task_device"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ota_download_token")),
        sa.UniqueConstraint("digest", name=op.f("uq_ota_download_token_digest")),
    )
    with op.batch_alter_table("ota_download_token", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ota_download_token_task_device_id"), ["task_device_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ota_download_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ota_download_token_task_device_id"))

    op.drop_table("ota_download_token")
    with op.batch_alter_table("ota_task_device", schema=None) as batch_op:
        batch_op.drop_index("ix_ota_task_device_device_state")

    op.drop_table("ota_task_device")
    op.drop_table("ota_task")
    op.drop_table("ota_strategy")
    op.drop_table("ota_package")
    op.drop_table("ota_device")
    op.drop_table("ota_product")
