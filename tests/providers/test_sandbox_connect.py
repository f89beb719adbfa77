"""The sandbox's Connect and customers against a real Redis: accounts, onboarding, transfers, payouts."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from redis.asyncio import Redis

from app.core.money import Money
from app.payments.capabilities import SupportsConnect, SupportsCustomers
from app.payments.provider import PaymentError
from app.payments.sandbox import STATE_TTL_S, SandboxProvider
from app.payments.sandbox._connect import INITIAL_REQUIREMENTS
from tests.providers.conftest import BASE_URL, WEBHOOK_SECRET

EUR = "EUR"


async def enabled_account(sandbox: SandboxProvider, key: str = "acct-key") -> str:
    account = await sandbox.create_account(email="owner@shop.example", country="de", idempotency_key=key)
    await sandbox.complete_onboarding(account.id)
    return account.id


def test_the_sandbox_implements_connect_and_customers(sandbox: SandboxProvider) -> None:
    assert isinstance(sandbox, SupportsConnect)
    assert isinstance(sandbox, SupportsCustomers)


async def test_a_new_account_is_pending_with_requirements_and_its_key_replays(
    sandbox: SandboxProvider, redis: Redis
) -> None:
    first = await sandbox.create_account(email="o@shop.example", country="de", idempotency_key="store-1")
    assert first.id.startswith("acct_")
    assert first.status == "pending"
    assert (first.charges_enabled, first.payouts_enabled, first.details_submitted) == (False, False, False)
    assert first.requirements_due == INITIAL_REQUIREMENTS
    again = await sandbox.create_account(email="o@shop.example", country="DE", idempotency_key="store-1")
    assert again == first
    other = await sandbox.create_account(email="o@shop.example", country="DE", idempotency_key="store-2")
    assert other.id != first.id
    with pytest.raises(PaymentError) as reused:
        await sandbox.create_account(email="else@shop.example", country="DE", idempotency_key="store-1")
    assert reused.value.code == "idempotency_key_reused"
    ttl = await redis.ttl(f"till:sandbox:acct:{first.id}")
    assert STATE_TTL_S - 5 < ttl <= STATE_TTL_S


async def test_concurrent_creates_with_one_key_make_one_account(sandbox: SandboxProvider, redis: Redis) -> None:
    accounts = await asyncio.gather(
        *(sandbox.create_account(email="o@shop.example", country="DE", idempotency_key="same") for _ in range(10))
    )
    assert len({a.id for a in accounts}) == 1
    assert len([k async for k in redis.scan_iter("till:sandbox:acct:*")]) == 1


async def test_account_ids_cannot_be_derived_without_the_secret(redis: Redis) -> None:
    one = SandboxProvider(redis, webhook_secret="whsec_one")
    two = SandboxProvider(redis, webhook_secret="whsec_two")
    a = await one.create_account(email="o@x.example", country="DE", idempotency_key="connect-account:1")
    b = await two.create_account(email="o@x.example", country="DE", idempotency_key="connect-account:2")
    assert a.id != b.id


async def test_onboarding_link_points_at_the_sandbox_page_and_completing_enables(sandbox: SandboxProvider) -> None:
    account = await sandbox.create_account(email="o@shop.example", country="DE", idempotency_key="k")
    link = await sandbox.onboarding_link(
        account.id, refresh_url="https://shop.example/staff/payouts/refresh", return_url="/staff/payouts/return"
    )
    url = urlsplit(link.url)
    assert f"{url.scheme}://{url.netloc}" == BASE_URL
    assert url.path == f"/sandbox/connect/{account.id}"
    query = parse_qs(url.query)
    assert query["return"] == ["/staff/payouts/return"]
    assert query["refresh"] == ["https://shop.example/staff/payouts/refresh"]
    assert 0 < link.expires_at - datetime.now(UTC).timestamp() <= 300
    assert (await sandbox.get_account(account.id)).status == "pending"

    done = await sandbox.complete_onboarding(account.id)
    assert done.status == "enabled" and done.requirements_due == ()
    assert await sandbox.get_account(account.id) == done
    restricted = await sandbox.require_more(account.id)
    assert restricted.status == "restricted"
    assert restricted.requirements_due == ("individual.verification.document",)
    assert (await sandbox.complete_onboarding(account.id)).status == "enabled"


async def test_unknown_accounts_are_refused(sandbox: SandboxProvider) -> None:
    for call in (
        sandbox.get_account("acct_missing"),
        sandbox.onboarding_link("acct_missing", refresh_url="/r", return_url="/r"),
        sandbox.complete_onboarding("acct_missing"),
        sandbox.list_payouts("acct_missing"),
    ):
        with pytest.raises(PaymentError) as refused:
            await call
        assert refused.value.code == "unknown_account"


async def test_transfers_need_an_onboarded_account(sandbox: SandboxProvider) -> None:
    account = await sandbox.create_account(email="o@shop.example", country="DE", idempotency_key="k")
    with pytest.raises(PaymentError) as refused:
        await sandbox.create_transfer(
            amount=Money(1_000, EUR), destination=account.id, transfer_group="order-1", idempotency_key="t1"
        )
    assert refused.value.code == "account_not_enabled"
    assert await sandbox.list_payouts(account.id) == []


async def test_credits_and_transfers_fill_one_upcoming_payout_and_pay_out_moves_it_to_past(
    sandbox: SandboxProvider,
) -> None:
    account_id = await enabled_account(sandbox)
    transfer = await sandbox.create_transfer(
        amount=Money(1_000, EUR), destination=account_id, transfer_group="order-1", idempotency_key="t1"
    )
    assert transfer.id.startswith("tr_") and transfer.destination == account_id
    replay = await sandbox.create_transfer(
        amount=Money(1_000, EUR), destination=account_id, transfer_group="order-1", idempotency_key="t1"
    )
    assert replay == transfer  # once per key
    upcoming = await sandbox.credit(account_id, Money(2_500, EUR), idempotency_key="c1", source_ref="sb_1")
    assert upcoming.status == "in_transit" and upcoming.amount == Money(3_500, EUR)
    assert upcoming.arrival_date == datetime.now(UTC).date() + timedelta(days=2)
    assert (await sandbox.credit(account_id, Money(2_500, EUR), idempotency_key="c1", source_ref="sb_1")) == upcoming

    [only] = await sandbox.list_payouts(account_id)
    assert only.upcoming and only.amount == Money(3_500, EUR)

    paid_at = int(datetime(2030, 5, 17, 12, tzinfo=UTC).timestamp())
    [paid] = await sandbox.pay_out(account_id, now=paid_at)
    assert paid.id == only.id and paid.status == "paid" and not paid.upcoming
    assert paid.arrival_date.isoformat() == "2030-05-17"
    assert await sandbox.pay_out(account_id) == []  # nothing left: a no-op

    await sandbox.credit(account_id, Money(700, EUR), idempotency_key="c2")
    payouts = await sandbox.list_payouts(account_id)
    assert [(p.status, p.amount.amount_minor) for p in payouts] == [("in_transit", 700), ("paid", 3_500)]
    assert payouts[0].id != payouts[1].id
    assert len(await sandbox.list_payouts(account_id, limit=1)) == 1


async def test_one_open_payout_per_currency(sandbox: SandboxProvider) -> None:
    account_id = await enabled_account(sandbox)
    await sandbox.credit(account_id, Money(100, EUR), idempotency_key="e")
    await sandbox.credit(account_id, Money(200, "USD"), idempotency_key="u")
    amounts = {p.amount for p in await sandbox.list_payouts(account_id)}
    assert amounts == {Money(100, EUR), Money(200, "USD")}


async def test_concurrent_credits_all_count(sandbox: SandboxProvider) -> None:
    account_id = await enabled_account(sandbox)
    await asyncio.gather(
        *(sandbox.credit(account_id, Money(100, EUR), idempotency_key=f"c{i}") for i in range(20)),
        *(sandbox.credit(account_id, Money(100, EUR), idempotency_key="c0") for _ in range(5)),
    )
    [payout] = await sandbox.list_payouts(account_id)
    assert payout.amount == Money(2_000, EUR)


async def test_a_restricted_account_is_not_paid_out_and_bad_amounts_are_refused(sandbox: SandboxProvider) -> None:
    account_id = await enabled_account(sandbox)
    await sandbox.credit(account_id, Money(100, EUR), idempotency_key="c")
    await sandbox.require_more(account_id)
    with pytest.raises(PaymentError) as refused:
        await sandbox.pay_out(account_id)
    assert refused.value.code == "payouts_not_enabled"
    with pytest.raises(PaymentError) as zero:
        await sandbox.credit(account_id, Money(0, EUR), idempotency_key="z")
    assert zero.value.code == "invalid_amount"
    with pytest.raises(PaymentError) as reused:  # a payment's key is not a transfer's
        await sandbox.credit(account_id, Money(5, EUR), idempotency_key="c", source_ref="other")
    assert reused.value.code == "idempotency_key_reused"


async def test_account_updated_event_is_signed_and_stripe_shaped(sandbox: SandboxProvider) -> None:
    account_id = await enabled_account(sandbox)
    payload, header = await sandbox.account_event(account_id, created=1_800_000_000)
    event = sandbox.verify_webhook(payload, header, now=1_800_000_000)
    assert event.type == "account.updated"
    obj = event.data["object"]
    assert obj == {
        "id": account_id,
        "object": "account",
        "charges_enabled": True,
        "payouts_enabled": True,
        "details_submitted": True,
        "requirements": {"currently_due": []},
    }
    again, _ = await sandbox.account_event(account_id)
    assert json.loads(again)["id"] == event.id  # same state, same event id: receivers dedupe resends
    await sandbox.require_more(account_id)
    changed, _ = await sandbox.account_event(account_id)
    assert json.loads(changed)["id"] != event.id
    assert WEBHOOK_SECRET  # signed with the provider's secret (verify_webhook above)


async def test_ensure_customer_keeps_an_existing_one_and_replays_by_key(sandbox: SandboxProvider, redis: Redis) -> None:
    made = await sandbox.ensure_customer(email="a@x.example", name="Ada", existing_ref="", idempotency_key="cu1")
    assert made.startswith("cus_")
    assert (
        await sandbox.ensure_customer(email="a@x.example", name="Ada", existing_ref="", idempotency_key="cu1") == made
    )
    assert (
        await sandbox.ensure_customer(email="a@x.example", name="Ada", existing_ref=made, idempotency_key="cu2") == made
    )
    gone = await sandbox.ensure_customer(
        email="a@x.example", name="Ada", existing_ref="cus_gone", idempotency_key="cu3"
    )
    assert gone not in (made, "cus_gone")
    stored = json.loads(await redis.get(f"till:sandbox:cus:{made}") or b"{}")
    assert stored["email"] == "a@x.example"
    with pytest.raises(PaymentError):
        await sandbox.ensure_customer(email="b@x.example", name="Bo", existing_ref="", idempotency_key="cu1")
