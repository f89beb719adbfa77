"""Opening hours and pickup times: the settings page, the storefront, the quote (page and API), the order."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cart.services import CartService
from app.checkout.models import CheckoutSnapshot
from app.checkout.quotes import QuoteRequest, QuoteService
from app.checkout.saga import CheckoutSaga, PaymentInput
from app.config import Settings
from app.core import pg
from app.core.audit import AuditEntry
from app.core.outbox import OutboxEvent
from app.core.rbac import Role
from app.core.tenancy import system_scope
from app.orders.models import Order
from app.payments.provider import CardDetails
from app.payments.registry import provider_for
from app.stores import hours as h
from app.stores.models import Store
from app.stores.services import StoreService
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in
from tests.integration.shop import Shop, Shopper, make_shop

BERLIN = ZoneInfo("Europe/Berlin")
PAGE = "/staff/settings/hours"
ALWAYS = {"weekly": {day: [["00:00", "24:00"]] for day in h.DAYS}}
DAYTIME = {"weekly": {day: [["06:00", "22:00"]] for day in h.DAYS}}
# The settings form for: weekdays 07:30–18:00 with Saturday 09:00–12:00 and 13:00–16:00, Sunday closed.
FORM = {
    **{f"{day}_open_1": "07:30" for day in ("mon", "tue", "wed", "thu", "fri")},
    **{f"{day}_close_1": "18:00" for day in ("mon", "tue", "wed", "thu", "fri")},
    "sat_open_1": "09:00",
    "sat_close_1": "12:00",
    "sat_open_2": "13:00",
    "sat_close_2": "16:00",
    "lead_minutes": "20",
    "interval_minutes": "15",
    "days_ahead": "5",
}
SAVED = {
    "weekly": {
        **{day: [["07:30", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
        "sat": [["09:00", "12:00"], ["13:00", "16:00"]],
        "sun": [],
    },
    "closed_dates": [],
    "pickup": {"lead_minutes": 20, "interval_minutes": 15, "days_ahead": 5},
}


async def set_hours(world: World, store: Store, hours: dict[str, Any] | None) -> None:
    async with world.sessions() as session, session.begin():
        await StoreService(session, store.id).set_settings(
            {"hours": None if hours is None else h.parse_hours(hours)}, actor=None, action="settings.hours"
        )
    store.settings = {**store.settings, "hours": None if hours is None else h.parse_hours(hours)}


async def stored(world: World, store: Store) -> tuple[dict[str, Any], int, int]:
    """The store's settings, its outbox events and audit rows (to prove a refusal wrote nothing)."""
    async with world.sessions() as session:
        system_scope(session)
        row = await session.get(Store, store.id)
        assert row is not None
        events = await session.scalar(select(func.count()).select_from(OutboxEvent))
        audits = await session.scalar(select(func.count()).select_from(AuditEntry))
    return dict(row.settings), int(events or 0), int(audits or 0)


def slots_now(hours: dict[str, Any]) -> list[datetime]:
    return h.pickup_slots(h.hours_from(hours), datetime.now(UTC), BERLIN)


def local_day(moment: datetime, days: int = 0) -> str:
    return (moment.astimezone(BERLIN).date() + timedelta(days=days)).isoformat()


def at_local(day: str, clock: str) -> str:
    """An ISO UTC pickup time for a wall-clock time in Berlin."""
    wall = datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=BERLIN)
    return wall.astimezone(UTC).isoformat()


async def manager_on_page(
    client: AsyncTestClient[Litestar], world: World, role: Role = Role.MANAGER
) -> tuple[Store, str]:
    store = await world.store("hours")
    member = await world.staff(store, role)
    await sign_in(client, member.email)
    page = await client.get(PAGE)
    assert page.status_code == 200, page.text
    return store, csrf_from(page.text)


# ---- the settings page -----------------------------------------------------------------------------------


async def test_the_page_saves_the_week_and_pickup_settings_with_one_audited_event(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store, token = await manager_on_page(client, world)
    page = await client.get(PAGE)
    assert 'data-testid="no-hours"' in page.text  # always open until hours are saved
    saved = await client.post(PAGE, data={**FORM, "_csrf_token": token})
    assert saved.status_code == 303 and saved.headers["location"] == PAGE
    settings, events, audits = await stored(world, store)
    assert settings["hours"] == SAVED
    assert (events, audits) == (1, 1)
    async with world.sessions() as session:
        system_scope(session)
        entry = await session.scalar(select(AuditEntry))
    assert entry is not None and entry.action == "settings.hours"
    page = await client.get(PAGE)
    assert "Opening hours saved." in page.text and 'data-testid="no-hours"' not in page.text
    assert 'name="sat_open_2" value="13:00"' in page.text
    assert re.search(r'data-testid="pickup-preview"[^>]*>Next pickup times: \w{3} \d\d:\d\d', page.text)
    again = await client.post(PAGE, data={**FORM, "_csrf_token": token})  # unchanged: no event; the save is audited
    assert again.status_code == 303 and (await stored(world, store))[1:] == (1, 2)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"mon_open_1": "25:00"}, "mon_1", "Enter the opening time as HH:MM, from 00:00 to 23:59."),
        ({"tue_close_1": "18:61"}, "tue_1", "Enter the closing time as HH:MM, from 00:00 to 24:00."),
        ({"wed_close_1": ""}, "wed_1", "Enter the closing time."),
        ({"thu_open_1": ""}, "thu_1", "Enter the opening time."),
        ({"fri_close_1": "07:30"}, "fri_1", "The closing time is the opening time: enter when you close."),
        ({"sat_open_2": "11:00"}, "sat_2", "Overlaps 09:00–12:00."),
        (
            {"fri_close_1": "10:00", "fri_open_1": "20:00", "sat_open_1": "08:00"},
            "sat_1",
            "Overlaps Friday 20:00–10:00.",
        ),
        ({"lead_minutes": "-1"}, "lead_minutes", "Enter whole minutes from 0 to 10080 (a week)."),
        ({"lead_minutes": "soon"}, "lead_minutes", "Enter whole minutes from 0 to 10080 (a week)."),
        ({"interval_minutes": "7"}, "interval_minutes", "Choose 5, 10, 15, 20, 30, 45, 60, 90 or 120 minutes."),
        ({"days_ahead": "61"}, "days_ahead", "Enter a number of days from 0 (today only) to 60."),
        ({"days_ahead": ""}, "days_ahead", "Enter a number of days from 0 (today only) to 60."),
    ],
)
async def test_every_bad_input_is_refused_inline_with_the_values_kept_and_nothing_written(
    client: AsyncTestClient[Litestar], world: World, changes: dict[str, str], field: str, message: str
) -> None:
    store, token = await manager_on_page(client, world)
    before = await stored(world, store)
    refused = await client.post(PAGE, data={**FORM, **changes, "_csrf_token": token})
    assert refused.status_code == 422
    assert message in refused.text
    assert 'data-testid="form-error">Check the highlighted fields.' in refused.text
    for name, value in changes.items():
        if value and name.endswith(("_1", "_2")):
            assert f'name="{name}" value="{value}"' in refused.text  # kept as typed
    assert "Fix the highlighted fields to see the next pickup times." in refused.text
    assert await stored(world, store) == before


async def test_the_preview_follows_the_form_and_writes_nothing(client: AsyncTestClient[Litestar], world: World) -> None:
    store, token = await manager_on_page(client, world)
    before = await stored(world, store)
    preview = await client.post(f"{PAGE}/preview", data={**FORM, "_csrf_token": token}, headers={"hx-request": "true"})
    assert preview.status_code == 200
    assert re.fullmatch(
        r'<p class="pickup-preview" id="pickup-preview"[^>]*>Next pickup times: .+, …</p>\s*', preview.text
    )
    closed = await client.post(f"{PAGE}/preview", data={"_csrf_token": token, "days_ahead": "3"})
    assert "There are no pickup times in the next 3 days." in closed.text  # no hours entered: never open
    bad = await client.post(f"{PAGE}/preview", data={**FORM, "mon_open_1": "x", "_csrf_token": token})
    assert "Fix the highlighted fields" in bad.text
    assert await stored(world, store) == before


async def test_closed_dates_are_added_and_removed_and_a_bad_date_is_refused(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store, token = await manager_on_page(client, world)
    early = await client.post(f"{PAGE}/closed", data={"closed_date_new": "2026-12-24", "_csrf_token": token})
    assert early.status_code == 422 and "Save your opening hours first." in early.text
    assert (await client.post(PAGE, data={**FORM, "_csrf_token": token})).status_code == 303
    for day in ("2026-12-25", "2026-12-24", "2026-12-25"):
        added = await client.post(f"{PAGE}/closed", data={"closed_date_new": day, "_csrf_token": token})
        assert added.status_code == 303
    assert (await stored(world, store))[0]["hours"]["closed_dates"] == ["2026-12-24", "2026-12-25"]
    page = await client.get(PAGE)
    assert "Thu 24 Dec 2026" in page.text and "Fri 25 Dec 2026" in page.text
    before = await stored(world, store)
    for bad, message in (("24.12.2026", "Enter a date such as 2026-12-24."), ("", "Choose a date.")):
        refused = await client.post(f"{PAGE}/closed", data={"closed_date_new": bad, "_csrf_token": token})
        assert refused.status_code == 422 and message in refused.text
        assert f'name="closed_date_new" type="date" value="{bad}"' in refused.text
    assert await stored(world, store) == before
    # Saving the week keeps the closed dates, whatever the form says about them.
    resaved = await client.post(PAGE, data={**FORM, "lead_minutes": "30", "closed_dates": "", "_csrf_token": token})
    assert resaved.status_code == 303
    removed = await client.post(f"{PAGE}/closed/remove", data={"remove_closed": "2026-12-24", "_csrf_token": token})
    assert removed.status_code == 303
    hours = (await stored(world, store))[0]["hours"]
    assert hours["closed_dates"] == ["2026-12-25"] and hours["pickup"]["lead_minutes"] == 30


async def test_removing_the_hours_makes_the_shop_always_open_again(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store, token = await manager_on_page(client, world)
    assert (await client.post(PAGE, data={**FORM, "_csrf_token": token})).status_code == 303
    assert (await client.post(f"{PAGE}/clear", data={"_csrf_token": token})).status_code == 303
    settings, _, audits = await stored(world, store)
    assert h.hours_of(settings) is None and audits == 2
    assert 'data-testid="no-hours"' in (await client.get(PAGE)).text


@pytest.mark.parametrize("role", [Role.CASHIER, Role.STAFF])
async def test_only_managers_and_owners_may_change_the_hours(
    client: AsyncTestClient[Litestar], world: World, role: Role
) -> None:
    store = await world.store("hours")
    member = await world.staff(store, role)
    await sign_in(client, member.email)
    assert (await client.get(PAGE)).status_code == 403
    token = csrf_from((await client.get("/staff")).text)
    for path, data in ((PAGE, FORM), (f"{PAGE}/closed", {"closed_date_new": "2026-12-24"}), (f"{PAGE}/clear", {})):
        assert (await client.post(path, data={**data, "_csrf_token": token})).status_code == 403
    assert h.hours_of((await stored(world, store))[0]) is None
    owner = await world.staff(store, Role.OWNER)
    client.cookies.clear()
    await sign_in(client, owner.email)
    assert (await client.get(PAGE)).status_code == 200


# ---- the storefront and the quote ------------------------------------------------------------------------


async def test_the_shop_says_whether_it_is_open(client: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world)
    home = await client.get(f"/s/{shop.store.slug}")
    assert 'data-testid="open-status"' not in home.text  # no hours: nothing to say
    await set_hours(world, shop.store, ALWAYS)
    assert 'data-testid="open-status">Open now</span>' in (await client.get(f"/s/{shop.store.slug}")).text
    never: dict[str, Any] = {"weekly": {}, "closed_dates": []}
    await set_hours(world, shop.store, never)
    assert 'data-testid="open-status">Closed</span>' in (await client.get(f"/s/{shop.store.slug}")).text
    tomorrow = (datetime.now(BERLIN).date() + timedelta(days=1)).weekday()
    await set_hours(world, shop.store, {"weekly": {h.DAYS[tomorrow]: [["08:00", "17:00"]]}})
    page = await client.get(f"/s/{shop.store.slug}/p/bean-1")
    assert 'data-testid="open-status">Closed · opens tomorrow 08:00</span>' in page.text


async def test_a_pickup_time_chosen_at_checkout_is_on_the_order_the_staff_page_and_the_board(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    await set_hours(world, shop.store, ALWAYS)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("MUG-1")
    checkout = await client.get(f"{shopper.base}/checkout")
    assert 'data-testid="pickup-time"' in checkout.text
    assert '<optgroup label="Tomorrow">' in checkout.text
    options = re.findall(r'<option value="([^"]+)">', checkout.text)
    first = slots_now(ALWAYS)[0]
    assert options[0] in (first.isoformat(), (first + timedelta(minutes=15)).isoformat())  # the default choice
    chosen = slots_now(ALWAYS)[8]  # two hours on: still free when the request arrives
    snapshot_id = await shopper.quote(pickup_at=chosen.isoformat())
    review = await client.get(f"{shopper.base}/checkout/{snapshot_id}")
    label = h.format_pickup(chosen, datetime.now(UTC), BERLIN)
    assert f'pickup <strong data-testid="pickup-at">{label}</strong>' in review.text
    paid = await shopper.pay(snapshot_id)
    assert paid.status_code == 303, paid.text
    order_page = await client.get(paid.headers["location"])
    assert f'Pick it up at {shop.store.name} <strong data-testid="pickup-at">{label}</strong>.' in order_page.text
    async with world.sessions() as session:
        system_scope(session)
        order = await session.scalar(select(Order).where(Order.store_id == shop.store.id))
    assert order is not None and order.shipping["pickup_at"] == chosen.isoformat()
    staff = await world.staff(shop.store, Role.CASHIER)
    await sign_in(client, staff.email)
    detail = await client.get(f"/staff/orders/{order.id}")
    assert f'data-testid="pickup-at">Pickup <strong>{label}</strong>' in detail.text
    board = await client.get("/staff/board")
    assert f'data-testid="pickup-{order.number}">Pickup {label}</p>' in board.text


async def test_a_refused_pickup_time_is_shown_next_to_the_select_with_the_form_kept(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    await set_hours(world, shop.store, DAYTIME)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("MUG-1")
    late = at_local(local_day(datetime.now(UTC), 1), "23:00")
    response = await client.post(
        f"{shopper.base}/checkout",
        data={
            "email": "ann@example.com",
            "phone": "0301234",
            "shipping": "pickup",
            "pickup_at": late,
            "_csrf_token": shopper.csrf,
        },
    )
    assert response.status_code == 422
    day = h.day_label(datetime.fromisoformat(late).astimezone(BERLIN).date()).rsplit(" ", 1)[0]
    message = f"We are not open at 23:00 on {day}. Choose a time when we are open."
    assert f'<small class="error" id="e-pickup_at">{message}</small>' in response.text
    assert f'data-testid="form-error">{message}</p>' in response.text
    assert 'value="0301234"' in response.text
    async with world.sessions() as session:
        system_scope(session)
        assert await session.scalar(select(func.count()).select_from(Order)) == 0


async def test_an_expired_checkout_whose_pickup_time_passed_is_requoted_with_the_next_free_time(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    await set_hours(world, shop.store, ALWAYS)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("MUG-1")
    snapshot_id = await shopper.quote(pickup_at=slots_now(ALWAYS)[4].isoformat())
    passed = (datetime.now(UTC) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0).isoformat()
    async with world.sessions() as session, session.begin():
        system_scope(session)
        snapshot = await session.get(CheckoutSnapshot, uuid.UUID(snapshot_id))
        assert snapshot is not None
        snapshot.expires_at = datetime.now(UTC) - timedelta(minutes=1)
        snapshot.shipping = {**snapshot.shipping, "pickup_at": passed}
    paid = await shopper.pay(snapshot_id)
    assert paid.status_code == 409
    assert "The pickup time you chose is not available any more: check the new one." in paid.text
    label = h.format_pickup(slots_now(ALWAYS)[0], datetime.now(UTC), BERLIN)
    next_label = h.format_pickup(slots_now(ALWAYS)[1], datetime.now(UTC), BERLIN)
    assert re.search(f'data-testid="pickup-at">({re.escape(label)}|{re.escape(next_label)})</strong>', paid.text)


async def test_no_free_pickup_time_takes_pickup_off_the_checkout(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    today = datetime.now(BERLIN).date()
    closed = [(today + timedelta(days=i)).isoformat() for i in range(8)]
    await set_hours(world, shop.store, {**ALWAYS, "closed_dates": closed})
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("MUG-1")
    checkout = await client.get(f"{shopper.base}/checkout")
    assert (
        'data-testid="pickup-unavailable">Pickup is not available: there are no pickup times in the next 7 days. '
        "Choose delivery instead.</p>"
    ) in checkout.text
    assert 'value="pickup"' not in checkout.text and 'data-testid="pickup-time"' not in checkout.text
    assert 'name="shipping" value="delivery" checked' in checkout.text
    refused = await client.post(
        f"{shopper.base}/checkout", data={"email": "ann@example.com", "shipping": "pickup", "_csrf_token": shopper.csrf}
    )
    assert refused.status_code == 422 and "Pickup is not available" in refused.text


async def test_a_store_without_hours_takes_pickups_without_a_time(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("MUG-1")
    checkout = await client.get(f"{shopper.base}/checkout")
    assert 'data-testid="pickup-time"' not in checkout.text and "pickup-unavailable" not in checkout.text
    snapshot_id = await shopper.quote(pickup_at="2026-01-01T00:00:00Z")  # ignored: no hours, no times
    review = await client.get(f"{shopper.base}/checkout/{snapshot_id}")
    assert 'data-testid="pickup-at"' not in review.text
    paid = await shopper.pay(snapshot_id)
    order_page = await client.get(paid.headers["location"])
    assert f"Pick it up at {shop.store.name}." in order_page.text


# ---- the API ---------------------------------------------------------------------------------------------


async def _api_cart(client: AsyncTestClient[Litestar], shop: Shop, auth: dict[str, str]) -> str:
    cart = (await client.post("/api/v1/checkout/carts", headers=auth)).json()
    added = await client.post(
        f"/api/v1/checkout/carts/{cart['token']}/lines", json={"variant_id": str(shop.variants["MUG-1"])}, headers=auth
    )
    assert added.status_code == 200
    return str(cart["token"])


async def test_api_quote_without_a_time_gets_the_first_free_one(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    await set_hours(world, shop.store, DAYTIME)
    auth = bearer(await issue_token(world, shop.store))
    offered = (await client.get("/api/v1/checkout/pickup-times", headers=auth)).json()
    assert offered["timezone"] == "Europe/Berlin" and offered["has_hours"] is True
    expected = [s.isoformat().replace("+00:00", "Z") for s in slots_now(DAYTIME)]
    assert offered["pickup_times"][:3] == expected[:3] or offered["pickup_times"][:3] == expected[1:4]
    token = await _api_cart(client, shop, auth)
    quote = await client.post(
        "/api/v1/checkout/quote", json={"cart_token": token, "email": "a@example.com"}, headers=auth
    )
    assert quote.status_code == 201, quote.text
    body = quote.json()
    assert body["pickup_at"] in offered["pickup_times"][:2]
    assert datetime.fromisoformat(body["shipping"]["pickup_at"]) == datetime.fromisoformat(body["pickup_at"])
    chosen = offered["pickup_times"][10]
    picked = await client.post(
        "/api/v1/checkout/quote",
        json={"cart_token": token, "email": "a@example.com", "pickup_at": chosen},
        headers=auth,
    )
    assert picked.status_code == 201 and picked.json()["pickup_at"] == chosen
    delivery = await client.post(
        "/api/v1/checkout/quote",
        json={
            "cart_token": token,
            "email": "a@example.com",
            "shipping": "flat",
            "pickup_at": chosen,
            "address": {"name": "A", "line1": "Torstr. 1", "city": "Berlin", "postal_code": "10119", "country": "DE"},
        },
        headers=auth,
    )
    if delivery.status_code == 201:  # flat rate on: a delivery never carries a pickup time
        assert delivery.json()["pickup_at"] is None and "pickup_at" not in delivery.json()["shipping"]


async def test_api_refuses_times_outside_the_hours_on_a_closed_date_in_the_past_or_malformed(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    shop = await make_shop(world)
    now = datetime.now(UTC)
    holiday = local_day(now, 2)
    await set_hours(world, shop.store, {**DAYTIME, "closed_dates": [holiday]})
    auth = bearer(await issue_token(world, shop.store))
    token = await _api_cart(client, shop, auth)
    tomorrow = local_day(now, 1)
    tomorrow_label = h.day_label(datetime.fromisoformat(tomorrow).date()).rsplit(" ", 1)[0]
    holiday_label = h.day_label(datetime.fromisoformat(holiday).date()).rsplit(" ", 1)[0]
    cases = [
        (at_local(tomorrow, "23:00"), f"We are not open at 23:00 on {tomorrow_label}. Choose a time when we are open."),
        (at_local(tomorrow, "05:30"), f"We are not open at 05:30 on {tomorrow_label}. Choose a time when we are open."),
        (at_local(holiday, "12:00"), f"We are closed on {holiday_label}. Choose another day."),
        (
            (now - timedelta(hours=1)).replace(second=0, microsecond=0).isoformat(),
            "That pickup time has passed. Choose a later time.",
        ),
        ("next tuesday", "That is not a pickup time. Choose one from the list."),
        (f"{tomorrow}T12:00:00", "Give the pickup time with its time zone, such as 2026-03-30T07:30:00Z."),
        (at_local(tomorrow, "12:05"), "Choose one of the offered pickup times (every 15 minutes)."),
        (at_local(local_day(now, 9), "12:00"), "Pickup times can be chosen up to 7 days ahead."),
    ]
    for pickup_at, message in cases:
        refused = await client.post(
            "/api/v1/checkout/quote",
            json={"cart_token": token, "email": "a@example.com", "pickup_at": pickup_at},
            headers=auth,
        )
        assert refused.status_code == 422, (pickup_at, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["fields"] == {"pickup_at": message}, pickup_at
        assert refused.json()["detail"] == message
    async with world.sessions() as session:
        system_scope(session)
        assert await session.scalar(select(func.count()).select_from(Order)) == 0


async def test_api_for_a_store_without_hours_is_unchanged(client: AsyncTestClient[Litestar], world: World) -> None:
    shop = await make_shop(world)
    auth = bearer(await issue_token(world, shop.store))
    offered = (await client.get("/api/v1/checkout/pickup-times", headers=auth)).json()
    assert offered == {"timezone": "Europe/Berlin", "has_hours": False, "pickup_times": []}
    token = await _api_cart(client, shop, auth)
    quote = await client.post(
        "/api/v1/checkout/quote", json={"cart_token": token, "email": "a@example.com"}, headers=auth
    )
    assert quote.status_code == 201 and quote.json()["pickup_at"] is None
    assert quote.json()["shipping"] == {
        "code": "pickup",
        "label": "Pickup in store",
        "method": "pickup",
        "amount_minor": 0,
    }


async def test_the_openapi_schema_documents_pickup_at(client: AsyncTestClient[Litestar]) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    quote_in = schema["components"]["schemas"]["QuoteIn"]["properties"]["pickup_at"]
    assert "Left out: the first available pickup time." in quote_in["description"]
    assert "/api/v1/checkout/pickup-times" in schema["paths"]


# ---- the completion stays within its SQL budget ----------------------------------------------------------


async def test_completing_a_pickup_with_a_time_costs_no_extra_statement(
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    redis: Redis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pickup time rides in the snapshot's shipping JSON onto the order: the saga's 3 statements stay 3."""
    shop = await make_shop(world)
    await set_hours(world, shop.store, ALWAYS)
    async with sessions() as session, session.begin():
        carts = CartService(session, shop.store.id, shop.store.currency)
        cart = await carts.get_or_create(None)
        await carts.add(cart, shop.variants["MUG-1"], 1)
        chosen = slots_now(ALWAYS)[4]
        snapshot = await QuoteService(await pg.writer(session), shop.store).create(
            QuoteRequest(cart_token=cart.token, email="a@example.com", pickup_at=chosen.isoformat())
        )
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    raw_execute, raw_script = asyncpg.Connection._execute, asyncpg.Connection.execute

    async def counted_execute(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(query)
        return await raw_execute(self, query, *args, **kwargs)

    async def counted_script(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        if not args:
            statements.append(query)
        return await raw_script(self, query, *args, **kwargs)

    saga = CheckoutSaga(sessions, shop.store, provider_for(shop.store, redis, settings))
    monkeypatch.setattr(asyncpg.Connection, "_execute", counted_execute)
    monkeypatch.setattr(asyncpg.Connection, "execute", counted_script)
    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        card = CardDetails("4242424242424242", 12, 2034, "123")
        outcome = await saga.complete(snapshot.id, uuid.uuid4().hex, PaymentInput(card=card), fingerprint="f")
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
        monkeypatch.undo()
    assert outcome.state == "completed" and outcome.order is not None
    assert len(statements) <= 3, "\n".join(statements)
    assert h.pickup_at_of(outcome.order.shipping) == chosen
