"""Points as a tender: the ``loyalty`` instrument in the stored-value registry converts points to money at the
program's rate, refuses fewer than the minimum, more than the customer has, or without a customer; what it
resolves holds on the ledger like any tender."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import pg
from app.core.errors import TillError, ValidationFailed
from app.core.tenancy import bind_store
from app.customers.models import Customer
from app.stored_value.instruments import SpendContext, TenderRequest, registry, resolve_tenders
from app.stored_value.ledger import InsufficientBalance, Ledger
from app.stored_value.loyalty.ledger import points_account
from app.stored_value.loyalty.program import Program
from app.stored_value.loyalty.services import LoyaltyProgramService
from app.stores.models import Store
from tests.integration.conftest import World

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
