"""stores.espresense_prefix

Revision ID: 0004_store_espresense_prefix
Revises: 0003_webhooks
Create Date: 2026-11-25 10:00:00.000000

The store layout's ESPresense base topic, so that the layout served to
gateways (``GET /v1/stores/{id}/layout``) is the one imported. Stores imported
before keep the layout default, ``espresense``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0004_store_espresense_prefix"
down_revision: str | None = "0003_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stores", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "espresense_prefix",
                sqlmodel.sql.sqltypes.AutoString(length=512),
                server_default="espresense",
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("stores", schema=None) as batch_op:
        batch_op.drop_column("espresense_prefix")
