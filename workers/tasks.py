"""Task functions: tiny, and they call app services, never SQL of their own."""

from __future__ import annotations

import structlog

from workers.context import TillContext

log = structlog.get_logger(__name__)


async def sweep_idempotency_keys(ctx: TillContext) -> int:
    removed = await ctx["idempotency"].sweep_expired()
    log.info("idempotency.swept", removed=removed)
    return removed
