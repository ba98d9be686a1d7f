"""core: admin login lockout per (client address, user name)

Revision ID: core_0003
Revises: core_0002
Create Date: 2026-12-02

The counters are short-lived lockout state: the table is recreated with its new key rather
than migrated row by row (a lockout under way ends with the upgrade).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0003"
down_revision: str | Sequence[str] | None = "core_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _create(key: str, length: int) -> None:
    op.create_table(
        "core_admin_login_failure",
        sa.Column(key, sa.String(length=length), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("locked_until_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(key, name=op.f("pk_core_admin_login_failure")),
    )


def upgrade() -> None:
    op.drop_table("core_admin_login_failure")
    _create("key", 128)


def downgrade() -> None:
    op.drop_table("core_admin_login_failure")
    _create("username", 64)
