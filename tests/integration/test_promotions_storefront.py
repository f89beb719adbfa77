"""Promotions on the shop's pages: the cart's code box (HTMX, inline reasons, nothing changed by a bad code),
automatic promotions on the lines they touch, the review page's code, and the discount per line on the order page,
the staff order page and the board card."""

from __future__ import annotations

import re

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from app.catalog.models import Variant
from app.checkout.models import CheckoutSnapshot
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.orders.models import Order
from tests.integration.conftest import World, sign_in
from tests.integration.promotions import Sessions, make_promotion
from tests.integration.shop import Shopper, make_shop

HX = {"hx-request": "true"}


async def _code(shopper: Shopper, code: str, **extra: str) -> tuple[int, str]:
    answer = await shopper.client.post(
        f"{shopper.base}/cart/code", data={"code": code, "_csrf_token": shopper.csrf, **extra}, headers=HX
    )
    return answer.status_code, answer.text


async def test_the_cart_applies_a_code_inline_and_shows_each_lines_discount(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    await make_promotion(sessions, shop.store, min_subtotal_minor=2000)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("MUG-1", 1)
    status, html = await _code(shopper, "ten")
    assert status == 422
    assert 'data-testid="code-error">Spend €6.00 more to use this code.</small>' in html
    assert 'value="TEN"' in html and "line-discount" not in html  # kept in the field; nothing applied
    assert "line-discount" not in (await client.get(f"{shopper.base}/cart")).text
    await shopper.add("BEAN-1", 1)
    status, html = await _code(shopper, "ten")
    assert status == 200 and "Code TEN applied." in html
    assert re.search(r'data-testid="line-discount">−€1\.19 · TEN<', html)  # 10 % of the beans' 11.90
    assert re.search(r'data-testid="line-discount">−€1\.40 · TEN<', html)
    assert '<strong data-testid="cart-discount">−€2.59</strong>' in html
    page = await client.get(f"{shopper.base}/cart")  # the session keeps it
    assert 'data-testid="applied-code">TEN</span>' in page.text and "−€2.59" in page.text
    # A code that is not known leaves the applied one as it was.
    status, html = await _code(shopper, "nope")
    assert status == 422 and "We don&#39;t know the code NOPE. Check the spelling." in html
    assert 'data-testid="applied-code">TEN</span>' in html
    # Below the minimum again: the code stays, says why, and takes nothing off.
    changed = await client.post(
        f"{shopper.base}/cart/lines/{shop.variants['BEAN-1']}",
        data={"quantity": "0", "_csrf_token": shopper.csrf},
        headers=HX,
    )
    assert "not applied: Spend €6.00 more to use this code." in changed.text and "cart-discount" not in changed.text
    status, html = await _code(shopper, "", remove="1")
    assert status == 200 and "applied-code" not in html and "Code removed." in html


async def test_without_javascript_the_code_form_answers_with_the_cart_page(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    await make_promotion(sessions, shop.store)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("MUG-1", 1)
    answer = await client.post(f"{shopper.base}/cart/code", data={"code": "TEN", "_csrf_token": shopper.csrf})
    assert answer.status_code == 303 and answer.headers["location"] == f"{shopper.base}/cart"
    page = await client.get(f"{shopper.base}/cart")
    assert "Code TEN applied." in page.text and "−€1.40 · TEN" in page.text


async def test_an_automatic_promotion_shows_on_the_lines_it_touches(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    async with sessions() as session:
        bind_store(session, shop.store.id)
        product_id = await session.scalar(select(Variant.product_id).where(Variant.id == shop.variants["CRO-1"]))
    await make_promotion(
        sessions, shop.store, name="Croissant morning", code=None, percent_bps=5000, applies_to="products",
        product_ids=(str(product_id),),
    )  # fmt: skip
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("CRO-1", 2)
    await shopper.add("MUG-1", 1)
    page = await client.get(f"{shopper.base}/cart")
    assert page.text.count('data-testid="line-discount"') == 1
    assert "−€2.40 · Croissant morning" in page.text


async def test_code_through_checkout_to_the_order_page_the_staff_page_and_the_board(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    await make_promotion(sessions, shop.store)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("BEAN-1", 2)
    await shopper.add("MUG-1", 1)
    assert (await _code(shopper, "TEN"))[0] == 200
    snapshot_id = await shopper.quote()
    review = await client.get(f"{shopper.base}/checkout/{snapshot_id}")
    assert re.search(r'data-testid="line-discount"><td>TEN</td><td class="num">−€2\.38</td>', review.text)
    assert '<td class="num" data-testid="discount">−€3.78</td>' in review.text
    assert 'data-testid="total">€34.02</td>' in review.text  # 37.80 − 3.78, tax included
    paid = await shopper.pay(snapshot_id)
    assert paid.status_code == 303, paid.text
    order_page = await client.get(paid.headers["location"])
    assert "−€2.38" in order_page.text and "−€1.40" in order_page.text and "Discount (TEN)" in order_page.text
    async with sessions() as session:
        bind_store(session, shop.store.id)
        order = await session.scalar(select(Order))
    assert order is not None and order.discount_minor == 378
    staff = await world.staff(shop.store, Role.STAFF)
    await sign_in(client, staff.email)
    detail = await client.get(f"/staff/orders/{order.id}")
    assert (
        detail.text.count('data-testid="line-discount"') == 2 and 'data-testid="order-discount">−€3.78' in detail.text
    )
    board = await client.get("/staff/board/")
    assert f'data-testid="discount-{order.number}">−€3.78 · TEN</p>' in board.text
    # The used code does not follow the shopper to the next cart.
    await shopper.add("MUG-1", 1)
    assert "applied-code" not in (await client.get(f"{shopper.base}/cart")).text


async def test_the_review_page_applies_and_removes_a_code_with_a_new_quote(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    await make_promotion(sessions, shop.store, customers_only=True, code="MEMBERS")
    await make_promotion(sessions, shop.store, code="TEN")
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("MUG-1", 1)
    snapshot_id = await shopper.quote()
    url = f"{shopper.base}/checkout/{snapshot_id}/code"
    refused = await client.post(url, data={"code": "members", "_csrf_token": shopper.csrf}, headers=HX)
    assert refused.status_code == 422
    assert 'data-testid="code-error">Sign in to your account to use this code.</small>' in refused.text
    async with sessions() as session:
        bind_store(session, shop.store.id)
        assert await session.scalar(select(func.count()).select_from(CheckoutSnapshot)) == 1  # nothing written
    applied = await client.post(url, data={"code": "ten", "_csrf_token": shopper.csrf}, headers=HX)
    assert applied.status_code == 200
    new_review = applied.headers["hx-redirect"]
    assert new_review != f"{shopper.base}/checkout/{snapshot_id}"
    page = await client.get(new_review)
    assert 'data-testid="applied-code">TEN</span>' in page.text and "−€1.40" in page.text
    removed = await client.post(f"{new_review}/code", data={"remove": "1", "_csrf_token": shopper.csrf}, headers=HX)
    without = await client.get(removed.headers["hx-redirect"])
    assert "applied-code" not in without.text and 'data-testid="total">€14.00</td>' in without.text


async def test_a_code_that_no_longer_applies_at_checkout_is_left_out_and_said(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    await make_promotion(sessions, shop.store, first_order_only=True)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("MUG-1", 1)
    assert (await _code(shopper, "TEN"))[0] == 200  # a guest's cart: the e-mail is not known yet
    first = await shopper.quote(email="ann@example.com")
    assert (await shopper.pay(first)).status_code == 303
    await shopper.add("MUG-1", 1)
    assert (await _code(shopper, "TEN"))[0] == 200
    second = await shopper.quote(email="ann@example.com")  # she has ordered before now
    review = await client.get(f"{shopper.base}/checkout/{second}")
    assert "Your code TEN was not applied: This code is for a first order only." in review.text
    assert 'data-testid="total">€14.00</td>' in review.text


async def test_trying_code_after_code_is_stopped_for_a_while(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    shop = await make_shop(world)
    await make_promotion(sessions, shop.store)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("MUG-1", 1)
    for n in range(20):
        assert (await _code(shopper, f"GUESS{n:02d}"))[0] == 422
    status, html = await _code(shopper, "TEN")  # even the right one, until the window passes
    assert status == 429 and "Too many codes tried. Try again in a few minutes." in html
    assert "applied-code" not in html
