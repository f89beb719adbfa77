"""The loyalty integrity check over a large store.

    .venv/bin/python bench/loyalty_integrity.py [--members 20000] [--orders-per-member 3]

On a fresh database (TEST_DATABASE_URL, or an embedded server) one store gets ``--members`` customers, each with a
points account, ``--orders-per-member`` paid orders of two lines each, the orders' accruals and their ``issue``
ledger entries (set-based INSERTs before the clock starts). Then ``LoyaltyMaintenance.check_integrity`` runs once
(cold) and twice more: the time of each run, the rows checked and the drift found (must be 0).

Prints the figures; writes bench/results/loyalty_integrity.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_SEED = """
WITH c AS (
    INSERT INTO customers (id, store_id, email, name, phone, stripe_customer_id, created_at, updated_at)
    SELECT gen_random_uuid(), $1, 'm' || g || '@example.com', '', '', '', now(), now()
    FROM generate_series(1, $2) g RETURNING id
), a AS (
    INSERT INTO stored_value_accounts (id, store_id, kind, unit, customer_id, code_key_version, code_last4, status,
                                       balance_minor, held_minor, issued_minor, note, created_at, updated_at)
    SELECT gen_random_uuid(), $1, 'loyalty_points', 'PTS', c.id, 0, '', 'active', 0, 0, 0, '', now(), now()
    FROM c RETURNING id, customer_id
)
SELECT count(*) FROM a
"""
_ORDERS = """
INSERT INTO orders (id, store_id, channel, status, payment_status, fulfilment_status, fulfilment_method, customer_id,
                    email, phone, currency, subtotal_minor, discount_minor, discounts, shipping_minor, tax_minor,
                    total_minor, prices_include_tax, shipping, access_token, placed_at, created_at, updated_at)
SELECT gen_random_uuid(), $1, 'web', 'placed', 'paid', 'unfulfilled', 'pickup', a.customer_id, 'x@example.com', '',
       'EUR', 2500, 0, '[]'::jsonb, 0, 0, 2500, true, '{}'::jsonb, 't', now(), now(), now()
FROM stored_value_accounts a, generate_series(1, $2) n WHERE a.store_id = $1
"""
_LINES = """
INSERT INTO order_lines (id, store_id, order_id, position, sku, name, quantity, unit_price_minor, discount_minor,
                         tax_minor, tax_rate_bps, total_minor, created_at, updated_at)
SELECT gen_random_uuid(), $1, o.id, p, 'SKU', 'Item', 1, 1250, 0, 0, 0, 1250, now(), now()
FROM orders o, generate_series(0, 1) p WHERE o.store_id = $1
"""
_ACCRUALS = """
INSERT INTO loyalty_accruals (id, store_id, order_id, customer_id, account_id, currency, eligible_minor, total_minor,
                              points_per_unit, multiplier_bps, tier, points, refunded_minor, reversed_points,
                              unrecovered_points, earned_at, created_at, updated_at)
SELECT gen_random_uuid(), $1, o.id, o.customer_id, a.id, 'EUR', 2500, 2500, 1, 10000, 'Member', 25, 0, 0, 0,
       now(), now(), now()
FROM orders o JOIN stored_value_accounts a ON a.customer_id = o.customer_id AND a.store_id = $1
WHERE o.store_id = $1
"""
_ENTRIES = """
INSERT INTO stored_value_entries (id, store_id, account_id, kind, amount_minor, delta_minor, reason, actor, order_id,
                                  created_at, updated_at)
SELECT gen_random_uuid(), $1, x.account_id, 'issue', 25, 25, $2 || ' #1', 'bench', x.order_id, now(), now()
FROM loyalty_accruals x WHERE x.store_id = $1
"""
_BALANCES = """
UPDATE stored_value_accounts a SET balance_minor = s.total, issued_minor = s.total
FROM (SELECT account_id, sum(delta_minor) AS total FROM stored_value_entries WHERE store_id = $1
      GROUP BY account_id) s
WHERE a.id = s.account_id
"""


async def run(database_url: str, members: int, per_member: int) -> dict[str, Any]:
    from app.core.db import create_engine, dispose, session_maker
    from app.core.pg import writer
    from app.stored_value.loyalty.ledger import EARNED
    from app.stored_value.loyalty.maintenance import LoyaltyMaintenance
    from app.stored_value.loyalty.program import Program
    from app.stored_value.loyalty.services import LoyaltyProgramService
    from app.stores.services import UserService

    engine = create_engine(database_url)
    sessions = session_maker(engine)
    async with sessions() as session, session.begin():
        store = await UserService(session).create_store(
            name="Bench", slug="bench", currency="EUR", timezone="Europe/Berlin"
        )
    started = time.perf_counter()
    async with sessions() as session, session.begin():
        await LoyaltyProgramService(session, store.id).save(Program(enabled=True).as_dict(), actor=None)
        conn = await writer(session)
        await conn.fetchval(_SEED, store.id, members)
        await conn.execute(_ORDERS, store.id, per_member)
        await conn.execute(_LINES, store.id)
        await conn.execute(_ACCRUALS, store.id)
        await conn.execute(_ENTRIES, store.id, EARNED)
        await conn.execute(_BALANCES, store.id)
        await conn.execute("ANALYZE")
    seeded = time.perf_counter() - started
    runs: list[dict[str, Any]] = []
    for _ in range(3):
        t0 = time.perf_counter()
        async with sessions() as session, session.begin():
            report = await LoyaltyMaintenance(session, store.id).check_integrity()
        runs.append(
            {
                "seconds": round(time.perf_counter() - t0, 3),
                "accounts": report.accounts,
                "orders": report.orders,
                "drift_points": report.drift_points,
            }
        )
    await dispose(engine)
    return {"members": members, "orders": members * per_member, "seed_seconds": round(seeded, 1), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--orders-per-member", type=int, default=3)
    args = parser.parse_args()
    from tests.servers import provision_servers

    with provision_servers() as (database_url, _redis_url):  # creates its database with asyncio.run: not in a loop
        result = asyncio.run(run(database_url, args.members, args.orders_per_member))
    for i, r in enumerate(result["runs"]):
        print(
            f"run {i + 1}: {r['seconds']:.2f} s for {r['accounts']} accounts and {r['orders']} orders, "
            f"drift {r['drift_points']} points"
        )
    out = ROOT / "bench" / "results" / "loyalty_integrity.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
