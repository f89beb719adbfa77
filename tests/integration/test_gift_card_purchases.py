"""Gift cards sold as a product (issue 15): a product marked as a gift card becomes one card per unit when its order
is paid (the outbox consumer, once per order), and the buyer's order page shows each code once."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.models import Variant
from app.config import Settings
from app.core import pg
from app.core.encryption import install_keyring
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.stored_value.instruments import find_gift_card
from app.stored_value.jobs import activate_gift_cards
from app.stored_value.purchases import set_gift_card_products
from tests.integration.conftest import World, csrf_from, sign_in
from tests.integration.shop import make_shop, place_order

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(autouse=True)
def keyring(settings: Settings) -> None:
    install_keyring(settings)


async def test_a_bought_gift_card_is_activated_once_and_its_code_shown_once(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions, redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    async with sessions() as session, session.begin():
        bind_store(session, shop.store.id)
        mug = await session.get(Variant, shop.variants["MUG-1"])
        assert mug is not None
        await set_gift_card_products(session, shop.store.id, [str(mug.product_id)], principal=None)
    order = await place_order(sessions, shop, redis, settings, {"MUG-1": 2, "CRO-1": 1})
    event: dict[str, Any] = {"store_id": str(shop.store.id), "aggregate_id": str(order.id), "type": "order.placed"}
    ctx: Any = {"sessions": sessions}
    assert await activate_gift_cards(ctx, event=event) == "activated 2"
    assert await activate_gift_cards(ctx, event=event) == "skipped"  # once per order, whatever the event
    async with sessions() as session:
        rows = (await session.execute(text("SELECT row_to_json(a)::text FROM stored_value_accounts a"))).scalars()
        dump = " ".join(rows)
    page = await client.get(f"/s/{shop.store.slug}/orders/{order.id}", params={"key": order.access_token})
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    found = re.findall(r'data-testid="bought-code">([0-9A-Z-]{19})<', page.text)
    assert len(found) == 2 and "shown this once" in page.text
    assert all(code not in dump and code.replace("-", "") not in dump for code in found)  # never in clear
    async with sessions() as session, session.begin():
        card = await find_gift_card(await pg.writer(session), shop.store.id, found[0])
    assert card is not None and card.balance_minor == 1400 and card.usable()
    again = await client.get(f"/s/{shop.store.slug}/orders/{order.id}", params={"key": order.access_token})
    assert "bought-code" not in again.text and again.text.count("its code was shown before") == 2


async def test_the_gift_card_products_setting(client: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world)
    await sign_in(client, (await world.staff(shop.store, Role.MANAGER)).email)
    page = await client.get("/staff/gift-cards")
    csrf = csrf_from(page.text)
    assert 'data-testid="gift-card-products"' in page.text and "Enamel mug" in page.text
    bad = await client.post("/staff/gift-cards/products", data={"product_id": "nope", "_csrf_token": csrf})
    assert bad.status_code == 422
    async with world.sessions() as session:
        bind_store(session, shop.store.id)
        mug = await session.get(Variant, shop.variants["MUG-1"])
        assert mug is not None
        product_id = str(mug.product_id)
    saved = await client.post("/staff/gift-cards/products", data={"product_id": product_id, "_csrf_token": csrf})
    assert saved.status_code == 303
    page = await client.get("/staff/gift-cards")
    assert re.search(rf'value="{product_id}" checked', page.text)
