"""Loyalty on the stored-value ledger: accrual exactly once (an event delivered twice, an offline POS sale synced
twice), tier multipliers, proportional reversal on refunds, the nightly tiers and expiry, and the integrity job
(zero drift; an injected drift caught, recorded and counted); a refund to store credit takes back its share."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.jobs import enqueue
from app.core.outbox import OutboxEvent
from app.core.rbac import Role
from app.core.tenancy import bind_store, system_scope
from app.customers.models import Customer
from app.orders.models import Order
from app.orders.services import Actor
from app.payments.models import PaymentIntent
from app.payments.operations import PaymentOperations
from app.payments.registry import provider_for
from app.stored_value.ledger import Ledger, Refs
from app.stored_value.loyalty.accrual import LoyaltyAccruals
from app.stored_value.loyalty.jobs import EVENTS, loyalty_points
from app.stored_value.loyalty.ledger import EARNED, points_account
from app.stored_value.loyalty.maintenance import LoyaltyMaintenance
from app.stored_value.loyalty.models import LoyaltyAccrual, LoyaltyIntegrityRun, LoyaltyMember
from app.stored_value.loyalty.program import Program, Tier
from app.stored_value.loyalty.services import LoyaltyProgramService
from app.stored_value.refunds import StoredValueRefunds
from app.stores.models import Store
from tests.integration.conftest import World
from tests.integration.pos import API, Till, batch, entry, open_till, sale_body
from tests.integration.shop import Shop, make_shop, place_order
from workers.settings import build_worker

Sessions = async_sessionmaker[AsyncSession]
Client = AsyncTestClient[Litestar]
PROGRAM = Program(
    enabled=True,
    points_per_unit=1,
    tiers=(Tier("Member", 0, 10_000), Tier("Silver", 40, 20_000)),
    expiry_days=365,
    redeem_points=100,
    redeem_value_minor=100,
    min_redeem_points=10,
)


async def _program(sessions: Sessions, store: Store, program: Program = PROGRAM) -> None:
    async with sessions() as session, session.begin():
        await LoyaltyProgramService(session, store.id).save(program.as_dict(), actor=None)


async def _events(sessions: Sessions, store: Store, after: int = 0) -> list[dict[str, Any]]:
    """The store's order events as the relay hands them to consumers."""
    async with sessions() as session:
        system_scope(session)
        rows = await session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.store_id == store.id, OutboxEvent.type.in_(EVENTS), OutboxEvent.id > after)
            .order_by(OutboxEvent.id)
        )
        return [
            {
                "id": r.id,
                "store_id": str(r.store_id),
                "type": r.type,
                "aggregate_id": r.aggregate_id,
                "payload": r.payload,
            }
            for r in rows
        ]


async def _deliver(engine: AsyncEngine, sessions: Sessions, events: list[dict[str, Any]]) -> list[str]:
    ctx = {"engine": engine, "sessions": sessions}
    return [await loyalty_points(ctx, event=e) for e in events]


async def _points(sessions: Sessions, store: Store, customer_id: uuid.UUID) -> tuple[int, int]:
    """(balance by the account's running total, balance as the sum of its entries)."""
    async with sessions() as session, session.begin():
        account = await points_account(session, store.id, customer_id, create=False)
        if account is None:
            return 0, 0
        return account.balance_minor, await Ledger(session, store.id).balance(account.id)


async def _customer(sessions: Sessions, store: Store, email: str = "ann@example.com") -> uuid.UUID:
    async with sessions() as session, session.begin():
        bind_store(session, store.id)
        found = await session.scalar(select(Customer.id).where(Customer.email == email))
        if found:
            return uuid.UUID(str(found))
        customer = Customer(email=email, name="Ann")
        session.add(customer)
        await session.flush()
        return customer.id


async def _accruals(sessions: Sessions, store: Store) -> list[LoyaltyAccrual]:
    async with sessions() as session:
        bind_store(session, store.id)
        return list(await session.scalars(select(LoyaltyAccrual).order_by(LoyaltyAccrual.earned_at)))


async def _integrity(sessions: Sessions, store: Store) -> Any:
    async with sessions() as session, session.begin():
        return await LoyaltyMaintenance(session, store.id).check_integrity()


async def _until(check: Callable[[], Awaitable[Any]], within: float = 30.0) -> None:
    """Poll ``check`` until it answers something true, with a deadline (no sleep-and-assert)."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.1)


async def _paid(
    world: World, sessions: Sessions, redis: Redis, settings: Settings, lines: dict[str, int] | None = None
) -> tuple[Shop, Order, uuid.UUID]:
    """A shop with the program, and a paid order of ann@example.com (whose customer the checkout made)."""
    shop = await make_shop(world)
    await _program(sessions, shop.store)
    order = await place_order(sessions, shop, redis, settings, lines or {"MUG-1": 2})
    return shop, order, await _customer(sessions, shop.store)


async def test_a_paid_order_earns_once_however_often_its_events_are_delivered(
    world: World, sessions: Sessions, engine: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    shop, order, customer_id = await _paid(world, sessions, redis, settings)  # 2 × €14.00
    events = await _events(sessions, shop.store)
    assert [e["type"] for e in events] == ["order.placed"]
    first = await _deliver(engine, sessions, events)
    again = await _deliver(engine, sessions, events)  # the relay delivered it a second time
    both = await asyncio.gather(*(_deliver(engine, sessions, events) for _ in range(5)))  # and five more at once
    assert first == ["earned 28, reversed 0"]
    assert again == ["skipped"]
    assert all(b[0] in ("skipped", "skipped: handled already") for b in both)
    # Another event about the same order (its receipt is new) finds the order's accrual: nothing more.
    other = {**events[0], "id": events[0]["id"] + 10**9, "type": "order.payment_changed", "payload": {}}
    assert await _deliver(engine, sessions, [other]) == ["skipped: nothing to earn"]
    assert await _points(sessions, shop.store, customer_id) == (28, 28)
    accruals = await _accruals(sessions, shop.store)
    assert [(a.order_id, a.points, a.tier, a.eligible_minor) for a in accruals] == [(order.id, 28, "Member", 2800)]
    async with sessions() as session:
        conn_entries = await session.execute(
            text("SELECT kind, delta_minor FROM stored_value_entries WHERE order_id = :o"), {"o": order.id}
        )
        assert [tuple(r) for r in conn_entries] == [("issue", 28)]


async def test_an_offline_pos_sale_synced_twice_earns_once(
    client: Client, world: World, sessions: Sessions, engine: AsyncEngine
) -> None:
    till: Till = await open_till(client, world, sessions)
    await _program(sessions, till.store)
    customer_id = await _customer(sessions, till.store)
    sale = sale_body(
        till,
        {"MUG-1": 1, "CRO-1": 2},
        offline=True,
        sold_at=datetime.now(UTC) - timedelta(minutes=20),
        customer_id=customer_id,
    )
    for _ in range(2):  # the tablet's queue sent twice (a lost answer, a reconnect)
        answer = await client.post(f"{API}/sync", json=batch(till, [entry(sale, till.key)]), headers=till.headers)
        assert answer.status_code == 200, answer.text
    statuses = [r["status"] for r in answer.json()["results"]]
    assert statuses == ["existing"]
    events = await _events(sessions, till.store)
    assert [e["type"] for e in events] == ["order.placed"]  # the sale claim: one order, one event
    outcomes = await _deliver(engine, sessions, events + events)
    assert outcomes == ["earned 18, reversed 0", "skipped"]  # €14.00 + 2 × €2.40 = €18.80
    assert await _points(sessions, till.store, customer_id) == (18, 18)
    assert len(await _accruals(sessions, till.store)) == 1


async def test_a_tier_multiplies_what_its_members_earn_and_tiers_follow_the_last_year(
    world: World, sessions: Sessions, engine: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    shop, _, customer_id = await _paid(
        world, sessions, redis, settings, {"MUG-1": 3}
    )  # €42.00 → 42 points, Silver from 40
    await _deliver(engine, sessions, await _events(sessions, shop.store))
    async with sessions() as session:  # the order earned at the first tier and moved the member up at once
        bind_store(session, shop.store.id)
        member = await session.scalar(select(LoyaltyMember))
        assert member is not None and (member.tier, member.qualifying_points) == ("Silver", 42)
        [accrual] = list(await session.scalars(select(LoyaltyAccrual)))
        assert (accrual.tier, accrual.points) == ("Member", 42)
    async with sessions() as session, session.begin():  # the nightly run agrees: nothing to change
        assert await LoyaltyMaintenance(session, shop.store.id).recompute_tiers() == 0
    seen = (await _events(sessions, shop.store))[-1]["id"]
    await place_order(sessions, shop, redis, settings, {"CRO-1": 5})  # €12.00 × 2 (Silver)
    assert await _deliver(engine, sessions, await _events(sessions, shop.store, seen)) == ["earned 24, reversed 0"]
    assert await _points(sessions, shop.store, customer_id) == (66, 66)
    # A year and a day later nothing earned counts any more: back to the first tier.
    async with sessions() as session, session.begin():
        later = datetime.now(UTC) + timedelta(days=366)
        assert await LoyaltyMaintenance(session, shop.store.id).recompute_tiers(now=later) == 1
    async with sessions() as session:
        bind_store(session, shop.store.id)
        member = await session.scalar(select(LoyaltyMember))
        assert member is not None and (member.tier, member.qualifying_points) == ("Member", 0)


async def test_refunds_take_back_points_in_proportion_once_each_never_below_zero(
    world: World, sessions: Sessions, engine: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    shop, order, customer_id = await _paid(
        world, sessions, redis, settings, {"MUG-1": 2}
    )  # €28.00 (pickup: no shipping)
    assert order.total_minor == 2800
    await _deliver(engine, sessions, await _events(sessions, shop.store))
    async with sessions() as session:
        system_scope(session)
        intent = await session.scalar(select(PaymentIntent).where(PaymentIntent.order_id == order.id))
    assert intent is not None
    operations = PaymentOperations(sessions, shop.store.id, provider_for(shop.store, redis, settings))
    staff = Actor(Role.MANAGER, "Manager", "staff")
    seen = (await _events(sessions, shop.store))[-1]["id"]
    await operations.refund(order.id, intent.id, amount_minor=700, reason="one chipped", actor=staff)
    refund_events = await _events(sessions, shop.store, seen)
    assert [(e["type"], e["payload"]["operation"]) for e in refund_events] == [("order.payment_changed", "refund")]
    assert await _deliver(engine, sessions, refund_events * 2) == ["earned 0, reversed 7", "skipped"]
    assert await _points(sessions, shop.store, customer_id) == (21, 21)
    # The customer spends 15 of the 21 points; the rest of the order is refunded: 21 are due back, 6 can be.
    async with sessions() as session, session.begin():
        account = await points_account(session, shop.store.id, customer_id)
        assert account is not None
        await Ledger(session, shop.store.id).spend(account.id, 15, holder_id=uuid.uuid4(), value_minor=15)
    seen = refund_events[-1]["id"]
    await operations.refund(order.id, intent.id, amount_minor=None, reason="all back", actor=staff)
    assert await _deliver(engine, sessions, await _events(sessions, shop.store, seen)) == [
        "earned 0, reversed 6, unrecovered 15"
    ]
    assert await _points(sessions, shop.store, customer_id) == (0, 0)
    [accrual] = await _accruals(sessions, shop.store)
    assert (accrual.refunded_minor, accrual.reversed_points, accrual.unrecovered_points) == (2800, 13, 15)
    report = await _integrity(sessions, shop.store)
    assert report.drifts == []


async def test_points_expire_after_the_programs_days_oldest_first_and_held_points_stay(
    world: World, sessions: Sessions, engine: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    shop, _, customer_id = await _paid(world, sessions, redis, settings, {"MUG-1": 2})  # 28 points
    await _deliver(engine, sessions, await _events(sessions, shop.store))
    async with sessions() as session, session.begin():
        account = await points_account(session, shop.store.id, customer_id)
        assert account is not None
        await Ledger(session, shop.store.id).spend(account.id, 8, holder_id=uuid.uuid4(), value_minor=8)
    async with sessions() as session, session.begin():
        maintenance = LoyaltyMaintenance(session, shop.store.id)
        assert await maintenance.expire_points(now=datetime.now(UTC) + timedelta(days=364)) == 0
        assert await maintenance.expire_points(now=datetime.now(UTC) + timedelta(days=366)) == 20
    async with sessions() as session, session.begin():  # run again: nothing more to expire
        assert (
            await LoyaltyMaintenance(session, shop.store.id).expire_points(now=datetime.now(UTC) + timedelta(days=400))
            == 0
        )
    assert await _points(sessions, shop.store, customer_id) == (0, 0)
    assert (await _integrity(sessions, shop.store)).drifts == []


async def test_the_integrity_job_finds_no_drift_then_catches_an_injected_one(
    world: World, sessions: Sessions, engine: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    shop, order, customer_id = await _paid(world, sessions, redis, settings, {"MUG-1": 1, "BEAN-1": 1})  # 25.90 → 25
    await place_order(sessions, shop, redis, settings, {"CRO-1": 3}, email="bob@example.com")  # 7.20 → 7
    await _deliver(engine, sessions, await _events(sessions, shop.store))
    store = str(shop.store.id)
    clean = await _integrity(sessions, shop.store)
    assert (clean.accounts, clean.orders, clean.drifts) == (2, 2, [])
    assert REGISTRY.get_sample_value("till_loyalty_drift_points", {"store": store}) == 0
    # A second accrual of the same order slipped into the ledger (as a consumer without its receipt would write).
    async with sessions() as session, session.begin():
        account = await points_account(session, shop.store.id, customer_id)
        assert account is not None
        await Ledger(session, shop.store.id).post(
            account.id, "issue", 25, reason=f"{EARNED} #{order.number}", actor="test", refs=Refs(order.id)
        )
    # ... and another account's running balance edited behind the ledger's back.
    bob = await _customer(sessions, shop.store, "bob@example.com")
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE stored_value_accounts SET balance_minor = balance_minor + 3 WHERE customer_id = :c"),
            {"c": bob},
        )
    report = await _integrity(sessions, shop.store)
    by_customer = {d.customer_id: d for d in report.drifts}
    assert by_customer[customer_id].points == 25
    assert "the ledger holds 50, 25 earned" in by_customer[customer_id].reasons[0]
    assert by_customer[bob].points == 3 and by_customer[bob].reasons == ["balance differs from the sum of entries"]
    assert REGISTRY.get_sample_value("till_loyalty_drift_points", {"store": store}) == 28
    assert REGISTRY.get_sample_value("till_loyalty_drifted_accounts", {"store": store}) == 2
    async with sessions() as session:
        bind_store(session, shop.store.id)
        runs = list(await session.scalars(select(LoyaltyIntegrityRun).order_by(LoyaltyIntegrityRun.checked_at)))
    assert [(r.drifted_accounts, r.drift_points) for r in runs] == [(0, 0), (2, 28)]


async def test_a_store_without_a_program_or_an_order_without_payment_earns_nothing(
    world: World, sessions: Sessions, engine: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    order = await place_order(sessions, shop, redis, settings, {"MUG-1": 1})
    assert await _deliver(engine, sessions, await _events(sessions, shop.store)) == ["skipped: nothing to earn"]
    await _program(sessions, shop.store)
    async with sessions() as session, session.begin():
        bind_store(session, shop.store.id)
        row = await session.get(Order, order.id)
        assert row is not None
        row.payment_status = "authorized"  # captured at fulfilment: not paid yet
    async with sessions() as session, session.begin():
        event: dict[str, Any] = {"id": None, "type": "order.placed", "aggregate_id": str(order.id), "payload": {}}
        outcome = await LoyaltyAccruals(session, shop.store.id).handle(event)
    assert str(outcome) == "skipped: nothing to earn"
    assert await _accruals(sessions, shop.store) == []


async def test_a_refund_to_store_credit_takes_back_the_points_of_that_money(
    world: World, sessions: Sessions, engine: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    shop, order, customer_id = await _paid(world, sessions, redis, settings, {"MUG-1": 2})  # 28 points
    await _deliver(engine, sessions, await _events(sessions, shop.store))
    seen = (await _events(sessions, shop.store))[-1]["id"]
    async with sessions() as session, session.begin():
        result = await StoredValueRefunds(session, shop.store.id).refund(
            order.id, 1_400, "half back as credit", principal=None, destination="store_credit"
        )
    assert result.refunded_minor == 1_400
    events = await _events(sessions, shop.store, seen)
    # the order's badge moved too (operation stored_value_refund): loyalty counts the money once, by the first
    assert [e["type"] for e in events] == ["stored_value.refunded", "order.payment_changed"]
    assert events[1]["payload"]["operation"] == "stored_value_refund"
    assert await _deliver(engine, sessions, events * 2) == [
        "earned 0, reversed 14", "skipped: nothing to earn", "skipped", "skipped"
    ]  # fmt: skip
    assert await _points(sessions, shop.store, customer_id) == (14, 14)
    assert (await _integrity(sessions, shop.store)).drifts == []


async def test_a_real_worker_earns_once_and_a_second_delivery_of_the_same_event_adds_nothing(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    """The relay in a running worker hands order.placed to the loyalty_points job; then the same event is delivered
    again as a relay that crashed before its commit would (a new job for the same outbox id): points once."""
    shop, order, customer_id = await _paid(world, sessions, redis, settings, {"MUG-1": 2})
    worker = build_worker(settings, concurrency=2, run_webhooks=False)
    running = asyncio.create_task(worker.start())
    try:
        await _until(lambda: _accruals(sessions, shop.store))
        assert await _points(sessions, shop.store, customer_id) == (28, 28)
        [placed] = await _events(sessions, shop.store)
        again = await enqueue(worker.queue, "loyalty_points", key=f"redelivered:{placed['id']}", event=placed)
        assert again is not None
        await again.refresh(until_complete=30)
        assert (again.status, again.result) == ("complete", "skipped")
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await worker.stop()
    assert await _points(sessions, shop.store, customer_id) == (28, 28)
    assert len(await _accruals(sessions, shop.store)) == 1
    assert order.total_minor == 2800
