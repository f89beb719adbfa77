"""POST /pos/api/sync: a tablet's offline queue reaches the server exactly once — 20 identical batches at once make
one order per sale; a tampered entry is refused (logged, counted, audited) while the rest of its batch syncs;
conflicts never drop a sale (price changed, stock short, a discount not approved, the shift closed, each offline
limit): it is sold and goes to the managers' review list, where it is resolved with a note."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.catalog.models import Variant
from app.core import pg
from app.core.audit import AuditEntry
from app.core.errors import NotFound
from app.core.passwords import hash_password
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.inventory.models import StockLevel
from app.orders.models import Order, OrderLine
from app.pos.models import PosSale
from app.pos.sales import load_till, load_variants, stored_sales
from app.stores.models import Membership, Store
from tests.integration.conftest import World, csrf_from
from tests.integration.pos import API, Client, Sessions, Till, batch, entry, open_till, sale_body, sales_of, signed_in


async def _sync(client: Client, till: Till, entries: list[Any]) -> list[dict[str, Any]]:
    answer = await client.post(f"{API}/sync", json=batch(till, entries), headers=till.headers)
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


async def _pos(sessions: Sessions, store: Store, **pos: Any) -> None:
    async with sessions() as session, session.begin():
        row = await session.get(Store, store.id)
        assert row is not None
        row.settings = {**row.settings, "pos": pos}
        store.settings = row.settings


def _offline(till: Till, minutes_ago: int = 30, **kwargs: Any) -> dict[str, Any]:
    return sale_body(till, offline=True, sold_at=datetime.now(UTC) - timedelta(minutes=minutes_ago), **kwargs)


async def test_a_queue_syncs_each_sale_once_and_a_replayed_batch_answers_existing(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    sales = [_offline(till, 60 - i, items={"CRO-1": 1 + i}) for i in range(5)]
    first = await _sync(client, till, [entry(s, till.key) for s in sales])
    assert [r["status"] for r in first] == ["created"] * 5
    assert [r["client_sale_id"] for r in first] == [s["client_sale_id"] for s in sales]
    assert all(r["order_number"] and r["reason"] == "" for r in first)
    again = await _sync(client, till, [entry(s, till.key) for s in sales])
    assert [(r["status"], r["order_number"]) for r in again] == [("existing", r["order_number"]) for r in first]
    stored = await sales_of(sessions, till.store)
    assert len(stored) == 5 and all(s.offline and s.review_status == "none" for s in stored)
    async with sessions() as session:
        bind_store(session, till.store.id)
        placed = await session.scalar(select(Order.placed_at).where(Order.number == first[0]["order_number"]))
        on_hand = await session.scalar(select(StockLevel.on_hand).where(StockLevel.variant_id == till.variant("CRO-1")))
    assert placed == datetime.fromisoformat(sales[0]["sold_at"])  # the order is dated when it was sold
    assert on_hand == 50 - (1 + 2 + 3 + 4 + 5)


async def test_twenty_identical_batches_at_once_make_one_order_per_sale(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    sales = [_offline(till, 90 - i, items={"CRO-1": 1, "BEAN-1": 1} if i % 2 else {"MUG-1": 1}) for i in range(12)]
    body = batch(till, [entry(s, till.key) for s in sales])
    answers = await asyncio.gather(*(client.post(f"{API}/sync", json=body, headers=till.headers) for _ in range(20)))
    assert {a.status_code for a in answers} == {200}
    results = [a.json()["results"] for a in answers]
    for i, sale in enumerate(sales):
        outcomes = [r[i] for r in results]
        assert {o["client_sale_id"] for o in outcomes} == {sale["client_sale_id"]}
        assert sorted(o["status"] for o in outcomes) == ["created"] + ["existing"] * 19, outcomes
        assert len({o["order_number"] for o in outcomes}) == 1
    async with sessions() as session:
        bind_store(session, till.store.id)
        orders = await session.scalar(select(func.count()).select_from(Order))
        claims = await session.scalar(select(func.count()).select_from(PosSale))
        on_hand = dict((await session.execute(select(StockLevel.variant_id, StockLevel.on_hand))).tuples().all())
    assert orders == claims == 12
    assert on_hand[till.variant("MUG-1")] == 50 - 6 and on_hand[till.variant("CRO-1")] == 50 - 6


async def test_a_tampered_entry_is_refused_reported_and_the_rest_of_its_batch_syncs(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    sales = [_offline(till, 10 - i) for i in range(3)]
    entries = [entry(s, till.key) for s in sales]
    entries[1]["sale"] = {**sales[1], "total_minor": 1, "tenders": [{"kind": "cash", "amount_minor": 1}]}
    forged = entry(_offline(till), b"k" * 32)  # signed with a key that is not the shift's
    before = REGISTRY.get_sample_value("till_pos_sync_refused_total", {"reason": "bad_checksum"}) or 0.0
    junk: list[Any] = [{"nonsense": True}, "not an entry"]
    results = await _sync(client, till, [*entries, forged, *junk])
    assert [r["status"] for r in results] == ["created", "refused", "created", "refused", "refused", "refused"]
    assert "checksum" in results[1]["reason"] and "checksum" in results[3]["reason"]
    assert results[1]["order_number"] is None
    after = REGISTRY.get_sample_value("till_pos_sync_refused_total", {"reason": "bad_checksum"})
    assert after == before + 2
    async with sessions() as session:
        bind_store(session, till.store.id)
        reported = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "pos.sync_refused")))
    assert sorted(e.details["client_sale_id"] for e in reported) == sorted(
        [sales[1]["client_sale_id"], forged["client_sale_id"]]
    )
    assert len(await sales_of(sessions, till.store)) == 2


async def test_entries_that_cannot_be_sales_of_this_store_are_refused(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    future = sale_body(till, offline=True, sold_at=datetime.now(UTC) + timedelta(minutes=10))
    unknown = _offline(till)
    unknown["lines"][0]["variant_id"] = str(uuid.uuid4())
    elsewhere = _offline(till)
    elsewhere["shift_id"] = str(uuid.uuid4())
    uncovered = _offline(till)
    uncovered["tenders"] = [{"kind": "cash", "amount_minor": 10, "tendered_minor": 10}]
    ok = _offline(till)
    used = {**_offline(till), "client_sale_id": ok["client_sale_id"]}  # another sale under a synced id
    results = await _sync(client, till, [entry(s, till.key) for s in (future, unknown, elsewhere, uncovered, ok, used)])
    assert [r["status"] for r in results] == ["refused"] * 4 + ["created", "refused"]
    assert "future" in results[0]["reason"]
    assert "lines.0.variant_id" in results[1]["reason"]
    assert "shift" in results[2]["reason"]
    assert "tenders" in results[3]["reason"]
    assert "from a different sale" in results[5]["reason"]
    assert len(await sales_of(sessions, till.store)) == 1


async def test_a_batch_over_200_entries_or_a_megabyte_is_413(client: Client, world: World, sessions: Sessions) -> None:
    till = await open_till(client, world, sessions)
    one = entry(_offline(till), till.key)
    many = await client.post(f"{API}/sync", json=batch(till, [one] * 201), headers=till.headers)
    assert many.status_code == 413 and many.headers["content-type"].startswith("application/problem+json")
    padded = {**one, "sale": {**one["sale"], "padding": "x" * 1_000_100}}
    big = await client.post(f"{API}/sync", content=json.dumps(batch(till, [padded])).encode(),
                            headers={**till.headers, "content-type": "application/json"})  # fmt: skip
    assert big.status_code == 413
    assert await sales_of(sessions, till.store) == []
    exactly = await client.post(f"{API}/sync", json=batch(till, [one] * 200), headers=till.headers)
    assert exactly.status_code == 200
    assert [r["status"] for r in exactly.json()["results"]] == ["created"] + ["existing"] * 199


async def test_another_stores_register_or_shift_is_404(client: Client, world: World, sessions: Sessions) -> None:
    mine = await open_till(client, world, sessions)
    theirs = await open_till(client, world, sessions)
    answer = await client.post(
        f"{API}/sync", json=batch(mine, [entry(_offline(mine), mine.key)]), headers=theirs.headers
    )
    assert answer.status_code == 404
    mixed = {**batch(theirs, []), "shift_id": str(mine.shift_id)}
    assert (await client.post(f"{API}/sync", json=mixed, headers=theirs.headers)).status_code == 404
    assert await sales_of(sessions, mine.store) == []


async def test_conflicts_never_drop_a_sale_they_put_it_on_review(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions, stock={"BEAN-1": 50, "MUG-1": 50, "CRO-1": 1})
    async with sessions() as session, session.begin():
        bind_store(session, till.store.id)
        await session.execute(update(Variant).where(Variant.id == till.variant("MUG-1")).values(price_minor=1500))
        manager = await session.scalar(select(Membership).where(Membership.user_id == till.manager.user.id))
        assert manager is not None
        manager.pos_pin_hash = hash_password("2468")
    old_price = _offline(till, 50, items={"MUG-1": 1})  # the tablet's catalog still said 14.00
    short = _offline(till, 40, items={"CRO-1": 4})
    no_pin = _offline(till, 30, items={"BEAN-1": 1}, discounts={"BEAN-1": 500})
    wrong_pin = _offline(till, 20, items={"BEAN-1": 1}, discounts={"BEAN-1": 500}, manager_pin="1357")
    right_pin = _offline(till, 10, items={"BEAN-1": 1}, discounts={"BEAN-1": 500}, manager_pin="2468")
    sales = [old_price, short, no_pin, wrong_pin, right_pin]
    results = await _sync(client, till, [entry(s, till.key) for s in sales])
    assert [r["status"] for r in results] == ["review", "review", "review", "review", "created"]
    assert "sold at €14.00; the catalog said €15.00" in results[0]["reason"]
    assert "Croissant: sold 4, only 1 in stock" in results[1]["reason"]
    assert "no PIN" in results[2]["reason"] and "wrong PIN" in results[3]["reason"]
    async with sessions() as session:
        bind_store(session, till.store.id)
        line = await session.scalar(select(OrderLine).where(OrderLine.sku == "MUG-1"))
        on_hand = await session.scalar(select(StockLevel.on_hand).where(StockLevel.variant_id == till.variant("CRO-1")))
    assert line is not None and (line.unit_price_minor, line.total_minor) == (1400, 1400)  # as the tablet charged
    assert on_hand == 0
    stored = {str(s.client_sale_id): s for s in await sales_of(sessions, till.store)}
    assert stored[right_pin["client_sale_id"]].discount_approved_by_id == till.manager.user.id
    assert [c["kind"] for c in stored[old_price["client_sale_id"]].conflicts] == ["price_changed"]
    assert stored[short["client_sale_id"]].review_status == "open"


async def test_each_offline_limit_sends_the_sale_to_review(client: Client, world: World, sessions: Sessions) -> None:
    till = await open_till(client, world, sessions)
    await _pos(sessions, till.store, max_offline_sale_minor=1000, max_offline_total_minor=2000, max_offline_hours=2)
    old = _offline(till, 180, items={"CRO-1": 1})  # three hours old, the limit is two
    in_a_row = [_offline(till, 90 - i, items={"CRO-1": 2}) for i in range(4)]  # 4.80 each after the 2.40
    big = _offline(till, 60, items={"MUG-1": 1})  # 14.00, over the 10.00 one sale may be offline
    results = await _sync(client, till, [entry(s, till.key) for s in (old, *in_a_row, big)])
    assert [r["status"] for r in results] == ["review", "created", "created", "created", "review", "review"]
    assert "3 hours after the sale, over the limit of 2" in results[0]["reason"]
    assert "in a row came to €21.60, over the limit of €20.00" in results[4]["reason"]
    assert "Sold offline for €14.00, over the offline limit of €10.00" in results[5]["reason"]
    assert "in a row came to €35.60" in results[5]["reason"]

    online = await client.post(f"{API}/sales", json=sale_body(till, {"CRO-1": 1}), headers=till.headers)
    assert online.status_code == 201  # an online sale ends the run of offline ones
    after = await _sync(client, till, [entry(_offline(till, 0, items={"CRO-1": 2}), till.key)])
    assert after[0]["status"] == "created"

    await _pos(sessions, till.store, offline_tenders=[])
    cash = await _sync(client, till, [entry(_offline(till, 0, items={"CRO-1": 1}), till.key)])
    assert cash[0]["status"] == "review" and "Paid by cash while offline" in cash[0]["reason"]
    await _pos(sessions, till.store, max_offline_sale_minor=None, max_offline_total_minor=None, max_offline_hours=None)
    unlimited = await _sync(client, till, [entry(_offline(till, 60 * 48, items={"MUG-1": 20}), till.key)])
    assert unlimited[0]["status"] == "created"
    assert len(await sales_of(sessions, till.store)) == 10


async def test_a_sale_sent_online_then_queued_answers_existing(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    sale = sale_body(till)  # the answer was lost, so the tablet queued exactly what it had sent
    online = await client.post(f"{API}/sales", json=sale, headers=till.headers)
    assert online.status_code == 201
    results = await _sync(client, till, [entry(sale, till.key)])
    assert (results[0]["status"], results[0]["order_number"]) == ("existing", online.json()["order_number"])


async def test_a_sale_that_syncs_after_its_shift_closed_is_sold_for_review(
    client: Client, world: World, sessions: Sessions
) -> None:
    till = await open_till(client, world, sessions)
    queued = _offline(till, 5)
    closed = await client.post(f"{API}/shifts/{till.shift_id}/close", json={"counted_cash_minor": 10_000},
                               headers=till.headers)  # fmt: skip
    assert closed.status_code == 200
    results = await _sync(client, till, [entry(queued, till.key)])
    assert results[0]["status"] == "review" and "after its shift was closed" in results[0]["reason"]
    report = (await client.get(f"{API}/shifts/{till.shift_id}/report", headers=till.headers)).json()
    assert (report["sales_count"], report["expected_cash_minor"], report["review_count"]) == (1, 10_000, 1)


async def test_managers_resolve_the_review_list_with_a_note(client: Client, world: World, sessions: Sessions) -> None:
    till = await open_till(client, world, sessions, stock={"BEAN-1": 5, "MUG-1": 5, "CRO-1": 0})
    results = await _sync(client, till, [entry(_offline(till, items={"CRO-1": 2}), till.key)])
    assert results[0]["status"] == "review"
    cashier_page = await client.get("/staff/pos/review")
    assert cashier_page.status_code == 403
    await signed_in(client, till.manager)
    page = await client.get("/staff/pos/review")
    assert page.status_code == 200
    assert f'data-order="{results[0]["order_number"]}"' in page.text
    assert "Croissant: sold 2, only 0 in stock" in page.text
    [sale] = await sales_of(sessions, till.store)
    token = csrf_from(page.text)
    empty = await client.post(f"/staff/pos/review/{sale.id}/resolve", data={"note": " ", "_csrf_token": token})
    assert empty.status_code == 422 and "Required to resolve." in empty.text
    done = await client.post(
        f"/staff/pos/review/{sale.id}/resolve", data={"note": "Counted: 12 on the shelf", "_csrf_token": token}
    )
    assert done.status_code == 303
    again = await client.post(f"/staff/pos/review/{sale.id}/resolve", data={"note": "x", "_csrf_token": token})
    assert again.status_code == 409
    [sale] = await sales_of(sessions, till.store)
    assert (sale.review_status, sale.review_note, sale.reviewed_by_id) == (
        "resolved", "Counted: 12 on the shelf", till.manager.user.id,
    )  # fmt: skip
    page = await client.get("/staff/pos/review")
    assert 'data-testid="review-empty"' in page.text and "Counted: 12 on the shelf" in page.text
    async with sessions() as session:
        bind_store(session, till.store.id)
        audited = await session.scalar(select(AuditEntry).where(AuditEntry.action == "pos.review_resolved"))
    assert audited is not None and audited.details["note"] == "Counted: 12 on the shelf"
    other = await open_till(client, world, sessions, role=Role.MANAGER)
    stranger = await client.post(
        f"/staff/pos/review/{sale.id}/resolve", data={"note": "mine now", "_csrf_token": other.headers["x-csrftoken"]}
    )
    assert stranger.status_code == 404


async def test_the_raw_statements_reach_no_other_stores_rows(
    client: Client, world: World, sessions: Sessions, engine: AsyncEngine
) -> None:
    """ADR 0003: each raw statement names its store; called with another store's id it finds nothing."""
    mine = await open_till(client, world, sessions)
    sale = _offline(mine)
    assert (await _sync(client, mine, [entry(sale, mine.key)]))[0]["status"] == "created"
    theirs = await open_till(client, world, sessions)
    async with pg.connection(engine) as conn:
        with pytest.raises(NotFound):
            await load_till(conn, theirs.store, mine.register_id, mine.shift_id)
        with pytest.raises(NotFound):
            await load_till(conn, mine.store, mine.register_id, theirs.shift_id)
        assert await load_variants(conn, theirs.store.id, [mine.variant("CRO-1")]) == {}
        claim = uuid.UUID(sale["client_sale_id"])
        assert await stored_sales(conn, theirs.store.id, mine.register_id, [claim]) == {}
        assert list(await stored_sales(conn, mine.store.id, mine.register_id, [claim])) == [claim]
