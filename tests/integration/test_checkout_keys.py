"""/api/v1/checkout/complete keeps its Idempotency-Key in the checkout attempt (ADR 0003, issue 20): no
``idempotency_keys`` row is written for it, a retry replays the outcome, and the same key with another request
(another card, another amount) is refused with 422."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.idempotency import request_hash
from tests.integration.conftest import World, bearer, issue_token
from tests.integration.shop import make_shop

VISA = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
OTHER_CARD = {"number": "5555555555554444", "exp_month": 11, "exp_year": 2033, "cvc": "321"}


async def test_the_key_lives_in_the_attempt_and_a_reuse_with_another_request_is_422(
    client: AsyncTestClient[Litestar], world: World, engine: AsyncEngine
) -> None:
    shop = await make_shop(world)
    auth = bearer(await issue_token(world, shop.store))
    cart = (await client.post("/api/v1/checkout/carts", headers=auth)).json()
    added = await client.post(
        f"/api/v1/checkout/carts/{cart['token']}/lines",
        json={"variant_id": str(shop.variants["MUG-1"]), "quantity": 1},
        headers=auth,
    )
    assert added.status_code == 200, added.text
    quote = (
        await client.post(
            "/api/v1/checkout/quote", json={"cart_token": cart["token"], "email": "k@example.com"}, headers=auth
        )
    ).json()
    payload = {"snapshot_id": quote["id"], "amount_minor": quote["total_minor"], "card": VISA}
    keyed = {**auth, "Idempotency-Key": "keys-1"}

    first = await client.post("/api/v1/checkout/complete", json=payload, headers=keyed)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await client.post("/api/v1/checkout/complete", json=payload, headers=keyed)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["order"]["id"] == first.json()["order"]["id"]

    for changed in ({**payload, "card": OTHER_CARD}, {**payload, "amount_minor": quote["total_minor"] + 1}):
        reused = await client.post("/api/v1/checkout/complete", json=changed, headers=keyed)
        assert reused.status_code == 422, reused.text
        assert reused.headers["content-type"].startswith("application/problem+json")

    async with engine.connect() as conn:
        kept = await conn.scalar(text("SELECT count(*) FROM idempotency_keys WHERE key = 'keys-1'"))
        orders = await conn.scalar(text("SELECT count(*) FROM orders WHERE store_id = :s"), {"s": shop.store.id})
    assert kept == 0  # no statement of the idempotency middleware on this path
    assert orders == 1

    # The attempt's fingerprint holds the card only keyed (invariant 9): the hash of the same request with the
    # card in plain, which anyone could recompute by trying the numbers of a BIN, is not what is stored.
    async with engine.connect() as conn:
        stored = await conn.scalar(text("SELECT request_hash FROM checkout_attempts WHERE idempotency_key = 'keys-1'"))
    plain_card = str((VISA["number"], VISA["exp_month"], VISA["exp_year"], VISA["cvc"], ""))
    for card_part in (plain_card, str(tuple(VISA.values()))):
        plain = request_hash(
            "POST",
            "/api/v1/checkout/complete",
            b"",
            f"{quote['id']}:{quote['total_minor']}:[]:{card_part}:None:".encode(),
        )
        assert stored != plain
    assert stored and VISA["number"] not in stored
