"""Order list latency on a store with 100,000 orders: the API and the staff list page, common filters.

    .venv/bin/python bench/orders_query.py [--orders 100000] [--requests 200] [--workers 1]

Starts its own `till serve` (TEST_DATABASE_URL / TEST_REDIS_URL, or embedded servers) on a fresh
database, writes the orders straight into it (statuses, channels and payment states in believable
proportions, spread over a year, a third delivered to a named recipient), ANALYZEs, signs the demo
manager in for the staff page, then times each query one request at a time and prints
p50/p95/max per query. Target (issue #6): p95 < 50 ms at 100,000 orders. Writes
bench/results/orders_query.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_baseline import own_server, staff_cookie  # noqa: E402
from bench.lean_http import LeanConnection  # noqa: E402

SEED = """
    INSERT INTO orders (id, store_id, channel, status, payment_status, fulfilment_status, fulfilment_method,
                        email, phone, currency, subtotal_minor, discount_minor, shipping_minor, tax_minor,
                        total_minor, prices_include_tax, shipping, address, snapshot_id, access_token, placed_at,
                        created_at, updated_at)
    SELECT gen_random_uuid(), :store,
           (ARRAY['web', 'web', 'web', 'pos', 'ingested'])[1 + n % 5],
           CASE WHEN n > :orders - 40 THEN (ARRAY['placed', 'accepted', 'in_progress', 'ready'])[1 + n % 4]
                WHEN n % 50 = 0 THEN 'cancelled' ELSE 'completed' END,
           CASE WHEN n % 50 = 0 THEN 'refunded' ELSE 'paid' END,
           CASE WHEN n > :orders - 40 OR n % 50 = 0 THEN 'unfulfilled' ELSE 'picked_up' END,
           'pickup', 'shopper' || (n % 5000) || '@example.com', '', 'EUR', 1190, 0, 0, 190, 1190, true,
           '{"code": "pickup"}'::jsonb,
           CASE WHEN n % 3 = 0 THEN jsonb_build_object(
               'name', (ARRAY['Ann', 'Ben', 'Cleo', 'Dan', 'Eve'])[1 + n % 5] || ' Shopper' || (n % 5000),
               'line1', n || ' Main St', 'city', 'Berlin', 'postal_code', '10115', 'country', 'DE') END,
           gen_random_uuid(), md5(n::text),
           now() - make_interval(secs => (:orders - n) * 315.0), now(), now()
    FROM generate_series(1, :orders) n
"""


async def seed(database_url: str, orders: int) -> str:
    """The orders, an API token, fresh statistics; returns the token."""
    from sqlalchemy import select, text

    from app.core.db import create_engine, session_maker
    from app.core.rbac import Role
    from app.stores.models import Store
    from app.stores.services import ApiTokenService

    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            store_id = await conn.scalar(select(Store.id).where(Store.slug == "demo"))
            assert store_id is not None, "the demo store is seeded by own_server"
            await conn.execute(text(SEED), {"store": store_id, "orders": orders})
            await conn.commit()
            await conn.execute(text("ANALYZE"))
            await conn.commit()  # the statistics are rows of pg_statistic: rolled back with the transaction
        async with session_maker(engine)() as session, session.begin():
            _, secret = await ApiTokenService.for_store(session, store_id).issue(
                name="bench", role=Role.OWNER, created_by=None
            )
    finally:
        await engine.dispose()
    return secret


async def measure(url: str, secret: str, cookie: str, requests: int) -> dict[str, dict[str, float]]:
    client = LeanConnection(url, {"authorization": f"Bearer {secret}"})
    staff = LeanConnection(url, {"cookie": cookie})
    first = (await client.request("GET", "/api/v1/orders?limit=50")).json()
    number = first["items"][0]["number"]
    cursor = first["next_cursor"]
    for _ in range(19):  # a cursor 20 pages deep
        cursor = (await client.request("GET", f"/api/v1/orders?limit=50&cursor={cursor}")).json()["next_cursor"]
    week_ago = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(time.time() - 7 * 86400))
    queries = {
        "newest 50": "/api/v1/orders?limit=50",
        "page 21": f"/api/v1/orders?limit=50&cursor={cursor}",
        "status=placed": "/api/v1/orders?status=placed",
        "status=completed": "/api/v1/orders?status=completed",
        "payment=refunded": "/api/v1/orders?payment_status=refunded",
        "channel=pos": "/api/v1/orders?channel=pos",
        "last 7 days": f"/api/v1/orders?placed_from={week_ago}",
        "q=#number": f"/api/v1/orders?q=%23{number}",
        "q=email": "/api/v1/orders?q=shopper42@",
        "q=name": "/api/v1/orders?q=cleo%20shopper42",
        "page: newest": "/staff/orders",
        "page: paid, 7 days": f"/staff/orders?payment=paid&since={week_ago[:10]}",
        "page: q=name": "/staff/orders?q=cleo%20shopper42",
    }
    results = {}
    for name, path in queries.items():
        timings = []
        for _ in range(requests):
            started = time.perf_counter()
            reply = await (staff if path.startswith("/staff") else client).request("GET", path)
            timings.append(time.perf_counter() - started)
            assert reply.status == 200, (name, reply.status, reply.body[:200])
        cuts = statistics.quantiles(timings, n=100)
        results[name] = {
            "p50_ms": round(cuts[49] * 1000, 1),
            "p95_ms": round(cuts[94] * 1000, 1),
            "max_ms": round(max(timings) * 1000, 1),
        }
    await client.close()
    await staff.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with own_server(args.workers, on_database=lambda url: asyncio.run(seed(url, args.orders))) as (url, secret):
        results = asyncio.run(measure(url, secret, staff_cookie(url), args.requests))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "orders_query.json").write_text(json.dumps({"orders": args.orders, "results": results}, indent=2))
    print(
        f"GET /api/v1/orders and /staff/orders on {args.orders:,} orders, {args.requests} requests each, one at a time"
    )
    print(f"{'query':<20} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, r in results.items():
        print(f"{name:<20} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['max_ms']:>8}")


if __name__ == "__main__":
    main()
