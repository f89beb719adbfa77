"""The tablet's gift card lookup on the hot path (issue 15): it answers as the page stack did — the card for a
signed-in cashier, 401 without a staff session (none, signed out, a deactivated member, a changed password), 422
for a malformed code, 404 for no card, 429 with Retry-After once the limiter closes — and nothing is cached; each
lookup is counted in the request metrics (/metrics) without a statement more."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.core.encryption import install_keyring
from app.core.tenancy import system_scope
from app.stored_value.services import GiftCardService
from app.stores.models import Membership, User
from tests.integration.conftest import World
from tests.integration.pos import API, Client, Sessions, open_till, signed_in
from tests.integration.statements import counted

URL = f"{API}/gift-cards/lookup"


@pytest.fixture(autouse=True)
def keyring(settings: Settings) -> None:
    install_keyring(settings)


async def test_the_lookup_answers_signed_in_staff_only_and_the_limiter_closes_it(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    async with sessions() as session, session.begin():
        issued = await GiftCardService(session, till.shop.store.id).issue(2500, "EUR", principal=None)
    code = issued[0].code
    found = await client.get(URL, params={"code": code.lower()}, headers=till.headers)
    assert found.status_code == 200, found.text
    assert found.json() == {"last4": code[-4:], "status": "active", "usable": True, "currency": "EUR",
                            "balance_minor": 2500, "spendable_minor": 2500, "expires_at": None}  # fmt: skip
    assert found.headers["cache-control"] == "no-store" and "set-cookie" not in found.headers
    cookies = dict(client.cookies)
    client.cookies.clear()
    anonymous = await client.get(URL, params={"code": code})
    assert anonymous.status_code == 401 and anonymous.headers["content-type"].startswith("application/problem+json")
    client.cookies.update({"till_session": "not-a-session"})
    assert (await client.get(URL, params={"code": code})).status_code == 401
    client.cookies.clear()
    client.cookies.update(cookies)
    assert (await client.get(URL, params={"code": code})).status_code == 200
    async with sessions() as session, session.begin():  # the cashier's membership ends: at once
        system_scope(session)
        await session.execute(
            update(Membership).where(Membership.user_id == till.cashier.user.id)
            .values(deactivated_at=datetime.now(UTC))
        )  # fmt: skip
    assert (await client.get(URL, params={"code": code})).status_code == 401
    manager = await signed_in(client, till.manager)
    assert (await client.get(URL, params={"code": code}, headers=manager)).status_code == 200
    async with sessions() as session, session.begin():  # a new password ends the sessions opened before it
        system_scope(session)
        await session.execute(update(User).where(User.id == till.manager.user.id).values(password_hash="changed"))
    assert (await client.get(URL, params={"code": code}, headers=manager)).status_code == 401


async def test_malformed_unknown_and_too_many_codes(client: Client, world: World, sessions: Sessions) -> None:
    till = await open_till(client, world, sessions)
    bad = await client.get(URL, params={"code": "nope"}, headers=till.headers)
    assert bad.status_code == 422 and bad.json()["fields"] == {"code": "16 letters and digits."}
    statuses = [
        (await client.get(URL, params={"code": f"AAAA-BBBB-CCCC-{i:04d}"}, headers=till.headers)).status_code
        for i in range(12)
    ]
    assert statuses[:10] == [404] * 10 and statuses[10:] == [429, 429], statuses
    limited = await client.get(URL, params={"code": "AAAA-BBBB-CCCC-0000"}, headers=till.headers)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert "Too many gift card codes were tried" in limited.json()["detail"]


def _requests(metrics: str, status: int) -> float:
    """till_requests_total of the lookup route with ``status`` in a /metrics scrape (0 when not there yet)."""
    for line in metrics.splitlines():
        if (
            line.startswith("till_requests_total{")
            and 'path="/pos/api/gift-cards/lookup"' in line
            and f'status_code="{status}"' in line
            and 'method="GET"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_lookups_are_counted_in_the_request_metrics_without_another_statement(
    client: Client, world: World, sessions: Sessions, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    till = await open_till(client, world, sessions)
    async with sessions() as session, session.begin():
        issued = await GiftCardService(session, till.shop.store.id).issue(2500, "EUR", principal=None)
    code = issued[0].code
    before = (await client.get("/metrics")).text
    with counted(engine, monkeypatch) as statements:
        found = await client.get(URL, params={"code": code}, headers=till.headers)
    assert found.status_code == 200, found.text
    assert len(statements) == 2, statements  # the caller's membership, the card: the metrics add none
    missing = await client.get(URL, params={"code": "AAAA-BBBB-CCCC-DDDD"}, headers=till.headers)
    assert missing.status_code == 404
    after = (await client.get("/metrics")).text
    assert _requests(after, 200) == _requests(before, 200) + 1
    assert _requests(after, 404) == _requests(before, 404) + 1
    assert 'till_request_duration_seconds_count{app_name="till",method="GET",path="/pos/api/gift-cards/lookup"' in after
    webhooks = [line for line in after.splitlines() if 'path="/webhooks/' in line]
    assert webhooks == []  # the provider webhooks stay out of the request metrics
