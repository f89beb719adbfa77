"""The delayed-success card: pending at checkout; the sandbox's signed webhook (sent by a worker) places the order."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from app.config import Settings
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.payments.registry import sandbox_webhook_secret
from app.payments.signing import sign
from tests.integration.conftest import World
from tests.integration.http_server import serving
from tests.integration.shop import Shopper, make_shop
from workers.settings import build_worker


async def test_pending_payment_becomes_an_order_when_the_webhook_arrives(
    client: AsyncTestClient[Litestar], world: World, settings: Settings
) -> None:
    shop = await make_shop(world)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("CRO-1", 1)
    snapshot_id = await shopper.quote()
    paid = await shopper.pay(snapshot_id, card="4000000000000077")
    assert paid.status_code == 303 and "/checkout/attempts/" in paid.headers["location"]
    waiting = await client.get(paid.headers["location"])
    assert "Processing your payment" in waiting.text

    # The sandbox's settle job POSTs its signed webhook to the app's own endpoint: a real server here.
    async with serving(settings) as base:
        worker = build_worker(dataclasses.replace(settings, public_url=base), concurrency=2, run_relay=False)
        task = asyncio.create_task(worker.start())
        try:
            for _ in range(100):  # the job is scheduled 2 s out; SAQ's scheduler ticks every second
                done = await client.get(paid.headers["location"])
                if done.status_code == 303:
                    break
                await asyncio.sleep(0.1)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert done.status_code == 303 and "/orders/" in done.headers["location"]
    async with world.sessions() as session:
        bind_store(session, shop.store.id)
        assert await session.scalar(select(func.count()).select_from(Order)) == 1


async def test_webhook_with_a_bad_signature_is_rejected(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    payload = json.dumps(
        {"id": "evt_1", "type": "payment_intent.succeeded", "created": 1, "data": {"object": {"id": "sb_x"}}}
    ).encode()
    bad = await client.post("/webhooks/sandbox", content=payload, headers={"stripe-signature": "t=1,v1=00"})
    assert bad.status_code == 400
    good_sig = sign(payload, sandbox_webhook_secret(settings), int(__import__("time").time()))
    ok = await client.post("/webhooks/sandbox", content=payload, headers={"stripe-signature": good_sig})
    assert ok.status_code == 200 and ok.json() == {"received": "evt_1", "duplicate": False}
