"""Refunds of what stored value paid (issue 15): to the original gift card first (never more than it paid, the rest
is the card's), or to the customer's store credit by the store's setting; problem+json for bad input."""

from __future__ import annotations

import uuid

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.checkout.saga import CheckoutSaga, PaymentInput
from app.config import Settings
from app.core.encryption import install_keyring
from app.core.rbac import Role
from app.core.tenancy import bind_store, system_scope
from app.customers.models import Customer
from app.orders.models import Order
from app.payments.provider import CardDetails
from app.payments.registry import provider_for
from app.stored_value.instruments import TenderRequest
from app.stored_value.ledger import Ledger
from app.stored_value.services import GiftCardService, StoreCreditService
from tests.integration.conftest import World, bearer, issue_token
from tests.integration.shop import make_shop
from tests.integration.test_checkout_saga import _quote

Sessions = async_sessionmaker[AsyncSession]
VISA = CardDetails("4242424242424242", 12, 2034, "123")


@pytest.fixture(autouse=True)
def keyring(settings: Settings) -> None:
    install_keyring(settings)


async def test_refunds_go_to_the_gift_card_first_then_as_the_store_says(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    async with sessions() as session, session.begin():
        issued = await GiftCardService(session, shop.store.id).issue(1000, "EUR", principal=None)
        customer = Customer(store_id=shop.store.id, email="a@example.com", name="Ann")
        session.add(customer)
    card_id, code = issued[0].account.id, issued[0].code
    snapshot = await _quote(sessions, shop, {"MUG-1": 2})  # 28.00
    saga = CheckoutSaga(sessions, shop.store, provider_for(shop.store, redis, settings))
    payment = PaymentInput(card=VISA, tenders=(TenderRequest("gift_card", code=code),))
    outcome = await saga.complete(snapshot.id, "k", payment, fingerprint="f")
    assert outcome.order is not None
    order_id = outcome.order.id
    async with sessions() as session, session.begin():
        system_scope(session)
        await session.execute(update(Order).where(Order.id == order_id).values(customer_id=customer.id))
    auth = bearer(await issue_token(world, shop.store, Role.MANAGER))
    url = f"/api/v1/admin/orders/{order_id}/stored-value-refunds"
    for body, field in (
        ({"amount_minor": 0, "reason": "x"}, "amount_minor"),
        ({"amount_minor": 100, "reason": " "}, "reason"),
        ({"amount_minor": 100, "reason": "x", "destination": "cash"}, "destination"),
        ({"amount_minor": 99_999, "reason": "x"}, "amount_minor"),
    ):
        bad = await client.post(url, json=body, headers=auth)
        assert bad.status_code == 422 and field in bad.json()["fields"], (body, bad.text)
    first = await client.post(url, json={"amount_minor": 1500, "reason": "broken mug"}, headers=auth)
    assert first.status_code == 201, first.text
    assert first.json() == {"refunded_minor": 1000, "left_minor": 500, "destination": "original",
                            "parts": [["gift_card", 1000]]}  # fmt: skip
    again = await client.post(url, json={"amount_minor": 300, "reason": "again"}, headers=auth)
    assert again.json()["refunded_minor"] == 0 and again.json()["left_minor"] == 300  # never more than it paid
    async with sessions() as session:
        bind_store(session, shop.store.id)
        check = await Ledger(session, shop.store.id).verify(card_id)
    assert (check["balance_minor"], check["drift"]) == (1000, 0)
    credit = await client.post(
        url, json={"amount_minor": 400, "reason": "late", "destination": "store_credit"}, headers=auth
    )
    assert credit.json()["refunded_minor"] == 400
    async with sessions() as session:
        account = await StoreCreditService(session, shop.store.id).of_customer(customer.id)
    assert account is not None and account.balance_minor == 400
    missing = await client.post(
        f"/api/v1/admin/orders/{uuid.uuid4()}/stored-value-refunds", json={"amount_minor": 1, "reason": "x"},
        headers=auth,
    )  # fmt: skip
    assert missing.status_code == 404


async def test_a_cancelled_order_gives_its_gift_card_back_once_through_the_worker(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    from typing import Any

    from sqlalchemy import select

    from app.core.outbox import OutboxEvent
    from app.orders.cancellation import OrderCancellation
    from app.orders.services import Actor
    from app.stored_value.jobs import return_stored_value

    shop = await make_shop(world)
    async with sessions() as session, session.begin():
        issued = await GiftCardService(session, shop.store.id).issue(1000, "EUR", principal=None)
    card_id, code = issued[0].account.id, issued[0].code
    snapshot = await _quote(sessions, shop, {"MUG-1": 2})
    saga = CheckoutSaga(sessions, shop.store, provider_for(shop.store, redis, settings))
    outcome = await saga.complete(
        snapshot.id, "k", PaymentInput(card=VISA, tenders=(TenderRequest("gift_card", code=code),)), fingerprint="f"
    )
    assert outcome.order is not None
    actor = Actor(Role.MANAGER, "Mia", "staff")
    await OrderCancellation(sessions, shop.store.id, saga.provider).cancel(outcome.order.id, actor=actor, reason="x")
    async with sessions() as session:
        system_scope(session)
        rows = await session.scalars(
            select(OutboxEvent).where(
                OutboxEvent.aggregate_id == str(outcome.order.id), OutboxEvent.type == "order.status_changed"
            )
        )
        events = [
            {"id": r.id, "store_id": str(r.store_id), "type": r.type, "aggregate_id": r.aggregate_id,
             "payload": r.payload}
            for r in rows
        ]  # fmt: skip
    ctx: Any = {"sessions": sessions}
    assert [await return_stored_value(ctx, event=e) for e in events] == ["returned 1000"]
    assert [await return_stored_value(ctx, event=e) for e in events] == ["skipped"]  # once per event
    async with sessions() as session:
        bind_store(session, shop.store.id)
        check = await Ledger(session, shop.store.id).verify(card_id)
    assert (check["balance_minor"], check["drift"]) == (1000, 0)
