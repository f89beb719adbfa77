"""The saga under races, double submits, stale quotes, provider timeouts and crashes."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cart.models import Cart
from app.cart.services import CartService
from app.checkout.models import CheckoutAttempt, CheckoutSnapshot
from app.checkout.quotes import QuoteRequest, QuoteService
from app.checkout.saga import (
    STALL_AFTER,
    CheckoutExpired,
    CheckoutSaga,
    PaymentInput,
    recover_stalled,
)
from app.config import Settings
from app.core import pg
from app.core.errors import ValidationFailed
from app.core.jobs import enqueue
from app.core.tenancy import bind_store, system_scope
from app.inventory.models import StockLevel
from app.inventory.services import SoldOut, move_reserved
from app.orders.models import Order
from app.payments.models import PaymentIntent, PaymentTransaction
from app.payments.provider import AuthorizeRequest, CardDetails, PaymentStatus, ProviderResult
from app.payments.registry import provider_for, provider_of, sandbox_webhook_secret
from app.payments.sandbox import SandboxProvider
from tests.integration.conftest import World
from tests.integration.crashing_checkout import charge_then_kill
from tests.integration.shop import Shop, Shopper, make_shop
from tests.integration.statements import counted
from workers.settings import build_worker

ROOT = Path(__file__).resolve().parents[2]
VISA = CardDetails("4242424242424242", 12, 2034, "123")
Sessions = async_sessionmaker[AsyncSession]
SagaFor = Callable[[Shop], CheckoutSaga]


async def _quote(
    sessions: async_sessionmaker[AsyncSession], shop: Shop, lines: dict[str, int], email: str = "a@example.com"
) -> CheckoutSnapshot:
    async with sessions() as session, session.begin():
        carts = CartService(session, shop.store.id, shop.store.currency)
        cart = await carts.get_or_create(None)
        for sku, quantity in lines.items():
            await carts.add(cart, shop.variants[sku], quantity)
        return await QuoteService(await pg.writer(session), shop.store).create(
            QuoteRequest(cart_token=cart.token, email=email)
        )


@pytest.fixture
def saga_for(sessions: Sessions, redis: Redis, settings: Settings) -> SagaFor:
    def make(shop: Shop) -> CheckoutSaga:
        return CheckoutSaga(sessions, shop.store, provider_for(shop.store, redis, settings))

    return make


async def _counts(sessions: async_sessionmaker[AsyncSession], shop: Shop, sku: str) -> tuple[int, int, int, int]:
    """(orders, open authorisations, on hand, reserved)."""
    async with sessions() as session:
        bind_store(session, shop.store.id)
        orders = await session.scalar(select(func.count()).select_from(Order))
        open_auths = await session.scalar(
            select(func.count())
            .select_from(PaymentIntent)
            .where(PaymentIntent.status.in_(["authorized", "requires_action", "pending"]))
        )
        level = await session.scalar(select(StockLevel).where(StockLevel.variant_id == shop.variants[sku]))
        assert level is not None
        return int(orders or 0), int(open_auths or 0), level.on_hand, level.reserved


async def test_last_unit_race_twenty_shoppers_one_order(world: World, sessions: Sessions, saga_for: SagaFor) -> None:
    shop = await make_shop(world, stock={"BEAN-1": 1})
    snapshots = [await _quote(sessions, shop, {"BEAN-1": 1}, email=f"s{i}@example.com") for i in range(20)]
    saga = saga_for(shop)

    async def attempt(snapshot: CheckoutSnapshot) -> str:
        try:
            outcome = await saga.complete(snapshot.id, f"key-{snapshot.id}", PaymentInput(card=VISA), fingerprint="f")
        except SoldOut:
            return "sold_out"
        return str(outcome.state)

    results = await asyncio.gather(*(attempt(s) for s in snapshots))
    assert sorted(results).count("completed") == 1
    assert results.count("sold_out") == 19
    assert await _counts(sessions, shop, "BEAN-1") == (1, 0, 0, 0)


async def test_double_submit_same_key_ten_at_once_one_order(
    world: World, sessions: Sessions, saga_for: SagaFor
) -> None:
    shop = await make_shop(world)
    snapshot = await _quote(sessions, shop, {"MUG-1": 1})
    saga = saga_for(shop)
    outcomes = await asyncio.gather(
        *(saga.complete(snapshot.id, "same-key", PaymentInput(card=VISA), fingerprint="f") for _ in range(10))
    )
    order_ids = {o.order.id for o in outcomes if o.order is not None}
    assert len(order_ids) == 1 and all(o.state == "completed" for o in outcomes)
    assert await _counts(sessions, shop, "MUG-1") == (1, 0, 49, 0)


async def test_double_click_on_the_page_returns_the_same_order(client: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("CRO-1", 3)
    snapshot_id = await shopper.quote()
    first = await shopper.pay(snapshot_id, key="form-key-1")
    second = await shopper.pay(snapshot_id, key="form-key-1")
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]


async def test_expired_snapshot_is_rejected_with_a_fresh_quote(
    client: AsyncTestClient[Litestar], world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await make_shop(world)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("BEAN-1", 1)
    snapshot_id = await shopper.quote()
    async with sessions() as session, session.begin():
        system_scope(session)
        await session.execute(update(CheckoutSnapshot).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    response = await shopper.pay(snapshot_id)
    assert response.status_code == 409
    assert "Your checkout expired" in response.text
    assert f"/checkout/{snapshot_id}/pay" not in response.text  # the form now pays a new snapshot
    assert await _counts(sessions, shop, "BEAN-1") == (0, 0, 50, 0)


async def test_changed_cart_invalidates_the_quote(world: World, sessions: Sessions, saga_for: SagaFor) -> None:
    shop = await make_shop(world)
    snapshot = await _quote(sessions, shop, {"BEAN-1": 1})
    async with sessions() as session, session.begin():
        carts = CartService(session, shop.store.id, shop.store.currency)
        cart = await session.get(Cart, snapshot.cart_id)
        assert cart is not None
        await carts.add(cart, shop.variants["MUG-1"], 1)
    with pytest.raises(CheckoutExpired, match="Your cart changed"):
        await saga_for(shop).complete(snapshot.id, "k", PaymentInput(card=VISA), fingerprint="f")
    assert await _counts(sessions, shop, "BEAN-1") == (0, 0, 50, 0)


async def test_amount_mismatch_is_rejected(world: World, sessions: Sessions, saga_for: SagaFor) -> None:
    shop = await make_shop(world)
    snapshot = await _quote(sessions, shop, {"BEAN-1": 1})
    with pytest.raises(ValidationFailed, match="does not match the checkout total"):
        await saga_for(shop).complete(
            snapshot.id, "k", PaymentInput(card=VISA, amount_minor=snapshot.total_minor - 1), fingerprint="f"
        )
    assert await _counts(sessions, shop, "BEAN-1") == (0, 0, 50, 0)


async def test_provider_timeout_means_no_order_stock_released_and_nothing_left_authorised(
    world: World,
    sessions: Sessions,
    saga_for: SagaFor,
) -> None:
    shop = await make_shop(world)
    snapshot = await _quote(sessions, shop, {"BEAN-1": 2})
    saga = saga_for(shop)
    outcome = await saga.complete(
        snapshot.id, "k", PaymentInput(card=CardDetails("4000000000000119", 12, 2034, "123")), fingerprint="f"
    )
    assert outcome.state == "failed" and outcome.error_code == "payment_unconfirmed"
    assert await _counts(sessions, shop, "BEAN-1") == (0, 0, 50, 0)
    async with sessions() as session:
        bind_store(session, shop.store.id)
        intent = await session.scalar(select(PaymentIntent))
    # The store captures at checkout, so the charge that went through is refunded in full.
    assert intent is not None and intent.status == "refunded" and intent.refunded_minor == intent.captured_minor > 0
    remote = await saga.provider.get_transaction(intent.provider_ref)
    assert remote.status == PaymentStatus.REFUNDED


async def test_three_d_secure_challenge_then_order(world: World, sessions: Sessions, saga_for: SagaFor) -> None:
    shop = await make_shop(world)
    snapshot = await _quote(sessions, shop, {"CRO-1": 2})
    saga = saga_for(shop)
    card = CardDetails("4000000000003220", 12, 2034, "123")
    outcome = await saga.complete(snapshot.id, "k3ds", PaymentInput(card=card), fingerprint="f")
    assert outcome.state == "awaiting_action" and "/sandbox/3ds/" in outcome.action_url
    assert await _counts(sessions, shop, "CRO-1") == (0, 1, 50, 2)  # held while the shopper answers the bank
    provider = saga.provider
    assert isinstance(provider, SandboxProvider)
    await provider.complete_challenge(outcome.action_url.rsplit("/", 1)[1], approve=True)
    done = await saga.resume(outcome.attempt_id)
    assert done.state == "completed" and done.order is not None
    assert await _counts(sessions, shop, "CRO-1") == (1, 0, 48, 0)


async def test_a_challenge_outliving_its_reservation_gives_the_money_back(
    world: World, sessions: Sessions, engine: AsyncEngine, saga_for: SagaFor
) -> None:
    """The shopper passes 3-D Secure after the sweeper released the stock: no order, nothing kept."""
    shop = await make_shop(world)
    snapshot = await _quote(sessions, shop, {"CRO-1": 2})
    saga = saga_for(shop)
    card = CardDetails("4000000000003220", 12, 2034, "123")
    outcome = await saga.complete(snapshot.id, "k3ds-late", PaymentInput(card=card), fingerprint="f")
    async with pg.connection(engine) as conn:  # what release_expired_reservations does after 20 minutes
        assert await move_reserved(conn, shop.store.id, outcome.attempt_id, sold=False) == 1
    provider = saga.provider
    assert isinstance(provider, SandboxProvider)
    await provider.complete_challenge(outcome.action_url.rsplit("/", 1)[1], approve=True)
    late = await saga.resume(outcome.attempt_id)
    assert late.state == "failed" and late.error_code == "reservation_expired" and late.order is None
    # No order, no money held (the capture was refunded), stock as it was.
    assert await _counts(sessions, shop, "CRO-1") == (0, 0, 50, 0)
    async with sessions() as session:
        bind_store(session, shop.store.id)
        intent = await session.scalar(select(PaymentIntent))
    assert intent is not None and intent.status in ("refunded", "voided")


async def test_failed_three_d_secure_releases_stock(world: World, sessions: Sessions, saga_for: SagaFor) -> None:
    shop = await make_shop(world)
    snapshot = await _quote(sessions, shop, {"CRO-1": 2})
    saga = saga_for(shop)
    outcome = await saga.complete(
        snapshot.id, "k3ds-fail", PaymentInput(card=CardDetails("4000000000003220", 12, 2034, "123")), fingerprint="f"
    )
    provider = saga.provider
    assert isinstance(provider, SandboxProvider)
    await provider.complete_challenge(outcome.action_url.rsplit("/", 1)[1], approve=False)
    failed = await saga.resume(outcome.attempt_id)
    assert failed.state == "failed" and "security check" in failed.message
    assert await _counts(sessions, shop, "CRO-1") == (0, 0, 50, 0)


async def test_a_checkout_process_killed_after_the_charge_is_compensated_by_the_sweeper_job(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    """A real process is killed (SIGKILL) right after the provider charged the card: no order, no payment
    recorded, the stock still reserved. The worker's SAQ sweeper job finds the charge by its deterministic
    reference, gives it back and releases the stock."""
    shop = await make_shop(world)
    snapshot = await _quote(sessions, shop, {"MUG-1": 1})
    provider_ref = await charge_then_kill(settings, shop.store.id, snapshot.id)
    sandbox = provider_for(shop.store, redis, settings)
    assert (await sandbox.get_transaction(provider_ref)).status == PaymentStatus.CAPTURED  # the money was taken
    assert await _counts(sessions, shop, "MUG-1") == (0, 0, 50, 1)  # and nothing else happened but the hold

    async with sessions() as session, session.begin():  # the sweeper leaves younger attempts to their process
        system_scope(session)
        await session.execute(update(CheckoutAttempt).values(updated_at=datetime.now(UTC) - STALL_AFTER * 2))
    worker = build_worker(settings, concurrency=2, run_relay=False, run_webhooks=False)
    running = asyncio.create_task(worker.start())
    try:
        job = await enqueue(worker.queue, "recover_checkouts")
        assert job is not None
        await job.refresh(until_complete=30)
        assert job.status == "complete", job.error
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await worker.stop()

    assert await _counts(sessions, shop, "MUG-1") == (0, 0, 50, 0)
    assert (await sandbox.get_transaction(provider_ref)).status == PaymentStatus.REFUNDED
    async with sessions() as session:
        bind_store(session, shop.store.id)
        attempt = await session.scalar(select(CheckoutAttempt))
        intent = await session.scalar(select(PaymentIntent))
        kinds = (await session.scalars(select(PaymentTransaction.kind))).all()
    assert attempt is not None and (attempt.state, attempt.error_code) == ("failed", "payment_unconfirmed")
    assert intent is not None and intent.status == "refunded" and intent.refunded_minor == snapshot.total_minor
    assert kinds.count("refund") == 1


async def test_a_charge_answered_after_the_sweeper_gave_up_on_it_is_given_back(
    world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    """The provider answers so late that the sweeper took the attempt for dead and compensated it: the late
    success finds the attempt failed, so its money goes back instead of staying with no order."""
    shop = await make_shop(world)
    snapshot = await _quote(sessions, shop, {"MUG-1": 1})
    asked, answer = asyncio.Event(), asyncio.Event()

    class SlowProvider(SandboxProvider):
        async def authorize(self, request: AuthorizeRequest) -> ProviderResult:
            asked.set()
            await answer.wait()
            return await super().authorize(request)

    provider = SlowProvider(redis, webhook_secret=sandbox_webhook_secret(settings))
    checkout = asyncio.create_task(
        CheckoutSaga(sessions, shop.store, provider).complete(
            snapshot.id, "slow", PaymentInput(card=VISA), fingerprint="f"
        )
    )
    await asyncio.wait_for(asked.wait(), timeout=10)  # the attempt is claimed and the call is on its way
    swept = await recover_stalled(
        sessions, lambda store: provider_of(sessions, store, redis, settings), now=datetime.now(UTC) + STALL_AFTER * 2
    )
    assert [o.state for o in swept] == ["failed"]
    answer.set()
    late = await checkout
    assert late.state == "failed" and late.order is None
    assert await _counts(sessions, shop, "MUG-1") == (0, 0, 50, 0)
    async with sessions() as session:
        bind_store(session, shop.store.id)
        intent = await session.scalar(select(PaymentIntent))
    assert intent is not None and intent.status == "refunded"
    assert (await provider.get_transaction(intent.provider_ref)).status == PaymentStatus.REFUNDED


async def test_completing_a_three_line_checkout_stays_within_the_sql_budget(
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    saga_for: SagaFor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every statement the database receives, whether through SQLAlchemy or raw asyncpg (ADR 0003)."""
    shop = await make_shop(world)
    snapshot = await _quote(sessions, shop, {"BEAN-1": 1, "MUG-1": 2, "CRO-1": 3})
    with counted(engine, monkeypatch) as statements:
        outcome = await saga_for(shop).complete(snapshot.id, uuid.uuid4().hex, PaymentInput(card=VISA), fingerprint="f")
    assert outcome.state == "completed"
    # The budget is 25; the saga takes 3: snapshot read, claim + reserve, place (selling the stock).
    assert len(statements) <= 3, "\n".join(statements)
