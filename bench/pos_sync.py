"""Offline POS sync after a reconnect: 1,000 queued sales from 3 registers drained through POST /pos/api/sync.

    .venv/bin/python bench/pos_sync.py [--sales 1000] [--registers 3] [--batch 50] [--workers 2]

Starts its own `till serve` (TEST_DATABASE_URL / TEST_REDIS_URL, or embedded servers) on a fresh database with the
demo store (stock plenty, the offline total limit off: a register that queued a few hundred sales is over it on
purpose, and the review list is not what is measured). The demo cashier signs in as a tablet does, opens a shift on
each register and gets its offline key; the sales (1 to 3 catalog lines, cash with change, made over the last two
hours) are checksummed under their shift's key as the tablet queues them, before the clock starts.

Then every register's tablet syncs its queue at once, oldest first, in batches of ``--batch`` (the tablet sends 50),
each tablet one batch after another — and every fourth batch is sent twice at the same moment (a retry racing its
original after a dropped answer). Measured: the time until every queue is drained. Afterwards every batch is sent
again (a tablet that lost all its answers) and must answer ``existing`` throughout. Duplicates are counted in the
database: orders and claims beyond one per queued sale, and any sale whose order is missing.

Prints the drain time, sales per second and the duplicates; writes bench/results/pos_sync.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_baseline import own_server  # noqa: E402
from bench.lean_http import LeanConnection  # noqa: E402


async def prepare(database_url: str, registers: int) -> list[str]:
    """Plenty of stock, the offline total limit off, and ``registers`` registers (their ids)."""
    from sqlalchemy import select, update

    from app.core.db import create_engine, session_maker
    from app.core.tenancy import bind_store
    from app.inventory.models import StockLevel
    from app.pos.models import Register
    from app.stores.models import Store

    engine = create_engine(database_url, pool_size=1)
    try:
        async with session_maker(engine)() as session, session.begin():
            store = await session.scalar(select(Store).where(Store.slug == "demo"))
            assert store is not None
            store.settings = {**store.settings, "pos": {"max_offline_total_minor": None}}
            bind_store(session, store.id)
            await session.execute(update(StockLevel).values(on_hand=10_000_000))
            made = [Register(name=f"Bench {n + 1}") for n in range(registers)]
            session.add_all(made)
            await session.flush()
            return [str(r.id) for r in made]
    finally:
        await engine.dispose()


def sign_in(url: str) -> dict[str, str]:
    """The demo cashier's session and CSRF token, as the tablet's page holds them."""
    import httpx

    from app.seed import DEMO_ACCOUNTS, DEMO_PASSWORD

    cashier = next(a for a in DEMO_ACCOUNTS if a.role.value == "cashier")
    with httpx.Client(base_url=url) as client:
        token = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/signin").text)
        assert token is not None
        client.post("/signin", data={"email": cashier.email, "password": DEMO_PASSWORD, "_csrf_token": token[1]})
        client.get("/staff")
        cookies = f"till_session={client.cookies['till_session']}; till_csrf={client.cookies['till_csrf']}"
        return {"cookie": cookies, "x-csrftoken": client.cookies["till_csrf"]}


async def open_shifts(
    url: str, headers: dict[str, str], registers: list[str]
) -> tuple[list[tuple[str, str, bytes]], Any]:
    """A shift on each register: (register id, shift id, offline key); and the catalog snapshot."""
    from app.pos.canonical import key_from_text

    client = LeanConnection(url, headers)
    shifts = []
    for register_id in registers:
        opened = await client.request("POST", "/pos/api/shifts", json={"register_id": register_id,
                                                                       "opening_float_minor": 15_000})  # fmt: skip
        assert opened.status == 201, opened.body
        body = opened.json()
        shifts.append((register_id, body["id"], key_from_text(body["offline_key"])))
    catalog = (await client.request("GET", "/pos/api/catalog")).json()
    await client.close()
    return shifts, catalog


def queue_sales(catalog: Any, shifts: list[tuple[str, str, bytes]], count: int, seed: int = 14) -> list[list[Any]]:
    """Each register's queue of entries (oldest first), priced as the tablet prices them offline."""
    from app.pos.canonical import checksum
    from app.pos.pricing import TicketLine, price_ticket
    from app.tax.providers import BuiltinTax

    rng = random.Random(seed)
    variants = [(v, p) for p in catalog["products"] for v in p["variants"]]
    tax = BuiltinTax(catalog["tax"]["rules"], catalog["currency"])
    queues: list[list[Any]] = [[] for _ in shifts]
    start = datetime.now(UTC) - timedelta(hours=2)
    for n in range(count):
        index = n % len(shifts)
        register_id, shift_id, key = shifts[index]
        picked = rng.sample(variants, rng.randint(1, 3))
        lines = [
            {"variant_id": v["id"], "quantity": rng.randint(1, 3), "unit_price_minor": v["price_minor"],
             "discount_minor": 0, "note": ""}
            for v, _ in picked
        ]  # fmt: skip
        priced = price_ticket(
            [TicketLine(uuid.UUID(li["variant_id"]), li["quantity"], li["unit_price_minor"], 0, v["tax_class"])
             for li, (v, _) in zip(lines, picked, strict=True)],
            0,
            tax=tax,
            country=catalog["tax"]["country"],
            prices_include_tax=catalog["tax"]["prices_include_tax"],
            currency=catalog["currency"],
        )  # fmt: skip
        total = priced.total_minor
        handed = -(-total // 500) * 500  # the next 5.00 up
        sale = {
            "client_sale_id": str(uuid.uuid4()),
            "register_id": register_id,
            "shift_id": shift_id,
            "sequence": len(queues[index]) + 1,
            "sold_at": (start + timedelta(seconds=6 * n)).isoformat(),
            "offline": True,
            "lines": lines,
            "ticket_discount_minor": 0,
            "manager_pin": None,
            "customer_id": None,
            "tenders": [{"kind": "cash", "amount_minor": total, "tendered_minor": handed}],
            "total_minor": total,
        }
        queues[index].append(
            {"client_sale_id": sale["client_sale_id"], "sequence": sale["sequence"], "sold_at": sale["sold_at"],
             "sale": sale, "checksum": checksum(key, sale)}
        )  # fmt: skip
    return queues


async def tablet(
    url: str, headers: dict[str, str], shift: tuple[str, str, bytes], queue: list[Any], size: int, *, doubled: bool
) -> list[dict[str, Any]]:
    """One register's tablet draining its queue: a batch at a time; with ``doubled``, every fourth batch twice at
    once (the retry racing the original). Answers every result it got."""
    register_id, shift_id, _ = shift
    main, racer = LeanConnection(url, headers), LeanConnection(url, headers)
    results: list[dict[str, Any]] = []
    for number, start in enumerate(range(0, len(queue), size)):
        body = json.dumps({"register_id": register_id, "shift_id": shift_id, "entries": queue[start : start + size]})
        sends = [main.request("POST", "/pos/api/sync", content=body.encode())]
        if doubled and number % 4 == 3:
            sends.append(racer.request("POST", "/pos/api/sync", content=body.encode()))
        for reply in await asyncio.gather(*sends):
            assert reply.status == 200, reply.body[:300]
            results.extend(reply.json()["results"])
    await main.close()
    await racer.close()
    return results


async def drain(
    url: str, headers: dict[str, str], shifts: list[tuple[str, str, bytes]], queues: list[list[Any]], size: int,
    *, doubled: bool,
) -> tuple[float, list[dict[str, Any]]]:  # fmt: skip
    started = time.perf_counter()
    answers = await asyncio.gather(
        *(
            tablet(url, headers, shift, queue, size, doubled=doubled)
            for shift, queue in zip(shifts, queues, strict=True)
        )
    )
    return time.perf_counter() - started, [r for answer in answers for r in answer]


async def count_in_database(database_url: str, client_sale_ids: set[str]) -> dict[str, Any]:
    from sqlalchemy import text

    from app.core.db import create_engine

    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            claims = (await conn.execute(text("SELECT client_sale_id::text, order_id FROM pos_sales"))).all()
            orders = await conn.scalar(text("SELECT count(*) FROM orders WHERE channel = 'pos'"))
            reviews = await conn.scalar(text("SELECT count(*) FROM pos_sales WHERE review_status = 'open'"))
            kinds = dict(
                (
                    await conn.execute(
                        text(
                            "SELECT c ->> 'kind', count(*) FROM pos_sales, jsonb_array_elements(conflicts) c GROUP BY 1"
                        )
                    )
                )
                .tuples()
                .all()
            )
    finally:
        await engine.dispose()
    per_sale = Counter(cid for cid, _ in claims)
    return {
        "claims": len(claims),
        "orders": int(orders or 0),
        "duplicates": sum(n - 1 for n in per_sale.values() if n > 1) + max(0, int(orders or 0) - len(client_sale_ids)),
        "missing": len(client_sale_ids - set(per_sale)),
        "review": int(reviews or 0),
        "review_reasons": {str(k): int(n) for k, n in kinds.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sales", type=int, default=1000)
    parser.add_argument("--registers", type=int, default=3)
    parser.add_argument("--batch", type=int, default=50, help="entries per sync call (the tablet sends 50)")
    parser.add_argument("--workers", type=int, default=2, help="web processes")
    args = parser.parse_args()
    with own_server(args.workers, on_database=lambda url: (url, asyncio.run(prepare(url, args.registers)))) as (
        url,
        prepared,
    ):
        database_url, registers = prepared
        headers = sign_in(url)
        shifts, catalog = asyncio.run(open_shifts(url, headers, registers))
        queues = queue_sales(catalog, shifts, args.sales)
        queued = {e["client_sale_id"] for q in queues for e in q}
        seconds, first = asyncio.run(drain(url, headers, shifts, queues, args.batch, doubled=True))
        replay_seconds, again = asyncio.run(drain(url, headers, shifts, queues, args.batch, doubled=False))
        counted = asyncio.run(count_in_database(database_url, queued))
    statuses = Counter(r["status"] for r in first)
    replayed = Counter(r["status"] for r in again)
    result = {
        "sales": args.sales,
        "registers": args.registers,
        "batch": args.batch,
        "workers": args.workers,
        "drain_seconds": round(seconds, 2),
        "sales_per_second": round(args.sales / seconds, 1),
        "first_pass": dict(statuses),
        "replay_seconds": round(replay_seconds, 2),
        "replay": dict(replayed),
        **counted,
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "pos_sync.json").write_text(json.dumps(result, indent=2))
    print(f"{args.sales} offline sales from {args.registers} registers, batches of {args.batch}, "
          f"{args.workers} web process(es); every fourth batch sent twice at once")  # fmt: skip
    print(f"drained in {seconds:.2f} s ({args.sales / seconds:.0f} sales/s); answers: {dict(statuses)}")
    print(f"replayed every batch in {replay_seconds:.2f} s; answers: {dict(replayed)}")
    print(f"database: {counted['orders']} POS orders, {counted['claims']} claims, duplicates {counted['duplicates']}, "
          f"missing {counted['missing']}, on review {counted['review']} {counted['review_reasons']}")  # fmt: skip


if __name__ == "__main__":
    main()
