"""Voided tickets and lines reach the server once (by the tablet's name for them) and show in the shift report
beside the sales; a bad void is refused with the field that is wrong and writes nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from app.core.tenancy import bind_store
from app.pos.models import PosVoid
from tests.integration.conftest import World
from tests.integration.pos import API, Client, Sessions, Till, add_register, open_till


def void_body(till: Till, kind: str = "ticket", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_void_id": str(uuid.uuid4()),
        "register_id": str(till.register_id),
        "shift_id": str(till.shift_id),
        "kind": kind,
        "reason": "Customer changed their mind",
        "voided_at": datetime.now(UTC).isoformat(),
        "lines": [
            {"variant_id": str(till.variant("BEAN-1")), "name": "Beans", "quantity": 2, "amount_minor": 2380},
            {"variant_id": str(till.variant("MUG-1")), "name": "Mug", "quantity": 1, "amount_minor": 1400},
        ],
    }
    if kind == "line":
        body["lines"] = body["lines"][:1]
        body["reason"] = "Taken off the ticket"
    body.update(overrides)
    return body


async def voids_in(sessions: Sessions, till: Till) -> int:
    async with sessions() as session:
        bind_store(session, till.store.id)
        return int(await session.scalar(select(func.count(PosVoid.id))) or 0)


async def test_a_void_is_recorded_once_even_sent_many_times_at_once(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    body = void_body(till)
    answers = await asyncio.gather(*(client.post(f"{API}/voids", json=body, headers=till.headers) for _ in range(8)))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201], [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    first = answers[0].json()
    assert (first["kind"], first["amount_minor"], first["reason"]) == ("ticket", 3780, "Customer changed their mind")
    assert await voids_in(sessions, till) == 1


async def test_the_shift_report_counts_voided_tickets_and_lines(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    for body in (void_body(till), void_body(till, "line"), void_body(till, "line")):
        sent = await client.post(f"{API}/voids", json=body, headers=till.headers)
        assert sent.status_code == 201, sent.text
    report = (await client.get(f"{API}/shifts/{till.shift_id}/report", headers=till.headers)).json()
    assert (report["voided_tickets"], report["voided_lines"], report["voids_count"]) == (1, 2, 3)
    assert report["voided_minor"] == 3780 + 2 * 2380
    assert report["card_voids_count"] == 0
    assert report["sales_count"] == 0 and report["sales_minor"] == 0  # nothing was sold
    page = await client.get(f"/pos/shifts/{till.shift_id}/report", headers=till.headers)
    assert page.status_code == 200 and 'data-figure="voided_tickets">1<' in page.text
    csv = await client.get(f"/pos/shifts/{till.shift_id}/report.csv", headers=till.headers)
    assert "voided_lines,2" in csv.text and "voided_minor,8540" in csv.text


async def test_a_void_kept_offline_is_taken_after_the_shift_closed(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    closed = await client.post(
        f"{API}/shifts/{till.shift_id}/close", json={"counted_cash_minor": 10_000}, headers=till.headers
    )
    assert closed.status_code == 200, closed.text
    late = void_body(till, voided_at=(datetime.now(UTC) - timedelta(minutes=30)).isoformat())
    sent = await client.post(f"{API}/voids", json=late, headers=till.headers)
    assert sent.status_code == 201, sent.text


async def test_bad_voids_are_refused_and_write_nothing(client: Client, world: World, sessions: Sessions) -> None:
    till = await open_till(client, world, sessions)
    other_register = await add_register(sessions, till.store, "Counter 2")
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    cases: list[tuple[dict[str, Any], int, str]] = [
        (void_body(till, kind="sale"), 422, "kind"),
        (void_body(till, reason="   "), 422, "reason"),
        (void_body(till, reason="x" * 201), 422, "reason"),
        (void_body(till, voided_at=future), 422, "voided_at"),
        (void_body(till, lines=[]), 422, "lines"),
        (void_body(till, "line", lines=void_body(till)["lines"]), 422, "lines"),
        (void_body(till, lines=[{"name": "Beans", "quantity": 0, "amount_minor": 10}]), 422, "lines.0.quantity"),
        (void_body(till, lines=[{"name": "Beans", "quantity": 1, "amount_minor": -1}]), 422, "lines.0.amount_minor"),
        (void_body(till, lines=[{"name": " ", "quantity": 1, "amount_minor": 1}]), 422, "lines.0.name"),
        (void_body(till, register_id=str(other_register)), 422, "shift_id"),
        (void_body(till, shift_id=str(uuid.uuid4())), 404, ""),
        (void_body(till, register_id=str(uuid.uuid4())), 404, ""),
        ({"kind": "ticket"}, 422, "client_void_id"),
    ]
    for body, status, field in cases:
        answer = await client.post(f"{API}/voids", json=body, headers=till.headers)
        assert answer.status_code == status, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        if field:
            assert field in answer.json()["fields"], answer.json()
    assert await voids_in(sessions, till) == 0


async def test_another_stores_shift_is_not_found(client: Client, world: World, sessions: Sessions) -> None:
    ours = await open_till(client, world, sessions)
    theirs = await open_till(client, world, sessions)  # signs the client in as the second store's cashier
    answer = await client.post(f"{API}/voids", json=void_body(ours), headers=theirs.headers)
    assert answer.status_code == 404, answer.text
    assert await voids_in(sessions, ours) == 0
