"""Points as a tender at the POS: the tablet reads what the sale's customer can pay with points; a sale paid with
points and cash spends the points that cover it in the sale's own statement (once, whatever the retries); a short
balance is a 409 with nothing written, under the minimum or without a customer a 422; offline the sale is kept and
the shortfall goes to review; what points paid earns nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.tenancy import bind_store
from app.customers.models import Customer
from app.pos.models import PosSale
from app.pos.sales import reason_of
from app.stored_value.ledger import Ledger
from app.stored_value.loyalty.ledger import points_account
from app.stored_value.loyalty.program import Program
from app.stored_value.loyalty.services import LoyaltyProgramService
from tests.integration.conftest import World
from tests.integration.pos import API, Client, Sessions, Till, batch, entry, open_till, sale_body
from tests.integration.test_loyalty import _deliver, _events

PROGRAM = Program(enabled=True, points_per_unit=1, redeem_points=100, redeem_value_minor=100, min_redeem_points=200)


async def _member(sessions: Sessions, till: Till, points: int) -> uuid.UUID:
    async with sessions() as session, session.begin():
        await LoyaltyProgramService(session, till.store.id).save(PROGRAM.as_dict(), actor=None)
        bind_store(session, till.store.id)
        customer = Customer(email=f"{uuid.uuid4().hex[:6]}@example.com", name="Ann")
        session.add(customer)
        await session.flush()
        account = await points_account(session, till.store.id, customer.id)
        assert account is not None
        await Ledger(session, till.store.id).post(account.id, "issue", points, reason="welcome", actor="test")
        return customer.id


async def _balance(sessions: Sessions, till: Till, customer_id: uuid.UUID) -> tuple[int, int]:
    async with sessions() as session, session.begin():
        account = await points_account(session, till.store.id, customer_id, create=False)
        assert account is not None
        return account.balance_minor, await Ledger(session, till.store.id).balance(account.id)


async def test_a_cashier_takes_points_and_cash_and_a_retry_spends_nothing_more(
    client: Client, world: World, sessions: Sessions, engine: AsyncEngine
) -> None:
    till = await open_till(client, world, sessions)
    customer = await _member(sessions, till, 1_000)
    looked = await client.get(f"{API}/loyalty/{customer}", headers=till.headers)
    assert looked.status_code == 200
    assert looked.json() == {"enabled": True, "points": 1_000, "min_points": 200, "worth_minor": 1_000}
    sale = sale_body(till, {"MUG-1": 1}, customer_id=customer, tenders=[
        {"kind": "loyalty", "amount_minor": 900},
        {"kind": "cash", "amount_minor": 500, "tendered_minor": 500},
    ])  # fmt: skip
    sold = await client.post(f"{API}/sales", json=sale, headers=till.headers)
    assert sold.status_code == 201, sold.text
    assert await _balance(sessions, till, customer) == (100, 100)
    again = await client.post(f"{API}/sales", json=sale, headers=till.headers)
    assert again.status_code == 200
    assert await _balance(sessions, till, customer) == (100, 100)
    # The €14.00 sale earns on the €5.00 paid in cash, not on the €9.00 paid with points.
    assert await _deliver(engine, sessions, await _events(sessions, till.store)) == ["earned 5, reversed 0"]
    assert await _balance(sessions, till, customer) == (105, 105)


async def test_online_short_points_are_a_409_and_no_customer_or_too_few_a_422_with_nothing_written(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    customer = await _member(sessions, till, 300)
    short = sale_body(till, {"MUG-1": 1}, customer_id=customer, tenders=[
        {"kind": "loyalty", "amount_minor": 900},
        {"kind": "cash", "amount_minor": 500},
    ])  # fmt: skip
    refused = await client.post(f"{API}/sales", json=short, headers=till.headers)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    nobody = sale_body(till, {"MUG-1": 1}, tenders=[
        {"kind": "loyalty", "amount_minor": 900},
        {"kind": "cash", "amount_minor": 500},
    ])  # fmt: skip
    answer = await client.post(f"{API}/sales", json=nobody, headers=till.headers)
    assert answer.status_code == 422
    assert answer.json()["fields"] == {"tenders.0.kind": "Choose the customer whose points pay."}
    few = sale_body(till, {"MUG-1": 1}, customer_id=customer, tenders=[
        {"kind": "loyalty", "amount_minor": 100},
        {"kind": "cash", "amount_minor": 1_300},
    ])  # fmt: skip
    answer = await client.post(f"{API}/sales", json=few, headers=till.headers)
    assert answer.status_code == 422
    assert answer.json()["fields"] == {"tenders.0.kind": "Points pay from 200 points at a time."}
    assert await _balance(sessions, till, customer) == (300, 300)
    async with sessions() as session:
        bind_store(session, till.store.id)
        assert list(await session.scalars(select(PosSale))) == []
    stranger = await client.get(f"{API}/loyalty/{uuid.uuid4()}", headers=till.headers)
    assert stranger.status_code == 404


async def test_offline_points_are_taken_at_sync_once_and_a_shortfall_goes_to_review(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    customer = await _member(sessions, till, 600)
    sale = sale_body(till, {"MUG-1": 1}, customer_id=customer, offline=True,
                     sold_at=datetime.now(UTC) - timedelta(minutes=5), tenders=[
        {"kind": "loyalty", "amount_minor": 900},
        {"kind": "cash", "amount_minor": 500},
    ])  # fmt: skip
    for _ in range(2):
        synced = await client.post(f"{API}/sync", json=batch(till, [entry(sale, till.key)]), headers=till.headers)
        assert synced.status_code == 200, synced.text
    assert await _balance(sessions, till, customer) == (0, 0)  # 600 taken, never below zero
    async with sessions() as session:
        bind_store(session, till.store.id)
        [stored] = list(await session.scalars(select(PosSale)))
    assert stored.review_status == "open"
    assert [c["instrument"] for c in stored.conflicts if c["kind"] == "stored_value_short"] == ["loyalty"]
    assert "Points paid €9.00 offline but the customer had 600 points free" in reason_of(stored.conflicts, "EUR")
