"""The provider call audit: every authorise, capture, void, refund and status read sent to a payment provider, and
its Connect, customer and dispute evidence calls (card readers: ``reader_calls.py``), is recorded with its
operation, idempotency key, latency, outcome, correlation id and a redacted request and response.

How, without a SQL statement on the checkout's path (ADR 0003's budget): the store's provider is built as a
recording subclass (:func:`recorded_sandbox`, :func:`recorded_stripe`; ``app.payments.registry`` does it), which
times each call and pushes one JSON entry onto a Redis list (one ``LPUSH``). The worker's
``flush_provider_calls`` job (every 10 s) moves them into ``provider_calls`` in batches; ``sweep_provider_calls``
(hourly) deletes rows older than :data:`RETENTION`. An entry lost with Redis before a flush is lost from the audit
(the payment itself is in the ledger regardless); the list is capped at :data:`MAX_BUFFERED` so a stopped worker
cannot fill Redis.

Redaction: a request keeps amounts, currency, capture flag, the card's brand and last 4 (never the number or the
CVC), a token's kind (``pm_…``), metadata and the idempotency key; a response keeps the provider's already-redacted
``raw`` (no client secret, no card data) and the outcome. Nothing else of the provider's answer is kept. Connect
keeps no e-mail and no onboarding URL (a bearer link), customers no e-mail or name, dispute evidence only the
names of the fields sent and their length (the text is the cardholder's personal data).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog
from redis.asyncio import Redis
from sqlalchemy import Select, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core import pg
from app.core.logging import current_correlation_id
from app.core.money import Money
from app.payments.capabilities import (
    ConnectedAccount,
    DisputeEvidence,
    DisputeSubmission,
    OnboardingLink,
    Payout,
    Transfer,
)
from app.payments.provider import (
    AuthorizeRequest,
    CaptureRequest,
    PaymentError,
    ProviderResult,
    ProviderTimeout,
    RefundRequest,
    VoidRequest,
)
from app.payments.providers.stripe import StripeProvider
from app.payments.sandbox import SandboxProvider
from app.reconciliation.models import ProviderCall

log = structlog.get_logger(__name__)

BUFFER_KEY = "till:provider_calls"
MAX_BUFFERED = 200_000
FLUSH_BATCH = 1000
RETENTION = timedelta(days=90)
PAYMENT_OPERATIONS = ("authorize", "capture", "void", "refund", "get_transaction")
CONNECT_OPERATIONS = (
    "connect.create_account",
    "connect.onboarding_link",
    "connect.get_account",
    "connect.create_transfer",
    "connect.list_payouts",
    "customer.ensure",
)
DISPUTE_OPERATIONS = ("dispute.submit_evidence",)
READER_OPERATIONS = (
    "terminal.register",
    "terminal.start_payment",
    "terminal.payment_status",
    "terminal.cancel_payment",
    "terminal.connection_token",
)
OPERATIONS = PAYMENT_OPERATIONS + CONNECT_OPERATIONS + DISPUTE_OPERATIONS + READER_OPERATIONS
OUTCOMES = ("ok", "declined", "refused", "timeout", "error")

T = TypeVar("T")
Answer = tuple[dict[str, Any], str, str]  # (redacted response, provider ref or "", decline code or "")


def _request(op: str, request: Any) -> tuple[dict[str, Any], str, str]:
    """(redacted request, idempotency key, provider ref)."""
    if isinstance(request, AuthorizeRequest):
        body: dict[str, Any] = {
            "amount_minor": request.amount.amount_minor,
            "currency": request.amount.currency,
            "capture": request.capture,
            "metadata": dict(request.metadata),
        }
        if request.card is not None:
            body["card"] = {"last4": request.card.last4}  # never the number or the CVC
        if request.payment_method_token:
            body["payment_method"] = request.payment_method_token.split("_", 1)[0] + "_…"
        if request.destination_account:
            body["destination"] = request.destination_account
        if request.application_fee is not None:
            body["application_fee_minor"] = request.application_fee.amount_minor
        return body, request.idempotency_key, ""
    if isinstance(request, (CaptureRequest, RefundRequest)):
        body = {"amount_minor": request.amount.amount_minor, "currency": request.amount.currency}
        if isinstance(request, RefundRequest) and request.reason:
            body["reason"] = request.reason[:200]
        return body, request.idempotency_key, request.provider_ref
    if isinstance(request, VoidRequest):
        return {}, request.idempotency_key, request.provider_ref
    return {}, "", str(request)  # get_transaction(ref)


def _response(result: ProviderResult) -> dict[str, Any]:
    return {
        "status": result.status.value,
        "amount_minor": result.amount.amount_minor,
        "captured_minor": result.captured.amount_minor,
        "refunded_minor": result.refunded.amount_minor,
        "decline_code": result.decline_code,
        "raw": {k: v for k, v in result.raw.items() if k not in ("client_secret", "action_url", "next_action_url")},
    }


class CallRecorder:
    """Pushes one entry per call onto the Redis buffer; never raises into the payment it records."""

    def __init__(self, redis: Redis, store_id: uuid.UUID, provider: str) -> None:
        self.redis, self.store_id, self.provider = redis, store_id, provider

    async def call(self, op: str, request: Any, send: Any) -> ProviderResult:
        """One of the five payment calls: ``send(request)``, its request and result redacted as above."""
        body, key, ref = _request(op, request)

        def answer(result: ProviderResult) -> Answer:
            declined = result.decline_code or result.status.value in ("declined", "failed")
            return _response(result), result.provider_ref, (result.decline_code or "declined") if declined else ""

        return await self.run(op, lambda: send(request), request=body, key=key, ref=ref, answer=answer)

    async def run(
        self,
        op: str,
        send: Callable[[], Awaitable[T]],
        *,
        request: dict[str, Any],
        key: str = "",
        ref: str = "",
        answer: Callable[[T], Answer],
    ) -> T:
        """Time ``send()`` and record it. ``request`` is already redacted; ``answer(result)`` gives the redacted
        response, the provider's reference (or "") and a decline code when the provider said no ("" otherwise)."""
        started = time.perf_counter()
        outcome, error_code, response = "ok", "", {}
        try:
            result = await send()
        except ProviderTimeout as exc:
            outcome, error_code, ref = "timeout", exc.code, exc.provider_ref or ref
            raise
        except PaymentError as exc:
            outcome, error_code, ref = "refused", exc.code, exc.provider_ref or ref
            response = {"error": exc.code, "message": exc.message[:300]}
            raise
        except Exception as exc:
            outcome, error_code = "error", type(exc).__name__
            raise
        else:
            response, answered_ref, declined = answer(result)
            ref = answered_ref or ref
            if declined:
                outcome, error_code = "declined", declined if declined != "declined" else ""
            return result
        finally:
            entry = {
                "store_id": str(self.store_id),
                "provider": self.provider,
                "operation": op,
                "idempotency_key": key[:255],
                "provider_ref": ref[:120],
                "outcome": outcome,
                "error_code": error_code[:60],
                "latency_ms": round((time.perf_counter() - started) * 1000),
                "correlation_id": current_correlation_id(),
                "request": request,
                "response": response,
                "called_at": datetime.now(UTC).isoformat(),
            }
            try:
                await _buffer(self.redis, json.dumps(entry, default=str))
            except Exception:  # the audit must never fail a payment
                log.warning("provider_calls.not_recorded", operation=op, provider_ref=ref)


# Entries recorded together go out in one LPUSH (issue 20: a crowd of checkouts paid one Redis round trip each):
# the first entry schedules the push, every entry recorded before it is sent joins it, and each caller waits for
# the push its entry went out in, as it waited for its own before.
_pending: dict[tuple[int, int], tuple[list[str], asyncio.Future[None]]] = {}
_pushing: set[asyncio.Task[None]] = set()  # a reference keeps each push alive


async def _buffer(redis: Redis, entry: str) -> None:
    loop = asyncio.get_running_loop()
    key = (id(loop), id(redis))
    batch = _pending.get(key)
    if batch is None:
        batch = _pending[key] = ([], loop.create_future())
        batch[1].add_done_callback(_pushed)
        task = loop.create_task(_push(redis, key))
        _pushing.add(task)
        task.add_done_callback(_pushing.discard)
    batch[0].append(entry)
    await asyncio.shield(batch[1])


async def _push(redis: Redis, key: tuple[int, int]) -> None:
    entries, done = _pending.pop(key)  # before the push goes out: later entries start the next batch
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.lpush(BUFFER_KEY, *entries)
            pipe.ltrim(BUFFER_KEY, 0, MAX_BUFFERED - 1)
            await pipe.execute()
    except Exception as exc:
        done.set_exception(exc)
    else:
        done.set_result(None)


def _pushed(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # a failed push is each caller's to log; none left is not an error


def _account(account: ConnectedAccount) -> Answer:
    response = {
        "account": account.id,
        "status": account.status,
        "charges_enabled": account.charges_enabled,
        "payouts_enabled": account.payouts_enabled,
        "requirements_due": list(account.requirements_due)[:20],
    }
    return response, account.id, ""


class _Recorded:
    """Mixed in before a provider class: its payment calls, its Connect calls (accounts, onboarding links,
    transfers, payouts), customers and dispute evidence go through :class:`CallRecorder`."""

    calls: CallRecorder

    async def authorize(self, request: AuthorizeRequest) -> ProviderResult:
        return await self.calls.call("authorize", request, super().authorize)  # type: ignore[misc]

    async def capture(self, request: CaptureRequest) -> ProviderResult:
        return await self.calls.call("capture", request, super().capture)  # type: ignore[misc]

    async def void(self, request: VoidRequest) -> ProviderResult:
        return await self.calls.call("void", request, super().void)  # type: ignore[misc]

    async def refund(self, request: RefundRequest) -> ProviderResult:
        return await self.calls.call("refund", request, super().refund)  # type: ignore[misc]

    async def get_transaction(self, provider_ref: str) -> ProviderResult:
        return await self.calls.call("get_transaction", provider_ref, super().get_transaction)  # type: ignore[misc]

    # -- Connect (the e-mail is not kept; an onboarding link is a bearer link: only its expiry is) ----------------

    async def create_account(self, *, email: str, country: str, idempotency_key: str) -> ConnectedAccount:
        parent = super()
        return await self.calls.run(
            "connect.create_account",
            lambda: parent.create_account(email=email, country=country, idempotency_key=idempotency_key),  # type: ignore[attr-defined]
            request={"country": country},
            key=idempotency_key,
            answer=_account,
        )

    async def onboarding_link(self, account_id: str, *, refresh_url: str, return_url: str) -> OnboardingLink:
        parent = super()
        return await self.calls.run(
            "connect.onboarding_link",
            lambda: parent.onboarding_link(account_id, refresh_url=refresh_url, return_url=return_url),  # type: ignore[attr-defined]
            request={"account": account_id},
            ref=account_id,
            answer=lambda link: ({"expires_at": link.expires_at}, "", ""),
        )

    async def get_account(self, account_id: str) -> ConnectedAccount:
        parent = super()
        return await self.calls.run(
            "connect.get_account",
            lambda: parent.get_account(account_id),  # type: ignore[attr-defined]
            request={"account": account_id},
            ref=account_id,
            answer=_account,
        )

    async def create_transfer(
        self, *, amount: Money, destination: str, transfer_group: str, idempotency_key: str, source_ref: str = ""
    ) -> Transfer:
        parent = super()
        return await self.calls.run(
            "connect.create_transfer",
            lambda: parent.create_transfer(  # type: ignore[attr-defined]
                amount=amount,
                destination=destination,
                transfer_group=transfer_group,
                idempotency_key=idempotency_key,
                source_ref=source_ref,
            ),
            request={
                "amount_minor": amount.amount_minor,
                "currency": amount.currency,
                "destination": destination,
                "transfer_group": transfer_group,
                "source": source_ref,
            },
            key=idempotency_key,
            answer=lambda transfer: (
                {"transfer": transfer.id, "amount_minor": transfer.amount.amount_minor},
                transfer.id,
                "",
            ),
        )

    async def list_payouts(self, account_id: str, *, limit: int = 20) -> list[Payout]:
        parent = super()
        return await self.calls.run(
            "connect.list_payouts",
            lambda: parent.list_payouts(account_id, limit=limit),  # type: ignore[attr-defined]
            request={"account": account_id, "limit": limit},
            ref=account_id,
            answer=lambda payouts: ({"count": len(payouts), "payouts": [p.id for p in payouts][:20]}, "", ""),
        )

    async def ensure_customer(self, *, email: str, name: str, existing_ref: str, idempotency_key: str) -> str:
        parent = super()  # the e-mail and the name are personal data: not kept
        return await self.calls.run(
            "customer.ensure",
            lambda: parent.ensure_customer(  # type: ignore[attr-defined]
                email=email, name=name, existing_ref=existing_ref, idempotency_key=idempotency_key
            ),
            request={"existing": existing_ref},
            key=idempotency_key,
            answer=lambda customer: ({"customer": customer}, customer, ""),
        )

    # -- disputes (the evidence's text is the customer's personal data: only which fields were sent) -----------

    async def submit_dispute_evidence(
        self, dispute_id: str, evidence: DisputeEvidence, submit: bool = True
    ) -> DisputeSubmission:
        parent = super()
        fields = evidence.fields()
        return await self.calls.run(
            "dispute.submit_evidence",
            lambda: parent.submit_dispute_evidence(dispute_id, evidence, submit),  # type: ignore[attr-defined]
            request={"fields": sorted(fields), "chars": sum(len(v) for v in fields.values()), "submit": submit},
            ref=dispute_id,
            answer=lambda sent: ({"status": sent.status, "submitted": sent.submitted}, sent.dispute_id, ""),
        )


class RecordedSandbox(_Recorded, SandboxProvider):
    pass


class RecordedStripe(_Recorded, StripeProvider):
    pass


def recorded_sandbox(redis: Redis, store_id: uuid.UUID, **kwargs: Any) -> RecordedSandbox:
    provider = RecordedSandbox(redis, account=str(store_id), **kwargs)
    provider.calls = CallRecorder(redis, store_id, provider.name)
    return provider


def recorded_stripe(redis: Redis, store_id: uuid.UUID, secret_key: str, **kwargs: Any) -> RecordedStripe:
    provider = RecordedStripe(secret_key, **kwargs)
    provider.calls = CallRecorder(redis, store_id, provider.name)
    return provider


# -- the worker's side -------------------------------------------------------------------------------------------

_INSERT = """
INSERT INTO provider_calls (
    id, store_id, provider, operation, idempotency_key, provider_ref, outcome, error_code, latency_ms,
    correlation_id, request, response, called_at, created_at, updated_at
)
SELECT gen_random_uuid(), e.store_id, e.provider, e.operation, e.idempotency_key, e.provider_ref, e.outcome,
       e.error_code, e.latency_ms, e.correlation_id, e.request, e.response, e.called_at, now(), now()
FROM jsonb_to_recordset($1::jsonb) AS e(
    store_id uuid, provider text, operation text, idempotency_key text, provider_ref text, outcome text,
    error_code text, latency_ms int, correlation_id text, request jsonb, response jsonb, called_at timestamptz
)
WHERE EXISTS (SELECT 1 FROM stores WHERE stores.id = e.store_id)
"""


async def flush(engine: AsyncEngine, redis: Redis, *, batch: int = FLUSH_BATCH) -> int:
    """Move buffered entries into ``provider_calls``, oldest first, a batch per statement. Returns how many."""
    moved = 0
    while True:
        raw = await redis.rpop(BUFFER_KEY, batch)  # type: ignore[misc]
        if not raw:
            return moved
        entries = [json.loads(item) for item in raw]
        try:
            async with pg.connection(engine) as conn:
                await conn.execute(_INSERT, pg.jsonb(entries))
        except Exception:
            await redis.rpush(BUFFER_KEY, *reversed(raw))  # type: ignore[misc]  # back, in order, for the next run
            raise
        moved += len(entries)
        if len(raw) < batch:
            return moved


async def sweep(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Delete rows past :data:`RETENTION` (every store: the worker's session is in system scope)."""
    cutoff = (now or datetime.now(UTC)) - RETENTION
    result = await session.execute(delete(ProviderCall).where(ProviderCall.called_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class CallQuery:
    q: str = ""
    operation: str = ""
    outcome: str = ""

    def statement(self, limit: int = 100) -> Select[tuple[ProviderCall]]:
        query = select(ProviderCall).order_by(ProviderCall.called_at.desc()).limit(limit)
        q = self.q.strip()
        if q:
            query = query.where(
                or_(
                    ProviderCall.provider_ref == q,
                    ProviderCall.idempotency_key == q,
                    ProviderCall.correlation_id == q,
                )
            )
        if self.operation in OPERATIONS:
            query = query.where(ProviderCall.operation == self.operation)
        if self.outcome in OUTCOMES:
            query = query.where(ProviderCall.outcome == self.outcome)
        return query


async def search(session: AsyncSession, query: CallQuery, *, limit: int = 100) -> list[ProviderCall]:
    """The session's store's calls, newest first (a payment's reference, a key or a correlation id)."""
    return list(await session.scalars(query.statement(limit)))
