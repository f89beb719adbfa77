from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.conftest import World
from tests.integration.shop import Shopper, make_shop


async def test_signed_up_shopper_sees_the_order_in_the_account(client: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world)
    shopper = Shopper(client, shop)
    await shopper.open()
    signup = await client.post(
        f"{shopper.base}/account/signup",
        data={"name": "Ann", "email": "Ann@Example.com", "password": "long-enough-pw", "_csrf_token": shopper.csrf},
    )
    assert signup.status_code == 303
    await shopper.add("CRO-1", 2)
    checkout_form = await client.get(f"{shopper.base}/checkout")
    assert 'value="ann@example.com"' in checkout_form.text  # prefilled for the signed-in shopper
    paid = await shopper.pay(await shopper.quote(email="ann@example.com"))
    order_id = paid.headers["location"].split("/orders/")[1].split("?")[0]
    account = await client.get(f"{shopper.base}/account")
    assert "Hello, Ann" in account.text and f"/orders/{order_id}" in account.text
    # signed in, the order page opens without the link's key
    assert (await client.get(f"{shopper.base}/orders/{order_id}")).status_code == 200
    await client.post(f"{shopper.base}/account/signout", data={"_csrf_token": shopper.csrf})
    assert (await client.get(f"{shopper.base}/orders/{order_id}")).status_code == 404


async def test_account_errors_are_inline(client: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world)
    shopper = Shopper(client, shop)
    await shopper.open()
    short = await client.post(
        f"{shopper.base}/account/signup",
        data={"name": "", "email": "bad", "password": "short", "_csrf_token": shopper.csrf},
    )
    assert short.status_code == 422
    assert "Enter a valid e-mail address." in short.text and "Use at least 10 characters." in short.text
    wrong = await client.post(
        f"{shopper.base}/account/signin",
        data={"email": "nobody@example.com", "password": "whatever-pw", "_csrf_token": shopper.csrf},
    )
    assert wrong.status_code == 422 and "Wrong e-mail or password." in wrong.text
