"""The shipping settings page: it edits what the checkout offers, refuses bad values whole, and is for managers."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app.core.audit import AuditEntry
from app.core.rbac import Role
from app.core.tenancy import system_scope
from app.shipping import DEFAULT_SHIPPING_CONFIG
from app.shipping.form import shipping_form_values
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in
from tests.integration.settings_pages import assert_nothing_written, inline_error, store_settings
from tests.integration.shop import Shop, make_shop

PAGE = "/staff/settings/shipping"
ADDRESS = {"name": "Ann", "line1": "Torstr. 1", "city": "Berlin", "postal_code": "10119", "country": "DE"}


async def _open(
    client: AsyncTestClient[Litestar], world: World, shop: Shop, role: Role = Role.MANAGER
) -> dict[str, str]:
    """Sign in as ``role`` and open the page: the form's values as shown (the built-in default), with CSRF."""
    member = await world.staff(shop.store, role)
    await sign_in(client, member.email)
    page = await client.get(PAGE)
    assert page.status_code == 200, page.text
    return shipping_form_values(DEFAULT_SHIPPING_CONFIG, shop.store.currency) | {"_csrf_token": csrf_from(page.text)}


async def _quote(client: AsyncTestClient[Litestar], world: World, shop: Shop, **extra: Any) -> dict[str, Any]:
    """A quote for one mug (14.00, 400 g) through the API."""
    auth = bearer(await issue_token(world, shop.store))
    cart = (await client.post("/api/v1/checkout/carts", headers=auth)).json()
    added = await client.post(
        f"/api/v1/checkout/carts/{cart['token']}/lines", json={"variant_id": str(shop.variants["MUG-1"])}, headers=auth
    )
    assert added.status_code == 200, added.text
    quote = await client.post(
        "/api/v1/checkout/quote", json={"cart_token": cart["token"], "email": "s@example.com", **extra}, headers=auth
    )
    body: dict[str, Any] = quote.json()
    body["status"] = quote.status_code
    return body


async def test_the_page_shows_the_options_the_checkout_offers(client: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world)
    await _open(client, world, shop)
    page = (await client.get(PAGE)).text
    assert 'name="flat_amount" type="text" value="4.90"' in page
    assert 'name="zones-0-rates-3-code" value="express"' in page
    assert 'name="local_postal_codes" rows="3">10115, 10117, 10119, 104*, 10997, 10999</textarea>' in page
    assert 'data-testid="shipping-preview"' in page and "Standard (Germany)" in page  # the saved config's preview


async def test_saved_shipping_is_what_the_next_checkout_offers_and_charges(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    form = await _open(client, world, shop)
    assert (await _quote(client, world, shop, shipping="delivery", address=ADDRESS))["shipping"]["code"] == "local"
    saved = await client.post(
        PAGE,
        data=form
        | {
            "pickup_instructions": "Side door, ring twice.",
            "local_enabled": "",  # no more bike courier
            "zones-0-rates-0-amount": "3.95",  # Germany, standard up to 1 kg
            "free_over": "100.00",
        },
    )
    assert saved.status_code == 303 and saved.headers["location"] == PAGE, saved.text
    assert "Shipping settings saved." in (await client.get(PAGE)).text
    quote = await _quote(client, world, shop, shipping="delivery", address=ADDRESS)
    assert quote["status"] == 201, quote
    shipping = quote["shipping"]
    assert (shipping["code"], shipping["label"], shipping["amount_minor"]) == (
        "zone:de:standard",
        "Standard (Germany)",
        395,
    )
    assert quote["total_minor"] == 1400 + 395  # prices include tax
    assert next(t for t in quote["tax_lines"] if t["key"] == "shipping")["tax_minor"] == 63  # 19 % inside 3.95
    local = await _quote(client, world, shop, shipping="local", address=ADDRESS)
    assert local["status"] == 422  # not offered any more
    settings = await store_settings(world, shop.store.id)
    assert settings["shipping"]["pickup"]["instructions"] == "Side door, ring twice."
    assert settings["shipping"]["free_over_minor"] == 10000
    async with world.sessions() as session:
        system_scope(session)
        audit = (await session.scalars(select(AuditEntry))).all()
    assert [(a.action, list(a.details)) for a in audit] == [("settings.shipping", ["shipping"])]


async def test_a_flat_rate_and_amounts_in_a_currency_without_decimals(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store(currency="JPY")
    member = await world.staff(store, Role.OWNER)
    await sign_in(client, member.email)
    page = await client.get(PAGE)
    form = shipping_form_values(DEFAULT_SHIPPING_CONFIG, "JPY") | {"_csrf_token": csrf_from(page.text)}
    assert 'name="flat_amount" type="text" value="490"' in page.text  # the default's 490 minor units, in yen
    refused = await client.post(PAGE, data=form | {"flat_enabled": "on", "flat_amount": "5.50"})
    assert refused.status_code == 422 and "Enter an amount such as 490." in refused.text
    saved = await client.post(PAGE, data=form | {"flat_enabled": "on", "flat_amount": "800"})
    assert saved.status_code == 303
    assert (await store_settings(world, store.id))["shipping"]["flat"]["amount_minor"] == 800


BAD_INPUTS = [
    pytest.param(
        {"zones-1-countries": "AT, DE"}, "zones-1-countries", "DE is in the zone “Germany” already", id="overlap"
    ),
    pytest.param({"zones-0-countries": "DE, XX"}, "zones-0-countries", "We can't deliver to XX yet", id="unsupported"),
    pytest.param(
        {"zones-0-rates-1-max_weight_grams": "1000"},
        "zones-0-rates-1-max_weight_grams",
        "has a price up to 1000 g already",
        id="weight-repeated",
    ),
    pytest.param(
        {"zones-0-rates-0-max_weight_grams": "heavy"},
        "zones-0-rates-0-max_weight_grams",
        "Enter whole grams",
        id="weight-nan",
    ),
    pytest.param(
        {"zones-0-rates-0-amount": "-4.90"}, "zones-0-rates-0-amount", "An amount can't be negative.", id="negative"
    ),
    pytest.param(
        {"zones-0-rates-0-amount": "4.999"}, "zones-0-rates-0-amount", "Enter an amount such as 4.90.", id="amount-nan"
    ),
    pytest.param({"zones-0-rates-0-amount": ""}, "zones-0-rates-0-amount", "Enter the price.", id="bracket-no-price"),
    pytest.param(
        {"flat_enabled": "on", "flat_amount": ""},
        "flat_amount",
        "Enter the price of flat-rate shipping.",
        id="flat-no-price",
    ),
    pytest.param({"free_over": "-1"}, "free_over", "An amount can't be negative.", id="free-over-negative"),
    pytest.param(
        {"local_postal_codes": ""}, "local_postal_codes", "List the postal codes you deliver to.", id="local-no-codes"
    ),
    pytest.param(
        {"local_postal_codes": "10115, 10*x"},
        "local_postal_codes",
        "Not a postal code or prefix: 10*X",
        id="local-bad-code",
    ),
    pytest.param({"local_amount": ""}, "local_amount", "Enter the price of local delivery", id="local-no-price"),
    pytest.param({"zones-1-code": "de"}, "zones-1-code", "Another zone has the code “de”.", id="zone-code-twice"),
    pytest.param({"zones-3-label": "Nordics"}, "zones-3-code", "Use lowercase letters", id="new-zone-no-code"),
    pytest.param({"pickup_label": ""}, "pickup_label", "Enter the name shoppers see", id="pickup-label"),
    pytest.param(
        {"pickup_enabled": "", "local_enabled": "", **{f"zones-{i}-remove": "on" for i in range(3)}},
        "pickup_enabled",
        "Offer at least one way",
        id="nothing-offered",
    ),
]


@pytest.mark.parametrize(("changes", "field", "message"), BAD_INPUTS)
async def test_a_bad_value_is_refused_inline_and_nothing_is_written(
    client: AsyncTestClient[Litestar], world: World, changes: dict[str, str], field: str, message: str
) -> None:
    shop = await make_shop(world)
    form = await _open(client, world, shop)
    before = await store_settings(world, shop.store.id)
    refused = await client.post(PAGE, data=form | changes)
    assert refused.status_code == 422, refused.text
    html = refused.text
    assert message in inline_error(html, field)
    for value in changes.values():  # the values stay as typed
        if value and value != "on":
            assert f'value="{value}"' in html or f">{value}</textarea>" in html
    await assert_nothing_written(world, shop.store.id, before)


@pytest.mark.parametrize("role", [Role.CASHIER, Role.STAFF])
async def test_cashiers_and_staff_may_not_see_or_change_shipping(
    client: AsyncTestClient[Litestar], world: World, role: Role
) -> None:
    shop = await make_shop(world)
    member = await world.staff(shop.store, role)
    await sign_in(client, member.email)
    token = csrf_from((await client.get("/staff")).text)
    form = shipping_form_values(DEFAULT_SHIPPING_CONFIG, "EUR") | {"_csrf_token": token, "flat_enabled": "on"}
    assert (await client.get(PAGE)).status_code == 403
    assert (await client.post(PAGE, data=form)).status_code == 403
    assert (await client.post(f"{PAGE}/preview", data=form)).status_code == 403
    assert "shipping" not in await store_settings(world, shop.store.id)


async def test_saving_changes_only_the_signed_in_store(client: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world)
    other = await make_shop(world)
    form = await _open(client, world, shop)
    other_before = await store_settings(world, other.store.id)
    assert (await client.post(PAGE, data=form | {"local_amount": "9.00"})).status_code == 303
    assert (await store_settings(world, shop.store.id))["shipping"]["local_delivery"]["amount_minor"] == 900
    assert await store_settings(world, other.store.id) == other_before
    other_quote = await _quote(client, world, other, shipping="local", address=ADDRESS)
    assert other_quote["shipping"]["amount_minor"] == 350


async def test_the_preview_uses_the_unsaved_values(client: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world)
    form = await _open(client, world, shop)
    unsaved = form | {
        "local_amount": "2.00",
        "preview_country": "de",
        "preview_postal_code": "10435",
        "preview_weight": "800",
        "preview_subtotal": "20.00",
    }
    fragment = await client.post(f"{PAGE}/preview", data=unsaved, headers={"hx-request": "true"})
    assert fragment.status_code == 200 and "<form" not in fragment.text
    assert "Bike courier" in fragment.text and "€2.00" in fragment.text and "Express (Germany)" in fragment.text
    nowhere = await client.post(
        f"{PAGE}/preview", data=unsaved | {"preview_country": "JP"}, headers={"hx-request": "true"}
    )
    assert "No delivery to this address with these settings: pickup only." in nowhere.text
    broken = await client.post(
        f"{PAGE}/preview", data=unsaved | {"zones-1-countries": "DE"}, headers={"hx-request": "true"}
    )
    assert "DE is in the zone “Germany” already; a country has one zone." in broken.text
    page = await client.post(f"{PAGE}/preview", data=unsaved)  # without JavaScript: the whole page
    assert page.status_code == 200 and "<form" in page.text and "€2.00" in page.text
    assert 'name="local_amount" type="text" value="2.00"' in page.text
    assert "shipping" not in await store_settings(world, shop.store.id)  # a preview saves nothing
