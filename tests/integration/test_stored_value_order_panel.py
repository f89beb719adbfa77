"""The stored-value panel on the staff order page (issue 15): an order paid partly by gift card shows what the card
and the gift card paid, and a manager gives the gift card part back (or credits the customer) from the page, with
a one-time form key, inline errors and nothing half-written."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.checkout.saga import CheckoutSaga, PaymentInput
from app.config import Settings
from app.core.encryption import install_keyring
from app.core.rbac import Role
from app.core.tenancy import bind_store, system_scope
from app.customers.models import Customer
from app.orders.models import Order
from app.payments.registry import provider_for
from app.stored_value.instruments import TenderRequest
from app.stored_value.ledger import Ledger
from app.stored_value.models import StoredValueEntry
from app.stored_value.services import GiftCardService, StoreCreditService
from tests.integration.conftest import World, csrf_from, sign_in
from tests.integration.shop import make_shop
from tests.integration.test_checkout_saga import _quote
from tests.integration.test_stored_value_refunds import VISA

Sessions = async_sessionmaker[AsyncSession]
ACTION = "/staff/orders/{}/stored-value/refund"


@pytest.fixture(autouse=True)
def keyring(settings: Settings) -> None:
    install_keyring(settings)


async def _order_paid_by_gift_card_and_card(
    world: World, sessions: Sessions, redis: Redis, settings: Settings, *, customer: bool = True
) -> tuple[Any, Order, tuple[uuid.UUID, uuid.UUID]]:
    shop = await make_shop(world)
    async with sessions() as session, session.begin():
        issued = await GiftCardService(session, shop.store.id).issue(1000, "EUR", principal=None)
        person = Customer(store_id=shop.store.id, email="a@example.com", name="Ann")
        session.add(person)
    snapshot = await _quote(sessions, shop, {"MUG-1": 2})  # 28.00: 10.00 gift card + 18.00 card
    saga = CheckoutSaga(sessions, shop.store, provider_for(shop.store, redis, settings))
    outcome = await saga.complete(
        snapshot.id, "k", PaymentInput(card=VISA, tenders=(TenderRequest("gift_card", code=issued[0].code),)),
        fingerprint="f",
    )  # fmt: skip
    assert outcome.order is not None
    async with sessions() as session, session.begin():  # the checkout made a customer of the e-mail; choose
        system_scope(session)
        chosen = person.id if customer else None
        await session.execute(update(Order).where(Order.id == outcome.order.id).values(customer_id=chosen))
    return shop, outcome.order, (issued[0].account.id, person.id)


def _key(html: str, order_id: object) -> str:
    form = html[html.index(f'hx-post="{ACTION.format(order_id)}"') :]
    found = re.search(r'name="form_key" value="([^"]+)"', form)
    assert found
    return found.group(1)


async def _entries(sessions: Sessions) -> int:
    async with sessions() as session:
        system_scope(session)
        return int(await session.scalar(select(func.count()).select_from(StoredValueEntry)) or 0)


async def test_a_manager_gives_the_gift_card_part_back_from_the_order_page(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop, order, (card_id, _) = await _order_paid_by_gift_card_and_card(world, sessions, redis, settings)
    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(client, manager.email)
    page = await client.get(f"/staff/orders/{order.id}")
    assert page.status_code == 200
    html = page.text
    assert 'data-testid="stored-value-panel"' in html and "Gift card ••••" in html
    assert "The card refund above gives back only what the card paid" in html
    assert "Amount (up to €18.00)" in html  # the card's refund: only the card's part
    assert 'id="sv-amount" name="amount" inputmode="decimal" value="" placeholder="10.00"' in html
    headers = {"HX-Request": "true", "x-csrftoken": csrf_from(html)}
    url = ACTION.format(order.id)
    before = await _entries(sessions)
    # bad input: inline, 422, nothing written
    for form, field in (
        ({"amount": "abc", "reason": "x", "destination": "original"}, "sv-amount-error"),
        ({"amount": "5", "reason": "  ", "destination": "original"}, "sv-reason-error"),
        ({"amount": "5", "reason": "x", "destination": "cash"}, "sv-destination-error"),
        ({"amount": "10.01", "reason": "x", "destination": "original"}, "sv-amount-error"),  # more than it paid
        ({"amount": "28.01", "reason": "x", "destination": "store_credit"}, "sv-amount-error"),
    ):
        bad = await client.post(url, data={**form, "form_key": _key(html, order.id)}, headers=headers)
        assert bad.status_code == 422, (form, bad.text)
        assert f'data-testid="{field}"' in bad.text and 'id="stored-value-panel"' in bad.text, form
        assert f'value="{form["amount"]}"' in bad.text  # the values are kept
    assert await _entries(sessions) == before
    key = _key(html, order.id)
    form = {"amount": "6.00", "reason": "chipped mug", "destination": "original", "form_key": key}
    done = await client.post(url, data=form, headers=headers)
    assert done.status_code == 200, done.text
    assert "Given back: €6.00 to gift card." in done.text
    again = await client.post(url, data=form, headers=headers)  # a double click / resubmit
    assert again.status_code == 200 and "submitted already" in again.text
    async with sessions() as session:
        bind_store(session, shop.store.id)
        check = await Ledger(session, shop.store.id).verify(card_id)
    assert (check["balance_minor"], check["drift"]) == (600, 0)  # once, not twice
    # the rest of the gift card's part (4.00) is all that may still go back to it
    rest = await client.post(
        url, data={"amount": "4.01", "reason": "x", "destination": "original", "form_key": _key(done.text, order.id)},
        headers=headers,
    )  # fmt: skip
    assert rest.status_code == 422 and "More than the gift cards" in rest.text


async def test_store_credit_from_the_page_and_its_limits(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop, order, (_, customer_id) = await _order_paid_by_gift_card_and_card(world, sessions, redis, settings)
    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(client, manager.email)
    html = (await client.get(f"/staff/orders/{order.id}")).text
    headers = {"HX-Request": "true", "x-csrftoken": csrf_from(html)}
    url = ACTION.format(order.id)
    form = {"amount": "20", "reason": "late", "destination": "store_credit", "form_key": _key(html, order.id)}
    done = await client.post(url, data=form, headers=headers)
    assert done.status_code == 200 and "Given back: €20.00 to store credit." in done.text
    assert 'data-testid="sv-credited"' in done.text
    async with sessions() as session:
        account = await StoreCreditService(session, shop.store.id).of_customer(customer_id)
    assert account is not None and account.balance_minor == 2000
    # 28.00 - 20.00 credited: at most 8.00 more, whichever way
    over = {"amount": "8.01", "reason": "x", "destination": "store_credit", "form_key": _key(done.text, order.id)}
    refused = await client.post(url, data=over, headers=headers)
    assert refused.status_code == 422 and 'data-testid="sv-amount-error"' in refused.text
    async with sessions() as session:
        account = await StoreCreditService(session, shop.store.id).of_customer(customer_id)
    assert account is not None and account.balance_minor == 2000


async def test_staff_see_the_split_but_only_a_manager_refunds_and_a_guest_order_has_no_store_credit(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop, order, _ = await _order_paid_by_gift_card_and_card(world, sessions, redis, settings, customer=False)
    staff = await world.staff(shop.store, Role.STAFF)
    await sign_in(client, staff.email)
    html = (await client.get(f"/staff/orders/{order.id}")).text
    assert "Gift card ••••" in html and "A manager can give this back" in html and "sv-refund-form" not in html
    refused = await client.post(
        ACTION.format(order.id),
        data={"amount": "1", "reason": "x", "destination": "original", "form_key": "k"},
        headers={"HX-Request": "true", "x-csrftoken": csrf_from(html)},
    )
    assert refused.status_code == 403
    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(client, manager.email)
    html = (await client.get(f"/staff/orders/{order.id}")).text
    panel = html[html.index('id="stored-value-panel"') :]
    assert "No customer on this order: store credit is not possible." in panel, panel[:3000]
    no_customer = await client.post(
        ACTION.format(order.id),
        data={"amount": "1", "reason": "x", "destination": "store_credit", "form_key": _key(html, order.id)},
        headers={"HX-Request": "true", "x-csrftoken": csrf_from(html)},
    )
    assert no_customer.status_code == 422 and "no customer to credit" in no_customer.text
