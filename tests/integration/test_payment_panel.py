"""The payment panel on the staff order page: HTMX forms that capture, void and refund, answered with the
panel itself; one-time form keys; inline errors; approvals over the store's refund limit."""

from __future__ import annotations

import re

from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.rbac import Role
from app.core.tenancy import system_scope
from app.orders.models import Order
from app.payments.models import PaymentIntent
from tests.integration.conftest import World, csrf_from, sign_in
from tests.integration.shop import place_order
from tests.integration.test_payment_operations import _consistent, _ledger, _paid_order, _set


def _form(html: str, action: str) -> dict[str, str]:
    """The one-time key of the form posting to ``action``, and the page's CSRF token."""
    form = html[html.index(f'hx-post="{action}"') :]
    key = re.search(r'name="form_key" value="([^"]+)"', form)
    assert key, f"no form key in the form for {action}"
    return {"form_key": key.group(1)}


async def _open(client: AsyncTestClient[Litestar], order: Order) -> tuple[str, dict[str, str]]:
    page = await client.get(f"/staff/orders/{order.id}")
    assert page.status_code == 200
    return page.text, {"HX-Request": "true", "x-csrftoken": csrf_from(page.text)}


async def _intent_of(sessions: async_sessionmaker[AsyncSession], order: Order) -> PaymentIntent:
    async with sessions() as session:
        system_scope(session)
        intent = await session.scalar(select(PaymentIntent).where(PaymentIntent.order_id == order.id))
    assert intent is not None
    return intent


def _action(order: Order, intent: PaymentIntent, op: str) -> str:
    return f"/staff/orders/{order.id}/payments/{intent.id}/{op}"


async def test_a_refund_from_the_panel_updates_the_ledger_and_the_status_in_place(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    shop, order, intent = await _paid_order(world, sessions, redis, settings, policy="at_checkout")
    staff = await world.staff(shop.store, Role.STAFF)
    await sign_in(client, staff.email)
    html, headers = await _open(client, order)
    assert 'data-testid="payment-panel"' in html and "Void authorisation" not in html  # captured: refund only
    form = {**_form(html, _action(order, intent, "refund")), "amount": "5.00", "reason": "cold coffee"}
    answer = await client.post(_action(order, intent, "refund"), data=form, headers=headers)
    assert answer.status_code == 200
    assert 'id="payment-panel"' in answer.text and "Refunded." in answer.text
    assert 'hx-swap-oob="true"' in answer.text and "payment: partially refunded" in answer.text
    assert "cold coffee" in answer.text  # the ledger row, with its reason
    again = await client.post(_action(order, intent, "refund"), data=form, headers=headers)  # a resubmit
    assert again.status_code == 200 and "submitted already" in again.text
    after = await _consistent(sessions, intent.id)
    assert after.refunded_minor == 500
    assert [tx.kind for tx in await _ledger(sessions, intent.id)] == ["authorize", "refund"]


async def test_bad_panel_input_is_said_inline_and_nothing_moves(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    shop, order, intent = await _paid_order(world, sessions, redis, settings, policy="at_checkout")
    staff = await world.staff(shop.store, Role.STAFF)
    await sign_in(client, staff.email)
    html, headers = await _open(client, order)
    refund = _action(order, intent, "refund")
    cases = [
        ({"amount": "abc", "reason": "x"}, 422, "Enter an amount such as 12.50."),
        ({"amount": "5.00", "reason": ""}, 422, "Required for a refund."),
        ({"amount": "9999.00", "reason": "x"}, 422, "At most"),
        ({"amount": "0", "reason": "x"}, 422, "Must be more than zero."),
    ]
    for fields, status, words in cases:
        answer = await client.post(refund, data={**_form(html, refund), **fields}, headers=headers)
        assert answer.status_code == status, fields
        assert words in answer.text and 'id="payment-panel"' in answer.text
        assert 'class="field invalid"' in answer.text
    void = await client.post(_action(order, intent, "void"), data={"form_key": "k1", "reason": "x"}, headers=headers)
    assert void.status_code == 422 and "manager role" in void.text
    no_key = await client.post(refund, data={"amount": "1.00", "reason": "x"}, headers=headers)
    assert no_key.status_code == 200 and "expired" in no_key.text
    after = await _consistent(sessions, intent.id)
    assert after.refunded_minor == 0
    assert [tx.kind for tx in await _ledger(sessions, intent.id)] == ["authorize"]
    cashier = await world.staff(shop.store, Role.CASHIER)
    await sign_in(client, cashier.email)
    _, cashier_headers = await _open(client, order)
    refused = await client.post(
        refund, data={"form_key": "k2", "amount": "1.00", "reason": "x"}, headers=cashier_headers
    )
    assert refused.status_code == 403


async def test_capture_and_void_from_the_panel(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    shop, order, intent = await _paid_order(world, sessions, redis, settings, policy="at_fulfilment")
    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(client, manager.email)
    html, headers = await _open(client, order)
    assert "Void authorisation" in html and 'data-testid="capture"' in html
    capture = _action(order, intent, "capture")
    answer = await client.post(capture, data={**_form(html, capture), "amount": "10.00"}, headers=headers)
    assert answer.status_code == 200 and "Captured." in answer.text and "payment: paid" in answer.text
    assert (await _consistent(sessions, intent.id)).captured_minor == 1000
    other_order = await place_order(sessions, shop, redis, settings)
    other_intent = await _intent_of(sessions, other_order)
    html, headers = await _open(client, other_order)
    void = _action(other_order, other_intent, "void")
    voided = await client.post(void, data={**_form(html, void), "reason": "voided by staff"}, headers=headers)
    assert voided.status_code == 200 and "Voided." in voided.text and "payment: voided" in voided.text
    assert (await _consistent(sessions, other_intent.id)).status == "voided"


async def test_refunds_over_the_limit_are_approved_from_the_panel(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    shop, order, intent = await _paid_order(world, sessions, redis, settings, policy="at_checkout")
    await _set(sessions, shop.store, refund_approval_threshold_minor=1000)
    staff = await world.staff(shop.store, Role.STAFF)
    await sign_in(client, staff.email)
    html, headers = await _open(client, order)
    assert "need a manager&#39;s approval" in html or "need a manager's approval" in html
    refund = _action(order, intent, "refund")
    asked = await client.post(
        refund, data={**_form(html, refund), "amount": "20.00", "reason": "wrong beans"}, headers=headers
    )
    assert asked.status_code == 200 and "a manager has been asked" in asked.text
    assert 'data-status="pending"' in asked.text and 'data-testid="approve"' not in asked.text  # staff can't
    assert (await _consistent(sessions, intent.id)).refunded_minor == 0
    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(client, manager.email)
    html, headers = await _open(client, order)
    approve = re.search(r'hx-post="([^"]+/approve)"', html)
    assert approve
    approved = await client.post(approve.group(1), data={}, headers=headers)
    assert approved.status_code == 200 and "Approved" in approved.text and 'data-status="approved"' in approved.text
    twice = await client.post(approve.group(1), data={}, headers=headers)
    assert twice.status_code == 409 and "approved already" in twice.text
    assert (await _consistent(sessions, intent.id)).refunded_minor == 2000


async def test_the_refund_queue_lists_waiting_requests_and_decides_them(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    shop, order, intent = await _paid_order(world, sessions, redis, settings, policy="at_checkout")
    await _set(sessions, shop.store, refund_approval_threshold_minor=500)
    staff = await world.staff(shop.store, Role.STAFF)
    await sign_in(client, staff.email)
    _, headers = await _open(client, order)
    refund = _action(order, intent, "refund")
    for amount in ("6.00", "7.00"):
        form = _form((await _open(client, order))[0], refund)
        asked = await client.post(refund, data={**form, "amount": amount, "reason": "late"}, headers=headers)
        assert "a manager has been asked" in asked.text
    assert (await client.get("/staff/refunds")).status_code == 403
    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(client, manager.email)
    payments = await client.get("/staff/payments")
    assert "Refund approvals (2)" in payments.text
    queue = await client.get("/staff/refunds")
    assert queue.text.count('action="/staff/refunds/') == 4  # approve and reject for each
    first, second = re.findall(r'action="/staff/refunds/([^/]+)/approve"', queue.text)
    csrf = {"_csrf_token": csrf_from(queue.text)}
    approved = await client.post(f"/staff/refunds/{first}/approve", data=csrf)
    assert approved.status_code == 303
    rejected = await client.post(f"/staff/refunds/{second}/reject", data={**csrf, "note": "no"})
    assert rejected.status_code == 303
    after = await client.get("/staff/refunds")
    assert "Nothing is waiting." in after.text and "approved" in after.text and "rejected" in after.text
    assert (await _consistent(sessions, intent.id)).refunded_minor in (600, 700)  # the approved one only
