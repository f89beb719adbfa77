"""The integrity check's gauges at the app's /metrics: the worker runs the check (it has no /metrics of its own), so
before each scrape the app reads each store's last recorded run (one statement) into the same gauges."""

from __future__ import annotations

import structlog
from litestar.datastructures import State
from sqlalchemy import text

from app.core.health import SCRAPE_HOOKS
from app.stored_value.loyalty.maintenance import DRIFT_POINTS, DRIFTED_ACCOUNTS

log = structlog.get_logger(__name__)

_LAST_RUNS = text(
    "SELECT DISTINCT ON (store_id) store_id, drift_points, drifted_accounts FROM loyalty_integrity_runs "
    "ORDER BY store_id, checked_at DESC"
)


async def refresh(state: State) -> None:
    async with state.engine.connect() as conn:
        rows = (await conn.execute(_LAST_RUNS)).all()
    for store_id, points, accounts in rows:
        DRIFT_POINTS.labels(str(store_id)).set(points)
        DRIFTED_ACCOUNTS.labels(str(store_id)).set(accounts)


async def _scrape_hook(state: State) -> None:
    try:
        await refresh(state)
    except Exception as exc:  # the other metrics still answer; these keep their last figures
        log.warning("loyalty.metrics_unavailable", error=type(exc).__name__)


if _scrape_hook not in SCRAPE_HOOKS:
    SCRAPE_HOOKS.append(_scrape_hook)

__all__ = ["refresh"]
