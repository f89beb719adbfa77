"""Task functions: tiny, and they call app services, never SQL of their own."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import structlog

from app.checkout.saga import recover_stalled
from app.core import pg
from app.core.errors import TillError
from app.core.outbox import register_consumer
from app.core.tenancy import system_scope
from app.inventory.services import release_expired_reservations
from app.notifications.services import MESSAGE_QUEUED, EmailDelivery
from app.payments import followups
from app.payments.operations import PaymentOperations, stale_claims
from app.payments.provider import PaymentProvider, ProviderResult
from app.payments.registry import provider_of, sandbox_webhook_secret
from app.payments.sandbox import SandboxProvider
from app.payments.services import is_success
from app.pos.refunds import resume_stale_refund, stale_refunds
from app.promotions.services import PromotionService
from app.stored_value.ledger import expire_holds
from app.stores.models import Store
from app.webhooks.receipts import exactly_once
from workers.context import TillContext

log = structlog.get_logger(__name__)


async def sweep_idempotency_keys(ctx: TillContext) -> int:
    removed = await ctx["idempotency"].sweep_expired()
    log.info("idempotency.swept", removed=removed)
    return removed


async def sandbox_settle(ctx: TillContext, *, provider_ref: str, webhook_url: str = "") -> str:
    """The sandbox bank confirms a delayed payment and POSTs its signed webhook to our own endpoint, the
    same path a provider's webhook takes (verify, store once, process in a job). A failed POST raises, so
    SAQ retries; the event id is derived from the payment's state, so a repeat is deduplicated."""
    provider = _sandbox(ctx)
    return await _send_sandbox_event(ctx, provider, await provider.settle_pending(provider_ref), webhook_url)


async def sandbox_notify(ctx: TillContext, *, provider_ref: str, webhook_url: str = "") -> str:
    """The sandbox bank tells Till where a payment stands after its 3-D Secure challenge (a payment no checkout
    waits for: an order's, authorised through the API), by the same signed webhook path."""
    provider = _sandbox(ctx)
    return await _send_sandbox_event(ctx, provider, await provider.get_transaction(provider_ref), webhook_url)


def _sandbox(ctx: TillContext) -> SandboxProvider:
    return SandboxProvider(ctx["redis"], webhook_secret=sandbox_webhook_secret(ctx["settings"]))


async def _send_sandbox_event(ctx: TillContext, provider: SandboxProvider, result: ProviderResult, url: str) -> str:
    """POST the signed event about ``result`` to our own webhook endpoint; its id on our side."""
    kind = "payment_intent.succeeded" if is_success(result) else "payment_intent.payment_failed"
    if await provider.take_dropped_webhook(result.provider_ref):  # a test control: the webhook is lost
        log.warning("sandbox.webhook_dropped", provider_ref=result.provider_ref, kind=kind)
        return "dropped"
    payload, signature = provider.event_for(result, kind)
    url = url or ctx["settings"].public_url + "/webhooks/sandbox"
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            url, content=payload, headers={"stripe-signature": signature, "content-type": "application/json"}
        )
    response.raise_for_status()
    return str(response.json().get("received", ""))


async def recover_checkouts(ctx: TillContext) -> int:
    """Finish or compensate checkouts stuck mid-saga; release reservations nobody will use."""
    redis, settings = ctx["redis"], ctx["settings"]
    sessions = ctx["sessions"]
    outcomes = await recover_stalled(sessions, lambda store: provider_of(sessions, store, redis, settings))
    async with ctx["sessions"]() as session, session.begin():
        system_scope(session)
        released = await release_expired_reservations(session)
        holds = await expire_holds(await pg.writer(session))  # stored value held past its expiry (app/stored_value)
    log.info("checkouts.recovered", attempts=len(outcomes), reservations_released=released, holds_released=holds)
    return len(outcomes)


async def settle_payment_operations(ctx: TillContext) -> int:
    """Finish captures, voids and refunds whose provider answer never arrived: ask the provider, record it."""
    redis, settings, sessions = ctx["redis"], ctx["settings"], ctx["sessions"]
    async with sessions() as session:
        claims = await stale_claims(session)
    settled = 0
    for store_id, intent_id in claims:
        async with sessions() as session:
            store = await session.get(Store, store_id)
        if store is None:
            continue
        try:
            provider = await provider_of(sessions, store, redis, settings)
            outcome = await PaymentOperations(sessions, store_id, provider).settle(intent_id)
        except TillError as exc:  # the provider refused it: recorded as failed, the claim released
            log.warning("payments.settle_refused", intent_id=str(intent_id), reason=exc.detail)
            continue
        settled += outcome is not None and outcome.state == "done"
    log.info("payments.settled", claims=len(claims), settled=settled)
    return settled


async def resume_pos_refunds(ctx: TillContext) -> int:
    """Finish POS refunds whose process died during the provider call (app/pos/refunds.py)."""
    sessions = ctx["sessions"]
    async with sessions() as session:
        stale = await stale_refunds(session)
    finished = 0
    for store_id, refund_id in stale:
        async with sessions() as session:
            store = await session.get(Store, store_id)
        if store is not None:
            outcome = await resume_stale_refund(sessions, ctx["redis"], store, refund_id)
            finished += outcome in ("done", "failed")
    log.info("pos.refunds_resumed", stale=len(stale), finished=finished)
    return finished


async def _store_and_provider(ctx: TillContext, store_id: str) -> tuple[Store, PaymentProvider] | None:
    async with ctx["sessions"]() as session:
        store = await session.get(Store, uuid.UUID(store_id))
    if store is None:
        return None
    return store, await provider_of(ctx["sessions"], store, ctx["redis"], ctx["settings"])


@exactly_once
async def capture_on_fulfilment(ctx: TillContext, *, event: dict[str, Any]) -> str:
    """order.status_changed: a store that captures at fulfilment captures when the order is handed over."""
    payload = event.get("payload") or {}
    if payload.get("axis") != "fulfilment" or payload.get("to") not in followups.HANDED_OVER:
        return "skipped"
    found = await _store_and_provider(ctx, event["store_id"])
    if found is None:
        return "skipped"
    outcome = await followups.capture_on_fulfilment(ctx["sessions"], *found, uuid.UUID(event["aggregate_id"]))
    return "skipped" if outcome is None else outcome.state


@exactly_once
async def transfer_to_store(ctx: TillContext, *, event: dict[str, Any]) -> str:
    """order.placed / order.payment_changed: Connect separate charges send the store its share once captured."""
    found = await _store_and_provider(ctx, event["store_id"])
    if found is None:
        return "skipped"
    transfer = await followups.transfer_to_store(ctx["sessions"], *found, uuid.UUID(event["aggregate_id"]))
    return transfer or "skipped"


@exactly_once
async def deliver_email(ctx: TillContext, *, event: dict[str, Any]) -> str:
    """message.queued: send one e-mail (SMTP, or the dev outbox folder). A failed attempt is recorded and raised,
    so SAQ tries again with backoff; the last attempt marks the message failed."""
    job = ctx.get("job")
    return await EmailDelivery(ctx["sessions"], ctx["settings"]).deliver(
        uuid.UUID(event["aggregate_id"]), final_attempt=job is None or not job.retryable
    )


@exactly_once
async def return_promotion_uses(ctx: TillContext, *, event: dict[str, Any]) -> str:
    """order.payment_changed to refunded / order.status_changed to cancelled: a whole order's money went back, so
    its promotion uses count again when the store says so (its promotions page)."""
    payload = event.get("payload") or {}
    refunded = event.get("type") == "order.payment_changed" and payload.get("to") == "refunded"
    cancelled = payload.get("axis") == "order" and payload.get("to") == "cancelled"
    if not (refunded or cancelled):
        return "skipped"
    async with ctx["sessions"]() as session, session.begin():
        promotions = PromotionService(session, uuid.UUID(event["store_id"]))
        returned = await promotions.give_back(uuid.UUID(event["aggregate_id"]))
    return f"returned {returned}" if returned else "skipped"


async def redeliver_stalled_email(ctx: TillContext) -> int:
    """Messages whose delivery job was lost, or whose worker died while sending: deliver them now."""
    return await EmailDelivery(ctx["sessions"], ctx["settings"]).redeliver_stalled()


register_consumer("order.status_changed", "capture_on_fulfilment")
register_consumer(MESSAGE_QUEUED, "deliver_email")
register_consumer("order.placed", "transfer_to_store")
register_consumer("order.payment_changed", "transfer_to_store")
register_consumer("order.payment_changed", "return_promotion_uses")
register_consumer("order.status_changed", "return_promotion_uses")
