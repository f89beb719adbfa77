"""Stripe Terminal, server-driven (WisePOS E, Stripe Reader S700/S710; the simulated ``simulated-wpe`` reader in
test mode), through the official SDK's typed services on the store's :class:`StripeProvider` client (its keys,
pinned API version, base address and HTTP client).

The Stripe side of one payment, step by step:

1. ``POST /v1/terminal/readers`` with the reader's registration code (pairing, once per reader).
2. ``POST /v1/payment_intents`` — ``allowed_payment_method_types: [card_present]``, ``capture_method: manual``,
   keyed by the reader payment's idempotency key.
3. ``POST /v1/terminal/readers/{id}/process_payment_intent`` — the reader shows the amount; its ``action`` is
   ``in_progress`` until the customer taps, inserts or swipes.
4. ``GET /v1/payment_intents/{id}`` (and the reader): ``requires_capture`` is approved; a failed action with the
   payment back in ``requires_payment_method`` is a decline; ``customer_canceled`` a cancel on the reader.
5. ``POST /v1/payment_intents/{id}/capture`` after approval (:class:`StripeProvider`); a cancel is
   ``POST /v1/terminal/readers/{id}/cancel_action`` then ``POST /v1/payment_intents/{id}/cancel``; the money goes
   back by a void (``cancel``) or a refund (``POST /v1/refunds``) like any Stripe payment.

``connection_token`` serves ``POST /v1/terminal/connection_tokens`` for a Terminal SDK on the tablet;
``present_test_card`` is Stripe's test helper that taps a card on a simulated reader (test keys only).
"""

from __future__ import annotations

from typing import Any

import stripe
from stripe.params import PaymentIntentCreateParams
from stripe.params.terminal import ConnectionTokenCreateParams, ReaderCreateParams, ReaderProcessPaymentIntentParams
from stripe.params.test_helpers.terminal import ReaderPresentPaymentMethodParams

from app.core.money import Money
from app.payments.provider import PaymentError, PaymentStatus, ProviderResult, ProviderTimeout
from app.payments.providers import StripeProvider
from app.payments.providers._stripe_results import error_body, intent_result, payment_error
from app.pos.readers.interface import (
    MoneyThroughProvider,
    ReaderDevice,
    ReaderError,
    ReaderPaymentRequest,
    ReaderPaymentState,
    ReaderState,
    RegisterReaderRequest,
)

__all__ = ["StripeTerminalReader"]

_EXPAND = ["latest_charge", "payment_method"]
_READER_ERRORS = {
    "terminal_reader_offline": "reader_offline",
    "terminal_reader_busy": "reader_busy",
    "terminal_reader_hardware_fault": "reader_offline",
}
_READER_FIELDS = ("id", "object", "device_type", "label", "livemode", "location", "serial_number", "status")
_CANCELED_ON_READER = ("customer_canceled",)  # the customer pressed cancel on the reader


def _reader_error(exc: stripe.StripeError, *, ref: str = "") -> PaymentError:
    """A Terminal error as a ReaderError (offline, busy, a wrong registration code, an unknown reader), else as the
    payment provider maps it (a timeout stays a ProviderTimeout)."""
    body = error_body(exc)
    code = str(exc.code or body.get("code") or "")
    message = str(exc.user_message or body.get("message") or type(exc).__name__)
    if code in _READER_ERRORS:
        return ReaderError(_READER_ERRORS[code], message, provider_ref=ref)
    if code == "terminal_reader_timeout":
        return ProviderTimeout(f"The reader did not answer: {message}", provider_ref=ref)
    if isinstance(exc, stripe.InvalidRequestError) and body.get("param") == "registration_code":
        return ReaderError("invalid_code", message, provider_ref=ref)
    if isinstance(exc, stripe.InvalidRequestError) and (exc.http_status == 404 or code == "resource_missing"):
        return ReaderError("unknown_reader", message, provider_ref=ref)
    return payment_error(exc, ref=ref)


def _id(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _process_action(reader: dict[str, Any], payment_ref: str) -> dict[str, Any] | None:
    """The reader's action if it is processing ``payment_ref`` (None when it moved on or has none)."""
    action = reader.get("action")
    if not isinstance(action, dict) or action.get("type") != "process_payment_intent":
        return None
    process = action.get("process_payment_intent")
    if not isinstance(process, dict) or _id(process.get("payment_intent")) != payment_ref:
        return None
    return action


class StripeTerminalReader(MoneyThroughProvider):
    """The CardReader of a store on Stripe (see the module docstring); capture, void and refund go through its
    StripeProvider like any Stripe payment."""

    name = "stripe"

    def __init__(self, provider: StripeProvider) -> None:
        super().__init__(provider)
        self._v1 = provider.client.v1

    # -- Terminal only ---------------------------------------------------------------------------

    async def connection_token(self, *, location: str = "") -> str:
        """A connection token's secret for a Terminal SDK (JS, iOS, Android) talking to a reader itself."""
        params: ConnectionTokenCreateParams = {}
        if location:
            params["location"] = location
        try:
            token = await self._v1.terminal.connection_tokens.create_async(params)
        except stripe.StripeError as exc:
            raise _reader_error(exc) from exc
        return str(token.secret)

    async def present_test_card(self, reader_ref: str, *, number: str = "4242424242424242") -> None:
        """Stripe's test helper: a card tapped on a simulated reader (test mode only; Stripe refuses live keys)."""
        params: ReaderPresentPaymentMethodParams = {"type": "card_present", "card_present": {"number": number}}
        try:
            await self._v1.test_helpers.terminal.readers.present_payment_method_async(reader_ref, params)
        except stripe.StripeError as exc:
            raise _reader_error(exc, ref=reader_ref) from exc

    # -- the CardReader interface ----------------------------------------------------------------

    async def register(self, request: RegisterReaderRequest) -> ReaderDevice:
        params: ReaderCreateParams = {"registration_code": request.registration_code.strip()}
        if request.label:
            params["label"] = request.label
        if request.location:
            params["location"] = request.location
        try:
            reader = await self._v1.terminal.readers.create_async(params, {"idempotency_key": request.idempotency_key})
        except stripe.StripeError as exc:
            raise _reader_error(exc) from exc
        body = reader.to_dict()
        return ReaderDevice(
            reader_ref=str(body["id"]),
            label=str(body.get("label") or request.label),
            status=str(body.get("status") or "offline"),
            device_type=str(body.get("device_type") or ""),
            raw={k: body[k] for k in _READER_FIELDS if k in body},
        )

    async def start_payment(self, request: ReaderPaymentRequest) -> ReaderPaymentState:
        amount = request.amount
        if amount.amount_minor <= 0:
            raise PaymentError("invalid_amount", f"amount must be positive, got {amount.amount_minor}")
        params: PaymentIntentCreateParams = {
            "amount": amount.amount_minor,
            "currency": amount.currency.lower(),
            "allowed_payment_method_types": ["card_present"],
            "capture_method": "manual",
            "metadata": dict(request.metadata),
        }
        if request.description:
            params["description"] = request.description
        try:
            intent = await self._v1.payment_intents.create_async(params, {"idempotency_key": request.idempotency_key})
        except stripe.StripeError as exc:
            raise _reader_error(exc) from exc
        process: ReaderProcessPaymentIntentParams = {
            "payment_intent": intent.id,
            "process_config": {"enable_customer_cancellation": True},
        }
        try:
            await self._v1.terminal.readers.process_payment_intent_async(
                request.reader_ref, process, {"idempotency_key": f"{request.idempotency_key}:process"}
            )
        except stripe.StripeError as exc:
            raise _reader_error(exc, ref=intent.id) from exc
        return ReaderPaymentState(ReaderState.WAITING, intent.id, amount, message="Waiting for a card.")

    async def payment_status(self, reader_ref: str, payment_ref: str) -> ReaderPaymentState:
        """The payment decides (approved or canceled); while it waits for a card, the reader's action says
        whether the card was declined, the customer canceled, or the reader is still waiting."""
        intent = await self._intent(payment_ref)
        result = intent_result(intent)
        if result.status in (PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED, PaymentStatus.REFUNDED):
            state = ReaderState.AUTHORIZED if result.status is PaymentStatus.AUTHORIZED else ReaderState.CAPTURED
            return self._state(state, result, message="Approved.")
        if result.status is PaymentStatus.VOIDED:
            return self._state(ReaderState.CANCELED, result, message="The payment was canceled.")
        try:
            reader = (await self._v1.terminal.readers.retrieve_async(reader_ref)).to_dict()
        except stripe.StripeError as exc:
            raise _reader_error(exc, ref=reader_ref) from exc
        action = _process_action(reader, payment_ref)
        if action is not None and action.get("status") == "in_progress":
            return self._state(ReaderState.WAITING, result, message="Waiting for a card.", with_payment=False)
        failure = str(action.get("failure_code") or "") if action else ""
        failure_message = str(action.get("failure_message") or "") if action else ""
        if result.status is PaymentStatus.DECLINED and failure not in _CANCELED_ON_READER:
            # A decline leaves its error on the payment (last_payment_error), whatever the reader shows now.
            return self._state(
                ReaderState.DECLINED, result, code=result.decline_code or failure, message=result.message
            )
        return self._state(
            ReaderState.CANCELED,
            result,
            code=failure,
            message=failure_message or "The reader is no longer processing this payment.",
            with_payment=False,
        )

    async def cancel_payment(self, reader_ref: str, payment_ref: str, *, idempotency_key: str) -> ReaderPaymentState:
        try:
            await self._v1.terminal.readers.cancel_action_async(
                reader_ref, {}, {"idempotency_key": f"{idempotency_key}:cancel_action"}
            )
        except stripe.StripeError as exc:
            error = _reader_error(exc, ref=reader_ref)
            if not isinstance(error, ReaderError) or error.code == "unknown_reader":
                raise error from exc
            # No action to cancel (it ended already) or the reader is busy reading the card: the payment says.
        state = await self.payment_status(reader_ref, payment_ref)
        if state.approved or state.state is ReaderState.WAITING:
            return state
        try:
            await self._v1.payment_intents.cancel_async(
                payment_ref, {"cancellation_reason": "abandoned"}, {"idempotency_key": f"{idempotency_key}:cancel"}
            )
        except stripe.StripeError as exc:
            error = payment_error(exc, ref=payment_ref)
            if error.code != "invalid_state":  # already canceled, or it moved on: read it again
                raise error from exc
            return await self.payment_status(reader_ref, payment_ref)
        if state.state is ReaderState.DECLINED:
            return state
        return ReaderPaymentState(
            ReaderState.CANCELED, payment_ref, state.amount, code=state.code, message="Canceled at the register."
        )

    # -- internals -------------------------------------------------------------------------------

    async def _intent(self, payment_ref: str) -> dict[str, Any]:
        try:
            intent = await self._v1.payment_intents.retrieve_async(payment_ref, {"expand": list(_EXPAND)})
        except stripe.StripeError as exc:
            raise payment_error(exc, ref=payment_ref) from exc
        return intent.to_dict()

    @staticmethod
    def _state(
        state: ReaderState,
        result: ProviderResult,
        *,
        code: str = "",
        message: str = "",
        with_payment: bool = True,
    ) -> ReaderPaymentState:
        """A state from the payment as Stripe has it; ``payment`` only when a card reached it."""
        amount: Money = result.amount
        return ReaderPaymentState(
            state=state,
            payment_ref=result.provider_ref,
            amount=amount,
            brand=result.brand,
            last4=result.last4,
            code=code,
            message=message,
            payment=result if with_payment else None,
        )
