"""Live pages over SSE: one store's published events, missed ones first, then live ones.

A page is rendered at some outbox sequence; its stream starts after it (``?after=``), and a browser
that reconnects sends ``Last-Event-ID`` and gets every event it missed from the database before the
live ones (the Redis pub/sub channel keeps no history). The page decides what an event becomes on its
screen (``message_for``; None shows nothing). Many screens showing the same thing share one rendering
per process through ``Rendered``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable

from litestar.channels import ChannelsPlugin
from litestar.response import ServerSentEventMessage
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.outbox import OutboxEvent, PublishedEvent, events_after, store_channel
from app.core.tenancy import bind_store

RETRY_MS = 1000  # how soon a browser reconnects after the stream drops
REPLAY_PAGE = 1000

MessageFor = Callable[[PublishedEvent], Awaitable[ServerSentEventMessage | None]]


def resume_point(last_event_id: str | None, after: int) -> int:
    """Where a stream starts: after the last event the browser saw, else after the page's sequence."""
    return int(last_event_id) if last_event_id and last_event_id.isdigit() else after


async def last_seq(session: AsyncSession, store_id: uuid.UUID) -> int:
    """The store's newest published event: a page rendered now streams what comes after it."""
    seq = await session.scalar(
        select(func.coalesce(func.max(OutboxEvent.seq), 0)).where(OutboxEvent.store_id == store_id)
    )
    return int(seq or 0)


async def store_stream(
    sessions: async_sessionmaker[AsyncSession],
    channels: ChannelsPlugin,
    store_id: uuid.UUID,
    after: int,
    message_for: MessageFor,
) -> AsyncGenerator[ServerSentEventMessage, None]:
    """The store's events with seq > ``after``, each as ``message_for`` makes it, in order, none twice.

    Subscribes before reading the missed events, so nothing published in between is lost; a live event
    the replay already sent is skipped by its seq.
    """
    async with channels.start_subscription([store_channel(store_id)]) as subscriber:
        yield ServerSentEventMessage(comment="connected", retry=RETRY_MS)
        last = after
        while True:
            async with sessions() as session:
                bind_store(session, store_id)
                missed = await events_after(session, store_id, last, limit=REPLAY_PAGE)
            for event in missed:
                last = event.seq
                message = await message_for(event)
                if message is not None:
                    yield message
            if len(missed) < REPLAY_PAGE:
                break
        async for raw in subscriber.iter_events():
            event = PublishedEvent.from_json(raw)
            if event.seq <= last:
                continue
            last = event.seq
            message = await message_for(event)
            if message is not None:
                yield message


class Rendered:
    """Each event rendered once per process, however many screens stream it.

    The first stream to reach an event starts its rendering; the others await the same task (shielded,
    so a screen that disconnects meanwhile does not cancel it for the rest). Keeps the newest ``size``.
    """

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._tasks: OrderedDict[tuple[str, int], asyncio.Task[ServerSentEventMessage | None]] = OrderedDict()

    async def get(self, kind: str, event: PublishedEvent, render: MessageFor) -> ServerSentEventMessage | None:
        key = (kind, event.seq)
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(render(event))
            self._tasks[key] = task
            while len(self._tasks) > self.size:
                self._tasks.popitem(last=False)
        try:
            return await asyncio.shield(task)
        except Exception:
            self._tasks.pop(key, None)  # the next screen tries again
            raise
