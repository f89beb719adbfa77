"""Builds the SAQ worker. Startup puts engine, sessions and Redis into ``ctx`` and starts the two loops beside the
jobs: the outbox relay and the webhook processor."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from redis.asyncio import Redis
from saq import CronJob, Queue, Worker
from saq.types import Function

from app.config import Settings
from app.core.db import create_engine, dispose, session_maker
from app.core.idempotency import IdempotencyStore
from app.core.logging import bind_correlation_id
from app.core.outbox import OutboxRelay
from app.main import QUEUE_NAME
from app.media import jobs as media_jobs
from app.receipts import jobs as receipt_jobs
from app.reconciliation import jobs as reconciliation_jobs
from app.stored_value import jobs as stored_value_jobs
from app.stored_value.loyalty import jobs as loyalty_jobs
from app.storefront import cache as storefront_cache
from app.storefront import jobs as storefront_jobs
from app.stores import token_cache
from app.webhooks.processing import Deps, WebhookProcessor
from workers import tasks
from workers.context import TillContext

log = structlog.get_logger(__name__)

FUNCTIONS: list[Function[TillContext]] = [
    tasks.sweep_idempotency_keys,
    tasks.sandbox_settle,
    tasks.sandbox_notify,
    tasks.recover_checkouts,
    tasks.settle_payment_operations,
    tasks.resume_pos_refunds,
    tasks.capture_on_fulfilment,
    tasks.transfer_to_store,
    tasks.return_promotion_uses,
    tasks.deliver_email,
    tasks.redeliver_stalled_email,
    receipt_jobs.create_receipts,
    receipt_jobs.deliver_receipt,
    receipt_jobs.sweep_receipts,
    loyalty_jobs.loyalty_points,
    loyalty_jobs.loyalty_nightly,
    loyalty_jobs.loyalty_integrity,
    stored_value_jobs.return_stored_value,
    stored_value_jobs.activate_gift_cards,
    storefront_jobs.storefront_catalog_changed,
    media_jobs.process_media,
    media_jobs.process_media_asset,
    media_jobs.resume_media,
    media_jobs.delete_media_files,
    reconciliation_jobs.poll_payment_statuses,
    reconciliation_jobs.reconcile_yesterday,
    reconciliation_jobs.flush_provider_calls,
    reconciliation_jobs.sweep_provider_calls,
]
CRON_JOBS = [
    CronJob(tasks.sweep_idempotency_keys, cron="*/10 * * * *", unique=True, timeout=60),
    CronJob(tasks.recover_checkouts, cron="* * * * * */30", unique=True, timeout=60),  # every 30 s
    CronJob(tasks.settle_payment_operations, cron="* * * * * */30", unique=True, timeout=60),
    CronJob(tasks.resume_pos_refunds, cron="* * * * *", unique=True, timeout=60),
    CronJob(tasks.redeliver_stalled_email, cron="*/5 * * * *", unique=True, timeout=120),
    CronJob(receipt_jobs.sweep_receipts, cron="* * * * *", unique=True, timeout=300),
    CronJob(loyalty_jobs.loyalty_nightly, cron="15 3 * * *", unique=True, timeout=1800),  # 03:15 UTC
    CronJob(loyalty_jobs.loyalty_integrity, cron="45 3 * * *", unique=True, timeout=1800),
    CronJob(media_jobs.resume_media, cron="* * * * * */30", unique=True, timeout=60),  # every 30 s
    CronJob(reconciliation_jobs.poll_payment_statuses, cron="* * * * *", unique=True, timeout=120),
    CronJob(reconciliation_jobs.reconcile_yesterday, cron="15 2 * * *", unique=True, timeout=3600),  # 02:15 UTC
    CronJob(reconciliation_jobs.flush_provider_calls, cron="* * * * * */10", unique=True, timeout=60),  # every 10 s
    CronJob(reconciliation_jobs.sweep_provider_calls, cron="7 * * * *", unique=True, timeout=600),
]


class TillWorker(Worker[TillContext]):
    """SAQ's worker, stopping once its running jobs are done. SAQ's upkeep loops sleep up to a minute between
    rounds and an idle job slot waits on Redis with no time limit, so its stop always waited out the whole
    grace period (5 s on every stop of `till up`, every test worker and every bench). Here the upkeep loops are
    cancelled at once and idle slots give up their wait within ``dequeue_timeout``; running jobs keep the
    grace period."""

    _upkeep_tasks: list[asyncio.Task[None]]

    async def upkeep(self) -> list[asyncio.Task[None]]:
        self._upkeep_tasks = await super().upkeep()
        return self._upkeep_tasks

    async def stop(self) -> None:
        self.event.set()
        for task in getattr(self, "_upkeep_tasks", []):
            task.cancel()
        await super().stop()


def build_worker(
    settings: Settings, *, concurrency: int = 10, run_relay: bool = True, run_webhooks: bool = True
) -> Worker[TillContext]:
    assert settings.database_url and settings.redis_url
    queue = Queue.from_url(settings.redis_url, name=QUEUE_NAME)
    database_url = settings.database_url

    async def startup(ctx: TillContext) -> None:
        engine = create_engine(database_url, pool_size=5)
        sessions = session_maker(engine)
        redis = Redis.from_url(settings.redis_url or "")
        ctx["engine"], ctx["sessions"], ctx["redis"] = engine, sessions, redis
        storefront_cache.register(engine, redis)  # its catalog commits bump the shop pages' version too
        token_cache.register(redis)  # its token and store commits bump the API access version too
        ctx["idempotency"] = IdempotencyStore(engine)
        ctx["settings"] = settings
        listen_dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        loops: list[asyncio.Task[None]] = []
        if run_relay:
            relay = OutboxRelay(sessions, RedisChannelsPubSubBackend(redis=redis), queue)
            loops.append(asyncio.create_task(relay.run(listen_dsn)))
        if run_webhooks:
            processor = WebhookProcessor(Deps(engine=engine, sessions=sessions, redis=redis, settings=settings))
            loops.append(asyncio.create_task(processor.run(listen_dsn)))
        ctx["loops"] = loops
        log.info("worker.started", queue=QUEUE_NAME, relay=run_relay, webhooks=run_webhooks)

    async def shutdown(ctx: TillContext) -> None:
        for task in ctx.get("loops", []):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        storefront_cache.unregister(ctx["engine"], ctx["redis"])
        token_cache.unregister(ctx["redis"])
        await ctx["redis"].aclose()
        await dispose(ctx["engine"])

    async def before_process(ctx: TillContext) -> None:
        job = ctx.get("job")
        correlation_id = job.meta.get("correlation_id") if job is not None else None
        bind_correlation_id(correlation_id)
        if job is not None:
            structlog.contextvars.bind_contextvars(job=job.function, job_key=job.key)

    return TillWorker(
        queue,
        functions=FUNCTIONS,
        cron_jobs=CRON_JOBS,
        concurrency=concurrency,
        startup=startup,
        shutdown=shutdown,
        before_process=before_process,
        shutdown_grace_period_s=5,  # running jobs get 5 s to finish
        dequeue_timeout=1,  # an idle slot notices a stop within a second
    )
