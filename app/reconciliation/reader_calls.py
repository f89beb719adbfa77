"""The provider call audit for card readers: pairing, starting, polling and cancelling a reader payment (and a
Stripe Terminal connection token) are recorded like the payment calls (``app/reconciliation/provider_calls.py``),
by the same :class:`~app.reconciliation.provider_calls.CallRecorder` as the store's provider.

A reader's capture, give-back and status read go through the store's (recorded) provider already, so they are in
the audit as ``capture`` / ``refund`` / ``void`` / ``get_transaction``.

Redaction: a pairing keeps the label and location, never the registration code (whoever holds it pairs a reader);
a payment keeps amount, currency, reader and metadata, and the reader's answer its state, brand, last 4 and code;
a connection token's secret is never kept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from redis.asyncio import Redis

from app.payments.providers.stripe import StripeProvider
from app.payments.sandbox import SandboxProvider
from app.pos.readers.interface import (
    Clock,
    ReaderDevice,
    ReaderPaymentRequest,
    ReaderPaymentState,
    ReaderState,
    RegisterReaderRequest,
    utcnow,
)
from app.pos.readers.sandbox import SandboxReader
from app.pos.readers.stripe_terminal import StripeTerminalReader
from app.reconciliation.provider_calls import Answer, CallRecorder

__all__ = ["RecordedSandboxReader", "RecordedStripeTerminalReader", "sandbox_reader", "stripe_terminal_reader"]

T = TypeVar("T")
# Set while a recorded reader call runs: a reader's own inner calls (start_payment reads the status it made)
# are part of the outer call's entry, not entries of their own.
_inside: ContextVar[bool] = ContextVar("reader_call_inside", default=False)


async def _run(
    calls: CallRecorder,
    op: str,
    send: Callable[[], Awaitable[T]],
    *,
    request: dict[str, Any],
    answer: Callable[[T], Answer],
    key: str = "",
    ref: str = "",
) -> T:
    if _inside.get():
        return await send()

    async def outer() -> T:
        token = _inside.set(True)
        try:
            return await send()
        finally:
            _inside.reset(token)

    return await calls.run(op, outer, request=request, key=key, ref=ref, answer=answer)


def _state(state: ReaderPaymentState) -> Answer:
    response: dict[str, Any] = {"state": state.state.value, "brand": state.brand, "last4": state.last4}
    if state.amount is not None:
        response["amount_minor"], response["currency"] = state.amount.amount_minor, state.amount.currency
    if state.code:
        response["code"] = state.code
    declined = (state.code or "declined") if state.state is ReaderState.DECLINED else ""
    return response, state.payment_ref, declined


def _device(device: ReaderDevice) -> Answer:
    return {"reader": device.reader_ref, "status": device.status, "device_type": device.device_type}, "", ""


class _RecordedReader:
    """Mixed in before a reader class: its reader calls go through :class:`CallRecorder`."""

    calls: CallRecorder

    async def register(self, request: RegisterReaderRequest) -> ReaderDevice:
        parent = super()
        return await _run(
            self.calls,
            "terminal.register",
            lambda: parent.register(request),  # type: ignore[attr-defined]
            request={"label": request.label[:120], "location": request.location},  # never the registration code
            key=request.idempotency_key,
            answer=_device,
        )

    async def start_payment(self, request: ReaderPaymentRequest) -> ReaderPaymentState:
        parent = super()
        return await _run(
            self.calls,
            "terminal.start_payment",
            lambda: parent.start_payment(request),  # type: ignore[attr-defined]
            request={
                "reader": request.reader_ref,
                "amount_minor": request.amount.amount_minor,
                "currency": request.amount.currency,
                "metadata": dict(request.metadata),
            },
            key=request.idempotency_key,
            ref=request.reader_ref,
            answer=_state,
        )

    async def payment_status(self, reader_ref: str, payment_ref: str) -> ReaderPaymentState:
        parent = super()
        return await _run(
            self.calls,
            "terminal.payment_status",
            lambda: parent.payment_status(reader_ref, payment_ref),  # type: ignore[attr-defined]
            request={"reader": reader_ref},
            ref=payment_ref,
            answer=_state,
        )

    async def cancel_payment(self, reader_ref: str, payment_ref: str, *, idempotency_key: str) -> ReaderPaymentState:
        parent = super()
        return await _run(
            self.calls,
            "terminal.cancel_payment",
            lambda: parent.cancel_payment(reader_ref, payment_ref, idempotency_key=idempotency_key),  # type: ignore[attr-defined]
            request={"reader": reader_ref},
            key=idempotency_key,
            ref=payment_ref,
            answer=_state,
        )


class RecordedSandboxReader(_RecordedReader, SandboxReader):
    pass


class RecordedStripeTerminalReader(_RecordedReader, StripeTerminalReader):
    async def connection_token(self, *, location: str = "") -> str:
        return await _run(
            self.calls,
            "terminal.connection_token",
            lambda: StripeTerminalReader.connection_token(self, location=location),
            request={"location": location},
            answer=lambda _secret: ({}, "", ""),  # the token's secret is never kept
        )


def _recorder(provider: object) -> CallRecorder | None:
    calls = getattr(provider, "calls", None)
    return calls if isinstance(calls, CallRecorder) else None


def sandbox_reader(redis: Redis, provider: SandboxProvider, *, clock: Clock = utcnow) -> SandboxReader:
    """The sandbox's reader, recorded with its provider's recorder when the provider is a recorded one."""
    calls = _recorder(provider)
    if calls is None:
        return SandboxReader(redis, provider, clock=clock)
    reader = RecordedSandboxReader(redis, provider, clock=clock)
    reader.calls = calls
    return reader


def stripe_terminal_reader(provider: StripeProvider) -> StripeTerminalReader:
    """Stripe Terminal, recorded with its provider's recorder when the provider is a recorded one."""
    calls = _recorder(provider)
    if calls is None:
        return StripeTerminalReader(provider)
    reader = RecordedStripeTerminalReader(provider)
    reader.calls = calls
    return reader
