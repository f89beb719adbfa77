"""Live pages over SSE: one store's published events, missed ones first, then live ones.

A page is rendered at some outbox sequence; its stream starts after it (``?after=``), and a browser
that reconnects sends ``Last-Event-ID`` and gets every event it missed from the database before the
live ones (the Redis pub/sub channel keeps no history).

Each open page is a ``Screen`` showing a ``view`` ("board", "order:<id>"): what an event becomes on it
is its ``message_for`` (an encoded SSE frame, or None to show nothing). All screens of a view see the
same frames, so the ``Hub`` makes each frame once per process: one Redis subscription per store with
screens open, which parses each event once, renders it once per view (``Rendered``) and queues the same
bytes to every screen of that view. (Litestar's ``ServerSentEvent`` with one Channels subscription per
screen parsed, rendered and encoded each event again for every screen: at 1,000 boards that was most of
the web process's work; see bench/board.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from litestar.channels import ChannelsPlugin
from litestar.response import ServerSentEventMessage, Stream
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.outbox import OutboxEvent, PublishedEvent, events_after, store_channel, wait_for_publishing
from app.core.tenancy import bind_store

log = structlog.get_logger(__name__)

RETRY_MS = 1000  # how soon a browser reconnects after the stream drops
REPLAY_PAGE = 1000
SCREEN_BACKLOG = 500  # frames a screen may fall behind before it is closed (the browser reconnects, replays)

MessageFor = Callable[[PublishedEvent], Awaitable[bytes | None]]
CONNECTED = ServerSentEventMessage(comment="connected", retry=RETRY_MS).encode()


def resume_point(last_event_id: str | None, after: int) -> int:
    """Where a stream starts: after the last event the browser saw, else after the page's sequence."""
    return int(last_event_id) if last_event_id and last_event_id.isdigit() else after


def response(stream: AsyncIterator[bytes]) -> Stream:
    """An SSE response of already encoded frames, with ``ServerSentEvent``'s headers."""
    headers = {"Cache-Control": "no-cache", "Connection": "keep-alive", "X-Accel-Buffering": "no"}
    return Stream(stream, media_type="text/event-stream", headers=headers)


async def last_seq(session: AsyncSession, store_id: uuid.UUID) -> int:
    """The store's newest published event: a page rendered now streams what comes after it."""
    seq = await session.scalar(
        select(func.coalesce(func.max(OutboxEvent.seq), 0)).where(OutboxEvent.store_id == store_id)
    )
    return int(seq or 0)


class Rendered:
    """Each event made into a view's frame once per process, however many screens need it.

    The first caller starts the rendering; others arriving meanwhile await the same task (shielded, so
    one that disconnects does not cancel it for the rest). Keeps the newest ``size``.
    """

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._tasks: OrderedDict[tuple[str, int], asyncio.Task[bytes | None]] = OrderedDict()

    async def get(self, view: str, event: PublishedEvent, render: MessageFor) -> bytes | None:
        key = (view, event.seq)
        task = self._tasks.get(key)
        if task is not None and task.done() and task.exception() is None:
            return task.result()  # the common case: made already
        if task is None or task.done():
            task = asyncio.ensure_future(render(event))
            self._tasks[key] = task
            while len(self._tasks) > self.size:
                self._tasks.popitem(last=False)
        try:
            return await asyncio.shield(task)
        except Exception:
            self._tasks.pop(key, None)  # the next caller tries again
            raise


@dataclass(eq=False)
class Screen:
    """One open page showing ``view``; the hub queues its frames as (seq, bytes), None to close it."""

    view: str
    message_for: MessageFor
    frames: asyncio.Queue[tuple[int, bytes] | None] = field(default_factory=lambda: asyncio.Queue(SCREEN_BACKLOG))

    def close(self) -> None:
        """Ends the stream: its browser reconnects with Last-Event-ID and replays what it lacks."""
        while not self.frames.empty():
            self.frames.get_nowait()
        self.frames.put_nowait(None)


class _Feed:
    """One store's live events in this process, fanned out to its screens, grouped by view."""

    def __init__(self, hub: Hub, store_id: uuid.UUID) -> None:
        self.views: dict[str, set[Screen]] = {}
        self.ready = asyncio.Event()  # subscribed: events published from now on reach the screens
        self.task = asyncio.create_task(self._run(hub, store_id))

    async def _run(self, hub: Hub, store_id: uuid.UUID) -> None:
        try:
            async with hub.channels.start_subscription([store_channel(store_id)]) as subscriber:
                self.ready.set()
                async for raw in subscriber.iter_events():
                    await self._fan_out(hub.rendered, PublishedEvent.from_json(raw))
        except Exception:
            log.exception("live.feed_failed", store_id=str(store_id))
        finally:
            hub.feed_ended(store_id, self)
            for screens in self.views.values():
                for screen in screens:
                    screen.close()

    async def _fan_out(self, rendered: Rendered, event: PublishedEvent) -> None:
        for view, screens in list(self.views.items()):
            if not screens:
                continue
            try:
                frame = await rendered.get(view, event, next(iter(screens)).message_for)
            except Exception:
                log.exception("live.render_failed", view=view, seq=event.seq)
                frame, closing = None, list(screens)  # they reconnect and replay
                for screen in closing:
                    screen.close()
            if frame is None:
                continue
            for screen in list(screens):
                try:
                    screen.frames.put_nowait((event.seq, frame))
                except asyncio.QueueFull:
                    screen.close()


class Hub:
    """The process's live screens, per store (kept in ``app.state.live``)."""

    def __init__(self, channels: ChannelsPlugin, rendered: Rendered | None = None) -> None:
        self.channels = channels
        self.rendered = rendered or Rendered()
        self._feeds: dict[uuid.UUID, _Feed] = {}

    async def stream(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store_id: uuid.UUID,
        after: int,
        view: str,
        message_for: MessageFor,
    ) -> AsyncGenerator[bytes, None]:
        """The store's events with seq > ``after`` as ``view`` shows them, in order, none twice.

        The screen joins the live feed before the missed events are read, so nothing published in
        between is lost; a live event the replay already sent is skipped by its seq.
        """
        screen = Screen(view, message_for)
        feed = self._feeds.get(store_id) or self._feeds.setdefault(store_id, _Feed(self, store_id))
        feed.views.setdefault(view, set()).add(screen)
        try:
            await feed.ready.wait()
            yield CONNECTED
            last = after
            while True:
                async with sessions() as session, session.begin():
                    bind_store(session, store_id)
                    await wait_for_publishing(session)  # a batch published before the feed joined is read here
                    missed = await events_after(session, store_id, last, limit=REPLAY_PAGE)
                for event in missed:
                    last = event.seq
                    frame = await self.rendered.get(view, event, message_for)
                    if frame is not None:
                        yield frame
                if len(missed) < REPLAY_PAGE:
                    break
            while (item := await screen.frames.get()) is not None:
                seq, frame = item
                if seq > last:
                    last = seq
                    yield frame
        finally:
            screens = feed.views.get(view, set())
            screens.discard(screen)
            if not screens:
                feed.views.pop(view, None)
            if not feed.views and self._feeds.get(store_id) is feed:  # the store's last screen here
                del self._feeds[store_id]
                feed.task.cancel()

    def feed_ended(self, store_id: uuid.UUID, feed: _Feed) -> None:
        if self._feeds.get(store_id) is feed:
            del self._feeds[store_id]
        feed.ready.set()  # screens still waiting to join get their close instead of hanging

    async def close(self) -> None:
        feeds = list(self._feeds.values())
        for feed in feeds:
            feed.task.cancel()
        for feed in feeds:
            with contextlib.suppress(asyncio.CancelledError):
                await feed.task
