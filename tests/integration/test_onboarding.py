"""Opening a store: /start, the address check, an owner's next store, the checklist, going live, "opening soon"."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image
from redis.asyncio import Redis
from sqlalchemy import func, select

from app.catalog.models import Product
from app.config import Settings
from app.core.audit import AuditEntry
from app.core.rbac import Role
from app.core.tenancy import system_scope
from app.main import create_app
from app.stores.models import Membership, Store, StoreLogo, User
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in
from tests.integration.shop import Shop, make_shop, place_order

SIGN_UP = {
    "name": "Nora Nord",
    "email": "nora@bakery-nord.se",
    "password": "rye-and-cardamom",
    "password_confirm": "rye-and-cardamom",
    "store_name": "Bakery Nord",
    "slug": "bakery-nord",
    "currency": "SEK",
    "country": "SE",
    "timezone": "Europe/Stockholm",
}
DETAILS = {
    "line1": "Storgatan 1",
    "line2": "",
    "postal_code": "111 22",
    "city": "Stockholm",
    "email": "hej@bakery-nord.se",
    "phone": "+46 8 123 456",
    "brand_colour": "#8a4b2a",
}


async def _counts(world: World) -> tuple[int, int, int]:
    async with world.sessions() as session:
        system_scope(session)
        return (
            await session.scalar(select(func.count()).select_from(User)) or 0,
            await session.scalar(select(func.count()).select_from(Store)) or 0,
            await session.scalar(select(func.count()).select_from(Membership)) or 0,
        )


async def _sign_up(client: AsyncTestClient[Litestar], **changes: str) -> Any:
    page = await client.get("/start")
    assert page.status_code == 200, page.text
    return await client.post("/start", data={**SIGN_UP, **changes, "_csrf_token": csrf_from(page.text)})


async def _store(world: World, slug: str) -> Store:
    async with world.sessions() as session:
        system_scope(session)
        store = await session.scalar(select(Store).where(Store.slug == slug))
        assert store is not None
        return store


async def test_a_merchant_signs_up_and_lands_on_the_setup_checklist(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    response = await _sign_up(client)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/staff"
    home = await client.get("/staff")
    assert "Welcome to Till. Bakery Nord is ready to set up" in home.text
    assert 'data-testid="setup-checklist"' in home.text
    assert "1 of 8 done" in home.text  # currency and country are set at sign-up
    assert "needed to go live" in home.text
    store = await _store(world, "bakery-nord")
    assert (store.currency, store.timezone, store.settings["country"], store.settings["live"]) == (
        "SEK",
        "Europe/Stockholm",
        "SE",
        False,
    )
    assert store.settings["prices_include_tax"] is True
    assert [j["country"] for j in store.settings["tax"]["jurisdictions"]] == ["SE"]
    assert store.settings["shipping"]["pickup"]["enabled"] is True
    async with world.sessions() as session:
        system_scope(session)
        membership = await session.scalar(select(Membership).where(Membership.store_id == store.id))
        assert membership is not None and membership.role == Role.OWNER
        assert membership.user.email == "nora@bakery-nord.se"
        actions = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.store_id == store.id)))
    assert actions == ["store.created"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "Enter a name."),
        ({"email": "nora-at-nowhere"}, "Enter a valid e-mail address."),
        ({"password": "short", "password_confirm": "short"}, "Use at least 10 characters."),
        ({"password_confirm": "something-else"}, "The two passwords differ."),
        ({"store_name": ""}, "Enter a name of 1 to 120 characters."),
        ({"slug": "Bakery Nord!"}, "Use 2–63 lowercase letters, digits and dashes"),
        ({"slug": "staff"}, "This address is reserved. Choose another."),
        ({"slug": ""}, "Choose the address of your shop"),
        ({"currency": "KRONA"}, "Choose a currency such as EUR, SEK or USD."),
        ({"country": "XX"}, "Choose the country your shop is in."),
        ({"timezone": "Europe/Atlantis"}, "Choose a time zone such as Europe/Berlin."),
    ],
)
async def test_each_bad_sign_up_field_is_named_inline_and_nothing_is_written(
    client: AsyncTestClient[Litestar], world: World, changes: dict[str, str], message: str
) -> None:
    response = await _sign_up(client, **changes)
    assert response.status_code == 422
    assert message in response.text
    assert 'value="Bakery Nord"' in response.text or changes.get("store_name") == ""  # values kept
    assert await _counts(world) == (0, 0, 0)


async def test_a_taken_address_or_a_known_e_mail_is_refused(client: AsyncTestClient[Litestar], world: World) -> None:
    taken = await world.store("bakery-nord")
    other = await world.store("corner")
    existing = await world.staff(other, Role.OWNER, email="nora@bakery-nord.se")
    before = await _counts(world)
    response = await _sign_up(client)
    assert response.status_code == 422
    assert "This address is taken. Choose another." in response.text
    assert "An account with this e-mail exists. Sign in and add a store from your staff home." in response.text
    assert await _counts(world) == before
    assert taken.slug == "bakery-nord" and existing.email == "nora@bakery-nord.se"


async def test_the_address_is_checked_as_you_type(client: AsyncTestClient[Litestar], world: World) -> None:
    await world.store("bakery-nord")
    free = await client.get("/start/slug", params={"slug": "bakery-sud"})
    assert free.status_code == 200 and 'data-state="free"' in free.text and "/s/bakery-sud is free." in free.text
    taken = await client.get("/start/slug", params={"slug": "bakery-nord"})
    assert 'data-state="taken"' in taken.text and "This address is taken." in taken.text
    bad = await client.get("/start/slug", params={"slug": "-x"})
    assert "Use 2–63 lowercase letters" in bad.text


async def test_sign_up_is_closed_when_the_platform_says_so(settings: Settings, world: World) -> None:
    closed = create_app(dataclasses.replace(settings, signup_open=False))
    async with AsyncTestClient(app=closed, base_url="http://testserver.local") as client:
        assert (await client.get("/start")).status_code == 404
        assert (await client.get("/start/slug", params={"slug": "abc"})).status_code == 404
        page = await client.get("/signin")
        refused = await client.post("/start", data={**SIGN_UP, "_csrf_token": csrf_from(page.text)})
        assert refused.status_code == 404
    assert await _counts(world) == (0, 0, 0)


async def test_shoppers_see_opening_soon_until_the_owner_goes_live(
    client: AsyncTestClient[Litestar], world: World, settings: Settings
) -> None:
    await _sign_up(client)
    store = await _store(world, "bakery-nord")
    # The owner sees a preview of their own store.
    preview = await client.get("/s/bakery-nord")
    assert preview.status_code == 200 and 'data-testid="preview-banner"' in preview.text
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as shopper:
        soon = await shopper.get("/s/bakery-nord")
        assert soon.status_code == 200 and 'data-testid="opening-soon"' in soon.text
        assert "Opening soon." in soon.text
        assert (await shopper.get("/s/bakery-nord/cart")).status_code == 200
        page = await shopper.get("/signin")
        added = await shopper.post(
            "/s/bakery-nord/cart/lines", data={"variant_id": "x", "_csrf_token": csrf_from(page.text)}
        )
        assert added.status_code == 409 and "Opening soon." in added.text

    # Going live needs the store's details and a product; it says what is missing.
    token = csrf_from((await client.get("/staff")).text)
    refused = await client.post("/staff/go-live", data={"_csrf_token": token})
    assert refused.status_code == 422
    assert "Before going live: store details; first product." in refused.text
    assert (await _store(world, "bakery-nord")).settings["live"] is False

    saved = await client.post("/staff/settings/details", data={**DETAILS, "_csrf_token": token})
    assert saved.status_code == 303, saved.text
    async with world.sessions() as session, session.begin():
        from app.catalog.services import CatalogService, ProductInput, VariantInput

        await CatalogService(session, store.id).save_product(
            ProductInput(
                name="Kanelbulle",
                slug="kanelbulle",
                description="",
                category_id=None,
                tax_class="reduced",
                image="",
                is_active=True,
                variants=[VariantInput(sku="BULLE", options={}, price="35.00", weight_grams="90")],
            )
        )
    live = await client.post("/staff/go-live", data={"_csrf_token": token})
    assert live.status_code == 303
    assert "Bakery Nord is live" in (await client.get("/staff")).text
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as shopper:
        shop = await shopper.get("/s/bakery-nord")
        assert shop.status_code == 200 and "Kanelbulle" in shop.text
        assert "Storgatan 1" in shop.text and "--brand: #8a4b2a" in shop.text
    async with world.sessions() as session:
        system_scope(session)
        actions = set(await session.scalars(select(AuditEntry.action).where(AuditEntry.store_id == store.id)))
    assert {"store.created", "settings.details", "store.went_live"} <= actions


async def test_the_checkout_api_takes_no_order_before_the_store_is_live(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    async with world.sessions() as session, session.begin():
        system_scope(session)
        store = await session.get(Store, shop.store.id)
        assert store is not None
        store.settings = {**store.settings, "live": False}
    secret = await issue_token(world, shop.store)
    cart = await client.post("/api/v1/checkout/carts", headers=bearer(secret))
    assert cart.status_code == 201, cart.text
    token = cart.json()["token"]
    line = {"variant_id": str(shop.variants["MUG-1"]), "quantity": 1}
    assert (await client.post(f"/api/v1/checkout/carts/{token}/lines", json=line, headers=bearer(secret))).is_success
    quote = await client.post(
        "/api/v1/checkout/quote", json={"cart_token": token, "email": "a@example.com"}, headers=bearer(secret)
    )
    assert quote.status_code == 409
    assert quote.headers["content-type"].startswith("application/problem+json")
    assert "is not open yet" in quote.json()["detail"]


async def test_an_owner_opens_another_store_and_it_sees_nothing_of_the_first(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world, slug="corner")
    owner = await world.staff(shop.store, Role.OWNER)
    await sign_in(client, owner.email)
    page = await client.get("/staff/stores/new")
    assert page.status_code == 200
    fields = {k: SIGN_UP[k] for k in ("store_name", "slug", "currency", "country", "timezone")}
    bad = await client.post("/staff/stores/new", data={**fields, "slug": "corner", "_csrf_token": csrf_from(page.text)})
    assert bad.status_code == 409 and "This address is taken." in bad.text
    created = await client.post("/staff/stores/new", data={**fields, "_csrf_token": csrf_from(page.text)})
    assert created.status_code == 303
    home = await client.get("/staff")
    assert "You are signed in to <strong>Bakery Nord</strong> as <strong>owner</strong>" in home.text
    products = await client.get("/staff/products")
    assert "Enamel mug" not in products.text
    orders = await client.get("/staff/orders")
    assert orders.status_code == 200
    async with world.sessions() as session:
        system_scope(session)
        roles = list(await session.scalars(select(Membership.role).where(Membership.user_id == owner.user.id)))
        new_products = await session.scalar(
            select(func.count()).select_from(Product).join(Store).where(Store.slug == "bakery-nord")
        )
    assert sorted(roles) == [Role.OWNER, Role.OWNER] and new_products == 0


async def test_managers_and_cashiers_cannot_open_stores_or_go_live(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store("corner")
    manager = await world.staff(store, Role.MANAGER)
    await sign_in(client, manager.email)
    token = csrf_from((await client.get("/staff")).text)
    assert (await client.get("/staff/stores/new")).status_code == 403
    assert (await client.post("/staff/go-live", data={"_csrf_token": token})).status_code == 403
    assert (await client.post("/staff/pause", data={"_csrf_token": token})).status_code == 403


async def test_bad_store_details_are_named_inline_and_nothing_is_written(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store("corner")
    owner = await world.staff(store, Role.OWNER)
    await sign_in(client, owner.email)
    token = csrf_from((await client.get("/staff/settings")).text)
    bad = {**DETAILS, "line1": "", "email": "nope", "phone": "call me", "brand_colour": "red"}
    response = await client.post("/staff/settings/details", data={**bad, "_csrf_token": token})
    assert response.status_code == 422
    for message in (
        "Enter the street address shoppers come to.",
        "Enter the e-mail address shoppers can write to.",
        "Enter a phone number such as +46 8 123 456, or leave it empty.",
        "Choose a colour such as #0f766e.",
    ):
        assert message in response.text
    assert 'value="Stockholm"' in response.text  # what was typed is kept
    assert "profile" not in (await _store(world, "corner")).settings


def _png(width: int, height: int, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height)).save(out, format="PNG")
    return out.getvalue()


async def test_a_logo_is_re_encoded_served_with_its_hash_and_bad_files_are_refused(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store("corner")
    owner = await world.staff(store, Role.OWNER)
    await sign_in(client, owner.email)
    token = csrf_from((await client.get("/staff/settings")).text)

    async def upload(content: bytes, name: str = "logo.png") -> Any:
        return await client.post(
            "/staff/settings/logo", files={"logo": (name, content, "image/png")}, data={"_csrf_token": token}
        )

    for content, message in (
        (b"not an image at all", "This file is not an image we can read."),
        (_png(10_000, 10_000, mode="1"), "This image has too many pixels."),  # a small file, a bomb when decoded
        (b"\x89PNG" + b"0" * (2 * 1024 * 1024), "This file is larger than 2 MB."),
    ):
        refused = await upload(content)
        assert refused.status_code == 422 and message in refused.text
    async with world.sessions() as session:
        system_scope(session)
        assert await session.scalar(select(func.count()).select_from(StoreLogo)) == 0

    saved = await upload(_png(2000, 1000))
    assert saved.status_code == 303
    stored = await _store(world, "corner")
    sha = stored.settings["brand"]["logo_sha"]
    logo = await client.get("/s/corner/logo.png")
    assert logo.status_code == 200 and logo.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(logo.content)).size == (512, 256)
    assert (await client.get("/s/corner/logo.png", headers={"if-none-match": logo.headers["etag"]})).status_code == 304
    assert f"/s/corner/logo.png?v={sha[:12]}" in (await client.get("/s/corner")).text
    removed = await client.post("/staff/settings/logo/remove", data={"_csrf_token": token})
    assert removed.status_code == 303
    assert (await client.get("/s/corner/logo.png")).status_code == 404


async def test_currency_and_country_are_fixed_once_the_first_order_exists(
    client: AsyncTestClient[Litestar], world: World, settings: Settings, redis: Redis
) -> None:
    shop = await make_shop(world, slug="corner")
    owner = await world.staff(shop.store, Role.OWNER)
    await sign_in(client, owner.email)
    token = csrf_from((await client.get("/staff/settings")).text)
    bad = await client.post("/staff/settings/currency", data={"currency": "XYZ", "country": "SE", "_csrf_token": token})
    assert bad.status_code == 422 and "Choose a currency such as EUR, SEK or USD." in bad.text
    changed = await client.post(
        "/staff/settings/currency", data={"currency": "SEK", "country": "SE", "_csrf_token": token}
    )
    assert changed.status_code == 303
    store = await _store(world, "corner")
    assert (store.currency, store.settings["country"]) == ("SEK", "SE")
    assert [j["country"] for j in store.settings["tax"]["jurisdictions"]] == ["SE"]  # unreviewed: follows

    order = await place_order(world.sessions, Shop(store, shop.variants), redis, settings)
    refused = await client.post(
        "/staff/settings/currency", data={"currency": "EUR", "country": "SE", "_csrf_token": token}
    )
    assert refused.status_code == 409
    assert f"Currency and country are fixed once the first order exists (#{order.number})." in refused.text
    assert (await _store(world, "corner")).currency == "SEK"
    page = await client.get("/staff/settings")
    assert 'data-testid="currency-locked"' in page.text


async def test_a_settings_change_in_one_store_never_touches_another(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    mine = await world.store("mine")
    theirs = await world.store("theirs")
    owner = await world.staff(mine, Role.OWNER)
    await sign_in(client, owner.email)
    token = csrf_from((await client.get("/staff/settings")).text)
    assert (await client.post("/staff/settings/details", data={**DETAILS, "_csrf_token": token})).status_code == 303
    assert (await client.post(
        "/staff/settings/logo", files={"logo": ("l.png", _png(20, 20), "image/png")}, data={"_csrf_token": token}
    )).status_code == 303  # fmt: skip
    # Switching to a store one is no member of is refused; the other store is untouched.
    switched = await client.post(f"/staff/stores/{theirs.id}/switch", data={"_csrf_token": token})
    assert switched.status_code == 303
    assert "You are signed in to <strong>Mine</strong>" in (await client.get("/staff")).text
    other = await _store(world, "theirs")
    assert "profile" not in other.settings and "brand" not in other.settings
    assert (await client.get("/s/theirs/logo.png")).status_code == 404


async def test_a_pickup_only_shop_offers_no_delivery_and_shows_its_pickup_instructions(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    from app.stores.onboarding import NEW_STORE_SHIPPING
    from tests.integration.shop import Shopper

    shop = await make_shop(world, slug="corner")
    pickup_only = {**NEW_STORE_SHIPPING, "pickup": {"enabled": True, "label": "Pickup", "instructions": "Ring twice."}}
    async with world.sessions() as session, session.begin():
        system_scope(session)
        store = await session.get(Store, shop.store.id)
        assert store is not None
        store.settings = {**store.settings, "shipping": pickup_only}
    shopper = Shopper(client, shop)
    await shopper.open()
    assert await shopper.add("MUG-1") == 200
    home = await client.get("/s/corner")
    assert "Order ahead and pick it up in the shop." in home.text and "have it delivered" not in home.text
    checkout = await client.get("/s/corner/checkout")
    assert "Delivery to an address" not in checkout.text and 'data-testid="address"' not in checkout.text
    assert "Pickup: Ring twice." in checkout.text
    refused = await client.post(
        "/s/corner/checkout",
        data={"email": "ann@example.com", "shipping": "delivery", "line1": "Main St 1", "postal_code": "10115",
              "city": "Berlin", "country": "DE", "name": "Ann", "_csrf_token": shopper.csrf},
    )  # fmt: skip
    assert refused.status_code == 422 and "We cannot deliver to this address." in refused.text
    snapshot = await shopper.quote()
    await shopper.pay(snapshot)
    order_page = await client.get(f"/s/corner/checkout/{snapshot}")
    assert order_page.status_code in (200, 303)


async def test_choosing_the_sandbox_on_the_payments_page_ticks_the_checklist(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    await _sign_up(client)
    home = await client.get("/staff")
    assert '<li class="todo" data-step="payments">' in home.text
    token = csrf_from(home.text)
    saved = await client.post(
        "/staff/settings/payments", data={"provider": "sandbox", "mode": "test", "_csrf_token": token}
    )
    assert saved.status_code == 303, saved.text
    home = await client.get("/staff")
    assert '<li class="done" data-step="payments">' in home.text
    assert "The sandbox: test cards only, no real money moves." in home.text
    assert (await _store(world, "bakery-nord")).settings["payment_provider"] == "sandbox"
