"""Which payment provider a store uses, built from the app's shared clients."""

from __future__ import annotations

import hashlib
import hmac

from redis.asyncio import Redis

from app.config import Settings
from app.payments.provider import PaymentProvider
from app.payments.sandbox import SandboxProvider
from app.stores.commerce import CommerceSettings
from app.stores.models import Store


def sandbox_webhook_secret(settings: Settings) -> str:
    """The sandbox signs its webhooks with a secret derived from SECRET_KEY (never stored)."""
    return "whsec_" + hmac.new(settings.secret_key.encode(), b"sandbox-webhooks", hashlib.sha256).hexdigest()


def provider_for(store: Store, redis: Redis, settings: Settings) -> PaymentProvider:
    name = CommerceSettings.of(store.settings).payment_provider
    if name != "sandbox":
        raise NotImplementedError(f"payment provider {name!r} is not available yet")
    return SandboxProvider(redis, webhook_secret=sandbox_webhook_secret(settings))
