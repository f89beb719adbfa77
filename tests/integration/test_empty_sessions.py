"""An empty session is stored nowhere (app/core/sessions.py): a cookieless shop visit writes nothing to Redis and
sets no session cookie; a cart, CSRF and signing in still work."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from tests.integration.conftest import World, sign_in
from tests.integration.shop import Shopper, make_shop


async def session_keys(redis: Redis) -> list[bytes]:
    return [key async for key in redis.scan_iter(match="till:session*")]


async def test_a_cookieless_visit_stores_no_session_and_a_cart_still_works(
    client: AsyncTestClient[Litestar], world: World, redis: Redis
) -> None:
    shop = await make_shop(world, slug="demo")
    for path in ("/s/demo", "/s/demo/p/bean-1", "/s/demo/cart"):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert "till_session" not in page.headers.get("set-cookie", ""), path
    assert await session_keys(redis) == []
    assert "till_session" not in client.cookies

    shopper = Shopper(client, shop)
    await shopper.open()  # the product page's CSRF token (its own cookie, not the session)
    assert shopper.csrf
    assert await shopper.add("BEAN-1", 2) == 200
    assert await shopper.add("CRO-1", 1) == 200
    cart = await client.get("/s/demo/cart")  # a later request finds the cart by its cookie
    assert "€26.20" in cart.text  # 2 × 11.90 + 2.40
    assert await session_keys(redis) == []  # the cart lives in its own cookie: still no session

    bad = await client.post(
        "/s/demo/cart/lines",
        data={"variant_id": str(shop.variants["MUG-1"]), "quantity": "1", "_csrf_token": "forged"},
        headers={"hx-request": "true"},
    )
    assert bad.status_code == 403  # CSRF still guards the form
    assert "€26.20" in (await client.get("/s/demo/cart")).text


async def test_signing_in_stores_the_session_and_signing_out_removes_it(
    client: AsyncTestClient[Litestar], world: World, redis: Redis
) -> None:
    store = await world.store()
    owner = await world.staff(store)
    assert (await client.get("/signin")).status_code == 200
    assert await session_keys(redis) == []
    await sign_in(client, owner.email)
    keys = await session_keys(redis)
    assert len(keys) == 1
    assert keys[0].decode().endswith(client.cookies["till_session"])
    staff = await client.get("/staff")
    assert staff.status_code == 200  # the next request is signed in from the stored session
