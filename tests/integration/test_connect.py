"""Connect for stores: onboarding through the sandbox, status, payouts, owner-only access, the platform fee."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import select

from app.cli import main as till
from app.config import Settings
from app.core.money import Money
from app.core.outbox import OutboxEvent
from app.core.rbac import Role
from app.core.tenancy import system_scope
from app.payments import connect
from app.payments.connect import account_from_event, apply_account_update
from app.payments.registry import provider_for
from app.payments.sandbox import SandboxProvider
from app.stores.models import Store
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in


async def settings_of(world: World, store: Store) -> dict[str, Any]:
    async with world.sessions() as session:
        found = await session.get(Store, store.id)
        assert found is not None
        return dict(found.settings)


async def set_settings(world: World, store: Store, **changes: Any) -> None:
    async with world.sessions() as session, session.begin():
        found = await session.get(Store, store.id)
        assert found is not None
        found.settings = {**found.settings, **changes}


async def sandbox_of(world: World, store: Store, redis: Redis, settings: Settings) -> SandboxProvider:
    async with world.sessions() as session:
        found = await session.get(Store, store.id)
    assert found is not None
    provider = provider_for(found, redis, settings)
    assert isinstance(provider, SandboxProvider)
    return provider


async def owner_signed_in(client: AsyncTestClient[Litestar], world: World, slug: str = "bakery") -> Store:
    store = await world.store(slug)
    owner = await world.staff(store, Role.OWNER)
    await sign_in(client, owner.email)
    return store


async def start_onboarding(client: AsyncTestClient[Litestar]) -> str:
    page = await client.get("/staff/payouts")
    started = await client.post("/staff/payouts/onboarding", data={"_csrf_token": csrf_from(page.text)})
    assert started.status_code == 303, started.text
    return started.headers["location"]


async def complete_in_sandbox(client: AsyncTestClient[Litestar], link: str, decision: str = "complete") -> str:
    page = await client.get(link)
    assert page.status_code == 200, page.text
    done = await client.post(urlsplit(link).path, data={"decision": decision, "_csrf_token": csrf_from(page.text)})
    assert done.status_code == 303, done.text
    return done.headers["location"]


async def test_owner_onboards_through_the_sandbox_and_comes_back_enabled(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await owner_signed_in(client, world)
    page = await client.get("/staff/payouts")
    assert page.status_code == 200
    assert 'data-testid="connect-status">Not started<' in page.text
    assert "Set up payouts" in page.text
    assert "set by the platform" in page.text
    assert 'href="/staff/payouts"' in page.text  # in the navigation

    link = await start_onboarding(client)
    url = urlsplit(link)
    assert url.path.startswith("/sandbox/connect/acct_")
    assert parse_qs(url.query)["return"] == ["http://testserver.local/staff/payouts/return"]
    stored = await settings_of(world, store)
    account_id = url.path.rsplit("/", 1)[1]
    assert stored["connect_account"] == account_id
    assert stored["connect_status"] == "pending"

    sandbox_page = await client.get(link)
    assert "Complete onboarding" in sandbox_page.text and store.name in sandbox_page.text
    pending = await client.get("/staff/payouts")
    assert 'data-testid="connect-status">Pending<' in pending.text
    assert "Continue onboarding" in pending.text
    assert "external_account" in pending.text  # requirements due

    back = await complete_in_sandbox(client, link)
    assert back == "http://testserver.local/staff/payouts/return"
    returned = await client.get("/staff/payouts/return")
    assert returned.status_code == 303 and returned.headers["location"] == "/staff/payouts"
    done = await client.get("/staff/payouts")
    assert 'data-testid="connect-status">Enabled<' in done.text
    assert "Payouts are set up: your account is enabled." in done.text
    assert "Set up payouts" not in done.text and "Continue onboarding" not in done.text
    assert (await settings_of(world, store))["connect_status"] == "enabled"

    again = await start_onboarding(client)  # the same account, never a second one
    assert urlsplit(again).path == url.path


async def test_leaving_onboarding_keeps_it_pending_and_a_restricted_account_lists_what_is_due(
    client: AsyncTestClient[Litestar], world: World, redis: Redis, settings: Settings
) -> None:
    store = await owner_signed_in(client, world)
    link = await start_onboarding(client)
    await complete_in_sandbox(client, link, decision="leave")
    await client.get("/staff/payouts/return")
    page = await client.get("/staff/payouts")
    assert "Onboarding is not finished yet." in page.text
    assert 'data-testid="connect-status">Pending<' in page.text

    sandbox = await sandbox_of(world, store, redis, settings)
    account_id = urlsplit(link).path.rsplit("/", 1)[1]
    await sandbox.complete_onboarding(account_id)
    await sandbox.require_more(account_id, ("individual.verification.document",))
    await client.get("/staff/payouts/return")
    restricted = await client.get("/staff/payouts")
    assert 'data-testid="connect-status">Restricted<' in restricted.text
    assert "individual.verification.document" in restricted.text
    assert "needs more information" in restricted.text
    assert "Your account is restricted: see what is still due below." in restricted.text

    refreshed = await client.get("/staff/payouts/refresh")  # an expired link's refresh URL: a new link
    assert refreshed.status_code == 303
    assert urlsplit(refreshed.headers["location"]).path == f"/sandbox/connect/{account_id}"


async def test_the_sandbox_page_redirects_only_to_the_stored_return_url(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    await owner_signed_in(client, world)
    link = await start_onboarding(client)
    forged = urlsplit(link).path + "?return=https%3A%2F%2Fevil.example%2F"
    back = await complete_in_sandbox(client, forged)
    assert back == "http://testserver.local/staff/payouts/return"
    assert (await client.get("/sandbox/connect/acct_nobody")).status_code == 404


async def test_payouts_upcoming_and_past_on_the_page_and_the_api(
    client: AsyncTestClient[Litestar], world: World, redis: Redis, settings: Settings
) -> None:
    store = await owner_signed_in(client, world)
    secret = await issue_token(world, store, Role.OWNER)
    empty = await client.get("/api/v1/admin/payouts", headers=bearer(secret))
    assert empty.status_code == 200 and empty.json() == {"upcoming": [], "past": []}

    link = await start_onboarding(client)
    await complete_in_sandbox(client, link)
    account_id = urlsplit(link).path.rsplit("/", 1)[1]
    sandbox = await sandbox_of(world, store, redis, settings)
    await sandbox.credit(account_id, Money(12_345, "EUR"), idempotency_key="capture-1")
    await sandbox.pay_out(account_id)
    await sandbox.create_transfer(
        amount=Money(2_000, "EUR"), destination=account_id, transfer_group="order-2", idempotency_key="tr-2"
    )

    body = (await client.get("/api/v1/admin/payouts", headers=bearer(secret))).json()
    [upcoming], [past] = body["upcoming"], body["past"]
    assert upcoming["amount_minor"] == 2_000 and upcoming["status"] == "in_transit"
    assert past["amount_minor"] == 12_345 and past["status"] == "paid"
    assert set(upcoming) == {
        "id",
        "amount_minor",
        "currency",
        "status",
        "arrival_date",
        "created_at",
        "failure_message",
    }
    assert upcoming["currency"] == "EUR" and len(upcoming["arrival_date"]) == 10

    page = await client.get("/staff/payouts")
    upcoming_html = page.text.split('data-testid="payouts-upcoming"')[1].split("</table>")[0]
    past_html = page.text.split('data-testid="payouts-past"')[1].split("</table>")[0]
    assert "€20.00" in upcoming_html and "in transit" in upcoming_html
    assert "€123.45" in past_html and "paid" in past_html


async def test_api_shapes_and_status_polling(
    client: AsyncTestClient[Litestar], world: World, redis: Redis, settings: Settings
) -> None:
    store = await world.store("deli")
    secret = await issue_token(world, store, Role.OWNER)
    before = await client.get("/api/v1/admin/connect/account", headers=bearer(secret))
    assert before.json() == {
        "account_id": None,
        "status": "not_started",
        "charges_enabled": False,
        "payouts_enabled": False,
        "requirements_due": [],
    }
    made = await client.post("/api/v1/admin/connect/onboarding-link", headers=bearer(secret))
    assert made.status_code == 201, made.text
    assert set(made.json()) == {"url", "expires_at"}
    assert made.json()["url"].startswith("http://testserver.local/sandbox/connect/acct_")
    account = (await client.get("/api/v1/admin/connect/account", headers=bearer(secret))).json()
    assert account["status"] == "pending" and account["account_id"].startswith("acct_")
    assert account["requirements_due"] == ["business_type", "external_account", "tos_acceptance.date"]

    sandbox = await sandbox_of(world, store, redis, settings)
    await sandbox.complete_onboarding(account["account_id"])
    polled = (await client.get("/api/v1/admin/connect/account", headers=bearer(secret))).json()
    assert polled == {
        "account_id": account["account_id"],
        "status": "enabled",
        "charges_enabled": True,
        "payouts_enabled": True,
        "requirements_due": [],
    }
    assert (await settings_of(world, store))["connect_status"] == "enabled"  # polling keeps it

    schema = (await client.get("/schema/openapi.json")).json()
    for path in ("/api/v1/admin/connect/onboarding-link", "/api/v1/admin/connect/account", "/api/v1/admin/payouts"):
        assert path in schema["paths"]
    for name in ("OnboardingLinkOut", "ConnectAccountOut", "PayoutsOut", "PayoutOut"):
        assert any(key.endswith(name) for key in schema["components"]["schemas"]), name


async def test_concurrent_onboarding_requests_make_one_account(
    client: AsyncTestClient[Litestar], world: World, redis: Redis
) -> None:
    store = await world.store("twice")
    secret = await issue_token(world, store, Role.OWNER)
    answers = await asyncio.gather(
        *(client.post("/api/v1/admin/connect/onboarding-link", headers=bearer(secret)) for _ in range(5))
    )
    assert all(a.status_code == 201 for a in answers), [a.text for a in answers]
    assert len({urlsplit(a.json()["url"]).path for a in answers}) == 1
    assert len([k async for k in redis.scan_iter("till:sandbox:acct:*")]) == 1


async def test_payouts_are_for_the_owner_only(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store("bistro")
    manager = await world.staff(store, Role.MANAGER)
    await sign_in(client, manager.email)
    assert (await client.get("/staff/payouts")).status_code == 403
    assert (await client.get("/staff/payouts/return")).status_code == 403
    home = await client.get("/staff/orders")
    assert 'href="/staff/payouts"' not in home.text
    token = csrf_from(home.text)
    assert (await client.post("/staff/payouts/onboarding", data={"_csrf_token": token})).status_code == 403
    manager_token = await issue_token(world, store, Role.MANAGER)
    for method, path in (
        ("POST", "/api/v1/admin/connect/onboarding-link"),
        ("GET", "/api/v1/admin/connect/account"),
        ("GET", "/api/v1/admin/payouts"),
    ):
        refused = await client.request(method, path, headers=bearer(manager_token))
        assert refused.status_code == 403, path
    assert "connect_account" not in await settings_of(world, store)


async def test_a_provider_without_connect_is_a_clear_409(
    client: AsyncTestClient[Litestar], world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await owner_signed_in(client, world)
    secret = await issue_token(world, store, Role.OWNER)
    await set_settings(world, store, payment_provider="cash")
    refused = await client.post("/api/v1/admin/connect/onboarding-link", headers=bearer(secret))
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("/connect_unavailable")
    assert "'cash' is not available" in refused.json()["detail"]
    page = await client.get("/staff/payouts")
    assert page.status_code == 200  # the page says so instead of failing
    started = await client.post("/staff/payouts/onboarding", data={"_csrf_token": csrf_from(page.text)})
    assert started.status_code == 303 and started.headers["location"] == "/staff/payouts"
    assert "is not available" in (await client.get("/staff/payouts")).text

    class PaymentsOnly:  # a provider with the payment lifecycle and nothing else
        name = "paymentsonly"

    await set_settings(world, store, payment_provider="sandbox", connect_account="acct_x", connect_status="pending")
    monkeypatch.setattr(connect, "provider_for", lambda *args, **kwargs: PaymentsOnly())
    for method, path in (
        ("POST", "/api/v1/admin/connect/onboarding-link"),
        ("GET", "/api/v1/admin/connect/account"),
        ("GET", "/api/v1/admin/payouts"),
    ):
        answer = await client.request(method, path, headers=bearer(secret))
        assert answer.status_code == 409, (path, answer.text)
        assert "does not support payouts to stores" in answer.json()["detail"]
    page = await client.get("/staff/payouts")
    assert 'data-testid="payouts-problem"' in page.text and "does not support payouts" in page.text


async def test_account_updated_events_apply_to_the_store_that_owns_the_account(
    client: AsyncTestClient[Litestar], world: World, redis: Redis, settings: Settings
) -> None:
    store = await owner_signed_in(client, world)
    link = await start_onboarding(client)
    account_id = urlsplit(link).path.rsplit("/", 1)[1]
    sandbox = await sandbox_of(world, store, redis, settings)
    await sandbox.complete_onboarding(account_id)
    payload, header = await sandbox.account_event(account_id)
    event = sandbox.verify_webhook(payload, header)
    async with world.sessions() as session, session.begin():
        updated = await apply_account_update(session, account_from_event(event.data["object"]))
        assert updated is not None and updated.id == store.id
        stranger = account_from_event({"id": "acct_unknown", "charges_enabled": True})
        assert await apply_account_update(session, stranger) is None
    assert (await settings_of(world, store))["connect_status"] == "enabled"
    async with world.sessions() as session:
        system_scope(session)
        events = (await session.scalars(select(OutboxEvent).where(OutboxEvent.type == "store.updated"))).all()
    assert [e.payload.get("connect_status") for e in events] == ["pending", "enabled"]
    with pytest.raises(ValueError):
        account_from_event({"object": "account"})


def _till(settings: Settings, *args: str) -> Any:
    env = {"DATABASE_URL": settings.database_url or "", "REDIS_URL": settings.redis_url or ""}
    return CliRunner().invoke(till, list(args), env=env)


async def test_platform_fee_is_set_by_the_cli_and_shown_read_only(
    client: AsyncTestClient[Litestar], world: World, settings: Settings
) -> None:
    store = await owner_signed_in(client, world, "fees")
    ok = await asyncio.to_thread(_till, settings, "platform", "fee", "--store", "fees", "--bps", "150", "--fixed", "25")
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.strip() == "platform fee for fees: 1.50 % + €0.25 per payment (150 bps + 25)"
    stored = await settings_of(world, store)
    assert (stored["platform_fee_bps"], stored["platform_fee_fixed_minor"]) == (150, 25)
    page = await client.get("/staff/payouts")
    assert "1.50 % + €0.25 per payment" in page.text

    for args, message in (
        (["--store", "fees", "--bps", "10001", "--fixed", "0"], "--bps: Use basis points from 0 to 10000"),
        (["--store", "fees", "--bps", "-1", "--fixed", "0"], "--bps: Use basis points from 0 to 10000"),
        (["--store", "fees", "--bps", "0", "--fixed", "-5"], "--fixed: Use a fixed fee of 0 or more"),
        (["--store", "nowhere", "--bps", "100", "--fixed", "0"], "No store with slug 'nowhere'."),
    ):
        refused = await asyncio.to_thread(_till, settings, "platform", "fee", *args)
        assert refused.exit_code == 2, refused.output
        assert message in refused.stderr, refused.stderr
    stored = await settings_of(world, store)
    assert (stored["platform_fee_bps"], stored["platform_fee_fixed_minor"]) == (150, 25)
    limits = await asyncio.to_thread(
        _till, settings, "platform", "fee", "--store", "fees", "--bps", "10000", "--fixed", "0"
    )
    assert limits.exit_code == 0 and "100.00 %" in limits.stdout


async def test_a_store_cannot_set_its_own_platform_fee(client: AsyncTestClient[Litestar], world: World) -> None:
    store = await world.store("sneaky")
    await set_settings(world, store, platform_fee_bps=200, platform_fee_fixed_minor=30)
    owner = await world.staff(store, Role.OWNER)
    secret = await issue_token(world, store, Role.OWNER)
    for body in ({"platform_fee_bps": 0}, {"platform_fee_fixed_minor": 0}, {"name": "Sneaky", "platform_fee_bps": 0}):
        refused = await client.patch(
            "/api/v1/store", content=json.dumps(body), headers={**bearer(secret), "content-type": "application/json"}
        )
        assert refused.status_code == 400, refused.text
    await sign_in(client, owner.email)
    page = await client.get("/staff/settings")
    saved = await client.post(
        "/staff/settings",
        data={
            "name": "Sneaky",
            "timezone": "Europe/Berlin",
            "board_delay_minutes": "10",
            "platform_fee_bps": "0",
            "platform_fee_fixed_minor": "0",
            "_csrf_token": csrf_from(page.text),
        },
    )
    assert saved.status_code == 303
    stored = await settings_of(world, store)
    assert (stored["platform_fee_bps"], stored["platform_fee_fixed_minor"]) == (200, 30)
    payouts = await client.get("/staff/payouts")
    assert "<input" not in payouts.text.split("Platform fee")[1].split("</dl>")[0]  # shown, never a field
    assert uuid.UUID(str(store.id))
