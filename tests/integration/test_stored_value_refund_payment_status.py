"""A stored-value refund moves the order's payment badge and shows on its timeline, like a card refund; the card
refund's limit counts the store credit and stored value given back, under the order row's lock (issue 15).

The order of every test: 28.00, paid 10.00 by gift card and 18.00 by card, with a customer to credit."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.encryption import install_keyring
from app.core.errors import Conflict, ValidationFailed
from app.core.outbox import OutboxEvent
from app.core.rbac import Role
from app.core.tenancy import bind_store, system_scope
from app.orders.services import Actor
from app.payments.models import PaymentIntent, PaymentTransaction
from app.payments.operations import PaymentOperations
from app.payments.order_money import order_money
from app.payments.registry import provider_for
from app.stored_value.refunds import StoredValueRefunds
from app.stored_value.services import StoreCreditService
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in
from tests.integration.test_stored_value_order_panel import _key, _order_paid_by_gift_card_and_card

Sessions = async_sessionmaker[AsyncSession]
SV_ACTION = "/staff/orders/{}/stored-value/refund"


@pytest.fixture(autouse=True)
def keyring(settings: Settings) -> None:
    install_keyring(settings)


def _badge(html: str) -> str:
    found = re.findall(r'data-testid="order-payment-badge">payment: ([a-z ]+)</span>', html)
    assert found, html[:2000]
    return str(found[-1])


def _timeline(html: str) -> str:
    start = html.index('id="timeline"')
    return html[start : html.index("</ol>", start)]


async def _api_status(client: AsyncTestClient[Litestar], auth: dict[str, str], order_id: uuid.UUID) -> str:
    answer = await client.get(f"/api/v1/orders/{order_id}", headers=auth)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["payment_status"])


async def _intent(sessions: Sessions, store_id: uuid.UUID, order_id: uuid.UUID) -> PaymentIntent:
    async with sessions() as session:
        bind_store(session, store_id)
        intent = await session.scalar(select(PaymentIntent).where(PaymentIntent.order_id == order_id))
        assert intent is not None
        return intent


async def _card_refunds(sessions: Sessions, intent_id: uuid.UUID) -> int:
    async with sessions() as session:
        system_scope(session)
        return int(
            await session.scalar(
                select(func.count())
                .select_from(PaymentTransaction)
                .where(PaymentTransaction.intent_id == intent_id, PaymentTransaction.kind == "refund")
            )
            or 0
        )


async def test_a_stored_value_refund_moves_the_badge_and_shows_on_the_timeline_in_part_then_in_full(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop, order, (_, customer_id) = await _order_paid_by_gift_card_and_card(world, sessions, redis, settings)
    manager = await world.staff(shop.store, Role.MANAGER)
    auth = bearer(await issue_token(world, shop.store, Role.MANAGER))
    await sign_in(client, manager.email)
    html = (await client.get(f"/staff/orders/{order.id}")).text
    assert _badge(html) == "paid" and await _api_status(client, auth, order.id) == "paid"
    headers = {"HX-Request": "true", "x-csrftoken": csrf_from(html)}

    # in part: 4.00 back to the gift card
    form = {"amount": "4", "reason": "chipped mug", "destination": "original", "form_key": _key(html, order.id)}
    done = await client.post(SV_ACTION.format(order.id), data=form, headers=headers)
    assert done.status_code == 200, done.text
    assert "Given back: €4.00 to gift card." in done.text
    assert _badge(done.text) == "partially refunded"  # swapped in out of band, with the timeline and payment panel
    assert 'data-testid="payment-panel" hx-swap-oob="true"' in done.text and 'id="timeline"' in done.text
    entry = _timeline(done.text)
    assert re.search(r"refunded 4\.00 EUR to gift card ••••[0-9A-Z]{4}", entry), entry
    assert "chipped mug" in entry and manager.email in entry and 'data-kind="payment.stored_value"' in entry
    page = (await client.get(f"/staff/orders/{order.id}")).text
    assert _badge(page) == "partially refunded" and "refunded 4.00 EUR to gift card" in _timeline(page)
    assert "refunded 4.00 EUR to gift card" in _timeline(
        (await client.get(f"/staff/orders/{order.id}?timeline=payment")).text
    )  # under the Payment tab too
    # the API says the same
    assert await _api_status(client, auth, order.id) == "partially_refunded"
    audit = (await client.get(f"/api/v1/admin/orders/{order.id}/audit-log", headers=auth)).json()
    [given] = [e for e in audit if e["kind"] == "payment.stored_value"]
    assert given["summary"].startswith("refunded 4.00 EUR to gift card ••••")
    assert (given["reason"], given["source"]) == ("chipped mug", "staff") and manager.email in given["actor"]
    async with sessions() as session:
        system_scope(session)
        events = list(
            await session.scalars(
                select(OutboxEvent).where(
                    OutboxEvent.aggregate_id == str(order.id), OutboxEvent.type == "order.payment_changed"
                )
            )
        )
    [moved] = [e.payload for e in events if e.payload.get("operation") == "stored_value_refund"]
    assert (moved["from"], moved["to"], moved["amount_minor"]) == ("paid", "partially_refunded", 400)

    # in full: the other 24.00 to the customer's store credit — everything paid, in some form, has gone back
    form = {"amount": "24", "reason": "late", "destination": "store_credit", "form_key": _key(done.text, order.id)}
    full = await client.post(SV_ACTION.format(order.id), data=form, headers=headers)
    assert full.status_code == 200, full.text
    assert _badge(full.text) == "refunded"
    assert "refunded 24.00 EUR as store credit" in _timeline(full.text)
    assert 'data-testid="open-refund"' not in full.text  # the card has nothing left to give back: no refund form
    assert await _api_status(client, auth, order.id) == "refunded"
    async with sessions() as session:
        account = await StoreCreditService(session, shop.store.id).of_customer(customer_id)
    assert account is not None and account.balance_minor == 2400


async def test_a_gift_card_refund_then_the_card_refund_make_the_order_refunded(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop, order, _ = await _order_paid_by_gift_card_and_card(world, sessions, redis, settings)
    auth = bearer(await issue_token(world, shop.store, Role.MANAGER))
    sv = await client.post(
        f"/api/v1/admin/orders/{order.id}/stored-value-refunds",
        json={"amount_minor": 1000, "reason": "broken", "destination": "original"},
        headers=auth,
    )
    assert sv.status_code == 201 and sv.json()["refunded_minor"] == 1000
    assert await _api_status(client, auth, order.id) == "partially_refunded"
    intent = await _intent(sessions, shop.store.id, order.id)
    url = f"/api/v1/admin/orders/{order.id}/payments/{intent.id}/refund"
    part = await client.post(url, json={"amount_minor": 800, "reason": "x"}, headers={**auth, "Idempotency-Key": "a"})
    assert part.status_code == 200 and part.json()["payment_status"] == "partially_refunded"  # 18.00 of 28.00 back
    rest = await client.post(url, json={"reason": "the rest"}, headers={**auth, "Idempotency-Key": "b"})
    assert rest.status_code == 200, rest.text
    assert rest.json()["payment_status"] == "refunded" and await _api_status(client, auth, order.id) == "refunded"


async def test_a_card_refund_is_refused_after_store_credit_took_the_rest(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop, order, _ = await _order_paid_by_gift_card_and_card(world, sessions, redis, settings)
    auth = bearer(await issue_token(world, shop.store, Role.MANAGER))
    credit = await client.post(
        f"/api/v1/admin/orders/{order.id}/stored-value-refunds",
        json={"amount_minor": 2000, "reason": "late", "destination": "store_credit"},
        headers=auth,
    )
    assert credit.status_code == 201 and credit.json()["refunded_minor"] == 2000
    intent = await _intent(sessions, shop.store.id, order.id)
    payments = (await client.get(f"/api/v1/admin/orders/{order.id}/payments/", headers=auth)).json()
    assert payments["intents"][0]["refundable_minor"] == 800  # 28.00 - 20.00 credited, though the card paid 18.00
    url = f"/api/v1/admin/orders/{order.id}/payments/{intent.id}/refund"

    # more than the order has left: 422 problem+json naming what can still go back; nothing written
    over = await client.post(url, json={"amount_minor": 1800, "reason": "x"}, headers={**auth, "Idempotency-Key": "1"})
    assert over.status_code == 422 and over.headers["content-type"].startswith("application/problem+json")
    problem = over.json()
    assert problem["fields"] == {"amount": "At most 8.00 EUR."}, problem
    assert "At most 8.00 EUR can still go back on this order" in problem["detail"]
    assert "20.00 EUR as store credit" in problem["detail"]
    after = await _intent(sessions, shop.store.id, order.id)
    assert (after.refunded_minor, after.pending_operation) == (0, None)
    assert await _card_refunds(sessions, intent.id) == 0

    # the page says the same: "up to €8.00", and 9.00 is an inline error, nothing written
    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(client, manager.email)
    html = (await client.get(f"/staff/orders/{order.id}")).text
    assert "Amount (up to €8.00)" in html
    card_action = f"/staff/orders/{order.id}/payments/{intent.id}/refund"
    form_key = re.search(r'name="form_key" value="([^"]+)"', html[html.index(f'hx-post="{card_action}"') :])
    assert form_key
    refused = await client.post(
        card_action, data={"amount": "9.00", "reason": "x", "form_key": form_key.group(1)},
        headers={"HX-Request": "true", "x-csrftoken": csrf_from(html)},
    )  # fmt: skip
    assert refused.status_code == 422, refused.text
    assert 'data-testid="amount-error">At most 8.00 EUR.' in refused.text
    assert "At most 8.00 EUR can still go back on this order" in refused.text
    assert await _card_refunds(sessions, intent.id) == 0

    # what is left goes back; then nothing more can (409)
    last = await client.post(url, json={"amount_minor": 800, "reason": "x"}, headers={**auth, "Idempotency-Key": "2"})
    assert last.status_code == 200 and last.json()["payment_status"] == "refunded", last.text
    none = await client.post(url, json={"amount_minor": 100, "reason": "x"}, headers={**auth, "Idempotency-Key": "3"})
    assert none.status_code == 409 and "Nothing more can go back on this order" in none.json()["detail"]
    async with sessions() as session:
        bind_store(session, shop.store.id)
        money = await order_money(session, shop.store.id, order.id)
    assert (money.given_back_minor, money.total_minor) == (2800, 2800)


async def _waiting_on_the_order(sessions: Sessions, count: int) -> None:
    """Until ``count`` transactions wait for the order row's lock (a condition, not a timing guess)."""
    async with sessions() as session:
        for _ in range(2000):
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query ILIKE 'SELECT orders.%'"
                )
            )
            if int(waiting or 0) >= count:
                return
            await session.rollback()  # pg_stat_activity is read once per transaction: a new one sees the news
            await asyncio.sleep(0.01)
        seen = (
            await session.execute(
                text(
                    "SELECT state, wait_event_type, left(query, 80) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        ).all()
    raise AssertionError(f"the two refunds never both waited for the order's lock: {seen}")


async def test_a_card_refund_and_a_store_credit_refund_racing_for_the_last_amount_one_wins(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    """Each in its own transaction (the test client runs one request at a time, so the race is at the services the
    two endpoints call): both wait for the order's row, then exactly one of them takes the last 18.00."""
    shop, order, _ = await _order_paid_by_gift_card_and_card(world, sessions, redis, settings)
    auth = bearer(await issue_token(world, shop.store, Role.MANAGER))
    first = await client.post(
        f"/api/v1/admin/orders/{order.id}/stored-value-refunds",
        json={"amount_minor": 1000, "reason": "late", "destination": "store_credit"},
        headers=auth,
    )
    assert first.status_code == 201  # 18.00 left: the card's 18.00 or 18.00 more store credit, not both
    intent = await _intent(sessions, shop.store.id, order.id)
    operations = PaymentOperations(sessions, shop.store.id, provider_for(shop.store, redis, settings))
    actor = Actor(Role.MANAGER, "Mia", "staff")

    async def credit() -> object:
        async with sessions() as session, session.begin():
            return await StoredValueRefunds(session, shop.store.id).refund(
                order.id, 1800, "race", principal=None, destination="store_credit"
            )

    async with sessions() as blocker, blocker.begin():  # hold the order's row until both refunds wait for it
        await blocker.execute(text("SELECT id FROM orders WHERE id = :id FOR UPDATE"), {"id": order.id})
        racing = asyncio.gather(
            operations.refund(order.id, intent.id, amount_minor=1800, reason="race", actor=actor),
            credit(),
            return_exceptions=True,
        )
        await _waiting_on_the_order(sessions, 2)
    card, store_credit = await racing
    outcomes = [card, store_credit]
    refused = [o for o in outcomes if isinstance(o, (Conflict, ValidationFailed))]
    assert len(refused) == 1 and not [o for o in outcomes if isinstance(o, BaseException) and o not in refused], (
        outcomes
    )
    async with sessions() as session:
        bind_store(session, shop.store.id)
        money = await order_money(session, shop.store.id, order.id)
    assert money.given_back_minor == 2800 == money.total_minor  # 10.00 + 18.00, never more than the order
    assert await _card_refunds(sessions, intent.id) == (0 if card in refused else 1)
    assert money.credited_minor == (1000 if store_credit in refused else 2800)


async def test_back_to_the_gift_card_is_capped_by_what_the_order_has_left_after_store_credit(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop, order, _ = await _order_paid_by_gift_card_and_card(world, sessions, redis, settings)
    auth = bearer(await issue_token(world, shop.store, Role.MANAGER))
    url = f"/api/v1/admin/orders/{order.id}/stored-value-refunds"
    credit = await client.post(
        url, json={"amount_minor": 2000, "reason": "late", "destination": "store_credit"}, headers=auth
    )
    assert credit.status_code == 201  # 8.00 of the order left, though the gift card paid 10.00
    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(client, manager.email)
    html = (await client.get(f"/staff/orders/{order.id}")).text
    assert "Back to what paid (up to €8.00" in html
    refused = await client.post(
        SV_ACTION.format(order.id),
        data={"amount": "9", "reason": "x", "destination": "original", "form_key": _key(html, order.id)},
        headers={"HX-Request": "true", "x-csrftoken": csrf_from(html)},
    )
    assert refused.status_code == 422 and 'data-testid="sv-amount-error"' in refused.text
    assert "More than is left of the order after what was given back already." in refused.text
    capped = await client.post(
        url, json={"amount_minor": 1000, "reason": "x", "destination": "original"}, headers=auth
    )  # the API gives back what it can and answers the rest as left_minor
    assert capped.status_code == 201 and (capped.json()["refunded_minor"], capped.json()["left_minor"]) == (800, 200)
    async with sessions() as session:
        bind_store(session, shop.store.id)
        money = await order_money(session, shop.store.id, order.id)
    assert money.given_back_minor == money.total_minor == 2800
    assert await _api_status(client, auth, order.id) == "refunded"


async def test_cancelling_gives_the_card_back_only_what_the_order_has_left_after_store_credit(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    from app.orders.cancellation import OrderCancellation
    from app.stored_value.jobs import return_stored_value

    shop, order, _ = await _order_paid_by_gift_card_and_card(world, sessions, redis, settings)
    auth = bearer(await issue_token(world, shop.store, Role.MANAGER))
    credit = await client.post(
        f"/api/v1/admin/orders/{order.id}/stored-value-refunds",
        json={"amount_minor": 2000, "reason": "late", "destination": "store_credit"},
        headers=auth,
    )
    assert credit.status_code == 201
    provider = provider_for(shop.store, redis, settings)
    actor = Actor(Role.MANAGER, "Mia", "staff")
    await OrderCancellation(sessions, shop.store.id, provider).cancel(order.id, actor=actor, reason="gone")
    intent = await _intent(sessions, shop.store.id, order.id)
    assert intent.refunded_minor == 800  # not the card's 18.00: 20.00 went to store credit already
    async with sessions() as session:
        system_scope(session)
        rows = await session.scalars(
            select(OutboxEvent).where(
                OutboxEvent.aggregate_id == str(order.id), OutboxEvent.type == "order.status_changed"
            )
        )
        events = [
            {"id": r.id, "store_id": str(r.store_id), "type": r.type, "aggregate_id": r.aggregate_id,
             "payload": r.payload}
            for r in rows
        ]  # fmt: skip
    assert [await return_stored_value({"sessions": sessions}, event=e) for e in events] == ["returned 0"]
    async with sessions() as session:
        bind_store(session, shop.store.id)
        money = await order_money(session, shop.store.id, order.id)
    assert money.given_back_minor == money.total_minor == 2800
    assert await _api_status(client, auth, order.id) == "refunded"
