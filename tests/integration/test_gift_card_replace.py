"""Replacing a gift card whose code was lost (issue 15): a till sale's answer that never reached the tablet, or a
lost card. Managers get a new code carrying the old card's balance — one ledger transfer (adjust out, issue in),
audited, the old card disabled — on the card's staff page or through POST /api/v1/admin/gift-cards/{id}/replace.
Two at once move the balance once; a disabled (replaced), expired, empty or held card is refused with a clear
409 and nothing written; no reason is a 422; staff below manager cannot; the new code is stored nowhere."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.audit import AuditEntry
from app.core.encryption import install_keyring
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.stored_value import codes
from app.stored_value.ledger import Ledger
from app.stored_value.models import StoredValueAccount
from app.stored_value.services import GiftCardService
from app.stores.models import Store
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in
from tests.integration.http_server import serving

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
BASE = "/staff/gift-cards"
API = "/api/v1/admin/gift-cards"
CODE = re.compile(r'data-testid="replacement-code">([0-9A-Z-]{19})</code>')


async def _card(sessions: Sessions, store: Store, amount: int) -> tuple[uuid.UUID, str]:
    async with sessions() as session, session.begin():
        issued = await GiftCardService(session, store.id).issue(amount, "EUR", principal=None)
    return issued[0].account.id, issued[0].code


async def _ledger(sessions: Sessions, store: Store, account_id: uuid.UUID) -> dict[str, Any]:
    async with sessions() as session:
        bind_store(session, store.id)
        ledger = Ledger(session, store.id)
        account = await ledger.account(account_id)
        return {
            **await ledger.verify(account_id),
            "status": account.status,
            "entries": [(e.kind, e.delta_minor) for e in await ledger.entries(account_id)],
        }


async def test_a_manager_replaces_a_card_on_its_page_and_the_code_is_shown_once(
    client: Client, world: World, sessions: Sessions, settings: Settings
) -> None:
    install_keyring(settings)
    store = await world.store()
    old_id, old_code = await _card(sessions, store, 2500)
    async with sessions() as session, session.begin():  # part of it spent already; its code not yet revealed
        await Ledger(session, store.id).post(old_id, "adjust", -500, reason="spent", actor="test")
        bind_store(session, store.id)
        await session.execute(
            update(StoredValueAccount).where(StoredValueAccount.id == old_id).values(reveal_ciphertext="sealed")
        )
    await sign_in(client, (await world.staff(store, Role.MANAGER)).email)
    page = await client.get(f"{BASE}/{old_id}")
    assert 'data-testid="replace-form"' in page.text and "€20.00" in page.text
    csrf = csrf_from(page.text)
    no_reason = await client.post(f"{BASE}/{old_id}/replace", data={"replace_reason": " ", "_csrf_token": csrf})
    assert no_reason.status_code == 422 and "A reason is required." in no_reason.text
    assert (await _ledger(sessions, store, old_id))["status"] == "active"  # nothing written

    done = await client.post(
        f"{BASE}/{old_id}/replace", data={"replace_reason": "code never reached the tablet", "_csrf_token": csrf}
    )
    assert done.status_code == 200, done.text
    assert done.headers["cache-control"] == "no-store" and "shown this once" in done.text
    found = CODE.search(done.text)
    assert found is not None and codes.normalise(found.group(1)) and found.group(1) != old_code
    new_code = found.group(1)

    old = await _ledger(sessions, store, old_id)
    assert old["status"] == "disabled" and (old["balance_minor"], old["drift"]) == (0, 0)
    assert old["entries"][0] == ("adjust", -2000)
    async with sessions() as session:
        bind_store(session, store.id)
        new = await GiftCardService(session, store.id).lookup(new_code)
        assert new is not None and new.usable()
        entries = await Ledger(session, store.id).entries(new.id)
        audit = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "gift_card.replaced")))
        dump = " ".join((await session.execute(text("SELECT row_to_json(a)::text FROM stored_value_accounts a")))
                        .scalars())  # fmt: skip
        keys = " ".join((await session.execute(text("SELECT row_to_json(k)::text FROM idempotency_keys k"))).scalars())
    assert (new.balance_minor, new.code_last4, new.note) == (
        2000,
        new_code[-4:],
        f"Replaces gift card •••• {old_code[-4:]}",
    )
    assert [(e.kind, e.delta_minor) for e in entries] == [("issue", 2000)]
    assert (
        len(audit) == 1 and audit[0].details["amount_minor"] == 2000 and audit[0].details["new_last4"] == new_code[-4:]
    )
    assert new_code not in dump and codes.normalise(new_code) not in dump and new_code not in keys
    assert '"reveal_ciphertext":"sealed"' not in dump  # the replaced card's code is never revealed now

    again = await client.post(f"{BASE}/{old_id}/replace", data={"replace_reason": "again", "_csrf_token": csrf})
    assert again.status_code == 409 and "This gift card is disabled, so it cannot be replaced" in again.text
    assert new_code not in again.text
    page = await client.get(f"{BASE}/{old_id}")  # no form for a replaced card; its ledger names the new one
    assert 'data-testid="replace-form"' not in page.text and f"Replaced by gift card •••• {new_code[-4:]}" in page.text


async def test_empty_expired_and_held_cards_are_refused_and_staff_cannot_replace(
    client: Client, world: World, sessions: Sessions, settings: Settings
) -> None:
    install_keyring(settings)
    store = await world.store()
    auth = bearer(await issue_token(world, store, Role.MANAGER))
    empty_id, _ = await _card(sessions, store, 1000)
    expired_id, _ = await _card(sessions, store, 1000)
    held_id, _ = await _card(sessions, store, 1000)
    async with sessions() as session, session.begin():
        ledger = Ledger(session, store.id)
        await ledger.post(empty_id, "adjust", -1000, reason="spent", actor="test")
        await ledger.hold(held_id, 300, holder_id=uuid.uuid4(), holder_kind="checkout")
        bind_store(session, store.id)
        await session.execute(
            update(StoredValueAccount).where(StoredValueAccount.id == expired_id)
            .values(expires_at=datetime.now(UTC) - timedelta(days=1))
        )  # fmt: skip
    for card_id, words in ((empty_id, "This gift card is empty"), (expired_id, "This gift card has expired"),
                           (held_id, "A checkout is paying with this card right now")):  # fmt: skip
        refused = await client.post(f"{API}/{card_id}/replace", json={"reason": "lost"}, headers=auth)
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"].endswith("gift_card_not_replaceable") and words in refused.json()["detail"]
        assert (await _ledger(sessions, store, card_id))["status"] == "active"
    no_reason = await client.post(f"{API}/{held_id}/replace", json={"reason": ""}, headers=auth)
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["fields"]
    unknown = await client.post(f"{API}/{uuid.uuid4()}/replace", json={"reason": "lost"}, headers=auth)
    assert unknown.status_code == 404
    other_store = await world.store()
    theirs, _ = await _card(sessions, other_store, 1000)
    assert (await client.post(f"{API}/{theirs}/replace", json={"reason": "lost"}, headers=auth)).status_code == 404
    staff = bearer(await issue_token(world, store, Role.STAFF))
    fine_id, _ = await _card(sessions, store, 1000)
    forbidden = await client.post(f"{API}/{fine_id}/replace", json={"reason": "lost"}, headers=staff)
    assert forbidden.status_code == 403
    assert (await _ledger(sessions, store, fine_id))["status"] == "active"
    schema = (await client.get("/schema/openapi.json")).json()
    assert "post" in schema["paths"][f"{API}/{{account_id}}/replace"]


async def test_a_double_click_over_http_moves_the_balance_once(
    world: World, sessions: Sessions, settings: Settings
) -> None:
    install_keyring(settings)
    store = await world.store()
    old_id, _ = await _card(sessions, store, 4000)
    auth = bearer(await issue_token(world, store, Role.MANAGER))
    async with serving(settings) as base, httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as http:
        key = uuid.uuid4().hex  # the same click sent twice, Idempotency-Key and all
        answers = await asyncio.gather(
            *(http.post(f"{API}/{old_id}/replace", json={"reason": "lost"}, headers={"Idempotency-Key": key})
              for _ in range(2)),
            *(http.post(f"{API}/{old_id}/replace", json={"reason": "lost"}) for _ in range(3)),
        )  # fmt: skip
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {201: 1, 409: 4}, [(a.status_code, a.text) for a in answers]
    made = next(a.json() for a in answers if a.status_code == 201)
    assert (
        made["moved_minor"] == 4000
        and made["card"]["balance_minor"] == 4000
        and made["replaced"]["status"] == "disabled"
    )
    assert next(a for a in answers if a.status_code == 201).headers["cache-control"] == "no-store"
    old = await _ledger(sessions, store, old_id)
    assert (old["balance_minor"], old["drift"], old["entries"]) == (0, 0, [("adjust", -4000), ("issue", 4000)])
    async with sessions() as session:
        bind_store(session, store.id)
        cards = list(await session.scalars(select(StoredValueAccount).where(StoredValueAccount.kind == "gift_card")))
    assert len(cards) == 2 and sum(c.balance_minor for c in cards) == 4000  # one transfer: nothing made twice
