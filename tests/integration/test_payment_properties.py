"""A hypothesis state machine over random sequences of capture, void and refund, with timeouts whose answer
is lost, requests that never arrive, a provider that cannot be asked, and disputes opened and closed won or
lost: after every step the intent keeps captured ≤ authorised and refunded + lost to disputes ≤ captured,
its ledger sums to its totals, the order's payment status follows them, and (nothing in flight) the
provider agrees."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar, cast

from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from redis.asyncio import Redis
from sqlalchemy import select

from app.config import Settings
from app.core.db import create_engine, dispose, session_maker
from app.core.errors import TillError
from app.core.money import Money
from app.core.rbac import Role
from app.core.tenancy import system_scope
from app.disputes.services import apply_dispute_event
from app.orders.models import Order
from app.orders.services import Actor
from app.payments.models import PaymentIntent, PaymentTransaction
from app.payments.operations import Operation, PaymentOperations
from app.payments.provider import PaymentError, ProviderResult, ProviderTimeout
from app.payments.registry import sandbox_webhook_secret
from app.payments.sandbox import SandboxProvider
from app.payments.services import ledger_totals, order_payment_status
from tests.integration.conftest import World
from tests.integration.shop import Shop, make_shop, place_order

T = TypeVar("T")
ACTOR = Actor(Role.MANAGER, "Property test", "staff")
AMOUNTS = st.one_of(st.none(), st.integers(min_value=-5, max_value=5_000))
FAULTS = st.sampled_from([None, "applied", "lost"])


class _Unreachable(SandboxProvider):
    """The sandbox whose status lookups time out: an operation that timed out stays in flight."""

    async def get_transaction(self, provider_ref: str) -> ProviderResult:
        raise ProviderTimeout()


def test_random_payment_operations_keep_the_ledger_right(settings: Settings) -> None:
    loop = asyncio.new_event_loop()

    def run(coro: Awaitable[T]) -> T:
        return loop.run_until_complete(coro)

    assert settings.database_url and settings.redis_url
    engine = create_engine(settings.database_url)
    sessions = session_maker(engine)
    redis = Redis.from_url(settings.redis_url)
    shop: Shop = run(make_shop(World(sessions), {"MUG-1": 10_000, "BEAN-1": 10_000, "CRO-1": 10_000}))
    sandbox = SandboxProvider(redis, webhook_secret=sandbox_webhook_secret(settings))  # the store's provider
    unreachable = _Unreachable(redis, webhook_secret="unused")

    class Payments(RuleBasedStateMachine):
        order: Order
        intent: PaymentIntent
        dispute_id: str | None = None

        @initialize(policy=st.sampled_from(["at_checkout", "at_fulfilment"]))
        def place(self, policy: str) -> None:
            shop.store.settings = {**shop.store.settings, "capture_policy": policy}
            self.order = run(place_order(sessions, shop, redis, settings, {"MUG-1": 2, "CRO-1": 1}))
            self.intent = run(self._intent())

        async def _intent(self) -> PaymentIntent:
            async with sessions() as session:
                system_scope(session)
                intent = await session.scalar(select(PaymentIntent).where(PaymentIntent.order_id == self.order.id))
                assert isinstance(intent, PaymentIntent)
                return intent

        def _do(self, operation: str, amount: int | None, fault: str | None, *, reach: bool = True) -> None:
            if fault is not None:
                run(sandbox.fail_next(self.intent.provider_ref, cast(Operation, operation), applied=fault == "applied"))
            operations = PaymentOperations(sessions, shop.store.id, sandbox if reach else unreachable)
            try:
                if operation == "capture":
                    run(operations.capture(self.order.id, self.intent.id, amount_minor=amount, actor=ACTOR))
                elif operation == "refund":
                    run(
                        operations.refund(
                            self.order.id, self.intent.id, amount_minor=amount, reason="property", actor=ACTOR
                        )
                    )
                else:
                    run(operations.void(self.order.id, self.intent.id, reason="property", actor=ACTOR))
            except TillError as exc:
                assert exc.status_code in (409, 422), exc.detail
            finally:
                run(redis.delete(f"till:sandbox:fault:{self.intent.provider_ref}:{operation}"))

        @rule(amount=AMOUNTS, fault=FAULTS)
        def capture(self, amount: int | None, fault: str | None) -> None:
            self._do("capture", amount, fault)

        @rule(amount=AMOUNTS, fault=FAULTS)
        def refund(self, amount: int | None, fault: str | None) -> None:
            self._do("refund", amount, fault)

        @rule(fault=FAULTS)
        def void(self, fault: str | None) -> None:
            self._do("void", None, fault)

        @rule(operation=st.sampled_from(["capture", "refund", "void"]), amount=AMOUNTS)
        def answer_lost_and_provider_unreachable(self, operation: str, amount: int | None) -> None:
            self._do(operation, amount, "applied", reach=False)

        @precondition(lambda self: self.intent.pending_operation is not None)
        @rule()
        def worker_settles(self) -> None:
            run(PaymentOperations(sessions, shop.store.id, sandbox).settle(self.intent.id))

        @precondition(
            lambda self: (
                self.dispute_id is None
                and self.intent.pending_operation is None
                and self.intent.captured_minor > self.intent.refunded_minor
            )
        )
        @rule(part=st.integers(min_value=1, max_value=100))
        def cardholder_disputes(self, part: int) -> None:
            disputable = self.intent.captured_minor - self.intent.refunded_minor
            amount = Money(max(1, disputable * part // 100), self.intent.currency)
            event = sandbox.verify_webhook(*run(sandbox.open_dispute(self.intent.provider_ref, amount)))
            self.dispute_id = str(event.data["object"]["id"])
            run(apply_dispute_event(sessions, shop.store, sandbox, event))

        @precondition(lambda self: self.dispute_id is not None)
        @rule(won=st.booleans())
        def bank_decides(self, won: bool) -> None:
            assert self.dispute_id is not None
            try:
                signed = run(sandbox.close_dispute(self.dispute_id, won=won))
            except PaymentError:  # decided the other way already: the same outcome again
                signed = run(sandbox.dispute_event(self.dispute_id, "charge.dispute.closed"))
            run(apply_dispute_event(sessions, shop.store, sandbox, sandbox.verify_webhook(*signed)))

        @invariant()
        def ledger_and_order_agree(self) -> None:
            self.intent = run(self._intent())
            intent = self.intent
            assert 0 <= intent.refunded_minor <= intent.captured_minor <= intent.amount_minor
            assert intent.refunded_minor + intent.dispute_lost_minor <= intent.captured_minor
            rows = run(self._ledger())
            totals = ledger_totals(rows)
            moved = [tx.amount_minor for tx in rows if tx.kind in ("capture", "refund") and tx.status != "failed"]
            assert all(amount > 0 for amount in moved), "a recorded capture or refund that moved nothing"
            assert (totals.captured_minor, totals.refunded_minor) == (intent.captured_minor, intent.refunded_minor)
            assert totals.voided == (intent.status == "voided")
            assert totals.disputed_lost_minor == intent.dispute_lost_minor
            order = run(self._order())
            assert order.payment_status == order_payment_status(intent)
            if intent.pending_operation is None:
                seen = run(sandbox.get_transaction(intent.provider_ref))
                assert (seen.captured.amount_minor, seen.refunded.amount_minor) == (
                    intent.captured_minor,
                    intent.refunded_minor,
                )
                assert str(seen.status) == intent.status

        async def _ledger(self) -> list[PaymentTransaction]:
            async with sessions() as session:
                system_scope(session)
                rows = await session.scalars(
                    select(PaymentTransaction)
                    .where(PaymentTransaction.intent_id == self.intent.id)
                    .order_by(PaymentTransaction.created_at, PaymentTransaction.id)
                )
                return list(rows)

        async def _order(self) -> Order:
            async with sessions() as session:
                system_scope(session)
                order = await session.get(Order, self.order.id)
                assert isinstance(order, Order)
                return order

    Payments.TestCase.settings = hypothesis_settings(
        max_examples=40,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    try:
        Payments.TestCase().runTest()
    finally:
        run(redis.aclose())
        run(dispose(engine))
        loop.close()
