"""Each kill switch's effect and its release: provider off at checkout (page and API), card tenders off at the POS,
webhook processing paused (stored and acknowledged, processed after release); the settings page engages and
releases with a reason, audited."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import cast

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.checkout.models import CheckoutAttempt
from app.config import Settings
from app.core import kill_switches as ks
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.payments.models import PaymentIntent
from app.payments.registry import provider_for
from app.payments.sandbox import SandboxProvider
from app.webhooks import processing
from app.webhooks.models import WebhookEventRow
from app.webhooks.processing import Deps, WebhookProcessor
from tests.integration.conftest import World, csrf_from, sign_in
from tests.integration.pos import add_register, signed_in
from tests.integration.shop import Shopper, make_shop, place_order

Client = AsyncTestClient[Litestar]


async def _switch(staff: Client, name: str, action: str, reason: str = "") -> int:
    page = await staff.get("/staff/settings/switches")
    response = await staff.post(
        f"/staff/settings/switches/{name}/{action}", data={"reason": reason, "_csrf_token": csrf_from(page.text)}
    )
    return response.status_code


async def test_provider_off_from_the_settings_page_stops_checkout_until_released(
    client: Client, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    staff_client = client  # one browser: the manager's tab and a shopper's (the same app, one test client)
    shop = await make_shop(world)
    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(staff_client, manager.email)

    # A reason is required (inline error, nothing engaged).
    assert await _switch(staff_client, "provider_off", "engage", "") == 422
    async with sessions() as session:
        assert not await ks.is_engaged(session, ks.Switch.PROVIDER_OFF, shop.store.id)
    assert await _switch(staff_client, "provider_off", "engage", "Stripe incident") == 303
    page = await staff_client.get("/staff/settings/switches")
    assert "Stripe incident" in page.text and 'data-testid="release"' in page.text

    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("MUG-1", 1)
    snapshot_id = await shopper.quote()
    review = await client.get(f"/s/{shop.store.slug}/checkout/{snapshot_id}")
    assert 'data-testid="payments-off"' in review.text and 'data-testid="pay-form"' not in review.text
    # A form posted from an older page is refused too, and nothing is charged.
    refused = await client.post(
        f"/s/{shop.store.slug}/checkout/{snapshot_id}/pay",
        data={
            "card_number": "4242424242424242",
            "card_expiry": "12/34",
            "card_cvc": "123",
            "idempotency_key": uuid.uuid4().hex,
            "amount_minor": "1400",
            "_csrf_token": shopper.csrf,
        },
    )
    assert refused.status_code == 503 and "Card payments are switched off" in refused.text
    async with sessions() as session:
        bind_store(session, shop.store.id)
        assert await session.scalar(select(func.count()).select_from(CheckoutAttempt)) == 0
        assert await session.scalar(select(func.count()).select_from(PaymentIntent)) == 0

    assert await _switch(staff_client, "provider_off", "release") == 303
    paid = await shopper.pay(snapshot_id)
    assert paid.status_code == 303 and "/orders/" in paid.headers["location"]
    history = await staff_client.get("/staff/settings/switches")
    assert history.text.count("provider off") >= 2  # engaged and released, in the history


async def test_provider_off_refuses_the_api_completion_with_503(
    client: Client, world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    from tests.integration.conftest import bearer, issue_token

    store = await world.store()
    token = await issue_token(world, store)
    async with sessions() as session:
        async with session.begin():
            await ks.engage(session, ks.Switch.PROVIDER_OFF, store.id, principal=None, reason="test")
        await ks.refresh_mirror(session, redis)
    answer = await client.post(
        "/api/v1/checkout/complete",
        json={
            "snapshot_id": str(uuid.uuid4()),
            "amount_minor": 1400,
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        },
        headers={**bearer(token), "idempotency-key": "k1"},
    )
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("/payments_off")


async def test_card_tenders_off_refuses_the_reader_until_released(
    client: Client, world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    store = await world.store()
    cashier = await world.staff(store, Role.CASHIER)
    register_id = await add_register(sessions, store)
    headers = await signed_in(client, cashier)
    body = {"register_id": str(register_id), "client_sale_id": str(uuid.uuid4()), "amount_minor": 1200}
    async with sessions() as session:
        async with session.begin():
            await ks.engage(session, ks.Switch.CARD_TENDERS_OFF, store.id, principal=None, reason="reader fault")
        await ks.refresh_mirror(session, redis)
    refused = await client.post("/pos/api/card-payments", json=body, headers=headers)
    assert refused.status_code == 503, refused.text
    assert refused.json()["type"].endswith("/card_tenders_off")
    assert "take cash" in refused.json()["detail"]
    async with sessions() as session:
        async with session.begin():
            await ks.release(session, ks.Switch.CARD_TENDERS_OFF, store.id, principal=None)
        await ks.refresh_mirror(session, redis)
    reached = await client.post("/pos/api/card-payments", json=body, headers=headers)
    assert reached.status_code == 409 and "has no card reader" in reached.json()["detail"]  # past the switch


@pytest.mark.parametrize("scope", ["store", "global"])
async def test_webhooks_paused_are_stored_and_acknowledged_then_processed_after_release(
    client: Client,
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    scope: str,
) -> None:
    monkeypatch.setattr(processing, "PAUSE_RECHECK", timedelta(0))
    shop = await make_shop(world)
    order = await place_order(sessions, shop, redis, settings)
    provider = cast(SandboxProvider, provider_for(shop.store, redis, settings))
    store_id = shop.store.id if scope == "store" else None
    async with sessions() as session:
        async with session.begin():
            await ks.engage(session, ks.Switch.WEBHOOKS_PAUSED, store_id, principal=None, reason="incident")
        await ks.refresh_mirror(session, redis)
        bind_store(session, shop.store.id)
        intent = await session.scalar(select(PaymentIntent).where(PaymentIntent.order_id == order.id))
        assert intent is not None
    # A refund made at the provider: its event arrives while paused.
    from app.core.money import Money
    from app.payments.provider import RefundRequest

    result = await provider.refund(RefundRequest(intent.provider_ref, Money(400, "EUR"), "dash-refund"))
    payload, signature = provider.event_for(result, "payment_intent.succeeded")
    ack = await client.post("/webhooks/sandbox", content=payload, headers={"stripe-signature": signature})
    assert ack.status_code == 200 and ack.json()["duplicate"] is False  # stored and acknowledged
    processor = WebhookProcessor(Deps(engine=sessions.kw["bind"], sessions=sessions, redis=redis, settings=settings))
    await processor.drain()
    async with sessions() as session:
        row = await session.scalar(select(WebhookEventRow).where(WebhookEventRow.event_id == ack.json()["received"]))
        assert row is not None and row.status in ("received", "failed") and row.attempts == 0
        bind_store(session, shop.store.id)
        assert (await session.get(PaymentIntent, intent.id)).refunded_minor == 0  # type: ignore[union-attr]

    async with sessions() as session:
        async with session.begin():
            await ks.release(session, ks.Switch.WEBHOOKS_PAUSED, store_id, principal=None)
        await ks.refresh_mirror(session, redis)
    assert await processor.drain() == 1
    async with sessions() as session:
        row = await session.scalar(select(WebhookEventRow).where(WebhookEventRow.event_id == ack.json()["received"]))
        assert row is not None and row.status == "processed" and row.attempts == 1
        bind_store(session, shop.store.id)
        assert (await session.get(PaymentIntent, intent.id)).refunded_minor == 400  # type: ignore[union-attr]
