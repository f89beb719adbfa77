"""The admin side of webhook events: a store's events filtered, a page at a time (keyset, newest first), and
replay (back to ``received``, for the worker's processor to take again; processing is idempotent, so replaying
is too)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Select, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import cursors
from app.core.days import day_range
from app.core.errors import ValidationFailed
from app.webhooks.models import EVENT_STATUSES, WebhookEventRow

PAGE_MAX = 200
REPLAY_MAX = 500
_SECRET_WORDS = ("secret", "password", "token", "api_key")


@dataclass(frozen=True)
class EventFilter:
    type: str | None = None  # exact, or a prefix ending in "." / "*" (``charge.dispute.``)
    status: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None  # exclusive


@dataclass(frozen=True)
class EventQuery:
    """The filters as the page's form and the API's query send them. Dates are whole days, store time zone."""

    type: str = ""
    status: str = ""
    since: str = ""
    until: str = ""

    def filters(self, timezone: str, *, strict: bool = False) -> EventFilter:
        errors: dict[str, str] = {}
        try:
            since, until = day_range(self.since, self.until, timezone)
        except ValidationFailed as exc:
            errors.update(exc.fields)
            since = until = None
        status = self.status if self.status in EVENT_STATUSES else None
        if strict and self.status and status is None:
            errors["status"] = "Choose one of: " + ", ".join(EVENT_STATUSES) + "."
        kind = self.type.strip()
        if len(kind) > 100:
            errors["type"] = "An event type is at most 100 characters."
        if errors:
            raise ValidationFailed("Check the filters.", fields=errors)
        return EventFilter(type=kind or None, status=status, received_from=since, received_to=until)

    def query_string(self, **extra: str) -> str:
        return urlencode({k: v for k, v in {**dataclasses.asdict(self), **extra}.items() if v})


@dataclass(frozen=True)
class EventRow:
    id: uuid.UUID
    provider: str
    event_id: str
    type: str
    status: str
    attempts: int
    last_error: str
    outcome: str
    received_at: datetime
    processed_at: datetime | None
    next_attempt_at: datetime | None
    payload: dict[str, Any]

    @property
    def pretty_payload(self) -> str:
        return json.dumps(redact(self.payload), indent=2, sort_keys=True)

    @classmethod
    def of(cls, row: WebhookEventRow) -> EventRow:
        return cls(
            id=row.id,
            provider=row.provider,
            event_id=row.event_id,
            type=row.type,
            status=row.status,
            attempts=row.attempts,
            last_error=row.last_error,
            outcome=row.outcome,
            received_at=row.received_at,
            processed_at=row.processed_at,
            next_attempt_at=row.next_attempt_at,
            payload=row.payload,
        )


def redact(value: Any) -> Any:
    """The payload with anything secret-looking (a PaymentIntent's ``client_secret``, tokens) blanked."""
    if isinstance(value, dict):
        return {
            k: "[redacted]" if any(w in str(k).lower() for w in _SECRET_WORDS) else redact(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def encode_cursor(row: EventRow) -> str:
    return cursors.encode_cursor(row.received_at, row.id)


decode_cursor = cursors.decode_cursor


class WebhookEvents:
    """A store's webhook events: reads, and replay. Processing (app/webhooks/processing.py) writes the rest."""

    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id

    def _filtered(self, stmt: Select[Any], filters: EventFilter) -> Select[Any]:
        E = WebhookEventRow
        stmt = stmt.where(E.store_id == self.store_id)
        if filters.type:
            if filters.type.endswith((".", "*")):
                prefix = filters.type.rstrip("*").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                stmt = stmt.where(E.type.like(prefix + "%"))
            else:
                stmt = stmt.where(E.type == filters.type)
        if filters.status:
            stmt = stmt.where(E.status == filters.status)
        if filters.received_from:
            stmt = stmt.where(E.received_at >= filters.received_from)
        if filters.received_to:
            stmt = stmt.where(E.received_at < filters.received_to)
        return stmt

    async def page(
        self, filters: EventFilter, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[EventRow], str | None]:
        if not 1 <= limit <= PAGE_MAX:
            raise ValidationFailed("Choose a page size.", fields={"limit": f"From 1 to {PAGE_MAX}."})
        E = WebhookEventRow
        stmt = self._filtered(select(E), filters)
        if cursor:
            stmt = stmt.where(tuple_(E.received_at, E.id) < tuple_(*[literal(v) for v in decode_cursor(cursor)]))
        rows = [
            EventRow.of(r)
            for r in await self.session.scalars(stmt.order_by(E.received_at.desc(), E.id.desc()).limit(limit + 1))
        ]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1]) if more and rows else None

    async def replay(self, ids: list[uuid.UUID]) -> list[uuid.UUID]:
        """Put this store's events ``ids`` back to ``received`` (attempts from 0) and commit: the row trigger
        wakes the worker's processor. One being processed right now is left alone. Returns the ids replayed."""
        if len(ids) > REPLAY_MAX:
            raise ValidationFailed(f"Replay at most {REPLAY_MAX} events at once.", fields={"ids": "Too many."})
        if not ids:
            return []
        E = WebhookEventRow
        result = await self.session.execute(
            update(E)
            .where(E.store_id == self.store_id, E.id.in_(ids), E.status != "processing")
            .values(status="received", attempts=0, next_attempt_at=None)
            .returning(E.id)
            .execution_options(synchronize_session=False)
        )
        replayed = [row_id for (row_id,) in result.all()]
        await self.session.commit()
        return replayed
