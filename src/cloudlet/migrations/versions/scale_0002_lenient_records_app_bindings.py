"""scale: distinct weighings at one time, time zones as sent, vendor-app bindings

Revision ID: scale_0002
Revises: scale_0001
Create Date: 2026-12-02
"""

import hashlib
from collections.abc import Sequence

import orjson
import sqlalchemy as sa
from alembic import op

import cloudlet.core.db

revision: str = "scale_0002"
down_revision: str | Sequence[str] | None = "scale_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fingerprint(weight: str, heart_rate: object, scale_type: object, impedances: object) -> str:
    # The same digest as cloudlet.scale.service.record_fingerprint (kept here as it was
    # when this revision was written: migrations do not follow later code).
    payload = orjson.dumps([weight, heart_rate, scale_type, impedances])
    return hashlib.sha256(payload).hexdigest()[:32]


def upgrade() -> None:
    with op.batch_alter_table("scale_record") as batch:
        batch.add_column(
            sa.Column("fingerprint", sa.String(length=32), nullable=False, server_default="")
        )
    record = sa.table(
        "scale_record",
        sa.column("id", sa.Integer()),
        sa.column("weight", sa.String()),
        sa.column("heart_rate", sa.Integer()),
        sa.column("scale_type", sa.Integer()),
        sa.column("impedances", sa.JSON()),
        sa.column("fingerprint", sa.String()),
    )
    bind = op.get_bind()
    after = 0
    while True:
        rows = bind.execute(
            sa.select(
                record.c.id,
                record.c.weight,
                record.c.heart_rate,
                record.c.scale_type,
                record.c.impedances,
            )
            .where(record.c.id > after)
            .order_by(record.c.id)
            .limit(1000)
        ).all()
        if not rows:
            break
        bind.execute(
            record.update().where(record.c.id == sa.bindparam("rid")),
            [
                {
                    "rid": r.id,
                    "fingerprint": _fingerprint(r.weight, r.heart_rate, r.scale_type, r.impedances),
                }
                for r in rows
            ],
        )
        after = rows[-1].id
    with op.batch_alter_table("scale_record") as batch:
        batch.drop_constraint("uq_scale_record_device_id_member_id_timestamp_ms", type_="unique")
        batch.create_unique_constraint(
            "uq_scale_record_device_id_member_id_timestamp_ms_fingerprint",
            ["device_id", "member_id", "timestamp_ms", "fingerprint"],
        )
    with op.batch_alter_table("scale_device") as batch:
        batch.alter_column(
            "timezone",
            existing_type=sa.Integer(),
            type_=sa.String(length=16),
            existing_nullable=True,
            postgresql_using="timezone::varchar",
        )
    op.create_table(
        "scale_app_binding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=64), nullable=False),
        sa.Column("sn", sa.String(length=64), nullable=False),
        sa.Column("created_at", cloudlet.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scale_app_binding")),
        sa.UniqueConstraint("sn", name=op.f("uq_scale_app_binding_sn")),
    )
    op.create_index(op.f("ix_scale_app_binding_uid"), "scale_app_binding", ["uid"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_scale_app_binding_uid"), table_name="scale_app_binding")
    op.drop_table("scale_app_binding")
    with op.batch_alter_table("scale_device") as batch:
        batch.alter_column(
            "timezone",
            existing_type=sa.String(length=16),
            type_=sa.Integer(),
            existing_nullable=True,
            postgresql_using="NULLIF(timezone, '')::integer",
        )
    with op.batch_alter_table("scale_record") as batch:
        batch.drop_constraint(
            "uq_scale_record_device_id_member_id_timestamp_ms_fingerprint", type_="unique"
        )
        batch.create_unique_constraint(
            "uq_scale_record_device_id_member_id_timestamp_ms",
            ["device_id", "member_id", "timestamp_ms"],
        )
        batch.drop_column("fingerprint")
