"""Verify a provider webhook on its raw body, then let the saga catch up with the payment it names."""

from __future__ import annotations

from typing import Any

import structlog
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.checkout.models import CheckoutAttempt
from app.checkout.saga import CheckoutSaga
from app.config import Settings
from app.core.errors import TillError, ValidationFailed
from app.core.tenancy import system_scope
from app.payments.models import PaymentIntent
from app.payments.registry import sandbox_webhook_secret
from app.payments.sandbox import SandboxProvider
from app.payments.signing import InvalidSignature
from app.stores.models import Store

log = structlog.get_logger(__name__)


class WebhookRejected(TillError):
    status_code = 400
    title = "Webhook rejected"
    code = "webhook_rejected"


PAYMENT_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled")


async def receive(
    provider_name: str,
    payload: bytes,
    signature: str,
    *,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> dict[str, Any]:
    if provider_name != "sandbox":
        raise ValidationFailed(f"Unknown provider {provider_name!r}.")
    provider = SandboxProvider(redis, webhook_secret=sandbox_webhook_secret(settings))
    try:
        event = provider.verify_webhook(payload, signature)
    except (InvalidSignature, ValueError) as exc:
        log.warning("webhook.rejected", provider=provider_name, reason=str(exc))
        raise WebhookRejected(f"Webhook rejected: {exc}", fields={"signature": str(exc)}) from exc
    if event.type not in PAYMENT_EVENTS:
        return {"received": event.id, "handled": False}
    ref = str(event.data.get("object", {}).get("id", ""))
    async with sessions() as session:
        system_scope(session)
        row = (
            await session.execute(
                select(Store, CheckoutAttempt.id)
                .join(PaymentIntent, PaymentIntent.store_id == Store.id)
                .join(CheckoutAttempt, CheckoutAttempt.payment_intent_id == PaymentIntent.id)
                .where(PaymentIntent.provider_ref == ref, PaymentIntent.provider == provider_name)
            )
        ).first()
    if row is None:
        return {"received": event.id, "handled": False}
    store, attempt_id = row
    outcome = await CheckoutSaga(sessions, store, provider).resume(attempt_id)
    log.info("webhook.processed", event_id=event.id, type=event.type, attempt_id=str(attempt_id), state=outcome.state)
    return {"received": event.id, "handled": True, "state": outcome.state}
