"""POS registers and shifts over the tablet's API: one open shift per register (also when two tablets open it at
once), the offline key (random, encrypted at rest, handed out only while open), cash in and out, the close with
counted cash (over/short) and the shift report whose totals are the sum of the shift's tenders; tenancy."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from dataclasses import replace

from sqlalchemy import func, select

from app.cli import rotate_keys
from app.config import Settings
from app.core.encryption import current_keyring, keyring_from_settings
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.pos.canonical import key_text
from app.pos.models import CashMovement, PosSale, PosTender, Shift
from app.pos.shifts import offline_key_context
from tests.integration.conftest import World
from tests.integration.pos import API, Client, Sessions, add_register, open_till, sale_body, signed_in


async def test_the_registers_list_shows_each_open_shift_without_its_key(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    other = await add_register(sessions, till.store, "Counter 2")
    listed = await client.get(f"{API}/registers", headers=till.headers)
    assert listed.status_code == 200, listed.text
    by_name = {r["name"]: r for r in listed.json()}
    assert set(by_name) == {"Counter 1", "Counter 2"}
    shift = by_name["Counter 1"]["open_shift"]
    assert shift["id"] == str(till.shift_id) and shift["offline_key"] is None
    assert (shift["register_name"], shift["opening_float_minor"], shift["closed_at"]) == ("Counter 1", 10_000, None)
    assert shift["opened_by"] == "Cashier Person"
    assert by_name["Counter 2"] == {"id": str(other), "name": "Counter 2", "open_shift": None, "reader": None}


async def test_the_offline_key_is_random_encrypted_at_rest_and_only_handed_out_while_open(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    assert len(till.key) == 32
    again = await client.get(f"{API}/shifts/{till.shift_id}", headers=till.headers)
    assert again.status_code == 200
    assert base64.urlsafe_b64decode(again.json()["offline_key"] + "=") == till.key
    async with sessions() as session:
        bind_store(session, till.store.id)
        shift = await session.get(Shift, till.shift_id)
        assert shift is not None
        assert base64.urlsafe_b64encode(till.key).decode().rstrip("=") not in shift.offline_key_ciphertext
        context = offline_key_context(till.store.id, till.shift_id)
        assert current_keyring().decrypt(shift.offline_key_ciphertext, context=context) == again.json()["offline_key"]
    second = await open_till(client, world, sessions, shop=till.shop, register="Counter 2")
    assert second.key != till.key

    closed = await client.post(
        f"{API}/shifts/{till.shift_id}/close", json={"counted_cash_minor": 10_000, "note": ""}, headers=second.headers
    )
    assert closed.status_code == 200, closed.text
    after = await client.get(f"{API}/shifts/{till.shift_id}", headers=second.headers)
    assert after.json()["offline_key"] is None and after.json()["closed_at"] is not None


async def test_one_open_shift_per_register_even_when_tablets_open_it_at_once(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    register_id = await add_register(sessions, till.store, "Counter 2")
    answers = await asyncio.gather(
        *(
            client.post(
                f"{API}/shifts",
                json={"register_id": str(register_id), "opening_float_minor": 5000 + i},
                headers=till.headers,
            )
            for i in range(12)
        )
    )
    assert sorted(a.status_code for a in answers) == [201] + [409] * 11, [a.text for a in answers]
    refused = next(a for a in answers if a.status_code == 409)
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "open shift" in refused.json()["detail"]
    async with sessions() as session:
        bind_store(session, till.store.id)
        open_shifts = await session.scalar(
            select(func.count()).where(Shift.register_id == register_id, Shift.closed_at.is_(None))
        )
    assert open_shifts == 1


async def test_opening_refuses_a_bad_float_a_deactivated_register_and_another_stores_register(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    fresh = await add_register(sessions, till.store, "Counter 2")
    for body, status, field in (
        ({"register_id": str(fresh), "opening_float_minor": -1}, 422, "opening_float_minor"),
        ({"register_id": str(fresh), "opening_float_minor": "10"}, 422, "opening_float_minor"),
        ({"register_id": str(fresh)}, 422, "opening_float_minor"),
        ({"register_id": "nope", "opening_float_minor": 0}, 422, "register_id"),
        ({"register_id": str(uuid.uuid4()), "opening_float_minor": 0}, 404, None),
    ):
        answer = await client.post(f"{API}/shifts", json=body, headers=till.headers)
        assert answer.status_code == status, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        if field:
            assert field in answer.json()["fields"], answer.json()
    other = await open_till(client, world, sessions)
    stranger = await client.post(
        f"{API}/shifts", json={"register_id": str(fresh), "opening_float_minor": 0}, headers=other.headers
    )
    assert stranger.status_code == 404
    async with sessions() as session:
        bind_store(session, till.store.id)
        assert await session.scalar(select(func.count()).where(Shift.register_id == fresh)) == 0


async def test_cash_in_and_out_need_a_kind_an_amount_and_a_reason_and_an_open_shift(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    url = f"{API}/shifts/{till.shift_id}/cash"
    for body, field in (
        ({"kind": "sideways", "amount_minor": 100, "reason": "x"}, "kind"),
        ({"kind": "in", "amount_minor": 0, "reason": "x"}, "amount_minor"),
        ({"kind": "in", "amount_minor": -5, "reason": "x"}, "amount_minor"),
        ({"kind": "out", "amount_minor": 100, "reason": "  "}, "reason"),
        ({"kind": "out", "amount_minor": 100}, "reason"),
    ):
        refused = await client.post(url, json=body, headers=till.headers)
        assert refused.status_code == 422, (body, refused.text)
        assert field in refused.json()["fields"]
    made = await client.post(url, json={"kind": "in", "amount_minor": 2000, "reason": "Change from the bank"},
                             headers=till.headers)  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["amount_minor"] == 2000
    key = {"idempotency-key": "cash-out-1"}
    first = await client.post(url, json={"kind": "out", "amount_minor": 500, "reason": "Milk"},
                              headers={**till.headers, **key})  # fmt: skip
    repeat = await client.post(url, json={"kind": "out", "amount_minor": 500, "reason": "Milk"},
                               headers={**till.headers, **key})  # fmt: skip
    assert (first.status_code, repeat.status_code, repeat.json()) == (201, 201, first.json())
    assert repeat.headers["idempotent-replayed"] == "true"
    reused = await client.post(url, json={"kind": "out", "amount_minor": 900, "reason": "Milk"},
                               headers={**till.headers, **key})  # fmt: skip
    assert reused.status_code == 422
    async with sessions() as session:
        bind_store(session, till.store.id)
        rows = (await session.execute(select(CashMovement.kind, CashMovement.amount_minor))).all()
    assert sorted(rows) == [("in", 2000), ("out", 500)]

    await client.post(f"{API}/shifts/{till.shift_id}/close", json={"counted_cash_minor": 0}, headers=till.headers)
    late = await client.post(url, json={"kind": "in", "amount_minor": 100, "reason": "x"}, headers=till.headers)
    assert late.status_code == 409


async def test_close_of_shift_totals_are_the_sum_of_its_tenders(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions, float_minor=15_000)
    sales = [
        sale_body(till, {"CRO-1": 2}),  # 480 exact cash
        sale_body(
            till, {"MUG-1": 1, "BEAN-1": 1}, tenders=[{"kind": "cash", "amount_minor": 2590, "tendered_minor": 3000}]
        ),
        sale_body(till, {"BEAN-1": 3}, discounts={"BEAN-1": 300}),  # 3270, a discount within the limit
        sale_body(till, {"CRO-1": 5}, ticket_discount=100),  # 1100
    ]
    for sale in sales:
        made = await client.post(f"{API}/sales", json=sale, headers=till.headers)
        assert made.status_code == 201, made.text
    assert [s["total_minor"] for s in sales] == [480, 2590, 3270, 1100]
    cash = f"{API}/shifts/{till.shift_id}/cash"
    await client.post(cash, json={"kind": "in", "amount_minor": 1000, "reason": "coins"}, headers=till.headers)
    await client.post(cash, json={"kind": "out", "amount_minor": 250, "reason": "milk"}, headers=till.headers)
    before = (await client.get(f"{API}/shifts/{till.shift_id}/report", headers=till.headers)).json()
    expected = 15_000 + 1000 - 250 + 480 + 2590 + 3270 + 1100
    assert before["expected_cash_minor"] == expected
    closed = await client.post(
        f"{API}/shifts/{till.shift_id}/close",
        json={"counted_cash_minor": expected - 120, "note": "a coin roll short"},
        headers={**till.headers, "idempotency-key": "close-1"},
    )
    assert closed.status_code == 200, closed.text
    report = closed.json()
    async with sessions() as session:
        bind_store(session, till.store.id)
        tenders = await session.scalar(
            select(func.sum(PosTender.amount_minor)).where(PosTender.shift_id == till.shift_id)
        )
        orders = await session.scalar(
            select(func.sum(Order.total_minor)).join(PosSale, PosSale.order_id == Order.id)
            .where(PosSale.shift_id == till.shift_id)
        )  # fmt: skip
        shift = await session.get(Shift, till.shift_id)
    assert report["sales_minor"] == sum(report["sales_by_tender"].values()) == tenders == orders == 7440
    assert report["sales_by_tender"] == {"cash": 7440}
    assert (report["sales_count"], report["refunds_count"], report["voids_count"]) == (4, 0, 0)
    assert report["gross_minor"] == 480 + 2590 + 3570 + 1200
    assert report["discounts_minor"] == 300 + 100
    assert report["tax_minor"] > 0
    assert (report["cash_in_minor"], report["cash_out_minor"]) == (1000, 250)
    assert (report["expected_cash_minor"], report["counted_cash_minor"], report["over_short_minor"]) == (
        expected,
        expected - 120,
        -120,
    )
    assert report["shift"]["closed_at"] is not None and report["shift"]["offline_key"] is None
    assert shift is not None and (shift.expected_cash_minor, shift.over_short_minor) == (expected, -120)
    assert shift.close_note == "a coin roll short"

    repeat = await client.post(
        f"{API}/shifts/{till.shift_id}/close",
        json={"counted_cash_minor": expected - 120, "note": "a coin roll short"},
        headers={**till.headers, "idempotency-key": "close-1"},
    )
    assert (repeat.status_code, repeat.json()) == (200, report)
    again = await client.post(
        f"{API}/shifts/{till.shift_id}/close", json={"counted_cash_minor": 1}, headers=till.headers
    )
    assert again.status_code == 409
    refused = await client.post(f"{API}/sales", json=sale_body(till), headers=till.headers)
    assert refused.status_code == 422 and "shift_id" in refused.json()["fields"]


async def test_closing_refuses_a_bad_count(client: Client, world: World, sessions: Sessions) -> None:
    till = await open_till(client, world, sessions)
    for body, field in (
        ({"counted_cash_minor": -1}, "counted_cash_minor"),
        ({"note": "x"}, "counted_cash_minor"),
        ({"counted_cash_minor": 10, "note": "x" * 501}, "note"),
    ):
        refused = await client.post(f"{API}/shifts/{till.shift_id}/close", json=body, headers=till.headers)
        assert refused.status_code == 422, refused.text
        assert field in refused.json()["fields"]
    shown = await client.get(f"{API}/shifts/{till.shift_id}", headers=till.headers)
    assert shown.json()["closed_at"] is None


async def test_another_stores_shift_is_not_found_anywhere(client: Client, world: World, sessions: Sessions) -> None:
    mine = await open_till(client, world, sessions)
    theirs = await open_till(client, world, sessions)  # now signed in as the other store's cashier
    for method, path, body in (
        ("GET", f"{API}/shifts/{mine.shift_id}", None),
        ("GET", f"{API}/shifts/{mine.shift_id}/report", None),
        ("POST", f"{API}/shifts/{mine.shift_id}/cash", {"kind": "in", "amount_minor": 5, "reason": "x"}),
        ("POST", f"{API}/shifts/{mine.shift_id}/close", {"counted_cash_minor": 0}),
        ("GET", f"/pos/shifts/{mine.shift_id}/report", None),
        ("GET", f"/pos/shifts/{mine.shift_id}/report.csv", None),
    ):
        answer = await client.request(method, path, json=body, headers=theirs.headers)
        assert answer.status_code == 404, (path, answer.text)
    listed = await client.get(f"{API}/registers", headers=theirs.headers)
    assert [r["id"] for r in listed.json()] == [str(theirs.register_id)]
    sale = await client.post(f"{API}/sales", json=sale_body(mine), headers=theirs.headers)
    assert sale.status_code == 404
    async with sessions() as session:
        bind_store(session, mine.store.id)
        assert await session.scalar(select(func.count()).select_from(CashMovement)) == 0
        shift = await session.get(Shift, mine.shift_id)
        assert shift is not None and shift.closed_at is None


async def test_the_api_needs_a_signed_in_member_and_the_csrf_header(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    no_csrf = await client.post(f"{API}/sales", json=sale_body(till))
    assert no_csrf.status_code == 403
    client.cookies.clear()
    signed_out = await client.get(f"{API}/registers")
    assert signed_out.status_code == 401
    assert signed_out.headers["content-type"].startswith("application/problem+json")
    staff = await world.staff(till.store, Role.STAFF)
    headers = await signed_in(client, staff)
    assert (await client.get(f"{API}/registers", headers=headers)).status_code == 200


async def test_keys_rotate_re_encrypts_the_shifts_offline_keys(
    client: Client, world: World, sessions: Sessions, settings: Settings
) -> None:
    till = await open_till(client, world, sessions)
    rotated = replace(settings, encryption_keys=((2, os.urandom(32)),))
    first = await rotate_keys(rotated)
    assert (first.newest_version, first.rotated, first.current) == (2, 1, 0)
    async with sessions() as session:
        bind_store(session, till.store.id)
        shift = await session.get(Shift, till.shift_id)
    assert shift is not None and shift.offline_key_ciphertext.startswith("v2.")
    context = offline_key_context(till.store.id, till.shift_id)
    assert keyring_from_settings(rotated).decrypt(shift.offline_key_ciphertext, context=context) == key_text(till.key)
    again = await rotate_keys(rotated)
    assert (again.rotated, again.current) == (0, 1)
