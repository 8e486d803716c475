"""app_token_hints: the index that resolves an app's BLE token without a scan

Revision ID: 0005_app_token_hints
Revises: 0004_store_espresense_prefix
Create Date: 2026-11-24 19:00:00.000000

One row per install per token window the fact consumer needed: the window and
the top bits of the install's token in it (never the whole token). Rows are
derived data: the table starts empty and fills on the first app fact of each
window (``server.installs.token_index``). An install's rows go with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0005_app_token_hints"
down_revision: str | None = "0004_store_espresense_prefix"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_token_hints",
        sa.Column("install_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("period_s", sa.Integer(), nullable=False),
        sa.Column("token_window", sa.BigInteger(), nullable=False),
        sa.Column("hint", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["install_id"],
            ["app_installs.id"],
            name=op.f("fk_app_token_hints_install_id_app_installs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "install_id", "period_s", "token_window", name=op.f("pk_app_token_hints")
        ),
    )
    op.create_index(
        op.f("ix_app_token_hints_period_s_token_window_hint"),
        "app_token_hints",
        ["period_s", "token_window", "hint"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_app_token_hints_period_s_token_window_hint"), table_name="app_token_hints"
    )
    op.drop_table("app_token_hints")
