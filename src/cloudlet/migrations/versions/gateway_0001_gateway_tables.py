"""gateway: settings, login state, joiners and log

Revision ID: gateway_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("gateway",)
depends_on: str | Sequence[str] | None = "core_0001"


def upgrade() -> None:
    op.create_table(
        "gateway_setting",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_gateway_setting")),
    )
    op.create_table(
        "gateway_nonce",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_gateway_nonce")),
    )
    op.create_index(
        op.f("ix_gateway_nonce_expires_ms"), "gateway_nonce", ["expires_ms"], unique=False
    )
    op.create_table(
        "gateway_session",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("last_used_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_gateway_session")),
    )
    op.create_table(
        "gateway_login_failure",
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("locked_until_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("client", name=op.f("pk_gateway_login_failure")),
    )
    op.create_table(
        "gateway_joiner",
        sa.Column("eui64", sa.String(length=16), nullable=False),
        sa.Column("pskd_enc", sa.Text(), nullable=False),
        sa.Column("timeout_s", sa.Integer(), nullable=False),
        sa.Column("added_ms", sa.BigInteger(), nullable=False),
        sa.Column("joined_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("eui64", name=op.f("pk_gateway_joiner")),
    )
    op.create_table(
        "gateway_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_log")),
    )
    op.create_index(op.f("ix_gateway_log_at_ms"), "gateway_log", ["at_ms"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_gateway_log_at_ms"), table_name="gateway_log")
    op.drop_table("gateway_log")
    op.drop_table("gateway_joiner")
    op.drop_table("gateway_login_failure")
    op.drop_table("gateway_session")
    op.drop_index(op.f("ix_gateway_nonce_expires_ms"), table_name="gateway_nonce")
    op.drop_table("gateway_nonce")
    op.drop_table("gateway_setting")
