"""gateway: the simulated radio and network world, shared by every worker

Revision ID: gateway_0002
Revises: gateway_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0002"
down_revision: str | Sequence[str] | None = "gateway_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_sim_world",
        sa.Column("part", sa.String(length=16), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("part", name=op.f("pk_gateway_sim_world")),
    )


def downgrade() -> None:
    op.drop_table("gateway_sim_world")
