"""The loyalty program's settings page (/staff/loyalty) and API (/api/v1/admin/loyalty/program): bad input is
refused field by field (inline errors, problem+json) with nothing written; a good one is saved and audited."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.audit import AuditEntry
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.customers.models import Customer
from app.stored_value.loyalty.models import LoyaltyIntegrityRun, LoyaltyProgram
from app.stored_value.loyalty.program import Program, Tier
from app.stored_value.loyalty.services import LoyaltyProgramService
from app.stores.models import Store
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
PAGE = "/staff/loyalty"
API = "/api/v1/admin/loyalty/program"


async def _saved(sessions: Sessions, store: Store) -> Program:
    async with sessions() as session:
        return await LoyaltyProgramService(session, store.id).get()


async def _rows(sessions: Sessions, store: Store) -> int:
    async with sessions() as session:
        bind_store(session, store.id)
        return len(list(await session.scalars(select(LoyaltyProgram))))


def _form(csrf: str, **changes: str) -> dict[str, str]:
    form = {
        "_csrf_token": csrf,
        "enabled": "on",
        "points_per_unit": "2",
        "expiry_days": "",
        "redeem_points": "100",
        "redeem_value": "1.00",
        "min_redeem_points": "200",
        "tier-0-name": "Member",
        "tier-0-threshold": "0",
        "tier-0-multiplier": "1",
        "tier-1-name": "Gold",
        "tier-1-threshold": "1000",
        "tier-1-multiplier": "1.5",
        "tier-2-name": "",
        "tier-2-threshold": "",
        "tier-2-multiplier": "",
    }
    return {**form, **changes}


async def test_the_settings_page_saves_a_program_and_refuses_bad_input_inline(
    client: Client, world: World, sessions: Sessions
) -> None:
    store = await world.store()
    manager = await world.staff(store, Role.MANAGER)
    await sign_in(client, manager.email)
    page = await client.get(PAGE)
    assert page.status_code == 200
    assert "Loyalty program" in page.text and 'name="tier-0-name" value="Member"' in page.text
    csrf = csrf_from(page.text)

    bad = await client.post(
        PAGE,
        data=_form(
            csrf, points_per_unit="two", redeem_value="0", **{"tier-1-threshold": "0", "tier-0-multiplier": "x"}
        ),
    )
    assert bad.status_code == 422
    assert 'id="e-points_per_unit">A whole number.' in bad.text
    assert 'id="e-redeem_value">An amount in EUR above 0' in bad.text
    assert 'id="e-tier-1-threshold">More than the tier above (0).' in bad.text
    assert 'id="e-tier-0-multiplier">A multiplier such as 1 or 1.5.' in bad.text
    assert 'value="two"' in bad.text  # what was typed stays
    assert await _rows(sessions, store) == 0  # nothing written

    saved = await client.post(PAGE, data=_form(csrf))
    assert saved.status_code == 303 and saved.headers["location"] == PAGE
    assert await _saved(sessions, store) == Program(
        enabled=True,
        points_per_unit=2,
        tiers=(Tier("Member", 0, 10_000), Tier("Gold", 1_000, 15_000)),
        expiry_days=None,
        redeem_points=100,
        redeem_value_minor=100,
        min_redeem_points=200,
    )
    again = await client.get(PAGE)
    assert "Loyalty program saved." in again.text and 'name="tier-1-multiplier" value="1.50"' in again.text
    async with sessions() as session:
        bind_store(session, store.id)
        entries = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "loyalty.program")))
    assert len(entries) == 1 and entries[0].details["points_per_unit"] == 2


async def test_cashiers_do_not_reach_the_loyalty_settings(client: Client, world: World) -> None:
    store = await world.store()
    cashier = await world.staff(store, Role.CASHIER)
    await sign_in(client, cashier.email)
    assert (await client.get(PAGE)).status_code == 403


async def test_the_api_reads_and_replaces_the_program_with_problem_json_for_bad_input(
    client: Client, world: World, sessions: Sessions
) -> None:
    store = await world.store()
    auth = bearer(await issue_token(world, store, Role.MANAGER))
    default = await client.get(API, headers=auth)
    assert default.status_code == 200
    assert default.json()["enabled"] is False and default.json()["currency"] == "EUR"

    body = Program(enabled=True, tiers=(Tier("Member", 0), Tier("VIP", 500, 20_000))).as_dict()
    bad = await client.put(
        API,
        json={**body, "points_per_unit": -1, "tiers": [{"name": "", "threshold": 5}], "extra": 1},
        headers=auth,
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["fields"] == {
        "points_per_unit": "From 1 to 1000.",
        "tiers.0.name": "A name of 1 to 40 characters.",
        "tiers.0.threshold": "The first tier starts at 0 points.",
        "extra": "Not a field of the loyalty program.",
    }
    not_json = await client.put(API, content=b"[1, 2]", headers={**auth, "content-type": "application/json"})
    assert not_json.status_code in (400, 422)
    assert not_json.headers["content-type"].startswith("application/problem+json")
    assert await _rows(sessions, store) == 0

    put = await client.put(API, json=body, headers={**auth, "idempotency-key": str(uuid.uuid4())})
    assert put.status_code == 200, put.text
    assert put.json()["tiers"][1] == {"name": "VIP", "threshold": 500, "multiplier_bps": 20_000}
    assert (await client.get(API, headers=auth)).json() == put.json()

    cashier = bearer(await issue_token(world, store, Role.CASHIER))
    assert (await client.put(API, json=body, headers=cashier)).status_code == 403


async def test_a_member_reads_zero_points_before_any_order_and_another_stores_customer_is_404(
    client: Client, world: World, sessions: Sessions
) -> None:
    store, other = await world.store(), await world.store()
    auth = bearer(await issue_token(world, store, Role.MANAGER))
    ids = {}
    for shop in (store, other):
        async with sessions() as session, session.begin():
            bind_store(session, shop.id)
            customer = Customer(email="ann@example.com")
            session.add(customer)
            await session.flush()
            ids[shop.id] = customer.id
    assert (await client.get(f"/api/v1/admin/loyalty/members/{ids[other.id]}", headers=auth)).status_code == 404
    member = await client.get(f"/api/v1/admin/loyalty/members/{ids[store.id]}", headers=auth)
    assert member.status_code == 200
    assert member.json()["balance_points"] == 0 and member.json()["tier"] == "Member"


async def test_a_manager_finds_a_member_adjusts_their_points_with_a_reason_and_bad_input_is_inline(
    client: Client, world: World, sessions: Sessions
) -> None:
    store = await world.store()
    async with sessions() as session, session.begin():
        await LoyaltyProgramService(session, store.id).save(Program(enabled=True).as_dict(), actor=None)
        bind_store(session, store.id)
        customer = Customer(email="ann@example.com", name="Ann")
        session.add(customer)
        await session.flush()
        customer_id = customer.id
    manager = await world.staff(store, Role.MANAGER)
    await sign_in(client, manager.email)
    found = await client.get(PAGE, params={"q": "ANN@"})
    assert f'href="/staff/loyalty/members/{customer_id}">ann@example.com' in found.text
    assert "No customer's e-mail starts with" in (await client.get(PAGE, params={"q": "zed"})).text
    assert "Not run yet" in found.text
    detail = await client.get(f"{PAGE}/members/{customer_id}")
    assert detail.status_code == 200 and 'data-testid="member-balance">0<' in detail.text
    csrf = csrf_from(detail.text)
    url = f"{PAGE}/members/{customer_id}/adjust"

    bad = await client.post(url, data={"_csrf_token": csrf, "points": "lots", "reason": ""})
    assert bad.status_code == 422
    assert 'id="e-points">A whole number of points' in bad.text and 'id="e-reason">Say why' in bad.text
    too_much = await client.post(url, data={"_csrf_token": csrf, "points": "-5", "reason": "oops"})
    assert too_much.status_code == 422 and 'id="e-points">At most 0 can be taken.' in too_much.text

    added = await client.post(url, data={"_csrf_token": csrf, "points": "250", "reason": "Birthday"})
    assert added.status_code == 303
    page = await client.get(f"{PAGE}/members/{customer_id}")
    assert "+250 points recorded." in page.text and 'data-testid="member-balance">250<' in page.text
    assert "loyalty: adjusted by staff: Birthday" in page.text
    async with sessions() as session:
        bind_store(session, store.id)
        entries = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "loyalty.adjust")))
    assert [(e.details["points"], e.details["reason"]) for e in entries] == [(250, "Birthday")]
    other = await world.store()
    async with sessions() as session, session.begin():
        bind_store(session, other.id)
        stranger = Customer(email="ann@example.com")
        session.add(stranger)
        await session.flush()
    assert (await client.get(f"{PAGE}/members/{stranger.id}")).status_code == 404
    refused = await client.post(
        f"{PAGE}/members/{stranger.id}/adjust", data={"_csrf_token": csrf, "points": "5", "reason": "x"}
    )
    assert refused.status_code == 404


async def test_metrics_show_each_stores_last_integrity_run(client: Client, world: World, sessions: Sessions) -> None:
    """The worker runs the check; the app's /metrics reads the last recorded run of each store."""
    store = await world.store()
    async with sessions() as session, session.begin():
        bind_store(session, store.id)
        for points, at in ((0, datetime(2026, 12, 1, tzinfo=UTC)), (7, datetime(2026, 12, 2, tzinfo=UTC))):
            session.add(
                LoyaltyIntegrityRun(
                    accounts_checked=3, orders_checked=5, drifted_accounts=1 if points else 0,
                    drift_points=points, details=[], checked_at=at,
                )
            )  # fmt: skip
    scraped = (await client.get("/metrics")).text
    assert f'till_loyalty_drift_points{{store="{store.id}"}} 7.0' in scraped
    assert f'till_loyalty_drifted_accounts{{store="{store.id}"}} 1.0' in scraped
