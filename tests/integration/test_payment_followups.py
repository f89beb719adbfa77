"""Worker jobs that follow order events: capture at fulfilment, and Connect transfers of the store's share."""

from __future__ import annotations

from typing import Any, cast

from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.outbox import OutboxEvent, consumers_of
from app.core.rbac import Role
from app.core.tenancy import system_scope
from app.orders.models import Order
from app.payments.registry import provider_for
from app.payments.sandbox import SandboxProvider
from tests.integration.conftest import World, bearer, issue_token
from tests.integration.shop import Shop, make_shop, place_order
from tests.integration.test_payment_operations import _consistent, _paid_order, _set
from tests.integration.test_payment_panel import _intent_of
from workers import tasks
from workers.context import TillContext


async def _events(sessions: async_sessionmaker[AsyncSession], order: Order, type_: str) -> list[dict[str, Any]]:
    """The order's outbox rows of one type, shaped as the relay hands them to a job."""
    async with sessions() as session:
        system_scope(session)
        rows = await session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.aggregate_id == str(order.id), OutboxEvent.type == type_)
            .order_by(OutboxEvent.id)
        )
        return [
            {
                "id": row.id,
                "seq": 0,
                "store_id": str(row.store_id),
                "type": row.type,
                "aggregate_type": row.aggregate_type,
                "aggregate_id": row.aggregate_id,
                "payload": row.payload,
                "correlation_id": None,
            }
            for row in rows
        ]


def test_the_jobs_consume_the_order_events() -> None:
    assert "capture_on_fulfilment" in consumers_of("order.status_changed")
    assert "transfer_to_store" in consumers_of("order.payment_changed")
    assert "transfer_to_store" in consumers_of("order.placed")


async def test_a_store_that_captures_at_fulfilment_captures_when_the_order_is_fulfilled(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    shop, order, intent = await _paid_order(world, sessions, redis, settings, policy="at_fulfilment")
    ctx = cast(TillContext, {"redis": redis, "settings": settings, "sessions": sessions})
    auth = bearer(await issue_token(world, shop.store, Role.STAFF))
    accepted = await client.patch(f"/api/v1/orders/{order.id}/status", json={"status": "accepted"}, headers=auth)
    assert accepted.status_code == 200
    [event] = await _events(sessions, order, "order.status_changed")
    assert await tasks.capture_on_fulfilment(ctx, event=event) == "skipped"  # not handed over yet
    assert (await _consistent(sessions, intent.id)).captured_minor == 0
    fulfilled = await client.patch(
        f"/api/v1/orders/{order.id}/status", json={"axis": "fulfilment", "status": "fulfilled"}, headers=auth
    )
    assert fulfilled.status_code == 200
    event = (await _events(sessions, order, "order.status_changed"))[-1]
    assert await tasks.capture_on_fulfilment(ctx, event=event) == "done"
    assert await tasks.capture_on_fulfilment(ctx, event=event) == "skipped"  # a repeated event
    after = await _consistent(sessions, intent.id)
    assert (after.captured_minor, after.status) == (order.total_minor, "captured")
    async with sessions() as session:
        system_scope(session)
        assert (await session.get(Order, order.id)).payment_status == "paid"  # type: ignore[union-attr]
    [changed] = await _events(sessions, order, "order.payment_changed")
    assert changed["payload"]["operation"] == "capture"


async def test_a_store_that_captures_at_checkout_is_not_captured_again(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> None:
    _, order, intent = await _paid_order(world, sessions, redis, settings, policy="at_checkout")
    ctx = cast(TillContext, {"redis": redis, "settings": settings, "sessions": sessions})
    event = {
        "store_id": str(intent.store_id),
        "aggregate_id": str(order.id),
        "payload": {"axis": "fulfilment", "to": "fulfilled"},
    }
    assert await tasks.capture_on_fulfilment(ctx, event=event) == "skipped"
    assert (await _consistent(sessions, intent.id)).captured_minor == order.total_minor  # once, at checkout


async def test_every_checkout_payment_carries_its_fees(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    shop = await make_shop(world)
    await _set(sessions, shop.store, platform_fee_bps=200, platform_fee_fixed_minor=10)
    order = await place_order(sessions, shop, redis, settings, {"MUG-1": 2, "BEAN-1": 1})  # 39.90
    auth = bearer(await issue_token(world, shop.store, Role.MANAGER))
    ledger = (await client.get(f"/api/v1/admin/orders/{order.id}/payments/", headers=auth)).json()
    [intent] = ledger["intents"]
    processing = (3990 * 150 + 5000) // 10000 + 25  # 1.5 % + 0.25, half up: 60 + 25
    platform = (3990 * 200 + 5000) // 10000 + 10  # 2 % + 0.10: 80 + 10
    assert (intent["fees"]["processing_fee_minor"], intent["fees"]["platform_fee_minor"]) == (processing, platform)
    assert intent["fees"]["net_minor"] == 3990 - processing - platform
    refund = await client.post(
        f"/api/v1/admin/orders/{order.id}/payments/{intent['id']}/refund",
        json={"amount_minor": 1995, "reason": "half"},
        headers={**auth, "Idempotency-Key": "half-refund"},
    )
    fees = refund.json()["payments"]["intents"][0]["fees"]
    assert fees["platform_fee_refunded_minor"] == platform * 1995 // 3990  # the platform gives back its share
    assert fees["net_minor"] == 3990 - 1995 - processing - (platform - platform * 1995 // 3990)


async def _connected(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings, charge_type: str
) -> tuple[Shop, SandboxProvider, str]:
    shop = await make_shop(world)
    sandbox = provider_for(shop.store, redis, settings)
    assert isinstance(sandbox, SandboxProvider)
    account = await sandbox.create_account(
        email="owner@example.com", country="DE", idempotency_key=f"acct:{shop.store.id}"
    )
    await sandbox.complete_onboarding(account.id)
    await _set(
        sessions,
        shop.store,
        connect_account=account.id,
        connect_status="enabled",
        connect_charge_type=charge_type,
        platform_fee_bps=100,
    )
    return shop, sandbox, account.id


async def test_a_destination_charge_credits_the_store_less_the_platform_fee(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> None:
    shop, sandbox, account = await _connected(world, sessions, redis, settings, "destination")
    order = await place_order(sessions, shop, redis, settings, {"MUG-1": 2, "BEAN-1": 1})  # 39.90
    intent = await _intent_of(sessions, order)
    assert (intent.connected_account, intent.application_fee_minor) == (account, 40)  # 1 % of 39.90
    [upcoming] = await sandbox.list_payouts(account)
    assert (upcoming.amount.amount_minor, upcoming.status) == (3990 - 40, "in_transit")


async def test_separate_charges_transfer_the_store_its_share_once(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> None:
    shop, sandbox, account = await _connected(world, sessions, redis, settings, "separate")
    order = await place_order(sessions, shop, redis, settings, {"MUG-1": 2, "BEAN-1": 1})
    assert await sandbox.list_payouts(account) == []  # the charge stays on the platform
    ctx = cast(TillContext, {"redis": redis, "settings": settings, "sessions": sessions})
    [placed] = await _events(sessions, order, "order.placed")
    transfer = await tasks.transfer_to_store(ctx, event=placed)
    assert transfer.startswith("tr_")
    assert await tasks.transfer_to_store(ctx, event=placed) == "skipped"  # a repeated event
    intent = await _intent_of(sessions, order)
    assert intent.transfer_ref == transfer
    [upcoming] = await sandbox.list_payouts(account)
    assert upcoming.amount.amount_minor == 3990 - intent.processing_fee_minor - intent.application_fee_minor
