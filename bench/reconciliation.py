"""Nightly reconciliation of one store with many payments: time and peak memory at two sizes (memory must stay flat).

    .venv/bin/python bench/reconciliation.py [--sizes 20000 100000] [--drifts 10]

Uses DATABASE_URL (a database it migrates; default: a fresh ``till_scratch_recon`` on 127.0.0.1) and REDIS_URL
(default redis://127.0.0.1:6379/4). For each size it makes a new store whose sandbox ledger (Redis) and local ledger
(``payment_intents``, written with COPY) hold ``size`` captured payments of the day, with ``--drifts`` of each kind
injected (a charge never recorded, a capture the provider lacks, an amount, a refund and a fee mismatch), then runs
``app.reconciliation.services.reconcile`` for the day and checks the report found exactly the injected drifts.

Measured: the run's wall time, and Python's peak traced memory during the run (tracemalloc: everything the run
allocates; the provider's rows stream through one page at a time and PostgreSQL does the matching) next to the
process's peak RSS. Writes bench/results/reconciliation.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCRATCH = "till_scratch_recon"
KINDS = ("missing_locally", "missing_at_provider", "amount_mismatch", "refund_missing_locally", "fee_mismatch")


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", SCRATCH], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", SCRATCH], check=True)
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{SCRATCH}"


def _migrate(url: str) -> None:
    from alembic import command

    from app.core.db import alembic_config

    command.upgrade(alembic_config(url), "head")


async def _prepare(url: str, redis_url: str, size: int, drifts: int, day: datetime) -> tuple[uuid.UUID, Any, Any]:
    from redis.asyncio import Redis

    from app.core import pg
    from app.core.db import create_engine, session_maker
    from app.core.money import Money
    from app.payments.fees import processing_fee
    from app.payments.sandbox import ACCOUNT_PAYMENTS_PREFIX
    from app.payments.sandbox._state import _PI_PREFIX
    from app.stores.services import UserService

    engine = create_engine(url, pool_size=2)
    redis = Redis.from_url(redis_url)
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    async with session_maker(engine)() as session, session.begin():
        store = await UserService(session).create_store(name="Bench", slug=slug, currency="EUR", timezone="UTC")
    store_id = store.id
    base = int(day.timestamp()) + 60
    local_rows = []
    index_key = f"{ACCOUNT_PAYMENTS_PREFIX}{store_id}:payments"
    pipe = redis.pipeline(transaction=False)
    for i in range(size):
        ref = f"sb_{store_id.hex[:8]}{i:012d}"
        amount = 1000 + i % 5000
        created = base + (i * 80_000) // size
        fee = processing_fee("sandbox", Money(amount, "EUR")).amount_minor
        state: dict[str, Any] = {
            "id": ref, "status": "captured", "currency": "EUR", "amount": amount, "captured": amount, "refunded": 0,
            "capture": True, "flow": "", "brand": "visa", "last4": "4242", "decline_code": "", "message": "",
            "action_url": "", "created": created,
        }  # fmt: skip
        kind = KINDS[i % len(KINDS)] if i < drifts * len(KINDS) else ""
        if kind == "amount_mismatch":
            state["captured"] = amount - 100
        elif kind == "refund_missing_locally":
            state["refunded"], state["status"] = 200, "captured"
        elif kind == "fee_mismatch":
            state["fee"] = fee + 7
        if kind != "missing_at_provider":
            pipe.set(_PI_PREFIX + ref, json.dumps(state), ex=3600)
            pipe.zadd(index_key, {ref: created})
        if kind != "missing_locally":
            at = datetime.fromtimestamp(created, UTC)
            local_rows.append(
                (uuid.uuid4(), store_id, "sandbox", ref, "captured", "automatic", "EUR", amount, amount, 0, fee, at, at)
            )
        if i % 5000 == 4999:
            await pipe.execute()
            pipe = redis.pipeline(transaction=False)
    await pipe.execute()
    await redis.expire(index_key, 3600)
    defaults = ("visa", "4242", 1, 0, 0, "", "", 0, 0, 0)
    async with pg.transaction(engine) as conn:
        await conn.copy_records_to_table(
            "payment_intents",
            records=[row + defaults for row in local_rows],
            columns=[
                "id", "store_id", "provider", "provider_ref", "status", "capture_method", "currency", "amount_minor",
                "captured_minor", "refunded_minor", "processing_fee_minor", "created_at", "updated_at", "card_brand",
                "card_last4", "version", "pending_amount_minor", "application_fee_minor", "connected_account",
                "transfer_ref", "disputed_minor", "dispute_lost_minor", "dispute_fees_minor",
            ],
        )  # fmt: skip
        await conn.execute("ANALYZE payment_intents")
    return store_id, engine, redis


async def run_one(url: str, redis_url: str, size: int, drifts: int) -> dict[str, Any]:
    from app.core.db import dispose, session_maker
    from app.reconciliation import services
    from app.reconciliation.sources import SandboxLedger

    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    store_id, engine, redis = await _prepare(url, redis_url, size, drifts, day)
    try:
        sessions = session_maker(engine)
        window = services.DayWindow(day, day + timedelta(days=1))
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        started = time.perf_counter()
        run = await services.reconcile(
            sessions, store_id, SandboxLedger(redis, store_id), window=window, trigger="bench"
        )
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert run.status == "succeeded", run.error
        found = {k: v for k, v in run.totals.items() if v and k != "matched"}
        assert found == dict.fromkeys(KINDS, drifts), found
        assert run.totals["matched"] == size - 2 * drifts - 3 * drifts, run.totals
        return {
            "payments": size,
            "seconds": round(seconds, 2),
            "per_second": round(size / seconds),
            "python_peak_mib": round(peak / 2**20, 2),
            "process_max_rss_mib": round(rss_after / 1024, 1),
            "rss_growth_mib": round((rss_after - rss_before) / 1024, 1),
            "drifts_found": found,
            "matched": run.totals["matched"],
        }
    finally:
        await redis.aclose()
        await dispose(engine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--drifts", type=int, default=10, help="injected drifts of each kind")
    args = parser.parse_args()
    url = _database_url()
    _migrate(url)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/4")
    results = [asyncio.run(run_one(url, redis_url, size, args.drifts)) for size in args.sizes]
    for r in results:
        print(
            f"{r['payments']:>7} payments: {r['seconds']:>6.2f} s ({r['per_second']}/s), python peak "
            f"{r['python_peak_mib']} MiB, max RSS {r['process_max_rss_mib']} MiB; drifts {r['drifts_found']}"
        )
    out = ROOT / "bench" / "results" / "reconciliation.json"
    out.write_text(json.dumps({"at": datetime.now(UTC).isoformat(), "runs": results}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
