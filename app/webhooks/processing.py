"""Processing stored webhook events: the worker's :class:`WebhookProcessor`, a loop beside the outbox relay.

Idempotent and order-independent by construction: a payment event re-reads the payment from the provider
and records only the difference (app/payments/sync.py); an account event applies the account as the event
states it whole; a dispute event is applied by app/disputes, keyed by the dispute. Replaying, re-delivering
or reordering events therefore ends in the same state.

The processor wakes on ``NOTIFY till_webhooks`` (a trigger sends it when an event is stored or replayed)
and every second for retries that are due. Each round claims a batch in one statement (``FOR UPDATE SKIP
LOCKED``: several workers share the work): events ``received``, a ``failed`` retry that is due, a
``processing`` lease run out (a worker killed mid-way). Claiming sets ``processing``, attempts + 1 and a
lease in ``next_attempt_at``. The batch is handled holding no transaction, events about one payment in
turn and the rest side by side; the processed ones are marked in one statement, each with a one-line
outcome. A failure is recorded on its row (``failed``, the error, the next try 2^attempts seconds on);
the attempt that reaches :data:`MAX_ATTEMPTS` marks it ``dead`` instead, for an admin to replay.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.checkout.saga import CheckoutSaga
from app.config import Settings
from app.core import kill_switches, pg
from app.core.listen import drain_on_notify
from app.disputes.services import apply_dispute_event
from app.payments.connect import account_from_event, apply_account_update, store_for_account
from app.payments.provider import PaymentProvider, WebhookEvent
from app.payments.registry import provider_of, sandbox_webhook_secret
from app.payments.sandbox import SandboxProvider
from app.payments.sync import sync_intent
from app.stores.models import Store

log = structlog.get_logger(__name__)

NOTIFY_CHANNEL = "till_webhooks"
MAX_ATTEMPTS = 8  # the attempt that fails 8th marks the event dead (retries 2, 4, 8 … 128 s apart)
PROCESS_TIMEOUT_S = 60  # one event's handling; longer is a failure
LEASE = timedelta(seconds=2 * PROCESS_TIMEOUT_S)  # a claim older than this was lost with its worker
BATCH_SIZE = 200
CONCURRENCY = 8  # events handled side by side in a batch (different payments)
GATHER_FOR_S = 0.025  # after a NOTIFY, let a burst gather this long: batches of many, not one per delivery

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
    # The store of the payment the event names, looked up for the whole batch (:func:`look_up_payment_stores`).
    payment_looked_up: bool = field(default=False)
    payment_store: uuid.UUID | None = field(default=None)

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


_CLAIM_DUE = """
UPDATE webhook_events AS e
SET status = 'processing', attempts = e.attempts + 1, next_attempt_at = now() + $2::interval, updated_at = now()
FROM (
    SELECT id FROM webhook_events
    WHERE status IN ('received', 'processing', 'failed')
      AND (status = 'received' OR next_attempt_at <= now())
    ORDER BY received_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
) AS due
WHERE e.id = due.id
RETURNING e.id, e.provider, e.event_id, e.type, e.payload, e.attempts, e.store_id
"""
_CLAIM_ONE = """
UPDATE webhook_events
SET status = 'processing', attempts = attempts + 1, next_attempt_at = now() + $2::interval, updated_at = now()
WHERE id = $1 AND status IN ('received', 'processing', 'failed')
RETURNING id, provider, event_id, type, payload, attempts, store_id
"""
_DONE = """
UPDATE webhook_events AS e
SET status = 'processed', outcome = done.outcome, last_error = '', processed_at = now(), next_attempt_at = NULL,
    store_id = COALESCE(e.store_id, done.store_id), updated_at = now()
FROM unnest($1::uuid[], $2::text[], $3::uuid[]) AS done(id, outcome, store_id)
WHERE e.id = done.id AND e.status = 'processing'
"""
# Events of a store whose webhook processing is paused (kill switch ``webhooks_paused``) go back to wait: the
# claim's attempt is given back and they are looked at again after PAUSE_RECHECK (processed once released).
_DEFER = """
UPDATE webhook_events
SET status = 'failed', attempts = GREATEST(attempts - 1, 0), last_error = 'paused: webhooks_paused is engaged',
    next_attempt_at = now() + $2::interval, updated_at = now()
WHERE id = ANY($1::uuid[]) AND status = 'processing'
"""
PAUSE_RECHECK = timedelta(seconds=10)
_FAILED = """
UPDATE webhook_events
SET status = $2::varchar, last_error = $3, store_id = COALESCE(store_id, $4), updated_at = now(),
    next_attempt_at = CASE WHEN $2::varchar = 'failed' THEN now() + $5::interval END
WHERE id = $1 AND status = 'processing'
"""


def _claimed(row: asyncpg.Record) -> Claimed:
    return Claimed(
        id=row["id"],
        provider=row["provider"],
        event_id=row["event_id"],
        type=row["type"],
        payload=row["payload"],
        attempts=row["attempts"],
        store_id=row["store_id"],
    )


async def claim_due(engine: AsyncEngine, limit: int = BATCH_SIZE) -> list[Claimed]:
    """Claim up to ``limit`` events due for processing, oldest first; rows another worker holds are skipped.

    A queue in a table leaves an index entry behind for every event it has processed until VACUUM comes. A
    plain index scan marks each such entry dead the first time it passes it, and later scans skip it; a bitmap
    scan (which the planner prefers here, expecting few rows) never does, and re-reads every one of them each
    time: ~10 ms a claim after 50,000 events, against ~0.2 ms. So bitmap scans are off for this statement."""
    async with pg.transaction(engine) as conn:
        await conn.execute("SET LOCAL enable_bitmapscan = off")
        return [_claimed(row) for row in await conn.fetch(_CLAIM_DUE, limit, LEASE)]


async def claim(engine: AsyncEngine, row_id: uuid.UUID) -> Claimed | None:
    """Claim one event whatever its retry time; None when it is processed or dead already."""
    async with pg.connection(engine) as conn:
        row = await conn.fetchrow(_CLAIM_ONE, row_id, LEASE)
    return None if row is None else _claimed(row)


async def attempt(deps: Deps, claimed: Claimed) -> str | None:
    """Handle a claimed event. Returns its outcome, to be marked with :func:`mark_processed`; on a failure
    records it (``failed`` with the next try, or ``dead`` on the last attempt) and returns None."""
    bound = log.bind(webhook_event_id=str(claimed.id), event_id=claimed.event_id, type=claimed.type)
    try:
        async with asyncio.timeout(PROCESS_TIMEOUT_S):
            return await handle(deps, claimed)
    except Exception as exc:
        dead = claimed.attempts >= MAX_ATTEMPTS
        error = f"{type(exc).__name__}: {exc}"[:2000]
        retry_in = timedelta(seconds=2 ** min(claimed.attempts, 10))
        async with pg.connection(deps.engine) as conn:
            await conn.execute(_FAILED, claimed.id, "dead" if dead else "failed", error, claimed.found_store, retry_in)
        if dead:
            bound.error("webhook.dead", attempts=claimed.attempts, error=error)
        else:
            bound.warning("webhook.failed", attempts=claimed.attempts, error=error)
        return None


async def mark_processed(engine: AsyncEngine, done: list[tuple[Claimed, str]]) -> None:
    if not done:
        return
    async with pg.connection(engine) as conn:
        await conn.execute(
            _DONE,
            [claimed.id for claimed, _ in done],
            [outcome[:300] for _, outcome in done],
            [claimed.found_store for claimed, _ in done],
        )


async def process_event(deps: Deps, row_id: uuid.UUID) -> str:
    """Claim and process one event now, whatever its retry time (tests; the processor works in batches).
    Returns its outcome, ``failed``/``dead`` when the attempt failed, or ``skipped`` when it was done."""
    claimed = await claim(deps.engine, row_id)
    if claimed is None:
        return "skipped: already processed"
    outcome = await attempt(deps, claimed)
    if outcome is None:
        return "dead" if claimed.attempts >= MAX_ATTEMPTS else "failed"
    await mark_processed(deps.engine, [(claimed, outcome)])
    log.info("webhook.processed", webhook_event_id=str(claimed.id), type=claimed.type, outcome=outcome)
    return outcome


async def handle(deps: Deps, event: Claimed) -> str:
    """Apply one event; returns a one-line outcome. Sets ``event.found_store`` as soon as the store is known."""
    event.found_store = event.store_id
    if event.provider == "whatsapp":  # a receipt message's status (app/receipts/webhooks.py stored it)
        from app.receipts.webhooks import process_status

        outcome, event.found_store = await process_status(deps.sessions, deps.settings, event.payload, event.attempts)
        return outcome
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


# The raw statements here that name no store: the event names only the provider's payment reference, and
# finding which store it belongs to is the point. They return store ids and nothing else; everything after is
# scoped to that store. Raw, and for a whole batch at once, because events about payments that are not Till's
# (a Stripe account shared with another system) are common and should cost little.
_STORE_OF_PAYMENT = """
SELECT store_id FROM payment_intents
WHERE provider = $1 AND provider_ref = $2 AND ($3::uuid IS NULL OR store_id = $3)
LIMIT 1
"""
_STORES_OF_PAYMENTS = """
SELECT p.provider, p.provider_ref, p.store_id
FROM payment_intents AS p
JOIN unnest($1::text[], $2::text[]) AS named(provider, ref)
  ON p.provider = named.provider AND p.provider_ref = named.ref
"""


def _names_payment(event: Claimed) -> bool:
    return event.type in PAYMENT_INTENT_EVENTS or event.type in CHARGE_EVENTS or event.type in DISPUTE_EVENTS


async def look_up_payment_stores(engine: AsyncEngine, batch: list[Claimed]) -> None:
    """Find the store of every payment the batch's events name, in one statement."""
    named = [(event, ref) for event in batch if _names_payment(event) and (ref := _payment_ref(event))]
    if not named:
        return
    async with pg.connection(engine) as conn:
        rows = await conn.fetch(_STORES_OF_PAYMENTS, [event.provider for event, _ in named], [ref for _, ref in named])
    stores = {(row["provider"], row["provider_ref"]): row["store_id"] for row in rows}
    for event, ref in named:
        event.payment_looked_up = True
        event.payment_store = stores.get((event.provider, ref))


async def _store_of_payment(deps: Deps, event: Claimed, ref: str) -> Store | None:
    if event.payment_looked_up:
        store_id = event.payment_store
        if event.store_id is not None and store_id != event.store_id:
            store_id = None  # the URL named another store
    else:
        async with pg.connection(deps.engine) as conn:
            store_id = await conn.fetchval(_STORE_OF_PAYMENT, event.provider, ref, event.store_id)
    if store_id is None:
        return None
    async with deps.sessions() as session:
        return await session.get(Store, store_id)


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
        return await _unrecorded_payment(deps, event, ref)
    event.found_store = store.id
    outcome = await sync_intent(deps.sessions, store.id, await _provider(deps, event, store), ref)
    return f"{outcome.state}: {outcome.detail}"


_STORE_OF_ATTEMPT = "SELECT store_id FROM checkout_attempts WHERE id = $1 AND ($2::uuid IS NULL OR store_id = $2)"


async def _unrecorded_payment(deps: Deps, event: Claimed, ref: str) -> str:
    """A payment no store has recorded whose metadata names a checkout attempt (Till sends it with every
    authorisation): the checkout's process died during the provider call, or this event beat its answer.
    The attempt's saga adopts it: the order is placed, or the money given back."""
    metadata = event.object.get("metadata")
    named = (
        metadata.get("attempt_id") if isinstance(metadata, dict) and event.type.startswith("payment_intent.") else None
    )
    try:
        attempt_id = uuid.UUID(str(named)) if named else None
    except ValueError:  # not ours: Till writes a UUID there
        attempt_id = None
    if attempt_id is None:
        return f"ignored: no payment {ref} here"
    async with pg.connection(deps.engine) as conn:
        store_id = await conn.fetchval(_STORE_OF_ATTEMPT, attempt_id, event.store_id)
    async with deps.sessions() as session:
        store = await session.get(Store, store_id) if store_id is not None else None
    if store is None:
        return f"ignored: no payment {ref} here"
    event.found_store = store.id
    outcome = await CheckoutSaga(deps.sessions, store, await _provider(deps, event, store)).adopt(attempt_id, ref)
    return f"adopted by checkout attempt {attempt_id}: {outcome.state}"


async def _dispute(deps: Deps, event: Claimed) -> str:
    ref = _payment_ref(event)
    store = await _store_of_payment(deps, event, ref) if ref else None
    if store is None and event.store_id is not None:  # a dispute naming only its charge: the URL named the store
        async with deps.sessions() as session:
            store = await session.get(Store, event.store_id)
    if store is None:
        return f"ignored: no payment {ref or '(none named)'} here"
    event.found_store = store.id
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


def _serial_key(event: Claimed) -> str:
    """Events about one payment (or account) are handled in turn: side by side they would contend for its lock."""
    if _names_payment(event):
        return f"payment:{_payment_ref(event)}"
    if event.type == "account.updated":
        return f"account:{event.object.get('id')}"
    return f"event:{event.id}"


class WebhookProcessor:
    """Drains due webhook events in batches; runs in every worker process (``SKIP LOCKED`` splits the work)."""

    def __init__(self, deps: Deps, *, batch_size: int = BATCH_SIZE, concurrency: int = CONCURRENCY) -> None:
        self.deps = deps
        self.batch_size = batch_size
        self.concurrency = concurrency

    async def drain_once(self) -> int:
        """Claim, handle and mark one batch. Returns how many events it claimed. Paused globally (kill switch
        ``webhooks_paused``): claims nothing; paused for a store: that store's events are deferred."""
        paused = await kill_switches.engaged_where(self.deps.redis, kill_switches.Switch.WEBHOOKS_PAUSED)
        if paused.everywhere:
            return 0
        batch = await claim_due(self.deps.engine, self.batch_size)
        if not batch:
            return 0
        await look_up_payment_stores(self.deps.engine, batch)
        if paused.stores:
            batch = await self._defer_paused(batch, paused)
        in_turn: dict[str, list[Claimed]] = {}
        for event in batch:
            in_turn.setdefault(_serial_key(event), []).append(event)
        slots = asyncio.Semaphore(self.concurrency)
        done: list[tuple[Claimed, str]] = []

        async def handle_in_turn(events: list[Claimed]) -> None:
            async with slots:
                for event in events:
                    outcome = await attempt(self.deps, event)
                    if outcome is not None:
                        done.append((event, outcome))

        await asyncio.gather(*(handle_in_turn(events) for events in in_turn.values()))
        await mark_processed(self.deps.engine, done)
        log.debug("webhooks.batch", claimed=len(batch), processed=len(done))
        return len(batch)

    async def _defer_paused(self, batch: list[Claimed], paused: kill_switches.Engaged) -> list[Claimed]:
        deferred = {event.id for event in batch if paused.covers(event.store_id or event.payment_store)}
        if not deferred:
            return batch
        async with pg.connection(self.deps.engine) as conn:
            await conn.execute(_DEFER, list(deferred), PAUSE_RECHECK)
        log.info("webhooks.paused", deferred=len(deferred))
        return [event for event in batch if event.id not in deferred]

    async def drain(self) -> int:
        total = 0
        while True:
            n = await self.drain_once()
            total += n
            if n < self.batch_size:
                return total

    async def run(self, listen_dsn: str, *, poll_interval: float = 1.0) -> None:
        """Drain on every NOTIFY, and every ``poll_interval`` seconds for due retries. Runs until cancelled."""
        await drain_on_notify(
            listen_dsn, NOTIFY_CHANNEL, self.drain, poll_interval=poll_interval, gather_for=GATHER_FOR_S
        )
