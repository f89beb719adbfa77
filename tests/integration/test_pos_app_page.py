"""The POS tablet app's page at /pos and its service worker at /pos/sw.js."""

from __future__ import annotations

import re
from pathlib import Path

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.core.rbac import Role
from tests.integration.conftest import World, sign_in

POS_STATIC = Path(__file__).resolve().parents[2] / "static" / "pos"


async def test_a_cashier_gets_the_pos_shell_with_its_csrf_token(
    client: AsyncTestClient[Litestar], world: World
) -> None:
    store = await world.store()
    await sign_in(client, (await world.staff(store, Role.CASHIER)).email)
    page = await client.get("/pos")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-cache"
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert token and token.group(1) == client.cookies["till_csrf"]
    assert '<script type="module" src="/static/pos/pos.js"></script>' in page.text
    assert "<script>" not in page.text  # CSP: script-src 'self', nothing inline
    assert 'href="/staff"' in page.text and 'action="/signout"' in page.text


async def test_signed_out_the_pos_sends_to_sign_in(client: AsyncTestClient[Litestar]) -> None:
    page = await client.get("/pos", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/signin?next=/pos"


async def test_the_service_worker_is_served_for_the_pos_scope(client: AsyncTestClient[Litestar]) -> None:
    worker = await client.get("/pos/sw.js")
    assert worker.status_code == 200
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["cache-control"] == "no-cache"
    assert worker.headers["service-worker-allowed"] == "/pos"  # its scope may be /pos itself, not just /pos/
    assert worker.text == (POS_STATIC / "sw.js").read_text()


def test_the_service_worker_caches_every_module_of_the_app() -> None:
    """A module left out of the install list is missing after a reload offline (the first visit loads the modules
    before the worker controls the page)."""
    source = (POS_STATIC / "sw.js").read_text()
    cached = set(re.findall(r'"/static/pos/([\w.-]+)"', source))
    shipped = {p.name for p in POS_STATIC.iterdir() if p.suffix in {".js", ".css"} and p.name != "sw.js"}
    assert cached == shipped
