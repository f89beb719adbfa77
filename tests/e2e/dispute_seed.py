"""Run with the live server's environment: the cardholder disputes order ``#<number>`` of the demo store (the
sandbox signs the created event, which is applied as the webhook worker would); prints the dispute's id."""

from __future__ import annotations

import asyncio
import sys

from redis.asyncio import Redis
from sqlalchemy import select

import app.models  # noqa: F401  (every mapper, for the joins)
from app.config import load_settings
from app.core.db import create_engine, dispose, session_maker
from app.core.money import Money
from app.core.tenancy import system_scope
from app.disputes.services import apply_dispute_event
from app.orders.models import Order
from app.payments.models import PaymentIntent
from app.payments.registry import sandbox_webhook_secret
from app.payments.sandbox import SandboxProvider
from app.stores.models import Store


async def main(number: int) -> None:
    settings = load_settings()
    assert settings.database_url and settings.redis_url
    engine = create_engine(settings.database_url)
    redis = Redis.from_url(settings.redis_url)
    sessions = session_maker(engine)
    try:
        async with sessions() as session:
            system_scope(session)
            store, intent = (
                await session.execute(
                    select(Store, PaymentIntent)
                    .join(Order, Order.store_id == Store.id)
                    .join(PaymentIntent, PaymentIntent.order_id == Order.id)
                    .where(Store.slug == "demo", Order.number == number)
                )
            ).one()
        sandbox = SandboxProvider(redis, webhook_secret=sandbox_webhook_secret(settings))
        signed = await sandbox.open_dispute(intent.provider_ref, Money(intent.captured_minor, intent.currency))
        dispute = await apply_dispute_event(sessions, store, sandbox, sandbox.verify_webhook(*signed))
        assert dispute is not None
        print(dispute.id)
    finally:
        await redis.aclose()
        await dispose(engine)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
