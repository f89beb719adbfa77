from __future__ import annotations

import re
import uuid
from zoneinfo import ZoneInfo

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from app.checkout.models import CheckoutSnapshot
from app.core.tenancy import bind_store
from app.inventory.models import StockLevel
from app.orders.models import Order
from tests.integration.conftest import World
from tests.integration.shop import Shopper, make_shop


async def test_guest_checkout_with_pickup_pays_and_shows_the_order(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    shopper = Shopper(client, shop)
    await shopper.open()
    assert await shopper.add("BEAN-1", 2) == 200
    assert await shopper.add("CRO-1", 1) == 200
    cart = await client.get(f"{shopper.base}/cart")
    assert "€26.20" in cart.text  # 2 × 11.90 + 2.40
    snapshot_id = await shopper.quote()
    review = await client.get(f"{shopper.base}/checkout/{snapshot_id}")
    async with world.sessions() as session:
        bind_store(session, shop.store.id)
        snapshot = await session.get(CheckoutSnapshot, uuid.UUID(snapshot_id))
    assert snapshot is not None
    held = snapshot.expires_at.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M %Z")  # the store's clock
    assert f'<span data-testid="held-until">{held}</span>' in review.text
    paid = await shopper.pay(snapshot_id)
    assert paid.status_code == 303, paid.text
    order_page = await client.get(paid.headers["location"])
    assert order_page.status_code == 200
    assert "Order #" in order_page.text and "€26.20" in order_page.text
    assert "paid" in order_page.text
    stream = re.search(r'sse-connect="([^"]+)"', order_page.text)  # the page keeps itself current
    assert stream is not None and "key=" in stream.group(1)
    wrong_key = stream.group(1).replace("&amp;", "&").split("key=")[0] + "key=guess&after=0"
    assert (await client.get(wrong_key)).status_code == 404  # the stream asks what the page asks
    async with world.sessions() as session:
        bind_store(session, shop.store.id)
        assert await session.scalar(select(func.count()).select_from(Order)) == 1
        levels = {lvl.variant_id: (lvl.on_hand, lvl.reserved) for lvl in await session.scalars(select(StockLevel))}
    assert levels[shop.variants["BEAN-1"]] == (48, 0)
    assert levels[shop.variants["CRO-1"]] == (49, 0)
    # the cart was converted: the shop shows an empty cart again
    assert "Your cart is empty" in (await client.get(f"{shopper.base}/cart")).text


async def test_declined_card_shows_inline_error_and_keeps_the_cart(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("MUG-1", 1)
    snapshot_id = await shopper.quote()
    declined = await shopper.pay(snapshot_id, card="4000000000000002")
    assert declined.status_code == 402
    assert "Your card was declined" in declined.text
    cart = await client.get(f"{shopper.base}/cart")
    assert "Enamel mug" in cart.text
    async with world.sessions() as session:
        bind_store(session, shop.store.id)
        level = await session.scalar(select(StockLevel).where(StockLevel.variant_id == shop.variants["MUG-1"]))
        assert level is not None and (level.on_hand, level.reserved) == (50, 0)
        assert await session.scalar(select(func.count()).select_from(Order)) == 0


async def test_delivery_shopper_can_switch_to_express_on_the_review_page(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("MUG-1", 1)
    address = {"name": "Ann", "line1": "Torstr. 1", "city": "Berlin", "postal_code": "10119", "country": "DE"}
    snapshot_id = await shopper.quote(shipping="delivery", **address)
    review = await client.get(f"{shopper.base}/checkout/{snapshot_id}")
    assert 'data-testid="delivery-choices"' in review.text
    assert "Standard (Germany)" in review.text and "Express (Germany)" in review.text
    express = await client.post(
        f"{shopper.base}/checkout",
        data={"email": "ann@example.com", "shipping": "zone:de:express", "_csrf_token": shopper.csrf, **address},
    )
    assert express.status_code == 303
    new_review = await client.get(express.headers["location"])
    assert "€12.90" in new_review.text  # express shipping
    assert "€26.90" in new_review.text  # 14.00 + 12.90, prices include tax
