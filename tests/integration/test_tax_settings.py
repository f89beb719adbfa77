"""The tax settings page: it edits what the checkout reads, refuses bad values whole, and is for managers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app.catalog.models import Product
from app.core.audit import AuditEntry
from app.core.outbox import OutboxEvent
from app.core.rbac import Role
from app.core.tenancy import bind_store, system_scope
from app.tax.form import tax_form_values
from app.tax.settings import tax_payload_of
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in
from tests.integration.settings_pages import assert_nothing_written, inline_error, store_settings
from tests.integration.shop import Shop, make_shop

PAGE = "/staff/settings/tax"


async def _open(
    client: AsyncTestClient[Litestar], world: World, shop: Shop, role: Role = Role.MANAGER
) -> dict[str, str]:
    """Sign in as ``role`` and open the page: the form's values as shown (the built-in defaults), with CSRF."""
    member = await world.staff(shop.store, role)
    await sign_in(client, member.email)
    page = await client.get(PAGE)
    assert page.status_code == 200, page.text
    return tax_form_values(tax_payload_of({})) | {"_csrf_token": csrf_from(page.text)}


async def _quote(
    client: AsyncTestClient[Litestar], world: World, shop: Shop, lines: dict[str, int], **extra: Any
) -> dict[str, Any]:
    auth = bearer(await issue_token(world, shop.store))
    cart = (await client.post("/api/v1/checkout/carts", headers=auth)).json()
    for sku, quantity in lines.items():
        added = await client.post(
            f"/api/v1/checkout/carts/{cart['token']}/lines",
            json={"variant_id": str(shop.variants[sku]), "quantity": quantity},
            headers=auth,
        )
        assert added.status_code == 200, added.text
    quote = await client.post(
        "/api/v1/checkout/quote", json={"cart_token": cart["token"], "email": "t@example.com", **extra}, headers=auth
    )
    assert quote.status_code == 201, quote.text
    body: dict[str, Any] = quote.json()
    return body


async def test_the_page_shows_the_rules_the_checkout_uses_with_a_preview(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    await _open(client, world, shop)
    page = (await client.get(PAGE)).text
    assert 'name="classes-1-name" value="reduced"' in page
    assert 'name="jurisdictions-0-rate-0" value="19"' in page and 'name="jurisdictions-5-region" value="NY"' in page
    assert 'name="prices_include_tax" value="yes" checked' in page
    assert 'data-testid="tax-preview"' in page  # saved rules' preview, without JavaScript
    assert 'data-testid="preview-tax">€3.03<' in page and 'data-testid="preview-total">€34.90<' in page


async def test_saved_rules_are_what_the_next_checkout_charges(client: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world)
    form = await _open(client, world, shop)
    before = await _quote(client, world, shop, {"MUG-1": 1, "BEAN-1": 1})
    assert before["tax_minor"] == 224 + 78  # 19 % in 14.00, 7 % in 11.90: prices include tax
    saved = await client.post(
        PAGE,
        data=form | {"prices_include_tax": "no", "jurisdictions-0-rate-0": "20", "jurisdictions-0-rate-1": "5.5"},
    )
    assert saved.status_code == 303 and saved.headers["location"] == PAGE
    assert "Tax settings saved." in (await client.get(PAGE)).text
    after = await _quote(client, world, shop, {"MUG-1": 1, "BEAN-1": 1})
    assert after["tax_minor"] == 280 + 65  # 20 % of 14.00, 5.5 % of 11.90, added on top
    assert after["total_minor"] == 1400 + 1190 + 345
    assert {line["sku"]: line["tax_rate_bps"] for line in after["lines"]} == {"MUG-1": 2000, "BEAN-1": 550}
    settings = await store_settings(world, shop.store.id)
    assert settings["prices_include_tax"] is False and settings["shipping_tax_class"] == "standard"
    assert settings["tax"]["jurisdictions"][0]["rates"] == {"standard": 2000, "reduced": 550, "zero": 0}
    async with world.sessions() as session:
        system_scope(session)
        audit = (await session.scalars(select(AuditEntry).where(AuditEntry.store_id == shop.store.id))).all()
        events = (await session.scalars(select(OutboxEvent).where(OutboxEvent.type == "store.updated"))).all()
    assert [a.action for a in audit] == ["settings.tax"]
    assert set(audit[0].details) == {"tax", "prices_include_tax", "shipping_tax_class"}
    assert len(events) == 1


async def test_shipping_is_taxed_in_the_shipping_class_and_a_new_class_reaches_products(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    form = await _open(client, world, shop)
    address = {"name": "Ann", "line1": "Torstr. 1", "city": "Berlin", "postal_code": "10119", "country": "DE"}
    saved = await client.post(
        PAGE,
        data=form
        | {
            "classes-3-name": "books",  # the empty row: a new class, with its DE rate in the new column
            "jurisdictions-0-rate-3": "0",
            "shipping_tax_class": "1",  # shipping taxed as reduced
        },
    )
    assert saved.status_code == 303, saved.text
    quote = await _quote(client, world, shop, {"MUG-1": 1}, shipping="delivery", address=address)
    shipping = next(t for t in quote["tax_lines"] if t["key"] == "shipping")
    assert shipping["rate_bps"] == 700 and quote["shipping"]["amount_minor"] == 350  # the bike courier, 7 %
    product_page = await client.get(f"/staff/products/{await _product_id(world, shop, 'mug-1')}")
    assert '<option value="books" >books</option>' in product_page.text
    assert '<option value="exempt" >exempt (no tax)</option>' in product_page.text


async def _product_id(world: World, shop: Shop, slug: str) -> uuid.UUID:
    async with world.sessions() as session:
        bind_store(session, shop.store.id)
        product_id = await session.scalar(select(Product.id).where(Product.slug == slug))
    assert product_id is not None
    return product_id


async def test_an_exempt_product_is_never_taxed_and_listed_on_the_page(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    await _open(client, world, shop)
    mug = await _product_id(world, shop, "mug-1")
    edit = await client.get(f"/staff/products/{mug}")
    saved = await client.post(
        f"/staff/products/{mug}",
        data={
            "_csrf_token": csrf_from(edit.text),
            "name": "Enamel mug",
            "slug": "mug-1",
            "tax_class": "exempt",
            "is_active": "on",
            "variants-0-id": str(shop.variants["MUG-1"]),
            "variants-0-sku": "MUG-1",
            "variants-0-price": "14.00",
            "variants-0-weight_grams": "400",
        },
    )
    assert saved.status_code == 303, saved.text
    quote = await _quote(client, world, shop, {"MUG-1": 1, "BEAN-1": 1})
    mug_line = next(line for line in quote["lines"] if line["sku"] == "MUG-1")
    assert (mug_line["tax_class"], mug_line["tax_minor"]) == ("exempt", 0)
    assert {t["name"] for t in quote["tax_lines"]} == {"Tax exempt", "MwSt"}
    assert quote["tax_minor"] == 78  # the beans' 7 % only
    page = (await client.get(PAGE)).text
    assert f'<a href="/staff/products/{mug}">Enamel mug</a>' in page


BAD_INPUTS = [
    pytest.param({"jurisdictions-0-rate-0": "abc"}, "jurisdictions-0-rate-0", "Enter a rate in percent", id="rate-nan"),
    pytest.param(
        {"jurisdictions-0-rate-1": "-7"}, "jurisdictions-0-rate-1", "A rate can't be negative.", id="rate-negative"
    ),
    pytest.param(
        {"jurisdictions-1-rate-0": "120"}, "jurisdictions-1-rate-0", "A rate can't be over 100 %.", id="rate-over-100"
    ),
    pytest.param(
        {"jurisdictions-0-rate-0": "19.123"}, "jurisdictions-0-rate-0", "at most two decimals", id="rate-decimals"
    ),
    pytest.param(
        {"jurisdictions-0-rate-0": ""},
        "jurisdictions-0-rate-0",
        "Enter the rate of the default class",
        id="default-rate-missing",
    ),
    pytest.param(
        {"jurisdictions-2-country": "FRA"}, "jurisdictions-2-country", "two-letter country code", id="country-3-letters"
    ),
    pytest.param(
        {"jurisdictions-6-country": "DE", "jurisdictions-6-name": "MwSt", "jurisdictions-6-rate-0": "19"},
        "jurisdictions-6-country",
        "DE is listed twice (also row 1)",
        id="duplicate",
    ),
    pytest.param({"jurisdictions-1-name": ""}, "jurisdictions-1-name", "Enter the tax's name", id="tax-name-empty"),
    pytest.param(
        {"jurisdictions-0-rate-3": "5"}, "classes-3-name", "Name this class, or clear its rates.", id="class-unnamed"
    ),
    pytest.param({"classes-3-name": "Gift Cards!"}, "classes-3-name", "Use lowercase letters", id="class-bad-chars"),
    pytest.param({"classes-3-name": "exempt"}, "classes-3-name", "built in", id="class-exempt"),
    pytest.param({"classes-2-name": "reduced"}, "classes-2-name", "is listed twice", id="class-twice"),
    pytest.param({"classes-0-remove": "on"}, "default_class", "“standard” is being removed", id="default-removed"),
    pytest.param(
        {"shipping_tax_class": "2", "classes-2-remove": "on"},
        "shipping_tax_class",
        "“zero” is being removed",
        id="shipping-removed",
    ),
    pytest.param({"default_class": ""}, "default_class", "Choose the default class", id="no-default"),
    pytest.param(
        {"shipping_tax_class": "9"},
        "shipping_tax_class",
        "Choose the class shipping is taxed as",
        id="shipping-unknown",
    ),
    pytest.param(
        {"classes-1-remove": "on"},
        "classes-1-name",
        "“reduced” is used by “Croissant”, “Espresso beans”. Give them another class first.",
        id="class-in-use",
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
    for key, value in changes.items():  # the values stay as typed
        if value and not key.endswith("remove") and key not in ("default_class", "shipping_tax_class"):
            assert f'name="{key}" value="{value}"' in html
    await assert_nothing_written(world, shop.store.id, before)


async def test_several_bad_values_are_all_shown_at_once(client: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world)
    form = await _open(client, world, shop)
    refused = await client.post(
        PAGE, data=form | {"jurisdictions-0-rate-0": "x", "jurisdictions-2-country": "1", "classes-1-remove": "on"}
    )
    assert refused.status_code == 422
    for field in ("jurisdictions-0-rate-0", "jurisdictions-2-country", "classes-1-name"):
        assert f'id="e-{field}"' in refused.text
    assert "Check the highlighted fields." in refused.text


@pytest.mark.parametrize("role", [Role.CASHIER, Role.STAFF])
async def test_cashiers_and_staff_may_not_see_or_change_tax(
    client: AsyncTestClient[Litestar], world: World, role: Role
) -> None:
    shop = await make_shop(world)
    member = await world.staff(shop.store, role)
    await sign_in(client, member.email)
    home = await client.get("/staff")
    assert (await client.get(PAGE)).status_code == 403
    form = tax_form_values(tax_payload_of({})) | {"_csrf_token": csrf_from(home.text), "prices_include_tax": "no"}
    assert (await client.post(PAGE, data=form)).status_code == 403
    assert (await client.post(f"{PAGE}/preview", data=form)).status_code == 403
    assert "tax" not in await store_settings(world, shop.store.id)


async def test_saving_changes_only_the_signed_in_store(client: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world)
    other = await make_shop(world)
    form = await _open(client, world, shop)
    other_before = await store_settings(world, other.store.id)
    saved = await client.post(PAGE, data=form | {"jurisdictions-0-rate-0": "25"})
    assert saved.status_code == 303
    assert (await store_settings(world, shop.store.id))["tax"]["jurisdictions"][0]["rates"]["standard"] == 2500
    assert await store_settings(world, other.store.id) == other_before
    assert (await _quote(client, world, other, {"MUG-1": 1}))["tax_minor"] == 224  # still the defaults' 19 %


async def test_the_preview_uses_the_unsaved_values(client: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world)
    form = await _open(client, world, shop)
    unsaved = form | {"jurisdictions-0-rate-0": "25", "prices_include_tax": "no"}
    fragment = await client.post(f"{PAGE}/preview", data=unsaved, headers={"hx-request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<form" not in fragment.text
    # 10.00 standard at 25 %, 10.00 reduced at 7 %, 10.00 zero, 4.90 shipping at 25 %: added on top
    assert (
        'data-testid="preview-tax">€4.43<' in fragment.text and 'data-testid="preview-total">€39.33<' in fragment.text
    )
    us = await client.post(f"{PAGE}/preview", data=unsaved | {"preview_country": "us"}, headers={"hx-request": "true"})
    assert "No jurisdiction for US" in us.text  # only NY has a rule: a US address without a state pays none
    broken = await client.post(
        f"{PAGE}/preview", data=unsaved | {"jurisdictions-0-rate-0": "x"}, headers={"hx-request": "true"}
    )
    assert broken.status_code == 200 and "Enter a rate in percent, such as 19 or 7.5." in broken.text
    page = await client.post(f"{PAGE}/preview", data=unsaved)  # without JavaScript: the whole page
    assert page.status_code == 200 and "<form" in page.text and 'data-testid="preview-total">€39.33<' in page.text
    assert 'name="jurisdictions-0-rate-0" value="25"' in page.text
    assert "tax" not in await store_settings(world, shop.store.id)  # a preview saves nothing
