"""Webhook events wake the worker's processor (NOTIFY till_webhooks when one is stored or replayed); fewer
indexes on webhook_events (each is written three times per event).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_webhook_events_store_status_received", table_name="webhook_events")
    op.drop_index("ix_webhook_events_store_type_received", table_name="webhook_events")
    op.create_index(
        "ix_webhook_events_store_failures",
        "webhook_events",
        ["store_id", "received_at"],
        postgresql_where=sa.text("status IN ('failed', 'dead')"),
    )
    # Delivered on commit only; identical notifications of one transaction are delivered once.
    op.execute(
        "CREATE FUNCTION till_webhooks_notify() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_notify('till_webhooks', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER webhook_events_notify AFTER INSERT OR UPDATE OF status ON webhook_events "
        "FOR EACH ROW WHEN (NEW.status = 'received') EXECUTE FUNCTION till_webhooks_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER webhook_events_notify ON webhook_events")
    op.execute("DROP FUNCTION till_webhooks_notify()")
    op.drop_index("ix_webhook_events_store_failures", table_name="webhook_events")
    op.create_index("ix_webhook_events_store_type_received", "webhook_events", ["store_id", "type", "received_at"])
    op.create_index("ix_webhook_events_store_status_received", "webhook_events", ["store_id", "status", "received_at"])
