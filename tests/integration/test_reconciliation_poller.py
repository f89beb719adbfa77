"""The status poller: a delayed payment whose webhook the sandbox dropped is resolved by the poller, once, and the
webhook that arrives late changes nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, cast

from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cart.services import CartService
from app.checkout.quotes import QuoteRequest, QuoteService
from app.checkout.saga import CheckoutSaga, PaymentInput
from app.config import Settings
from app.core import pg
from app.core.audit import AuditEntry
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.payments.models import PaymentIntent, PaymentTransaction
from app.payments.provider import CardDetails, PaymentProvider
from app.payments.registry import provider_for
from app.payments.sandbox import SandboxProvider
from app.reconciliation.poller import COUNTER_KEY, poll_stuck
from app.stores.models import Store
from app.webhooks.models import WebhookEventRow
from app.webhooks.processing import Deps, process_event
from tests.integration.conftest import World
from tests.integration.shop import Shop, make_shop
from workers import tasks

NOW = timedelta(0)  # tests poll with no waiting threshold


async def _pending_checkout(sessions: async_sessionmaker[AsyncSession], shop: Shop, provider: PaymentProvider) -> str:
    async with sessions() as session, session.begin():
        carts = CartService(session, shop.store.id, shop.store.currency)
        cart = await carts.get_or_create(None)
        await carts.add(cart, shop.variants["MUG-1"], 1)
        snapshot = await QuoteService(await pg.writer(session), shop.store).create(
            QuoteRequest(cart_token=cart.token, email="ann@example.com")
        )
    card = CardDetails("4000000000000077", 12, 2034, "123")  # pending: a delayed success
    outcome = await CheckoutSaga(sessions, shop.store, provider).complete(
        snapshot.id, uuid.uuid4().hex, PaymentInput(card=card), fingerprint="f"
    )
    assert outcome.state == "awaiting_payment"
    async with sessions() as session:
        bind_store(session, shop.store.id)
        intent = await session.scalar(select(PaymentIntent))
        assert intent is not None and intent.status == "pending"
        return intent.provider_ref


async def _counts(sessions: async_sessionmaker[AsyncSession], store_id: uuid.UUID) -> tuple[int, int, int]:
    async with sessions() as session:
        bind_store(session, store_id)
        orders = await session.scalar(select(func.count()).select_from(Order))
        ledger = await session.scalar(select(func.count()).select_from(PaymentTransaction))
        intents = await session.scalar(select(func.count()).select_from(PaymentIntent))
    return int(orders or 0), int(ledger or 0), int(intents or 0)


async def test_poller_resolves_a_dropped_webhook_once_and_the_late_webhook_changes_nothing(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    shop = await make_shop(world)
    provider = cast(SandboxProvider, provider_for(shop.store, redis, settings))
    ref = await _pending_checkout(sessions, shop, provider)

    async def provider_of(store: Store) -> PaymentProvider:
        return provider_for(store, redis, settings)

    # Not stuck yet by the real thresholds: the poller leaves a fresh payment to its webhook.
    assert await poll_stuck(sessions, redis, provider_of) == []
    # Still pending at the provider: polled, nothing to record.
    [early] = await poll_stuck(sessions, redis, provider_of, pending_after=NOW)
    assert early.outcome == "unchanged"
    assert await _counts(sessions, shop.store.id) == (0, 1, 1)

    # The bank settles it, and the sandbox loses the webhook on purpose.
    await provider.drop_next_webhook(ref)
    ctx: Any = {"redis": redis, "settings": settings}
    assert await tasks.sandbox_settle(ctx, provider_ref=ref) == "dropped"
    assert (await provider.get_transaction(ref)).status == "captured"
    assert await _counts(sessions, shop.store.id) == (0, 1, 1)  # nobody told Till

    [resolved] = await poll_stuck(sessions, redis, provider_of, pending_after=NOW)
    assert (resolved.provider_ref, resolved.outcome) == (ref, "resumed")
    assert "completed" in resolved.detail
    after_poll = await _counts(sessions, shop.store.id)
    assert after_poll[0] == 1  # one order
    async with sessions() as session:
        bind_store(session, shop.store.id)
        intent = await session.scalar(select(PaymentIntent))
        assert intent is not None and intent.status == "captured" and intent.order_id is not None
        order = await session.get(Order, intent.order_id)
        assert order is not None and order.payment_status == "paid"
        audited = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "payment.poller_resolved")))
        assert [(a.target_id, a.actor, a.details["source"]) for a in audited] == [(ref, "poller", "poller")]

    # Nothing left to poll; a second run changes nothing.
    assert await poll_stuck(sessions, redis, provider_of, pending_after=NOW) == []

    # The late webhook arrives: stored, acknowledged, processed, and it changes nothing.
    payload, signature = provider.event_for(await provider.get_transaction(ref), "payment_intent.succeeded")
    late = await client.post("/webhooks/sandbox", content=payload, headers={"stripe-signature": signature})
    assert late.status_code == 200 and late.json()["duplicate"] is False
    async with sessions() as session:
        row_id = await session.scalar(
            select(WebhookEventRow.id).where(WebhookEventRow.event_id == late.json()["received"])
        )
    assert row_id is not None
    deps = Deps(engine=sessions.kw["bind"], sessions=sessions, redis=redis, settings=settings)
    outcome = await process_event(deps, row_id)
    assert outcome == f"unchanged: payment {ref} already captured"
    assert await _counts(sessions, shop.store.id) == after_poll
    counts = {k.decode(): int(v) for k, v in (await redis.hgetall(COUNTER_KEY)).items()}  # type: ignore[misc]
    assert counts == {"unchanged": 1, "resumed": 1}


async def test_poller_records_a_capture_it_finds_with_the_poller_as_source(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> None:
    """An order's own payment (no checkout waiting) stuck pending: the ledger row the poller adds says ``poller``."""
    shop = await make_shop(world)
    provider = cast(SandboxProvider, provider_for(shop.store, redis, settings))
    ref = await _pending_checkout(sessions, shop, provider)
    await provider.settle_pending(ref)
    # The checkout gave up on it meanwhile (its attempt closed): the payment is an orphan the poller must record.
    async with pg.transaction(sessions.kw["bind"]) as conn:
        await conn.execute("UPDATE checkout_attempts SET state = 'failed' WHERE store_id = $1", shop.store.id)

    async def provider_of(store: Store) -> PaymentProvider:
        return provider_for(store, redis, settings)

    [resolved] = await poll_stuck(sessions, redis, provider_of, pending_after=NOW)
    assert resolved.outcome == "synced", resolved
    async with sessions() as session:
        bind_store(session, shop.store.id)
        rows = list(await session.scalars(select(PaymentTransaction).order_by(PaymentTransaction.created_at)))
        assert [(r.kind, r.status, r.actor) for r in rows][-1] == ("capture", "captured", "poller")
    assert await poll_stuck(sessions, redis, provider_of, pending_after=NOW) == []
