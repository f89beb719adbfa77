"""Gift card lookups with 1,000,000 cards, and a brute-force loop the limiter stops.

    .venv/bin/python bench/giftcard_lookup.py [--cards 1000000] [--lookups 5000] [--concurrency 20] [--guesses 300]

Starts its own `till serve` (TEST_DATABASE_URL / TEST_REDIS_URL, or embedded servers) on a fresh database with the
demo store and loads ``--cards`` gift cards into it (each an account with its code's HMAC, last 4 and balance, and
its ``issue`` ledger entry; COPY, before the clock starts), keeping a sample of their codes.

Measured:
1. the database lookup alone (``find_gift_card``: the HMAC under every key version, one indexed statement), one
   connection, ``--lookups`` right codes: p50 / p99;
2. the tablet's lookup over HTTP (``GET /pos/api/gift-cards/lookup``, a signed-in manager, the limiter checked on
   every call), one client (latency) and ``--concurrency`` clients (throughput): lookups per second, p50 / p99
   (target p99 < 10 ms);
3. a brute-force loop: ``--guesses`` random well-formed codes posted to the shopper's balance page from one
   address: how many found a card (must be 0), how many were answered "not found" before the limiter closed, and
   how many got 429 after (all the rest).

Prints the figures; writes bench/results/giftcard_lookup.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SECRET_KEY", "giftcard-bench-secret-" + "k" * 32)  # the server and this loader agree

from bench.http_baseline import own_server, staff_cookie  # noqa: E402


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def load_cards(database_url: str, count: int, sample: int) -> dict[str, Any]:
    """``count`` cards of the demo store (COPY), and ``sample`` of their codes."""
    import asyncpg

    from app.config import load_settings
    from app.core.encryption import current_keyring, install_keyring
    from app.stored_value import codes

    install_keyring(load_settings())
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        store_id = await conn.fetchval("SELECT id FROM stores WHERE slug = 'demo'")
        version = current_keyring().newest_version
        kept: list[str] = []
        now = datetime.now(UTC)
        started = time.perf_counter()
        chunk = 100_000
        for offset in range(0, count, chunk):
            accounts, entries = [], []
            for _ in range(min(chunk, count - offset)):
                code = codes.new_code()
                if len(kept) < sample:
                    kept.append(code)
                account_id = uuid.uuid4()
                accounts.append((account_id, store_id, "gift_card", "EUR", codes.code_hash(store_id, code), version,
                                 codes.last4(code), "active", 2500, 0, 2500, "bench"))  # fmt: skip
                entries.append((uuid.uuid4(), store_id, account_id, "issue", 2500, 2500, "bench", "bench"))
            await conn.copy_records_to_table(
                "stored_value_accounts",
                records=[(*a, now, now) for a in accounts],
                columns=["id", "store_id", "kind", "unit", "code_hash", "code_key_version", "code_last4", "status",
                         "balance_minor", "held_minor", "issued_minor", "note", "created_at", "updated_at"],
            )  # fmt: skip
            await conn.copy_records_to_table(
                "stored_value_entries",
                records=[(*e, now, now) for e in entries],
                columns=[
                    "id",
                    "store_id",
                    "account_id",
                    "kind",
                    "amount_minor",
                    "delta_minor",
                    "reason",
                    "actor",
                    "created_at",
                    "updated_at",
                ],
            )
        await conn.execute("ANALYZE stored_value_accounts")
        return {"store_id": str(store_id), "codes": kept, "load_s": round(time.perf_counter() - started, 1)}
    finally:
        await conn.close()


async def db_lookups(database_url: str, store_id: str, sample: list[str], n: int) -> dict[str, float]:
    import asyncpg

    from app.config import load_settings
    from app.core.encryption import install_keyring
    from app.stored_value.instruments import find_gift_card

    install_keyring(load_settings())
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        times = []
        for i in range(n):
            started = time.perf_counter()
            card = await find_gift_card(conn, uuid.UUID(store_id), sample[i % len(sample)])
            times.append((time.perf_counter() - started) * 1000)
            assert card is not None
        return {"p50_ms": round(_p(times, 0.5), 3), "p99_ms": round(_p(times, 0.99), 3)}
    finally:
        await conn.close()


async def http_lookups(url: str, cookie: str, sample: list[str], n: int, concurrency: int) -> dict[str, float]:
    import httpx

    times: list[float] = []
    statuses: Counter[int] = Counter()
    queue = list(range(n))

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, headers={"cookie": cookie}, timeout=30) as http:
            await http.get("/pos/api/gift-cards/lookup", params={"code": sample[0]})  # warm the connection
            while queue:
                i = queue.pop()
                started = time.perf_counter()
                answer = await http.get("/pos/api/gift-cards/lookup", params={"code": sample[i % len(sample)]})
                times.append((time.perf_counter() - started) * 1000)
                statuses[answer.status_code] += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "lookups_per_s": round(n / elapsed, 1),
        "p50_ms": round(_p(times, 0.5), 2),
        "p99_ms": round(_p(times, 0.99), 2),
        "statuses": dict(statuses),  # type: ignore[dict-item]
    }


async def brute_force(url: str, guesses: int) -> dict[str, Any]:
    import httpx

    from app.stored_value.codes import ALPHABET, LENGTH

    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        page = await http.get("/s/demo/gift-card")
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        statuses: list[int] = []
        for _ in range(guesses):
            code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
            answer = await http.post("/s/demo/gift-card", data={"code": code, "_csrf_token": token[1]})
            statuses.append(answer.status_code)
    first_429 = statuses.index(429) if 429 in statuses else None
    return {
        "guesses": guesses,
        "hits": statuses.count(200),
        "not_found_before_limit": statuses.count(404),
        "limited_429": statuses.count(429),
        "only_429_after_limit": first_429 is not None and all(s == 429 for s in statuses[first_429:]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cards", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--guesses", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    database: dict[str, Any] = {}

    def prepare(database_url: str) -> dict[str, Any]:
        loaded = asyncio.run(load_cards(database_url, args.cards, 2000))
        database.update(loaded, url=database_url)
        return loaded

    with own_server(args.workers, prepare) as (url, loaded):
        print(f"loaded {args.cards:,} cards in {loaded['load_s']} s")
        db = asyncio.run(db_lookups(database["url"], loaded["store_id"], loaded["codes"], args.lookups))
        print(f"database lookup: p50 {db['p50_ms']} ms, p99 {db['p99_ms']} ms")
        cookie = staff_cookie(url)
        single = asyncio.run(http_lookups(url, cookie, loaded["codes"], min(args.lookups, 1000), 1))
        print(f"HTTP lookup (1 client): {single['lookups_per_s']}/s, p50 {single['p50_ms']} ms, "
              f"p99 {single['p99_ms']} ms, statuses {single['statuses']}")  # fmt: skip
        http = asyncio.run(http_lookups(url, cookie, loaded["codes"], args.lookups, args.concurrency))
        print(f"HTTP lookup ({args.concurrency} clients): {http['lookups_per_s']}/s, p50 {http['p50_ms']} ms, "
              f"p99 {http['p99_ms']} ms, statuses {http['statuses']}")  # fmt: skip
        brute = asyncio.run(brute_force(url, args.guesses))
        print(f"brute force: {brute}")
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result = {"cards": args.cards, "load_s": loaded["load_s"], "db": db, "http_one_client": single, "http": http,
              "brute_force": brute,
              "concurrency": args.concurrency, "workers": args.workers, "at": at}  # fmt: skip
    out = ROOT / "bench" / "results" / "giftcard_lookup.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    met = {k: v["p99_ms"] < 10 for k, v in (("database", db), ("http_one_client", single), ("http", http))}
    print(f"wrote {out.relative_to(ROOT)}; p99 < 10 ms: {met}")


if __name__ == "__main__":
    main()
