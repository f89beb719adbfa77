"""HTTP baseline: requests/s and p50/p99 latency for /health and the storefront home.

    .venv/bin/python bench/http_baseline.py [--url http://127.0.0.1:8000] [--clients 50] [--seconds 20]

Without --url it starts its own `till serve` (TEST_DATABASE_URL / TEST_REDIS_URL, or embedded
servers) on a fresh database with the demo store. The load generator is a small keep-alive
HTTP/1.1 client on asyncio streams (lighter than an HTTP library, so the server is what is measured).
Writes bench/results/http_baseline.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENDPOINTS = ("/health", "/s/demo")


async def _client(host: str, port: int, path: str, deadline: float, latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n".encode()
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not status_line.startswith(b"HTTP/1.1 200"):
                errors.append(int(status_line.split()[1]))
    finally:
        writer.close()


async def measure(url: str, path: str, clients: int, seconds: float) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    errors: list[int] = []
    warmup = time.perf_counter() + 1.0
    await asyncio.gather(*(_client(host, port, path, warmup, [], []) for _ in range(clients)))
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_client(host, port, path, deadline, latencies, errors) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(cuts[49] * 1000, 2),
        "p99_ms": round(cuts[98] * 1000, 2),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def own_server(
    workers: int, on_database: Callable[[str], Any] | None = None, *, with_worker: bool = False
) -> Iterator[Any]:
    """A seeded `till serve` on a fresh database. With ``on_database``, yields (url, its result); with
    ``with_worker``, a `till worker` runs too (the outbox relay that feeds live pages)."""
    import httpx

    from tests.servers import provision_servers

    with provision_servers() as (database_url, redis_url):
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "TILL_LOG_LEVEL": "WARNING"}
        till = [sys.executable, "-m", "app.cli"]
        subprocess.run([*till, "seed"], env=env, check=True, capture_output=True)
        prepared = on_database(database_url) if on_database else None
        port = _free_port()
        server = subprocess.Popen([*till, "serve", "--port", str(port), "--workers", str(workers)], env=env)
        worker = subprocess.Popen([*till, "worker"], env=env) if with_worker else None
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            yield (url, prepared) if on_database else url
        finally:
            for process in (server, worker):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=15)


def staff_cookie(url: str) -> str:
    """The demo manager's session cookie, signed in through the page as a browser does."""
    import re

    import httpx

    from app.seed import DEMO_ACCOUNTS, DEMO_PASSWORD

    with httpx.Client(base_url=url) as client:
        token = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/signin").text)
        assert token is not None
        client.post(
            "/signin", data={"email": DEMO_ACCOUNTS[1].email, "password": DEMO_PASSWORD, "_csrf_token": token[1]}
        )
        return f"till_session={client.cookies['till_session']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1, help="web processes when starting our own server")
    args = parser.parse_args()

    def run(url: str) -> dict[str, dict[str, float]]:
        return {path: asyncio.run(measure(url, path, args.clients, args.seconds)) for path in ENDPOINTS}

    if args.url:
        results = run(args.url)
    else:
        with own_server(args.workers) as url:
            results = run(url)
    report = {"clients": args.clients, "seconds": args.seconds, "workers": args.workers, "results": results}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "http_baseline.json").write_text(json.dumps(report, indent=2))
    print(f"{args.clients} concurrent clients, {args.seconds:.0f} s per endpoint, {args.workers} web process(es)")
    print(f"{'endpoint':<12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for path, r in results.items():
        print(f"{path:<12} {r['requests_per_s']:>9} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['errors']:>7}")


if __name__ == "__main__":
    main()
