"""Invariant 4: events publish after commit, never after rollback, in order, with per-store replay."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from redis.asyncio import Redis
from saq import Queue
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.outbox import OutboxEvent, OutboxRelay, PublishedEvent, emit, events_after, store_channel
from app.core.tenancy import bind_store, system_scope
from tests.integration.conftest import World


@pytest.fixture
async def relay_parts(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], redis: Redis
) -> AsyncIterator[tuple[OutboxRelay, Queue]]:
    queue = Queue.from_url(settings.redis_url or "", name=f"test-{uuid.uuid4().hex[:6]}")
    await queue.connect()
    consumers = {"store.updated": ["notify_loyalty"]}
    relay = OutboxRelay(
        sessions, RedisChannelsPubSubBackend(redis=redis), queue, consumers=lambda t: consumers.get(t, [])
    )
    yield relay, queue
    await queue.disconnect()


class Subscriber:
    def __init__(self, redis: Redis, channel: str) -> None:
        self.pubsub = redis.pubsub()
        self.channel = channel

    async def __aenter__(self) -> Subscriber:
        await self.pubsub.subscribe(self.channel)
        await self.pubsub.get_message(timeout=1.0)  # the subscribe confirmation
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pubsub.unsubscribe(self.channel)
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]

    async def next(self, wait_s: float = 2.0) -> PublishedEvent | None:
        message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=wait_s)
        return PublishedEvent.from_json(message["data"]) if message else None


async def test_event_is_published_after_commit_and_not_before(
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    relay_parts: tuple[OutboxRelay, Queue],
) -> None:
    relay, _ = relay_parts
    store = await world.store()
    async with Subscriber(redis, store_channel(store.id)) as sub:
        async with sessions() as session, session.begin():
            bind_store(session, store.id)
            emit(
                session,
                "store.updated",
                aggregate_type="store",
                aggregate_id=store.id,
                payload={"name": "New"},
            )
            await session.flush()
            # Flushed but not committed: the relay cannot see it.
            assert await relay.drain() == 0
            assert await sub.next(wait_s=0.2) is None
        assert await relay.drain() == 1
        event = await sub.next()
    assert event is not None
    assert (event.type, event.payload, event.store_id) == ("store.updated", {"name": "New"}, str(store.id))
    assert await relay.drain() == 0  # published once


async def test_rolled_back_event_is_never_published(
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    relay_parts: tuple[OutboxRelay, Queue],
) -> None:
    relay, _ = relay_parts
    store = await world.store()
    async with Subscriber(redis, store_channel(store.id)) as sub:
        with pytest.raises(RuntimeError):
            async with sessions() as session, session.begin():
                bind_store(session, store.id)
                emit(session, "store.updated", aggregate_type="store", aggregate_id=store.id)
                await session.flush()
                raise RuntimeError("the state change failed")
        assert await relay.drain() == 0
        assert await sub.next(wait_s=0.3) is None
    async with sessions() as session:
        system_scope(session)
        assert await session.scalar(select(func.count()).select_from(OutboxEvent)) == 0


async def test_seq_is_monotonic_per_store_and_replay_returns_only_that_store(
    world: World, sessions: async_sessionmaker[AsyncSession], relay_parts: tuple[OutboxRelay, Queue]
) -> None:
    relay, _ = relay_parts
    store_a, store_b = await world.store("seq-a"), await world.store("seq-b")
    for i in range(6):
        store = store_a if i % 2 == 0 else store_b
        async with sessions() as session, session.begin():
            bind_store(session, store.id)
            emit(session, "store.updated", aggregate_type="store", aggregate_id=store.id, payload={"i": i})
    assert await relay.drain() == 6
    async with sessions() as session:
        bind_store(session, store_a.id)
        replay = await events_after(session, store_a.id, 0)
        assert [e.payload["i"] for e in replay] == [0, 2, 4]
        seqs = [e.seq for e in replay]
        assert seqs == sorted(seqs) and len(set(seqs)) == 3
        assert [e.payload["i"] for e in await events_after(session, store_a.id, seqs[0])] == [2, 4]


async def test_relay_enqueues_each_consumer_once_per_event(
    world: World, sessions: async_sessionmaker[AsyncSession], relay_parts: tuple[OutboxRelay, Queue]
) -> None:
    relay, queue = relay_parts
    store = await world.store()
    async with sessions() as session, session.begin():
        bind_store(session, store.id)
        event = emit(session, "store.updated", aggregate_type="store", aggregate_id=store.id)
        emit(session, "api_token.issued", aggregate_type="api_token", aggregate_id="t1")
    assert await relay.drain() == 2
    job = await queue.job(f"notify_loyalty:{event.id}")
    assert job is not None and job.kwargs is not None
    assert job.kwargs["event"]["type"] == "store.updated"
    assert await queue.count("queued") == 1


async def test_relay_wakes_on_commit_through_notify(
    settings: Settings,
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    relay_parts: tuple[OutboxRelay, Queue],
) -> None:
    relay, _ = relay_parts
    store = await world.store()
    listen_dsn = (settings.database_url or "").replace("postgresql+asyncpg://", "postgresql://")
    async with Subscriber(redis, store_channel(store.id)) as sub:
        runner = asyncio.create_task(relay.run(listen_dsn, poll_interval=60))
        try:
            await asyncio.sleep(0)  # let it LISTEN; the long poll interval means only NOTIFY can wake it
            await sub.next(wait_s=0.3)
            async with sessions() as session, session.begin():
                bind_store(session, store.id)
                emit(
                    session,
                    "store.updated",
                    aggregate_type="store",
                    aggregate_id=store.id,
                    payload={"live": True},
                )
            event = await sub.next(wait_s=5)
        finally:
            runner.cancel()
    assert event is not None and event.payload == {"live": True}
