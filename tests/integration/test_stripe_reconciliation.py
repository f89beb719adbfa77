"""Reconciliation against Stripe's list APIs (auto-pagination), with recorded Stripe-shaped responses: localstripe
has no balance transactions or payouts. The injected drifts are found, and only those."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.tenancy import bind_store
from app.payments.models import PaymentIntent
from app.payments.providers import StripeProvider
from app.reconciliation import services
from app.reconciliation.models import ReconciliationDrift
from app.reconciliation.stripe_source import StripeLedger
from tests.integration.conftest import World
from tests.providers.test_stripe_provider import FixtureHTTPClient

R1, R2, R3, R4, R5, R6 = (f"pi_3QxRecon000000000000000{n}" for n in (1, 2, 3, 4, 5, 6))
PAYOUT = "po_1QxRecon0000000001"
WINDOW = services.DayWindow(datetime(2026, 12, 5, tzinfo=UTC), datetime(2026, 12, 6, tzinfo=UTC))


async def test_stripe_lists_are_paged_and_each_drift_is_found(
    world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    store = await world.store()
    at = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)
    async with sessions() as session, session.begin():
        bind_store(session, store.id)
        # R5: Stripe captured 25.00 of 26.00, Till recorded all of it; R6: Stripe charged 0.80, Till fixed 0.52.
        for ref, amount, fee in ((R1, 5000, 100), (R2, 3000, 70), (R4, 1500, 48), (R5, 2600, 64), (R6, 1800, 52)):
            session.add(
                PaymentIntent(
                    provider="stripe",
                    provider_ref=ref,
                    status="captured",
                    capture_method="automatic",
                    currency="EUR",
                    amount_minor=amount,
                    captured_minor=amount,
                    refunded_minor=0,
                    processing_fee_minor=fee,
                    created_at=at + timedelta(minutes=5),
                )
            )
    http = FixtureHTTPClient()
    http.route(
        "GET", "/v1/payment_intents", "reconciliation_payment_intents_page1", "reconciliation_payment_intents_page2"
    )
    http.route("GET", f"/v1/payment_intents/{R4}", "error_resource_missing", status=404)
    http.route("GET", "/v1/payouts", "reconciliation_payouts")
    http.route("GET", "/v1/balance_transactions", "reconciliation_balance_transactions")
    provider = StripeProvider("sk_test_fixture", webhook_secret="whsec_x", http_client=http, max_network_retries=0)

    run = await services.reconcile(sessions, store.id, StripeLedger.of(provider), window=WINDOW, trigger="test")
    assert run.status == "succeeded", run.error
    assert {k: v for k, v in run.totals.items() if v} == {
        "matched": 1,
        "missing_locally": 1,
        "missing_at_provider": 1,
        "refund_missing_locally": 1,
        "amount_mismatch": 1,
        "fee_mismatch": 1,
        "payout_mismatch": 1,
    }
    async with sessions() as session:
        bind_store(session, store.id)
        drifts = {d.kind: d for d in await session.scalars(select(ReconciliationDrift))}
    assert {k: (d.provider_ref, d.payout_ref, d.difference_minor) for k, d in drifts.items()} == {
        "missing_locally": (R3, "", 2000),
        "missing_at_provider": (R4, "", -1500),
        "refund_missing_locally": (R2, "", 1000),
        "amount_mismatch": (R5, "", -100),
        "fee_mismatch": (R6, "", 80 - 52),
        "payout_mismatch": ("", PAYOUT, 7000 - (4900 + 2930)),
    }

    # What reached "Stripe": two pages (the second after the first's last id), the window, the fee expanded.
    pages = http.requests("GET", "/v1/payment_intents")
    assert len(pages) == 2
    assert pages[0].params["created[gte]"] == str(int((WINDOW.start - services.MARGIN).timestamp()))
    assert pages[0].params["expand[0]"] == "data.latest_charge.balance_transaction"
    assert pages[1].params["starting_after"] == R2
    assert http.requests("GET", "/v1/balance_transactions")[0].params["payout"] == PAYOUT
