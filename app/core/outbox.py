"""One outbox (Invariant 4).

A service calls ``emit(session, ...)`` in the same transaction as its state change; the
row commits or rolls back with it. A trigger NOTIFYs ``till_outbox`` on insert (delivered
only on commit). The relay, running in the worker, drains committed rows in order under an
advisory lock: it stamps each with the next ``seq`` (monotonic, so per store too), publishes
it to the store's Redis channel (SSE) and enqueues the SAQ jobs that consume its type, then
commits. A crash before the commit publishes the event again with a new ``seq``
(at-least-once); consumers dedupe by the event ``id``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from advanced_alchemy.base import BigIntBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from saq import Queue
from sqlalchemy import BigInteger, Index, Sequence, String, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from app.core.jobs import enqueue
from app.core.listen import drain_on_notify
from app.core.logging import current_correlation_id
from app.core.tenancy import TenantMixin, system_scope

log = structlog.get_logger(__name__)

NOTIFY_CHANNEL = "till_outbox"
RELAY_LOCK_KEY = 0x7111_0B0C  # pg advisory lock: one relay drains at a time
publish_seq = Sequence("outbox_publish_seq", metadata=BigIntBase.metadata)


class OutboxEvent(TenantMixin, BigIntBase):
    __tablename__ = "outbox_events"
    __store_index__ = False
    __table_args__ = (
        Index("ix_outbox_events_unpublished", "id", postgresql_where=text("published_at IS NULL")),
        Index("ix_outbox_events_store_seq", "store_id", "seq"),
    )

    type: Mapped[str] = mapped_column(String(80))
    aggregate_type: Mapped[str] = mapped_column(String(40))
    aggregate_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    correlation_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), server_default=func.now())
    seq: Mapped[int | None] = mapped_column(BigInteger, default=None, unique=True)
    published_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


def emit(
    session: AsyncSession,
    event_type: str,
    *,
    aggregate_type: str,
    aggregate_id: uuid.UUID | str,
    payload: dict[str, Any] | None = None,
    store_id: uuid.UUID | None = None,
) -> OutboxEvent:
    """Record a domain event in the caller's transaction. ``store_id`` defaults to the session's store."""
    event = OutboxEvent(
        type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        payload=payload or {},
        correlation_id=current_correlation_id(),
    )
    if store_id is not None:
        event.store_id = store_id
    session.add(event)
    return event


def store_channel(store_id: uuid.UUID | str) -> str:
    return f"store:{store_id}"


@dataclass(frozen=True)
class PublishedEvent:
    """What subscribers receive: the wire form of an outbox row."""

    id: int
    seq: int
    store_id: str
    type: str
    aggregate_type: str
    aggregate_id: str
    payload: dict[str, Any]
    correlation_id: str | None

    @classmethod
    def of(cls, row: OutboxEvent) -> PublishedEvent:
        assert row.seq is not None
        return cls(
            id=row.id,
            seq=row.seq,
            store_id=str(row.store_id),
            type=row.type,
            aggregate_type=row.aggregate_type,
            aggregate_id=row.aggregate_id,
            payload=row.payload,
            correlation_id=row.correlation_id,
        )

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> PublishedEvent:
        return cls(**json.loads(data))


# event type → names of SAQ tasks that consume it. Domains register at import time.
_consumers: dict[str, list[str]] = {}


def register_consumer(event_type: str, task_name: str) -> None:
    names = _consumers.setdefault(event_type, [])
    if task_name not in names:
        names.append(task_name)


def consumers_of(event_type: str) -> list[str]:
    return list(_consumers.get(event_type, ()))


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        channels: RedisChannelsPubSubBackend,
        queue: Queue,
        *,
        batch_size: int = 500,
        consumers: Callable[[str], list[str]] = consumers_of,
    ) -> None:
        self.sessions = sessions
        self.channels = channels
        self.queue = queue
        self.batch_size = batch_size
        self.consumers = consumers

    async def drain_once(self) -> int:
        """Publish one batch of committed, unpublished events. Returns how many."""
        async with self.sessions() as session, session.begin():
            system_scope(session)
            # Waits for another relay's batch (and for a live page reading what it missed: see
            # wait_for_publishing); held until this batch, published, commits.
            await session.execute(select(func.pg_advisory_xact_lock(RELAY_LOCK_KEY)))
            events = (
                await session.scalars(
                    select(OutboxEvent)
                    .where(OutboxEvent.published_at.is_(None))
                    .order_by(OutboxEvent.id)
                    .limit(self.batch_size)
                )
            ).all()
            if not events:
                return 0
            # One call reserves the numbers; sorted, they follow the events' id order.
            seqs = sorted(
                (
                    await session.scalars(
                        text("SELECT nextval('outbox_publish_seq') FROM generate_series(1, :n)"),
                        {"n": len(events)},
                    )
                ).all()
            )
            now = datetime.now(UTC)
            for event, seq in zip(events, seqs, strict=True):
                event.seq = seq
                event.published_at = now
            await session.flush()
            for event in events:
                await self._deliver(PublishedEvent.of(event))
        return len(events)

    async def _deliver(self, event: PublishedEvent) -> None:
        await self.channels.publish(event.to_json(), [store_channel(event.store_id)])
        for task_name in self.consumers(event.type):
            await enqueue(
                self.queue,
                task_name,
                key=f"{task_name}:{event.id}",
                correlation_id=event.correlation_id,
                retries=5,
                event=event.__dict__,
            )

    async def drain(self) -> int:
        total = 0
        while True:
            n = await self.drain_once()
            total += n
            if n < self.batch_size:
                return total

    async def run(self, listen_dsn: str, *, poll_interval: float = 1.0) -> None:
        """Drain on every NOTIFY, and every ``poll_interval`` seconds as a fallback. Runs until cancelled."""
        await drain_on_notify(listen_dsn, NOTIFY_CHANNEL, self.drain, poll_interval=poll_interval)


async def wait_for_publishing(session: AsyncSession) -> None:
    """Wait until no relay batch is between publishing and committing (ADR 0001).

    The relay publishes a batch before its transaction commits. A live page that subscribed just after
    that publish and then read the events it missed before the commit would see neither: call this in
    the transaction that reads them. Holds the relay's lock shared until that transaction ends.
    """
    await session.execute(select(func.pg_advisory_xact_lock_shared(RELAY_LOCK_KEY)))


async def events_after(
    session: AsyncSession, store_id: uuid.UUID, after_seq: int, limit: int = 1000
) -> list[PublishedEvent]:
    """Published events of one store after ``after_seq`` (SSE replay for ``Last-Event-ID``)."""
    rows = (
        await session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.store_id == store_id, OutboxEvent.seq > after_seq)
            .order_by(OutboxEvent.seq)
            .limit(limit)
        )
    ).all()
    return [PublishedEvent.of(r) for r in rows]


__all__ = [
    "OutboxEvent",
    "OutboxRelay",
    "PublishedEvent",
    "consumers_of",
    "emit",
    "events_after",
    "register_consumer",
    "store_channel",
    "wait_for_publishing",
]
