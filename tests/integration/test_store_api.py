"""``/api/v1/store``: every setting the pages edit, through the same rules, all-or-nothing."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app.core.audit import AuditEntry
from app.core.rbac import Role
from app.core.tenancy import system_scope
from app.stores.models import Store
from tests.integration.conftest import World, bearer, issue_token
from tests.integration.shop import make_shop

DETAILS = {"line1": "Storgatan 1", "postal_code": "111 22", "city": "Stockholm", "email": "hej@bakery.se"}
TAX = {
    "prices_include_tax": True,
    "shipping_tax_class": "standard",
    "rules": {
        "default_class": "standard",
        "jurisdictions": [
            {"country": "SE", "region": "", "name": "Moms", "rates": {"standard": 2500, "food": 1200}},
        ],
    },
}
SHIPPING = {
    "pickup": {"enabled": True, "label": "Pickup at the bakery"},
    "flat": {"enabled": False, "label": "Standard shipping", "amount_minor": 0},
    "free_over_minor": None,
    "zones": [
        {
            "code": "se",
            "label": "Sweden",
            "countries": ["SE"],
            "rates": [{"code": "standard", "label": "Post", "max_weight_grams": 5000, "amount_minor": 4900}],
        }
    ],
    "local_delivery": {"enabled": False, "label": "Local delivery", "postal_codes": [], "amount_minor": 0},
}
HOURS = {
    "weekly": {"mon": [["07:00", "17:00"]], "sat": [["08:00", "13:00"]]},
    "closed_dates": ["2026-12-24"],
    "pickup": {"lead_minutes": 30, "interval_minutes": 15, "days_ahead": 7},
}


async def _settings(world: World, store: Store) -> dict[str, Any]:
    async with world.sessions() as session:
        system_scope(session)
        fresh = await session.get(Store, store.id)
        assert fresh is not None
        return dict(fresh.settings)


async def test_one_patch_sets_details_tax_shipping_hours_and_the_get_shows_them(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store("bakery")
    secret = await issue_token(world, store, Role.OWNER)
    body = {"details": DETAILS, "tax": TAX, "shipping": SHIPPING, "hours": HOURS, "currency": "SEK", "country": "SE"}
    response = await client.patch("/api/v1/store", json=body, headers=bearer(secret))
    assert response.status_code == 200, response.text
    out = response.json()
    assert (out["currency"], out["country"], out["live"]) == ("SEK", "SE", True)
    assert out["details"]["city"] == "Stockholm" and out["details"]["brand_colour"] == "#0f766e"
    assert out["tax"]["rules"]["jurisdictions"][0]["rates"] == {"standard": 2500, "food": 1200}
    assert out["shipping"]["zones"][0]["rates"][0]["amount_minor"] == 4900
    assert out["hours"]["weekly"]["mon"] == [["07:00", "17:00"]]
    assert (await client.get("/api/v1/store", headers=bearer(secret))).json() == out
    saved = await _settings(world, store)
    assert saved["tax"]["jurisdictions"][0]["name"] == "Moms" and saved["shipping_tax_class"] == "standard"
    async with world.sessions() as session:
        system_scope(session)
        actions = set(await session.scalars(select(AuditEntry.action).where(AuditEntry.store_id == store.id)))
    assert {"settings.details", "settings.tax", "settings.shipping", "settings.hours", "settings.country"} <= actions


async def test_every_bad_section_is_named_at_once_and_nothing_is_written(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store("bakery")
    secret = await issue_token(world, store, Role.OWNER)
    before = await _settings(world, store)
    bad_tax = {**TAX, "rules": {"default_class": "standard", "jurisdictions": [{"country": "Sweden", "rates": {}}]}}
    bad_hours = {**HOURS, "weekly": {"mon": [["17:00", "25:00"]]}}
    body = {
        "name": "Bakery Nord",  # right, and still not written
        "details": {**DETAILS, "email": "nope"},
        "tax": bad_tax,
        "shipping": {**SHIPPING, "zones": [{"code": "se", "countries": ["SE"], "rates": []}]},
        "hours": bad_hours,
    }
    response = await client.patch("/api/v1/store", json=body, headers=bearer(secret))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    fields = response.json()["fields"]
    assert "details.email" in fields
    assert any(k.startswith("tax.rules.jurisdictions.0") for k in fields), fields
    assert any(k.startswith("shipping.zones.0") for k in fields), fields
    assert any(k.startswith("hours.mon") for k in fields), fields
    assert await _settings(world, store) == before
    assert (await client.get("/api/v1/store", headers=bearer(secret))).json()["name"] == store.name


async def test_currency_country_and_live_need_the_owner(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store("bakery")
    manager = await issue_token(world, store, Role.MANAGER)
    for body in ({"currency": "SEK"}, {"country": "SE"}, {"live": False}):
        refused = await client.patch("/api/v1/store", json=body, headers=bearer(manager))
        assert refused.status_code == 403, body
    assert (await client.patch("/api/v1/store", json={"details": DETAILS}, headers=bearer(manager))).status_code == 200
    staff = await issue_token(world, store, Role.STAFF)
    assert (await client.patch("/api/v1/store", json={"name": "X"}, headers=bearer(staff))).status_code == 403


async def test_going_live_over_the_api_needs_details_and_a_product(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world, slug="bakery")
    owner = await issue_token(world, shop.store, Role.OWNER)
    closed = await client.patch("/api/v1/store", json={"live": False}, headers=bearer(owner))
    assert closed.status_code == 200 and closed.json()["live"] is False
    refused = await client.patch("/api/v1/store", json={"live": True}, headers=bearer(owner))
    assert refused.status_code == 422 and "store details" in refused.json()["detail"]
    opened = await client.patch("/api/v1/store", json={"details": DETAILS, "live": True}, headers=bearer(owner))
    assert opened.status_code == 200 and opened.json()["live"] is True


async def test_a_token_changes_only_its_own_store(client: AsyncTestClient[Litestar], world: World) -> None:
    mine = await world.store("mine")
    theirs = await world.store("theirs")
    secret = await issue_token(world, mine, Role.OWNER)
    before = await _settings(world, theirs)
    response = await client.patch("/api/v1/store", json={"details": DETAILS, "tax": TAX}, headers=bearer(secret))
    assert response.status_code == 200 and response.json()["slug"] == "mine"
    assert await _settings(world, theirs) == before
