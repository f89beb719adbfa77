"""Checkout throughput: N concurrent shoppers (closed loop), each doing quote + complete via /api/v1.

    .venv/bin/python bench/checkout.py [--levels 1,10,20,50] [--seconds 15] [--workers 2] [--promo]

Starts its own `till serve` (TEST_DATABASE_URL / TEST_REDIS_URL, or embedded servers) on a fresh
database with the demo store and plenty of stock, and an API token. Carts of 3 lines are written straight into the
database before the run, enough for the run at 1,000/s (so the server spends its time on what is measured).
A warm-up (--warmup seconds, 10 shoppers, not measured) gives the store an order history; each level starts after
an ANALYZE (as autovacuum would have run one). Each shopper iteration takes the next cart and times quote + complete
with the sandbox provider.
Prints completions/s and p50/p95/p99 of quote+complete per concurrency level, and the CPU time per checkout (from
/proc) of the web processes, PostgreSQL's backends for the bench database and its own processes, the Redis server,
this load generator and the rest of the machine, with the rate that cost allows on this machine's cores (on a
machine shared with other load the cost moves far less than completions/s); writes bench/results/checkout.json.

--promo: every level runs twice on the same server, plain and then with a promotion code on every quote (BENCH10:
10 % off with a usage limit and a per-shopper limit, so each completion locks and counts the promotion's row and the
shopper's, ADR 0006), and prints the two side by side; writes bench/results/checkout-promo.json. With
--unlimited the code has no limits (no row is locked or counted: the claim only records each use).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_baseline import own_server  # noqa: E402
from bench.lean_http import LeanConnection  # noqa: E402

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


FASTEST_RATE = 1_000  # completions/s no 2-core machine reaches here (best seen: 570/s); sizes the prepared carts
PROMO_CODE = "BENCH10"


def carts_needed(warmup: float, seconds: float, levels: int, promo: bool) -> int:
    """Enough prepared carts that no level runs out at ``FASTEST_RATE`` (each level runs twice with --promo)."""
    return max(20_000, math.ceil(FASTEST_RATE * (warmup + seconds * levels * (2 if promo else 1))))


async def prepare(
    database_url: str, variant_count: int, cart_count: int, promo: bool = False, unlimited: bool = False
) -> tuple[str, list[str], list[str]]:
    """Lots of stock for the demo store's variants, an owner API token, and ready carts of 3 lines; with ``promo``,
    the promotion BENCH10 (10 % off, 10 million uses in all and one per shopper, or no limits)."""
    from sqlalchemy import select, text, update

    from app.catalog.models import Variant
    from app.core.db import create_engine, session_maker
    from app.core.rbac import Role
    from app.core.tenancy import bind_store
    from app.inventory.models import StockLevel
    from app.promotions.models import Promotion
    from app.stores.models import Store
    from app.stores.services import ApiTokenService

    engine = create_engine(database_url, pool_size=1)
    try:
        async with session_maker(engine)() as session, session.begin():
            store = await session.scalar(select(Store).where(Store.slug == "demo"))
            assert store is not None
            bind_store(session, store.id)
            await session.execute(update(StockLevel).values(on_hand=10_000_000))
            variants = [
                str(v)
                for v in (await session.scalars(select(Variant.id).order_by(Variant.sku).limit(variant_count))).all()
            ]
            _, secret = await ApiTokenService.for_store(session, store.id).issue(
                name="bench", role=Role.OWNER, created_by=None
            )
            if promo:
                session.add(
                    Promotion(
                        name="Bench ten", code=PROMO_CODE, kind="percentage", percent_bps=1000,
                        usage_limit=None if unlimited else 10_000_000, per_customer_limit=None if unlimited else 1,
                    )
                )  # fmt: skip
            tokens = (
                await session.scalars(
                    text(
                        "INSERT INTO carts (id, store_id, token, currency, status, created_at, updated_at) "
                        "SELECT gen_random_uuid(), :store, 'bench-' || n, 'EUR', 'open', now(), now() "
                        "FROM generate_series(1, :carts) n RETURNING token"
                    ),
                    {"store": store.id, "carts": cart_count},
                )
            ).all()
            await session.execute(
                text(
                    "INSERT INTO cart_lines (id, store_id, cart_id, variant_id, quantity, created_at, updated_at) "
                    "SELECT gen_random_uuid(), c.store_id, c.id, "
                    "(CAST(:variants AS uuid[]))[1 + (x.n * 3 + k) % :count], 1, now(), now() "
                    "FROM carts c CROSS JOIN generate_series(0, 2) k "
                    "CROSS JOIN LATERAL (SELECT CAST(substr(c.token, 7) AS int) AS n) x WHERE c.token LIKE 'bench-%'"
                ),
                {"variants": variants, "count": len(variants)},
            )
    finally:
        await engine.dispose()
    return secret, variants, list(tokens)


async def shopper(
    client: LeanConnection,
    carts: list[str],
    deadline: float,
    latencies: list[float],
    errors: list[str],
    code: str | None = None,
) -> None:
    while time.perf_counter() < deadline and carts:
        cart = carts.pop()
        started = time.perf_counter()
        try:
            await one_checkout(client, cart, started, latencies, errors, code)
        except (OSError, asyncio.IncompleteReadError) as exc:  # counted, not fatal: the run reports how many
            errors.append(f"transport {type(exc).__name__}")
            await client.close()


async def one_checkout(
    client: LeanConnection,
    cart: str,
    started: float,
    latencies: list[float],
    errors: list[str],
    code: str | None = None,
) -> None:
    body = {"cart_token": cart, "email": f"{cart}@example.com", **({"code": code} if code else {})}
    quote = await client.request("POST", "/api/v1/checkout/quote", json=body)
    if quote.status != 201:
        errors.append(f"quote {quote.status}")
        return
    body = quote.json()
    if code and not body["discount_minor"]:
        errors.append("quote without the discount")
        return
    done = await client.request(
        "POST",
        "/api/v1/checkout/complete",
        json={"snapshot_id": body["id"], "amount_minor": body["total_minor"], "card": CARD},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    if done.status == 201:
        latencies.append(time.perf_counter() - started)
    else:
        errors.append(f"complete {done.status}")


def _process_tree(root: int) -> list[int]:
    """``root`` and its descendants (Linux /proc): the `till serve` supervisor and its web processes."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (None once the process has ended): ppid is [1],
    utime and stime [11] and [12], the reaped children's cutime and cstime [13] and [14]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` so far (processes that ended since are skipped)."""
    total = 0
    for pid in pids:
        if (fields := _stat(pid)) is not None:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _listener_pid(port: int) -> int | None:
    """The process listening on TCP ``port`` on this machine (Linux /proc): the Redis or Valkey server."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # state LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(str(fd.readlink()) in inodes for fd in (entry / "fd").iterdir()):
                return int(entry.name)
        except OSError:
            continue
    return None


def _redis_pid(serve_pid: int) -> int | None:
    """The Redis (Valkey) server the web processes use: REDIS_URL from `till serve`'s environment."""
    from urllib.parse import urlsplit

    try:
        environ = Path(f"/proc/{serve_pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    url = next((v[len(b"REDIS_URL=") :].decode() for v in environ if v.startswith(b"REDIS_URL=")), None)
    port = urlsplit(url).port if url else None
    return _listener_pid(port) if port else None


def _machine_seconds() -> tuple[float, float, float]:
    """(busy, steal, all) CPU seconds of every CPU so far (/proc/stat): what the whole machine spent, kernel
    included, and how much of it the hypervisor gave to other guests (steal)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    steal = fields[7] if len(fields) > 7 else 0
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:8]) - idle - steal) / tick, steal / tick, sum(fields[:8]) / tick


def _postgres_seconds() -> float:
    """CPU seconds of all of PostgreSQL on this machine so far: every live ``postgres`` process, and the postmaster's
    reaped children (backends and autovacuum workers that came and went)."""
    postgres = {int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit() and _comm(e) == "postgres"}
    total = 0
    for pid in postgres:
        if (fields := _stat(pid)) is None:
            continue
        total += int(fields[11]) + int(fields[12])
        if int(fields[1]) not in postgres:  # the postmaster: with the children it has reaped
            total += int(fields[13]) + int(fields[14])
    return total / os.sysconf("SC_CLK_TCK")


def _comm(entry: Path) -> str:
    try:
        return (entry / "comm").read_text().strip()
    except OSError:
        return ""


def _serve_pid(url: str) -> int | None:
    port = url.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve" in cmdline and port.encode() in cmdline:
                return int(entry.name)
    return None


async def _backend_pids(database_url: str) -> list[int]:
    """The PostgreSQL backends connected to the bench's database (the web processes' pools)."""
    from sqlalchemy import text

    from app.core.db import create_engine

    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            )
            return [int(r[0]) for r in rows]
    finally:
        await engine.dispose()


async def _database_work(database_url: str) -> tuple[int, int]:
    """(shared buffers touched, rows scanned or fetched) by the bench database's backends so far, from
    pg_stat_database: work that does not change with the machine's speed. Backends report at the end of each
    transaction at most once a second, so a level's counts may shift by that second's share."""
    from sqlalchemy import text

    from app.core.db import create_engine

    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT blks_hit + blks_read, tup_returned + tup_fetched FROM pg_stat_database"
                        " WHERE datname = current_database()"
                    )
                )
            ).one()
            return int(row[0]), int(row[1])
    finally:
        await engine.dispose()


async def analyze(database_url: str) -> None:
    from sqlalchemy import text

    from app.core.db import create_engine

    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()  # the statistics are rows of pg_statistic: rolled back with the transaction
    finally:
        await engine.dispose()


async def level(
    url: str, secret: str, carts: list[str], concurrency: int, seconds: float, code: str | None = None
) -> dict[str, float]:
    clients = [LeanConnection(url, {"authorization": f"Bearer {secret}"}) for _ in range(concurrency)]
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(shopper(client, carts, deadline, latencies, errors, code) for client in clients))
    elapsed = time.perf_counter() - started
    await asyncio.gather(*(client.close() for client in clients))
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "concurrency": concurrency,
        "completions": len(latencies),
        "errors": len(errors),
        "completions_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(cuts[49] * 1000, 1),
        "p95_ms": round(cuts[94] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,10,20,50")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=2, help="web processes")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of unmeasured checkouts first")
    parser.add_argument(
        "--variants", type=int, default=12, help="how many of the demo store's variants the carts spread over"
    )
    parser.add_argument("--carts", type=int, default=0, help="carts to prepare (default: enough for the run)")
    parser.add_argument("--promo", action="store_true", help="each level also with a promotion code, side by side")
    parser.add_argument("--unlimited", action="store_true", help="with --promo: a code without usage limits")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    cart_count = args.carts or carts_needed(args.warmup, args.seconds, len(levels), args.promo)
    results = []
    promo_results = []
    with own_server(
        args.workers,
        on_database=lambda url: (url, asyncio.run(prepare(url, args.variants, cart_count, args.promo, args.unlimited))),
    ) as (url, prepared):
        database_url, (secret, _, carts) = prepared
        # A store that has taken orders before: the order, payment and checkout tables are not empty, and
        # their statistics say so (starting from empty tables, the planner keeps choosing sequential scans
        # for lookups, foreign-key checks included, while the tables grow under the run).
        asyncio.run(level(url, secret, carts, 10, args.warmup))
        serve_pid = _serve_pid(url)
        for concurrency in levels:
            # Statistics as fresh as autovacuum keeps them on a production database (this machine's runs with
            # autovacuum off); ANALYZE also makes the pooled connections plan their prepared statements again.
            asyncio.run(analyze(database_url))
            # What a checkout costs, process by process and for the whole machine (kernel included): a figure that
            # other load on a shared machine disturbs far less than completions/s. The machine's busy share says
            # whether it was full.
            web = _process_tree(serve_pid) if serve_pid else []
            backends = asyncio.run(_backend_pids(database_url))
            redis = [pid] if serve_pid and (pid := _redis_pid(serve_pid)) else []
            if not redis:
                print("the Redis server's process was not found: its CPU is counted as the machine's", file=sys.stderr)
            web_cpu, pg_cpu, redis_cpu = _cpu_seconds(web), _cpu_seconds(backends), _cpu_seconds(redis)
            work = asyncio.run(_database_work(database_url))
            postgres_cpu, client_cpu, machine = _postgres_seconds(), time.process_time(), _machine_seconds()
            row = asyncio.run(level(url, secret, carts, concurrency, args.seconds))
            done = max(row["completions"], 1)
            after = asyncio.run(_database_work(database_url))
            buffers, rows_read = (now - then for now, then in zip(after, work, strict=True))
            row["buffers"], row["rows_read"] = round(buffers / done), round(rows_read / done)
            opened = [pid for pid in asyncio.run(_backend_pids(database_url)) if pid not in backends]
            row["web_cpu_ms"] = round((_cpu_seconds(web) - web_cpu) * 1000 / done, 2)
            # the bench database's backends, with those the pools opened during the level (all of their CPU)
            row["pg_cpu_ms"] = round((_cpu_seconds(backends) - pg_cpu + _cpu_seconds(opened)) * 1000 / done, 2)
            all_pg_ms = (_postgres_seconds() - postgres_cpu) * 1000 / done
            row["pg_own_cpu_ms"] = round(max(all_pg_ms - row["pg_cpu_ms"], 0.0), 2)  # WAL writer, autovacuum, ...
            row["redis_cpu_ms"] = round((_cpu_seconds(redis) - redis_cpu) * 1000 / done, 2)
            row["client_cpu_ms"] = round((time.process_time() - client_cpu) * 1000 / done, 2)
            busy, steal, elapsed = (now - then for now, then in zip(_machine_seconds(), machine, strict=True))
            row["machine_cpu_ms"] = round(busy * 1000 / done, 2)
            row["machine_busy_pct"] = round(100 * busy / max(elapsed, 1e-9), 1)
            row["steal_pct"] = round(100 * steal / max(elapsed, 1e-9), 1)
            results.append(row)
            if args.promo:
                asyncio.run(analyze(database_url))
                promo_results.append(asyncio.run(level(url, secret, carts, concurrency, args.seconds, PROMO_CODE)))
            if not carts:  # the level's shoppers stopped early: its rate and costs would be wrong
                sys.exit(f"ran out of the {cart_count:,} prepared carts in the {concurrency}-shopper level: --carts")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    name = "checkout-promo.json" if args.promo else "checkout.json"
    payload = {"workers": args.workers, "seconds": args.seconds, "levels": results}
    if args.promo:
        payload["promo_levels"] = promo_results
    (out / name).write_text(json.dumps(payload, indent=2))
    print(f"quote + complete, sandbox provider, {args.workers} web process(es), {args.seconds:.0f} s per level")
    print(
        f"{'':>8} {'shoppers':>8} {'done/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}"
        "   CPU ms per checkout: web    pg pg-own redis bench  rest   all   busy % steal %"
    )
    parts = ("web_cpu_ms", "pg_cpu_ms", "pg_own_cpu_ms", "redis_cpu_ms", "client_cpu_ms")
    for i, r in enumerate(results):
        rows = [("plain", r)] + ([(PROMO_CODE, promo_results[i])] if args.promo else [])
        for label, row in rows:
            cells = [label, row["concurrency"], row["completions_per_s"], row["p50_ms"], row["p95_ms"], row["p99_ms"]]
            cpu = ""
            if label == "plain":
                costs = [row[part] for part in parts]
                rest = round(row["machine_cpu_ms"] - sum(costs), 2)  # the kernel's own, and anything else running
                cpu = f" {'':>20}" + "".join(f" {c:>5}" for c in [*costs, rest, row["machine_cpu_ms"]])
                cpu += f" {row['machine_busy_pct']:>8} {row['steal_pct']:>7}"
            print(" ".join(f"{c:>8}" for c in cells), f"{row['errors']:>7}{cpu}")
    cores = os.cpu_count() or 1
    for r in results:  # what PostgreSQL did per checkout: the same on a fast or a slow machine
        done_by_pg = f"PostgreSQL touched {r['buffers']} buffers and read {r['rows_read']} rows per checkout"
        print(f"{r['concurrency']} shoppers: {done_by_pg}")
    for r in results:  # what the measured cost allows on this machine, were all of it spent on checkouts
        if r["machine_cpu_ms"]:
            ceiling = cores * 1000 / r["machine_cpu_ms"]
            spent = f"the machine spent {r['machine_cpu_ms']:.2f} ms of CPU per checkout"
            print(f"{r['concurrency']} shoppers: {spent} (at most {ceiling:.0f}/s on {cores} cores)")
    by_level = {r["concurrency"]: r for r in results}
    if 20 in by_level and 50 in by_level:  # issue 20's targets, on a quiet machine
        met = by_level[50]["completions_per_s"] >= 400 and by_level[20]["p99_ms"] < 250
        print(f"target >= 400 completions/s at 50 shoppers, p99 < 250 ms at 20: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
