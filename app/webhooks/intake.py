"""Webhook intake (Invariant 5): verify the signature on the raw body, store the event once, answer.

The acknowledgement is the hot path (a provider retries what we are slow to answer): one HMAC, one JSON
decode, one raw ``INSERT … ON CONFLICT DO NOTHING`` on the asyncpg pool (app/core/pg.py, no ORM session),
shared with the deliveries that arrive while the previous one is being written (:class:`IntakeWriter`).
A trigger NOTIFYs the worker's webhook processor when the row commits (app/webhooks/processing.py).

Which secret signs what:

- ``/webhooks/sandbox``: the sandbox's own secret (:func:`app.payments.registry.sandbox_webhook_secret`).
- ``/webhooks/stripe/{store_slug}``: the store's saved Stripe webhook signing secret (Settings → Payments),
  of either mode (a store switching from test to live keeps receiving its test events); the store is
  known from the URL. Read and decrypted once a minute per store (:data:`SECRET_TTL_S`).
- ``/webhooks/stripe``: the platform's endpoint for Connect events (``account.updated``, payouts), signed
  with ``STRIPE_PLATFORM_WEBHOOK_SECRET``; without that setting the route rejects everything.

A rejected delivery (missing, malformed, wrong or stale signature; a signed body that is not an event)
is a 400 problem+json, logged with its reason and counted in ``till_webhooks_rejected_total``; nothing
is stored. A duplicate (same provider + event id) is a 200 and changes nothing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
import structlog
from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from uuid_utils.compat import uuid7

from app.core import pg
from app.core.tenancy import system_scope
from app.payments.credentials import MODES, load_credentials
from app.payments.signing import InvalidSignature, verify
from app.stores.models import Store

log = structlog.get_logger(__name__)

SECRET_TTL_S = 60.0

REJECTED = Counter("till_webhooks_rejected_total", "Webhook deliveries refused at intake", ["provider", "reason"])
RECEIVED = Counter(
    "till_webhooks_received_total", "Signed webhook deliveries accepted at intake", ["provider", "outcome"]
)


class WebhookRejected(Exception):
    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(reason)
        self.provider = provider
        self.reason = reason


@dataclass(frozen=True)
class Accepted:
    event_id: str
    type: str
    row_id: uuid.UUID | None  # None: a duplicate, already stored
    duplicate: bool


class _Event(msgspec.Struct):
    id: str
    type: str
    created: int
    data: dict[str, Any]


_INSERT = """
INSERT INTO webhook_events (id, provider, event_id, store_id, type, payload, received_at, status, attempts,
                            last_error, outcome, created_at, updated_at)
SELECT e.id, e.provider, e.event_id, e.store_id, e.type, e.payload::jsonb, now(), 'received', 0, '', '', now(), now()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[])
     AS e(id, provider, event_id, store_id, type, payload)
ON CONFLICT (provider, event_id) DO NOTHING
RETURNING id
"""


@dataclass(frozen=True)
class IncomingRow:
    id: uuid.UUID
    provider: str
    event_id: str
    store_id: uuid.UUID | None
    type: str
    payload: str


class RefusedPayload(Exception):
    """PostgreSQL refused the payload (JSON that jsonb cannot hold, such as ``\\u0000``)."""


class IntakeWriter:
    """Stores accepted events; deliveries arriving while a write is in flight go together in the next one.

    One ``INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING`` per group, so one commit (one WAL flush,
    one NOTIFY) for many deliveries under load, and a lone delivery is written at once. Every caller waits for
    its own row's commit before it is answered: an acknowledged event is durable. Two deliveries of one event
    in one group store it once; the other is told it is a duplicate.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._waiting: list[tuple[IncomingRow, asyncio.Future[bool]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def store(self, row: IncomingRow) -> bool:
        """True when this call stored the event, False for a duplicate. Raises :class:`RefusedPayload`."""
        stored: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, stored))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_while_waiting())
        return await stored

    async def _write_while_waiting(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                outcomes = await self._write([row for row, _ in group])
            except Exception as exc:  # the database is down: every caller of the group gets the error
                for _, stored in group:
                    if not stored.done():
                        stored.set_exception(exc)
                continue
            for row, stored in group:
                if stored.done():  # its caller went away
                    continue
                outcome = outcomes[row.id]
                if outcome is None:
                    stored.set_exception(RefusedPayload())
                else:
                    stored.set_result(outcome)

    async def _write(self, rows: list[IncomingRow]) -> dict[uuid.UUID, bool | None]:
        """Each row's id → stored (True), a duplicate (False) or refused by PostgreSQL (None)."""
        try:
            async with pg.connection(self.engine) as conn:
                records = await conn.fetch(
                    _INSERT,
                    [row.id for row in rows],
                    [row.provider for row in rows],
                    [row.event_id for row in rows],
                    [row.store_id for row in rows],
                    [row.type for row in rows],
                    [row.payload for row in rows],
                )
        except (asyncpg.DataError, asyncpg.UntranslatableCharacterError):
            if len(rows) == 1:
                return {rows[0].id: None}
            outcomes: dict[uuid.UUID, bool | None] = {}
            for row in rows:  # the statement wrote nothing: write them one by one to find the one refused
                outcomes.update(await self._write([row]))
            return outcomes
        inserted = {record["id"] for record in records}
        return {row.id: row.id in inserted for row in rows}


_writers: weakref.WeakKeyDictionary[AsyncEngine, IntakeWriter] = weakref.WeakKeyDictionary()


def writer_for(engine: AsyncEngine) -> IntakeWriter:
    writer = _writers.get(engine)
    if writer is None:
        writer = _writers[engine] = IntakeWriter(engine)
    return writer


def reject(provider: str, reason: str) -> WebhookRejected:
    REJECTED.labels(provider=provider, reason=reason).inc()
    log.warning("webhook.rejected", provider=provider, reason=reason)
    return WebhookRejected(provider, reason)


def check_signature(provider: str, body: bytes, header: str, secrets: list[str], *, now: int | None = None) -> None:
    """Stripe's scheme against any of ``secrets``; raises :class:`WebhookRejected` with the reason."""
    if not secrets:
        raise reject(provider, "no webhook secret configured")
    reasons: list[str] = []
    for secret in secrets:
        try:
            verify(body, header, secret, now=now)
            return
        except InvalidSignature as exc:
            reasons.append(exc.reason)
    # "timestamp outside the tolerance" is only said of a genuine signature: it is the better reason
    raise reject(
        provider, "timestamp outside the tolerance" if "timestamp outside the tolerance" in reasons else reasons[0]
    )


def parse_event(provider: str, body: bytes) -> _Event:
    try:
        event = msgspec.json.decode(body, type=_Event)
    except msgspec.DecodeError:
        raise reject(provider, "malformed payload") from None
    if not event.id or not event.type or len(event.id) > 255 or len(event.type) > 100:
        raise reject(provider, "malformed payload")
    return event


async def accept(
    engine: AsyncEngine,
    *,
    provider: str,
    body: bytes,
    signature: str,
    secrets: list[str],
    store_id: uuid.UUID | None = None,
    now: int | None = None,
) -> Accepted:
    """Verify and store once (its trigger wakes the processor). Raises :class:`WebhookRejected` (nothing stored)."""
    check_signature(provider, body, signature, secrets, now=now)
    event = parse_event(provider, body)
    try:
        row = IncomingRow(uuid7(), provider, event.id, store_id, event.type, body.decode())  # uuid7: the ORM's ids
        stored = await writer_for(engine).store(row)
    except (RefusedPayload, UnicodeDecodeError):
        raise reject(provider, "malformed payload") from None
    if not stored:
        RECEIVED.labels(provider=provider, outcome="duplicate").inc()
        return Accepted(event.id, event.type, None, duplicate=True)
    RECEIVED.labels(provider=provider, outcome="stored").inc()
    return Accepted(event.id, event.type, row.id, duplicate=False)


# store slug → (read at, store id, webhook secrets of both modes)
_store_secrets: dict[str, tuple[float, uuid.UUID | None, list[str]]] = {}


async def store_secrets(
    sessions: async_sessionmaker[AsyncSession], store_slug: str
) -> tuple[uuid.UUID | None, list[str]]:
    """A store's Stripe webhook signing secrets (test and live, whichever are saved), cached a minute."""
    cached = _store_secrets.get(store_slug)
    if cached is not None and time.monotonic() - cached[0] < SECRET_TTL_S:
        return cached[1], cached[2]
    async with sessions() as session:
        system_scope(session)
        store_id = await session.scalar(select(Store.id).where(Store.slug == store_slug))
    secrets: list[str] = []
    if store_id is not None:
        for mode in MODES:
            async with sessions() as session:
                credentials = await load_credentials(session, store_id, "stripe", mode)
            if credentials is not None and credentials.webhook_secret:
                secrets.append(credentials.webhook_secret)
    _store_secrets[store_slug] = (time.monotonic(), store_id, secrets)
    return store_id, secrets


def forget_store_secrets() -> None:
    """Drop the cache (tests; a rotation that must apply before the minute is up)."""
    _store_secrets.clear()
