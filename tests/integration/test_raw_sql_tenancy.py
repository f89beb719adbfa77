"""Raw SQL cannot reach another store's rows (ADR 0003): the session filter of ADR 0002 does not see it,
so every raw statement names its store. Each is called here with store B's id on store A's rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cart.services import CartService, cart_view, open_cart_token
from app.checkout.models import CheckoutAttempt, CheckoutSnapshot
from app.checkout.quotes import QuoteRequest, QuoteService, snapshot_by_id
from app.checkout.saga import CheckoutSaga, PaymentInput
from app.config import Settings
from app.core import pg
from app.core.errors import ValidationFailed
from app.core.idempotency import IdempotencyStore, StoredResponse
from app.core.tenancy import bind_store
from app.inventory.models import Reservation, StockLevel
from app.inventory.services import SoldOut, move_reserved, reserve_stock
from app.payments.models import PaymentIntent
from app.payments.provider import CardDetails, PaymentStatus
from app.payments.registry import provider_for
from tests.integration.conftest import World
from tests.integration.shop import Shop, make_shop

Sessions = async_sessionmaker[AsyncSession]
VISA = CardDetails("4242424242424242", 12, 2034, "123")
_CLAIM_NOTHING = "SELECT NULL::uuid AS id WHERE NOT EXISTS (SELECT 1 FROM short) AND false"


async def _snapshot(sessions: Sessions, shop: Shop) -> CheckoutSnapshot:
    async with sessions() as session, session.begin():
        carts = CartService(session, shop.store.id, shop.store.currency)
        cart = await carts.get_or_create(None)
        await carts.add(cart, shop.variants["MUG-1"], 2)
        quotes = QuoteService(await pg.writer(session), shop.store)
        return await quotes.create(QuoteRequest(cart_token=cart.token, email="a@example.com"))


async def _stock(sessions: Sessions, shop: Shop) -> tuple[int, int]:
    async with sessions() as session:
        bind_store(session, shop.store.id)
        level = await session.scalar(select(StockLevel).where(StockLevel.variant_id == shop.variants["MUG-1"]))
        assert level is not None
        return level.on_hand, level.reserved


async def test_reads_by_another_store_find_nothing(world: World, sessions: Sessions, engine: AsyncEngine) -> None:
    a, b = await make_shop(world), await make_shop(world)
    snapshot = await _snapshot(sessions, a)
    async with pg.connection(engine) as conn:
        token = await open_cart_token(conn, a.store.id, snapshot.cart_id)
        assert token is not None and await open_cart_token(conn, b.store.id, snapshot.cart_id) is None
        assert (await cart_view(conn, a.store.id, "EUR", token)).lines
        assert (await cart_view(conn, b.store.id, "EUR", token)).cart is None
        assert await snapshot_by_id(conn, a.store.id, snapshot.id) is not None
        assert await snapshot_by_id(conn, b.store.id, snapshot.id) is None


async def test_stock_statements_by_another_store_change_nothing(
    world: World, sessions: Sessions, engine: AsyncEngine
) -> None:
    a, b = await make_shop(world), await make_shop(world)
    before = await _stock(sessions, a)
    holder = uuid.uuid4()
    async with pg.connection(engine) as conn:
        with pytest.raises(SoldOut):  # B has no stock row for A's variant
            await reserve_stock(
                conn,
                b.store.id,
                {a.variants["MUG-1"]: 1},
                claim_sql=_CLAIM_NOTHING,
                claim_args=(),
                now=datetime.now(UTC),
            )
        assert await _stock(sessions, a) == before
        # A real reservation in A, then B tries to sell and to release it.
        await reserve_stock(
            conn,
            a.store.id,
            {a.variants["MUG-1"]: 1},
            claim_sql=f"SELECT '{holder}'::uuid AS id WHERE NOT EXISTS (SELECT 1 FROM short)",
            claim_args=(),
            now=datetime.now(UTC),
        )
        assert await move_reserved(conn, b.store.id, holder, sold=True) == 0
        assert await move_reserved(conn, b.store.id, holder, sold=False) == 0
    assert await _stock(sessions, a) == (before[0], before[1] + 1)
    async with sessions() as session:
        bind_store(session, a.store.id)
        assert (await session.scalar(select(Reservation.status).where(Reservation.holder_id == holder))) == "active"


async def test_idempotency_keys_are_per_store(world: World, engine: AsyncEngine) -> None:
    a, b = await world.store(), await world.store()
    keys = IdempotencyStore(engine)
    assert (await keys.claim(a.id, "token:x", "k", "f")).outcome == "proceed"
    assert (await keys.claim(b.id, "token:x", "k", "other")).outcome == "proceed"  # not A's key: no mismatch
    await keys.complete(b.id, "token:x", "k", StoredResponse(201, {}, b"b"))
    await keys.release(b.id, "token:x", "k")
    assert (await keys.claim(a.id, "token:x", "k", "f")).outcome == "in_flight"  # A's claim untouched


async def test_the_saga_of_another_store_cannot_pay_or_place_a_checkout(
    world: World, sessions: Sessions, engine: AsyncEngine, redis: Redis, settings: Settings
) -> None:
    a, b = await make_shop(world), await make_shop(world)
    snapshot = await _snapshot(sessions, a)
    saga_b = CheckoutSaga(sessions, b.store, provider_for(b.store, redis, settings))
    with pytest.raises(ValidationFailed):
        await saga_b.complete(snapshot.id, "key-b", PaymentInput(card=VISA), fingerprint="f")
    # A's attempt, paid; B's saga tries to place it.
    saga_a = CheckoutSaga(sessions, a.store, provider_for(a.store, redis, settings))
    outcome = await saga_a.complete(snapshot.id, "key-a", PaymentInput(card=VISA), fingerprint="f")
    assert outcome.state == "completed" and outcome.order is not None
    async with sessions() as session:
        bind_store(session, a.store.id)
        attempt = await session.scalar(select(CheckoutAttempt).where(CheckoutAttempt.id == outcome.attempt_id))
        assert attempt is not None and attempt.state == "completed"
    result = await provider_for(a.store, redis, settings).get_transaction(
        await _intent_ref(sessions, a, outcome.attempt_id)
    )
    assert result.status == PaymentStatus.CAPTURED
    with pytest.raises(ValidationFailed):
        await saga_b._place(outcome.attempt_id, result, "key-b")


async def _intent_ref(sessions: Sessions, shop: Shop, attempt_id: uuid.UUID) -> str:
    async with sessions() as session:
        bind_store(session, shop.store.id)
        ref = await session.scalar(
            select(PaymentIntent.provider_ref)
            .join(CheckoutAttempt, CheckoutAttempt.payment_intent_id == PaymentIntent.id)
            .where(CheckoutAttempt.id == attempt_id)
        )
    assert ref is not None
    return ref
