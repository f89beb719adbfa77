"""Live board fan-out: N boards on one store while orders move; event-to-screen latency and missed events.

    .venv/bin/python bench/board.py [--subscribers 100,1000] [--events 100] [--rate 5] [--workers 2]

Starts its own `till serve` and `till worker` (the outbox relay) on a fresh database with the demo store
and --events placed orders. For each level it opens that many board streams (/staff/board/events, one
signed-in manager's session, one socket each), then moves one order per event (placed → accepted, at
--rate per second) in its own transaction, noting the moment each commits. Every stream notes when that
order's card arrives. Latency is receipt minus commit: the NOTIFY, the relay, Redis, the web process
rendering the card once and sending it to every board, and this client reading it, all on this machine.
Prints p50/p95/p99/max latency and the events each board missed or got twice; writes
bench/results/board.json. Target (issue #6): 1,000 boards, p99 < 250 ms, none missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_baseline import own_server, staff_cookie  # noqa: E402

ORDERS = """
    WITH store AS (SELECT id FROM stores WHERE slug = 'demo'), placed AS (
        INSERT INTO orders (id, store_id, channel, status, payment_status, fulfilment_status, fulfilment_method,
                            email, phone, currency, subtotal_minor, discount_minor, shipping_minor, tax_minor,
                            total_minor, prices_include_tax, shipping, snapshot_id, access_token, placed_at,
                            created_at, updated_at)
        SELECT gen_random_uuid(), store.id, 'web', 'placed', 'paid', 'unfulfilled', 'pickup',
               'board' || n || '@example.com', '', 'EUR', 380, 0, 0, 25, 380, true, '{"code": "pickup"}'::jsonb,
               gen_random_uuid(), md5(n::text), now(), now(), now()
        FROM store, generate_series(1, :orders) n
        RETURNING id, store_id
    ), lines AS (
        INSERT INTO order_lines (id, store_id, order_id, position, sku, name, quantity, unit_price_minor,
                                 discount_minor, tax_minor, tax_rate_bps, total_minor, created_at, updated_at)
        SELECT gen_random_uuid(), store_id, id, 0, 'FLAT-WHITE', 'Flat White', 1, 380, 0, 25, 700, 380, now(), now()
        FROM placed
    )
    SELECT id FROM placed
"""

CARD_ID = re.compile(rb'data: \{"id": "([0-9a-f-]{36})"')


async def prepare(database_url: str, orders: int) -> list[str]:
    """``orders`` placed orders in the demo store, one line each, waiting to be accepted."""
    from sqlalchemy import text

    from app.core.db import create_engine, session_maker

    engine = create_engine(database_url, pool_size=1)
    try:
        async with session_maker(engine)() as session, session.begin():
            return [str(i) for i in (await session.scalars(text(ORDERS), {"orders": orders})).all()]
    finally:
        await engine.dispose()


class Board:
    """One board's stream: a raw socket reading the SSE bytes, noting when each order's card arrives."""

    def __init__(self, received: dict[str, list[float]], expected: int) -> None:
        self.received = received  # order id -> receipt times, shared by every board
        self.seen: list[str] = []
        self.expected = expected
        self.complete = asyncio.Event()  # every expected card arrived
        self.writer: asyncio.StreamWriter | None = None

    async def open(self, host: str, port: int, cookie: str, after: int) -> asyncio.StreamReader:
        reader, self.writer = await asyncio.open_connection(host, port)
        request = (
            f"GET /staff/board/events?after={after} HTTP/1.1\r\nhost: {host}:{port}\r\ncookie: {cookie}\r\n"
            "accept: text/event-stream\r\n\r\n"
        )
        self.writer.write(request.encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace").splitlines()[0])
        await reader.readuntil(b": connected")
        return reader

    async def read(self, reader: asyncio.StreamReader) -> None:
        buffer = b""
        while chunk := await reader.read(65536):
            now = time.perf_counter()
            buffer += chunk
            end = 0
            for match in CARD_ID.finditer(buffer):
                order_id = match[1].decode()
                self.seen.append(order_id)
                self.received.setdefault(order_id, []).append(now)
                end = match.end()
            if len(self.seen) >= self.expected:
                self.complete.set()
            buffer = buffer[end:] if end else buffer[-200:]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def move_orders(database_url: str, order_ids: list[str], rate: float, committed: dict[str, float]) -> None:
    """Accept one order per event at ``rate`` per second, each in its own transaction, noting its commit."""
    from app.core.db import create_engine, session_maker
    from app.core.rbac import Role
    from app.orders.services import Actor, OrderService
    from app.orders.states import Axis
    from app.stores.models import Store

    engine = create_engine(database_url, pool_size=2)
    sessions = session_maker(engine)
    actor = Actor(Role.STAFF, "bench", "system")
    try:
        async with sessions() as session:
            from sqlalchemy import select

            store_id = await session.scalar(select(Store.id).where(Store.slug == "demo"))
        assert store_id is not None
        started = time.perf_counter()
        for n, order_id in enumerate(order_ids):
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))  # pacing, not a measurement
            async with sessions() as session, session.begin():
                await OrderService(session, store_id).change_status(
                    uuid.UUID(order_id), Axis.ORDER, "accepted", actor=actor
                )
            committed[order_id] = time.perf_counter()
    finally:
        await engine.dispose()


async def last_seq(database_url: str) -> int:
    from sqlalchemy import text

    from app.core.db import create_engine

    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT coalesce(max(seq), 0) FROM outbox_events"))).scalar_one())
    finally:
        await engine.dispose()


async def level(
    url: str, database_url: str, cookie: str, subscribers: int, order_ids: list[str], rate: float
) -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    received: dict[str, list[float]] = {}
    boards = [Board(received, len(order_ids)) for _ in range(subscribers)]
    after = await last_seq(database_url)
    connect_started = time.perf_counter()
    readers = []
    for batch in range(0, subscribers, 50):  # as tablets do: not all in the same millisecond
        readers += await asyncio.gather(*(b.open(host, int(port), cookie, after) for b in boards[batch : batch + 50]))
    connect_s = time.perf_counter() - connect_started
    reading = [asyncio.create_task(b.read(r)) for b, r in zip(boards, readers, strict=True)]
    committed: dict[str, float] = {}
    await move_orders(database_url, order_ids, rate, committed)
    expected = len(order_ids)
    with contextlib.suppress(TimeoutError):  # stragglers get 30 s before what arrived is counted
        await asyncio.wait_for(asyncio.gather(*(b.complete.wait() for b in boards)), timeout=30)
    for b in boards:
        b.close()
    for task in reading:
        task.cancel()
    latencies = [t - committed[oid] for oid, times in received.items() if oid in committed for t in times]
    missed = sum(len(set(order_ids) - set(b.seen)) for b in boards)
    doubled = sum(len(b.seen) - len(set(b.seen)) for b in boards)
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "subscribers": subscribers,
        "events": expected,
        "deliveries": len(latencies),
        "missed": missed,
        "duplicates": doubled,
        "connect_s": round(connect_s, 2),
        "p50_ms": round(cuts[49] * 1000, 1),
        "p95_ms": round(cuts[94] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
        "max_ms": round(max(latencies, default=0.0) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", default="100,1000")
    parser.add_argument("--events", type=int, default=100, help="order moves per level")
    parser.add_argument("--rate", type=float, default=5.0, help="order moves per second")
    parser.add_argument("--workers", type=int, default=2, help="web processes")
    args = parser.parse_args()
    levels = [int(x) for x in args.subscribers.split(",")]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # one socket per board
    orders = args.events * len(levels)

    def on_database(database_url: str) -> tuple[str, list[str]]:
        return database_url, asyncio.run(prepare(database_url, orders))

    results = []
    with own_server(args.workers, on_database=on_database, with_worker=True) as (url, (database_url, order_ids)):
        cookie = staff_cookie(url)
        for n, subscribers in enumerate(levels):
            batch = order_ids[n * args.events : (n + 1) * args.events]
            results.append(asyncio.run(level(url, database_url, cookie, subscribers, batch, args.rate)))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    report = {"workers": args.workers, "rate": args.rate, "levels": results}
    (out / "board.json").write_text(json.dumps(report, indent=2))
    print(f"board streams on one store, {args.events} order moves at {args.rate:g}/s, {args.workers} web process(es)")
    header = ["boards", "p50 ms", "p95 ms", "p99 ms", "max ms", "missed", "twice", "connect s"]
    print(" ".join(f"{h:>9}" for h in header))
    for r in results:
        cells = [r["subscribers"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["max_ms"]]
        cells += [r["missed"], r["duplicates"], r["connect_s"]]
        print(" ".join(f"{c:>9}" for c in cells))


if __name__ == "__main__":
    main()
