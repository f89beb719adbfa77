"""The checkout API's fast path (app/checkout/fast_path.py): which requests it answers, and that what it passes on
gets Litestar's own answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes.http import HTTPRoute
from litestar.testing import AsyncTestClient

from tests.integration.conftest import World, bearer, issue_token
from tests.integration.shop import make_shop

VISA = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


@pytest.fixture
def litestar_answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths whose answer came from a Litestar route handler (not from the fast path)."""
    seen: list[str] = []
    original = HTTPRoute._get_response_for_request

    async def spy(self: HTTPRoute, scope: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(scope["path"])
        return await original(self, scope, *args, **kwargs)

    monkeypatch.setattr(HTTPRoute, "_get_response_for_request", spy)
    yield seen


async def _cart(client: AsyncTestClient[Litestar], world: World) -> tuple[dict[str, str], str]:
    shop = await make_shop(world)
    auth = bearer(await issue_token(world, shop.store))
    cart = (await client.post("/api/v1/checkout/carts", headers=auth)).json()
    line = {"variant_id": str(shop.variants["BEAN-1"]), "quantity": 1}
    assert (await client.post(f"/api/v1/checkout/carts/{cart['token']}/lines", json=line, headers=auth)).is_success
    return auth, cart["token"]


async def test_quote_and_complete_are_answered_by_the_fast_path(
    client: AsyncTestClient[Litestar], world: World, litestar_answers: list[str]
) -> None:
    auth, token = await _cart(client, world)
    litestar_answers.clear()
    quote = await client.post("/api/v1/checkout/quote", json={"cart_token": token, "email": "f@example.com"},
                              headers=auth)  # fmt: skip
    assert quote.status_code == 201, quote.text
    assert quote.headers["content-type"] == "application/json"
    assert quote.headers["x-content-type-options"] == "nosniff"  # the security headers still apply
    payload = {"snapshot_id": quote.json()["id"], "amount_minor": quote.json()["total_minor"], "card": VISA}
    done = await client.post("/api/v1/checkout/complete", json=payload, headers={**auth, "Idempotency-Key": "fp-1"})
    assert done.status_code == 201 and done.json()["order"]["payment_status"] == "paid"
    again = await client.post("/api/v1/checkout/complete", json=payload, headers={**auth, "Idempotency-Key": "fp-1"})
    assert again.json() == done.json() and again.headers["idempotent-replayed"] == "true"
    assert litestar_answers == []
    # a string where a number belongs is converted as Litestar converts it (not strict)
    lenient = {**payload, "card": {**VISA, "exp_month": "12"}}
    replay = await client.post("/api/v1/checkout/complete", json=lenient, headers={**auth, "Idempotency-Key": "fp-1"})
    assert replay.status_code == 201 and litestar_answers == []


async def test_what_the_fast_path_passes_on_gets_litestars_answers(
    client: AsyncTestClient[Litestar], world: World, litestar_answers: list[str]
) -> None:
    auth, token = await _cart(client, world)
    litestar_answers.clear()
    # a body that does not fit the schema: Litestar's own 400, nothing written
    bad = await client.post("/api/v1/checkout/quote", json={"cart_token": token, "email": 5}, headers=auth)
    assert bad.status_code == 400 and "email" in bad.text
    unknown_field = await client.post("/api/v1/checkout/quote", json={"cart_token": token, "colour": "red"},
                                      headers=auth)  # fmt: skip
    assert unknown_field.status_code == 400
    not_json = await client.post(
        "/api/v1/checkout/complete", content=b"{nope", headers={**auth, "Idempotency-Key": "x"}
    )
    assert not_json.status_code == 400
    assert litestar_answers == ["/api/v1/checkout/quote"] * 2 + ["/api/v1/checkout/complete"]
    # no token: the guard's 401; an unknown token: the same 401 from the fast path
    for headers in ({}, bearer("till_not-a-token")):
        refused = await client.post("/api/v1/checkout/quote", json={"cart_token": token}, headers=headers)
        assert refused.status_code == 401 and refused.headers["content-type"].startswith("application/problem+json")
    # a quote with an Idempotency-Key goes through the idempotency middleware: the repeat is replayed
    keyed = {**auth, "Idempotency-Key": "quote-1"}
    first = await client.post("/api/v1/checkout/quote", json={"cart_token": token, "email": "k@example.com"},
                              headers=keyed)  # fmt: skip
    second = await client.post("/api/v1/checkout/quote", json={"cart_token": token, "email": "k@example.com"},
                               headers=keyed)  # fmt: skip
    assert first.status_code == second.status_code == 201 and first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    # too large a body: 413 as Litestar says it
    huge = await client.post("/api/v1/checkout/complete", content=b"{" + b" " * 11_000_000 + b"}",
                             headers={**auth, "Idempotency-Key": "big"})  # fmt: skip
    assert huge.status_code == 413
    # a completion without a key: the answer function's own 422
    no_key = await client.post("/api/v1/checkout/complete", json={"snapshot_id": first.json()["id"],
                               "amount_minor": 1, "card": VISA}, headers=auth)  # fmt: skip
    assert no_key.status_code == 422 and no_key.json()["fields"] == {"idempotency-key": "Required."}
