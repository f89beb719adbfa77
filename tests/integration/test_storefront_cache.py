"""The storefront's page cache (app/storefront/cache.py): served many times, never a stale price, per-shopper parts
filled in per request, conditional requests, stock badges within a second, pages of 48."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.catalog.services import CatalogService, ProductInput, VariantInput
from app.config import Settings
from app.core.rbac import Role
from app.inventory.services import InventoryService
from app.main import create_app
from app.storefront import jobs
from app.storefront.cache import MAX_AGE_S, PageCache, VersionReads, bump, catalog_version
from app.stores.models import Store
from tests.integration.conftest import World, csrf_from, sign_in
from tests.integration.shop import Shop, make_shop


@pytest.fixture
async def shopper(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A shopper's browser on a second app (another node: its own page cache, the same database and Redis); no
    session cookie, so the cache's fast lane answers it."""
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as other:
        other.follow_redirects = False
        yield other


def price_of(html: str) -> str:
    match = re.search(r'<p class="price big">\s*([^<]+?)\s*<', html)
    assert match, "no price on the product page"
    return match.group(1)


async def change_mug_price(client: AsyncTestClient[Litestar], shop: Shop, price: str) -> None:
    listing = await client.get("/staff/products")
    product_url = re.search(r'href="(/staff/products/[0-9a-f-]{36})"[^>]*>\s*Enamel mug', listing.text)
    assert product_url, listing.text
    form = await client.get(product_url[1])
    variant_id = re.search(r'name="variants-0-id" value="([^"]+)"', form.text)
    saved = await client.post(
        product_url[1],
        data={
            "_csrf_token": csrf_from(form.text),
            "name": "Enamel mug",
            "slug": "mug-1",
            "tax_class": "standard",
            "is_active": "on",
            "variants-0-id": variant_id[1] if variant_id else "",
            "variants-0-sku": "MUG-1",
            "variants-0-price": price,
            "variants-0-weight_grams": "400",
        },
    )
    assert saved.status_code == 303, saved.text


async def test_a_price_change_shows_on_the_very_next_request(
    client: AsyncTestClient[Litestar], shopper: AsyncTestClient[Litestar], world: World, redis: Redis
) -> None:
    shop = await make_shop(world)
    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(client, manager.email)
    page = f"/s/{shop.store.slug}/p/mug-1"
    grid = f"/s/{shop.store.slug}"
    assert price_of((await shopper.get(page)).text) == "€14.00"
    assert "€14.00" in (await shopper.get(grid)).text
    cache = PageCache.of(shopper.app.state)
    hits = cache.hits
    assert price_of((await shopper.get(page)).text) == "€14.00"
    assert cache.hits == hits + 1, "the second view comes from the cache"

    before = await catalog_version(redis, shop.store.id)
    await change_mug_price(client, shop, "15.50")
    assert await catalog_version(redis, shop.store.id) == before + 1  # bumped by the commit itself

    assert price_of((await shopper.get(page)).text) == "€15.50"
    home = (await shopper.get(grid)).text
    assert "€15.50" in home and "€14.00" not in home
    # and for a signed-in viewer (the handler's way), the same
    assert price_of((await client.get(page)).text) == "€15.50"


async def test_each_shopper_gets_their_own_token_and_cart_count(
    client: AsyncTestClient[Litestar], shopper: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    page = f"/s/{shop.store.slug}/p/bean-1"
    first = await client.get(page)
    await client.get(page)  # cached now
    ann, bob = await client.get(page), await shopper.get(page)
    assert csrf_from(ann.text) == csrf_from(first.text) == client.cookies["till_csrf"]
    assert csrf_from(bob.text) == shopper.cookies["till_csrf"] != client.cookies["till_csrf"]
    assert "set-cookie" not in ann.headers  # Ann had her token already
    added = await client.post(
        f"/s/{shop.store.slug}/cart/lines",
        data={"variant_id": str(shop.variants["BEAN-1"]), "quantity": "2", "_csrf_token": csrf_from(ann.text)},
        headers={"hx-request": "true"},
    )
    assert added.status_code == 200, added.text
    count = re.compile(r'data-testid="cart-count">(\d+)<')
    assert count.findall((await client.get(page)).text) == ["2"]
    assert count.findall((await shopper.get(page)).text) == ["0"]
    assert count.findall((await client.get(f"/s/{shop.store.slug}/cart/count")).text) == ["2"]
    # a token from a cached page is refused for another shopper's cookie
    refused = await shopper.post(
        f"/s/{shop.store.slug}/cart/lines",
        data={"variant_id": str(shop.variants["BEAN-1"]), "quantity": "1", "_csrf_token": csrf_from(ann.text)},
    )
    assert refused.status_code == 403


async def test_conditional_requests_and_cache_headers(shopper: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world)
    page = f"/s/{shop.store.slug}/p/bean-1"
    await shopper.get(page)
    full = await shopper.get(page)
    assert full.headers["cache-control"] == "private, no-cache"  # it carries this shopper's token
    assert full.headers["x-frame-options"] == "DENY"  # the security headers are on cached answers too
    again = await shopper.get(page, headers={"if-none-match": full.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    fragment = await shopper.get(f"/s/{shop.store.slug}", headers={"hx-request": "true", "hx-target": "products"})
    assert fragment.headers["cache-control"] == "public, no-cache"  # the same for everyone: a CDN may keep it
    assert "HX-Target" in fragment.headers["vary"] and "_csrf_token" not in fragment.text
    assert 'id="products"' in fragment.text and "<html" not in fragment.text
    unchanged = await shopper.get(
        f"/s/{shop.store.slug}",
        headers={"hx-request": "true", "hx-target": "products", "if-none-match": fragment.headers["etag"]},
    )
    assert unchanged.status_code == 304
    stale = await shopper.get(page, headers={"if-none-match": 'W/"something-else"'})
    assert stale.status_code == 200


async def test_stock_badges_catch_up_within_a_second(shopper: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world, stock={"BEAN-1": 1, "MUG-1": 5, "CRO-1": 5})
    page = f"/s/{shop.store.slug}/p/bean-1"
    assert "Only 1 left." in (await shopper.get(page)).text
    async with world.sessions() as session, session.begin():
        await InventoryService(session, shop.store.id).adjust(shop.variants["BEAN-1"], -1, "damaged")
    changed = time.monotonic()
    while "Sold out" not in (text := (await shopper.get(page)).text):
        assert "Only 1 left." in text
        assert time.monotonic() - changed < MAX_AGE_S + 0.5, "the badge lagged more than a second"
    assert time.monotonic() - changed < MAX_AGE_S + 0.5


async def test_a_big_store_is_served_48_products_a_page(shopper: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store()
    async with world.sessions() as session, session.begin():
        catalog = CatalogService(session, store.id)
        for i in range(60):
            await catalog.save_product(
                ProductInput(
                    name=f"Item {i:03}",
                    slug=f"item-{i:03}",
                    description="",
                    category_id=None,
                    tax_class="standard",
                    image="",
                    is_active=True,
                    variants=[VariantInput(sku=f"IT-{i:03}", options={}, price="1.00", weight_grams="10")],
                )
            )
    first = (await shopper.get(f"/s/{store.slug}")).text
    assert first.count('class="product-card"') == 48 and "Item 047" in first and "Item 048" not in first
    more = re.search(r'id="more-products"[^>]*href="([^"]+)"', first) or re.search(
        r'href="([^"]+)"[^>]*id="more-products"', first
    )
    assert more and more[1] == f"/s/{store.slug}?page=2"
    rest = await shopper.get(more[1], headers={"hx-request": "true", "hx-target": "more-products"})
    assert rest.text.count('class="product-card"') == 12 and "Item 059" in rest.text
    assert "<section" not in rest.text and "more-products" not in rest.text  # the last page
    page_two = (await shopper.get(more[1])).text  # without JavaScript: the whole page, its 12 products
    assert page_two.count('class="product-card"') == 12 and "<html" in page_two
    assert (await shopper.get(f"/s/{store.slug}?page=two")).status_code == 400
    assert (await shopper.get(f"/s/{store.slug}?page=0")).status_code == 200


async def test_the_outbox_consumer_bumps_the_version(redis: Redis, world: World) -> None:
    store = await world.store()
    before = await catalog_version(redis, store.id)
    event = {"store_id": str(store.id), "type": "product.saved", "id": 1, "payload": {"media": True}}
    assert await jobs.storefront_catalog_changed({"redis": redis}, event=event) == "bumped"
    assert await catalog_version(redis, store.id) == before + 1


async def test_a_preview_is_never_cached(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store()
    owner = await world.staff(store, Role.OWNER)
    async with world.sessions() as session, session.begin():
        row = await session.get(Store, store.id)
        assert row is not None
        row.settings = {**row.settings, "live": False}
    await sign_in(client, owner.email)
    preview = await client.get(f"/s/{store.slug}")
    assert preview.status_code == 200 and 'data-testid="preview-banner"' in preview.text
    assert preview.headers["cache-control"] == "no-store"


async def test_a_forged_csrf_cookie_never_reaches_the_page_as_html(
    shopper: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    page = f"/s/{shop.store.slug}/p/bean-1"
    forged = {"cookie": "till_csrf=x'><script>alert(1)</script>"}
    for _ in range(2):  # rendered by the handler, then from the cache's fast lane
        answer = await shopper.get(page, headers=forged)
        assert answer.status_code == 200 and "<script>alert" not in answer.text
    assert re.fullmatch(r"[0-9a-f]{128}", csrf_from(answer.text))  # the fast lane handed out a real token
    assert "till_csrf=" in answer.headers["set-cookie"]


async def test_a_version_read_that_starts_after_a_bump_sees_it(redis: Redis) -> None:
    """Reads are shared by requests arriving together, never by one that arrives after the bump."""
    reads = VersionReads()
    store_id = uuid.uuid4()
    for _ in range(20):
        before = asyncio.ensure_future(reads.get(redis, store_id))  # a batch under way (or not yet sent)
        await bump(redis, [store_id])
        after = await reads.get(redis, store_id)
        assert after == await catalog_version(redis, store_id) and after >= await before
    together = await asyncio.gather(*(reads.get(redis, store_id) for _ in range(50)))
    assert set(together) == {20}
