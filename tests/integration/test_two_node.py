"""Scale-out, proven here (issue 20, docs/scaling.md): two `till serve` processes on different ports and one
`till worker`, on one PostgreSQL and one Redis. Nothing is kept in a web process that another one needs:

- an order placed through node A reaches the board stream connected to node B within a second;
- a checkout completed on node A is replayed by its Idempotency-Key on node B (same order, nothing charged twice);
- a staff session made on node A is signed in on node B (and its CSRF token works there);
- a price changed through node B shows on node A's cached shop page on the very next request.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.models import Product, Variant
from app.config import Settings
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.inventory.models import StockLevel
from app.seed import DEMO_ACCOUNTS, DEMO_PASSWORD
from app.stores.models import Store
from app.stores.services import ApiTokenService

ROOT = Path(__file__).resolve().parents[2]
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    a: str
    b: str


def _wait_ready(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{url} exited with {process.returncode}"
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)  # polling for start-up, not timing anything
    raise AssertionError(f"{url} did not become ready")


@pytest.fixture
def cluster(settings: Settings, tmp_path: Path) -> Iterator[Cluster]:
    assert settings.database_url and settings.redis_url
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "SECRET_KEY": settings.secret_key,  # every node signs and checks cookies with the same key
        "TILL_DATA_DIR": str(tmp_path),
        "TILL_LOG_LEVEL": "WARNING",
    }
    till = [sys.executable, "-m", "app.cli"]
    subprocess.run([*till, "seed"], env=env, check=True, capture_output=True, cwd=ROOT)
    ports = _free_port(), _free_port()
    processes = [subprocess.Popen([*till, "serve", "--port", str(port)], env=env, cwd=ROOT) for port in ports]
    processes.append(subprocess.Popen([*till, "worker"], env=env, cwd=ROOT))
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        deadline = time.monotonic() + 60
        for url, process in zip(urls, processes, strict=False):
            _wait_ready(url, process, deadline)
        yield Cluster(*urls)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


async def _prepare(sessions: async_sessionmaker[AsyncSession]) -> tuple[str, str]:
    """An owner API token for the demo store and a variant with plenty of stock."""
    async with sessions() as session, session.begin():
        store = await session.scalar(select(Store).where(Store.slug == "demo"))
        assert store is not None
        bind_store(session, store.id)
        variant_id = await session.scalar(select(Variant.id).order_by(Variant.sku).limit(1))
        await session.execute(update(StockLevel).where(StockLevel.variant_id == variant_id).values(on_hand=1000))
        _, secret = await ApiTokenService.for_store(session, store.id).issue(
            name="two nodes", role=Role.OWNER, created_by=None
        )
    return secret, str(variant_id)


async def _sign_in(client: httpx.AsyncClient, base: str) -> None:
    page = await client.get(f"{base}/signin")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert token
    answer = await client.post(
        f"{base}/signin",
        data={"email": DEMO_ACCOUNTS[0].email, "password": DEMO_PASSWORD, "_csrf_token": token[1], "next": "/staff"},
    )
    assert answer.status_code == 303, answer.text


async def _quote(api: httpx.AsyncClient, base: str, variant_id: str) -> dict[str, object]:
    cart = await api.post(f"{base}/api/v1/checkout/carts")
    assert cart.status_code == 201, cart.text
    token = cart.json()["token"]
    line = await api.post(f"{base}/api/v1/checkout/carts/{token}/lines", json={"variant_id": variant_id})
    assert line.status_code == 200, line.text
    quote = await api.post(f"{base}/api/v1/checkout/quote", json={"cart_token": token, "email": "ann@example.com"})
    assert quote.status_code == 201, quote.text
    body: dict[str, object] = quote.json()
    return body


async def test_two_nodes_share_the_board_checkouts_sessions_and_the_page_cache(
    cluster: Cluster, sessions: async_sessionmaker[AsyncSession]
) -> None:
    secret, variant_id = await _prepare(sessions)
    bearer = {"authorization": f"Bearer {secret}"}
    async with (
        httpx.AsyncClient(timeout=10, follow_redirects=False) as staff,
        httpx.AsyncClient(timeout=10, headers=bearer) as api,
    ):
        # a session made on A is signed in on B
        await _sign_in(staff, cluster.a)
        on_b = await staff.get(f"{cluster.b}/staff")
        assert on_b.status_code == 200, on_b.headers.get("location")
        assert DEMO_ACCOUNTS[0].name in on_b.text

        # B's board stream is open (its first frame says so) before A takes the order
        async with staff.stream("GET", f"{cluster.b}/staff/board/events") as stream:
            lines = stream.aiter_lines()
            first = await asyncio.wait_for(anext(lines), timeout=10)
            assert first.startswith(":"), first

            quote = await _quote(api, cluster.a, variant_id)
            key = uuid.uuid4().hex
            body = {"snapshot_id": quote["id"], "amount_minor": quote["total_minor"], "card": CARD}
            done = await api.post(f"{cluster.a}/api/v1/checkout/complete", json=body, headers={"Idempotency-Key": key})
            placed = time.monotonic()
            assert done.status_code == 201, done.text
            order = done.json()["order"]

            async def card_arrives() -> None:
                async for line in lines:
                    if f"card-{order['id']}" in line:
                        return

            await asyncio.wait_for(card_arrives(), timeout=1.0)
            assert time.monotonic() - placed < 1.0

        # the same completion replayed on B: the same answer, no second order
        replay = await api.post(f"{cluster.b}/api/v1/checkout/complete", json=body, headers={"Idempotency-Key": key})
        assert replay.status_code == 201 and replay.json() == done.json()
        changed = await api.post(
            f"{cluster.b}/api/v1/checkout/complete",
            json={**body, "amount_minor": int(str(quote["total_minor"])) + 1},
            headers={"Idempotency-Key": key},
        )
        assert changed.status_code == 422  # the same key with another request is refused on any node

        # a checkout quoted on A, completed on B, its key replayed on A
        second = await _quote(api, cluster.a, variant_id)
        key = uuid.uuid4().hex
        body = {"snapshot_id": second["id"], "amount_minor": second["total_minor"], "card": CARD}
        on_b = await api.post(f"{cluster.b}/api/v1/checkout/complete", json=body, headers={"Idempotency-Key": key})
        assert on_b.status_code == 201, on_b.text
        again = await api.post(f"{cluster.a}/api/v1/checkout/complete", json=body, headers={"Idempotency-Key": key})
        assert again.status_code == 201 and again.json() == on_b.json()
        assert on_b.json()["order"]["id"] != order["id"]

        # a price changed through B shows on A's cached page on the very next request
        form = await _product_form(sessions)
        page = f"{cluster.a}/s/demo/p/{form['slug']}"
        async with httpx.AsyncClient(timeout=10) as shopper:
            await shopper.get(page)
            cached = await shopper.get(page)  # from A's page cache
            assert cached.status_code == 200 and "€123.45" not in cached.text
            edit = await staff.get(f"{cluster.b}/staff/products/{form.pop('id')}")
            token = re.search(r'name="_csrf_token" value="([^"]+)"', edit.text)
            assert token
            saved = await staff.post(edit.url, data={**form, "variants-0-price": "123.45", "_csrf_token": token[1]})
            assert saved.status_code == 303, saved.text
            assert "€123.45" in (await shopper.get(page)).text


async def _product_form(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    """The product form's fields for a demo product with one variant, as its edit page fills them in."""
    async with sessions() as session:
        store = await session.scalar(select(Store).where(Store.slug == "demo"))
        assert store is not None
        bind_store(session, store.id)
        products = (await session.scalars(select(Product).order_by(Product.name))).all()
        product = next(p for p in products if len(p.variants) == 1 and p.is_active)
        variant = product.variants[0]
        return {
            "id": str(product.id),
            "name": product.name,
            "slug": product.slug,
            "description": product.description,
            "tax_class": product.tax_class,
            "image": product.image,
            "category_id": str(product.category_id or ""),
            "is_active": "on",
            "variants-0-id": str(variant.id),
            "variants-0-sku": variant.sku,
            "variants-0-options": "; ".join(f"{k}: {v}" for k, v in variant.options.items()),
            "variants-0-price": "1.00",
            "variants-0-weight_grams": str(variant.weight_grams),
        }
