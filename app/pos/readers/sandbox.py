"""The sandbox's simulated card reader: a page (``/pos/reader``) on another device or tab plays the terminal.

It behaves like a Stripe Terminal reader driven from the server, with its state in Redis beside the sandbox
payment provider's (the web app and the workers share it):

- **Identity.** The reader page keeps a random secret in a cookie; the reader's id is a hash of it
  (:func:`reader_ref_for`), so knowing the id (it is in the database) does not let anyone press its buttons.
- **Pairing.** While unpaired the page shows a 6-digit code (:meth:`SandboxReader.pairing_code`), valid for
  :data:`PAIRING_CODE_TTL`; a manager enters it at ``/staff/registers/{id}/reader`` (:meth:`register`). A code
  works once; a wrong or expired one is refused (``ReaderError("invalid_code")``).
- **Payments.** ``start_payment`` puts an *action* on the reader (Stripe's word): the amount and the
  idempotency key the payment will be authorised with. The page's buttons are the customer
  (:meth:`present`): **Approve** authorises the amount through the sandbox payment provider with the test card
  ``pm_card_visa`` (no capture: the POS captures, as with Stripe Terminal), **Decline** with
  ``pm_card_chargeDeclined`` (a declined payment, no money held), **Time out** and **Cancel** end the action
  without a card (nothing reaches the provider). The payment's reference is the sandbox's for that key
  (:func:`~app.payments.sandbox.provider_ref_for`), known before any card is presented.
- Every transition of an action is atomic (WATCH/MULTI): a cancel from the POS and a tap on the reader at the
  same moment end in exactly one of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from redis.asyncio import Redis
from redis.exceptions import WatchError

from app.core.money import Money
from app.payments.provider import (
    AuthorizeRequest,
    PaymentError,
    PaymentStatus,
    ProviderResult,
)
from app.payments.sandbox import STATE_TTL_S, SandboxProvider, provider_ref_for
from app.pos.readers.interface import (
    Clock,
    MoneyThroughProvider,
    ReaderDevice,
    ReaderError,
    ReaderPaymentRequest,
    ReaderPaymentState,
    ReaderState,
    RegisterReaderRequest,
    utcnow,
)

__all__ = [
    "DEVICE_COOKIE",
    "PAIRING_CODE_TTL",
    "Outcome",
    "PairingCode",
    "SandboxReader",
    "new_device_secret",
    "reader_ref_for",
]

DEVICE_COOKIE = "till_sandbox_reader"
PAIRING_CODE_TTL = timedelta(minutes=10)
_PREFIX = "till:sandbox:reader:"
_MAX_ATTEMPTS = 50
_APPROVE_TOKEN, _DECLINE_TOKEN = "pm_card_visa", "pm_card_chargeDeclined"

Outcome = Literal["approve", "decline", "timeout", "cancel"]
# A change to a reader's action: the new action, or None to leave it as it is.
_Step = Callable[[dict[str, Any] | None], dict[str, Any] | None]


def new_device_secret() -> str:
    """The secret a reader page keeps in its cookie (never stored by the server)."""
    return secrets.token_urlsafe(24)


def reader_ref_for(secret: str) -> str:
    """The reader's id for a device secret: what pairing stores as ``card_readers.provider_reader_id``."""
    return "tmr_sb_" + hashlib.sha256(f"sandbox-reader:{secret}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class PairingCode:
    code: str  # 6 digits
    expires_at: datetime

    @property
    def shown(self) -> str:
        """As the reader's screen shows it: ``482 913``."""
        return f"{self.code[:3]} {self.code[3:]}"


def _digits(code: str) -> str:
    return "".join(ch for ch in code if ch.isdigit())


class SandboxReader(MoneyThroughProvider):
    """The CardReader of a store on the sandbox provider (see the module docstring)."""

    name = "sandbox"

    def __init__(self, redis: Redis, provider: SandboxProvider, *, clock: Clock = utcnow) -> None:
        super().__init__(provider)
        self._redis = redis
        self._clock = clock

    # -- pairing ---------------------------------------------------------------------------------

    async def pairing_code(self, reader_ref: str) -> PairingCode:
        """The code this reader shows while unpaired: the same one until it expires, then a new one."""
        device_key = f"{_PREFIX}dev:{reader_ref}:code"
        stored = await self._redis.get(device_key)
        now = self._clock()
        if stored is not None:
            current = json.loads(stored)
            expires_at = datetime.fromisoformat(current["expires_at"])
            if expires_at > now and await self._redis.exists(f"{_PREFIX}code:{current['code']}"):
                return PairingCode(current["code"], expires_at)
        expires_at = now + PAIRING_CODE_TTL
        ttl = int(PAIRING_CODE_TTL.total_seconds()) + 60
        record = json.dumps({"reader_ref": reader_ref, "expires_at": expires_at.isoformat()})
        while True:
            code = f"{secrets.randbelow(1_000_000):06d}"
            if await self._redis.set(f"{_PREFIX}code:{code}", record, nx=True, ex=ttl):
                break
        await self._redis.set(device_key, json.dumps({"code": code, "expires_at": expires_at.isoformat()}), ex=ttl)
        return PairingCode(code, expires_at)

    async def register(self, request: RegisterReaderRequest) -> ReaderDevice:
        idem_key = f"{_PREFIX}idem:{request.idempotency_key}"
        replay = await self._redis.get(idem_key)
        if replay is not None:
            known = json.loads(replay)
            return ReaderDevice(known["reader_ref"], known["label"], known["status"], known["device_type"])
        code = _digits(request.registration_code)
        stored = await self._redis.getdel(f"{_PREFIX}code:{code}") if len(code) == 6 else None
        if stored is None:
            raise ReaderError("invalid_code", "No reader shows this code. Check the code on the reader's screen.")
        record = json.loads(stored)
        if datetime.fromisoformat(record["expires_at"]) <= self._clock():
            raise ReaderError("invalid_code", "This code has expired: the reader shows a new one.")
        reader_ref = str(record["reader_ref"])
        await self._redis.delete(f"{_PREFIX}dev:{reader_ref}:code")
        device = ReaderDevice(reader_ref, request.label or "Sandbox reader", "online", "sandbox_simulated")
        stored_device = {k: getattr(device, k) for k in ("reader_ref", "label", "status", "device_type")}
        await self._redis.set(idem_key, json.dumps(stored_device), ex=STATE_TTL_S)
        return device

    # -- payments --------------------------------------------------------------------------------

    async def start_payment(self, request: ReaderPaymentRequest) -> ReaderPaymentState:
        payment_ref = provider_ref_for(request.idempotency_key)
        action = {
            "payment_ref": payment_ref,
            "key": request.idempotency_key,
            "amount": request.amount.amount_minor,
            "currency": request.amount.currency,
            "description": request.description,
            "status": "in_progress",
            "code": "",
            "message": "",
        }

        def step(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is not None and current["payment_ref"] == payment_ref:
                return None  # a repeat: the action is already there
            if current is not None and current["status"] in ("in_progress", "processing"):
                raise ReaderError("reader_busy", "The reader is busy with another payment.")
            return action

        await self._change(request.reader_ref, step)
        return await self.payment_status(request.reader_ref, payment_ref)

    async def payment_status(self, reader_ref: str, payment_ref: str) -> ReaderPaymentState:
        action = await self._action(reader_ref)
        if action is None or action["payment_ref"] != payment_ref:
            return await self._from_provider(payment_ref)
        amount = Money(int(action["amount"]), str(action["currency"]))
        status = action["status"]
        if status in ("in_progress", "processing"):
            return ReaderPaymentState(ReaderState.WAITING, payment_ref, amount, message="Waiting for a card.")
        if status in ("succeeded", "failed"):
            return await self._from_provider(payment_ref)
        state = ReaderState.TIMED_OUT if status == "timed_out" else ReaderState.CANCELED
        return ReaderPaymentState(state, payment_ref, amount, code=action["code"], message=action["message"])

    async def cancel_payment(self, reader_ref: str, payment_ref: str, *, idempotency_key: str) -> ReaderPaymentState:
        def step(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None or current["payment_ref"] != payment_ref or current["status"] != "in_progress":
                return None
            return {**current, "status": "canceled", "code": "canceled", "message": "Canceled at the register."}

        await self._change(reader_ref, step)
        return await self.payment_status(reader_ref, payment_ref)

    # -- the simulated customer (the reader page's buttons) ---------------------------------------

    async def present(self, reader_ref: str, outcome: Outcome) -> None:
        """The customer at the reader: approve or decline a card, let it time out, or cancel. A no-op unless a
        payment is waiting on the reader (a double tap changes nothing)."""
        if outcome == "timeout":
            no_card = "No card was presented in time."
            await self._change(reader_ref, _from("in_progress", "timed_out", "timed_out", no_card))
            return
        if outcome == "cancel":
            canceled = "Canceled on the reader."
            await self._change(reader_ref, _from("in_progress", "canceled", "customer_canceled", canceled))
            return
        claimed = await self._change(reader_ref, _from("in_progress", "processing"))
        if claimed is None:
            return
        request = AuthorizeRequest(
            amount=Money(int(claimed["amount"]), str(claimed["currency"])),
            idempotency_key=str(claimed["key"]),
            payment_method_token=_APPROVE_TOKEN if outcome == "approve" else _DECLINE_TOKEN,
            capture=False,
            description=str(claimed["description"]),
        )
        try:
            result = await self._provider.authorize(request)
        except PaymentError:
            await self._change(reader_ref, _from("processing", "in_progress", ref=claimed["payment_ref"]))
            raise
        if result.status in (PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED):
            ended = _from("processing", "succeeded", "", "Approved.", ref=claimed["payment_ref"])
        else:
            ended = _from("processing", "failed", result.decline_code, result.message, ref=claimed["payment_ref"])
        await self._change(reader_ref, ended)

    # -- internals -------------------------------------------------------------------------------

    async def _action(self, reader_ref: str) -> dict[str, Any] | None:
        raw = await self._redis.get(f"{_PREFIX}action:{reader_ref}")
        return None if raw is None else dict(json.loads(raw))

    async def _change(self, reader_ref: str, step: _Step) -> dict[str, Any] | None:
        """Apply ``step`` to the reader's action atomically. Returns the new action, or None when nothing changed."""
        key = f"{_PREFIX}action:{reader_ref}"
        async with self._redis.pipeline(transaction=True) as pipe:
            for _attempt in range(_MAX_ATTEMPTS):
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    new = step(None if raw is None else dict(json.loads(raw)))
                    if new is None:
                        return None
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves multi() unannotated
                    pipe.set(key, json.dumps(new), ex=STATE_TTL_S)
                    await pipe.execute()
                    return new
                except WatchError:
                    await asyncio.sleep(0)
        raise ReaderError("reader_busy", "The reader is busy; try again.")

    async def _from_provider(self, payment_ref: str) -> ReaderPaymentState:
        """The payment as the provider has it: a card was presented (approved or declined), or none was."""
        try:
            result = await self._provider.get_transaction(payment_ref)
        except PaymentError as exc:
            if exc.code != "unknown_payment":
                raise
            return ReaderPaymentState(
                ReaderState.CANCELED, payment_ref, None, message="The reader no longer shows this payment."
            )
        return _state_of(result)


def _from(status: str, to: str, code: str | None = None, message: str | None = None, *, ref: str = "") -> _Step:
    """A step moving the action from ``status`` to ``to`` (of the payment ``ref`` when given); else no change."""

    def step(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if current is None or current["status"] != status or (ref and current["payment_ref"] != ref):
            return None
        new = {**current, "status": to}
        if code is not None:
            new["code"] = code
        if message is not None:
            new["message"] = message
        return new

    return step


_STATES = {
    PaymentStatus.AUTHORIZED: ReaderState.AUTHORIZED,
    PaymentStatus.CAPTURED: ReaderState.CAPTURED,
    PaymentStatus.REFUNDED: ReaderState.CAPTURED,
    PaymentStatus.DECLINED: ReaderState.DECLINED,
    PaymentStatus.FAILED: ReaderState.DECLINED,
}


def _state_of(result: ProviderResult) -> ReaderPaymentState:
    state = _STATES.get(result.status, ReaderState.CANCELED)
    return ReaderPaymentState(
        state=state,
        payment_ref=result.provider_ref,
        amount=result.amount,
        brand=result.brand,
        last4=result.last4,
        code=result.decline_code,
        message=result.message or ("Approved." if state in (ReaderState.AUTHORIZED, ReaderState.CAPTURED) else ""),
        payment=result,
    )
