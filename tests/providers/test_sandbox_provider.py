"""The sandbox payment provider against a real Redis: test cards, state rules, idempotency, webhooks."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from app.core.money import Money
from app.payments.provider import (
    AuthorizeRequest,
    CaptureRequest,
    CardDetails,
    PaymentError,
    PaymentProvider,
    PaymentStatus,
    ProviderResult,
    ProviderTimeout,
    RefundRequest,
    VoidRequest,
)
from app.payments.sandbox import STATE_TTL_S, SandboxProvider, provider_ref_for
from app.payments.signing import InvalidSignature, sign
from tests.providers.conftest import BASE_URL, WEBHOOK_SECRET

EUR_100 = Money(10_000, "EUR")
CVC = "917"


def card(number: str, *, exp_month: int = 12, exp_year: int = 2099, cvc: str = CVC) -> CardDetails:
    return CardDetails(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc, holder="Ada Lovelace")


def key() -> str:
    return f"test-{uuid.uuid4()}"


async def authorize(
    sandbox: SandboxProvider,
    number: str = "4242424242424242",
    *,
    amount: Money = EUR_100,
    capture: bool = False,
    idempotency_key: str | None = None,
    **card_kwargs: Any,
) -> ProviderResult:
    request = AuthorizeRequest(
        amount=amount,
        idempotency_key=idempotency_key or key(),
        card=card(number, **card_kwargs),
        capture=capture,
    )
    return await sandbox.authorize(request)


async def payment_keys(redis: Redis) -> list[bytes]:
    return [k async for k in redis.scan_iter(match="till:sandbox:pi:*")]


async def warm_pool(redis: Redis, size: int) -> None:
    """Open ``size`` pooled connections, so concurrent calls really overlap instead of queueing on connects."""

    async def ping() -> None:
        await redis.ping()  # type: ignore[misc]  # redis-py types ping as sync-or-async

    await asyncio.gather(*(ping() for _ in range(size)))


async def payment_error(coro: Any) -> PaymentError:
    with pytest.raises(PaymentError) as caught:
        await coro
    return caught.value


# -- the interface --------------------------------------------------------------------------------


def test_sandbox_is_a_payment_provider(sandbox: SandboxProvider) -> None:
    provider: PaymentProvider = sandbox  # checked by mypy
    assert isinstance(provider, PaymentProvider)
    assert provider.name == "sandbox"


def test_card_details_repr_masks_number_and_cvc() -> None:
    details = CardDetails(number="4242 4242 4242 4242", exp_month=4, exp_year=2031, cvc="987", holder="Ada")
    for text in (repr(details), str(details), repr(AuthorizeRequest(EUR_100, "k", card=details)), f"{details}"):
        assert "4242 4242 4242 4242" not in text
        assert "424242" not in text
        assert "987" not in text
        assert "4242'" in text  # the last 4 stay visible
    assert details.last4 == "4242"


# -- test cards -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", "visa"),
        ("5555555555554444", "mastercard"),
        ("4111111111111111", "visa"),  # any other Luhn-valid number
        ("378282246310005", "amex"),
    ],
)
async def test_success_cards_authorize(sandbox: SandboxProvider, number: str, brand: str) -> None:
    idempotency_key = key()
    result = await authorize(sandbox, number, idempotency_key=idempotency_key, cvc="1234" if brand == "amex" else CVC)
    assert result.status is PaymentStatus.AUTHORIZED
    assert result.provider_ref == provider_ref_for(idempotency_key)
    assert result.provider_ref.startswith("sb_") and len(result.provider_ref) == 27
    assert (result.amount, result.captured, result.refunded) == (EUR_100, Money(0, "EUR"), Money(0, "EUR"))
    assert (result.brand, result.last4, result.decline_code) == (brand, number[-4:], "")
    assert result.raw == {
        "id": result.provider_ref,
        "object": "payment_intent",
        "status": "authorized",
        "amount": 10_000,
        "currency": "EUR",
        "amount_captured": 0,
        "amount_refunded": 0,
        "brand": brand,
        "last4": number[-4:],
        "decline_code": "",
    }
    assert await sandbox.get_transaction(result.provider_ref) == result


async def test_capture_on_authorize(sandbox: SandboxProvider) -> None:
    result = await authorize(sandbox, capture=True)
    assert result.status is PaymentStatus.CAPTURED
    assert result.captured == EUR_100


@pytest.mark.parametrize(
    ("number", "kwargs", "decline_code"),
    [
        ("4000000000000002", {}, "card_declined"),
        ("4000000000009995", {}, "insufficient_funds"),
        ("4242424242424241", {}, "invalid_number"),  # fails Luhn
        ("4242abcd42424242", {}, "invalid_number"),
        ("4242", {}, "invalid_number"),
        ("4242424242424242", {"exp_year": 2020, "exp_month": 1}, "expired_card"),
        ("4242424242424242", {"exp_month": 13}, "invalid_expiry_month"),
        ("4242424242424242", {"cvc": "12"}, "invalid_cvc"),
        ("4242424242424242", {"cvc": "12345"}, "invalid_cvc"),
        ("4242424242424242", {"cvc": "12a"}, "invalid_cvc"),
    ],
)
async def test_declines(sandbox: SandboxProvider, number: str, kwargs: dict[str, Any], decline_code: str) -> None:
    result = await authorize(sandbox, number, capture=True, **kwargs)
    assert result.status is PaymentStatus.DECLINED
    assert result.decline_code == decline_code
    assert result.message
    assert result.captured == Money(0, "EUR")
    assert (await sandbox.get_transaction(result.provider_ref)).status is PaymentStatus.DECLINED
    error = await payment_error(sandbox.capture(CaptureRequest(result.provider_ref, EUR_100, key())))
    assert error.code == "invalid_state"


@pytest.mark.parametrize(("capture", "settled"), [(False, PaymentStatus.AUTHORIZED), (True, PaymentStatus.CAPTURED)])
async def test_three_d_secure_approved(sandbox: SandboxProvider, capture: bool, settled: PaymentStatus) -> None:
    result = await authorize(sandbox, "4000000000003220", capture=capture)
    assert result.status is PaymentStatus.REQUIRES_ACTION
    assert result.action_url == f"{BASE_URL}/sandbox/3ds/{result.provider_ref}"
    assert result.captured == Money(0, "EUR")
    # nothing can be captured while the challenge is open
    error = await payment_error(sandbox.capture(CaptureRequest(result.provider_ref, EUR_100, key())))
    assert error.code == "invalid_state"

    approved = await sandbox.complete_challenge(result.provider_ref, approve=True)
    assert approved.status is settled
    assert approved.captured == (EUR_100 if capture else Money(0, "EUR"))
    assert approved.action_url == ""
    assert await sandbox.get_transaction(result.provider_ref) == approved
    # a second answer (double click) changes nothing
    assert await sandbox.complete_challenge(result.provider_ref, approve=False) == approved


async def test_three_d_secure_failed(sandbox: SandboxProvider) -> None:
    result = await authorize(sandbox, "4000000000003220")
    failed = await sandbox.complete_challenge(result.provider_ref, approve=False)
    assert failed.status is PaymentStatus.DECLINED
    assert failed.decline_code == "authentication_failed"
    assert (await sandbox.get_transaction(result.provider_ref)).status is PaymentStatus.DECLINED
    assert (await sandbox.complete_challenge(result.provider_ref, approve=True)).status is PaymentStatus.DECLINED


async def test_challenge_on_a_plain_payment_is_refused(sandbox: SandboxProvider) -> None:
    result = await authorize(sandbox)
    assert (await payment_error(sandbox.complete_challenge(result.provider_ref, approve=True))).code == "invalid_state"
    assert (await payment_error(sandbox.settle_pending(result.provider_ref))).code == "invalid_state"
    assert (await payment_error(sandbox.complete_challenge("sb_nope", approve=True))).code == "unknown_payment"


@pytest.mark.parametrize(("capture", "settled"), [(False, PaymentStatus.AUTHORIZED), (True, PaymentStatus.CAPTURED)])
async def test_delayed_success_settles(sandbox: SandboxProvider, capture: bool, settled: PaymentStatus) -> None:
    result = await authorize(sandbox, "4000000000000077", capture=capture)
    assert result.status is PaymentStatus.PENDING
    assert (await sandbox.get_transaction(result.provider_ref)).status is PaymentStatus.PENDING
    done = await sandbox.settle_pending(result.provider_ref)
    assert done.status is settled
    assert done.captured == (EUR_100 if capture else Money(0, "EUR"))
    assert await sandbox.get_transaction(result.provider_ref) == done
    assert await sandbox.settle_pending(result.provider_ref) == done  # repeating is a no-op


async def test_timeout_card_records_the_charge(sandbox: SandboxProvider, redis: Redis) -> None:
    idempotency_key = key()
    request = AuthorizeRequest(EUR_100, idempotency_key, card=card("4000000000000119"))
    with pytest.raises(ProviderTimeout) as caught:
        await sandbox.authorize(request)
    assert isinstance(caught.value, PaymentError)
    assert caught.value.code == "timeout"
    ref = provider_ref_for(idempotency_key)
    assert caught.value.provider_ref == ref
    resolved = await sandbox.get_transaction(ref)
    assert resolved.status is PaymentStatus.AUTHORIZED
    assert resolved.amount == EUR_100
    # the retry with the same key answers the recorded result, without charging again
    assert await sandbox.authorize(request) == resolved
    assert len(await payment_keys(redis)) == 1


@pytest.mark.parametrize(
    ("token", "status", "decline_code"),
    [
        ("pm_card_visa", PaymentStatus.AUTHORIZED, ""),
        ("pm_card_chargeDeclinedInsufficientFunds", PaymentStatus.DECLINED, "insufficient_funds"),
        ("pm_card_threeDSecureRequired", PaymentStatus.REQUIRES_ACTION, ""),
    ],
)
async def test_payment_method_tokens(
    sandbox: SandboxProvider, token: str, status: PaymentStatus, decline_code: str
) -> None:
    result = await sandbox.authorize(AuthorizeRequest(EUR_100, key(), payment_method_token=token))
    assert (result.status, result.decline_code) == (status, decline_code)


async def test_bad_authorize_requests(sandbox: SandboxProvider) -> None:
    no_method = AuthorizeRequest(EUR_100, key())
    assert (await payment_error(sandbox.authorize(no_method))).code == "missing_payment_method"
    unknown = AuthorizeRequest(EUR_100, key(), payment_method_token="pm_nope")
    assert (await payment_error(sandbox.authorize(unknown))).code == "unknown_payment_method"
    zero = AuthorizeRequest(Money(0, "EUR"), key(), card=card("4242424242424242"))
    assert (await payment_error(sandbox.authorize(zero))).code == "invalid_amount"


# -- capture, refund, void ------------------------------------------------------------------------


async def test_full_capture(sandbox: SandboxProvider) -> None:
    auth = await authorize(sandbox)
    captured = await sandbox.capture(CaptureRequest(auth.provider_ref, EUR_100, key()))
    assert captured.status is PaymentStatus.CAPTURED
    assert captured.captured == EUR_100
    assert captured.raw["amount_captured"] == 10_000


async def test_partial_capture_once_releases_the_rest(sandbox: SandboxProvider) -> None:
    auth = await authorize(sandbox)
    captured = await sandbox.capture(CaptureRequest(auth.provider_ref, Money(6_000, "EUR"), key()))
    assert captured.status is PaymentStatus.CAPTURED
    assert (captured.amount, captured.captured) == (EUR_100, Money(6_000, "EUR"))
    again = await payment_error(sandbox.capture(CaptureRequest(auth.provider_ref, Money(4_000, "EUR"), key())))
    assert again.code == "invalid_state"
    assert (await sandbox.get_transaction(auth.provider_ref)).captured == Money(6_000, "EUR")


async def test_over_capture_and_bad_captures_are_refused(sandbox: SandboxProvider) -> None:
    auth = await authorize(sandbox)
    ref = auth.provider_ref
    over = await payment_error(sandbox.capture(CaptureRequest(ref, Money(10_001, "EUR"), key())))
    assert over.code == "amount_too_large"
    assert over.provider_ref == ref
    assert (await payment_error(sandbox.capture(CaptureRequest(ref, Money(100, "USD"), key())))).code == (
        "currency_mismatch"
    )
    assert (await payment_error(sandbox.capture(CaptureRequest(ref, Money(-1, "EUR"), key())))).code == (
        "invalid_amount"
    )
    assert (await payment_error(sandbox.capture(CaptureRequest("sb_unknown", EUR_100, key())))).code == (
        "unknown_payment"
    )
    # a refused capture changed nothing: the full amount can still be captured
    assert (await sandbox.capture(CaptureRequest(ref, EUR_100, key()))).captured == EUR_100


async def test_partial_refunds_then_over_refund(sandbox: SandboxProvider) -> None:
    auth = await authorize(sandbox, capture=True)
    ref = auth.provider_ref
    first = await sandbox.refund(RefundRequest(ref, Money(3_000, "EUR"), key(), reason="damaged"))
    assert (first.status, first.refunded) == (PaymentStatus.CAPTURED, Money(3_000, "EUR"))
    assert first.raw["refund_amount"] == 3_000 and str(first.raw["refund_id"]).startswith("re_")
    second = await sandbox.refund(RefundRequest(ref, Money(5_000, "EUR"), key()))
    assert (second.status, second.refunded) == (PaymentStatus.CAPTURED, Money(8_000, "EUR"))
    over = await payment_error(sandbox.refund(RefundRequest(ref, Money(2_001, "EUR"), key())))
    assert over.code == "amount_too_large"
    assert (await sandbox.get_transaction(ref)).refunded == Money(8_000, "EUR")
    last = await sandbox.refund(RefundRequest(ref, Money(2_000, "EUR"), key()))
    assert (last.status, last.refunded) == (PaymentStatus.REFUNDED, EUR_100)
    assert (await payment_error(sandbox.refund(RefundRequest(ref, Money(1, "EUR"), key())))).code == (
        "amount_too_large"
    )


async def test_refund_is_limited_to_the_captured_amount(sandbox: SandboxProvider) -> None:
    auth = await authorize(sandbox)
    not_captured = await payment_error(sandbox.refund(RefundRequest(auth.provider_ref, Money(1, "EUR"), key())))
    assert not_captured.code == "invalid_state"
    await sandbox.capture(CaptureRequest(auth.provider_ref, Money(4_000, "EUR"), key()))
    over = await payment_error(sandbox.refund(RefundRequest(auth.provider_ref, Money(4_001, "EUR"), key())))
    assert over.code == "amount_too_large"
    assert (await sandbox.refund(RefundRequest(auth.provider_ref, Money(4_000, "EUR"), key()))).status is (
        PaymentStatus.REFUNDED
    )


async def test_void(sandbox: SandboxProvider) -> None:
    auth = await authorize(sandbox)
    voided = await sandbox.void(VoidRequest(auth.provider_ref, key()))
    assert voided.status is PaymentStatus.VOIDED
    assert voided.captured == Money(0, "EUR")
    assert (await payment_error(sandbox.capture(CaptureRequest(auth.provider_ref, EUR_100, key())))).code == (
        "invalid_state"
    )
    assert (await payment_error(sandbox.void(VoidRequest(auth.provider_ref, key())))).code == "invalid_state"


async def test_void_after_capture_is_refused(sandbox: SandboxProvider) -> None:
    auth = await authorize(sandbox, capture=True)
    error = await payment_error(sandbox.void(VoidRequest(auth.provider_ref, key())))
    assert error.code == "invalid_state"
    assert (await sandbox.get_transaction(auth.provider_ref)).status is PaymentStatus.CAPTURED


async def test_void_an_open_challenge(sandbox: SandboxProvider) -> None:
    auth = await authorize(sandbox, "4000000000003220")
    assert (await sandbox.void(VoidRequest(auth.provider_ref, key()))).status is PaymentStatus.VOIDED
    # the shopper finishing the challenge afterwards does not revive it
    assert (await sandbox.complete_challenge(auth.provider_ref, approve=True)).status is PaymentStatus.VOIDED


# -- idempotency ----------------------------------------------------------------------------------


async def test_authorize_twice_with_one_key_charges_once(sandbox: SandboxProvider, redis: Redis) -> None:
    idempotency_key = key()
    first = await authorize(sandbox, idempotency_key=idempotency_key, capture=True)
    second = await authorize(sandbox, idempotency_key=idempotency_key, capture=True)
    assert second == first
    assert await payment_keys(redis) == [f"till:sandbox:pi:{first.provider_ref}".encode()]
    other = await authorize(sandbox, capture=True)
    assert other.provider_ref != first.provider_ref
    assert len(await payment_keys(redis)) == 2


async def test_idempotency_key_reused_for_another_request(sandbox: SandboxProvider) -> None:
    idempotency_key = key()
    await authorize(sandbox, idempotency_key=idempotency_key)
    different = authorize(sandbox, idempotency_key=idempotency_key, amount=Money(5, "EUR"))
    assert (await payment_error(different)).code == "idempotency_key_reused"
    auth = await authorize(sandbox, capture=True)
    reused = sandbox.refund(RefundRequest(auth.provider_ref, Money(1, "EUR"), idempotency_key))
    assert (await payment_error(reused)).code == "idempotency_key_reused"


async def test_concurrent_authorizes_with_one_key_make_one_payment(sandbox: SandboxProvider, redis: Redis) -> None:
    idempotency_key = key()
    await warm_pool(redis, 20)
    results = await asyncio.gather(*(authorize(sandbox, idempotency_key=idempotency_key) for _ in range(20)))
    assert all(r == results[0] for r in results)
    assert results[0].provider_ref == provider_ref_for(idempotency_key)
    assert results[0].status is PaymentStatus.AUTHORIZED
    assert len(await payment_keys(redis)) == 1
    assert len([k async for k in redis.scan_iter(match="till:sandbox:idem:*")]) == 1


async def test_repeated_capture_and_refund_apply_once(sandbox: SandboxProvider) -> None:
    auth = await authorize(sandbox)
    capture = CaptureRequest(auth.provider_ref, Money(7_000, "EUR"), key())
    captures = await asyncio.gather(*(sandbox.capture(capture) for _ in range(10)))
    assert all(c == captures[0] for c in captures)
    assert captures[0].captured == Money(7_000, "EUR")

    refund = RefundRequest(auth.provider_ref, Money(2_500, "EUR"), key())
    refunds = await asyncio.gather(*(sandbox.refund(refund) for _ in range(10)))
    assert all(r == refunds[0] for r in refunds)
    assert (await sandbox.get_transaction(auth.provider_ref)).refunded == Money(2_500, "EUR")
    # a later retry still answers the first result, even though the state moved on since
    await sandbox.refund(RefundRequest(auth.provider_ref, Money(500, "EUR"), key()))
    assert await sandbox.refund(refund) == refunds[0]
    assert (await sandbox.get_transaction(auth.provider_ref)).refunded == Money(3_000, "EUR")

    void = VoidRequest(auth.provider_ref, key())
    assert (await payment_error(sandbox.void(void))).code == "invalid_state"


async def test_concurrent_refunds_never_overdraw(sandbox: SandboxProvider, redis: Redis) -> None:
    auth = await authorize(sandbox, capture=True)
    await warm_pool(redis, 10)
    requests = [RefundRequest(auth.provider_ref, Money(3_000, "EUR"), key()) for _ in range(10)]
    outcomes = await asyncio.gather(*(sandbox.refund(r) for r in requests), return_exceptions=True)
    succeeded = [o for o in outcomes if isinstance(o, ProviderResult)]
    refused = [o for o in outcomes if isinstance(o, PaymentError)]
    assert len(succeeded) == 3
    assert len(refused) == 7 and all(e.code == "amount_too_large" for e in refused)
    assert (await sandbox.get_transaction(auth.provider_ref)).refunded == Money(9_000, "EUR")


async def test_concurrent_captures_and_voids_one_wins(sandbox: SandboxProvider, redis: Redis) -> None:
    auth = await authorize(sandbox)
    await warm_pool(redis, 10)
    outcomes = await asyncio.gather(
        *(
            sandbox.capture(CaptureRequest(auth.provider_ref, EUR_100, key()))
            if i % 2
            else sandbox.void(VoidRequest(auth.provider_ref, key()))
            for i in range(10)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(o, ProviderResult) for o in outcomes) == 1
    assert sum(isinstance(o, PaymentError) and o.code == "invalid_state" for o in outcomes) == 9
    final = await sandbox.get_transaction(auth.provider_ref)
    assert final.status in (PaymentStatus.CAPTURED, PaymentStatus.VOIDED)
    assert (final.status is PaymentStatus.CAPTURED) == (final.captured == EUR_100)


# -- storage --------------------------------------------------------------------------------------


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in (k, *_leaves(v))]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


async def test_no_card_number_or_cvc_in_redis(sandbox: SandboxProvider, redis: Redis) -> None:
    numbers = ["4242424242424242", "5555555555554444", "4000000000000002", "4000000000003220", "4000000000000077"]
    for number in numbers:
        await authorize(sandbox, number, capture=number == "4242424242424242")
    with pytest.raises(ProviderTimeout):
        await authorize(sandbox, "4000000000000119")
    await authorize(sandbox, "4242424242424241")  # invalid: still must not be kept
    numbers += ["4000000000000119", "4242424242424241"]

    keys = [k async for k in redis.scan_iter(match="*")]
    assert len(keys) == 2 * 7  # one state and one idempotency record per authorization, no locks left
    for redis_key in keys:
        raw = await redis.get(redis_key)
        assert raw is not None
        for number in numbers:
            assert number.encode() not in raw
            assert number[:12].encode() not in raw
            assert number.encode() not in redis_key
        leaves = _leaves(json.loads(raw))
        assert CVC not in leaves and int(CVC) not in leaves
        assert "cvc" not in leaves and "number" not in leaves


async def test_state_expires_after_seven_days(sandbox: SandboxProvider, redis: Redis) -> None:
    auth = await authorize(sandbox)
    ttl = await redis.ttl(f"till:sandbox:pi:{auth.provider_ref}")
    assert STATE_TTL_S - 60 < ttl <= STATE_TTL_S == 7 * 24 * 3600


async def test_state_is_shared_between_instances(redis: Redis, redis_url: str) -> None:
    web = SandboxProvider(redis, webhook_secret=WEBHOOK_SECRET)
    worker_redis = Redis.from_url(redis_url)
    worker = SandboxProvider(worker_redis, webhook_secret=WEBHOOK_SECRET)
    try:
        auth = await authorize(web, "4000000000003220")
        assert auth.action_url == f"/sandbox/3ds/{auth.provider_ref}"
        await web.complete_challenge(auth.provider_ref, approve=True)
        captured = await worker.capture(CaptureRequest(auth.provider_ref, EUR_100, key()))
        assert captured.status is PaymentStatus.CAPTURED
    finally:
        await worker_redis.aclose()


# -- webhooks -------------------------------------------------------------------------------------


async def test_webhook_event_roundtrip(sandbox: SandboxProvider) -> None:
    result = await authorize(sandbox, capture=True)
    payload, header = sandbox.event_for(result, "payment_intent.succeeded", created=1_800_000_000)
    event = sandbox.verify_webhook(payload, header, now=1_800_000_010)
    assert event.type == "payment_intent.succeeded"
    assert event.created == 1_800_000_000
    assert event.id.startswith("evt_")
    obj = event.data["object"]
    assert obj["id"] == result.provider_ref
    assert obj["status"] == "captured"
    assert (obj["amount"], obj["currency"], obj["amount_captured"], obj["amount_refunded"]) == (
        10_000,
        "EUR",
        10_000,
        0,
    )
    # the same event sent again keeps its id (receivers dedupe on it); another state gets another id
    again, _ = sandbox.event_for(result, "payment_intent.succeeded")
    assert json.loads(again)["id"] == event.id
    refunded = await sandbox.refund(RefundRequest(result.provider_ref, Money(1, "EUR"), key()))
    other, _ = sandbox.event_for(refunded, "charge.refunded")
    assert json.loads(other)["id"] != event.id


async def test_webhook_with_current_time_verifies(sandbox: SandboxProvider) -> None:
    payload, header = sandbox.event_for(await authorize(sandbox), "payment_intent.amount_capturable_updated")
    assert sandbox.verify_webhook(payload, header).type == "payment_intent.amount_capturable_updated"


async def test_webhook_rejections(sandbox: SandboxProvider, redis: Redis) -> None:
    result = await authorize(sandbox)
    payload, header = sandbox.event_for(result, "payment_intent.succeeded", created=1_800_000_000)
    stranger = SandboxProvider(redis, webhook_secret="whsec_someone_else")
    with pytest.raises(InvalidSignature, match="no matching signature"):
        stranger.verify_webhook(payload, header, now=1_800_000_000)
    with pytest.raises(InvalidSignature, match="no matching signature"):
        sandbox.verify_webhook(payload.replace(b'"authorized"', b'"captured"'), header, now=1_800_000_000)
    with pytest.raises(InvalidSignature, match="timestamp outside the tolerance"):
        sandbox.verify_webhook(payload, header, now=1_800_000_000 + 301)
    with pytest.raises(InvalidSignature, match="missing signature"):
        sandbox.verify_webhook(payload, "", now=1_800_000_000)


def test_signed_but_malformed_webhook_is_a_value_error(sandbox: SandboxProvider) -> None:
    for body in (b"not json", b"[]", b'{"id": "evt_1", "type": "x", "created": "soon", "data": {}}'):
        with pytest.raises(ValueError, match="malformed webhook payload") as caught:
            sandbox.verify_webhook(body, sign(body, WEBHOOK_SECRET, 1_800_000_000), now=1_800_000_000)
        assert not isinstance(caught.value, InvalidSignature)


async def test_authorize_whose_key_record_was_lost_refuses_rather_than_charging_twice(
    sandbox: SandboxProvider, redis: Redis
) -> None:
    idempotency_key = key()
    await authorize(sandbox, idempotency_key=idempotency_key)
    await redis.delete(f"till:sandbox:idem:{idempotency_key}")  # expired or lost; the payment is still there
    again = authorize(sandbox, idempotency_key=idempotency_key)
    assert (await payment_error(again)).code == "idempotency_key_reused"
    assert len(await payment_keys(redis)) == 1
