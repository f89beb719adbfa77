from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.conftest import World, bearer, issue_token
from tests.integration.shop import make_shop

VISA = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


async def test_api_cart_quote_complete_and_retry_returns_the_same_order(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    auth = bearer(await issue_token(world, shop.store))
    cart = (await client.post("/api/v1/checkout/carts", headers=auth)).json()
    for sku, quantity in (("BEAN-1", 1), ("MUG-1", 2), ("CRO-1", 3)):
        added = await client.post(
            f"/api/v1/checkout/carts/{cart['token']}/lines",
            json={"variant_id": str(shop.variants[sku]), "quantity": quantity},
            headers=auth,
        )
        assert added.status_code == 200, added.text
    assert added.json()["subtotal_minor"] == 1190 + 2 * 1400 + 3 * 240
    quote = await client.post(
        "/api/v1/checkout/quote", json={"cart_token": cart["token"], "email": "api@example.com"}, headers=auth
    )
    assert quote.status_code == 201, quote.text
    body = quote.json()
    assert body["total_minor"] == 4710
    assert sum(line["tax_minor"] for line in body["lines"]) == body["tax_minor"]
    payload = {"snapshot_id": body["id"], "amount_minor": 4710, "card": VISA}
    first = await client.post("/api/v1/checkout/complete", json=payload, headers={**auth, "Idempotency-Key": "api-1"})
    again = await client.post("/api/v1/checkout/complete", json=payload, headers={**auth, "Idempotency-Key": "api-1"})
    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json() and first.json()["order"]["payment_status"] == "paid"
    assert again.headers["idempotent-replayed"] == "true"


async def test_api_errors_are_problem_json(client: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world, stock={"BEAN-1": 1})
    auth = bearer(await issue_token(world, shop.store))
    cart = (await client.post("/api/v1/checkout/carts", headers=auth)).json()
    too_many = await client.post(
        f"/api/v1/checkout/carts/{cart['token']}/lines",
        json={"variant_id": str(shop.variants["BEAN-1"]), "quantity": 2},
        headers=auth,
    )
    assert too_many.status_code == 422 and too_many.json()["fields"] == {"quantity": "Only 1 left."}
    empty = await client.post(
        "/api/v1/checkout/quote", json={"cart_token": cart["token"], "email": "x@example.com"}, headers=auth
    )
    assert empty.status_code == 422 and empty.json()["fields"]["cart"] == "Your cart is empty."
    await client.post(
        f"/api/v1/checkout/carts/{cart['token']}/lines", json={"variant_id": str(shop.variants["BEAN-1"])}, headers=auth
    )
    bad_address = await client.post(
        "/api/v1/checkout/quote",
        json={
            "cart_token": cart["token"],
            "email": "nope",
            "shipping": "delivery",
            "address": {"country": "DE", "postal_code": "1"},
        },
        headers=auth,
    )
    assert bad_address.status_code == 422
    fields = bad_address.json()["fields"]
    assert (
        fields["email"] == "Enter a valid e-mail address."
        and "address.postal_code" in fields
        and "address.line1" in fields
    )
    quote = (
        await client.post(
            "/api/v1/checkout/quote", json={"cart_token": cart["token"], "email": "a@example.com"}, headers=auth
        )
    ).json()
    no_key = await client.post(
        "/api/v1/checkout/complete", json={"snapshot_id": quote["id"], "amount_minor": 1, "card": VISA}, headers=auth
    )
    assert no_key.status_code == 422 and "Idempotency-Key" in no_key.json()["detail"]
    mismatch = await client.post(
        "/api/v1/checkout/complete",
        json={"snapshot_id": quote["id"], "amount_minor": 1, "card": VISA},
        headers={**auth, "Idempotency-Key": "m"},
    )
    assert mismatch.status_code == 422 and mismatch.json()["fields"] == {
        "amount_minor": f"Expected {quote['total_minor']}."
    }
    declined = await client.post(
        "/api/v1/checkout/complete",
        json={
            "snapshot_id": quote["id"],
            "amount_minor": quote["total_minor"],
            "card": {**VISA, "number": "4000000000009995"},
        },
        headers={**auth, "Idempotency-Key": "d"},
    )
    assert declined.status_code == 402 and declined.json()["error_code"] == "insufficient_funds"


async def test_delivery_quote_uses_the_address(client: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world)
    auth = bearer(await issue_token(world, shop.store))
    cart = (await client.post("/api/v1/checkout/carts", headers=auth)).json()
    await client.post(
        f"/api/v1/checkout/carts/{cart['token']}/lines", json={"variant_id": str(shop.variants["MUG-1"])}, headers=auth
    )
    address = {"name": "Ann", "line1": "Torstr. 1", "city": "Berlin", "postal_code": "10119", "country": "DE"}
    quote = await client.post(
        "/api/v1/checkout/quote",
        json={"cart_token": cart["token"], "email": "a@example.com", "shipping": "delivery", "address": address},
        headers=auth,
    )
    assert quote.status_code == 201, quote.text
    body = quote.json()
    shipping = body["shipping"]["amount_minor"]
    assert shipping > 0
    assert body["total_minor"] == 1400 + shipping  # prices include tax
    # shipping carries VAT like a standard-rated line, and the parts add up to the tax total exactly
    shipping_tax = next(t for t in body["tax_lines"] if t["key"] == "shipping")
    assert shipping_tax["rate_bps"] == 1900
    assert shipping_tax["tax_minor"] == shipping - (shipping * 10000 + 11900 // 2) // 11900
    assert body["tax_minor"] == sum(t["tax_minor"] for t in body["tax_lines"])
    assert body["tax_minor"] == sum(line["tax_minor"] for line in body["lines"]) + shipping_tax["tax_minor"]


async def test_api_pays_with_a_payment_method_token_and_needs_exactly_one_way_to_pay(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    auth = bearer(await issue_token(world, shop.store))
    cart = (await client.post("/api/v1/checkout/carts", headers=auth)).json()
    line = {"variant_id": str(shop.variants["MUG-1"]), "quantity": 1}
    await client.post(f"/api/v1/checkout/carts/{cart['token']}/lines", json=line, headers=auth)
    quote = (
        await client.post(
            "/api/v1/checkout/quote", json={"cart_token": cart["token"], "email": "pm@example.com"}, headers=auth
        )
    ).json()
    base = {"snapshot_id": quote["id"], "amount_minor": quote["total_minor"]}
    for body in (base, {**base, "card": VISA, "payment_method_token": "pm_card_visa"}):
        refused = await client.post(
            "/api/v1/checkout/complete", json=body, headers={**auth, "Idempotency-Key": str(len(body))}
        )
        assert refused.status_code == 422 and "exactly one" in refused.text
    paid = await client.post(
        "/api/v1/checkout/complete",
        json={**base, "payment_method_token": "pm_card_visa"},
        headers={**auth, "Idempotency-Key": "pm-1"},
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["order"]["payment_status"] == "paid"
