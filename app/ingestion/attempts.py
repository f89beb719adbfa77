"""The attempts page's reads (the log is written only by ``app.ingestion.services.OrderIngestion``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ValidationFailed
from app.core.tenancy import bind_store
from app.ingestion.models import OUTCOMES, IngestionAttempt
from app.orders.models import Order


@dataclass(frozen=True)
class AttemptFilter:
    outcome: str = ""  # accepted | replayed | rejected, or every one
    since: datetime | None = None
    until: datetime | None = None  # exclusive


@dataclass(frozen=True)
class AttemptRow:
    attempt: IngestionAttempt
    order_number: int | None


class AttemptLog:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        bind_store(session, store_id)

    async def newest(self, filters: AttemptFilter, *, limit: int = 100) -> list[AttemptRow]:
        stmt = select(IngestionAttempt, Order.number).outerjoin(Order, Order.id == IngestionAttempt.order_id)
        if filters.outcome:
            if filters.outcome not in OUTCOMES:
                raise ValidationFailed("Choose an outcome.", fields={"outcome": f"One of {', '.join(OUTCOMES)}."})
            stmt = stmt.where(IngestionAttempt.outcome == filters.outcome)
        if filters.since:
            stmt = stmt.where(IngestionAttempt.received_at >= filters.since)
        if filters.until:
            stmt = stmt.where(IngestionAttempt.received_at < filters.until)
        stmt = stmt.order_by(IngestionAttempt.received_at.desc(), IngestionAttempt.id.desc()).limit(limit)
        return [AttemptRow(attempt, number) for attempt, number in await self.session.execute(stmt)]
