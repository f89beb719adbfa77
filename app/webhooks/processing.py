"""Processing stored webhook events (the worker's ``process_webhook_event`` job) and the sweeper that
re-enqueues events whose job was lost.

Idempotent and order-independent by construction: a payment event re-reads the payment from the provider
and records only the difference (app/payments/sync.py); an account event applies the account as the event
states it whole; a dispute event is applied by app/disputes, keyed by the dispute. Replaying, re-delivering
or reordering events therefore ends in the same state.

Each run claims the event (``processing``, attempts + 1, a lease in ``next_attempt_at``), handles it
without holding a transaction, then marks it ``processed`` (with a one-line outcome) or ``failed`` with
the error, and raises so SAQ retries it with backoff. The last attempt marks it ``dead`` instead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from redis.asyncio import Redis
from saq import Queue
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.core import pg
from app.core.tenancy import system_scope
from app.payments.connect import account_from_event, apply_account_update, store_for_account
from app.payments.models import PaymentIntent
from app.payments.provider import PaymentProvider, WebhookEvent
from app.payments.registry import provider_of, sandbox_webhook_secret
from app.payments.sandbox import SandboxProvider
from app.payments.sync import sync_intent
from app.stores.models import Store
from app.webhooks.intake import MAX_ATTEMPTS, PROCESS_TIMEOUT_S, enqueue_processing

log = structlog.get_logger(__name__)

LEASE = timedelta(seconds=2 * PROCESS_TIMEOUT_S)  # a claim older than this is the sweeper's to hand on
SWEEP_RECEIVED_AFTER = timedelta(seconds=30)  # a ``received`` event this old has lost its job
SWEEP_BATCH = 500

PAYMENT_INTENT_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "payment_intent.canceled",
    "payment_intent.processing",
    "payment_intent.amount_capturable_updated",
)
CHARGE_EVENTS = ("charge.refunded", "charge.captured", "charge.succeeded", "charge.refund.updated")
DISPUTE_EVENTS = ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed")
PAYOUT_EVENTS = ("payout.paid", "payout.failed")


@dataclass
class Deps:
    """What processing needs: the worker's ``ctx`` or the app's state."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    settings: Settings


@dataclass
class Claimed:
    id: uuid.UUID
    provider: str
    event_id: str
    type: str
    payload: dict[str, Any]
    attempts: int
    store_id: uuid.UUID | None
    found_store: uuid.UUID | None = field(default=None)  # the store processing tied it to

    @property
    def event(self) -> WebhookEvent:
        p = self.payload
        return WebhookEvent(
            id=self.event_id, type=self.type, created=int(p.get("created") or 0), data=p.get("data") or {}
        )

    @property
    def object(self) -> dict[str, Any]:
        obj = (self.payload.get("data") or {}).get("object") or {}
        return obj if isinstance(obj, dict) else {}


_CLAIM = """
UPDATE webhook_events
SET status = 'processing', attempts = attempts + 1, next_attempt_at = now() + $2::interval, updated_at = now()
WHERE id = $1 AND status IN ('received', 'processing', 'failed')
RETURNING id, provider, event_id, type, payload, attempts, store_id
"""
_DONE = """
UPDATE webhook_events
SET status = 'processed', outcome = $2, last_error = '', processed_at = now(), next_attempt_at = NULL,
    store_id = COALESCE(store_id, $3), updated_at = now()
WHERE id = $1 AND status = 'processing'
"""
_FAILED = """
UPDATE webhook_events
SET status = $2::varchar, last_error = $3, store_id = COALESCE(store_id, $4), updated_at = now(),
    next_attempt_at = CASE WHEN $2::varchar = 'failed' THEN now() + $5::interval END
WHERE id = $1 AND status = 'processing'
"""


async def claim(engine: AsyncEngine, row_id: uuid.UUID) -> Claimed | None:
    """Take the event for this run; None when it is processed or dead already (a duplicate job: a no-op)."""
    async with pg.connection(engine) as conn:
        row = await conn.fetchrow(_CLAIM, row_id, LEASE)
    if row is None:
        return None
    return Claimed(
        id=row["id"],
        provider=row["provider"],
        event_id=row["event_id"],
        type=row["type"],
        payload=row["payload"],
        attempts=row["attempts"],
        store_id=row["store_id"],
    )


async def process_event(deps: Deps, row_id: uuid.UUID, *, last_attempt: bool = False) -> str:
    """Process one stored event; returns its outcome. Raises (after recording the error) to be retried, unless
    this is the last attempt: then the event is ``dead`` and the error is not raised."""
    claimed = await claim(deps.engine, row_id)
    if claimed is None:
        return "skipped: already processed"
    bound = log.bind(webhook_event_id=str(claimed.id), event_id=claimed.event_id, type=claimed.type)
    try:
        outcome = await handle(deps, claimed)
    except Exception as exc:
        dead = last_attempt or claimed.attempts >= MAX_ATTEMPTS
        error = f"{type(exc).__name__}: {exc}"[:2000]
        retry_in = timedelta(seconds=2 ** min(claimed.attempts, 10))
        async with pg.connection(deps.engine) as conn:
            await conn.execute(_FAILED, claimed.id, "dead" if dead else "failed", error, claimed.found_store, retry_in)
        if dead:
            bound.error("webhook.dead", attempts=claimed.attempts, error=error)
            return "dead"
        bound.warning("webhook.failed", attempts=claimed.attempts, error=error)
        raise
    async with pg.connection(deps.engine) as conn:
        await conn.execute(_DONE, claimed.id, outcome[:300], claimed.found_store)
    bound.info("webhook.processed", outcome=outcome)
    return outcome


async def handle(deps: Deps, event: Claimed) -> str:
    """Apply one event; returns a one-line outcome. Sets ``event.found_store`` as soon as the store is known."""
    event.found_store = event.store_id
    if event.type in PAYMENT_INTENT_EVENTS or event.type in CHARGE_EVENTS:
        return await _payment(deps, event)
    if event.type in DISPUTE_EVENTS:
        return await _dispute(deps, event)
    if event.type == "account.updated":
        async with deps.sessions() as session, session.begin():
            store = await apply_account_update(session, account_from_event(event.object))
        if store is None:
            return f"ignored: no store has account {event.object.get('id')}"
        event.found_store = store.id
        return f"account {event.object.get('id')} recorded"
    if event.type in PAYOUT_EVENTS:
        return await _payout(deps, event)
    return f"ignored: {event.type} is not handled"


def _payment_ref(event: Claimed) -> str:
    obj = event.object
    if event.type.startswith("payment_intent."):
        return str(obj.get("id") or "")
    ref = obj.get("payment_intent")  # a charge, a dispute: the payment they belong to
    return str(ref.get("id") if isinstance(ref, dict) else ref or "")


async def _store_of_payment(deps: Deps, event: Claimed, ref: str) -> Store | None:
    async with deps.sessions() as session:
        system_scope(session)
        query = (
            select(Store)
            .join(PaymentIntent, PaymentIntent.store_id == Store.id)
            .where(PaymentIntent.provider == event.provider, PaymentIntent.provider_ref == ref)
        )
        if event.store_id is not None:
            query = query.where(Store.id == event.store_id)
        store: Store | None = await session.scalar(query.limit(1))
    return store


async def _provider(deps: Deps, event: Claimed, store: Store) -> PaymentProvider:
    if event.provider == "sandbox":
        return SandboxProvider(deps.redis, webhook_secret=sandbox_webhook_secret(deps.settings))
    provider = await provider_of(deps.sessions, store, deps.redis, deps.settings)
    if provider.name != event.provider:
        raise RuntimeError(f"the store now takes payments with {provider.name}, not {event.provider}")
    return provider


async def _payment(deps: Deps, event: Claimed) -> str:
    ref = _payment_ref(event)
    if not ref:
        return "ignored: the event names no payment"
    store = await _store_of_payment(deps, event, ref)
    if store is None:
        return f"ignored: no payment {ref} here"
    event.found_store = store.id
    outcome = await sync_intent(deps.sessions, store.id, await _provider(deps, event, store), ref)
    return f"{outcome.state}: {outcome.detail}"


async def _dispute(deps: Deps, event: Claimed) -> str:
    ref = _payment_ref(event)
    store = await _store_of_payment(deps, event, ref) if ref else None
    if store is None and event.store_id is not None:  # a dispute naming only its charge: the URL named the store
        async with deps.sessions() as session:
            store = await session.get(Store, event.store_id)
    if store is None:
        return f"ignored: no payment {ref or '(none named)'} here"
    event.found_store = store.id
    try:
        from app.disputes.services import apply_dispute_event  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:  # TODO(#5): app/disputes is being written alongside this change
        raise RuntimeError("disputes are not available yet (app.disputes.services.apply_dispute_event)") from exc
    result = await apply_dispute_event(deps.sessions, store, await _provider(deps, event, store), event.event)
    return f"dispute applied: {result}"


async def _payout(deps: Deps, event: Claimed) -> str:
    """Payouts are read live from the provider (the payouts page): the event is only recorded and logged."""
    obj = event.object
    account = event.payload.get("account")
    if isinstance(account, str) and account:
        async with deps.sessions() as session:
            store = await store_for_account(session, account)
        if store is not None:
            event.found_store = store.id
    log.info("payouts.event", type=event.type, payout=obj.get("id"), amount=obj.get("amount"), account=account)
    return f"recorded: payout {obj.get('id')} {obj.get('status') or event.type.split('.')[-1]}"


async def sweep_unfinished(
    engine: AsyncEngine, queue: Queue, *, received_after: timedelta = SWEEP_RECEIVED_AFTER
) -> int:
    """Enqueue events whose job was lost: ``received`` for a while, a ``processing`` lease run out (the worker
    died mid-way), a ``failed`` retry overdue. A job still queued or running under the key is not doubled."""
    async with pg.connection(engine) as conn:
        rows = await conn.fetch(
            """
            SELECT id FROM webhook_events
            WHERE status IN ('received', 'processing', 'failed')
              AND ((status = 'received' AND received_at < now() - $1::interval)
                   OR (status <> 'received' AND next_attempt_at < now()))
            ORDER BY received_at
            LIMIT $2
            """,
            received_after,
            SWEEP_BATCH,
        )
    for row in rows:
        await enqueue_processing(queue, row["id"])
    return len(rows)
