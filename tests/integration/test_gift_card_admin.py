"""Gift cards and store credit for managers (issue 15): the pages (issue one or in bulk with the codes shown once
and a CSV of them, search, a card's ledger, adjust with a reason, disable) and /api/v1/admin/gift-cards and
/store-credit (issue, list, detail, adjust, status; problem+json for bad input); codes are never stored."""

from __future__ import annotations

import re
import uuid
from urllib.parse import unquote

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.audit import AuditEntry
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.customers.models import Customer
from app.stored_value import codes
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in

Sessions = async_sessionmaker[AsyncSession]
BASE = "/staff/gift-cards"
API = "/api/v1/admin/gift-cards"
CODE = re.compile(r'<code class="gift-code">([0-9A-Z-]{19})</code>')


async def _manager(client: AsyncTestClient[Litestar], world: World) -> tuple[str, uuid.UUID]:
    store = await world.store()
    await sign_in(client, (await world.staff(store, Role.MANAGER)).email)
    return csrf_from((await client.get(BASE)).text), store.id


async def test_a_manager_issues_cards_whose_codes_are_shown_once_and_never_stored(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    csrf, store_id = await _manager(client, world)
    issued = await client.post(
        f"{BASE}/issue", data={"amount": "25", "count": "3", "note": "raffle", "_csrf_token": csrf}
    )
    assert issued.status_code == 200, issued.text
    found = CODE.findall(issued.text)
    assert len(found) == 3 and len(set(found)) == 3
    assert all(codes.normalise(c) for c in found)
    assert "shown this once" in issued.text and issued.headers["cache-control"] == "no-store"
    csv_href = re.search(r'href="data:text/csv;charset=utf-8,([^"]+)"', issued.text)
    assert csv_href is not None
    csv_text = unquote(csv_href.group(1).replace("&amp;", "&"))
    assert all(c in csv_text for c in found) and csv_text.startswith("code,last4,amount,currency,expires_at")

    listed = await client.get(BASE, params={"q": found[0][-4:]})
    assert f"•••• {found[0][-4:]}" in listed.text and "25.00" in listed.text
    async with sessions() as session:  # no column anywhere holds a code
        dump = (await session.execute(text("SELECT row_to_json(a)::text FROM stored_value_accounts a"))).scalars()
        rows = " ".join(dump)
        assert all(codes.normalise(c) not in rows and c not in rows for c in found)
        bind_store(session, store_id)
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert "gift_card.issued" in actions


async def test_bad_issue_input_is_answered_in_place_and_writes_nothing(
    client: AsyncTestClient[Litestar], world: World, sessions: Sessions
) -> None:
    csrf, _ = await _manager(client, world)
    for form, field, words in (
        ({"amount": "abc", "count": "1"}, "amount", "Enter an amount"),
        ({"amount": "-5", "count": "1"}, "amount", "Enter an amount"),
        ({"amount": "10", "count": "0"}, "count", "1 to 1000"),
        ({"amount": "10", "count": "x"}, "count", "whole number"),
        ({"amount": "10", "count": "1", "expires_on": "2001-01-01"}, "expires_on", "after today"),
    ):
        answer = await client.post(f"{BASE}/issue", data={**form, "_csrf_token": csrf})
        assert answer.status_code == 422, form
        assert f'id="e-{field}"' in answer.text and words in answer.text, (form, answer.text[-2000:])
    async with sessions() as session:
        assert (await session.execute(text("SELECT count(*) FROM stored_value_accounts"))).scalar() == 0


async def test_a_card_detail_adjust_and_disable(client: AsyncTestClient[Litestar], world: World) -> None:
    csrf, _ = await _manager(client, world)
    issued = await client.post(f"{BASE}/issue", data={"amount": "10", "count": "1", "_csrf_token": csrf})
    code = CODE.findall(issued.text)[0]
    listed = await client.get(BASE)
    card_path = re.search(r'href="(/staff/gift-cards/[0-9a-f-]{36})"', listed.text).group(1)  # type: ignore[union-attr]
    no_reason = await client.post(f"{card_path}/adjust", data={"amount": "5", "reason": "", "_csrf_token": csrf})
    assert no_reason.status_code == 422 and 'id="e-reason"' in no_reason.text
    too_much = await client.post(f"{card_path}/adjust", data={"amount": "-11", "reason": "x", "_csrf_token": csrf})
    assert too_much.status_code == 422 and "below" in too_much.text
    added = await client.post(f"{card_path}/adjust", data={"amount": "2.50", "reason": "sorry", "_csrf_token": csrf})
    assert added.status_code == 303
    detail = await client.get(card_path)
    assert 'data-testid="card-balance">€12.50' in detail.text and "sorry" in detail.text
    assert code not in detail.text  # the code is never shown again
    off = await client.post(f"{card_path}/status", data={"status": "disabled", "_csrf_token": csrf})
    assert off.status_code == 303
    assert ">disabled<" in (await client.get(card_path)).text


async def test_store_credit_page(client: AsyncTestClient[Litestar], world: World, sessions: Sessions) -> None:
    csrf, store_id = await _manager(client, world)
    async with sessions() as session, session.begin():
        session.add(Customer(store_id=store_id, email="ann@example.com", name="Ann"))
    unknown = await client.post(
        "/staff/store-credit", data={"email": "bob@example.com", "amount": "5", "reason": "x", "_csrf_token": csrf}
    )
    assert unknown.status_code == 422 and 'id="e-email"' in unknown.text
    no_reason = await client.post(
        "/staff/store-credit", data={"email": "ann@example.com", "amount": "5", "reason": " ", "_csrf_token": csrf}
    )
    assert no_reason.status_code == 422 and 'id="e-reason"' in no_reason.text
    given = await client.post(
        "/staff/store-credit",
        data={"email": "Ann@example.com", "amount": "7.50", "reason": "late delivery", "_csrf_token": csrf},
    )
    assert given.status_code == 303
    page = await client.get("/staff/store-credit")
    assert "ann@example.com" in page.text and "€7.50" in page.text


async def test_the_admin_api(client: AsyncTestClient[Litestar], world: World, sessions: Sessions) -> None:
    store = await world.store()
    auth = bearer(await issue_token(world, store, Role.MANAGER))
    bad = await client.post(API, json={"amount_minor": 0}, headers=auth)
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert "amount" in bad.json()["fields"]
    too_many = await client.post(API, json={"amount_minor": 100, "count": 5000}, headers=auth)
    assert too_many.status_code == 422 and "count" in too_many.json()["fields"]
    unknown_field = await client.post(API, json={"amount_minor": 100, "colour": "red"}, headers=auth)
    assert unknown_field.status_code == 400
    issued = await client.post(API, json={"amount_minor": 2000, "count": 2, "note": "api"}, headers=auth)
    assert issued.status_code == 201, issued.text
    cards = issued.json()
    assert len(cards) == 2 and all(codes.normalise(c["code"]) for c in cards)
    card_id = cards[0]["card"]["id"]
    assert cards[0]["card"]["balance_minor"] == 2000 and cards[0]["card"]["last4"] == cards[0]["code"][-4:]
    listed = await client.get(API, headers=auth)
    assert {c["id"] for c in listed.json()} == {c["card"]["id"] for c in cards}
    adjusted = await client.post(
        f"{API}/{card_id}/adjustments", json={"amount_minor": -500, "reason": "x"}, headers=auth
    )
    assert adjusted.status_code == 201 and adjusted.json()["delta_minor"] == -500
    overdrawn = await client.post(
        f"{API}/{card_id}/adjustments", json={"amount_minor": -5000, "reason": "x"}, headers=auth
    )
    assert overdrawn.status_code == 409 and overdrawn.json()["type"].endswith("insufficient_balance")
    status = await client.post(f"{API}/{card_id}/status", json={"status": "lost"}, headers=auth)
    assert status.status_code == 422 and "status" in status.json()["fields"]
    disabled = await client.post(f"{API}/{card_id}/status", json={"status": "disabled"}, headers=auth)
    assert disabled.status_code == 201 and disabled.json()["usable"] is False
    detail = (await client.get(f"{API}/{card_id}", headers=auth)).json()
    assert detail["card"]["balance_minor"] == 1500 and [e["kind"] for e in detail["entries"]] == ["adjust", "issue"]
    missing = await client.get(f"{API}/{uuid.uuid4()}", headers=auth)
    assert missing.status_code == 404

    async with sessions() as session, session.begin():
        session.add(Customer(store_id=store.id, email="ann@example.com", name="Ann"))
    credit = "/api/v1/admin/store-credit"
    nobody = await client.post(credit, json={"amount_minor": 100, "reason": "x", "email": "no@x.y"}, headers=auth)
    assert nobody.status_code == 422 and "email" in nobody.json()["fields"]
    given = await client.post(
        credit, json={"amount_minor": 300, "reason": "goodwill", "email": "ann@example.com"}, headers=auth
    )
    assert given.status_code == 201 and given.json()["balance_minor"] == 300
    assert [a["balance_minor"] for a in (await client.get(credit, headers=auth)).json()] == [300]
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/api/v1/admin/gift-cards" in schema["paths"] and "/api/v1/admin/store-credit" in schema["paths"]
