"""Storefront under a crowd: req/s and p50/p99 of /health and the shop pages, each as a ratio to /health.

    .venv/bin/python bench/storefront.py [--url http://127.0.0.1:8000] [--clients 50] [--seconds 15] [--workers 2]
                                         [--cookies]

Without --url it starts its own `till serve --workers 2` (TEST_DATABASE_URL / TEST_REDIS_URL, or embedded servers)
on a fresh database with the demo store. Each endpoint is measured in turn in the same run, 50 keep-alive clients
(bench/http_baseline.py's lean HTTP/1.1 client), after a 1 s warm-up: /health, the home grid /s/demo, a product
page, a category page. --cookies: every client first takes the page's cookies (CSRF token, session) and sends them
back, as a browser does. Targets (issue 20): /s/demo >= 2,000 req/s, p99 < 100 ms, >= 1/3 of /health.
Writes bench/results/storefront.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http_baseline import own_server  # noqa: E402


async def _client(
    host: str, port: int, path: str, cookie: str, deadline: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    extra = f"Cookie: {cookie}\r\n" if cookie else ""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n{extra}\r\n".encode()
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


async def measure(url: str, path: str, clients: int, seconds: float, cookies: list[str]) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80

    def cookie(i: int) -> str:
        return cookies[i % len(cookies)] if cookies else ""

    warmup = time.perf_counter() + 1.0
    await asyncio.gather(*(_client(host, port, path, cookie(i), warmup, [], []) for i in range(clients)))
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_client(host, port, path, cookie(i), deadline, latencies, errors) for i in range(clients)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(cuts[49] * 1000, 2),
        "p99_ms": round(cuts[98] * 1000, 2),
    }


def browser_cookies(url: str, clients: int) -> list[str]:
    """One cookie header per client, as a browser holds them after its first shop page."""
    import httpx

    found = []
    for _ in range(clients):
        with httpx.Client(base_url=url) as client:
            client.get("/s/demo")
            found.append("; ".join(f"{k}={v}" for k, v in client.cookies.items()))
    return found


def pages(url: str) -> dict[str, str]:
    """The endpoints: /health, the home grid, the first product page and the first category it links to."""
    import re

    import httpx

    home = httpx.get(f"{url}/s/demo").text
    product = re.search(r'href="(/s/demo/p/[^"]+)"', home)
    category = re.search(r'<option value="([a-z0-9-]+)"', home)
    assert product and category, "the demo store has no products or categories"
    return {
        "health": "/health",
        "home": "/s/demo",
        "product": product[1],
        "category": f"/s/demo?category={category[1]}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=2, help="web processes when starting our own server")
    parser.add_argument("--cookies", action="store_true", help="send a browser's cookies (CSRF token, session)")
    args = parser.parse_args()

    def run(url: str) -> dict[str, dict[str, float | str]]:
        cookies = browser_cookies(url, args.clients) if args.cookies else []
        found: dict[str, dict[str, float | str]] = {}
        for name, path in pages(url).items():
            found[name] = {"path": path, **asyncio.run(measure(url, path, args.clients, args.seconds, cookies))}
        return found

    if args.url:
        results = run(args.url)
    else:
        with own_server(args.workers) as url:
            results = run(url)
    health = float(results["health"]["requests_per_s"])
    for r in results.values():
        r["ratio_to_health"] = round(float(r["requests_per_s"]) / health, 3) if health else 0.0
    report = {
        "clients": args.clients,
        "seconds": args.seconds,
        "workers": args.workers,
        "cookies": args.cookies,
        "results": results,
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "storefront.json").write_text(json.dumps(report, indent=2))
    print(
        f"{args.clients} keep-alive clients, {args.seconds:.0f} s per endpoint, {args.workers} web process(es)"
        + (", browser cookies" if args.cookies else "")
    )
    print(f"{'endpoint':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'x /health':>10}  path")
    for name, r in results.items():
        print(
            f"{name:<10} {r['requests_per_s']:>9} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['errors']:>7} "
            f"{r['ratio_to_health']:>10}  {r['path']}"
        )
    home = results["home"]
    ok = (
        float(home["requests_per_s"]) >= 2000
        and float(home["p99_ms"]) < 100
        and float(home["ratio_to_health"]) >= 1 / 3
    )
    print(f"target /s/demo >= 2,000 req/s, p99 < 100 ms, >= 1/3 of /health: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
