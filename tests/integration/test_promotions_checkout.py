"""Promotions in the checkout: the quote's discounts (per line, tax after discount), the use claimed with the
attempt and put on the order, released by a failed or compensated checkout, never over a limit under parallel
checkouts over real HTTP, and the SQL budget of a completion with a code."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cart.services import CartService
from app.catalog.models import Variant
from app.checkout.models import CheckoutAttempt, CheckoutSnapshot
from app.checkout.quotes import QuoteRequest, QuoteService
from app.checkout.saga import CheckoutSaga, PaymentInput, PromotionUnavailable
from app.config import Settings
from app.core import pg
from app.core.errors import ValidationFailed
from app.core.money import Money
from app.core.outbox import OutboxEvent
from app.core.rbac import Role
from app.core.tenancy import bind_store, system_scope
from app.inventory.models import StockLevel
from app.inventory.services import move_reserved
from app.orders.cancellation import OrderCancellation
from app.orders.models import Order
from app.orders.services import Actor
from app.payments.models import PaymentIntent
from app.payments.operations import PaymentOperations
from app.payments.provider import CardDetails
from app.payments.registry import provider_for
from app.payments.sandbox import SandboxProvider
from app.promotions.claims import ensure_customer_uses, load_offers, release_held, return_used
from app.promotions.services import PromotionService, PromotionSettings
from app.stores.models import Store
from app.tax.providers import BuiltinTax, TaxableLine
from tests.integration.conftest import World, bearer, issue_token
from tests.integration.http_server import serving
from tests.integration.promotions import Sessions, make_promotion, promotion_state, quote
from tests.integration.shop import Shop, make_shop
from tests.integration.statements import counted
from workers.tasks import return_promotion_uses

VISA = CardDetails("4242424242424242", 12, 2034, "123")
DECLINED = CardDetails("4000000000000002", 12, 2034, "123")


@pytest.fixture
def saga_of(sessions: Sessions, redis: Redis, settings: Settings) -> Any:
    def make(shop: Shop) -> CheckoutSaga:
        return CheckoutSaga(sessions, shop.store, provider_for(shop.store, redis, settings))

    return make


async def _reserved(sessions: Sessions, shop: Shop, sku: str) -> int:
    async with sessions() as session:
        bind_store(session, shop.store.id)
        level = await session.scalar(select(StockLevel).where(StockLevel.variant_id == shop.variants[sku]))
        assert level is not None
        return level.reserved


async def _set_tax_exclusive(sessions: Sessions, store: Store) -> Store:
    async with sessions() as session, session.begin():
        bind_store(session, store.id)
        row = await session.get(Store, store.id)
        assert row is not None
        row.settings = {**row.settings, "prices_include_tax": False}
        await session.flush()
        return row


# ---- the quote ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("inclusive", [True, False])
async def test_a_code_discounts_each_line_and_tax_is_on_what_is_paid(
    world: World, sessions: Sessions, inclusive: bool
) -> None:
    shop = await make_shop(world)
    if not inclusive:
        shop.store = await _set_tax_exclusive(sessions, shop.store)
    promotion = await make_promotion(sessions, shop.store)
    snapshot = await quote(sessions, shop, {"BEAN-1": 1, "MUG-1": 1, "CRO-1": 3}, codes=("ten",))
    lines = {line["sku"]: line for line in snapshot.lines}
    # 10 % of 33.10 is 3.31, split by line: 1.19 + 1.40 + 0.72
    assert [lines[s]["discount_minor"] for s in ("BEAN-1", "MUG-1", "CRO-1")] == [119, 140, 72]
    assert lines["MUG-1"]["discounts"] == [{"label": "TEN", "amount_minor": 140}]
    assert snapshot.discount_minor == 331 == sum(line["discount_minor"] for line in snapshot.lines)
    assert snapshot.discounts == [
        {"promotion_id": str(promotion.id), "name": "Ten off", "code": "TEN", "kind": "percentage",
         "amount_minor": 331, "shipping_minor": 0, "lines": {"0": 119, "1": 140, "2": 72}}
    ]  # fmt: skip
    expected = BuiltinTax.from_settings({}, "EUR").quote(
        [
            TaxableLine("b", Money(1190 - 119, "EUR"), "reduced"),
            TaxableLine("m", Money(1400 - 140, "EUR"), "standard"),
            TaxableLine("c", Money(720 - 72, "EUR"), "reduced"),
        ],
        country="DE",
        prices_include_tax=inclusive,
    )
    assert snapshot.tax_minor == expected.total_tax.amount_minor
    assert [lines[s]["tax_minor"] for s in ("BEAN-1", "MUG-1", "CRO-1")] == [t.tax.amount_minor for t in expected.lines]
    tax_on_top = 0 if inclusive else snapshot.tax_minor
    assert snapshot.total_minor == 3310 - 331 + tax_on_top


async def test_free_shipping_takes_off_delivery_and_its_tax(world: World, sessions: Sessions) -> None:
    shop = await make_shop(world)
    await make_promotion(sessions, shop.store, name="Free delivery", code="SHIPFREE", kind="free_shipping")
    address = {"name": "Dana", "line1": "Torstraße 1", "city": "Berlin", "postal_code": "10119", "country": "DE"}
    snapshot = await quote(sessions, shop, {"MUG-1": 1}, codes=("shipfree",), shipping_code="delivery", address=address)
    assert snapshot.shipping_minor > 0
    assert snapshot.discount_minor == snapshot.shipping_minor
    assert all(line["discount_minor"] == 0 for line in snapshot.lines)
    assert [t["key"] for t in snapshot.tax_lines] == [str(shop.variants["MUG-1"])]  # no tax on free delivery
    assert snapshot.total_minor == 1400


async def test_an_invalid_code_is_refused_with_its_reason_and_nothing_is_written(
    world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    await make_promotion(sessions, shop.store, min_subtotal_minor=5000, per_customer_limit=1)
    with pytest.raises(ValidationFailed) as refused:
        await quote(sessions, shop, {"MUG-1": 1}, codes=("TEN",))
    assert refused.value.fields == {"code": "Spend €36.00 more to use this code."}
    with pytest.raises(ValidationFailed) as unknown:
        await quote(sessions, shop, {"MUG-1": 1}, codes=("NOPE",))
    assert unknown.value.fields == {"code": "We don't know the code NOPE. Check the spelling."}
    async with sessions() as session:
        system_scope(session)
        assert await session.scalar(select(func.count()).select_from(CheckoutSnapshot)) == 0
    promotion = await make_promotion(sessions, shop.store, code="OTHER", per_customer_limit=1)
    assert (await promotion_state(sessions, shop.store.id, promotion.id))["customers"] == {}


async def test_an_automatic_promotion_applies_without_a_code_to_the_lines_it_covers(
    world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    async with sessions() as session:
        bind_store(session, shop.store.id)
        product_id = await session.scalar(select(Variant.product_id).where(Variant.id == shop.variants["MUG-1"]))
    await make_promotion(
        sessions, shop.store, name="Mug week", code=None, percent_bps=2000, applies_to="products",
        product_ids=(str(product_id),),
    )  # fmt: skip
    snapshot = await quote(sessions, shop, {"BEAN-1": 1, "MUG-1": 1})
    assert [line["discount_minor"] for line in snapshot.lines] == [0, 280]
    assert snapshot.lines[1]["discounts"] == [{"label": "Mug week", "amount_minor": 280}]


# ---- completing: claim, use, release ------------------------------------------------------------------------


async def test_completing_puts_the_discount_on_the_order_lines_and_the_use_on_the_order(
    world: World, sessions: Sessions, saga_of: Any
) -> None:
    shop = await make_shop(world)
    promotion = await make_promotion(sessions, shop.store, usage_limit=10, per_customer_limit=2)
    snapshot = await quote(sessions, shop, {"BEAN-1": 2, "MUG-1": 1}, codes=("TEN",))
    outcome = await saga_of(shop).complete(snapshot.id, "k1", PaymentInput(card=VISA), fingerprint="f")
    assert outcome.state == "completed" and outcome.order is not None
    async with sessions() as session:
        bind_store(session, shop.store.id)
        order = await session.get(Order, outcome.order.id)
        assert order is not None
        assert order.discount_minor == snapshot.discount_minor == 378
        assert [line.discount_minor for line in order.lines] == [238, 140]
        assert order.discounts[0]["code"] == "TEN" and order.discounts[0]["lines"] == {"0": 238, "1": 140}
        assert order.total_minor == snapshot.total_minor
    state = await promotion_state(sessions, shop.store.id, promotion.id)
    assert state == {"uses_claimed": 1, "statuses": {"used": 1}, "customers": {"ann@example.com": 1}}


async def test_a_declined_card_releases_the_use(world: World, sessions: Sessions, saga_of: Any) -> None:
    shop = await make_shop(world)
    promotion = await make_promotion(sessions, shop.store, usage_limit=1, per_customer_limit=1)
    snapshot = await quote(sessions, shop, {"MUG-1": 1}, codes=("TEN",))
    outcome = await saga_of(shop).complete(snapshot.id, "k1", PaymentInput(card=DECLINED), fingerprint="f")
    assert outcome.state == "failed"
    state = await promotion_state(sessions, shop.store.id, promotion.id)
    assert state == {"uses_claimed": 0, "statuses": {"released": 1}, "customers": {"ann@example.com": 0}}
    # ... so the same shopper can use it after all.
    again = await quote(sessions, shop, {"MUG-1": 1}, codes=("TEN",))
    assert (await saga_of(shop).complete(again.id, "k2", PaymentInput(card=VISA), fingerprint="f")).state == "completed"
    assert (await promotion_state(sessions, shop.store.id, promotion.id))["uses_claimed"] == 1


async def test_a_compensated_checkout_releases_the_use(
    world: World, sessions: Sessions, engine: AsyncEngine, saga_of: Any
) -> None:
    """The shopper passes 3-D Secure after the sweeper released the stock: no order, and the use goes back."""
    shop = await make_shop(world)
    promotion = await make_promotion(sessions, shop.store, usage_limit=3)
    snapshot = await quote(sessions, shop, {"CRO-1": 2}, codes=("TEN",))
    saga = saga_of(shop)
    card = CardDetails("4000000000003220", 12, 2034, "123")
    outcome = await saga.complete(snapshot.id, "k3ds", PaymentInput(card=card), fingerprint="f")
    assert (await promotion_state(sessions, shop.store.id, promotion.id))["statuses"] == {"held": 1}
    async with pg.connection(engine) as conn:
        assert await move_reserved(conn, shop.store.id, outcome.attempt_id, sold=False) == 1
    provider = saga.provider
    assert isinstance(provider, SandboxProvider)
    await provider.complete_challenge(outcome.action_url.rsplit("/", 1)[1], approve=True)
    late = await saga.resume(outcome.attempt_id)
    assert late.state == "failed" and late.error_code == "reservation_expired"
    state = await promotion_state(sessions, shop.store.id, promotion.id)
    assert state["uses_claimed"] == 0 and state["statuses"] == {"released": 1}


async def test_a_provider_timeout_releases_the_use(world: World, sessions: Sessions, saga_of: Any) -> None:
    shop = await make_shop(world)
    promotion = await make_promotion(sessions, shop.store, usage_limit=3)
    snapshot = await quote(sessions, shop, {"BEAN-1": 1}, codes=("TEN",))
    timeout = CardDetails("4000000000000119", 12, 2034, "123")
    outcome = await saga_of(shop).complete(snapshot.id, "k", PaymentInput(card=timeout), fingerprint="f")
    assert outcome.state == "failed" and outcome.error_code == "payment_unconfirmed"
    assert (await promotion_state(sessions, shop.store.id, promotion.id))["uses_claimed"] == 0


async def test_a_code_used_up_after_the_quote_is_refused_at_payment_before_anything_is_held(
    world: World, sessions: Sessions, saga_of: Any
) -> None:
    shop = await make_shop(world)
    promotion = await make_promotion(sessions, shop.store, usage_limit=1)
    first = await quote(sessions, shop, {"MUG-1": 1}, codes=("TEN",), email="a@example.com")
    second = await quote(sessions, shop, {"MUG-1": 1}, codes=("TEN",), email="b@example.com")
    saga = saga_of(shop)
    assert (await saga.complete(first.id, "k1", PaymentInput(card=VISA), fingerprint="f")).state == "completed"
    with pytest.raises(PromotionUnavailable) as refused:
        await saga.complete(second.id, "k2", PaymentInput(card=VISA), fingerprint="f")
    assert refused.value.status_code == 409
    assert refused.value.fields == {"code": "This code has just been used up."}
    assert "TEN: This code has just been used up." in refused.value.detail
    assert await _reserved(sessions, shop, "MUG-1") == 0
    async with sessions() as session:
        bind_store(session, shop.store.id)
        assert await session.scalar(select(func.count()).select_from(CheckoutAttempt)) == 1
    assert (await promotion_state(sessions, shop.store.id, promotion.id))["uses_claimed"] == 1


async def test_a_promotion_paused_after_the_quote_is_refused_at_payment(
    world: World, sessions: Sessions, saga_of: Any
) -> None:
    shop = await make_shop(world)
    promotion = await make_promotion(sessions, shop.store)
    snapshot = await quote(sessions, shop, {"MUG-1": 1}, codes=("TEN",))
    async with sessions() as session, session.begin():
        await PromotionService(session, shop.store.id).set_status(promotion.id, "paused", actor=None)
    with pytest.raises(PromotionUnavailable) as refused:
        await saga_of(shop).complete(snapshot.id, "k1", PaymentInput(card=VISA), fingerprint="f")
    assert refused.value.fields == {"code": "This offer has ended."}


async def test_a_double_click_claims_the_use_once(world: World, sessions: Sessions, saga_of: Any) -> None:
    """Even the last use: the clicks after the first find it claimed by the first, and join that attempt."""
    shop = await make_shop(world)
    promotion = await make_promotion(sessions, shop.store, usage_limit=1, per_customer_limit=1)
    snapshot = await quote(sessions, shop, {"MUG-1": 1}, codes=("TEN",))
    saga = saga_of(shop)
    outcomes = await asyncio.gather(
        *(saga.complete(snapshot.id, "same-key", PaymentInput(card=VISA), fingerprint="f") for _ in range(8))
    )
    assert {o.order.id for o in outcomes if o.order} and all(o.state == "completed" for o in outcomes)
    state = await promotion_state(sessions, shop.store.id, promotion.id)
    assert state["uses_claimed"] == 1 and state["statuses"] == {"used": 1}


async def test_a_whole_order_refund_gives_the_use_back_when_the_store_says_so(
    world: World, sessions: Sessions, saga_of: Any
) -> None:
    shop = await make_shop(world)
    promotion = await make_promotion(sessions, shop.store, usage_limit=2, per_customer_limit=1)
    snapshot = await quote(sessions, shop, {"MUG-1": 1}, codes=("TEN",))
    outcome = await saga_of(shop).complete(snapshot.id, "k1", PaymentInput(card=VISA), fingerprint="f")
    assert outcome.order is not None
    async with sessions() as session, session.begin():
        assert await PromotionService(session, shop.store.id).give_back(outcome.order.id) == 0  # setting off
    async with sessions() as session, session.begin():
        service = PromotionService(session, shop.store.id)
        await service.set_settings(PromotionSettings(return_use_on_refund=True), actor=None)
    async with sessions() as session, session.begin():
        assert await PromotionService(session, shop.store.id).give_back(outcome.order.id) == 1
    async with sessions() as session, session.begin():
        assert await PromotionService(session, shop.store.id).give_back(outcome.order.id) == 0  # once
    state = await promotion_state(sessions, shop.store.id, promotion.id)
    assert state == {"uses_claimed": 0, "statuses": {"returned": 1}, "customers": {"ann@example.com": 0}}


# ---- the SQL budget ----------------------------------------------------------------------------------------------


async def test_completing_with_a_limited_code_stays_within_the_sql_budget(
    world: World, sessions: Sessions, engine: AsyncEngine, saga_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every statement the database receives, through SQLAlchemy or raw asyncpg (ADR 0003). The issue's budget
    for a completion with one code is 5; it takes 3, like one without: the snapshot read, then the claim of the
    attempt with its stock and the promotion's use (ADR 0006), then placing the order with the use on it."""
    shop = await make_shop(world)
    await make_promotion(sessions, shop.store, usage_limit=100, per_customer_limit=2)
    snapshot = await quote(sessions, shop, {"BEAN-1": 1, "MUG-1": 2, "CRO-1": 3}, codes=("TEN",))
    with counted(engine, monkeypatch) as statements:
        outcome = await saga_of(shop).complete(snapshot.id, uuid.uuid4().hex, PaymentInput(card=VISA), fingerprint="f")
    assert outcome.state == "completed"
    assert len(statements) == 3, "\n".join(statements)
    assert "promo_claimed" in statements[1] and "promo_used" in statements[2]


async def test_a_quote_reads_its_cart_and_offers_in_one_statement(
    world: World, sessions: Sessions, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quote is one read (the cart with the offers its variants may get: issue 20) and the snapshot's insert; a
    code with a per-customer limit adds the shopper's use-count row before the insert."""
    shop = await make_shop(world)
    async with sessions() as session:
        bind_store(session, shop.store.id)
        product_id = await session.scalar(select(Variant.product_id).where(Variant.id == shop.variants["MUG-1"]))
    await make_promotion(
        sessions, shop.store, name="Mug week", code=None, percent_bps=2000, applies_to="products", combinable=True,
        product_ids=(str(product_id),),
    )  # fmt: skip
    await make_promotion(sessions, shop.store, code="ONCE", per_customer_limit=1, combinable=True)
    tokens = []
    for _ in range(2):
        async with sessions() as session, session.begin():
            carts = CartService(session, shop.store.id, shop.store.currency)
            cart = await carts.get_or_create(None)
            await carts.add(cart, shop.variants["BEAN-1"], 1)
            await carts.add(cart, shop.variants["MUG-1"], 1)
            tokens.append(cart.token)
    async with pg.connection(engine) as conn:
        service = QuoteService(conn, shop.store)
        with counted(engine, monkeypatch) as statements:
            plain = await service.create(QuoteRequest(cart_token=tokens[0], email="ann@example.com"))
        with counted(engine, monkeypatch) as limited_statements:
            limited = await service.create(QuoteRequest(cart_token=tokens[1], email="ann@example.com", codes=("once",)))
    assert len(statements) == 2, "\n".join(statements)
    assert "cart_rows" in statements[0] and statements[1].lstrip().startswith("INSERT INTO checkout_snapshots")
    assert [line["discount_minor"] for line in plain.lines] == [0, 280]  # the product's offer, read with the cart
    assert len(limited_statements) == 3, "\n".join(limited_statements)
    assert "promotion_customer_uses" in limited_statements[1]
    assert {d["code"] for d in limited.discounts} == {"", "ONCE"}  # the automatic offer and the code


# ---- limits under parallel checkouts over real HTTP --------------------------------------------------------------


async def _parallel_checkouts(
    settings: Settings, world: World, shop: Shop, *, emails: list[str], code: str
) -> tuple[list[int], list[dict[str, Any]]]:
    """One cart and quote per e-mail through the API, then every completion at once over real connections."""
    auth = bearer(await issue_token(world, shop.store))
    async with serving(settings) as base, httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as http:
        quotes = []
        for email in emails:
            cart = (await http.post("/api/v1/checkout/carts")).json()
            added = await http.post(
                f"/api/v1/checkout/carts/{cart['token']}/lines", json={"variant_id": str(shop.variants["CRO-1"])}
            )
            assert added.status_code == 200, added.text
            quoted = await http.post(
                "/api/v1/checkout/quote", json={"cart_token": cart["token"], "email": email, "code": code}
            )
            assert quoted.status_code == 201, quoted.text
            assert quoted.json()["discount_minor"] == 24
            quotes.append(quoted.json())
        card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
        answers = await asyncio.gather(
            *(
                http.post(
                    "/api/v1/checkout/complete",
                    json={"snapshot_id": q["id"], "amount_minor": q["total_minor"], "card": card},
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                )
                for q in quotes
            )
        )
    return [a.status_code for a in answers], [a.json() for a in answers]


async def test_thirty_parallel_checkouts_with_five_uses_left_give_exactly_five_orders(
    world: World, sessions: Sessions, settings: Settings
) -> None:
    shop = await make_shop(world)
    promotion = await make_promotion(sessions, shop.store, usage_limit=5)
    statuses, bodies = await _parallel_checkouts(
        settings, world, shop, emails=[f"s{i}@example.com" for i in range(30)], code="ten"
    )
    assert Counter(statuses) == {201: 5, 409: 25}, Counter(statuses)
    refused = [b for b, s in zip(bodies, statuses, strict=True) if s == 409]
    assert {b["type"] for b in refused} == {"https://till.dev/problems/promotion_unavailable"}
    assert {b["fields"]["code"] for b in refused} == {"This code has just been used up."}
    state = await promotion_state(sessions, shop.store.id, promotion.id)
    assert state["uses_claimed"] == 5 and state["statuses"] == {"used": 5}
    async with sessions() as session:
        bind_store(session, shop.store.id)
        discounted = await session.scalar(select(func.count()).select_from(Order).where(Order.discount_minor > 0))
        assert discounted == 5 and await session.scalar(select(func.count()).select_from(Order)) == 5
    assert await _reserved(sessions, shop, "CRO-1") == 0


async def test_thirty_parallel_checkouts_by_one_shopper_stop_at_the_per_customer_limit(
    world: World, sessions: Sessions, settings: Settings
) -> None:
    shop = await make_shop(world)
    promotion = await make_promotion(sessions, shop.store, per_customer_limit=2)
    statuses, bodies = await _parallel_checkouts(settings, world, shop, emails=["same@example.com"] * 30, code="TEN")
    assert Counter(statuses) == {201: 2, 409: 28}, Counter(statuses)
    assert {b["fields"]["code"] for b, s in zip(bodies, statuses, strict=True) if s == 409} == {
        "You have already used this code."
    }
    state = await promotion_state(sessions, shop.store.id, promotion.id)
    assert state["customers"] == {"same@example.com": 2} and state["statuses"] == {"used": 2}
    assert state["uses_claimed"] == 0  # no global limit: its row is never counted (nor locked)


async def test_the_claim_statements_never_touch_another_store(
    world: World, sessions: Sessions, engine: AsyncEngine, saga_of: Any
) -> None:
    """Raw SQL names the store (ADR 0003): another store's id finds, claims and gives back nothing."""
    shop = await make_shop(world)
    other = await world.store()
    promotion = await make_promotion(sessions, shop.store, usage_limit=5, per_customer_limit=3)
    snapshot = await quote(sessions, shop, {"MUG-1": 1}, codes=("TEN",))
    outcome = await saga_of(shop).complete(snapshot.id, "k1", PaymentInput(card=VISA), fingerprint="f")
    assert outcome.order is not None
    async with pg.connection(engine) as conn:
        seen = await load_offers(conn, other.id, codes=["TEN"], variant_ids=[shop.variants["MUG-1"]])
        assert seen.offers == () and seen.catalog == {}
        assert await release_held(conn, other.id, outcome.attempt_id) == 0
        assert await return_used(conn, other.id, outcome.order.id) == 0
        await ensure_customer_uses(conn, other.id, seen.offers, [str(promotion.id)], "eve@example.com")
        mine = await load_offers(conn, shop.store.id, codes=["TEN"])
        await ensure_customer_uses(conn, other.id, mine.offers, [str(promotion.id)], "eve@example.com")
    state = await promotion_state(sessions, shop.store.id, promotion.id)
    assert state["statuses"] == {"used": 1} and state["uses_claimed"] == 1
    assert state["customers"] == {"ann@example.com": 1}  # no row for eve: the other store's id reached nothing


# ---- a whole order's money back: the use counts again (the store's setting), through the outbox consumer ----------


async def _events(sessions: Sessions, order_id: uuid.UUID, event_type: str) -> list[dict[str, Any]]:
    """The order's outbox events of a type, as the relay hands them to a consumer."""
    async with sessions() as session:
        system_scope(session)
        rows = await session.scalars(
            select(OutboxEvent).where(OutboxEvent.aggregate_id == str(order_id), OutboxEvent.type == event_type)
        )
        return [
            {"id": row.id, "store_id": str(row.store_id), "type": row.type, "aggregate_id": row.aggregate_id,
             "payload": row.payload}
            for row in rows
        ]  # fmt: skip


@pytest.mark.parametrize("how", ["refund", "cancel"])
async def test_a_full_refund_or_a_cancellation_gives_the_use_back_through_the_worker(
    world: World, sessions: Sessions, saga_of: Any, how: str
) -> None:
    shop = await make_shop(world)
    promotion = await make_promotion(sessions, shop.store, usage_limit=1)
    async with sessions() as session, session.begin():
        await PromotionService(session, shop.store.id).set_settings(
            PromotionSettings(return_use_on_refund=True), actor=None
        )
    snapshot = await quote(sessions, shop, {"MUG-1": 1}, codes=("TEN",))
    saga = saga_of(shop)
    outcome = await saga.complete(snapshot.id, "k1", PaymentInput(card=VISA), fingerprint="f")
    assert outcome.order is not None
    order_id = outcome.order.id
    actor = Actor(Role.MANAGER, "Mia", "staff")
    if how == "refund":
        async with sessions() as session:
            bind_store(session, shop.store.id)
            intent_id = await session.scalar(select(PaymentIntent.id).where(PaymentIntent.order_id == order_id))
        assert intent_id is not None
        await PaymentOperations(sessions, shop.store.id, saga.provider).refund(
            order_id, intent_id, amount_minor=None, reason="changed their mind", actor=actor
        )
        events = await _events(sessions, order_id, "order.payment_changed")
    else:
        await OrderCancellation(sessions, shop.store.id, saga.provider).cancel(order_id, actor=actor, reason="late")
        events = await _events(sessions, order_id, "order.status_changed")
    ctx: Any = {"sessions": sessions}
    results = [await return_promotion_uses(ctx, event=event) for event in events]
    assert results == ["returned 1"]
    assert [await return_promotion_uses(ctx, event=event) for event in events] == ["skipped"]  # once per event
    state = await promotion_state(sessions, shop.store.id, promotion.id)
    assert state["uses_claimed"] == 0 and state["statuses"] == {"returned": 1}
