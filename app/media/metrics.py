"""Media metrics for /metrics: job duration (recorded by the workers in Redis, so every app copy reports the
same), assets waiting per status, and bytes stored per store (read from the database at scrape time)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import structlog
from litestar.datastructures import State
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.health import SCRAPE_HOOKS
from app.core.tenancy import system_scope
from app.media.models import MediaAsset

log = structlog.get_logger(__name__)

JOBS_KEY = "till:media:jobs"
BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


async def record_job(redis: Redis, kind: str, outcome: str, seconds: float) -> None:
    pipe = redis.pipeline(transaction=False)
    pipe.hincrby(JOBS_KEY, f"{kind}|{outcome}|count", 1)
    pipe.hincrbyfloat(JOBS_KEY, f"{kind}|{outcome}|sum", seconds)
    for bound in BUCKETS:
        if seconds <= bound:
            pipe.hincrby(JOBS_KEY, f"{kind}|{outcome}|le|{bound}", 1)
    await pipe.execute()


class _Snapshot:
    jobs: dict[str, float]
    waiting: dict[str, int]
    stored: dict[str, tuple[int, int]]

    def __init__(self) -> None:
        self.jobs, self.waiting, self.stored = {}, {}, {}


_snapshot = _Snapshot()


async def refresh(sessions: async_sessionmaker[AsyncSession], redis: Redis) -> None:
    """Read the current figures (called before each scrape)."""
    raw = await redis.hgetall(JOBS_KEY)  # type: ignore[misc]
    jobs = {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}
    async with sessions() as session:
        system_scope(session)
        waiting = {
            str(status): int(n)
            for status, n in await session.execute(
                select(MediaAsset.status, func.count())
                .where(MediaAsset.status.in_(("queued", "processing")))
                .group_by(MediaAsset.status)
            )
        }
        stored = {
            str(store): (int(b or 0), int(n))
            for store, b, n in await session.execute(
                select(MediaAsset.store_id, func.sum(MediaAsset.stored_bytes), func.count())
                .where(MediaAsset.status == "ready")
                .group_by(MediaAsset.store_id)
            )
        }
    _snapshot.jobs, _snapshot.stored = jobs, stored
    _snapshot.waiting = {s: int(waiting.get(s, 0)) for s in ("queued", "processing")}


class MediaCollector(Collector):
    def collect(self) -> Iterator[Any]:
        duration = HistogramMetricFamily(
            "till_media_job_duration_seconds", "Media processing job duration", labels=["kind", "outcome"]
        )
        series = sorted({tuple(k.split("|")[:2]) for k in _snapshot.jobs})
        for kind, outcome in series:
            base = f"{kind}|{outcome}"
            buckets = [(str(b), _snapshot.jobs.get(f"{base}|le|{b}", 0.0)) for b in BUCKETS]
            buckets.append(("+Inf", _snapshot.jobs.get(f"{base}|count", 0.0)))
            duration.add_metric([kind, outcome], buckets, _snapshot.jobs.get(f"{base}|sum", 0.0))
        yield duration
        depth = GaugeMetricFamily("till_media_queue_depth", "Media assets waiting for a worker", labels=["status"])
        for status, n in sorted(_snapshot.waiting.items()):
            depth.add_metric([status], n)
        yield depth
        stored = GaugeMetricFamily("till_media_stored_bytes", "Bytes of media stored per store", labels=["store_id"])
        files = GaugeMetricFamily("till_media_stored_files", "Ready media files per store", labels=["store_id"])
        for store, (b, n) in sorted(_snapshot.stored.items()):
            stored.add_metric([store], b)
            files.add_metric([store], n)
        yield stored
        yield files


_registered = False


def install() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(MediaCollector())
        _registered = True


async def _scrape_hook(state: State) -> None:
    install()
    try:
        await refresh(state.sessions, state.redis)
    except Exception as exc:  # the other metrics still answer; these keep their last figures
        log.warning("media.metrics_unavailable", error=type(exc).__name__)


SCRAPE_HOOKS.append(_scrape_hook)
