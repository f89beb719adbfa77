"""Which payment provider a store uses, built from the app's shared clients.

``provider_of`` is the one way in: the sandbox needs nothing more, Stripe needs the store's keys for its
payment mode (test or live), read and decrypted from ``provider_credentials`` when asked for.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
import weakref

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.errors import Conflict
from app.payments.credentials import StripeCredentials, load_credentials
from app.payments.provider import PaymentProvider
from app.stores.commerce import CommerceSettings
from app.stores.models import Store


class ProviderNotReady(Conflict):
    code = "provider_not_ready"
    title = "Payment provider not ready"


def sandbox_webhook_secret(settings: Settings) -> str:
    """The sandbox signs its webhooks with a secret derived from SECRET_KEY (never stored)."""
    return "whsec_" + hmac.new(settings.secret_key.encode(), b"sandbox-webhooks", hashlib.sha256).hexdigest()


# The sandbox provider holds nothing per payment: one per (Redis client, store, secret) serves every checkout.
_sandboxes: weakref.WeakKeyDictionary[Redis, dict[tuple[uuid.UUID, str], PaymentProvider]] = weakref.WeakKeyDictionary()


def provider_for(
    store: Store, redis: Redis, settings: Settings, *, credentials: StripeCredentials | None = None
) -> PaymentProvider:
    """The store's provider from what is at hand: the sandbox always; Stripe with its ``credentials``."""
    # Every call the provider makes is recorded in the provider call audit (app/reconciliation/provider_calls.py).
    from app.reconciliation.provider_calls import recorded_sandbox, recorded_stripe

    commerce = CommerceSettings.of(store.settings)
    if commerce.payment_provider == "sandbox":
        secret = sandbox_webhook_secret(settings)
        kept = _sandboxes.setdefault(redis, {})
        provider = kept.get((store.id, secret))
        if provider is None:
            if len(kept) >= 1_000:
                kept.clear()
            provider = kept[(store.id, secret)] = recorded_sandbox(redis, store.id, webhook_secret=secret)
        return provider
    if commerce.payment_provider == "stripe":
        if credentials is None:
            raise ProviderNotReady(
                f"Stripe has no keys for {commerce.payment_mode} mode yet: an owner adds them in Settings → Payments."
            )
        return recorded_stripe(
            redis,
            store.id,
            credentials.secret_key,
            webhook_secret=credentials.webhook_secret,
            api_base=settings.stripe_api_base,
            # A base other than Stripe's is localstripe (tests, local runs): leave out what it rejects.
            localstripe=settings.stripe_api_base is not None,
        )
    raise ProviderNotReady(f"The payment provider {commerce.payment_provider!r} is not available.")


async def provider_of(
    sessions: async_sessionmaker[AsyncSession], store: Store, redis: Redis, settings: Settings
) -> PaymentProvider:
    """The store's provider, with its keys read from the database when it needs them."""
    commerce = CommerceSettings.of(store.settings)
    credentials = None
    if commerce.payment_provider == "stripe":
        async with sessions() as session:
            credentials = await load_credentials(session, store.id, "stripe", commerce.payment_mode)
    return provider_for(store, redis, settings, credentials=credentials)
