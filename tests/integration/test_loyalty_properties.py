"""Hypothesis over loyalty on the real ledger: for any paid order and any sequence of partial refunds (also past the
total), spends of the points and repeated deliveries, the balance never goes below zero, refunds never take back
more than the order earned (and all of it once the whole order is back), and the integrity check finds no drift."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.core.db import create_engine, dispose, session_maker
from app.core.tenancy import bind_store
from app.customers.models import Customer
from app.orders.models import Order, OrderLine
from app.stored_value.ledger import Ledger
from app.stored_value.loyalty.accrual import LoyaltyAccruals
from app.stored_value.loyalty.ledger import points_account
from app.stored_value.loyalty.maintenance import LoyaltyMaintenance
from app.stored_value.loyalty.models import LoyaltyAccrual
from app.stored_value.loyalty.program import Program, Tier, reversal_target
from app.stored_value.loyalty.services import LoyaltyProgramService
from tests.integration.conftest import World

T = TypeVar("T")
PROGRAM = Program(enabled=True, points_per_unit=3, tiers=(Tier("Member", 0, 12_500),), expiry_days=None)
Step = tuple[str, int]  # ("refund", money) | ("spend", points) | ("again", 0): the same refund event delivered again


async def _paid_order(session: AsyncSession, store_id: uuid.UUID, customer_id: uuid.UUID, total: int) -> uuid.UUID:
    bind_store(session, store_id)
    order = Order(
        channel="web", status="placed", payment_status="paid", fulfilment_status="unfulfilled",
        fulfilment_method="pickup", customer_id=customer_id, email="p@example.com", currency="EUR",
        subtotal_minor=total, discount_minor=0, discounts=[], shipping_minor=0, tax_minor=0, total_minor=total,
        prices_include_tax=True, shipping={}, access_token=secrets.token_urlsafe(8), placed_at=datetime.now(UTC),
    )  # fmt: skip
    session.add(order)
    await session.flush()
    session.add(
        OrderLine(
            order_id=order.id, position=0, sku="X", name="X", quantity=1, unit_price_minor=total,
            discount_minor=0, tax_minor=0, tax_rate_bps=0, total_minor=total,
        )
    )  # fmt: skip
    await session.flush()
    return order.id


def test_refunds_and_spends_in_any_order_keep_points_right(settings: Settings) -> None:
    loop = asyncio.new_event_loop()

    def run(coro: Awaitable[T]) -> T:
        return loop.run_until_complete(coro)

    assert settings.database_url
    engine = create_engine(settings.database_url)
    sessions = session_maker(engine)
    store = run(World(sessions).store())

    async def setup() -> None:
        async with sessions() as session, session.begin():
            await LoyaltyProgramService(session, store.id).save(PROGRAM.as_dict(), actor=None)

    run(setup())

    async def in_tx(fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with sessions() as session, session.begin():
            return await fn(session)

    steps = st.lists(
        st.one_of(
            st.tuples(st.just("refund"), st.integers(1, 30_000)),
            st.tuples(st.just("spend"), st.integers(1, 500)),
            st.tuples(st.just("again"), st.just(0)),
        ),
        max_size=8,
    )

    @hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(total=st.integers(1, 20_000), steps=steps)
    def check(total: int, steps: list[Step]) -> None:
        async def customer(session: AsyncSession) -> uuid.UUID:
            bind_store(session, store.id)
            c = Customer(email=f"{uuid.uuid4().hex[:10]}@example.com")
            session.add(c)
            await session.flush()
            return c.id

        customer_id = run(in_tx(customer))
        order_id = run(in_tx(lambda s: _paid_order(s, store.id, customer_id, total)))
        earned = run(in_tx(lambda s: LoyaltyAccruals(s, store.id).accrue(order_id, PROGRAM))) or 0
        assert earned == total * 3 * 12_500 // (100 * 10_000)
        refunded = 0
        last_event: dict[str, Any] | None = None
        for kind, value in steps:
            if kind == "refund":
                refunded += value
                last_event = {
                    "id": 10**12 + secrets.randbelow(10**9),
                    "type": "order.payment_changed",
                    "aggregate_id": str(order_id),
                    "payload": {"operation": "refund", "amount_minor": value},
                }
                run(in_tx(lambda s, e=last_event: LoyaltyAccruals(s, store.id).handle(e)))  # type: ignore[misc]
            elif kind == "again" and last_event is not None:  # delivered twice: its receipt makes it once
                outcome = run(in_tx(lambda s, e=last_event: LoyaltyAccruals(s, store.id).handle(e)))  # type: ignore[misc]
                assert outcome.note == "skipped: handled already"
            elif kind == "spend":

                async def spend(session: AsyncSession, points: int = value) -> None:
                    account = await points_account(session, store.id, customer_id)
                    assert account is not None
                    take = min(points, account.spendable_minor)
                    if take > 0:
                        await Ledger(session, store.id).spend(account.id, take, holder_id=uuid.uuid4())

                run(in_tx(spend))

            async def state(session: AsyncSession) -> tuple[int, LoyaltyAccrual]:
                account = await points_account(session, store.id, customer_id)
                assert account is not None
                bind_store(session, store.id)
                accrual = await session.get(
                    LoyaltyAccrual, (await LoyaltyProgramService(session, store.id).accruals(customer_id))[0].id
                )
                assert accrual is not None
                return account.balance_minor, accrual

            balance, accrual = run(in_tx(state))
            assert balance >= 0
            taken = accrual.reversed_points + accrual.unrecovered_points
            assert taken == reversal_target(earned, refunded, total) <= earned
            if refunded >= total:
                assert taken == earned
        report = run(in_tx(lambda s: LoyaltyMaintenance(s, store.id).check_integrity(record=False)))
        assert report.drifts == [], report.drifts

    try:
        check()
    finally:
        run(dispose(engine))
        loop.close()
