"""Capture, void and refund through the API: once each under concurrency (real HTTP, real PostgreSQL),
timeouts resolved by asking the provider, approvals over the store's threshold, and clear refusals."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.outbox import OutboxEvent
from app.core.rbac import Role
from app.core.tenancy import system_scope
from app.orders.models import Order
from app.orders.services import Actor
from app.payments.models import PaymentIntent, PaymentTransaction
from app.payments.operations import PaymentOperations, stale_claims
from app.payments.provider import ProviderResult, ProviderTimeout
from app.payments.registry import provider_for
from app.payments.sandbox import SandboxProvider
from app.payments.services import ledger_totals, order_payment_status
from app.stores.models import Store
from tests.integration.conftest import World, bearer, issue_token
from tests.integration.http_server import serving
from tests.integration.shop import Shop, make_shop, place_order
from workers import tasks
from workers.context import TillContext


async def _set(sessions: async_sessionmaker[AsyncSession], store: Store, **values: Any) -> None:
    async with sessions() as session, session.begin():
        row = await session.get(Store, store.id)
        assert row is not None
        row.settings = {**row.settings, **values}
    store.settings = {**store.settings, **values}


async def _paid_order(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings, *, policy: str
) -> tuple[Shop, Order, PaymentIntent]:
    shop = await make_shop(world)
    await _set(sessions, shop.store, capture_policy=policy)
    order = await place_order(sessions, shop, redis, settings, {"MUG-1": 2, "BEAN-1": 1})
    async with sessions() as session:
        system_scope(session)
        intent = await session.scalar(select(PaymentIntent).where(PaymentIntent.order_id == order.id))
    assert intent is not None
    return shop, order, intent


async def _ledger(sessions: async_sessionmaker[AsyncSession], intent_id: uuid.UUID) -> list[PaymentTransaction]:
    async with sessions() as session:
        system_scope(session)
        rows = await session.scalars(
            select(PaymentTransaction)
            .where(PaymentTransaction.intent_id == intent_id)
            .order_by(PaymentTransaction.created_at, PaymentTransaction.id)
        )
        return list(rows)


async def _intent(sessions: async_sessionmaker[AsyncSession], intent_id: uuid.UUID) -> PaymentIntent:
    async with sessions() as session:
        system_scope(session)
        intent = await session.get(PaymentIntent, intent_id)
        assert intent is not None
        return intent


async def _order(sessions: async_sessionmaker[AsyncSession], order_id: uuid.UUID) -> Order:
    async with sessions() as session:
        system_scope(session)
        order = await session.get(Order, order_id)
        assert order is not None
        return order


async def _consistent(sessions: async_sessionmaker[AsyncSession], intent_id: uuid.UUID) -> PaymentIntent:
    """The intent's totals equal its ledger's sums, and the order's payment status follows them."""
    intent = await _intent(sessions, intent_id)
    totals = ledger_totals(await _ledger(sessions, intent_id))
    assert (totals.captured_minor, totals.refunded_minor) == (intent.captured_minor, intent.refunded_minor)
    assert intent.refunded_minor <= intent.captured_minor <= intent.amount_minor
    assert intent.order_id is not None
    assert (await _order(sessions, intent.order_id)).payment_status == order_payment_status(intent)
    return intent


def _url(order: Order, intent: PaymentIntent, op: str) -> str:
    return f"/api/v1/admin/orders/{order.id}/payments/{intent.id}/{op}"


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def test_twenty_parallel_captures_capture_once(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> None:
    shop, order, intent = await _paid_order(world, sessions, redis, settings, policy="at_fulfilment")
    assert intent.status == "authorized"
    auth = bearer(await issue_token(world, shop.store, Role.MANAGER))
    async with serving(settings) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        answers = await asyncio.gather(
            *(http.post(_url(order, intent, "capture"), json={}, headers={**auth, **_key()}) for _ in range(20))
        )
    codes = sorted(a.status_code for a in answers)
    assert codes.count(200) == 1, codes
    assert set(codes) <= {200, 409}, [a.json() for a in answers if a.status_code not in (200, 409)]
    refused = [a for a in answers if a.status_code == 409]
    assert all(a.headers["content-type"].startswith("application/problem+json") for a in refused)
    after = await _consistent(sessions, intent.id)
    assert after.captured_minor == order.total_minor and after.status == "captured"
    captures = [tx for tx in await _ledger(sessions, intent.id) if tx.kind == "capture" and tx.status != "failed"]
    assert len(captures) == 1
    seen = await provider_for(shop.store, redis, settings).get_transaction(intent.provider_ref)
    assert seen.captured.amount_minor == order.total_minor
    assert (await _order(sessions, order.id)).payment_status == "paid"


async def test_twenty_parallel_refunds_never_exceed_the_capture(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> None:
    shop, order, intent = await _paid_order(world, sessions, redis, settings, policy="at_checkout")
    assert intent.captured_minor == order.total_minor
    sixty_percent = order.total_minor * 60 // 100
    auth = bearer(await issue_token(world, shop.store, Role.MANAGER))
    body = {"amount_minor": sixty_percent, "reason": "damaged in transit"}
    async with serving(settings) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        answers = await asyncio.gather(
            *(http.post(_url(order, intent, "refund"), json=body, headers={**auth, **_key()}) for _ in range(20))
        )
    codes = [a.status_code for a in answers]
    assert codes.count(200) == 1, codes
    assert set(codes) <= {200, 409, 422}
    for refused in (a for a in answers if a.status_code != 200):
        problem = refused.json()
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "in progress" in problem["detail"] or problem.get("errors", problem).get("amount", "") or problem
    after = await _consistent(sessions, intent.id)
    assert after.refunded_minor == sixty_percent <= after.captured_minor
    seen = await provider_for(shop.store, redis, settings).get_transaction(intent.provider_ref)
    assert seen.refunded.amount_minor == sixty_percent
    assert (await _order(sessions, order.id)).payment_status == "partially_refunded"


@pytest.mark.parametrize("applied", [True, False], ids=["answer-lost", "request-lost"])
async def test_a_refund_that_timed_out_is_resolved_by_asking_the_provider(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings, applied: bool
) -> None:
    shop, order, intent = await _paid_order(world, sessions, redis, settings, policy="at_checkout")
    sandbox = provider_for(shop.store, redis, settings)
    assert isinstance(sandbox, SandboxProvider)
    await sandbox.fail_next(intent.provider_ref, "refund", applied=applied)
    auth = bearer(await issue_token(world, shop.store, Role.MANAGER))
    headers = {**auth, **_key()}
    body = {"amount_minor": 500, "reason": "late delivery"}
    async with serving(settings) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        first = await http.post(_url(order, intent, "refund"), json=body, headers=headers)
        retry = await http.post(_url(order, intent, "refund"), json=body, headers=headers)
    assert first.status_code == 200, first.text
    assert retry.status_code == 200 and retry.headers.get("idempotent-replayed") == "true"
    seen = await sandbox.get_transaction(intent.provider_ref)
    assert seen.refunded.amount_minor == 500  # one provider refund, whatever the timeout and the retry
    refunds = [tx for tx in await _ledger(sessions, intent.id) if tx.kind == "refund"]
    assert [(tx.amount_minor, tx.status, tx.reason) for tx in refunds] == [(500, "captured", "late delivery")]
    await _consistent(sessions, intent.id)


async def test_a_capture_the_provider_cannot_confirm_waits_for_the_worker(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> None:
    """Answer lost, then the provider is unreachable: 202, the capture stays claimed (a second one is a 409),
    and settling it later (the worker's job) records the one capture the provider made."""
    shop, order, intent = await _paid_order(world, sessions, redis, settings, policy="at_fulfilment")
    sandbox = provider_for(shop.store, redis, settings)
    assert isinstance(sandbox, SandboxProvider)

    class Unreachable(SandboxProvider):
        async def get_transaction(self, provider_ref: str) -> ProviderResult:
            raise ProviderTimeout()

    unreachable = Unreachable(redis, webhook_secret="x")
    await sandbox.fail_next(intent.provider_ref, "capture", applied=True)
    operations = PaymentOperations(sessions, shop.store.id, unreachable)
    actor = Actor(Role.MANAGER, "Mia", "staff")
    outcome = await operations.capture(order.id, intent.id, amount_minor=None, actor=actor)
    assert outcome.state == "pending"
    held = await _intent(sessions, intent.id)
    assert (held.pending_operation, held.captured_minor) == ("capture", 0)
    auth = bearer(await issue_token(world, shop.store, Role.MANAGER))
    async with serving(settings) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        second = await http.post(_url(order, intent, "capture"), json={}, headers={**auth, **_key()})
    assert second.status_code == 409 and "in progress" in second.json()["detail"]
    async with sessions() as session:
        assert await stale_claims(session) == []  # a claim is the worker's only after a minute
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE payment_intents SET pending_since = now() - interval '2 minutes' WHERE id = :i"),
            {"i": intent.id},
        )
    ctx = cast(TillContext, {"redis": redis, "settings": settings, "sessions": sessions})
    assert await tasks.settle_payment_operations(ctx) == 1
    assert await tasks.settle_payment_operations(ctx) == 0  # nothing left to settle
    after = await _consistent(sessions, intent.id)
    assert (after.pending_operation, after.captured_minor) == (None, order.total_minor)
    assert (await sandbox.get_transaction(intent.provider_ref)).captured.amount_minor == order.total_minor


async def test_partial_capture_then_refunds_and_the_order_follows(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    shop, order, intent = await _paid_order(world, sessions, redis, settings, policy="at_fulfilment")
    auth = bearer(await issue_token(world, shop.store, Role.STAFF))
    part = order.total_minor - 300
    captured = await client.post(
        _url(order, intent, "capture"), json={"amount_minor": part}, headers={**auth, **_key()}
    )
    assert captured.status_code == 200, captured.text
    assert captured.json()["payment_status"] == "paid"  # the rest of the authorisation is released
    first = await client.post(
        _url(order, intent, "refund"),
        json={"amount_minor": 100, "reason": "one cup chipped"},
        headers={**auth, **_key()},
    )
    second = await client.post(
        _url(order, intent, "refund"), json={"amount_minor": 200, "reason": "late"}, headers={**auth, **_key()}
    )
    assert (first.status_code, second.status_code) == (200, 200)
    ledger = second.json()["payments"]["intents"][0]
    assert [(t["kind"], t["amount_minor"]) for t in ledger["transactions"]][-3:] == [
        ("capture", part),
        ("refund", 100),
        ("refund", 200),
    ]
    assert ledger["fees"]["net_minor"] == part - 300 - ledger["fees"]["processing_fee_minor"]
    assert second.json()["payment_status"] == "partially_refunded"
    rest = await client.post(_url(order, intent, "refund"), json={"reason": "all of it"}, headers={**auth, **_key()})
    assert rest.status_code == 200 and rest.json()["payment_status"] == "refunded"
    await _consistent(sessions, intent.id)
    async with sessions() as session:
        system_scope(session)
        events = (
            await session.scalars(
                select(OutboxEvent.payload)
                .where(OutboxEvent.type == "order.payment_changed", OutboxEvent.aggregate_id == str(order.id))
                .order_by(OutboxEvent.id)
            )
        ).all()
    assert [(e["operation"], e["to"]) for e in events] == [
        ("capture", "paid"),
        ("refund", "partially_refunded"),
        ("refund", "partially_refunded"),
        ("refund", "refunded"),
    ]
    fees = await client.get(f"/api/v1/admin/orders/{order.id}/payments/{intent.id}/fees", headers=auth)
    assert fees.status_code == 200 and fees.json()["refunded_minor"] == part


async def test_bad_requests_are_refused_and_nothing_is_written(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    shop, order, intent = await _paid_order(world, sessions, redis, settings, policy="at_checkout")
    staff = bearer(await issue_token(world, shop.store, Role.STAFF))
    cashier = bearer(await issue_token(world, shop.store, Role.CASHIER))
    refund = _url(order, intent, "refund")
    cases = [
        (refund, {"amount_minor": 100, "reason": "x"}, staff, {}, 422, "Idempotency-Key"),
        (refund, {"amount_minor": 100, "reason": " "}, staff, _key(), 422, "reason"),
        (refund, {"amount_minor": 0, "reason": "x"}, staff, _key(), 422, "amount"),
        (refund, {"amount_minor": order.total_minor + 1, "reason": "x"}, staff, _key(), 422, "amount"),
        (refund, {"amount_minor": "ten", "reason": "x"}, staff, _key(), 400, "amount_minor"),
        (refund, {"amount_minor": 100, "reason": "x"}, cashier, _key(), 403, "staff"),
        (_url(order, intent, "capture"), {}, staff, _key(), 409, "authorised"),
        (_url(order, intent, "void"), {}, staff, _key(), 403, "manager"),
        (f"/api/v1/admin/orders/{order.id}/payments/{uuid.uuid4()}/refund", {"reason": "x"}, staff, _key(), 404, ""),
    ]
    for url, body, auth, key, status, words in cases:
        answer = await client.post(url, json=body, headers={**auth, **key})
        assert answer.status_code == status, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert words in answer.text
    manager = bearer(await issue_token(world, shop.store, Role.MANAGER))
    voided = await client.post(_url(order, intent, "void"), json={}, headers={**manager, **_key()})
    assert voided.status_code == 409 and "Refund it instead" in voided.json()["detail"]
    other = await make_shop(world)
    foreign = bearer(await issue_token(world, other.store, Role.OWNER))
    assert (await client.get(f"/api/v1/admin/orders/{order.id}/payments/", headers=foreign)).status_code == 404
    assert (await client.post(refund, json={"reason": "x"}, headers={**foreign, **_key()})).status_code == 404
    after = await _consistent(sessions, intent.id)
    assert (after.refunded_minor, after.pending_operation) == (0, None)
    assert [tx.kind for tx in await _ledger(sessions, intent.id)] == ["authorize"]


async def test_refunds_over_the_threshold_wait_for_a_manager(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    shop, order, intent = await _paid_order(world, sessions, redis, settings, policy="at_checkout")
    await _set(sessions, shop.store, refund_approval_threshold_minor=1000)
    staff = bearer(await issue_token(world, shop.store, Role.STAFF))
    manager = bearer(await issue_token(world, shop.store, Role.MANAGER))
    small = await client.post(
        _url(order, intent, "refund"), json={"amount_minor": 1000, "reason": "small"}, headers={**staff, **_key()}
    )
    assert small.status_code == 200 and small.json()["state"] == "done"
    big = await client.post(
        _url(order, intent, "refund"), json={"amount_minor": 1500, "reason": "whole mug"}, headers={**staff, **_key()}
    )
    assert big.status_code == 202 and big.json()["state"] == "awaiting_approval"
    request_id = big.json()["refund_request"]["id"]
    assert (await _intent(sessions, intent.id)).refunded_minor == 1000  # nothing more moved yet
    queue = await client.get("/api/v1/admin/refund-requests", headers=manager)
    assert [r["id"] for r in queue.json()] == [request_id]
    assert (await client.get("/api/v1/admin/refund-requests", headers=staff)).status_code == 403
    approve = f"/api/v1/admin/refund-requests/{request_id}/approve"
    answers = await asyncio.gather(
        *(client.post(approve, json={"note": "ok"}, headers={**manager, **_key()}) for _ in range(5))
    )
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409, 409]
    done = next(a for a in answers if a.status_code == 200).json()
    assert done["status"] == "approved" and done["transaction_id"]
    assert (await _consistent(sessions, intent.id)).refunded_minor == 2500
    again = await client.post(
        _url(order, intent, "refund"), json={"amount_minor": 1200, "reason": "more"}, headers={**staff, **_key()}
    )
    second_id = again.json()["refund_request"]["id"]
    reject = f"/api/v1/admin/refund-requests/{second_id}/reject"
    no_note = await client.post(reject, json={"note": ""}, headers={**manager, **_key()})
    assert no_note.status_code == 422 and "note" in no_note.text
    rejected = await client.post(reject, json={"note": "not our fault"}, headers={**manager, **_key()})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert (await _intent(sessions, intent.id)).refunded_minor == 2500
    direct = await client.post(
        _url(order, intent, "refund"), json={"amount_minor": 1400, "reason": "manager"}, headers={**manager, **_key()}
    )
    assert direct.status_code == 200  # managers refund directly
    assert (await _consistent(sessions, intent.id)).refunded_minor == 3900


async def test_the_ledger_is_append_only_in_the_database(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> None:
    _, _, intent = await _paid_order(world, sessions, redis, settings, policy="at_checkout")
    for statement in ("UPDATE payment_transactions SET amount_minor = 1", "DELETE FROM payment_transactions"):
        async with sessions() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(text(statement + " WHERE intent_id = :i"), {"i": intent.id})
    with pytest.raises(DBAPIError, match="refund_in_flight_within_captured"):
        async with sessions() as session, session.begin():
            await session.execute(
                text(
                    "UPDATE payment_intents SET pending_operation = 'refund', "
                    "pending_amount_minor = captured_minor + 1 WHERE id = :i"
                ),
                {"i": intent.id},
            )
