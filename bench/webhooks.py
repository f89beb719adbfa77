"""Webhook intake and processing: signed deliveries at increasing rates (open loop).

    .venv/bin/python bench/webhooks.py [--rates 200,500,1000,1500] [--seconds 10] [--workers 2]

Starts its own `till serve` and `till worker` (TEST_DATABASE_URL / TEST_REDIS_URL, or embedded servers) on
a fresh database. Each rate sends sandbox-signed ``payment_intent.succeeded`` events with fresh ids on a
fixed schedule from 64 keep-alive connections (a delivery waits for a free connection when all are busy, and
its ack time counts from when it was due, so a server falling behind shows in the ack times). Processing
runs for real (the worker looks the payment up; these name none, so each ends ``processed`` as ignored).

Prints per rate: accepted/s, p50/p99 of the acknowledgement, and p50/p99 of intake-to-processed lag
(``processed_at - received_at`` in the database, once every event of the rate is processed); writes
bench/results/webhooks.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import hmac
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_baseline import own_server  # noqa: E402
from bench.lean_http import LeanConnection  # noqa: E402

CONNECTIONS = 64
SECRET_KEY = os.environ.get("SECRET_KEY") or "bench-secret-key-" + "x" * 32


def _sandbox_secret() -> str:  # app.payments.registry.sandbox_webhook_secret, for this SECRET_KEY
    return "whsec_" + hmac.new(SECRET_KEY.encode(), b"sandbox-webhooks", hashlib.sha256).hexdigest()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def rate_level(url: str, rate: int, seconds: float, tag: str) -> dict[str, float]:
    secret = _sandbox_secret()
    pool: asyncio.Queue[LeanConnection] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        pool.put_nowait(LeanConnection(url))
    acks: list[float] = []
    failures: list[int] = []

    def signed(n: int) -> tuple[bytes, str]:
        now = int(time.time())
        event = {
            "id": f"evt_{tag}_{n}",
            "type": "payment_intent.succeeded",
            "created": now,
            "data": {"object": {"id": f"sb_bench_{uuid.uuid4().hex[:16]}", "status": "captured"}},
        }
        body = msgspec.json.encode(event)
        digest = hmac.new(secret.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
        return body, f"t={now},v1={digest}"

    # Signed before the clock starts: the provider's cost of making a delivery is not Till's to measure.
    total = int(rate * seconds)
    deliveries = [signed(n) for n in range(total)]

    async def deliver(n: int, due: float) -> None:
        body, signature = deliveries[n]
        conn = await pool.get()
        try:
            reply = await conn.request(
                "POST", "/webhooks/sandbox", content=body, headers={"stripe-signature": signature}
            )
        finally:
            pool.put_nowait(conn)
        acks.append(time.perf_counter() - due)
        if reply.status != 200:
            failures.append(reply.status)

    # The client's own garbage-collection pauses would delay sends and count as server latency: none while timing.
    gc.collect()
    gc.disable()
    start = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    for n in range(total):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(deliver(n, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    gc.enable()
    while not pool.empty():
        await (pool.get_nowait()).close()
    return {
        "rate": rate,
        "sent": total,
        "accepted": total - len(failures),
        "failures": len(failures),
        "accepted_per_s": (total - len(failures)) / elapsed,
        "ack_p50_ms": _pct(acks, 0.50) * 1000,
        "ack_p99_ms": _pct(acks, 0.99) * 1000,
    }


async def lag(database_url: str, tag: str, expected: int, within: float = 120.0) -> dict[str, float]:
    import asyncpg

    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + within
        while True:
            done = await conn.fetchval(
                "SELECT count(*) FROM webhook_events WHERE event_id LIKE $1 AND status = 'processed'", f"evt_{tag}_%"
            )
            if done >= expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        rows = await conn.fetch(
            "SELECT extract(epoch FROM processed_at - received_at) AS lag FROM webhook_events "
            "WHERE event_id LIKE $1 AND status = 'processed'",
            f"evt_{tag}_%",
        )
    finally:
        await conn.close()
    lags = [float(r["lag"]) for r in rows]
    return {
        "processed": len(lags),
        "lag_p50_ms": _pct(lags, 0.50) * 1000,
        "lag_p99_ms": _pct(lags, 0.99) * 1000,
        "lag_mean_ms": (statistics.fmean(lags) * 1000) if lags else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="200,500,1000,1500")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2, help="web processes")
    parser.add_argument("--no-worker", action="store_true", help="intake only: nothing processes the events")
    args = parser.parse_args()
    os.environ["SECRET_KEY"] = SECRET_KEY  # the server signs-checks with the secret derived from it
    results = []
    with own_server(args.workers, on_database=lambda url: url, with_worker=not args.no_worker) as (url, database_url):
        asyncio.run(rate_level(url, 100, 2.0, "warmup"))
        for rate in (int(r) for r in args.rates.split(",")):
            tag = f"r{rate}_{uuid.uuid4().hex[:6]}"
            intake = asyncio.run(rate_level(url, rate, args.seconds, tag))
            processed = asyncio.run(lag(database_url, tag, 0 if args.no_worker else int(intake["accepted"])))
            results.append({**intake, **processed})
            row = results[-1]
            print(
                f"rate {rate:>5}/s  accepted {row['accepted_per_s']:7.1f}/s  failures {row['failures']:>4}  "
                f"ack p50 {row['ack_p50_ms']:6.1f} ms p99 {row['ack_p99_ms']:7.1f} ms  "
                f"lag p50 {row['lag_p50_ms']:7.1f} ms p99 {row['lag_p99_ms']:8.1f} ms  "
                f"({row['processed']}/{row['accepted']} processed)",
                flush=True,
            )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "webhooks.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
