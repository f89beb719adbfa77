"""POST /pos/api/refunds: a past POS sale found by its receipt number gives money back — cash from the current
shift's drawer (a negative tender), or to the original tender (the card through the payment provider, like the staff
order page's refund, then cash) — and the returned goods go back on the shelf; never more than the sale took, once
per Idempotency-Key, audited; over the store's approval threshold a cashier needs a manager's PIN."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import func, select, update

from app.config import Settings
from app.core.audit import AuditEntry
from app.core.money import Money
from app.core.passwords import hash_password
from app.core.tenancy import bind_store
from app.inventory.models import StockLevel, StockMovement
from app.main import create_app
from app.orders.models import Order
from app.payments.models import PaymentIntent, PaymentTransaction
from app.payments.provider import RefundRequest
from app.payments.registry import provider_for
from app.pos.models import PosRefund, PosTender
from app.pos.refunds import STALE_REFUND, PosRefunds, line_share, resume_stale_refund, stale_refunds
from app.stores.models import Membership, Store
from tests.integration.conftest import World
from tests.integration.pos import API, Client, Sessions, Till, open_till, sale_body, signed_in
from tests.integration.shop import place_order
from tests.integration.test_pos_sales import approved_card, pair_reader


@pytest.fixture
async def device(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as reader:
        reader.follow_redirects = False
        yield reader


async def _sell(client: Client, till: Till, **kwargs: Any) -> dict[str, Any]:
    made = await client.post(f"{API}/sales", json=sale_body(till, **kwargs), headers=till.headers)
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def _refund(client: Client, till: Till, number: int, **body: Any) -> Any:
    payload = {"order_number": number, "register_id": str(till.register_id), "shift_id": str(till.shift_id),
               "lines": None, "amount_minor": None, "to": "original", "reason": "Came back", **body}  # fmt: skip
    return await client.post(f"{API}/refunds", json=payload, headers=till.headers)


async def _on_hand(sessions: Sessions, till: Till, sku: str) -> int:
    async with sessions() as session:
        bind_store(session, till.store.id)
        return int(
            await session.scalar(select(StockLevel.on_hand).where(StockLevel.variant_id == till.variant(sku))) or 0
        )


async def _payment_status(sessions: Sessions, till: Till, number: int) -> str:
    async with sessions() as session:
        bind_store(session, till.store.id)
        return str(await session.scalar(select(Order.payment_status).where(Order.number == number)))


async def test_items_back_in_cash_come_out_of_the_drawer_and_go_back_on_the_shelf(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    sold = await _sell(client, till, items={"CRO-1": 2, "MUG-1": 1})
    assert await _on_hand(sessions, till, "MUG-1") == 49
    back = await _refund(client, till, sold["order_number"], lines=[{"variant_id": str(till.variant("MUG-1")),
                                                                     "quantity": 1}])  # fmt: skip
    assert back.status_code == 201, back.text
    body = back.json()
    assert (body["amount_minor"], body["tenders"], body["order_number"]) == (
        1400, [{"kind": "cash", "amount_minor": -1400}], sold["order_number"],
    )  # fmt: skip
    assert await _on_hand(sessions, till, "MUG-1") == 50
    assert await _payment_status(sessions, till, sold["order_number"]) == "partially_refunded"
    async with sessions() as session:
        bind_store(session, till.store.id)
        tender = await session.scalar(select(PosTender).where(PosTender.refund_id.is_not(None)))
        returned = await session.scalar(select(StockMovement).where(StockMovement.reason == "return"))
        audited = await session.scalar(select(AuditEntry).where(AuditEntry.action == "pos.refund"))
    assert tender is not None and (tender.kind, tender.amount_minor, tender.shift_id) == ("cash", -1400, till.shift_id)
    assert returned is not None and returned.delta == 1 and f"#{sold['order_number']}" in returned.note
    assert audited is not None and audited.details["amount_minor"] == 1400
    report = (await client.get(f"{API}/shifts/{till.shift_id}/report", headers=till.headers)).json()
    assert (report["refunds_count"], report["refunds_by_tender"], report["refunds_minor"]) == (1, {"cash": 1400}, 1400)
    assert report["expected_cash_minor"] == 10_000 + 1880 - 1400
    assert report["net_minor"] == 480

    rest = await _refund(client, till, sold["order_number"], to="cash")  # everything left: the two croissants
    assert rest.status_code == 201 and rest.json()["amount_minor"] == 480
    assert await _payment_status(sessions, till, sold["order_number"]) == "refunded"
    assert await _on_hand(sessions, till, "CRO-1") == 50
    done = await _refund(client, till, sold["order_number"], amount_minor=1)
    assert done.status_code == 409


async def test_a_card_sale_is_refunded_to_the_card_through_the_provider_then_cash(
    client: Client, device: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    await pair_reader(client, device, till)
    card = await approved_card(client, device, till, 1400)
    tenders = [{"kind": "card", "amount_minor": 1400, "reader_payment_id": card},
               {"kind": "cash", "amount_minor": 480, "tendered_minor": 500}]  # fmt: skip
    sold = await _sell(client, till, items={"CRO-1": 2, "MUG-1": 1}, tenders=tenders)
    first = await _refund(client, till, sold["order_number"], amount_minor=1500, reason="Cold coffee")
    assert first.status_code == 201, first.text
    assert first.json()["tenders"] == [{"kind": "card", "amount_minor": -1400}, {"kind": "cash", "amount_minor": -100}]
    async with sessions() as session:
        bind_store(session, till.store.id)
        intent = await session.scalar(
            select(PaymentIntent).where(PaymentIntent.order_id == uuid.UUID(sold["order_id"]))
        )
        assert intent is not None
        refunds = list(await session.scalars(select(PaymentTransaction).where(
            PaymentTransaction.intent_id == intent.id, PaymentTransaction.kind == "refund")))  # fmt: skip
    assert (intent.captured_minor, intent.refunded_minor) == (1400, 1400)
    assert [(r.status, r.amount_minor, r.reason) for r in refunds] == [("refunded", 1400, "Cold coffee")]
    assert await _on_hand(sessions, till, "MUG-1") == 49  # an amount: nothing came back to the shelf
    second = await _refund(client, till, sold["order_number"])
    assert second.status_code == 201
    assert second.json()["tenders"] == [{"kind": "cash", "amount_minor": -380}]  # the card is refunded in full
    assert await _payment_status(sessions, till, sold["order_number"]) == "refunded"
    report = (await client.get(f"{API}/shifts/{till.shift_id}/report", headers=till.headers)).json()
    assert report["sales_by_tender"] == {"card": 1400, "cash": 480}
    assert report["refunds_by_tender"] == {"card": 1400, "cash": 480}
    assert report["expected_cash_minor"] == 10_000 + 480 - 480


async def test_a_card_sale_may_be_refunded_in_cash(
    client: Client, device: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    await pair_reader(client, device, till)
    card = await approved_card(client, device, till, 480)
    sold = await _sell(client, till, tenders=[{"kind": "card", "amount_minor": 480, "reader_payment_id": card}])
    back = await _refund(client, till, sold["order_number"], to="cash")
    assert back.status_code == 201 and back.json()["tenders"] == [{"kind": "cash", "amount_minor": -480}]
    async with sessions() as session:
        bind_store(session, till.store.id)
        intent = await session.scalar(
            select(PaymentIntent).where(PaymentIntent.order_id == uuid.UUID(sold["order_id"]))
        )
    assert intent is not None and intent.refunded_minor == 0


async def test_partial_returns_of_a_discounted_line_add_up_to_what_it_cost(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    sold = await _sell(client, till, items={"CRO-1": 3, "MUG-1": 1}, ticket_discount=101)
    line = {"variant_id": str(till.variant("CRO-1"))}
    amounts = []
    for quantity in (1, 1, 1):
        back = await _refund(client, till, sold["order_number"], lines=[{**line, "quantity": quantity}], to="cash")
        assert back.status_code == 201, back.text
        amounts.append(back.json()["amount_minor"])
    async with sessions() as session:
        bind_store(session, till.store.id)
        order = await session.scalar(select(Order).where(Order.number == sold["order_number"]))
    assert order is not None
    croissants = next(li for li in order.lines if li.sku == "CRO-1")
    assert sum(amounts) == croissants.total_minor
    assert amounts == [line_share(croissants.total_minor, 3, n, 1) for n in range(3)]
    more = await _refund(client, till, sold["order_number"], lines=[{**line, "quantity": 1}], to="cash")
    assert more.status_code == 422 and "lines.0.quantity" in more.json()["fields"]


async def test_every_bad_refund_is_refused_and_nothing_moves(
    client: Client, world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    till = await open_till(client, world, sessions)
    sold = await _sell(client, till, items={"CRO-1": 2})
    web = await place_order(sessions, till.shop, redis, settings)
    other = await open_till(client, world, sessions)  # signs the other store's cashier in on the client
    mine = await _refund(client, other, sold["order_number"])
    assert mine.status_code == 404 and "order_number" in mine.json()["fields"]
    till.headers = await signed_in(client, till.cashier)
    line = {"variant_id": str(till.variant("CRO-1")), "quantity": 1}
    cases: list[tuple[str, dict[str, Any], int, str | None]] = [
        ("unknown receipt", {"order_number": 999_999}, 404, "order_number"),
        ("a web order", {"order_number": web.number}, 404, "order_number"),
        ("too much", {"amount_minor": 481}, 422, "amount_minor"),
        ("nothing", {"amount_minor": 0}, 422, "amount_minor"),
        ("more than was sold", {"lines": [{**line, "quantity": 3}]}, 422, "lines.0.quantity"),
        (
            "not on the receipt",
            {"lines": [{**line, "variant_id": str(till.variant("MUG-1"))}]},
            422,
            "lines.0.variant_id",
        ),
        ("no items", {"lines": []}, 422, "lines"),
        ("a zero quantity", {"lines": [{**line, "quantity": 0}]}, 422, "lines.0.quantity"),
        ("nowhere", {"to": "gift card"}, 422, "to"),
        ("no reason", {"reason": " "}, 422, "reason"),
        ("another shift", {"shift_id": str(uuid.uuid4())}, 404, "shift_id"),
        ("another store's shift", {"shift_id": str(other.shift_id)}, 404, "shift_id"),
    ]
    for what, body, status, field in cases:
        answer = await _refund(client, till, body.pop("order_number", sold["order_number"]), **body)
        assert answer.status_code == status, (what, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        if field:
            assert field in answer.json().get("fields", {}), (what, answer.json())
    await client.post(f"{API}/shifts/{till.shift_id}/close", json={"counted_cash_minor": 0}, headers=till.headers)
    closed = await _refund(client, till, sold["order_number"])
    assert closed.status_code == 422 and "shift_id" in closed.json()["fields"]
    async with sessions() as session:
        bind_store(session, till.store.id)
        assert await session.scalar(select(func.count()).select_from(PosRefund)) == 0
        assert await session.scalar(select(func.count()).where(StockMovement.reason == "return")) == 0


async def test_over_the_approval_threshold_a_cashier_needs_a_managers_pin(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    async with sessions() as session, session.begin():
        store = await session.get(Store, till.store.id)
        assert store is not None
        store.settings = {**store.settings, "refund_approval_threshold_minor": 1000}
        bind_store(session, till.store.id)
        await session.execute(update(Membership).where(Membership.user_id == till.manager.user.id)
                              .values(pos_pin_hash=hash_password("97531")))  # fmt: skip
    sold = await _sell(client, till, items={"MUG-1": 1})
    small = await _refund(client, till, sold["order_number"], amount_minor=1000)
    assert small.status_code == 201
    sold = await _sell(client, till, items={"MUG-1": 1})
    asked = await _refund(client, till, sold["order_number"])
    assert asked.status_code == 422 and "manager_pin" in asked.json()["fields"]
    wrong = await _refund(client, till, sold["order_number"], manager_pin="11111")
    assert wrong.status_code == 422 and wrong.json()["fields"] == {"manager_pin": "Wrong PIN."}
    approved = await _refund(client, till, sold["order_number"], manager_pin="97531")
    assert approved.status_code == 201, approved.text
    async with sessions() as session:
        bind_store(session, till.store.id)
        refund = await session.scalar(select(PosRefund).where(PosRefund.amount_minor == 1400))
    assert refund is not None and refund.approved_by_id == till.manager.user.id


async def test_a_refund_happens_once_per_key_and_once_under_concurrent_taps(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    sold = await _sell(client, till, items={"MUG-1": 1})
    key = {"idempotency-key": str(uuid.uuid4())}
    payload = {
        "order_number": sold["order_number"],
        "register_id": str(till.register_id),
        "shift_id": str(till.shift_id),
        "lines": None,
        "amount_minor": 700,
        "to": "cash",
        "reason": "dent",
    }
    first = await client.post(f"{API}/refunds", json=payload, headers={**till.headers, **key})
    repeat = await client.post(f"{API}/refunds", json=payload, headers={**till.headers, **key})
    assert (first.status_code, repeat.status_code, repeat.json()) == (201, 201, first.json())
    assert repeat.headers["idempotent-replayed"] == "true"
    taps = await asyncio.gather(*(client.post(f"{API}/refunds", json=payload, headers=till.headers) for _ in range(6)))
    assert sorted(t.status_code for t in taps).count(201) == 1, [t.text for t in taps]
    async with sessions() as session:
        bind_store(session, till.store.id)
        given = await session.scalar(select(func.sum(PosRefund.amount_minor)).where(PosRefund.status == "done"))
        tenders = await session.scalar(select(func.sum(PosTender.amount_minor)).where(PosTender.refund_id.is_not(None)))
    assert (given, tenders) == (1400, -1400)


async def test_a_counter_sale_is_not_cancelled_from_the_order_api_but_refunded_at_the_till(
    client: Client, world: World, sessions: Sessions
) -> None:
    from tests.integration.conftest import bearer, issue_token

    till = await open_till(client, world, sessions)
    sold = await _sell(client, till, items={"MUG-1": 1})
    manager = bearer(await issue_token(world, till.store))
    refused = await client.patch(
        f"/api/v1/orders/{sold['order_id']}/status", json={"status": "cancelled", "reason": "Mistake"}, headers=manager
    )
    assert refused.status_code == 409 and "refund it at the till" in refused.json()["detail"]
    assert await _payment_status(sessions, till, sold["order_number"]) == "paid"
    assert await _on_hand(sessions, till, "MUG-1") == 49


async def test_a_sale_paid_by_two_cards_is_refunded_to_each_card_in_turn_then_cash(
    client: Client, device: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    await pair_reader(client, device, till)
    first_card = await approved_card(client, device, till, 900)
    second_card = await approved_card(client, device, till, 500)
    tenders = [{"kind": "card", "amount_minor": 900, "reader_payment_id": first_card},
               {"kind": "card", "amount_minor": 500, "reader_payment_id": second_card},
               {"kind": "cash", "amount_minor": 480, "tendered_minor": 500}]  # fmt: skip
    sold = await _sell(client, till, items={"CRO-1": 2, "MUG-1": 1}, tenders=tenders)
    async with sessions() as session:
        bind_store(session, till.store.id)
        intents = list(await session.scalars(
            select(PaymentIntent).where(PaymentIntent.order_id == uuid.UUID(sold["order_id"]))
            .order_by(PaymentIntent.created_at)))  # fmt: skip
    assert [(i.amount_minor, i.captured_minor) for i in intents] == [(900, 900), (500, 500)]

    part = await _refund(client, till, sold["order_number"], amount_minor=1000, reason="Cold coffee")
    assert part.status_code == 201, part.text
    assert part.json()["tenders"] == [{"kind": "card", "amount_minor": -900}, {"kind": "card", "amount_minor": -100}]
    rest = await _refund(client, till, sold["order_number"])
    assert rest.status_code == 201, rest.text
    assert rest.json()["tenders"] == [{"kind": "card", "amount_minor": -400}, {"kind": "cash", "amount_minor": -480}]
    async with sessions() as session:
        bind_store(session, till.store.id)
        after = list(await session.scalars(
            select(PaymentIntent).where(PaymentIntent.order_id == uuid.UUID(sold["order_id"]))
            .order_by(PaymentIntent.created_at)))  # fmt: skip
    assert [(i.captured_minor, i.refunded_minor) for i in after] == [(900, 900), (500, 500)]
    assert await _payment_status(sessions, till, sold["order_number"]) == "refunded"
    report = (await client.get(f"{API}/shifts/{till.shift_id}/report", headers=till.headers)).json()
    assert report["sales_by_tender"] == {"card": 1400, "cash": 480}
    assert report["refunds_by_tender"] == {"card": 1400, "cash": 480}


async def test_when_the_second_card_refuses_its_refund_what_went_back_is_kept_and_the_rest_is_owed(
    client: Client, device: Client, world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    till = await open_till(client, world, sessions)
    await pair_reader(client, device, till)
    first_card = await approved_card(client, device, till, 900)
    second_card = await approved_card(client, device, till, 980)
    tenders = [{"kind": "card", "amount_minor": 900, "reader_payment_id": first_card},
               {"kind": "card", "amount_minor": 980, "reader_payment_id": second_card}]  # fmt: skip
    sold = await _sell(client, till, items={"CRO-1": 2, "MUG-1": 1}, tenders=tenders)
    async with sessions() as session:
        bind_store(session, till.store.id)
        second = await session.scalar(
            select(PaymentIntent).where(
                PaymentIntent.order_id == uuid.UUID(sold["order_id"]), PaymentIntent.amount_minor == 980
            )
        )
    assert second is not None
    # Refunded at the provider behind Till's back: the provider now refuses Till's refund of it.
    sandbox = provider_for(till.store, redis, settings)
    await sandbox.refund(RefundRequest(second.provider_ref, Money(980, "EUR"), "behind-tills-back"))

    refused = await _refund(
        client, till, sold["order_number"], lines=[{"variant_id": str(till.variant("MUG-1")), "quantity": 1}]
    )
    assert refused.status_code == 409, refused.text
    assert "the next card's refund was refused" in refused.json()["detail"]
    assert refused.json()["fields"] == {"to": "Refund the rest in cash."}
    async with sessions() as session:
        bind_store(session, till.store.id)
        kept = await session.scalar(select(PosRefund).where(PosRefund.order_id == uuid.UUID(sold["order_id"])))
    assert kept is not None and kept.status == "done"
    assert (kept.amount_minor, kept.parts) == (
        900,
        [{"kind": "card", "amount_minor": 900, "intent_id": kept.parts[0]["intent_id"]}],
    )
    assert await _on_hand(sessions, till, "MUG-1") == 50  # the mug came back on the shelf with the refund kept
    owed = 1400 - 900
    rest = await _refund(client, till, sold["order_number"], amount_minor=owed, to="cash")
    assert rest.status_code == 201, rest.text
    assert rest.json()["tenders"] == [{"kind": "cash", "amount_minor": -owed}]


@pytest.mark.parametrize("died", ["after_the_card_refund", "before_the_card_refund"])
async def test_a_refund_whose_process_died_is_finished_from_the_payments_ledger(
    client: Client,
    device: Client,
    world: World,
    sessions: Sessions,
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
    died: str,
) -> None:
    till = await open_till(client, world, sessions)
    await pair_reader(client, device, till)
    card = await approved_card(client, device, till, 1400)
    tenders = [{"kind": "card", "amount_minor": 1400, "reader_payment_id": card}]
    sold = await _sell(client, till, items={"MUG-1": 1}, tenders=tenders)
    mug = till.variant("MUG-1")

    async def crash(*_: Any) -> None:
        raise RuntimeError("the process died")

    monkeypatch.setattr(PosRefunds, "_finish" if died == "after_the_card_refund" else "_card", crash)
    crashed = await _refund(client, till, sold["order_number"], lines=[{"variant_id": str(mug), "quantity": 1}])
    assert crashed.status_code == 500
    monkeypatch.undo()
    async with sessions() as session:
        assert await stale_refunds(session) == []  # not stale yet: it may still be running
    async with sessions() as session, session.begin():
        bind_store(session, till.store.id)
        await session.execute(
            update(PosRefund).values(created_at=datetime.now(UTC) - STALE_REFUND - timedelta(seconds=1))
        )
    again = await _refund(client, till, sold["order_number"])
    assert again.status_code == 409 and "still at the payment provider" in again.json()["detail"]

    async with sessions() as session:
        stale = await stale_refunds(session)
        store = await session.get(Store, till.store.id)
    assert [refund_id for _, refund_id in stale] != [] and store is not None
    outcome = await resume_stale_refund(sessions, redis, store, stale[0][1])
    assert await resume_stale_refund(sessions, redis, store, stale[0][1]) == "settled"  # once
    async with sessions() as session:
        bind_store(session, till.store.id)
        refund = await session.scalar(select(PosRefund))
        given_back = await session.scalar(select(func.count(PosTender.id)).where(PosTender.refund_id.is_not(None)))
    assert refund is not None
    if died == "after_the_card_refund":
        assert (outcome, refund.status, given_back) == ("done", "done", 1)
        assert await _on_hand(sessions, till, "MUG-1") == 50  # the mug is back on the shelf
        assert await _payment_status(sessions, till, sold["order_number"]) == "refunded"
    else:
        assert (outcome, refund.status, given_back) == ("failed", "failed", 0)
        assert await _on_hand(sessions, till, "MUG-1") == 49
        retried = await _refund(client, till, sold["order_number"])  # the cashier can refund it again
        assert retried.status_code == 201, retried.text
