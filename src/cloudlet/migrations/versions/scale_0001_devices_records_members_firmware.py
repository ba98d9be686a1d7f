"""scale: devices, records, members, firmware

Revision ID: scale_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cloudlet.core.db

revision: str = "scale_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("scale",)
depends_on: str | Sequence[str] | None = "core_0001"


def upgrade() -> None:
    op.create_table(
        "scale_device",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sn", sa.String(length=64), nullable=False),
        sa.Column("mac", sa.String(length=17), nullable=False),
        sa.Column("device_type", sa.String(length=64), nullable=False),
        sa.Column("protocol", sa.String(length=8), nullable=False),
        sa.Column("ble_version", sa.String(length=64), nullable=True),
        sa.Column("res_version", sa.String(length=64), nullable=True),
        sa.Column("mcu_version", sa.String(length=64), nullable=True),
        sa.Column("wifi_version", sa.String(length=64), nullable=True),
        sa.Column("firmware_version", sa.String(length=64), nullable=True),
        sa.Column("hardware_version", sa.String(length=64), nullable=True),
        sa.Column("sku_code", sa.String(length=32), nullable=True),
        sa.Column("battery", sa.String(length=16), nullable=True),
        sa.Column("timezone", sa.Integer(), nullable=True),
        sa.Column("wifi_ssid", sa.String(length=64), nullable=True),
        sa.Column("unit", sa.Integer(), nullable=True),
        sa.Column("default_member_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", cloudlet.core.db.UTCDateTime(), nullable=False),
        sa.Column("registered_at", cloudlet.core.db.UTCDateTime(), nullable=True),
        sa.Column("last_seen_at", cloudlet.core.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scale_device")),
        sa.UniqueConstraint("sn", name=op.f("uq_scale_device_sn")),
    )
    op.create_table(
        "scale_firmware",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_type", sa.String(length=64), nullable=False),
        sa.Column("component", sa.String(length=8), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("crc", sa.String(length=32), nullable=False),
        sa.Column("whitelist", sa.JSON(), nullable=True),
        sa.Column("created_at", cloudlet.core.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scale_firmware")),
        sa.UniqueConstraint(
            "device_type",
            "component",
            "version",
            name=op.f("uq_scale_firmware_device_type_component_version"),
        ),
    )
    op.create_table(
        "scale_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("height_cm", sa.Float(), nullable=True),
        sa.Column("sex", sa.String(length=6), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("created_at", cloudlet.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", cloudlet.core.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scale_member")),
        sa.UniqueConstraint("member_id", name=op.f("uq_scale_member_member_id")),
    )
    op.create_table(
        "scale_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("weight", sa.String(length=32), nullable=False),
        sa.Column("weight_kg", sa.Float(), nullable=False),
        sa.Column("heart_rate", sa.Integer(), nullable=True),
        sa.Column("scale_type", sa.Integer(), nullable=True),
        sa.Column("impedances", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("received_at", cloudlet.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["scale_device.id"],
            name=op.f("fk_scale_record_device_id_scale_device"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scale_record")),
        sa.UniqueConstraint(
            "device_id",
            "member_id",
            "timestamp_ms",
            name=op.f("uq_scale_record_device_id_member_id_timestamp_ms"),
        ),
    )
    op.create_index(
        "ix_scale_record_member_time", "scale_record", ["member_id", "timestamp_ms"], unique=False
    )
    op.create_index("ix_scale_record_time", "scale_record", ["timestamp_ms"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_scale_record_time", table_name="scale_record")
    op.drop_index("ix_scale_record_member_time", table_name="scale_record")
    op.drop_table("scale_record")
    op.drop_table("scale_member")
    op.drop_table("scale_firmware")
    op.drop_table("scale_device")
