"""Nightly reconciliation against the sandbox's ledger: a clean day reports 0; each injected drift is found, and
exactly those; re-sync clears what the provider can tell, a reason resolves the rest."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.audit import AuditEntry
from app.core.errors import ValidationFailed
from app.core.money import Money
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.orders.services import Actor
from app.payments.models import PaymentIntent, PaymentTransaction
from app.payments.operations import PaymentOperations
from app.payments.provider import AuthorizeRequest, CardDetails, RefundRequest
from app.payments.registry import provider_for
from app.payments.sandbox import SandboxProvider
from app.reconciliation import services
from app.reconciliation.models import ReconciliationDrift
from app.reconciliation.sources import SandboxLedger
from tests.integration.conftest import World
from tests.integration.shop import Shop, make_shop, place_order

VISA = CardDetails("4242424242424242", 12, 2034, "123")


def _today() -> services.DayWindow:
    now = datetime.now(UTC)
    return services.DayWindow(now - timedelta(hours=2), now + timedelta(hours=2))


async def _paid_refs(
    sessions: async_sessionmaker[AsyncSession], shop: Shop, redis: Redis, settings: Settings, n: int
) -> list[str]:
    refs = []
    for _ in range(n):
        order = await place_order(sessions, shop, redis, settings)
        async with sessions() as session:
            bind_store(session, shop.store.id)
            intent = await session.scalar(select(PaymentIntent).where(PaymentIntent.order_id == order.id))
            assert intent is not None and intent.status == "captured"
            refs.append(intent.provider_ref)
    return refs


def _nonzero(totals: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in totals.items() if v}


async def _drifts(
    sessions: async_sessionmaker[AsyncSession], store_id: uuid.UUID, run_id: uuid.UUID
) -> list[ReconciliationDrift]:
    async with sessions() as session:
        bind_store(session, store_id)
        return list(
            await session.scalars(
                select(ReconciliationDrift)
                .where(ReconciliationDrift.run_id == run_id)
                .order_by(ReconciliationDrift.kind)
            )
        )


async def test_a_clean_day_reports_zero_drift(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    refs = await _paid_refs(sessions, shop, redis, settings, 3)
    provider = cast(SandboxProvider, provider_for(shop.store, redis, settings))
    # a refund made through Till is on both sides
    async with sessions() as session:
        bind_store(session, shop.store.id)
        intent = await session.scalar(select(PaymentIntent).where(PaymentIntent.provider_ref == refs[0]))
        assert intent is not None
    actor = Actor(role=Role.MANAGER, label="Max Manager", source="staff")
    assert intent.order_id is not None
    await PaymentOperations(sessions, shop.store.id, provider).refund(
        intent.order_id, intent.id, amount_minor=500, reason="chipped", actor=actor
    )
    ledger = SandboxLedger(redis, shop.store.id)
    await ledger.simulate_payout("EUR")  # a payout that adds up

    run = await services.reconcile(sessions, shop.store.id, ledger, window=_today(), trigger="test")
    assert run.status == "succeeded", run.error
    assert _nonzero(run.totals) == {"matched": 3}
    assert (run.provider_count, run.local_count, run.payout_count) == (3, 3, 1)
    assert await _drifts(sessions, shop.store.id, run.id) == []

    # another store's payments are not this store's business (and its clean day is empty)
    other = await world.store()
    empty = await services.reconcile(sessions, other.id, SandboxLedger(redis, other.id), window=_today())
    assert _nonzero(empty.totals) == {} and empty.provider_count == 0


async def test_each_injected_drift_is_found_and_only_those(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    clean, short, refunded, fee, vanished = await _paid_refs(sessions, shop, redis, settings, 5)
    provider = cast(SandboxProvider, provider_for(shop.store, redis, settings))
    ledger = SandboxLedger(redis, shop.store.id)

    # a payout that does not add up (the provider paid 1.00 more than its transactions)
    payout = await ledger.simulate_payout("EUR", amount=5 * (1400 - 46) + 100)
    # a charge the store never recorded
    stray = await provider.authorize(AuthorizeRequest(Money(2500, "EUR"), "stray-charge", card=VISA, capture=True))
    # a local capture the provider lacks
    await redis.delete(f"till:sandbox:pi:{vanished}")
    # an amount mismatch: the provider captured 1.00 less than Till recorded
    await ledger.tamper(short, captured=1300)
    # a refund Till never recorded (made in the provider's dashboard)
    await provider.refund(RefundRequest(refunded, Money(400, "EUR"), "dashboard-refund"))
    # a fee mismatch: the provider charged 0.99 instead of 0.46
    await ledger.tamper(fee, fee=99)

    run = await services.reconcile(sessions, shop.store.id, ledger, window=_today(), trigger="test")
    assert run.status == "succeeded", run.error
    assert _nonzero(run.totals) == {
        "matched": 1,
        "missing_locally": 1,
        "missing_at_provider": 1,
        "amount_mismatch": 1,
        "refund_missing_locally": 1,
        "fee_mismatch": 1,
        "payout_mismatch": 1,
    }
    drifts = {d.kind: d for d in await _drifts(sessions, shop.store.id, run.id)}
    assert {k: (d.provider_ref, d.payout_ref, d.difference_minor) for k, d in drifts.items()} == {
        "missing_locally": (stray.provider_ref, "", 2500),
        "missing_at_provider": (vanished, "", -1400),
        "amount_mismatch": (short, "", -100),
        "refund_missing_locally": (refunded, "", 400),
        "fee_mismatch": (fee, "", 99 - 46),
        "payout_mismatch": ("", payout, 100),
    }
    assert drifts["fee_mismatch"].local["fee"] == 46 and drifts["fee_mismatch"].remote["fee"] == 99
    assert drifts["missing_locally"].intent_id is None and drifts["missing_locally"].local == {}
    assert all(d.status == "open" for d in drifts.values())
    assert clean not in {d.provider_ref for d in drifts.values()}

    # Re-sync the missing refund: Till records it (actor: reconciliation) and the drift clears.
    cleared = await services.resync(
        sessions, shop.store.id, provider, ledger, drifts["refund_missing_locally"].id, None
    )
    assert cleared.status == "cleared" and cleared.resolution.startswith("Re-synced from the provider")
    async with sessions() as session:
        bind_store(session, shop.store.id)
        rows = list(await session.scalars(select(PaymentTransaction).where(PaymentTransaction.kind == "refund")))
        assert [(r.amount_minor, r.actor) for r in rows] == [(400, "reconciliation")]
    # A fee mismatch cannot be re-synced away (the fee is fixed when the payment is made): it stays open ...
    still = await services.resync(sessions, shop.store.id, provider, ledger, drifts["fee_mismatch"].id, None)
    assert still.status == "open" and still.resolution == "Re-synced, but still: fee differs."
    # ... until resolved with a reason; an empty reason is refused, a second resolve too.
    async with sessions() as session, session.begin():
        bind_store(session, shop.store.id)
        with pytest.raises(ValidationFailed):
            await services.resolve(session, drifts["fee_mismatch"].id, "  ", None)
    async with sessions() as session, session.begin():
        bind_store(session, shop.store.id)
        done = await services.resolve(session, drifts["fee_mismatch"].id, "provider credited the difference", None)
        assert done.status == "resolved"
    async with sessions() as session, session.begin():
        bind_store(session, shop.store.id)
        with pytest.raises(services.DriftClosed):
            await services.resolve(session, drifts["fee_mismatch"].id, "again", None)
    async with sessions() as session:
        bind_store(session, shop.store.id)
        actions = [a.action for a in await session.scalars(select(AuditEntry).order_by(AuditEntry.created_at))]
        assert actions == ["reconciliation.resynced", "reconciliation.resynced", "reconciliation.resolved"]

    # The next run finds what is left (the refund is recorded now; the rest still differ).
    again = await services.reconcile(sessions, shop.store.id, ledger, window=_today(), trigger="test")
    assert _nonzero(again.totals) == {
        "matched": 2,
        "missing_locally": 1,
        "missing_at_provider": 1,
        "amount_mismatch": 1,
        "fee_mismatch": 1,
        "payout_mismatch": 1,
    }


async def test_a_payout_carrying_a_payment_till_does_not_know_is_unexplained(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> None:
    shop = await make_shop(world)
    await _paid_refs(sessions, shop, redis, settings, 1)
    provider = cast(SandboxProvider, provider_for(shop.store, redis, settings))
    stray = await provider.authorize(AuthorizeRequest(Money(1000, "EUR"), "stray-2", card=VISA, capture=True))
    ledger = SandboxLedger(redis, shop.store.id)
    payout = await ledger.simulate_payout("EUR")  # adds up, but carries the stray charge
    run = await services.reconcile(sessions, shop.store.id, ledger, window=_today())
    assert _nonzero(run.totals) == {"matched": 1, "missing_locally": 1, "payout_unexplained": 1}
    [unexplained] = [d for d in await _drifts(sessions, shop.store.id, run.id) if d.kind == "payout_unexplained"]
    assert (unexplained.provider_ref, unexplained.payout_ref) == (stray.provider_ref, payout)


async def test_the_nightly_job_reconciles_every_store_and_the_poller_job_rebuilds_the_switch_mirror(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis, settings: Settings
) -> None:
    from app.core import kill_switches
    from app.reconciliation import jobs

    shop = await make_shop(world)
    await _paid_refs(sessions, shop, redis, settings, 2)
    other = await world.store()
    # "Tonight" is tomorrow's 02:15: yesterday is today.
    done = await jobs.reconcile_stores(sessions, redis, settings, now=datetime.now(UTC) + timedelta(days=1))
    assert done >= 2
    for store_id, matched in ((shop.store.id, 2), (other.id, 0)):
        async with sessions() as session:
            bind_store(session, store_id)
            run = await services.latest_run(session)
        assert run is not None and run.status == "succeeded" and run.trigger == "nightly"
        assert _nonzero(run.totals) == ({"matched": matched} if matched else {})

    async with sessions() as session, session.begin():
        await kill_switches.engage(session, kill_switches.Switch.WEBHOOKS_PAUSED, None, principal=None)
    assert not await kill_switches.engaged_fast(redis, kill_switches.Switch.WEBHOOKS_PAUSED, shop.store.id)
    # The poller job rebuilds the mirror from the database first, then sits out (webhook processing is paused).
    assert await jobs.poll(sessions, redis, settings) == []
    assert await kill_switches.engaged_fast(redis, kill_switches.Switch.WEBHOOKS_PAUSED, shop.store.id)
