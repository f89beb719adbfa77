"""Loyalty's SAQ tasks (registered in ``workers/settings.py``): tiny, they call the loyalty services.

- ``loyalty_points``: the outbox consumer of ``order.placed`` and ``order.payment_changed`` — earn on a paid order,
  take back on a refund (``accrual.LoyaltyAccruals``; exactly once by its consumer receipt).
- ``loyalty_nightly``: tiers recomputed and expired points taken, for every store with a program.
- ``loyalty_integrity``: every points balance recomputed from orders and ledger; drift logged, recorded and counted.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import select

from app.core.outbox import register_consumer
from app.core.tenancy import system_scope
from app.stored_value.loyalty.accrual import CONSUMER, LoyaltyAccruals
from app.stored_value.loyalty.maintenance import LoyaltyMaintenance
from app.stored_value.loyalty.models import LoyaltyProgram
from app.webhooks.receipts import exactly_once

log = structlog.get_logger(__name__)

EVENTS = ("order.placed", "order.payment_changed", "stored_value.refunded")


@exactly_once
async def loyalty_points(ctx: Any, *, event: dict[str, Any]) -> str:
    """order.placed / order.payment_changed / stored_value.refunded: points for a paid order, taken back in
    proportion to the money a refund gives back."""
    async with ctx["sessions"]() as session, session.begin():
        outcome = await LoyaltyAccruals(session, uuid.UUID(event["store_id"])).handle(event)
    return str(outcome)


async def _program_stores(ctx: Any) -> list[uuid.UUID]:
    async with ctx["sessions"]() as session:
        system_scope(session)
        return list(await session.scalars(select(LoyaltyProgram.store_id)))


async def loyalty_nightly(ctx: Any) -> dict[str, int]:
    """Every store's tiers recomputed, then its expired points taken (each store in its own transaction)."""
    changed = expired = 0
    for store_id in await _program_stores(ctx):
        async with ctx["sessions"]() as session, session.begin():
            maintenance = LoyaltyMaintenance(session, store_id)
            changed += await maintenance.recompute_tiers()
            expired += await maintenance.expire_points()
    log.info("loyalty.nightly", tiers_changed=changed, points_expired=expired)
    return {"tiers_changed": changed, "points_expired": expired}


async def loyalty_integrity(ctx: Any) -> dict[str, int]:
    """Every store's points balances against its orders and ledger; the drift found (expected: 0)."""
    drifted = points = 0
    for store_id in await _program_stores(ctx):
        async with ctx["sessions"]() as session, session.begin():
            report = await LoyaltyMaintenance(session, store_id).check_integrity()
        drifted += len(report.drifts)
        points += report.drift_points
    log.info("loyalty.integrity", drifted_accounts=drifted, drift_points=points)
    return {"drifted_accounts": drifted, "drift_points": points}


for _event in EVENTS:
    register_consumer(_event, CONSUMER)

__all__ = ["loyalty_integrity", "loyalty_nightly", "loyalty_points"]
