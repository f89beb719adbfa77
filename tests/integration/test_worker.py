"""A real SAQ worker: cron task function, correlation ids in jobs, and the outbox relay running beside it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
import structlog
from redis.asyncio import Redis
from saq import Queue, Worker
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.jobs import enqueue
from app.core.logging import bind_correlation_id
from app.core.outbox import PublishedEvent, emit, store_channel
from app.core.tenancy import bind_store
from tests.integration.conftest import World
from workers.context import TillContext
from workers.settings import build_worker


@pytest.fixture
async def running_worker(settings: Settings) -> AsyncIterator[Worker[TillContext]]:
    worker = build_worker(settings, concurrency=2)
    task = asyncio.create_task(worker.start())
    yield worker
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await worker.stop()


async def test_job_runs_with_the_callers_correlation_id(running_worker: Worker[TillContext]) -> None:
    queue: Queue = running_worker.queue
    bind_correlation_id("corr-77")
    capture = structlog.testing.LogCapture()
    previous = structlog.get_config()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, capture],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )
    try:
        job = await enqueue(queue, "sweep_idempotency_keys", retries=2)
        assert job is not None
        bind_correlation_id("someone-else")  # the job must carry its own id, not read ours
        await job.refresh(until_complete=10)
    finally:
        structlog.configure(**previous)
    logs = capture.entries
    assert job.status == "complete"
    assert job.result == 0
    swept = [entry for entry in logs if entry["event"] == "idempotency.swept"]
    assert job.meta["correlation_id"] == "corr-77"
    assert swept and swept[0]["removed"] == 0
    assert swept[0]["correlation_id"] == "corr-77"
    assert swept[0]["job"] == "sweep_idempotency_keys"


async def test_worker_relay_publishes_committed_events(
    running_worker: Worker[TillContext], world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    store = await world.store()
    pubsub = redis.pubsub()
    await pubsub.subscribe(store_channel(store.id))
    await pubsub.get_message(timeout=1.0)
    async with sessions() as session, session.begin():
        bind_store(session, store.id)
        emit(session, "store.updated", aggregate_type="store", aggregate_id=store.id, payload={"via": "worker"})
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    assert message is not None
    assert PublishedEvent.from_json(message["data"]).payload == {"via": "worker"}


async def test_an_idle_worker_stops_without_waiting_out_the_grace_period(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """SAQ waited its whole grace period on every stop (its upkeep loops and idle job slots never finished in
    time) and then cancelled them, saying so; the worker now stops as soon as nothing is running."""
    worker = build_worker(settings, concurrency=2, run_relay=False, run_webhooks=False)
    running = asyncio.create_task(worker.start())
    job = await enqueue(worker.queue, "sweep_idempotency_keys")
    assert job is not None
    await job.refresh(until_complete=10)
    assert job.status == "complete"
    with caplog.at_level(logging.WARNING, logger="saq"):
        await worker.stop()
        await running
    assert not [r.message for r in caplog.records if "grace period" in r.message]
