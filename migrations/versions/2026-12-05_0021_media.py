"""Media assets, derivatives and quotas (issue 19).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("store_id", GUID(length=16), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "media_assets",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("product_id", GUID(length=16), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=60), nullable=False),
        sa.Column("declared_bytes", sa.BigInteger(), nullable=False),
        sa.Column("original_bytes", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("alt_text", sa.String(length=300), nullable=False),
        sa.Column("derivatives", postgresql.JSONB(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("uploaded_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("processing_started_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("ready_at", DateTimeUTC(timezone=True), nullable=True),
        *_tenant_columns(),
        sa.CheckConstraint(
            "status IN ('pending', 'queued', 'processing', 'ready', 'failed')",
            name=op.f("ck_media_assets_media_status_known"),
        ),
        sa.CheckConstraint("kind IN ('image', 'video')", name=op.f("ck_media_assets_media_kind_known")),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_media_assets_product_id_products"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_media_assets_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_assets")),
    )
    op.create_index("ix_media_assets_store_product", "media_assets", ["store_id", "product_id", "position"])
    op.create_index(
        "ix_media_assets_waiting",
        "media_assets",
        ["status"],
        postgresql_where=sa.text("status IN ('queued', 'processing')"),
    )
    op.create_table(
        "media_quotas",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("max_bytes", sa.BigInteger(), nullable=False),
        sa.Column("max_count", sa.Integer(), nullable=False),
        *_tenant_columns(),
        sa.CheckConstraint("max_bytes >= 0 AND max_count >= 0", name=op.f("ck_media_quotas_media_quota_not_negative")),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_media_quotas_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_quotas")),
    )
    op.create_index("uq_media_quotas_store", "media_quotas", ["store_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_media_quotas_store", table_name="media_quotas")
    op.drop_table("media_quotas")
    op.drop_index("ix_media_assets_waiting", table_name="media_assets")
    op.drop_index("ix_media_assets_store_product", table_name="media_assets")
    op.drop_table("media_assets")
