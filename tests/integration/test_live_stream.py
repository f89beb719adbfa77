"""Live pages (app.core.live): a store's stream carries only its events, replays what a screen missed in
order and without gaps, and many screens share one rendering of each event."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from litestar import Litestar
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.response import ServerSentEventMessage
from redis.asyncio import Redis
from saq import Queue
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core import live
from app.core.outbox import RELAY_LOCK_KEY, OutboxRelay, PublishedEvent, emit, events_after
from app.core.tenancy import bind_store, system_scope
from app.orders.board import BoardCards
from app.orders.services import Actor, OrderService
from app.orders.states import Axis
from app.orders.tracking import OrderStatusFragments
from app.stores.models import Store
from tests.integration.conftest import World
from tests.integration.shop import make_shop, place_order

Sessions = async_sessionmaker[AsyncSession]
Stream = AsyncGenerator[bytes, None]
Publish = Callable[..., Awaitable[list[int]]]


@dataclass
class Frame:
    """An SSE frame as a browser reads it."""

    comment: str = ""
    id: str = ""
    event: str = ""
    data: str = ""

    @classmethod
    def parse(cls, raw: bytes) -> Frame:
        frame = cls()
        for line in raw.decode().split("\r\n"):
            name, _, value = line.partition(": ")
            if not line:
                continue
            if name == "":
                frame.comment = value
            elif name in ("id", "event"):
                setattr(frame, name, value)
            elif name == "data":
                frame.data += ("\n" if frame.data else "") + value
        return frame


async def _as_is(event: PublishedEvent) -> bytes:
    return ServerSentEventMessage(data=f"{event.type} {event.aggregate_id}", event=event.type, id=event.seq).encode()


@pytest.fixture
async def channels(redis: Redis) -> AsyncIterator[ChannelsPlugin]:
    plugin = ChannelsPlugin(backend=RedisChannelsPubSubBackend(redis=redis), arbitrary_channels_allowed=True)
    async with plugin:
        yield plugin


@pytest.fixture
def publish(sessions: Sessions, redis: Redis, settings: Settings) -> Publish:
    relay = OutboxRelay(sessions, RedisChannelsPubSubBackend(redis=redis), Queue.from_url(settings.redis_url or ""))

    async def publish(store: Store, *names: str) -> list[int]:
        """Events named ``names`` committed for ``store`` and published by the relay; returns their seqs."""
        async with sessions() as session, session.begin():
            bind_store(session, store.id)
            for name in names:
                emit(session, "test.event", aggregate_type="test", aggregate_id=name)
        await relay.drain()
        async with sessions() as session:
            bind_store(session, store.id)
            return [e.seq for e in await events_after(session, store.id, 0)][-len(names) :]

    return publish


async def _next(stream: Stream) -> Frame:
    return Frame.parse(await asyncio.wait_for(anext(stream), timeout=5))


def _stream(sessions: Sessions, hub: live.Hub, store: Store, after: int, view: str = "test") -> Stream:
    return hub.stream(sessions, store.id, after, view, _as_is)


@pytest.fixture
async def hub(channels: ChannelsPlugin) -> AsyncIterator[live.Hub]:
    hub = live.Hub(channels)
    yield hub
    await hub.close()


async def test_a_stream_replays_what_was_missed_then_goes_live_with_only_its_stores_events(
    world: World, sessions: Sessions, hub: live.Hub, publish: Publish
) -> None:
    mine, theirs = await world.store(), await world.store()
    seqs = await publish(mine, "a1", "a2", "a3")
    await publish(theirs, "b1")

    stream = _stream(sessions, hub, mine, after=seqs[0])  # the page was rendered after a1
    assert (await _next(stream)).comment == "connected"
    assert [(await _next(stream)).data for _ in range(2)] == ["test.event a2", "test.event a3"]

    await publish(theirs, "b2")  # published first: had it reached this stream, it would come next
    (a4,) = await publish(mine, "a4")
    live_one = await _next(stream)
    assert (live_one.data, live_one.id) == ("test.event a4", str(a4))
    await stream.aclose()

    resumed = _stream(sessions, hub, mine, after=int(live.resume_point(str(seqs[1]), 0)))  # Last-Event-ID: a2
    assert (await _next(resumed)).comment == "connected"
    assert [(await _next(resumed)).data for _ in range(2)] == ["test.event a3", "test.event a4"]
    await resumed.aclose()


async def test_a_long_absence_is_replayed_page_by_page_without_a_gap(
    world: World, sessions: Sessions, hub: live.Hub, publish: Publish, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "REPLAY_PAGE", 2)
    store = await world.store()
    names = [f"e{n}" for n in range(5)]
    await publish(store, *names)
    stream = _stream(sessions, hub, store, after=0)
    await _next(stream)
    assert [(await _next(stream)).data for _ in names] == [f"test.event {n}" for n in names]
    await stream.aclose()


async def test_screens_of_one_view_get_one_rendering_and_other_views_their_own(
    world: World, sessions: Sessions, hub: live.Hub, publish: Publish
) -> None:
    store = await world.store()
    made: list[tuple[str, int]] = []

    def maker(view: str) -> live.MessageFor:
        async def message_for(event: PublishedEvent) -> bytes:
            made.append((view, event.seq))
            return await _as_is(event)

        return message_for

    screens = [hub.stream(sessions, store.id, 0, "board", maker("board")) for _ in range(20)]
    screens.append(hub.stream(sessions, store.id, 0, "order:1", maker("order:1")))
    for screen in screens:
        assert Frame.parse(await asyncio.wait_for(anext(screen), 5)).comment == "connected"
    (seq,) = await publish(store, "x1")
    frames = [Frame.parse(await asyncio.wait_for(anext(screen), 5)) for screen in screens]
    assert {(f.data, f.id) for f in frames} == {("test.event x1", str(seq))}
    assert sorted(made) == [("board", seq), ("order:1", seq)]  # once per view, not once per screen
    for screen in screens:
        await screen.aclose()


async def test_a_screen_that_falls_behind_is_closed_and_resumes_where_it_was(
    world: World, sessions: Sessions, hub: live.Hub, publish: Publish, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "SCREEN_BACKLOG", 2)
    store = await world.store()
    stream = _stream(sessions, hub, store, after=0)
    assert (await _next(stream)).comment == "connected"
    seqs = await publish(store, "s1")
    first = await _next(stream)
    assert first.id == str(seqs[0])
    await publish(store, "s2", "s3", "s4")  # more than its backlog while it reads nothing
    with pytest.raises(StopAsyncIteration):  # closed: the browser reconnects with Last-Event-ID
        while True:
            await _next(stream)
    resumed = _stream(sessions, hub, store, after=live.resume_point(first.id, 0))
    await _next(resumed)
    assert [(await _next(resumed)).data for _ in range(3)] == [f"test.event s{n}" for n in (2, 3, 4)]
    await resumed.aclose()


async def _until_a_reader_waits_for_the_relay(sessions: Sessions) -> None:
    """Until some session waits for the relay's lock (for at most 5 s: a reader that does not wait has
    read past the batch by then)."""
    async with sessions() as session:
        system_scope(session)
        for _ in range(500):
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            )
            if waiting:
                return
            await asyncio.sleep(0.01)  # polling a condition, not timing anything


async def test_an_event_published_before_the_screen_joined_but_committed_after_is_not_lost(
    world: World, sessions: Sessions, hub: live.Hub
) -> None:
    store = await world.store()
    async with sessions() as relay, relay.begin():  # a relay batch: published, not yet committed
        system_scope(relay)
        await relay.execute(select(func.pg_advisory_xact_lock(RELAY_LOCK_KEY)))
        event = emit(relay, "test.event", aggregate_type="test", aggregate_id="late", store_id=store.id)
        event.seq = await relay.scalar(text("SELECT nextval('outbox_publish_seq')"))
        event.published_at = datetime.now(UTC)
        await relay.flush()
        stream = _stream(sessions, hub, store, after=0)
        assert (await _next(stream)).comment == "connected"  # joined the feed after the publish
        replay = asyncio.ensure_future(_next(stream))  # reading what it missed: waits for the commit
        await _until_a_reader_waits_for_the_relay(sessions)
    frame = await replay  # had it read past the uncommitted batch, the screen would never get the event
    assert (frame.data, frame.id) == ("test.event late", str(event.seq))
    await stream.aclose()


def test_resume_point_prefers_the_browsers_last_event_id() -> None:
    assert live.resume_point("41", 7) == 41
    assert live.resume_point(None, 7) == 7
    assert live.resume_point("not-a-number", 7) == 7


async def test_many_screens_share_one_rendering_of_an_event() -> None:
    rendered = live.Rendered(size=4)
    calls: list[int] = []

    async def render(event: PublishedEvent) -> bytes:
        calls.append(event.seq)
        await asyncio.sleep(0)  # let the other screens arrive while this one renders
        return b"card"

    event = PublishedEvent(1, 10, str(uuid.uuid4()), "order.placed", "order", "x", {}, None)
    messages = await asyncio.gather(*(rendered.get("board", event, render) for _ in range(50)))
    assert calls == [10] and set(messages) == {b"card"}
    assert await rendered.get("board", event, render) == b"card" and calls == [10]  # a late screen too
    await rendered.get("order-status", event, render)  # another kind of screen renders its own
    assert calls == [10, 10]


async def test_a_failed_rendering_is_tried_again_by_the_next_screen() -> None:
    rendered = live.Rendered()
    attempts: list[int] = []

    async def flaky(event: PublishedEvent) -> bytes:
        attempts.append(event.seq)
        if len(attempts) == 1:
            raise RuntimeError("database went away")
        return b"card"

    event = PublishedEvent(1, 11, str(uuid.uuid4()), "order.placed", "order", "x", {}, None)
    with pytest.raises(RuntimeError):
        await rendered.get("board", event, flaky)
    assert await rendered.get("board", event, flaky) == b"card"


async def test_board_cards_and_the_shoppers_status_show_the_order_as_it_is_now(
    app: Litestar, world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    order = await place_order(sessions, shop, redis, settings)
    staff = await world.staff(shop.store)
    async with sessions() as session, session.begin():
        await OrderService(session, shop.store.id).change_status(
            order.id, Axis.ORDER, "accepted", actor=Actor(staff.role, "Ann", "staff")
        )
    event = PublishedEvent(1, 99, str(shop.store.id), "order.status_changed", "order", str(order.id), {}, None)
    engine = app.template_engine
    assert engine is not None
    board = BoardCards(sessions, shop.store.id, engine.get_template("orders/_card.html").render, timedelta(minutes=10))
    encoded = await board.message(event)
    assert encoded is not None
    card = Frame.parse(encoded)
    assert (card.id, card.event) == ("99", "order")
    assert '"status": "accepted"' in card.data and f"#{order.number}" in card.data

    mine = OrderStatusFragments(
        sessions, shop.store.id, order.id, engine.get_template("storefront/_order_status.html").render
    )
    other = PublishedEvent(2, 100, str(shop.store.id), "order.status_changed", "order", str(uuid.uuid4()), {}, None)
    assert mine.concerns(event) and not mine.concerns(other)
    encoded = await mine.message(event)
    assert encoded is not None
    fragment = Frame.parse(encoded)
    assert "accepted" in fragment.data and fragment.id == "99"
