"""The status poller: payments stuck waiting for a webhook are asked about (``get_transaction``) and brought up to
date through the same idempotent path as a webhook's effect (``app.payments.sync.sync_intent``, which resumes a
checkout that waits for the payment, or records the ledger rows of the difference).

A SAQ cron job (``poll_payment_statuses``, every minute) runs :func:`poll_stuck`. It reads, in one statement
across stores (a worker acts for every store on purpose), the payments still ``pending`` or ``requires_action``
whose row has not changed for longer than :data:`STUCK_AFTER` (a webhook usually arrives within seconds; a
3-D Secure challenge gets the quote's 15 minutes), oldest first, at most :data:`BATCH_PER_GROUP` per store and
provider and :data:`MAX_PER_RUN` in all, so a provider outage cannot make one run endless. Each is synced with
``actor="poller"``: the ledger rows and the order's ``order.payment_changed`` event name the poller as their
source, and each resolution is in the store's audit trail (``payment.poller_resolved``).

Why a late webhook changes nothing afterwards: a webhook's effect is the same ``sync_intent``; it re-reads the
payment and records only the difference, which the poller has already recorded (and a checkout it resumed is
terminal, so the webhook finds no attempt waiting). Two pollers (two workers) are serialised by the intent's row
lock in ``sync_intent`` and by the checkout attempt's state; the cron job is also ``unique``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core import audit, pg
from app.payments.provider import PaymentError, PaymentProvider
from app.payments.sync import PaymentBusy, sync_intent
from app.stores.models import Store

log = structlog.get_logger(__name__)

POLLER = "poller"
STUCK_AFTER = {"pending": timedelta(minutes=2), "requires_action": timedelta(minutes=20)}
BATCH_PER_GROUP = 50
MAX_PER_RUN = 500
COUNTER_KEY = "till:reconciliation:poller"  # a Redis hash: outcome → count (read by /metrics)

_STUCK = """
SELECT p.store_id, p.provider, p.provider_ref, p.status
FROM (
    SELECT store_id, provider, provider_ref, status,
           row_number() OVER (PARTITION BY store_id, provider ORDER BY updated_at) AS n
    FROM payment_intents
    WHERE (status = 'pending' AND updated_at < now() - $1::interval)
       OR (status = 'requires_action' AND updated_at < now() - $2::interval)
) AS p
WHERE p.n <= $3
LIMIT $4
"""


@dataclass(frozen=True)
class Resolution:
    store_id: uuid.UUID
    provider: str
    provider_ref: str
    outcome: str  # synced | resumed | unchanged | busy | error
    detail: str


# The store's provider; None skips the store this round (its webhook processing is paused).
ProviderOf = Callable[[Store], Awaitable[PaymentProvider | None]]


async def stuck_payments(
    engine: AsyncEngine,
    *,
    pending_after: timedelta = STUCK_AFTER["pending"],
    action_after: timedelta = STUCK_AFTER["requires_action"],
    per_group: int = BATCH_PER_GROUP,
    limit: int = MAX_PER_RUN,
) -> list[tuple[uuid.UUID, str, str]]:
    """(store, provider, provider_ref) of the payments stuck longer than the thresholds, a bounded batch."""
    async with pg.connection(engine) as conn:
        rows = await conn.fetch(_STUCK, pending_after, action_after, per_group, limit)
    return [(row["store_id"], row["provider"], row["provider_ref"]) for row in rows]


async def poll_stuck(
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    provider_of: ProviderOf,
    *,
    pending_after: timedelta = STUCK_AFTER["pending"],
    action_after: timedelta = STUCK_AFTER["requires_action"],
    per_group: int = BATCH_PER_GROUP,
) -> list[Resolution]:
    """Ask the provider about every stuck payment of the batch and record what it says."""
    engine: AsyncEngine = sessions.kw["bind"]
    stuck = await stuck_payments(engine, pending_after=pending_after, action_after=action_after, per_group=per_group)
    stores: dict[uuid.UUID, Store | None] = {}
    providers: dict[uuid.UUID, PaymentProvider | None] = {}
    resolutions: list[Resolution] = []
    for store_id, provider_name, ref in stuck:
        if store_id not in stores:
            async with sessions() as session:
                stores[store_id] = await session.get(Store, store_id)
        store = stores[store_id]
        if store is None:
            continue
        try:
            if store_id not in providers:
                providers[store_id] = await provider_of(store)
            provider = providers[store_id]
            if provider is None:
                continue
            if provider.name != provider_name:
                resolutions.append(
                    Resolution(store_id, provider_name, ref, "error", f"the store now uses {provider.name}")
                )
                continue
            outcome = await sync_intent(sessions, store_id, provider, ref, actor=POLLER)
            state = outcome.state
            if state == "resumed" and outcome.detail.endswith(("awaiting_payment", "awaiting_action")):
                state = "unchanged"  # the checkout still waits: the provider has no answer yet
            resolution = Resolution(store_id, provider_name, ref, state, outcome.detail)
        except PaymentBusy as exc:
            resolution = Resolution(store_id, provider_name, ref, "busy", str(exc))
        except PaymentError as exc:
            resolution = Resolution(store_id, provider_name, ref, "error", f"{exc.code}: {exc.message}")
        except Exception as exc:  # one payment's trouble must not stop the batch
            log.exception("poller.failed", store_id=str(store_id), provider_ref=ref)
            resolution = Resolution(store_id, provider_name, ref, "error", f"{type(exc).__name__}: {exc}")
        resolutions.append(resolution)
        if resolution.outcome in ("synced", "resumed"):
            async with sessions() as session, session.begin():
                audit.record(
                    session,
                    None,
                    "payment.poller_resolved",
                    target_type="payment",
                    target_id=ref,
                    details={"outcome": resolution.outcome, "detail": resolution.detail[:300], "source": POLLER},
                    store_id=store_id,
                ).actor = POLLER
    if resolutions:
        async with redis.pipeline(transaction=False) as pipe:
            for r in resolutions:
                pipe.hincrby(COUNTER_KEY, r.outcome, 1)
            await pipe.execute()
    log.info(
        "poller.done",
        stuck=len(stuck),
        resolved=sum(r.outcome in ("synced", "resumed") for r in resolutions),
        errors=sum(r.outcome == "error" for r in resolutions),
    )
    return resolutions
