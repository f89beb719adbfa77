"""Points as a tender: the ``loyalty`` instrument in the stored-value registry converts points to money at the
program's rate, refuses fewer than the minimum, more than the customer has, or without a customer; what it
resolves holds on the ledger like any tender; a checkout pays part with points and the card the rest."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.checkout.models import CheckoutSnapshot
from app.checkout.saga import CheckoutSaga, PaymentInput
from app.config import Settings
from app.core import pg
from app.core.errors import TillError, ValidationFailed
from app.core.rbac import Role
from app.core.tenancy import bind_store, system_scope
from app.customers.models import Customer
from app.orders.services import Actor
from app.payments.models import PaymentIntent
from app.payments.operations import PaymentOperations
from app.payments.provider import CardDetails
from app.payments.registry import provider_for
from app.stored_value.instruments import SpendContext, TenderRequest, registry, resolve_tenders
from app.stored_value.ledger import InsufficientBalance, Ledger
from app.stored_value.loyalty.ledger import points_account
from app.stored_value.loyalty.maintenance import LoyaltyMaintenance
from app.stored_value.loyalty.program import Program
from app.stored_value.loyalty.services import LoyaltyProgramService
from app.stores.models import Store
from tests.integration.conftest import World
from tests.integration.shop import make_shop
from tests.integration.test_checkout_saga import _quote
from tests.integration.test_loyalty import _deliver, _events

Sessions = async_sessionmaker[AsyncSession]
PROGRAM = Program(enabled=True, redeem_points=10, redeem_value_minor=5, min_redeem_points=100)  # 10 points = 5 cents


async def _member(sessions: Sessions, store: Store, points: int) -> uuid.UUID:
    async with sessions() as session, session.begin():
        await LoyaltyProgramService(session, store.id).save(PROGRAM.as_dict(), actor=None)
        bind_store(session, store.id)
        customer = Customer(email=f"{uuid.uuid4().hex[:6]}@example.com")
        session.add(customer)
        await session.flush()
        account = await points_account(session, store.id, customer.id)
        assert account is not None
        if points:
            await Ledger(session, store.id).post(account.id, "issue", points, reason="welcome", actor="test")
        return customer.id


async def _resolve(
    sessions: Sessions, store: Store, customer_id: uuid.UUID | None, due: int, **request: int
) -> tuple[int, int]:
    async with sessions() as session:
        conn = await pg.reader(session)
        ctx = SpendContext(store.id, "EUR", due, customer_id, "web")
        [tender] = await resolve_tenders(conn, [TenderRequest("loyalty", **request)], ctx)  # type: ignore[arg-type]
        assert tender.instrument == "loyalty"
        return tender.amount_minor, tender.value_minor


async def test_points_pay_at_the_programs_rate_within_the_minimum_the_balance_and_what_is_due(
    world: World, sessions: Sessions
) -> None:
    assert "loyalty" in registry()
    store = await world.store()
    customer = await _member(sessions, store, 1_000)  # worth €5.00
    assert await _resolve(sessions, store, customer, 10_000, points=400) == (400, 200)
    assert await _resolve(sessions, store, customer, 10_000) == (1_000, 500)  # all of them
    assert await _resolve(sessions, store, customer, 300) == (600, 300)  # only what pays what is due
    assert await _resolve(sessions, store, customer, 10_000, amount_minor=150) == (300, 150)
    for request, due, message in (
        ({"points": 99}, 10_000, "At least 100 points at a time."),
        ({"points": 1_200}, 10_000, "Only 1000 points are available."),
        ({}, 40, "What is left to pay is worth fewer than 100 points."),
    ):
        with pytest.raises(ValidationFailed) as refused:
            await _resolve(sessions, store, customer, due, **request)
        assert refused.value.fields == {"stored_value": message}


async def test_no_customer_no_points_or_no_program_is_refused(world: World, sessions: Sessions) -> None:
    store = await world.store()
    empty = await _member(sessions, store, 0)
    with pytest.raises(ValidationFailed) as anonymous:
        await _resolve(sessions, store, None, 1_000, points=100)
    assert anonymous.value.fields == {"stored_value": "Sign in to use your points."}
    with pytest.raises(InsufficientBalance):
        await _resolve(sessions, store, empty, 1_000, points=100)
    rich = await _member(sessions, store, 500)
    async with sessions() as session, session.begin():
        await LoyaltyProgramService(session, store.id).save({**PROGRAM.as_dict(), "enabled": False}, actor=None)
    with pytest.raises(ValidationFailed) as off:
        await _resolve(sessions, store, rich, 1_000, points=100)
    assert off.value.fields == {"stored_value": "This shop has no loyalty program."}


async def test_a_resolved_tender_holds_on_the_ledger_and_a_second_spend_cannot_overdraw(
    world: World, sessions: Sessions
) -> None:
    store = await world.store()
    customer = await _member(sessions, store, 300)
    points, value = await _resolve(sessions, store, customer, 10_000)
    assert (points, value) == (300, 150)
    async with sessions() as session, session.begin():
        account = await points_account(session, store.id, customer)
        assert account is not None
        ledger = Ledger(session, store.id)
        hold = await ledger.hold(
            account.id, points, holder_id=uuid.uuid4(), holder_kind="checkout", instrument="loyalty",
            value_minor=value, currency="EUR",
        )  # fmt: skip
        assert hold.instrument == "loyalty" and await ledger.spendable(account.id) == 0
    with pytest.raises(TillError):  # held by the first checkout: nothing left for a second
        await _resolve(sessions, store, customer, 10_000)


async def test_a_checkout_pays_part_with_points_the_card_the_rest_and_points_paid_earn_nothing(
    world: World, sessions: Sessions, engine: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    program = Program(enabled=True, points_per_unit=1, redeem_points=100, redeem_value_minor=100, min_redeem_points=500)
    async with sessions() as session, session.begin():
        await LoyaltyProgramService(session, shop.store.id).save(program.as_dict(), actor=None)
        bind_store(session, shop.store.id)
        customer = Customer(email="ann@example.com", name="Ann")
        session.add(customer)
        await session.flush()
        account = await points_account(session, shop.store.id, customer.id)
        assert account is not None
        await Ledger(session, shop.store.id).post(account.id, "issue", 1_500, reason="welcome", actor="test")
        customer_id = customer.id
    snapshot = await _quote(sessions, shop, {"MUG-1": 2}, email="ann@example.com")  # €28.00
    async with sessions() as session, session.begin():
        system_scope(session)
        await session.execute(
            update(CheckoutSnapshot).where(CheckoutSnapshot.id == snapshot.id).values(customer_id=customer_id)
        )
    saga = CheckoutSaga(sessions, shop.store, provider_for(shop.store, redis, settings))
    card = CardDetails("4242424242424242", 12, 2034, "123")
    payment = PaymentInput(card=card, tenders=(TenderRequest("loyalty", points=1_000),))
    outcome = await saga.complete(snapshot.id, "k1", payment, fingerprint="f")
    assert outcome.state == "completed" and outcome.order is not None, outcome.message
    async with sessions() as session:
        system_scope(session)
        intent = await session.scalar(select(PaymentIntent).where(PaymentIntent.order_id == outcome.order.id))
    assert intent is not None and intent.amount_minor == 2_800 - 1_000  # 1,000 points paid €10.00
    assert await _deliver(engine, sessions, await _events(sessions, shop.store)) == ["earned 18, reversed 0"]
    async with sessions() as session, session.begin():
        account = await points_account(session, shop.store.id, customer_id)
        assert account is not None and (account.balance_minor, account.held_minor) == (1_500 - 1_000 + 18, 0)
        report = await LoyaltyMaintenance(session, shop.store.id).check_integrity()
    assert report.drifts == []
    # The card's €18.00 back: what it earned goes back (measured against the money, not the points' part).
    seen = (await _events(sessions, shop.store))[-1]["id"]
    operations = PaymentOperations(sessions, shop.store.id, provider_for(shop.store, redis, settings))
    await operations.refund(
        outcome.order.id, intent.id, amount_minor=None, reason="back", actor=Actor(Role.MANAGER, "M", "staff")
    )
    assert await _deliver(engine, sessions, await _events(sessions, shop.store, seen)) == ["earned 0, reversed 18"]
