"""The stored-value ledger (issue 15): the public API against a real PostgreSQL, and a Hypothesis state machine
over random sequences of issue, hold, capture, release, spend, refund, expire and adjust: after every step the
balance is the sum of the entries, spendable never goes below zero, no spend is refunded beyond what it took,
and the running totals agree with a model."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.db import create_engine, dispose, session_maker
from app.core.errors import Conflict, TillError, ValidationFailed
from app.core.tenancy import bind_store
from app.stored_value.ledger import AccountUnavailable, InsufficientBalance, Ledger
from app.stored_value.models import POINTS
from tests.integration.conftest import World

T = TypeVar("T")


async def _ledger_call(
    sessions: async_sessionmaker[AsyncSession], store_id: uuid.UUID, fn: Callable[[Ledger], Awaitable[T]]
) -> T:
    async with sessions() as session, session.begin():
        bind_store(session, store_id)
        return await fn(Ledger(session, store_id))


async def test_issue_hold_capture_refund_and_release(world: World, sessions: async_sessionmaker[AsyncSession]) -> None:
    store = await world.store()

    async def call(fn: Callable[[Ledger], Awaitable[T]]) -> T:
        return await _ledger_call(sessions, store.id, fn)

    card = await call(lambda lg: lg.open_account("gift_card", "EUR", code_hash="a" * 64, code_last4="ABCD"))
    await call(lambda lg: lg.post(card.id, "issue", 5000, reason="issued", actor="test"))
    attempt = uuid.uuid4()
    hold = await call(lambda lg: lg.hold(card.id, 3000, holder_id=attempt, holder_kind="checkout"))
    assert await call(lambda lg: lg.spendable(card.id)) == 2000
    assert await call(lambda lg: lg.balance(card.id)) == 5000
    with pytest.raises(InsufficientBalance):
        await call(lambda lg: lg.hold(card.id, 2001, holder_id=uuid.uuid4()))
    order_id = uuid.uuid4()
    captured = await call(lambda lg: lg.capture(hold.id, amount_minor=2500, order_id=order_id))
    assert (captured.status, captured.captured_minor, captured.order_id) == ("captured", 2500, order_id)
    assert await call(lambda lg: lg.balance(card.id)) == 2500
    assert await call(lambda lg: lg.spendable(card.id)) == 2500
    with pytest.raises(Conflict):  # captured once only
        await call(lambda lg: lg.capture(hold.id))
    await call(lambda lg: lg.refund(hold.id, 1000, reason="returned"))
    with pytest.raises(ValidationFailed):  # 1000 + 1501 > 2500 captured
        await call(lambda lg: lg.refund(hold.id, 1501, reason="returned"))
    assert await call(lambda lg: lg.balance(card.id)) == 3500
    second = await call(lambda lg: lg.hold(card.id, 500, holder_id=attempt, holder_kind="checkout"))
    assert await call(lambda lg: lg.release_holder(attempt, reason="failed")) == 1
    assert await call(lambda lg: lg.release_holder(attempt, reason="failed")) == 0  # twice is a no-op
    assert not await call(lambda lg: lg.release(second.id))
    account = await call(lambda lg: lg.account(card.id))
    assert (account.balance_minor, account.held_minor, account.issued_minor) == (3500, 0, 5000)
    kinds = [e.kind for e in await call(lambda lg: lg.entries(card.id))]
    assert sorted(kinds) == sorted(["issue", "hold", "capture", "release", "refund", "hold", "release"])
    assert (await call(lambda lg: lg.verify(card.id)))["drift"] == 0
    await call(lambda lg: lg.set_status(card.id, "disabled"))
    with pytest.raises(AccountUnavailable):
        await call(lambda lg: lg.spend(card.id, 100, holder_id=uuid.uuid4()))


async def test_points_accounts_and_one_account_per_customer(
    world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from app.customers.models import Customer

    store = await world.store()
    async with sessions() as session, session.begin():
        bind_store(session, store.id)
        customer = Customer(store_id=store.id, email="ann@example.com", name="Ann")
        session.add(customer)
        await session.flush()
        ledger = Ledger(session, store.id)
        points = await ledger.customer_account(customer.id, "loyalty_points", POINTS)
        again = await ledger.customer_account(customer.id, "loyalty_points", POINTS)
        assert points.id == again.id and points.unit == "PTS"
        credit = await ledger.customer_account(customer.id, "store_credit", "EUR")
        assert credit.id != points.id
        with pytest.raises(ValidationFailed):
            await ledger.open_account("loyalty_points", "EUR")
        with pytest.raises(ValidationFailed):  # an adjustment needs a reason
            await ledger.post(points.id, "adjust", 10, reason=" ", actor="x")
        await ledger.post(points.id, "issue", 120, reason="order #1", actor="loyalty")
        with pytest.raises(InsufficientBalance):
            await ledger.post(points.id, "adjust", -121, reason="typo", actor="x")
        spent = await ledger.spend(points.id, 100, holder_id=uuid.uuid4(), value_minor=100, currency="EUR")
        assert (spent.amount_minor, spent.value_minor, spent.currency, spent.status) == (100, 100, "EUR", "captured")
        assert await ledger.balance(points.id) == 20


async def test_other_stores_see_nothing(world: World, sessions: async_sessionmaker[AsyncSession]) -> None:
    mine, theirs = await world.store(), await world.store()
    card = await _ledger_call(sessions, mine.id, lambda lg: lg.open_account("gift_card", "EUR", code_hash="b" * 64))
    await _ledger_call(sessions, mine.id, lambda lg: lg.post(card.id, "issue", 100, reason="x", actor="t"))
    with pytest.raises(TillError):
        await _ledger_call(sessions, theirs.id, lambda lg: lg.post(card.id, "issue", 100, reason="x", actor="t"))
    with pytest.raises(TillError):
        await _ledger_call(sessions, theirs.id, lambda lg: lg.spend(card.id, 50, holder_id=uuid.uuid4()))
    assert await _ledger_call(sessions, theirs.id, lambda lg: lg.balance(card.id)) == 0
    assert await _ledger_call(sessions, mine.id, lambda lg: lg.balance(card.id)) == 100


async def test_concurrent_spends_never_overdraw(world: World, sessions: async_sessionmaker[AsyncSession]) -> None:
    store = await world.store()

    async def call(fn: Callable[[Ledger], Awaitable[T]]) -> T:
        return await _ledger_call(sessions, store.id, fn)

    card = await call(lambda lg: lg.open_account("gift_card", "EUR", code_hash="c" * 64))
    await call(lambda lg: lg.post(card.id, "issue", 1000, reason="issued", actor="t"))

    async def one() -> bool:
        try:
            await call(lambda lg: lg.hold(card.id, 300, holder_id=uuid.uuid4()))
        except InsufficientBalance:
            return False
        return True

    results = await asyncio.gather(*(one() for _ in range(20)))
    assert sum(results) == 3
    account = await call(lambda lg: lg.account(card.id))
    assert (account.balance_minor, account.held_minor) == (1000, 900)


def test_random_sequences_keep_the_ledger_right(settings: Settings) -> None:
    loop = asyncio.new_event_loop()

    def run(coro: Awaitable[T]) -> T:
        return loop.run_until_complete(coro)

    assert settings.database_url
    engine = create_engine(settings.database_url)
    sessions = session_maker(engine)
    store = run(World(sessions).store())
    amounts = st.integers(min_value=1, max_value=3000)

    class Ledgers(RuleBasedStateMachine):
        @initialize(kind=st.sampled_from(["gift_card", "store_credit", "loyalty_points"]))
        def open(self, kind: str) -> None:
            unit = POINTS if kind == "loyalty_points" else "EUR"
            self.account = run(_ledger_call(sessions, store.id, lambda lg: lg.open_account(kind, unit)))
            self.balance = 0
            self.open_holds: dict[uuid.UUID, int] = {}
            self.spends: dict[uuid.UUID, list[int]] = {}  # hold id → [captured, refunded]

        def _call(self, fn: Callable[[Ledger], Awaitable[Any]]) -> Any:
            return run(_ledger_call(sessions, store.id, fn))

        @rule(amount=amounts, kind=st.sampled_from(["issue", "refund"]))
        def credit(self, amount: int, kind: str) -> None:
            self._call(lambda lg: lg.post(self.account.id, kind, amount, reason="r", actor="t"))
            self.balance += amount

        @rule(
            amount=st.integers(min_value=-3000, max_value=3000).filter(bool), kind=st.sampled_from(["adjust", "expire"])
        )
        def debit(self, amount: int, kind: str) -> None:
            amount = abs(amount) if kind == "expire" else amount
            delta = -amount if kind == "expire" else amount
            ok = self.balance - sum(self.open_holds.values()) + delta >= 0
            try:
                self._call(lambda lg: lg.post(self.account.id, kind, amount, reason="r", actor="t"))
            except InsufficientBalance:
                assert not ok
            else:
                assert ok
                self.balance += delta

        @rule(amount=amounts, at_once=st.booleans())
        def hold(self, amount: int, at_once: bool) -> None:
            ok = self.balance - sum(self.open_holds.values()) >= amount
            method = "spend" if at_once else "hold"
            try:
                hold = self._call(lambda lg: getattr(lg, method)(self.account.id, amount, holder_id=uuid.uuid4()))
            except InsufficientBalance:
                assert not ok
                return
            assert ok
            if at_once:
                self.balance -= amount
                self.spends[hold.id] = [amount, 0]
            else:
                self.open_holds[hold.id] = amount

        @rule(data=st.data(), part=st.booleans())
        def capture(self, data: st.DataObject, part: bool) -> None:
            if not self.open_holds:
                return
            hold_id = data.draw(st.sampled_from(sorted(self.open_holds)))
            held = self.open_holds.pop(hold_id)
            amount = data.draw(st.integers(min_value=1, max_value=held)) if part else held
            self._call(lambda lg: lg.capture(hold_id, amount_minor=amount))
            self.balance -= amount
            self.spends[hold_id] = [amount, 0]

        @rule(data=st.data())
        def release(self, data: st.DataObject) -> None:
            if not self.open_holds:
                return
            hold_id = data.draw(st.sampled_from(sorted(self.open_holds)))
            del self.open_holds[hold_id]
            assert self._call(lambda lg: lg.release(hold_id))
            assert not self._call(lambda lg: lg.release(hold_id))

        @rule(data=st.data(), amount=amounts)
        def refund(self, data: st.DataObject, amount: int) -> None:
            if not self.spends:
                return
            hold_id = data.draw(st.sampled_from(sorted(self.spends)))
            captured, refunded = self.spends[hold_id]
            try:
                self._call(lambda lg: lg.refund(hold_id, amount, reason="back"))
            except ValidationFailed:
                assert refunded + amount > captured
                return
            assert refunded + amount <= captured
            self.spends[hold_id][1] += amount
            self.balance += amount

        @invariant()
        def agrees(self) -> None:
            if not hasattr(self, "account"):
                return
            check = self._call(lambda lg: lg.verify(self.account.id))
            assert check["drift"] == 0, check
            assert check["entries_sum"] == self.balance
            assert check["open_holds"] == sum(self.open_holds.values())
            assert self._call(lambda lg: lg.spendable(self.account.id)) >= 0
            for hold_id, (captured, refunded) in self.spends.items():
                spend = self._call(functools.partial(Ledger.get_hold, hold_id=hold_id))
                assert (spend.captured_minor, spend.refunded_minor) == (captured, refunded)
                assert spend.refunded_minor <= spend.captured_minor

    Ledgers.TestCase.settings = hypothesis_settings(
        max_examples=30, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    try:
        Ledgers.TestCase().runTest()
    finally:
        run(dispose(engine))
        loop.close()


async def test_expired_holds_are_released_by_the_expiry_sweep(
    world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from datetime import timedelta

    from app.core import pg
    from app.stored_value.ledger import expire_holds

    store = await world.store()

    async def call(fn: Callable[[Ledger], Awaitable[T]]) -> T:
        return await _ledger_call(sessions, store.id, fn)

    card = await call(lambda lg: lg.open_account("gift_card", "EUR", code_hash="d" * 64))
    await call(lambda lg: lg.post(card.id, "issue", 1000, reason="issued", actor="t"))
    stale = await call(lambda lg: lg.hold(card.id, 600, holder_id=uuid.uuid4(), ttl=timedelta(seconds=-1)))
    live = await call(lambda lg: lg.hold(card.id, 300, holder_id=uuid.uuid4()))
    assert await call(lambda lg: lg.spendable(card.id)) == 100
    async with sessions() as session, session.begin():
        assert await expire_holds(await pg.writer(session)) == 1
    assert (await call(lambda lg: lg.get_hold(stale.id))).status == "released"
    assert (await call(lambda lg: lg.get_hold(live.id))).status == "open"
    assert await call(lambda lg: lg.spendable(card.id)) == 700


async def test_raw_statements_of_another_store_find_and_change_nothing(
    world: World, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    from app.core import pg
    from app.core.encryption import install_keyring
    from app.stored_value import codes
    from app.stored_value.instruments import find_gift_card
    from app.stored_value.ledger import release_holder

    install_keyring(settings)
    mine, theirs = await world.store(), await world.store()
    code = codes.new_code()
    card = await _ledger_call(
        sessions, mine.id, lambda lg: lg.open_account("gift_card", "EUR", code_hash=codes.code_hash(mine.id, code))
    )
    await _ledger_call(sessions, mine.id, lambda lg: lg.post(card.id, "issue", 500, reason="x", actor="t"))
    attempt = uuid.uuid4()
    hold = await _ledger_call(sessions, mine.id, lambda lg: lg.hold(card.id, 200, holder_id=attempt))
    async with sessions() as session, session.begin():
        conn = await pg.writer(session)
        assert (await find_gift_card(conn, mine.id, code)) is not None
        assert (await find_gift_card(conn, theirs.id, code)) is None  # the HMAC binds the store, the SQL names it
        assert await release_holder(conn, theirs.id, attempt) == 0
    assert (await _ledger_call(sessions, mine.id, lambda lg: lg.get_hold(hold.id))).status == "open"
    with pytest.raises(TillError):
        await _ledger_call(sessions, theirs.id, lambda lg: lg.capture(hold.id))
    with pytest.raises(TillError):
        await _ledger_call(sessions, theirs.id, lambda lg: lg.refund(hold.id, 1, reason="x"))
