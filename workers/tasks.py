"""Task functions: tiny, and they call app services, never SQL of their own."""

from __future__ import annotations

from typing import Any

import structlog

from app.core.idempotency import IdempotencyStore

log = structlog.get_logger(__name__)


async def sweep_idempotency_keys(ctx: dict[str, Any]) -> int:
    store: IdempotencyStore = ctx["idempotency"]
    removed = await store.sweep_expired()
    log.info("idempotency.swept", removed=removed)
    return removed
