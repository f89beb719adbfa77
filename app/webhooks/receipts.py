"""Exactly-once outbox consumers (Invariant 4's other half).

The relay delivers each outbox event at least once (a crash before its commit publishes it again). A
consumer task wrapped in :func:`exactly_once` checks ``consumer_receipts`` for (its name, the event id)
first and skips an event it already handled; after its effect it records the receipt. A crash between the
effect and the receipt runs the effect again, so the wrapped tasks keep their own idempotency (a capture is
claimed on the intent, a transfer carries a deterministic key): the receipt makes the common repeat free
and visible, the task's own keys make the rare one harmless.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import pg

log = structlog.get_logger(__name__)


async def already_handled(engine: AsyncEngine, consumer: str, event_id: int) -> bool:
    async with pg.connection(engine) as conn:
        found = await conn.fetchval(
            "SELECT 1 FROM consumer_receipts WHERE consumer = $1 AND event_id = $2", consumer, event_id
        )
    return found is not None


async def record_handled(engine: AsyncEngine, consumer: str, event_id: int) -> bool:
    """Record the receipt; False when another run recorded it first."""
    async with pg.connection(engine) as conn:
        inserted = await conn.fetchval(
            "INSERT INTO consumer_receipts (consumer, event_id, processed_at) VALUES ($1, $2, now()) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            consumer,
            event_id,
        )
    return inserted is not None


class _Ctx(Protocol):
    def __getitem__(self, key: str, /) -> Any: ...

    def get(self, key: str, /) -> Any: ...


ConsumerTask = Callable[..., Awaitable[str]]
SKIPPED = "skipped"  # what a consumer task answers for an event it has nothing (more) to do with


def exactly_once(task: ConsumerTask) -> ConsumerTask:
    """Wrap an outbox consumer ``async def task(ctx, *, event) -> str`` (its name is the consumer's name)."""
    consumer = task.__name__

    @functools.wraps(task)
    async def run(ctx: _Ctx, *, event: dict[str, Any]) -> str:
        if event.get("id") is None:  # not an outbox event (nothing to key a receipt by): just run it
            return await task(ctx, event=event)
        engine: AsyncEngine = ctx.get("engine") or ctx["sessions"].kw["bind"]  # the worker's, or its sessions'
        event_id = int(event["id"])
        if await already_handled(engine, consumer, event_id):
            log.info("consumer.duplicate", consumer=consumer, outbox_event_id=event_id)
            return SKIPPED
        result = await task(ctx, event=event)
        await record_handled(engine, consumer, event_id)
        return result

    return run
