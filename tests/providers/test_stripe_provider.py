"""StripeProvider where localstripe cannot tell: Connect, idempotency keys, destination charges, errors.

Requests go to :class:`FixtureHTTPClient`, a ``stripe.HTTPClient`` that answers each (method, path)
with a recorded, Stripe-shaped JSON body from ``fixtures/stripe/`` and keeps every request, so the
tests check what reached "Stripe": form parameters, ``Idempotency-Key``, ``Stripe-Account`` and
``Stripe-Version`` headers.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe

from app.core.money import Money
from app.payments.capabilities import DisputeEvidence, SupportsConnect, SupportsCustomers, SupportsDisputes
from app.payments.provider import (
    AuthorizeRequest,
    CaptureRequest,
    CardDetails,
    PaymentError,
    PaymentProvider,
    PaymentStatus,
    ProviderTimeout,
    RefundRequest,
    VoidRequest,
)
from app.payments.providers import API_VERSION, StripeProvider
from app.payments.signing import InvalidSignature, sign
from tests.localstripe import free_port

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
SECRET = "whsec_fixture_test"
PI = "pi_3QxDest0000000000000001"
ACCOUNT = "acct_1QxStore000000001"
EUR_100 = Money(10_000, "EUR")


def fixture(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return body


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    headers: Mapping[str, str]
    params: Mapping[str, str]  # form body (POST) or query (GET), flattened as Stripe encodes it


class FixtureHTTPClient(stripe.HTTPClient):
    """Answers (method, path) with fixture bodies, in order (the last one repeats); records every request."""

    name = "fixtures"

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[tuple[str, str], deque[tuple[int, dict[str, Any]]]] = {}
        self.sent: list[Sent] = []

    def route(self, method: str, path: str, *answers: str, status: int = 200) -> None:
        self.routes[(method, path)] = deque((status, fixture(name)) for name in answers)

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        parts = urlsplit(url)
        body = post_data.decode() if isinstance(post_data, bytes) else (post_data or parts.query)
        self.sent.append(Sent(method.upper(), parts.path, dict(headers), dict(parse_qsl(body))))
        answers = self.routes.get((method.upper(), parts.path))
        if not answers:
            return json.dumps({"error": {"type": "invalid_request_error", "message": "no fixture"}}).encode(), 404, {}
        status, answer = answers.popleft() if len(answers) > 1 else answers[0]
        return json.dumps(answer).encode(), status, {"request-id": "req_fixture"}

    async def close_async(self) -> None:
        return None

    def requests(self, method: str, path: str) -> list[Sent]:
        return [sent for sent in self.sent if (sent.method, sent.path) == (method, path)]


class UnreachableHTTPClient(stripe.HTTPClient):
    """Every request fails the way the SDK's own clients report a timeout or refused connection."""

    name = "unreachable"

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated
            "Request timed out (Network error: A ReadTimeout was raised)", should_retry=True
        )


@pytest.fixture
def http() -> FixtureHTTPClient:
    return FixtureHTTPClient()


@pytest.fixture
def provider(http: FixtureHTTPClient) -> StripeProvider:
    return StripeProvider("sk_test_fixture", webhook_secret=SECRET, http_client=http, max_network_retries=0)


def key(name: str) -> str:
    return f"order-1042-{name}"


def flat(value: Any) -> str:
    return json.dumps(value)


# -- the interface and the pinned version ----------------------------------------------------------


def test_implements_the_protocols(provider: StripeProvider) -> None:
    assert isinstance(provider, PaymentProvider)
    assert isinstance(provider, SupportsCustomers)
    assert isinstance(provider, SupportsConnect)
    assert provider.name == "stripe"


def test_api_version_is_the_sdks() -> None:
    """The typed params mypy checks against belong to this version; bumping the SDK must revisit the pin."""
    assert stripe.api_version == API_VERSION


# -- authorize ---------------------------------------------------------------------------------------


async def test_destination_charge_params_and_headers(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("POST", "/v1/payment_intents", "payment_intent_requires_capture")
    request = AuthorizeRequest(
        amount=EUR_100,
        idempotency_key=key("authorize"),
        payment_method_token="pm_card_visa",
        return_url="https://shop.example/checkout/return",
        description="Order #1042",
        metadata={"order_id": "ord_1042"},
        customer_ref="cus_QxShopper00001",
        destination_account=ACCOUNT,
        application_fee=Money(500, "EUR"),
        transfer_group="ord_1042",
    )
    result = await provider.authorize(request)

    (sent,) = http.sent
    assert (sent.method, sent.path) == ("POST", "/v1/payment_intents")
    assert sent.headers["Idempotency-Key"] == key("authorize")
    assert sent.headers["Stripe-Version"] == API_VERSION
    assert "Stripe-Account" not in sent.headers  # a destination charge is made on the platform
    assert sent.params == {
        "amount": "10000",
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "confirm": "true",
        "capture_method": "manual",
        "metadata[order_id]": "ord_1042",
        "expand[0]": "latest_charge",
        "expand[1]": "payment_method",
        "allowed_payment_method_types[0]": "card",
        "return_url": "https://shop.example/checkout/return",
        "description": "Order #1042",
        "customer": "cus_QxShopper00001",
        "transfer_group": "ord_1042",
        "transfer_data[destination]": ACCOUNT,
        "application_fee_amount": "500",
    }
    assert result.status is PaymentStatus.AUTHORIZED
    assert (result.provider_ref, result.amount, result.captured, result.refunded) == (
        PI,
        EUR_100,
        Money(0, "EUR"),
        Money(0, "EUR"),
    )
    assert (result.brand, result.last4) == ("visa", "4242")
    assert result.raw["transfer_destination"] == ACCOUNT
    assert result.raw["application_fee_amount"] == 500


async def test_capture_on_authorize_and_no_connect_params_by_default(
    provider: StripeProvider, http: FixtureHTTPClient
) -> None:
    http.route("POST", "/v1/payment_intents", "payment_intent_requires_capture")
    await provider.authorize(AuthorizeRequest(EUR_100, key("a"), payment_method_token="pm_card_visa", capture=True))
    params = http.sent[0].params
    assert params["capture_method"] == "automatic"
    for absent in ("transfer_data[destination]", "application_fee_amount", "transfer_group", "customer", "return_url"):
        assert absent not in params


async def test_application_fee_needs_a_destination(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    request = AuthorizeRequest(EUR_100, key("a"), payment_method_token="pm_card_visa", application_fee=Money(5, "EUR"))
    with pytest.raises(PaymentError) as caught:
        await provider.authorize(request)
    assert caught.value.code == "invalid_request"
    assert http.sent == []


async def test_raw_is_redacted(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("POST", "/v1/payment_methods", "payment_method")
    http.route("POST", "/v1/payment_intents", "payment_intent_requires_action")
    card = CardDetails("4000 0000 0000 3220", 12, 2034, "123", holder="Ada Lovelace")
    result = await provider.authorize(AuthorizeRequest(EUR_100, key("a"), card=card))
    raw = json.dumps(result.raw)
    assert "client_secret" not in raw and "_secret_" not in raw
    assert "fingerprint" not in raw
    for text in (raw, repr(result)):
        assert "4000000000003220" not in text and "4000 0000 0000 3220" not in text
    # (action_url is Stripe's 3-D Secure page for the shopper's browser; Stripe puts the client secret in it)
    assert set(result.raw) <= {
        "id", "object", "status", "amount", "currency", "capture_method", "amount_capturable", "amount_received",
        "application_fee_amount", "transfer_group", "cancellation_reason", "created", "livemode", "customer",
        "payment_method", "latest_charge", "metadata", "transfer_destination", "next_action", "last_payment_error",
        "amount_captured", "amount_refunded", "brand", "last4", "refund_id", "refund_amount",
    }  # fmt: skip


async def test_test_card_becomes_a_payment_method_with_a_derived_key(
    provider: StripeProvider, http: FixtureHTTPClient
) -> None:
    http.route("POST", "/v1/payment_methods", "payment_method")
    http.route("POST", "/v1/payment_intents", "payment_intent_requires_action")
    card = CardDetails("4000 0000 0000 3220", 12, 2034, "123", holder="Ada Lovelace")
    result = await provider.authorize(AuthorizeRequest(EUR_100, key("authorize"), card=card, return_url="https://r"))

    method_call, intent_call = http.sent
    assert method_call.path == "/v1/payment_methods"
    assert method_call.headers["Idempotency-Key"] == key("authorize") + ":payment_method"
    assert method_call.params["card[number]"] == "4000000000003220"
    assert method_call.params["billing_details[name]"] == "Ada Lovelace"
    assert intent_call.headers["Idempotency-Key"] == key("authorize")
    assert intent_call.params["payment_method"] == "pm_1QxDestCard0000000000001"
    # 3-D Secure on real Stripe with a return_url: a redirect
    assert result.status is PaymentStatus.REQUIRES_ACTION
    assert result.action_url.startswith("https://hooks.stripe.com/3d_secure_2/hosted?")


async def test_live_key_refuses_raw_cards() -> None:
    http = FixtureHTTPClient()
    live = StripeProvider("sk_live_fixture", webhook_secret=SECRET, http_client=http)
    card = CardDetails("4242424242424242", 12, 2034, "123")
    with pytest.raises(PaymentError) as caught:
        await live.authorize(AuthorizeRequest(EUR_100, key("a"), card=card))
    assert caught.value.code == "raw_card_refused"
    assert "4242424242424242" not in str(caught.value)
    assert http.sent == []


async def test_card_error_is_a_declined_result(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("POST", "/v1/payment_intents", "error_card_declined", status=402)
    http.route("GET", "/v1/payment_intents/pi_3QxDecl0000000000000001", "payment_intent_declined")
    result = await provider.authorize(AuthorizeRequest(EUR_100, key("a"), payment_method_token="pm_card_visa"))
    assert result.status is PaymentStatus.DECLINED
    assert (result.provider_ref, result.decline_code) == ("pi_3QxDecl0000000000000001", "insufficient_funds")
    assert result.message == "Your card has insufficient funds."
    assert result.captured == Money(0, "EUR")
    assert http.sent[1].params == {"expand[0]": "latest_charge", "expand[1]": "payment_method"}


async def test_reused_idempotency_key_is_refused(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("POST", "/v1/payment_intents", "error_idempotency", status=400)
    with pytest.raises(PaymentError) as caught:
        await provider.authorize(AuthorizeRequest(EUR_100, key("authorize"), payment_method_token="pm_card_visa"))
    assert caught.value.code == "idempotency_key_reused"


# -- capture, void, refund, get ----------------------------------------------------------------------


async def test_partial_capture_sends_the_amount_and_key(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("POST", f"/v1/payment_intents/{PI}/capture", "payment_intent_partially_captured")
    result = await provider.capture(CaptureRequest(PI, Money(6_000, "EUR"), key("capture")))
    (sent,) = http.sent
    assert sent.headers["Idempotency-Key"] == key("capture")
    assert sent.params["amount_to_capture"] == "6000"
    # Stripe (API >= 2025-03-31) creates no refund for the released rest: amount_refunded stays 0
    assert result.status is PaymentStatus.CAPTURED
    assert (result.captured, result.refunded) == (Money(6_000, "EUR"), Money(0, "EUR"))


async def test_capture_in_wrong_state_uses_stripes_code(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("POST", f"/v1/payment_intents/{PI}/capture", "error_unexpected_state", status=400)
    with pytest.raises(PaymentError) as caught:
        await provider.capture(CaptureRequest(PI, EUR_100, key("capture")))
    assert (caught.value.code, caught.value.provider_ref) == ("invalid_state", PI)
    assert len(http.sent) == 1  # a known code needs no second look


async def test_void_sends_the_key(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("POST", f"/v1/payment_intents/{PI}/cancel", "payment_intent_requires_capture")
    await provider.void(VoidRequest(PI, key("void")))
    assert http.sent[0].headers["Idempotency-Key"] == key("void")


async def test_unknown_payment(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("GET", "/v1/payment_intents/pi_missing", "error_resource_missing", status=404)
    with pytest.raises(PaymentError) as caught:
        await provider.get_transaction("pi_missing")
    assert caught.value.code == "unknown_payment"


async def test_refund_params_reason_and_key(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("GET", f"/v1/payment_intents/{PI}", "payment_intent_partially_captured", "payment_intent_refunded")
    http.route("POST", "/v1/refunds", "refund")
    result = await provider.refund(RefundRequest(PI, Money(6_000, "EUR"), key("refund"), reason="Customer request"))
    (sent,) = http.requests("POST", "/v1/refunds")
    assert sent.headers["Idempotency-Key"] == key("refund")
    assert sent.params == {
        "payment_intent": PI,
        "amount": "6000",
        "reason": "requested_by_customer",
        "metadata[reason]": "Customer request",
        "metadata[idempotency_key]": key("refund"),
    }
    assert result.status is PaymentStatus.REFUNDED
    assert (result.captured, result.refunded) == (Money(6_000, "EUR"), Money(6_000, "EUR"))
    assert result.raw["refund_id"] == "re_3QxDest0000000000000001"


async def test_free_text_refund_reason_stays_in_metadata(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("GET", f"/v1/payment_intents/{PI}", "payment_intent_partially_captured")
    http.route("POST", "/v1/refunds", "refund")
    await provider.refund(RefundRequest(PI, Money(2_000, "EUR"), key("refund"), reason="arrived broken"))
    (sent,) = http.requests("POST", "/v1/refunds")
    assert "reason" not in sent.params
    assert sent.params["metadata[reason]"] == "arrived broken"


async def test_retried_refund_is_answered_not_refused(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    """The first try went through (its answer was lost): the payment is now fully refunded."""
    http.route("GET", f"/v1/payment_intents/{PI}", "payment_intent_refunded")
    http.route("GET", "/v1/refunds", "refund_list")
    result = await provider.refund(RefundRequest(PI, Money(6_000, "EUR"), "refund-key-1"))
    assert http.requests("POST", "/v1/refunds") == []
    assert http.requests("GET", "/v1/refunds")[0].params == {"payment_intent": PI, "limit": "100"}
    assert (result.status, result.raw["refund_id"]) == (PaymentStatus.REFUNDED, "re_3QxDest0000000000000001")

    with pytest.raises(PaymentError) as caught:  # another key: a new refund, and nothing is left
        await provider.refund(RefundRequest(PI, Money(1, "EUR"), "refund-key-2"))
    assert caught.value.code == "amount_too_large"


# -- no answer ---------------------------------------------------------------------------------------


async def test_connection_errors_are_timeouts() -> None:
    provider = StripeProvider(
        "sk_test_fixture", webhook_secret=SECRET, http_client=UnreachableHTTPClient(), max_network_retries=0
    )
    calls = [
        provider.authorize(AuthorizeRequest(EUR_100, key("a"), payment_method_token="pm_card_visa")),
        provider.capture(CaptureRequest(PI, EUR_100, key("c"))),
        provider.void(VoidRequest(PI, key("v"))),
        provider.refund(RefundRequest(PI, EUR_100, key("r"))),
        provider.get_transaction(PI),
        provider.create_transfer(amount=EUR_100, destination=ACCOUNT, transfer_group="", idempotency_key=key("t")),
    ]
    for call in calls:
        with pytest.raises(ProviderTimeout) as caught:
            await call
        assert caught.value.code == "timeout"


async def test_nothing_listening_is_a_timeout() -> None:
    """The real HTTP client against a port nobody listens on."""
    provider = StripeProvider(
        "sk_test_fixture", webhook_secret=SECRET, api_base=f"http://127.0.0.1:{free_port()}", max_network_retries=0
    )
    try:
        with pytest.raises(ProviderTimeout):
            await provider.get_transaction(PI)
    finally:
        await provider.aclose()


async def test_stripe_5xx_is_a_timeout(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("POST", f"/v1/payment_intents/{PI}/capture", "error_api", status=500)
    with pytest.raises(ProviderTimeout) as caught:
        await provider.capture(CaptureRequest(PI, EUR_100, key("c")))
    assert caught.value.provider_ref == PI


# -- customers -----------------------------------------------------------------------------------------


async def test_existing_customer_is_reused(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("GET", "/v1/customers/cus_QxShopper00001", "customer")
    ref = await provider.ensure_customer(
        email="ada@example.com", name="Ada", existing_ref="cus_QxShopper00001", idempotency_key=key("customer")
    )
    assert ref == "cus_QxShopper00001"
    assert http.requests("POST", "/v1/customers") == []


@pytest.mark.parametrize(
    ("existing", "answer", "status"),
    [("cus_QxShopper00001", "customer_deleted", 200), ("cus_gone", "error_resource_missing", 404), ("", "", 0)],
)
async def test_customer_is_created_when_missing(
    provider: StripeProvider, http: FixtureHTTPClient, existing: str, answer: str, status: int
) -> None:
    if existing:
        http.route("GET", f"/v1/customers/{existing}", answer, status=status)
    http.route("POST", "/v1/customers", "customer_new")
    ref = await provider.ensure_customer(
        email="ada@example.com", name="Ada Lovelace", existing_ref=existing, idempotency_key=key("customer")
    )
    assert ref == "cus_QxShopper00002"
    (sent,) = http.requests("POST", "/v1/customers")
    assert sent.headers["Idempotency-Key"] == key("customer")
    assert sent.params == {"email": "ada@example.com", "name": "Ada Lovelace"}


# -- Connect -------------------------------------------------------------------------------------------


async def test_create_express_account(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("POST", "/v1/accounts", "account")
    account = await provider.create_account(email="owner@store.example", country="de", idempotency_key=key("acct"))
    (sent,) = http.sent
    assert sent.headers["Idempotency-Key"] == key("acct")
    assert sent.headers["Stripe-Version"] == API_VERSION
    assert sent.params == {
        "type": "express",
        "email": "owner@store.example",
        "country": "DE",
        "capabilities[card_payments][requested]": "true",
        "capabilities[transfers][requested]": "true",
    }
    assert account.id == ACCOUNT
    assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (False, False, False)
    assert account.requirements_due == ("external_account", "tos_acceptance.date", "business_profile.url")
    assert account.status == "pending"


async def test_onboarding_link(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("POST", "/v1/account_links", "account_link")
    link = await provider.onboarding_link(
        ACCOUNT, refresh_url="https://shop.example/connect/refresh", return_url="https://shop.example/connect/done"
    )
    assert http.sent[0].params == {
        "account": ACCOUNT,
        "refresh_url": "https://shop.example/connect/refresh",
        "return_url": "https://shop.example/connect/done",
        "type": "account_onboarding",
    }
    assert link.url.startswith("https://connect.stripe.com/setup/")
    assert link.expires_at == 1795430600


async def test_get_account(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("GET", f"/v1/accounts/{ACCOUNT}", "account_enabled")
    account = await provider.get_account(ACCOUNT)
    assert (account.status, account.requirements_due) == ("enabled", ())


async def test_unknown_account(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("GET", "/v1/accounts/acct_gone", "error_resource_missing", status=404)
    with pytest.raises(PaymentError) as caught:
        await provider.get_account("acct_gone")
    assert caught.value.code == "unknown_account"


async def test_transfer_from_a_payment(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("GET", f"/v1/payment_intents/{PI}", "payment_intent_partially_captured")
    http.route("POST", "/v1/transfers", "transfer")
    transfer = await provider.create_transfer(
        amount=Money(9_500, "EUR"),
        destination=ACCOUNT,
        transfer_group="ord_1042",
        idempotency_key=key("transfer"),
        source_ref=PI,
    )
    (sent,) = http.requests("POST", "/v1/transfers")
    assert sent.headers["Idempotency-Key"] == key("transfer")
    assert sent.params == {
        "amount": "9500",
        "currency": "eur",
        "destination": ACCOUNT,
        "transfer_group": "ord_1042",
        "source_transaction": "ch_3QxDest0000000000000001",  # the payment's charge, as Stripe requires
    }
    assert (transfer.id, transfer.amount, transfer.destination, transfer.transfer_group) == (
        "tr_1QxTransfer000000001",
        Money(9_500, "EUR"),
        ACCOUNT,
        "ord_1042",
    )


async def test_transfer_without_source(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("POST", "/v1/transfers", "transfer")
    await provider.create_transfer(
        amount=Money(9_500, "EUR"), destination=ACCOUNT, transfer_group="", idempotency_key="k"
    )
    (sent,) = http.sent
    assert "source_transaction" not in sent.params and "transfer_group" not in sent.params


async def test_payouts_of_the_connected_account(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("GET", "/v1/payouts", "payout_list")
    payouts = await provider.list_payouts(ACCOUNT, limit=3)
    (sent,) = http.sent
    assert sent.headers["Stripe-Account"] == ACCOUNT
    assert sent.params == {"limit": "3"}
    assert [p.id for p in payouts] == ["po_1QxPayoutTransit0001", "po_1QxPayoutPaid00001", "po_1QxPayoutFailed0001"]
    transit, paid, failed = payouts
    assert (transit.status, transit.upcoming, transit.amount) == ("in_transit", True, Money(18_250, "EUR"))
    assert transit.arrival_date == date(2026, 11, 27)
    assert (paid.status, paid.upcoming) == ("paid", False)
    assert (failed.status, failed.failure_message) == ("failed", "The bank account has been closed.")


# -- webhooks --------------------------------------------------------------------------------------------

EVENT = {
    "id": "evt_3QxDest0000000000000001",
    "object": "event",
    "api_version": API_VERSION,
    "created": 1795430700,
    "data": {"object": {"id": PI, "object": "payment_intent", "status": "succeeded", "amount": 10000}},
    "livemode": False,
    "pending_webhooks": 1,
    "request": {"id": "req_fixture", "idempotency_key": key("capture")},
    "type": "payment_intent.succeeded",
}
NOW = 1795430705


def signed(body: bytes, timestamp: int = NOW - 5, secret: str = SECRET) -> str:
    return str(stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp))


def test_webhook_valid(provider: StripeProvider) -> None:
    body = json.dumps(EVENT).encode()
    event = provider.verify_webhook(body, signed(body), now=NOW)
    assert (event.id, event.type, event.created) == (EVENT["id"], "payment_intent.succeeded", 1795430700)
    assert event.data["object"]["id"] == PI
    # our own signer speaks the same scheme
    assert provider.verify_webhook(body, sign(body, SECRET, NOW), now=NOW).id == EVENT["id"]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("", "missing signature"),
        ("   ", "missing signature"),
        ("t=1795430700", "missing signature"),
        ("v1=abc", "malformed signature header"),
        ("garbage", "malformed signature header"),
    ],
)
def test_webhook_missing_or_malformed_signature(provider: StripeProvider, header: str, reason: str) -> None:
    with pytest.raises(InvalidSignature) as caught:
        provider.verify_webhook(json.dumps(EVENT).encode(), header, now=NOW)
    assert caught.value.reason == reason


def test_webhook_bad_signature(provider: StripeProvider) -> None:
    body = json.dumps(EVENT).encode()
    for header in (signed(body, secret="whsec_someone_else"), signed(body + b" ")):
        with pytest.raises(InvalidSignature) as caught:
            provider.verify_webhook(body, header, now=NOW)
        assert caught.value.reason == "no matching signature"
    tampered = json.dumps({**EVENT, "type": "payment_intent.canceled"}).encode()
    with pytest.raises(InvalidSignature):
        provider.verify_webhook(tampered, signed(body), now=NOW)


@pytest.mark.parametrize("offset", [301, -301, 3600])
def test_webhook_stale_or_future_timestamp(provider: StripeProvider, offset: int) -> None:
    body = json.dumps(EVENT).encode()
    header = signed(body, timestamp=NOW - offset)
    with pytest.raises(InvalidSignature) as caught:
        provider.verify_webhook(body, header, now=NOW)
    assert caught.value.reason == "timestamp outside the tolerance"
    assert provider.verify_webhook(body, header, now=NOW - offset + 300).id == EVENT["id"]  # the edge is inside


@pytest.mark.parametrize("body", [b"not json", b"[]", json.dumps({"id": "evt_1", "type": "x"}).encode()])
def test_webhook_signed_but_malformed_body(provider: StripeProvider, body: bytes) -> None:
    with pytest.raises(ValueError) as caught:
        provider.verify_webhook(body, signed(body), now=NOW)
    assert not isinstance(caught.value, InvalidSignature)


def test_webhook_binary_body_is_not_verified(provider: StripeProvider) -> None:
    with pytest.raises(InvalidSignature):
        provider.verify_webhook(b"\xff\xfe", "t=1795430700,v1=00", now=NOW)


# -- disputes (localstripe has none: recorded fixtures) ---------------------------------------------

DISPUTE = "dp_1QxDispute0000000001"


async def test_dispute_evidence_is_submitted_with_typed_fields_and_a_derived_key(
    provider: StripeProvider, http: FixtureHTTPClient
) -> None:
    assert isinstance(provider, SupportsDisputes)
    http.route("POST", f"/v1/disputes/{DISPUTE}", "dispute_under_review")
    evidence = DisputeEvidence(
        customer_name="Ann Example",
        customer_email_address="ann@example.com",
        shipping_tracking_number="00340434161094042557",
        product_description="2 x Enamel mug (MUG-1)",
        uncategorized_text="Receipt for order #1042 ...",
    )
    submission = await provider.submit_dispute_evidence(DISPUTE, evidence)
    again = await provider.submit_dispute_evidence(DISPUTE, evidence)

    first, second = http.requests("POST", f"/v1/disputes/{DISPUTE}")
    assert first.params == {
        "evidence[customer_name]": "Ann Example",
        "evidence[customer_email_address]": "ann@example.com",
        "evidence[shipping_tracking_number]": "00340434161094042557",
        "evidence[product_description]": "2 x Enamel mug (MUG-1)",
        "evidence[uncategorized_text]": "Receipt for order #1042 ...",
        "submit": "true",
    }  # empty fields are left out: an empty string would clear what the dashboard holds
    assert first.headers["Idempotency-Key"].startswith(f"dispute:{DISPUTE}:evidence:")
    assert second.headers["Idempotency-Key"] == first.headers["Idempotency-Key"]  # a retry replays
    assert (submission.dispute_id, submission.status, submission.submitted) == (DISPUTE, "under_review", True)
    assert again == submission


async def test_staged_dispute_evidence_has_another_key(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("POST", f"/v1/disputes/{DISPUTE}", "dispute_needs_response", "dispute_under_review")
    evidence = DisputeEvidence(uncategorized_text="Delivered.")
    staged = await provider.submit_dispute_evidence(DISPUTE, evidence, submit=False)
    sent = await provider.submit_dispute_evidence(DISPUTE, evidence)
    first, second = http.requests("POST", f"/v1/disputes/{DISPUTE}")
    assert first.params["submit"] == "false" and second.params["submit"] == "true"
    assert first.headers["Idempotency-Key"] != second.headers["Idempotency-Key"]
    assert (staged.status, staged.submitted, sent.status, sent.submitted) == (
        "needs_response",
        False,
        "under_review",
        True,
    )


async def test_an_unknown_dispute_is_a_payment_error(provider: StripeProvider, http: FixtureHTTPClient) -> None:
    http.route("POST", "/v1/disputes/dp_missing", "error_resource_missing", status=404)
    with pytest.raises(PaymentError) as caught:
        await provider.submit_dispute_evidence("dp_missing", DisputeEvidence(uncategorized_text="x"))
    assert caught.value.code == "unknown_dispute"
