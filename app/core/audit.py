"""The audit trail: who changed what in a store (staff, settings, go-live). Rows are only inserted."""

from __future__ import annotations

import uuid
from typing import Any

from advanced_alchemy.types import JsonB
from sqlalchemy import ForeignKey, Index, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import UUIDv7AuditBase
from app.core.logging import current_correlation_id
from app.core.rbac import Principal
from app.core.tenancy import TenantMixin


class AuditEntry(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "audit_entries"
    __store_index__ = False
    __table_args__ = (Index("ix_audit_entries_store_created", "store_id", "created_at"),)

    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(160))  # "Olivia Owner (owner@…)", "API token X", "till CLI"
    action: Mapped[str] = mapped_column(String(80))  # "staff.invited", "store.went_live", "settings.tax"
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    correlation_id: Mapped[str | None] = mapped_column(String(64), default=None)


def actor_label(principal: Principal | None) -> str:
    if principal is None:
        return "system"
    if principal.email:
        return f"{principal.display_name} <{principal.email}>"
    return principal.display_name


def record(
    session: AsyncSession,
    principal: Principal | None,
    action: str,
    *,
    target_type: str,
    target_id: uuid.UUID | str,
    details: dict[str, Any] | None = None,
    store_id: uuid.UUID | None = None,
) -> AuditEntry:
    """Add an audit row in the caller's transaction (it commits or rolls back with the change)."""
    entry = AuditEntry(
        actor_user_id=principal.user_id if principal else None,
        actor=actor_label(principal),
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        details=details or {},
        correlation_id=current_correlation_id(),
    )
    if store_id is not None:
        entry.store_id = store_id
    session.add(entry)
    return entry


async def recent(session: AsyncSession, *, prefix: str = "", limit: int = 50) -> list[AuditEntry]:
    """The session's store's latest entries, newest first; ``prefix`` narrows by action ("staff.")."""
    query = select(AuditEntry).order_by(AuditEntry.created_at.desc()).limit(limit)
    if prefix:
        query = query.where(AuditEntry.action.startswith(prefix))
    return list(await session.scalars(query))
