"""Stripe Terminal, server-driven, against recorded Stripe-shaped answers (localstripe has no Terminal).

Requests go through the SDK's HTTP client seam to :class:`FixtureHTTPClient` (tests/providers/test_stripe_provider.py),
which answers each (method, path) with ``fixtures/stripe/terminal_*.json`` in order and records what reached
"Stripe": paths, form parameters, ``Idempotency-Key`` and the pinned ``Stripe-Version``. A physical reader and
Stripe's own test mode are not involved (see docs/pos.md, "Card readers").
"""

from __future__ import annotations

import pytest

from app.core.money import Money
from app.payments.provider import CaptureRequest, PaymentStatus, ProviderTimeout
from app.payments.providers import API_VERSION, StripeProvider
from app.pos.readers import (
    CardReader,
    ReaderError,
    ReaderPaymentRequest,
    ReaderState,
    RegisterReaderRequest,
    StripeTerminalReader,
)
from tests.providers.test_stripe_provider import FixtureHTTPClient, UnreachableHTTPClient

PI = "pi_3QxTerm0000000000000001"
READER = "tmr_FxTill0000000001"
LOCATION = "tml_FxTill0000000001"
KEY = "pos-card:0193a0c0-0000-7000-8000-000000000001"
EUR_24_50 = Money(2450, "EUR")
PI_PATH = f"/v1/payment_intents/{PI}"
READER_PATH = f"/v1/terminal/readers/{READER}"


@pytest.fixture
def http() -> FixtureHTTPClient:
    return FixtureHTTPClient()


@pytest.fixture
def terminal(http: FixtureHTTPClient) -> StripeTerminalReader:
    provider = StripeProvider(
        "sk_test_fixture", webhook_secret="whsec_fixture", http_client=http, max_network_retries=0
    )
    return StripeTerminalReader(provider)


def _start() -> ReaderPaymentRequest:
    return ReaderPaymentRequest(
        reader_ref=READER,
        amount=EUR_24_50,
        idempotency_key=KEY,
        description="Bakery Nord · Counter 1",
        metadata={"reader_payment_id": "0193a0c0-0000-7000-8000-000000000001"},
    )


def test_is_a_card_reader(terminal: StripeTerminalReader) -> None:
    assert isinstance(terminal, CardReader)
    assert terminal.name == "stripe"


# -- pairing ---------------------------------------------------------------------------------------------


async def test_register_a_reader_by_its_registration_code(
    terminal: StripeTerminalReader, http: FixtureHTTPClient
) -> None:
    http.route("POST", "/v1/terminal/readers", "terminal_reader")
    device = await terminal.register(
        RegisterReaderRequest("simulated-wpe", "Counter 1 reader", "pair:counter-1:simulated-wpe", location=LOCATION)
    )
    (sent,) = http.sent
    assert sent.params == {"registration_code": "simulated-wpe", "label": "Counter 1 reader", "location": LOCATION}
    assert sent.headers["Idempotency-Key"] == "pair:counter-1:simulated-wpe"
    assert sent.headers["Stripe-Version"] == API_VERSION
    assert (device.reader_ref, device.label, device.status, device.device_type) == (
        READER,
        "Counter 1 reader",
        "online",
        "simulated_wisepos_e",
    )


async def test_a_wrong_registration_code_is_refused(terminal: StripeTerminalReader, http: FixtureHTTPClient) -> None:
    http.route("POST", "/v1/terminal/readers", "terminal_error_registration_code", status=400)
    with pytest.raises(ReaderError) as refused:
        await terminal.register(RegisterReaderRequest("wrong-words-here", "", "pair:1:wrong"))
    assert refused.value.code == "invalid_code"
    assert "invalid or has expired" in refused.value.message


# -- a payment on the reader -------------------------------------------------------------------------------


async def test_start_creates_a_card_present_intent_and_hands_it_to_the_reader(
    terminal: StripeTerminalReader, http: FixtureHTTPClient
) -> None:
    http.route("POST", "/v1/payment_intents", "terminal_payment_intent_waiting")
    http.route("POST", f"{READER_PATH}/process_payment_intent", "terminal_reader_processing")
    state = await terminal.start_payment(_start())

    create, process = http.sent
    assert (create.method, create.path) == ("POST", "/v1/payment_intents")
    assert create.params == {
        "amount": "2450",
        "currency": "eur",
        "allowed_payment_method_types[0]": "card_present",
        "capture_method": "manual",
        "metadata[reader_payment_id]": "0193a0c0-0000-7000-8000-000000000001",
        "description": "Bakery Nord · Counter 1",
    }
    assert create.headers["Idempotency-Key"] == KEY
    assert process.path == f"{READER_PATH}/process_payment_intent"
    assert process.params == {"payment_intent": PI, "process_config[enable_customer_cancellation]": "true"}
    assert process.headers["Idempotency-Key"] == f"{KEY}:process"
    assert (state.state, state.payment_ref, state.amount, state.payment) == (ReaderState.WAITING, PI, EUR_24_50, None)


@pytest.mark.parametrize(
    ("answer", "code"),
    [("terminal_error_reader_busy", "reader_busy"), ("terminal_error_reader_offline", "reader_offline")],
)
async def test_a_busy_or_offline_reader_is_a_reader_error(
    terminal: StripeTerminalReader, http: FixtureHTTPClient, answer: str, code: str
) -> None:
    http.route("POST", "/v1/payment_intents", "terminal_payment_intent_waiting")
    http.route("POST", f"{READER_PATH}/process_payment_intent", answer, status=400)
    with pytest.raises(ReaderError) as refused:
        await terminal.start_payment(_start())
    assert refused.value.code == code
    assert refused.value.provider_ref == PI  # the intent exists: the caller can cancel it


async def test_no_answer_is_a_timeout(http: FixtureHTTPClient) -> None:
    provider = StripeProvider(
        "sk_test_fixture", webhook_secret="whsec_fixture", http_client=UnreachableHTTPClient(), max_network_retries=0
    )
    with pytest.raises(ProviderTimeout):
        await StripeTerminalReader(provider).start_payment(_start())


async def test_waiting_while_the_reader_waits_for_a_card(
    terminal: StripeTerminalReader, http: FixtureHTTPClient
) -> None:
    http.route("GET", PI_PATH, "terminal_payment_intent_waiting")
    http.route("GET", READER_PATH, "terminal_reader_processing")
    state = await terminal.payment_status(READER, PI)
    assert state.state is ReaderState.WAITING
    assert state.payment is None
    assert http.requests("GET", PI_PATH)[0].params == {"expand[0]": "latest_charge", "expand[1]": "payment_method"}


async def test_approved_card_present_payment_reads_brand_and_last4(
    terminal: StripeTerminalReader, http: FixtureHTTPClient
) -> None:
    http.route("GET", PI_PATH, "terminal_payment_intent_requires_capture")
    state = await terminal.payment_status(READER, PI)
    assert state.state is ReaderState.AUTHORIZED
    assert (state.brand, state.last4) == ("visa", "4242")  # payment_method_details.card_present
    assert state.payment is not None
    assert state.payment.status is PaymentStatus.AUTHORIZED
    assert (state.payment.amount, state.payment.captured) == (EUR_24_50, Money(0, "EUR"))
    assert "client_secret" not in state.payment.raw
    assert http.requests("GET", READER_PATH) == []  # the payment decides; the reader is not asked


async def test_declined_card_at_the_reader(terminal: StripeTerminalReader, http: FixtureHTTPClient) -> None:
    http.route("GET", PI_PATH, "terminal_payment_intent_declined")
    http.route("GET", READER_PATH, "terminal_reader_declined")
    state = await terminal.payment_status(READER, PI)
    assert state.state is ReaderState.DECLINED
    assert state.code == "generic_decline"
    assert state.message == "Your card was declined."
    assert state.payment is not None and state.payment.captured == Money(0, "EUR")


async def test_the_customer_canceled_on_the_reader(terminal: StripeTerminalReader, http: FixtureHTTPClient) -> None:
    http.route("GET", PI_PATH, "terminal_payment_intent_waiting")
    http.route("GET", READER_PATH, "terminal_reader_customer_canceled")
    state = await terminal.payment_status(READER, PI)
    assert (state.state, state.code, state.payment) == (ReaderState.CANCELED, "customer_canceled", None)


async def test_capture_after_approval(terminal: StripeTerminalReader, http: FixtureHTTPClient) -> None:
    http.route("POST", f"{PI_PATH}/capture", "terminal_payment_intent_succeeded")
    result = await terminal.capture(CaptureRequest(PI, EUR_24_50, f"{KEY}:capture"))
    (sent,) = http.sent
    assert sent.params["amount_to_capture"] == "2450"
    assert sent.headers["Idempotency-Key"] == f"{KEY}:capture"
    assert (result.status, result.captured, result.brand, result.last4) == (
        PaymentStatus.CAPTURED,
        EUR_24_50,
        "visa",
        "4242",
    )


# -- stopping and giving back -------------------------------------------------------------------------------


async def test_cancel_stops_the_reader_then_cancels_the_intent(
    terminal: StripeTerminalReader, http: FixtureHTTPClient
) -> None:
    http.route("POST", f"{READER_PATH}/cancel_action", "terminal_reader")
    http.route("GET", PI_PATH, "terminal_payment_intent_waiting")
    http.route("GET", READER_PATH, "terminal_reader")
    http.route("POST", f"{PI_PATH}/cancel", "terminal_payment_intent_canceled")
    state = await terminal.cancel_payment(READER, PI, idempotency_key=f"{KEY}:cancel")

    assert [(s.method, s.path) for s in http.sent] == [
        ("POST", f"{READER_PATH}/cancel_action"),
        ("GET", PI_PATH),
        ("GET", READER_PATH),
        ("POST", f"{PI_PATH}/cancel"),
    ]
    assert http.sent[0].headers["Idempotency-Key"] == f"{KEY}:cancel:cancel_action"
    assert http.sent[3].params == {"cancellation_reason": "abandoned"}
    assert http.sent[3].headers["Idempotency-Key"] == f"{KEY}:cancel:cancel"
    assert state.state is ReaderState.CANCELED


async def test_cancel_after_the_card_was_approved_leaves_the_payment_to_the_caller(
    terminal: StripeTerminalReader, http: FixtureHTTPClient
) -> None:
    http.route("POST", f"{READER_PATH}/cancel_action", "terminal_error_reader_busy", status=400)
    http.route("GET", PI_PATH, "terminal_payment_intent_requires_capture")
    state = await terminal.cancel_payment(READER, PI, idempotency_key=f"{KEY}:cancel")
    assert state.state is ReaderState.AUTHORIZED
    assert http.requests("POST", f"{PI_PATH}/cancel") == []  # nothing released: the POS captures or voids it


async def test_give_back_refunds_a_captured_payment_with_a_deterministic_key(
    terminal: StripeTerminalReader, http: FixtureHTTPClient
) -> None:
    http.route("GET", PI_PATH, "terminal_payment_intent_succeeded", "terminal_payment_intent_refunded")
    http.route("POST", "/v1/refunds", "terminal_refund")
    kind, key, result = await terminal.give_back(
        payment_ref=PI, currency="EUR", captured_minor=2450, refunded_minor=0, key_prefix=KEY, reason="voided"
    )
    (refund,) = http.requests("POST", "/v1/refunds")
    assert (kind, key) == ("refund", f"{KEY}:refund")
    assert refund.headers["Idempotency-Key"] == f"{KEY}:refund"
    assert (refund.params["payment_intent"], refund.params["amount"]) == (PI, "2450")
    assert (result.status, result.refunded) == (PaymentStatus.REFUNDED, EUR_24_50)


async def test_give_back_voids_an_authorisation_only(terminal: StripeTerminalReader, http: FixtureHTTPClient) -> None:
    http.route("POST", f"{PI_PATH}/cancel", "terminal_payment_intent_canceled")
    kind, key, result = await terminal.give_back(
        payment_ref=PI, currency="EUR", captured_minor=0, refunded_minor=0, key_prefix=KEY, reason="voided"
    )
    assert (kind, key, result.status) == ("void", f"{KEY}:void", PaymentStatus.VOIDED)
    assert http.sent[0].headers["Idempotency-Key"] == f"{KEY}:void"


# -- the Terminal SDK and Stripe's test helper ----------------------------------------------------------------


async def test_connection_token(terminal: StripeTerminalReader, http: FixtureHTTPClient) -> None:
    http.route("POST", "/v1/terminal/connection_tokens", "terminal_connection_token")
    assert (await terminal.connection_token()).startswith("pst_test_")
    assert http.sent[0].params == {}


async def test_present_a_test_card_on_a_simulated_reader(
    terminal: StripeTerminalReader, http: FixtureHTTPClient
) -> None:
    path = f"/v1/test_helpers/terminal/readers/{READER}/present_payment_method"
    http.route("POST", path, "terminal_reader_succeeded")
    await terminal.present_test_card(READER)
    assert http.sent[0].path == path
    assert http.sent[0].params == {"type": "card_present", "card_present[number]": "4242424242424242"}
