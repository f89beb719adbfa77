"""Stored value in the checkout saga (issue 15): a gift card / store credit held before the card is charged and
captured with the order, the card paying the rest (nothing when they cover it all); every failure path releases
the hold; a killed checkout's hold is released by the sweeper; 20 parallel checkouts over real HTTP on one card
that covers 3 give exactly 3 orders; and the SQL budget with and without stored value."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.checkout.models import CheckoutAttempt, CheckoutSnapshot
from app.checkout.saga import STALL_AFTER, CheckoutSaga, PaymentInput, StoredValueUnavailable
from app.config import Settings
from app.core.encryption import install_keyring
from app.core.errors import ValidationFailed
from app.core.jobs import enqueue
from app.core.tenancy import bind_store, system_scope
from app.customers.models import Customer
from app.orders.models import Order
from app.payments.models import PaymentIntent
from app.payments.provider import CardDetails
from app.payments.registry import provider_for
from app.stored_value.instruments import TenderRequest
from app.stored_value.ledger import Account, Ledger
from app.stored_value.models import StoredValueHold
from app.stored_value.services import GiftCardService, StoreCreditService
from tests.integration.conftest import World, bearer, issue_token
from tests.integration.http_server import serving
from tests.integration.shop import Shop, make_shop
from tests.integration.statements import counted
from tests.integration.stored_value_crash import charge_then_kill
from tests.integration.test_checkout_saga import _quote
from workers.settings import build_worker

Sessions = async_sessionmaker[AsyncSession]
VISA = CardDetails("4242424242424242", 12, 2034, "123")
DECLINED = CardDetails("4000000000000002", 12, 2034, "123")


@pytest.fixture(autouse=True)
def keyring(settings: Settings) -> None:
    install_keyring(settings)  # the app's keyring: codes hashed here are found over HTTP


@pytest.fixture
def saga_for(sessions: Sessions, redis: Redis, settings: Settings) -> Any:
    def make(shop: Shop) -> CheckoutSaga:
        return CheckoutSaga(sessions, shop.store, provider_for(shop.store, redis, settings))

    return make


async def gift_card(sessions: Sessions, shop: Shop, amount_minor: int) -> tuple[Account, str]:
    async with sessions() as session, session.begin():
        bind_store(session, shop.store.id)
        issued = await GiftCardService(session, shop.store.id).issue(amount_minor, "EUR", principal=None)
    return issued[0].account, issued[0].code


async def account_state(sessions: Sessions, shop: Shop, account_id: uuid.UUID) -> dict[str, Any]:
    async with sessions() as session:
        bind_store(session, shop.store.id)
        ledger = Ledger(session, shop.store.id)
        check = await ledger.verify(account_id)
        kinds = Counter(e.kind for e in await ledger.entries(account_id))
        rows = await session.scalars(select(StoredValueHold.status).where(StoredValueHold.account_id == account_id))
        holds = Counter(rows)
    return {**check, "entries": dict(kinds), "holds": dict(holds)}


async def _intent_of(sessions: Sessions, order: Order) -> PaymentIntent:
    async with sessions() as session:
        system_scope(session)
        intent = await session.scalar(select(PaymentIntent).where(PaymentIntent.order_id == order.id))
        assert intent is not None
        return intent


async def test_a_gift_card_pays_part_and_the_card_the_rest(
    world: World, sessions: Sessions, saga_for: Any, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = await make_shop(world)
    card, code = await gift_card(sessions, shop, 1000)
    snapshot = await _quote(sessions, shop, {"MUG-1": 2})  # 28.00
    payment = PaymentInput(card=VISA, tenders=(TenderRequest("gift_card", code=code.lower().replace("-", " ")),))
    with counted(engine, monkeypatch) as statements:
        outcome = await saga_for(shop).complete(snapshot.id, "k1", payment, fingerprint="f")
    assert outcome.state == "completed" and outcome.order is not None
    # The budget with one gift card: its lookup, then the usual three (hold in the claim, capture in the placing).
    assert len(statements) == 4, "\n".join(statements)
    assert "stored_value_accounts" in statements[1] and "sv_holds" in statements[2] and "sv_captured" in statements[3]
    intent = await _intent_of(sessions, outcome.order)
    assert (intent.amount_minor, intent.captured_minor, intent.provider) == (1800, 1800, "sandbox")
    assert outcome.order.total_minor == 2800 and outcome.order.payment_status == "paid"
    state = await account_state(sessions, shop, card.id)
    assert (state["balance_minor"], state["held_minor"], state["drift"]) == (0, 0, 0)
    assert state["entries"] == {"issue": 1, "hold": 1, "capture": 1} and state["holds"] == {"captured": 1}
    async with sessions() as session:
        bind_store(session, shop.store.id)
        holds = await Ledger(session, shop.store.id).holds_of_order(outcome.order.id)
    assert [(h.value_minor, h.status) for h in holds] == [(1000, "captured")]


async def test_a_gift_card_that_covers_the_total_needs_no_card(world: World, sessions: Sessions, saga_for: Any) -> None:
    shop = await make_shop(world)
    card, code = await gift_card(sessions, shop, 5000)
    snapshot = await _quote(sessions, shop, {"MUG-1": 1})  # 14.00
    payment = PaymentInput(tenders=(TenderRequest("gift_card", code=code),))
    outcome = await saga_for(shop).complete(snapshot.id, "k1", payment, fingerprint="f")
    assert outcome.state == "completed" and outcome.order is not None
    assert outcome.order.payment_status == "paid"
    intent = await _intent_of(sessions, outcome.order)
    assert (intent.provider, intent.amount_minor) == ("stored_value", 0)
    state = await account_state(sessions, shop, card.id)
    assert (state["balance_minor"], state["held_minor"], state["drift"]) == (3600, 0, 0)


async def test_without_a_card_a_balance_that_does_not_cover_is_refused(
    world: World, sessions: Sessions, saga_for: Any
) -> None:
    shop = await make_shop(world)
    card, code = await gift_card(sessions, shop, 500)
    snapshot = await _quote(sessions, shop, {"MUG-1": 1})
    with pytest.raises(ValidationFailed) as refused:
        await saga_for(shop).complete(
            snapshot.id, "k1", PaymentInput(tenders=(TenderRequest("gift_card", code=code),)), fingerprint="f"
        )
    assert refused.value.fields == {"card": "The balance does not cover the total."}
    with pytest.raises(ValidationFailed) as unknown:
        await saga_for(shop).complete(
            snapshot.id,
            "k2",
            PaymentInput(card=VISA, tenders=(TenderRequest("gift_card", code="AAAA-BBBB-CCCC-DDDD"),)),
            fingerprint="f",
        )
    assert "could not find a gift card" in unknown.value.fields["stored_value"]
    assert (await account_state(sessions, shop, card.id))["entries"] == {"issue": 1}


async def test_a_declined_card_releases_the_hold(world: World, sessions: Sessions, saga_for: Any) -> None:
    shop = await make_shop(world)
    card, code = await gift_card(sessions, shop, 1000)
    snapshot = await _quote(sessions, shop, {"MUG-1": 2})
    payment = PaymentInput(card=DECLINED, tenders=(TenderRequest("gift_card", code=code),))
    outcome = await saga_for(shop).complete(snapshot.id, "k1", payment, fingerprint="f")
    assert outcome.state == "failed"
    state = await account_state(sessions, shop, card.id)
    assert (state["balance_minor"], state["held_minor"], state["drift"]) == (1000, 0, 0)
    assert state["entries"] == {"issue": 1, "hold": 1, "release": 1} and state["holds"] == {"released": 1}


async def test_store_credit_and_a_gift_card_in_one_order(world: World, sessions: Sessions, saga_for: Any) -> None:
    shop = await make_shop(world)
    card, code = await gift_card(sessions, shop, 1000)
    async with sessions() as session, session.begin():
        bind_store(session, shop.store.id)
        customer = Customer(store_id=shop.store.id, email="ann@example.com", name="Ann")
        session.add(customer)
        await session.flush()
        await StoreCreditService(session, shop.store.id).issue(customer.id, 700, "EUR", "goodwill", principal=None)
        customer_id = customer.id
    snapshot = await _quote(sessions, shop, {"MUG-1": 2}, email="ann@example.com")  # 28.00
    async with sessions() as session, session.begin():
        system_scope(session)
        await session.execute(
            update(CheckoutSnapshot).where(CheckoutSnapshot.id == snapshot.id).values(customer_id=customer_id)
        )
    tenders = (TenderRequest("store_credit"), TenderRequest("gift_card", code=code))
    outcome = await saga_for(shop).complete(
        snapshot.id, "k1", PaymentInput(card=VISA, tenders=tenders), fingerprint="f"
    )
    assert outcome.state == "completed" and outcome.order is not None
    assert (await _intent_of(sessions, outcome.order)).amount_minor == 2800 - 700 - 1000
    async with sessions() as session:
        bind_store(session, shop.store.id)
        credit = await StoreCreditService(session, shop.store.id).of_customer(customer_id)
    assert credit is not None and credit.balance_minor == 0
    assert (await account_state(sessions, shop, card.id))["balance_minor"] == 0


async def test_a_card_spent_meanwhile_is_refused_before_anything_is_charged(
    world: World, sessions: Sessions, saga_for: Any
) -> None:
    shop = await make_shop(world)
    _card, code = await gift_card(sessions, shop, 1000)
    first = await _quote(sessions, shop, {"MUG-1": 1}, email="a@example.com")
    second = await _quote(sessions, shop, {"MUG-1": 1}, email="b@example.com")
    saga = saga_for(shop)
    tender = (TenderRequest("gift_card", code=code, amount_minor=800),)
    assert (await saga.complete(first.id, "k1", PaymentInput(card=VISA, tenders=tender), fingerprint="f")).state == (
        "completed"
    )
    with pytest.raises(Exception) as refused:  # resolved as 200 left: InsufficientBalance before any hold
        await saga.complete(second.id, "k2", PaymentInput(card=VISA, tenders=tender), fingerprint="f")
    assert refused.value.__class__.__name__ in ("InsufficientBalance", "StoredValueUnavailable")
    async with sessions() as session:
        bind_store(session, shop.store.id)
        attempts = list(await session.scalars(select(CheckoutAttempt)))
    assert len(attempts) == 1  # the refused one claimed nothing


async def test_a_killed_checkouts_hold_is_released_by_the_sweeper_job(
    world: World, sessions: Sessions, settings: Settings, redis: Redis
) -> None:
    """A real process is killed (SIGKILL) right after the card was charged: the gift card's hold is open, no
    order. The worker's sweeper job gives the charge back, releases the stock and the hold."""
    shop = await make_shop(world)
    card, code = await gift_card(sessions, shop, 1000)
    snapshot = await _quote(sessions, shop, {"MUG-1": 2})
    await charge_then_kill(settings, shop.store.id, snapshot.id, code)
    held = await account_state(sessions, shop, card.id)
    assert (held["balance_minor"], held["held_minor"], held["holds"]) == (1000, 1000, {"open": 1})

    async with sessions() as session, session.begin():
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
    released = await account_state(sessions, shop, card.id)
    assert (released["balance_minor"], released["held_minor"], released["drift"]) == (1000, 0, 0)
    assert released["holds"] == {"released": 1}


async def test_twenty_parallel_checkouts_over_http_on_a_card_that_covers_three(
    world: World, sessions: Sessions, settings: Settings
) -> None:
    shop = await make_shop(world)
    auth = bearer(await issue_token(world, shop.store))
    async with serving(settings) as base, httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as http:
        quotes = []
        for i in range(20):
            cart = (await http.post("/api/v1/checkout/carts")).json()
            added = await http.post(
                f"/api/v1/checkout/carts/{cart['token']}/lines", json={"variant_id": str(shop.variants["MUG-1"])}
            )
            assert added.status_code == 200, added.text
            quoted = await http.post(
                "/api/v1/checkout/quote", json={"cart_token": cart["token"], "email": f"s{i}@example.com"}
            )
            assert quoted.status_code == 201, quoted.text
            quotes.append(quoted.json())
        card, code = await gift_card(sessions, shop, 3 * quotes[0]["total_minor"])  # covers three
        answers = await asyncio.gather(
            *(
                http.post(
                    "/api/v1/checkout/complete",
                    json={
                        "snapshot_id": q["id"],
                        "amount_minor": q["total_minor"],
                        "stored_value": [{"instrument": "gift_card", "code": code}],
                    },
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                )
                for q in quotes
            )
        )
        bad = await http.post(
            "/api/v1/checkout/complete",
            json={"snapshot_id": quotes[0]["id"], "amount_minor": 1400, "stored_value": [{"instrument": "nope"}]},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {201: 3, 409: 17}, statuses
    refused = [a.json() for a in answers if a.status_code == 409]
    assert all(r["type"].rsplit("/", 1)[1] in ("insufficient_balance", "stored_value_unavailable") for r in refused)
    assert all(
        a.headers["content-type"].startswith("application/problem+json") for a in answers if a.status_code == 409
    )
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert "stored_value" in bad.json()["fields"]
    state = await account_state(sessions, shop, card.id)
    assert (state["balance_minor"], state["held_minor"], state["drift"]) == (0, 0, 0)
    assert state["entries"].get("capture") == 3
    async with sessions() as session:
        bind_store(session, shop.store.id)
        orders = list(await session.scalars(select(Order)))
    assert len(orders) == 3


async def test_completion_without_stored_value_stays_at_three_statements(
    world: World, sessions: Sessions, saga_for: Any, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = await make_shop(world)
    snapshot = await _quote(sessions, shop, {"MUG-1": 1})
    with counted(engine, monkeypatch) as statements:
        outcome = await saga_for(shop).complete(snapshot.id, "k", PaymentInput(card=VISA), fingerprint="f")
    assert outcome.state == "completed"
    assert len(statements) == 3 and not any("stored_value" in s for s in statements), "\n".join(statements)


def test_unavailable_is_a_conflict() -> None:
    assert StoredValueUnavailable.status_code == 409
