"""The provider call audit beyond payments: Connect (accounts, onboarding links, payouts), dispute evidence and card
reader calls (the sandbox's reader and Stripe Terminal) land in ``provider_calls`` with their operation, outcome and
latency, redacted: no e-mail, no evidence text, no onboarding link, no registration code, no connection token."""

from __future__ import annotations

import json
from typing import cast

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.money import Money
from app.core.rbac import Role
from app.core.tenancy import bind_store
from app.payments.capabilities import DisputeEvidence
from app.payments.connect import ConnectService
from app.payments.provider import AuthorizeRequest, PaymentError
from app.payments.registry import provider_for
from app.payments.sandbox import SandboxProvider
from app.payments.sandbox._disputes import dispute_id_for
from app.pos.readers import ReaderError, ReaderPaymentRequest, RegisterReaderRequest, reader_for
from app.pos.readers.sandbox import SandboxReader
from app.pos.readers.stripe_terminal import StripeTerminalReader
from app.reconciliation import provider_calls
from app.reconciliation.models import ProviderCall
from app.reconciliation.provider_calls import recorded_stripe
from tests.integration.conftest import World, sign_in
from tests.integration.shop import make_shop
from tests.providers.test_stripe_provider import FixtureHTTPClient

EMAIL = "owner.private@example.org"
EVIDENCE_TEXT = "Delivered to Jane Q. Cardholder, 12 Secret Lane"


async def _rows(sessions: async_sessionmaker[AsyncSession], redis: Redis, store_id: object) -> list[ProviderCall]:
    await provider_calls.flush(sessions.kw["bind"], redis)
    async with sessions() as session:
        bind_store(session, store_id)  # type: ignore[arg-type]
        return list(await session.scalars(select(ProviderCall).order_by(ProviderCall.called_at)))


async def test_connect_dispute_and_reader_calls_are_recorded_redacted(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    shop = await make_shop(world)
    store = shop.store

    # Connect, through the owner's onboarding path (the store's provider from the registry).
    async with sessions() as session, session.begin():
        service = ConnectService(session, store.id, redis=redis, settings=settings)
        link = await service.start_onboarding(
            email=EMAIL, return_url="https://till.test/back", refresh_url="https://till.test/again"
        )
        await service.payouts()

    # A dispute answered with evidence, and a second answer once it is under review (refused).
    provider = cast(SandboxProvider, provider_for(store, redis, settings))
    paid = await provider.authorize(
        AuthorizeRequest(Money(3000, "EUR"), "disputed-1", payment_method_token="pm_card_visa", capture=True)
    )
    await provider.open_dispute(paid.provider_ref, Money(3000, "EUR"))
    dispute_id = dispute_id_for(paid.provider_ref)
    evidence = DisputeEvidence(customer_email_address=EMAIL, uncategorized_text=EVIDENCE_TEXT)
    submitted = await provider.submit_dispute_evidence(dispute_id, evidence)
    assert submitted.status == "under_review"
    with pytest.raises(PaymentError):
        await provider.submit_dispute_evidence(dispute_id, DisputeEvidence(uncategorized_text="other"))

    # The sandbox's card reader: pairing (a wrong code, then the right one), a payment started and read.
    reader = cast(SandboxReader, reader_for(provider_for(store, redis, settings), redis))
    code = await reader.pairing_code("tmr_sb_audit")
    with pytest.raises(ReaderError):
        await reader.register(RegisterReaderRequest("000000" if code.code != "000000" else "111111", "Till 1", "p:0"))
    device = await reader.register(RegisterReaderRequest(code.code, "Till 1", "pair:audit"))
    started = await reader.start_payment(ReaderPaymentRequest(device.reader_ref, Money(450, "EUR"), "pos-card:a1"))
    await reader.payment_status(device.reader_ref, started.payment_ref)

    rows = await _rows(sessions, redis, store.id)
    by_op = {r.operation: r for r in rows}
    assert [(r.operation, r.outcome) for r in rows if r.operation not in ("authorize",)] == [
        ("connect.create_account", "ok"),
        ("connect.onboarding_link", "ok"),
        ("connect.list_payouts", "ok"),
        ("dispute.submit_evidence", "ok"),
        ("dispute.submit_evidence", "refused"),
        ("terminal.register", "refused"),
        ("terminal.register", "ok"),
        ("terminal.start_payment", "ok"),
        ("terminal.payment_status", "ok"),
    ]
    assert all(r.latency_ms >= 0 and r.called_at is not None for r in rows)

    account = by_op["connect.create_account"]
    assert list(account.request) == ["country"]
    assert account.provider_ref.startswith("acct_") and account.idempotency_key
    assert account.response["status"] == "pending"
    assert by_op["connect.onboarding_link"].response == {"expires_at": link.expires_at}

    disputes = [r for r in rows if r.operation == "dispute.submit_evidence"]
    assert disputes[0].provider_ref == dispute_id
    assert disputes[0].request == {
        "fields": ["customer_email_address", "uncategorized_text"],
        "chars": len(EMAIL) + len(EVIDENCE_TEXT),
        "submit": True,
    }
    assert disputes[0].response == {"status": "under_review", "submitted": True}
    assert disputes[1].error_code == "invalid_state"

    pairings = [r for r in rows if r.operation == "terminal.register"]
    assert pairings[0].error_code == "invalid_code"
    assert pairings[1].request == {"label": "Till 1", "location": ""} and pairings[1].idempotency_key == "pair:audit"
    assert pairings[1].response["reader"] == device.reader_ref
    start = by_op["terminal.start_payment"]
    assert start.request["amount_minor"] == 450 and start.idempotency_key == "pos-card:a1"
    assert start.provider_ref == started.payment_ref and start.response["state"] == "waiting"

    stored = json.dumps([[r.request, r.response, r.idempotency_key] for r in rows])
    for secret in (EMAIL, EVIDENCE_TEXT, link.url, code.code, "Jane"):
        assert secret not in stored

    # Managers find them on the Provider calls page: by the dispute, and by operation.
    manager = await world.staff(store, Role.MANAGER)
    await sign_in(client, manager.email)
    page = await client.get("/staff/payments/provider-calls", params={"q": dispute_id})
    assert page.status_code == 200
    assert page.text.count('data-testid="call-row"') == 2 and "invalid_state" in page.text
    readers = await client.get("/staff/payments/provider-calls", params={"operation": "terminal.start_payment"})
    assert readers.text.count('data-testid="call-row"') == 1 and "<summary>waiting</summary>" in readers.text


async def test_stripe_connect_dispute_and_terminal_calls_are_recorded_redacted(
    world: World, sessions: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    """The same recorder on Stripe (recorded Stripe answers through the SDK's HTTP client seam)."""
    store = await world.store()
    http = FixtureHTTPClient()
    http.route("POST", "/v1/accounts", "account")
    http.route("POST", "/v1/disputes/dp_1QxDispute0000000001", "dispute_under_review")
    http.route("POST", "/v1/terminal/connection_tokens", "terminal_connection_token")
    http.route("POST", "/v1/terminal/readers", "terminal_reader")
    provider = recorded_stripe(
        redis, store.id, "sk_test_fixture", webhook_secret="whsec_fixture", http_client=http, max_network_retries=0
    )
    account = await provider.create_account(email=EMAIL, country="de", idempotency_key=f"connect:{store.id}")
    evidence = DisputeEvidence(customer_email_address=EMAIL, uncategorized_text=EVIDENCE_TEXT)
    submitted = await provider.submit_dispute_evidence("dp_1QxDispute0000000001", evidence)
    reader = reader_for(provider, redis)
    assert isinstance(reader, StripeTerminalReader)
    secret = await reader.connection_token()
    device = await reader.register(RegisterReaderRequest("simulated-wpe", "Counter 1", "pair:c1", location="tml_1"))
    assert any(sent.params.get("email") == EMAIL for sent in http.sent)  # it did reach "Stripe"…

    rows = await _rows(sessions, redis, store.id)
    assert [(r.provider, r.operation, r.outcome) for r in rows] == [
        ("stripe", "connect.create_account", "ok"),
        ("stripe", "dispute.submit_evidence", "ok"),
        ("stripe", "terminal.connection_token", "ok"),
        ("stripe", "terminal.register", "ok"),
    ]
    assert rows[0].provider_ref == account.id and rows[0].idempotency_key == f"connect:{store.id}"
    assert rows[1].provider_ref == "dp_1QxDispute0000000001" and rows[1].response["status"] == submitted.status
    assert rows[2].response == {} and rows[3].response["reader"] == device.reader_ref
    stored = json.dumps([[r.request, r.response, r.idempotency_key] for r in rows])  # …but not the audit
    for kept_out in (secret, EMAIL, EVIDENCE_TEXT, "simulated-wpe", "sk_test_fixture"):
        assert kept_out not in stored
