"""Inbound webhooks (Invariant 5): signed intake, stored once, processed by a worker idempotently and in any
order, retried, dead-lettered and replayed from the admin page; exactly-once outbox consumers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.checkout.models import CheckoutAttempt
from app.config import Settings
from app.core.money import Money
from app.core.rbac import Role
from app.core.tenancy import bind_store, system_scope
from app.inventory.models import StockLevel
from app.main import create_app
from app.orders.models import Order
from app.payments.credentials import ProviderCredentialService
from app.payments.models import PaymentIntent, PaymentTransaction
from app.payments.provider import CaptureRequest, RefundRequest
from app.payments.registry import sandbox_webhook_secret
from app.payments.sandbox import SandboxProvider
from app.payments.services import ledger_totals, order_payment_status
from app.payments.signing import sign
from app.stores.models import Store
from app.webhooks.intake import REJECTED, IncomingRow, IntakeWriter, RefusedPayload, forget_store_secrets
from app.webhooks.models import ConsumerReceipt, WebhookEventRow
from app.webhooks.processing import MAX_ATTEMPTS, Deps, WebhookProcessor, claim, claim_due, process_event
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in
from tests.integration.crashing_checkout import charge_then_kill
from tests.integration.http_server import serving
from tests.integration.shop import Shopper, make_shop, place_order
from workers import tasks
from workers.settings import build_worker

# -- helpers ---------------------------------------------------------------------------------------------


def _event(type_: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    body = {"id": event_id or f"evt_{uuid.uuid4().hex[:20]}", "type": type_, "created": int(time.time())}
    return json.dumps({**body, "data": {"object": obj}}).encode()


def _signed(settings: Settings, payload: bytes, *, at: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if at is None else at
    return {"stripe-signature": sign(payload, sandbox_webhook_secret(settings), ts), "content-type": "application/json"}


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> list[WebhookEventRow]:
    async with sessions() as session:
        return list(await session.scalars(select(WebhookEventRow).order_by(WebhookEventRow.received_at)))


async def _row(sessions: async_sessionmaker[AsyncSession], row_id: uuid.UUID) -> WebhookEventRow:
    async with sessions() as session:
        row = await session.get(WebhookEventRow, row_id)
        assert row is not None
        return row


async def _ledger(sessions: async_sessionmaker[AsyncSession], intent_id: uuid.UUID) -> list[PaymentTransaction]:
    async with sessions() as session:
        system_scope(session)
        return list(
            await session.scalars(
                select(PaymentTransaction)
                .where(PaymentTransaction.intent_id == intent_id)
                .order_by(PaymentTransaction.created_at, PaymentTransaction.id)
            )
        )


async def _state(sessions: async_sessionmaker[AsyncSession], intent_id: uuid.UUID) -> tuple[Any, ...]:
    """The intent's totals and status, the order's payment status, and the ledger's kinds and amounts;
    checks the ledger sums to the intent and the order follows it."""
    async with sessions() as session:
        system_scope(session)
        intent = await session.get(PaymentIntent, intent_id)
        assert intent is not None and intent.order_id is not None
        order = await session.get(Order, intent.order_id)
        assert order is not None
    ledger = await _ledger(sessions, intent_id)
    totals = ledger_totals(ledger)
    assert (totals.captured_minor, totals.refunded_minor) == (intent.captured_minor, intent.refunded_minor)
    assert order.payment_status == order_payment_status(intent)
    return (
        intent.status,
        intent.captured_minor,
        intent.refunded_minor,
        order.payment_status,
        [(tx.kind, tx.amount_minor) for tx in ledger],
    )


async def _authorised_order(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> tuple[Store, PaymentIntent]:
    """An order whose payment is authorised only (the store captures at fulfilment)."""
    shop = await make_shop(world)
    async with sessions() as session, session.begin():
        store = await session.get(Store, shop.store.id)
        assert store is not None
        store.settings = {**store.settings, "capture_policy": "at_fulfilment"}
    shop.store.settings = {**shop.store.settings, "capture_policy": "at_fulfilment"}
    order = await place_order(sessions, shop, redis, settings, {"MUG-1": 1})
    async with sessions() as session:
        system_scope(session)
        intent = await session.scalar(select(PaymentIntent).where(PaymentIntent.order_id == order.id))
    assert intent is not None and intent.status == "authorized"
    return shop.store, intent


def _deps(engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings) -> Deps:
    return Deps(engine=engine, sessions=sessions, redis=redis, settings=settings)


@contextlib.asynccontextmanager
async def _worker(settings: Settings) -> AsyncIterator[None]:
    worker = build_worker(settings, concurrency=8, run_relay=False)
    task = asyncio.create_task(worker.start())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _until(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.1)


async def _all_processed(sessions: async_sessionmaker[AsyncSession], n: int = 1) -> bool:
    rows = await _rows(sessions)
    return len(rows) >= n and all(r.status == "processed" for r in rows)


# -- intake ----------------------------------------------------------------------------------------------


async def test_bad_missing_and_stale_signatures_are_refused_counted_and_not_stored(
    client: AsyncTestClient[Litestar], settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    payload = _event("payment_intent.succeeded", {"id": "sb_x"})

    def count(reason: str) -> float:
        return float(REJECTED.labels(provider="sandbox", reason=reason)._value.get())

    before = {r: count(r) for r in ("no matching signature", "missing signature", "timestamp outside the tolerance")}
    bad = await client.post(
        "/webhooks/sandbox", content=payload, headers={"stripe-signature": f"t={int(time.time())},v1=00"}
    )
    missing = await client.post("/webhooks/sandbox", content=payload)
    stale = await client.post(
        "/webhooks/sandbox", content=payload, headers=_signed(settings, payload, at=int(time.time()) - 301)
    )
    tampered = await client.post(
        "/webhooks/sandbox", content=payload.replace(b"sb_x", b"sb_y"), headers=_signed(settings, payload)
    )
    for response, reason in (
        (bad, "no matching signature"),
        (missing, "missing signature"),
        (stale, "timestamp outside the tolerance"),
        (tampered, "no matching signature"),
    ):
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["fields"] == {"signature": reason}
    assert count("no matching signature") == before["no matching signature"] + 2
    assert count("missing signature") == before["missing signature"] + 1
    assert count("timestamp outside the tolerance") == before["timestamp outside the tolerance"] + 1
    assert await _rows(sessions) == []
    metrics = await client.get("/metrics")
    assert 'till_webhooks_rejected_total{provider="sandbox",reason="missing signature"}' in metrics.text
    unknown = await client.post("/webhooks/paypal", content=payload, headers=_signed(settings, payload))
    assert unknown.status_code == 400
    no_platform_secret = await client.post("/webhooks/stripe", content=payload, headers=_signed(settings, payload))
    assert no_platform_secret.status_code == 400
    assert await _rows(sessions) == []


async def test_stripe_endpoints_check_the_store_or_platform_secret_and_refuse_what_is_not_a_delivery(
    client: AsyncTestClient[Litestar], world: World, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    store = await world.store()
    store_secret, platform_secret = "whsec_" + "s" * 32, "whsec_" + "p" * 32
    async with sessions() as session, session.begin():
        await ProviderCredentialService(session, store.id).save(
            provider="stripe",
            mode="test",
            secret_key="sk_test_" + "k" * 24,
            publishable_key="pk_test_" + "k" * 24,
            webhook_secret=store_secret,
        )
    forget_store_secrets()
    payload = _event("payment_intent.succeeded", {"id": "pi_1"})

    def stripe_signed(secret: str) -> dict[str, str]:
        return {"stripe-signature": sign(payload, secret, int(time.time()))}

    ok = await client.post(f"/webhooks/stripe/{store.slug}", content=payload, headers=stripe_signed(store_secret))
    assert ok.status_code == 200 and ok.json() == {"received": json.loads(payload)["id"], "duplicate": False}
    (row,) = await _rows(sessions)
    assert (row.provider, row.store_id, row.status) == ("stripe", store.id, "received")

    refused = {
        "no matching signature": await client.post(
            f"/webhooks/stripe/{store.slug}", content=payload, headers=_signed(settings, payload)
        ),
        "unknown store": await client.post(
            "/webhooks/stripe/no-such-store", content=payload, headers=stripe_signed(store_secret)
        ),
        "no webhook secret configured": await client.post(
            "/webhooks/stripe", content=payload, headers=stripe_signed(platform_secret)
        ),
    }
    for reason, response in refused.items():
        assert response.status_code == 400, reason
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["fields"] == {"signature": reason}
    nested = await client.post(f"/webhooks/stripe/{store.slug}/x", content=payload, headers=stripe_signed(store_secret))
    assert nested.status_code == 400 and nested.json()["fields"] == {"signature": "unknown store"}
    wrong_method = await client.get("/webhooks/sandbox")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["status"] == 405
    huge = b'{"id": "evt_big", "type": "x", "created": 1, "data": {"pad": "' + b"x" * 1_100_000 + b'"}}'
    too_large = await client.post("/webhooks/sandbox", content=huge, headers=_signed(settings, huge))
    assert too_large.status_code == 413 and too_large.json()["status"] == 413
    assert len(await _rows(sessions)) == 1

    platform_app = create_app(dataclasses.replace(settings, stripe_platform_webhook_secret=platform_secret))
    async with AsyncTestClient(app=platform_app, base_url="http://testserver.local") as platform:
        account = _event("account.updated", {"id": "acct_1"})
        signed = {"stripe-signature": sign(account, platform_secret, int(time.time()))}
        assert (await platform.post("/webhooks/stripe", content=account, headers=signed)).status_code == 200
    assert [(r.provider, r.type, r.store_id) for r in await _rows(sessions)][1] == ("stripe", "account.updated", None)


async def test_deliveries_written_together_are_told_apart_stored_duplicate_or_refused(
    client: AsyncTestClient[Litestar],
    engine: AsyncEngine,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Concurrent deliveries share one INSERT; jsonb refuses ``\\u0000``, which must cost only its own row."""
    good = _event("payment_intent.succeeded", {"id": "sb_good"})
    bad = _event("payment_intent.succeeded", {"id": "sb_bad", "note": "\x00"})
    assert b"\\u0000" in bad
    answers = await asyncio.gather(
        *(client.post("/webhooks/sandbox", content=p, headers=_signed(settings, p)) for p in (good, bad, good, good))
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 400]
    assert answers[1].json()["fields"] == {"signature": "malformed payload"}
    assert sorted(a.json()["duplicate"] for a in answers if a.status_code == 200) == [False, True, True]
    assert [r.event_id for r in await _rows(sessions)] == [json.loads(good)["id"]]

    writer = IntakeWriter(engine)
    rows = [
        IncomingRow(uuid.uuid4(), "sandbox", event_id, None, "x", payload)
        for event_id, payload in (("e1", "{}"), ("e2", '{"a": "\\u0000"}'), ("e1", "{}"), ("e3", "[]"))
    ]
    outcomes = await asyncio.gather(*(writer.store(row) for row in rows), return_exceptions=True)
    assert outcomes[0] is True and outcomes[2] is False and outcomes[3] is True
    assert isinstance(outcomes[1], RefusedPayload)
    assert sorted(r.event_id for r in await _rows(sessions)) == sorted([json.loads(good)["id"], "e1", "e3"])


async def test_a_repeated_event_is_acknowledged_and_changes_nothing(
    client: AsyncTestClient[Litestar],
    world: World,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    store, intent = await _authorised_order(world, sessions, redis, settings)
    sandbox = SandboxProvider(redis, webhook_secret=sandbox_webhook_secret(settings))
    await sandbox.capture(CaptureRequest(intent.provider_ref, Money(intent.amount_minor, intent.currency), "outside"))
    payload = _event("charge.captured", {"id": "ch_1", "payment_intent": intent.provider_ref})
    first = await client.post("/webhooks/sandbox", content=payload, headers=_signed(settings, payload))
    again = await client.post("/webhooks/sandbox", content=payload, headers=_signed(settings, payload))
    assert first.status_code == again.status_code == 200
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    (row,) = await _rows(sessions)
    assert row.status == "received" and row.store_id is None

    deps = _deps(engine, sessions, redis, settings)
    assert (await process_event(deps, row.id)).startswith("synced")
    after_first = await _state(sessions, intent.id)
    assert after_first[:4] == ("captured", intent.amount_minor, 0, "paid")
    assert await process_event(deps, row.id) == "skipped: already processed"  # a second claim of it
    processed = await _row(sessions, row.id)
    assert processed.status == "processed" and processed.store_id == store.id and processed.attempts == 1
    assert await _state(sessions, intent.id) == after_first


@pytest.mark.parametrize("refund_first", [True, False])
async def test_events_in_either_order_end_in_the_same_state(
    refund_first: bool,
    world: World,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
    client: AsyncTestClient[Litestar],
) -> None:
    """Captured and partly refunded in the provider's dashboard; its two events arrive in either order."""
    _, intent = await _authorised_order(world, sessions, redis, settings)
    sandbox = SandboxProvider(redis, webhook_secret=sandbox_webhook_secret(settings))
    amount = Money(intent.amount_minor, intent.currency)
    await sandbox.capture(CaptureRequest(intent.provider_ref, amount, "dash-capture"))
    await sandbox.refund(RefundRequest(intent.provider_ref, Money(500, intent.currency), "dash-refund"))
    succeeded = _event("payment_intent.succeeded", {"id": intent.provider_ref})
    refunded = _event("charge.refunded", {"id": "ch_1", "payment_intent": intent.provider_ref, "amount_refunded": 500})
    deps = _deps(engine, sessions, redis, settings)
    for payload in (refunded, succeeded) if refund_first else (succeeded, refunded):
        assert (
            await client.post("/webhooks/sandbox", content=payload, headers=_signed(settings, payload))
        ).status_code == 200
    assert await WebhookProcessor(deps).drain() == 2  # one batch: the two, in the order they came
    assert await _state(sessions, intent.id) == (
        "captured",
        intent.amount_minor,
        500,
        "partially_refunded",
        [("authorize", intent.amount_minor), ("capture", intent.amount_minor), ("refund", 500)],
    )


async def test_fifty_identical_deliveries_in_parallel_store_one_event_with_one_effect(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> None:
    _, intent = await _authorised_order(world, sessions, redis, settings)
    sandbox = SandboxProvider(redis, webhook_secret=sandbox_webhook_secret(settings))
    await sandbox.capture(CaptureRequest(intent.provider_ref, Money(intent.amount_minor, intent.currency), "outside"))
    payload = _event("payment_intent.succeeded", {"id": intent.provider_ref})
    headers = _signed(settings, payload)
    async with serving(settings) as base, _worker(settings):
        async with httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=50)) as http:
            answers = await asyncio.gather(
                *(http.post("/webhooks/sandbox", content=payload, headers=headers) for _ in range(50))
            )
        assert [a.status_code for a in answers] == [200] * 50
        assert sum(not a.json()["duplicate"] for a in answers) == 1
        await _until(lambda: _all_processed(sessions))
    assert len(await _rows(sessions)) == 1
    state = await _state(sessions, intent.id)
    assert state[4] == [("authorize", intent.amount_minor), ("capture", intent.amount_minor)]


async def test_an_event_whose_worker_died_mid_processing_is_processed_once_after_restart(
    client: AsyncTestClient[Litestar],
    world: World,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    _, intent = await _authorised_order(world, sessions, redis, settings)
    sandbox = SandboxProvider(redis, webhook_secret=sandbox_webhook_secret(settings))
    await sandbox.capture(CaptureRequest(intent.provider_ref, Money(intent.amount_minor, intent.currency), "outside"))
    payload = _event("payment_intent.succeeded", {"id": intent.provider_ref})
    assert (
        await client.post("/webhooks/sandbox", content=payload, headers=_signed(settings, payload))
    ).status_code == 200
    (row,) = await _rows(sessions)
    claimed = await claim(engine, row.id)  # the worker died right after claiming the event
    assert claimed is not None and (await _row(sessions, row.id)).status == "processing"
    assert await claim_due(engine) == []  # within its lease no other worker takes it
    async with engine.begin() as conn:  # the lease runs out
        await conn.execute(text("UPDATE webhook_events SET next_attempt_at = now() - interval '1 second'"))
    async with _worker(settings):  # the restarted worker's processor takes it on its first round
        await _until(lambda: _all_processed(sessions))
    done = await _row(sessions, row.id)
    assert done.attempts == 2 and done.outcome.startswith("synced")
    assert (await _state(sessions, intent.id))[4] == [
        ("authorize", intent.amount_minor),
        ("capture", intent.amount_minor),
    ]


async def test_a_poison_event_dies_after_its_attempts_and_is_replayed_from_the_page_once_fixed(
    client: AsyncTestClient[Litestar],
    world: World,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    store, intent = await _authorised_order(world, sessions, redis, settings)
    sandbox = SandboxProvider(redis, webhook_secret=sandbox_webhook_secret(settings))
    await sandbox.capture(CaptureRequest(intent.provider_ref, Money(intent.amount_minor, intent.currency), "outside"))
    state_key = f"till:sandbox:pi:{intent.provider_ref}"
    saved = await redis.get(state_key)
    await redis.delete(state_key)  # the provider cannot find the payment: every attempt fails
    payload = _event("payment_intent.succeeded", {"id": intent.provider_ref})
    assert (
        await client.post("/webhooks/sandbox", content=payload, headers=_signed(settings, payload))
    ).status_code == 200
    (row,) = await _rows(sessions)
    deps = _deps(engine, sessions, redis, settings)
    for attempt in range(1, MAX_ATTEMPTS + 1):  # the processor's retries, each taken when due
        if attempt < MAX_ATTEMPTS:
            assert await process_event(deps, row.id) == "failed"
            failed = await _row(sessions, row.id)
            assert failed.status == "failed" and failed.next_attempt_at is not None
            assert await claim_due(engine) == []  # not due yet: backoff 2^attempts seconds
        else:
            assert await process_event(deps, row.id) == "dead"
    dead = await _row(sessions, row.id)
    assert (dead.status, dead.attempts, dead.store_id) == ("dead", MAX_ATTEMPTS, store.id)
    assert "no sandbox payment" in dead.last_error

    manager = await world.staff(store, Role.MANAGER)
    await sign_in(client, manager.email)
    page = await client.get("/staff/webhooks", params={"status": "dead"})
    assert page.status_code == 200 and str(row.id) in page.text and "no sandbox payment" in page.text

    assert saved is not None
    await redis.set(state_key, saved)  # the fix
    async with _worker(settings):
        replay = await client.post(
            "/staff/webhooks/replay",
            data={"ids": str(row.id), "_csrf_token": csrf_from(page.text), "back": "status=dead"},
        )
        assert replay.status_code == 303 and replay.headers["location"] == "/staff/webhooks?status=dead"
        await _until(lambda: _all_processed(sessions))
    fixed = await _row(sessions, row.id)
    assert fixed.status == "processed" and fixed.last_error == "" and fixed.attempts == 1
    assert (await _state(sessions, intent.id))[:4] == ("captured", intent.amount_minor, 0, "paid")


async def test_admin_page_and_api_search_replay_and_guard(
    client: AsyncTestClient[Litestar],
    world: World,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    store, intent = await _authorised_order(world, sessions, redis, settings)
    other, other_intent = await _authorised_order(world, sessions, redis, settings)
    deps = _deps(engine, sessions, redis, settings)
    for ref, type_ in (
        (intent.provider_ref, "payment_intent.succeeded"),
        (intent.provider_ref, "charge.refunded"),
        (other_intent.provider_ref, "charge.refunded"),
    ):
        obj = (
            {"id": ref, "client_secret": "pi_secret_shh"}
            if type_.startswith("payment_intent")
            else {"id": "ch", "payment_intent": ref}
        )
        payload = _event(type_, obj)
        assert (
            await client.post("/webhooks/sandbox", content=payload, headers=_signed(settings, payload))
        ).status_code == 200
    for row in await _rows(sessions):
        await process_event(deps, row.id)

    staff = await world.staff(store, Role.STAFF)
    await sign_in(client, staff.email)
    assert (await client.get("/staff/webhooks")).status_code == 403
    client.cookies.clear()
    manager = await world.staff(store, Role.MANAGER)
    await sign_in(client, manager.email)
    page = await client.get("/staff/webhooks")
    assert page.status_code == 200 and page.text.count('data-event="') == 2
    assert "pi_secret_shh" not in page.text and "[redacted]" in page.text
    assert ">Webhooks</a>" in page.text
    refunds = await client.get("/staff/webhooks", params={"type": "charge.refunded", "status": "processed"})
    assert refunds.text.count('data-event="') == 1
    assert (await client.get("/staff/webhooks", params={"type": "charge."})).text.count('data-event="') == 1
    assert (await client.get("/staff/webhooks", params={"status": "dead"})).text.count('data-event="') == 0
    bad = await client.get("/staff/webhooks", params={"since": "2026-13-40"})
    assert bad.status_code == 422 and "Enter a date" in bad.text

    token = await issue_token(world, store, Role.MANAGER)
    listed = await client.get("/api/v1/admin/webhook-events", params={"limit": 1}, headers=bearer(token))
    assert listed.status_code == 200
    body = listed.json()
    assert len(body["items"]) == 1 and body["next_cursor"]
    second = await client.get(
        "/api/v1/admin/webhook-events", params={"limit": 1, "cursor": body["next_cursor"]}, headers=bearer(token)
    )
    ids = [body["items"][0]["id"], second.json()["items"][0]["id"]]
    assert len(set(ids)) == 2 and second.json()["next_cursor"] is None
    others = [r.id for r in await _rows(sessions) if r.store_id == other.id]
    replayed = await client.post(
        "/api/v1/admin/webhook-events/replay", json={"ids": [*ids, str(others[0])]}, headers=bearer(token)
    )
    assert replayed.status_code == 200, replayed.text
    assert sorted(replayed.json()["replayed"]) == sorted(ids) and replayed.json()["skipped"] == [str(others[0])]
    for row_id in ids:
        assert (await _row(sessions, uuid.UUID(row_id))).status == "received"
        await process_event(deps, uuid.UUID(row_id))
    assert (await _row(sessions, others[0])).status == "processed"
    bad_status = await client.get("/api/v1/admin/webhook-events", params={"status": "nope"}, headers=bearer(token))
    assert bad_status.status_code == 422
    cashier_token = await issue_token(world, store, Role.CASHIER)
    assert (await client.get("/api/v1/admin/webhook-events", headers=bearer(cashier_token))).status_code == 403


async def test_account_updated_and_unknown_types(
    client: AsyncTestClient[Litestar],
    world: World,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    store = await world.store()
    async with sessions() as session, session.begin():
        row = await session.get(Store, store.id)
        assert row is not None
        row.settings = {**row.settings, "connect_account": "acct_123", "connect_status": "pending"}
    account = {"id": "acct_123", "charges_enabled": True, "payouts_enabled": True, "details_submitted": True}
    deps = _deps(engine, sessions, redis, settings)
    for payload in (_event("account.updated", account), _event("customer.created", {"id": "cus_1"})):
        assert (
            await client.post("/webhooks/sandbox", content=payload, headers=_signed(settings, payload))
        ).status_code == 200
    outcomes = [await process_event(deps, r.id) for r in await _rows(sessions)]
    assert outcomes == ["account acct_123 recorded", "ignored: customer.created is not handled"]
    async with sessions() as session:
        fresh = await session.get(Store, store.id)
        assert fresh is not None and fresh.settings["connect_status"] == "enabled"
    assert [r.store_id for r in await _rows(sessions)] == [store.id, None]


async def test_a_dispute_event_reaches_the_disputes_service(
    client: AsyncTestClient[Litestar],
    world: World,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    _, intent = await _authorised_order(world, sessions, redis, settings)
    dispute = {
        "id": "dp_1",
        "payment_intent": intent.provider_ref,
        "amount": 100,
        "currency": "eur",
        "status": "needs_response",
        "reason": "fraudulent",
    }
    payload = _event("charge.dispute.created", dispute)
    assert (
        await client.post("/webhooks/sandbox", content=payload, headers=_signed(settings, payload))
    ).status_code == 200
    (row,) = await _rows(sessions)
    outcome = await process_event(_deps(engine, sessions, redis, settings), row.id)
    assert outcome.startswith("dispute applied"), outcome


async def test_outbox_consumers_handle_each_event_once(
    world: World, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM consumer_receipts WHERE event_id = 424242"))
    store = await world.store()
    ctx: Any = {"engine": engine, "sessions": sessions, "redis": redis, "settings": settings}
    event = {
        "id": 424242,
        "store_id": str(store.id),
        "aggregate_id": str(uuid.uuid4()),
        "type": "order.placed",
        "payload": {},
    }
    first = await tasks.transfer_to_store(ctx, event=event)
    again = await tasks.transfer_to_store(ctx, event=event)
    assert first == "skipped" and again == "skipped"  # no Connect: nothing to do, and not even looked at again
    assert tasks.transfer_to_store.__name__ == "transfer_to_store"
    async with sessions() as session:
        receipts = (await session.scalars(select(ConsumerReceipt).where(ConsumerReceipt.event_id == 424242))).all()
    assert [(r.consumer, r.event_id) for r in receipts] == [("transfer_to_store", 424242)]


async def test_the_delayed_success_card_places_its_order_through_the_webhook_endpoint(
    client: AsyncTestClient[Litestar], world: World, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    shop = await make_shop(world)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("CRO-1", 1)
    paid = await shopper.pay(await shopper.quote(), card="4000000000000077")
    assert paid.status_code == 303 and "/checkout/attempts/" in paid.headers["location"]
    async with serving(settings) as base, _worker(dataclasses.replace(settings, public_url=base)):
        for _ in range(150):  # the job is scheduled 2 s out
            done = await client.get(paid.headers["location"])
            if done.status_code == 303:
                break
            await asyncio.sleep(0.1)
        await _until(lambda: _all_processed(sessions))
    assert done.status_code == 303 and "/orders/" in done.headers["location"]
    (row,) = await _rows(sessions)
    assert (row.provider, row.type, row.store_id) == ("sandbox", "payment_intent.succeeded", shop.store.id)
    assert row.outcome.startswith("resumed")
    async with sessions() as session:
        bind_store(session, shop.store.id)
        assert await session.scalar(select(func.count()).select_from(Order)) == 1


async def test_a_payment_whose_checkout_process_died_is_adopted_from_its_webhook(
    client: AsyncTestClient[Litestar],
    world: World,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    """The checkout's process is killed right after the card was charged, before it recorded anything (on Stripe
    the sweeper cannot find such a payment). The provider's event names the attempt in its metadata: the order
    is placed from the webhook, once."""
    shop = await make_shop(world)
    shopper = Shopper(client, shop)
    await shopper.open()
    await shopper.add("CRO-1", 2)
    ref = await charge_then_kill(settings, shop.store.id, uuid.UUID(await shopper.quote()))
    async with sessions() as session:
        bind_store(session, shop.store.id)
        attempt = await session.scalar(select(CheckoutAttempt))
    assert attempt is not None and attempt.state == "reserved" and attempt.payment_intent_id is None

    deps = _deps(engine, sessions, redis, settings)
    strangers = [
        _event("payment_intent.succeeded", {"id": "sb_other", "metadata": {"attempt_id": str(uuid.uuid4())}}),
        _event("payment_intent.succeeded", {"id": "sb_other", "metadata": {"attempt_id": "order-17"}}),
        _event("payment_intent.succeeded", {"id": "sb_other", "metadata": "attempt"}),
    ]
    adopted = _event("payment_intent.succeeded", {"id": ref, "metadata": {"attempt_id": str(attempt.id)}})
    for payload in (*strangers, adopted, adopted):
        assert (await client.post("/webhooks/sandbox", content=payload, headers=_signed(settings, payload))).is_success
    *others, ours = await _rows(sessions)
    for row in others:
        assert await process_event(deps, row.id) == "ignored: no payment sb_other here"
    assert await process_event(deps, ours.id) == f"adopted by checkout attempt {attempt.id}: completed"

    async with sessions() as session:
        bind_store(session, shop.store.id)
        (order,) = (await session.scalars(select(Order))).all()
        intent = await session.scalar(select(PaymentIntent))
        level = await session.scalar(select(StockLevel).where(StockLevel.variant_id == shop.variants["CRO-1"]))
    assert intent is not None and (intent.provider_ref, intent.order_id) == (ref, order.id)
    assert order.payment_status == "paid" and order.total_minor == intent.captured_minor
    assert level is not None and (level.on_hand, level.reserved) == (48, 0)
    # The same payment's next event finds it recorded: nothing more happens.
    later = _event("charge.succeeded", {"id": "ch_1", "payment_intent": ref})
    await client.post("/webhooks/sandbox", content=later, headers=_signed(settings, later))
    assert await WebhookProcessor(deps).drain() == 1
    assert [r.outcome for r in await _rows(sessions)][-1].startswith("unchanged")
