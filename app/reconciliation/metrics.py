"""Reconciliation metrics for /metrics, read at scrape time (the poller and the runs happen in the workers; every app
copy reports the same figures):

- ``till_reconciliation_poller_resolutions_total{outcome}``: payments the poller looked at, by outcome (``synced`` and
  ``resumed`` resolved one; Redis hash written by the poller).
- ``till_reconciliation_open_drifts{kind}``: drifts not yet cleared or resolved, every store.
- ``till_reconciliation_last_success_age_seconds{store,provider}``: since the store's last successful run finished
  (alert when over ~26 h: the nightly run did not happen or failed).
- ``till_reconciliation_last_run_failed{store,provider}``: 1 when the store's latest run failed.
- ``till_provider_calls_buffered``: provider call audit entries waiting for ``flush_provider_calls``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import structlog
from litestar.datastructures import State
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

from app.core.health import SCRAPE_HOOKS
from app.reconciliation.poller import COUNTER_KEY
from app.reconciliation.provider_calls import BUFFER_KEY

log = structlog.get_logger(__name__)

# Across stores on purpose (a metrics scrape is the platform's view): store ids and counts only.
_DRIFTS = "SELECT kind, count(*) FROM reconciliation_drifts WHERE status = 'open' GROUP BY kind"
_LAST = """
SELECT s.slug, r.provider,
       max(r.finished_at) FILTER (WHERE r.status = 'succeeded') AS succeeded_at,
       (array_agg(r.status ORDER BY r.created_at DESC))[1] AS latest
FROM reconciliation_runs AS r JOIN stores AS s ON s.id = r.store_id
GROUP BY s.slug, r.provider
"""


class _Snapshot:
    resolutions: dict[str, int]
    drifts: dict[str, int]
    runs: list[tuple[str, str, datetime | None, str]]
    buffered: int

    def __init__(self) -> None:
        self.resolutions, self.drifts, self.runs, self.buffered = {}, {}, [], 0


SNAPSHOT = _Snapshot()


async def refresh(state: State) -> None:
    raw = await state.redis.hgetall(COUNTER_KEY)
    SNAPSHOT.resolutions = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
    SNAPSHOT.buffered = int(await state.redis.llen(BUFFER_KEY))
    async with state.engine.connect() as conn:
        SNAPSHOT.drifts = {str(k): int(n) for k, n in (await conn.execute(text(_DRIFTS))).tuples()}
        SNAPSHOT.runs = [(str(a), str(b), c, str(d)) for a, b, c, d in (await conn.execute(text(_LAST))).tuples()]


class ReconciliationCollector(Collector):
    def collect(self) -> Iterator[Any]:
        resolutions = CounterMetricFamily(
            "till_reconciliation_poller_resolutions",
            "Payments the status poller looked at, by outcome",
            labels=["outcome"],
        )
        for outcome, n in sorted(SNAPSHOT.resolutions.items()):
            resolutions.add_metric([outcome], n)
        yield resolutions
        drifts = GaugeMetricFamily(
            "till_reconciliation_open_drifts", "Open reconciliation drifts by kind", labels=["kind"]
        )
        for kind, n in sorted(SNAPSHOT.drifts.items()):
            drifts.add_metric([kind], n)
        yield drifts
        age = GaugeMetricFamily(
            "till_reconciliation_last_success_age_seconds",
            "Seconds since the store's last successful reconciliation run finished",
            labels=["store", "provider"],
        )
        failed = GaugeMetricFamily(
            "till_reconciliation_last_run_failed", "1 when the store's latest run failed", labels=["store", "provider"]
        )
        now = datetime.now(UTC)
        for store, provider, succeeded_at, latest in SNAPSHOT.runs:
            if succeeded_at is not None:
                age.add_metric([store, provider], (now - succeeded_at).total_seconds())
            failed.add_metric([store, provider], 1.0 if latest == "failed" else 0.0)
        yield age
        yield failed
        buffered = GaugeMetricFamily("till_provider_calls_buffered", "Provider call audit entries waiting to be stored")
        buffered.add_metric([], SNAPSHOT.buffered)
        yield buffered


_registered = False


def install() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(ReconciliationCollector())
        _registered = True


async def _scrape_hook(state: State) -> None:
    install()
    try:
        await refresh(state)
    except Exception as exc:  # the other metrics still answer; these keep their last figures
        log.warning("reconciliation.metrics_unavailable", error=type(exc).__name__)


SCRAPE_HOOKS.append(_scrape_hook)
