from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from app.catalog.models import Product, Variant
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.inventory.models import StockMovement
from tests.integration.conftest import World, csrf_from, sign_in
from tests.integration.shop import make_shop


async def test_manager_creates_a_product_with_variants_then_adjusts_stock(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(client, manager.email)
    csrf = csrf_from((await client.get("/staff/products/new")).text)
    created = await client.post(
        "/staff/products/new",
        data={
            "_csrf_token": csrf,
            "name": "Logo Tee",
            "slug": "logo-tee",
            "tax_class": "standard",
            "is_active": "on",
            "variants-0-sku": "TEE-S",
            "variants-0-options": "Size: S",
            "variants-0-price": "24,00",
            "variants-0-weight_grams": "180",
            "variants-1-sku": "TEE-M",
            "variants-1-options": "Size: M",
            "variants-1-price": "24.00",
            "variants-1-compare_at": "29.00",
            "variants-1-weight_grams": "190",
        },
    )
    assert created.status_code == 303, created.text
    page = await client.get(created.headers["location"])
    assert "Saved “Logo Tee”." in page.text and 'value="TEE-M"' in page.text and 'value="29.00"' in page.text
    async with world.sessions() as session:
        bind_store(session, shop.store.id)
        variant_id = str(await session.scalar(select(Variant.id).where(Variant.sku == "TEE-M")))
    adjusted = await client.post(
        created.headers["location"] + "/stock",
        data={
            "_csrf_token": csrf,
            "variant_id": variant_id,
            "delta": "12",
            "reason": "received",
            "note": "First delivery",
        },
    )
    assert adjusted.status_code == 303
    after = await client.get(created.headers["location"])
    assert "Stock changed by +12; 12 on hand now." in after.text
    assert 'data-testid="available-TEE-M">12<' in after.text
    listing = await client.get("/staff/products?q=tee", headers={"hx-request": "true"})
    assert "Logo Tee" in listing.text and "Enamel mug" not in listing.text
    async with world.sessions() as session:
        bind_store(session, shop.store.id)
        movement = await session.scalar(select(StockMovement).where(StockMovement.note == "First delivery"))
    assert movement is not None and movement.delta == 12 and movement.actor_id == manager.user.id


async def test_bad_product_form_shows_every_error_inline_and_writes_nothing(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(client, manager.email)
    csrf = csrf_from((await client.get("/staff/products/new")).text)
    bad = await client.post(
        "/staff/products/new",
        data={
            "_csrf_token": csrf,
            "name": "",
            "slug": "Bad Slug",
            "tax_class": "luxury",
            "variants-0-sku": "MUG-1",
            "variants-0-price": "abc",
            "variants-0-weight_grams": "x",
            "variants-1-sku": "NEW-1",
            "variants-1-price": "5.00",
            "variants-1-compare_at": "4.00",
        },
    )
    assert bad.status_code == 422
    for message in (
        "Enter a name of 1 to 200 characters.",
        "Use lowercase letters, digits and dashes.",
        "Choose a tax class.",
        "Another product uses this SKU.",
        "Enter a price such as 4.20.",
        "Enter grams as a whole number.",
        "Leave empty, or enter more than the price.",
    ):
        assert message in bad.text, message
    assert 'value="NEW-1"' in bad.text
    async with world.sessions() as session:
        bind_store(session, shop.store.id)
        assert await session.scalar(select(func.count()).select_from(Product)) == 3


async def test_stock_cannot_go_below_reserved_or_without_reason(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world, stock={"BEAN-1": 2})
    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(client, manager.email)
    async with world.sessions() as session:
        bind_store(session, shop.store.id)
        product_id = await session.scalar(select(Product.id).where(Product.slug == "bean-1"))
    csrf = csrf_from((await client.get(f"/staff/products/{product_id}")).text)
    variant = str(shop.variants["BEAN-1"])
    no_reason = await client.post(
        f"/staff/products/{product_id}/stock",
        data={"_csrf_token": csrf, "variant_id": variant, "delta": "-1", "reason": ""},
    )
    assert no_reason.status_code == 422 and "Choose a reason." in no_reason.text
    too_many = await client.post(
        f"/staff/products/{product_id}/stock",
        data={"_csrf_token": csrf, "variant_id": variant, "delta": "-3", "reason": "damaged"},
    )
    assert too_many.status_code == 422 and "At most 2 can be removed now." in too_many.text


async def test_cashier_cannot_reach_the_catalog(client: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world)
    cashier = await world.staff(shop.store, Role.CASHIER)
    await sign_in(client, cashier.email)
    assert (await client.get("/staff/products")).status_code == 403
