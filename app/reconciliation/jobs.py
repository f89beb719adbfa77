"""What the worker's reconciliation jobs do (workers/tasks.py wraps these; no SQL of their own there).

- ``poll_payment_statuses`` (every minute): rebuild the kill switches' Redis mirror from the database, then the
  status poller (app/reconciliation/poller.py), unless ``webhooks_paused`` is engaged globally (the poller applies
  provider state exactly as webhook processing does, so it pauses with it; per store, see :func:`poll`).
- ``reconcile_stores`` (nightly, 02:15 UTC): yesterday for every store that took payments with a provider.
- ``reconcile_store`` (on demand, from the report page and the API): one store, any window.
- ``flush_provider_calls`` (every 10 s): the provider call audit's Redis buffer into ``provider_calls``.
- ``sweep_provider_calls`` (hourly): provider call audit rows past their retention.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core import kill_switches
from app.core.tenancy import system_scope
from app.payments.provider import PaymentProvider
from app.payments.registry import provider_of
from app.reconciliation import provider_calls, services
from app.reconciliation.models import ReconciliationRun
from app.reconciliation.poller import Resolution, poll_stuck
from app.reconciliation.sources import LedgerSource, SandboxLedger
from app.stores.models import Store
from workers.context import TillContext

log = structlog.get_logger(__name__)


def source_for(store: Store, provider: PaymentProvider, redis: Redis) -> LedgerSource | None:
    """The ledger to reconcile a store against (None: its provider has none Till can read)."""
    if provider.name == "sandbox":
        return SandboxLedger(redis, store.id)
    if provider.name == "stripe":
        from app.reconciliation.stripe_source import StripeLedger

        return StripeLedger.of(provider)
    return None


async def poll(sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings) -> list[Resolution]:
    async with sessions() as session:
        await kill_switches.refresh_mirror(session, redis)
    if await kill_switches.engaged_fast(redis, kill_switches.Switch.WEBHOOKS_PAUSED, None):
        log.warning("poller.paused", reason="webhooks_paused is engaged globally")
        return []

    async def provider_for_store(store: Store) -> PaymentProvider | None:
        if await kill_switches.engaged_fast(redis, kill_switches.Switch.WEBHOOKS_PAUSED, store.id):
            return None  # paused with the store's webhook processing
        return await provider_of(sessions, store, redis, settings)

    return await poll_stuck(sessions, redis, provider_for_store)


async def reconcile_store(
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
    store_id: uuid.UUID,
    *,
    window: services.DayWindow | None = None,
    trigger: str = "nightly",
) -> ReconciliationRun | None:
    async with sessions() as session:
        store = await session.get(Store, store_id)
    if store is None:
        return None
    provider = await provider_of(sessions, store, redis, settings)
    source = source_for(store, provider, redis)
    if source is None:
        log.info("reconciliation.skipped", store_id=str(store_id), provider=provider.name)
        return None
    return await services.reconcile(sessions, store_id, source, window=window, trigger=trigger)


async def reconcile_stores(
    sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings, *, now: datetime | None = None
) -> int:
    """Yesterday (UTC) for every store; one store's failure is recorded on its run and does not stop the rest."""
    async with sessions() as session:
        system_scope(session)
        store_ids = list(await session.scalars(select(Store.id).order_by(Store.created_at)))
    window = services.DayWindow.day_before(now)
    done = 0
    for store_id in store_ids:
        try:
            run = await reconcile_store(sessions, redis, settings, store_id, window=window)
        except Exception:  # the provider could not even be built (keys missing): logged, next store
            log.exception("reconciliation.store_failed", store_id=str(store_id))
            continue
        done += run is not None
    return done


# -- SAQ task functions (registered in workers/settings.py) ------------------------------------------------------


async def poll_payment_statuses(ctx: TillContext) -> int:
    """Every minute: payments stuck waiting for a webhook, asked about and recorded (source ``poller``)."""
    resolutions = await poll(ctx["sessions"], ctx["redis"], ctx["settings"])
    return sum(r.outcome in ("synced", "resumed") for r in resolutions)


async def reconcile_yesterday(ctx: TillContext) -> int:
    """Nightly (02:15 UTC): yesterday for every store. Returns how many stores were reconciled."""
    return await reconcile_stores(ctx["sessions"], ctx["redis"], ctx["settings"])


async def flush_provider_calls(ctx: TillContext) -> int:
    """Every 10 s: the provider call audit's buffered entries into ``provider_calls``."""
    return await provider_calls.flush(ctx["engine"], ctx["redis"])


async def sweep_provider_calls(ctx: TillContext) -> int:
    """Hourly: provider call audit rows past their retention."""
    async with ctx["sessions"]() as session, session.begin():
        system_scope(session)
        removed = await provider_calls.sweep(session)
    log.info("provider_calls.swept", removed=removed)
    return removed
