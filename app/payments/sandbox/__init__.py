"""The built-in ``sandbox`` payment provider: a deterministic fake gateway that keeps its state in Redis.

The web app and the workers share the state (``till:sandbox:pi:<ref>``, JSON, 7-day TTL), so a
challenge completed on the web can be captured by a worker. It signs the webhooks it sends itself
with Stripe's scheme (:mod:`app.payments.signing`), so the whole app works offline.

Test cards (any future expiry, any 3-4 digit CVC):

=====================  ==================================================================
number                 outcome
=====================  ==================================================================
4242 4242 4242 4242    success (visa)
5555 5555 5555 4444    success (mastercard)
4000 0000 0000 0002    DECLINED, decline_code ``card_declined``
4000 0000 0000 9995    DECLINED, decline_code ``insufficient_funds``
4000 0000 0000 3220    REQUIRES_ACTION (3-D Secure); ``action_url`` = ``{base_url}/sandbox/3ds/{ref}``;
                       :meth:`SandboxProvider.complete_challenge` approves (AUTHORIZED, or CAPTURED
                       when the request asked to capture) or fails (DECLINED,
                       ``authentication_failed``)
4000 0000 0000 0077    PENDING; :meth:`SandboxProvider.settle_pending` moves it to AUTHORIZED/CAPTURED
4000 0000 0000 0119    processing error: the authorization is recorded as succeeded, then
                       :class:`ProviderTimeout` is raised; ``get_transaction(ref)`` reports it
any other Luhn-valid   success (brand from the number's prefix)
not Luhn-valid         DECLINED, ``invalid_number``
expiry in the past     DECLINED, ``expired_card`` (month outside 1-12: ``invalid_expiry_month``)
CVC not 3-4 digits     DECLINED, ``invalid_cvc``
=====================  ==================================================================

Instead of a card, ``payment_method_token`` may name a test card (as Stripe's ``pm_card_*``):
``pm_card_visa``, ``pm_card_mastercard``, ``pm_card_chargeDeclined``,
``pm_card_chargeDeclinedInsufficientFunds``, ``pm_card_threeDSecureRequired``,
``pm_card_pending``, ``pm_card_processingError``.

Disputes (open, evidence, close, their signed webhooks): :mod:`app.payments.sandbox._disputes`.

Rules:

- ``provider_ref`` is ``"sb_" + sha256(idempotency_key)[:24]``, so a caller that timed out knows it
  (:func:`provider_ref_for`).
- Idempotency: the first call with a key stores its result (``till:sandbox:idem:<key>``) in the same
  Redis transaction (WATCH/MULTI) as the state change, so concurrent duplicates produce exactly one
  effect and all receive the first result. Reusing a key for a different request raises
  ``PaymentError("idempotency_key_reused")``. Refusals (:class:`PaymentError`) are not stored: a
  retry is evaluated again.
- Capture only AUTHORIZED, at most the authorised amount, once (the rest of the authorization is
  released). Refund only CAPTURED, several partial refunds up to the captured amount (status
  becomes REFUNDED when all of it is refunded). Void AUTHORIZED, REQUIRES_ACTION or PENDING (never
  captured money).
- Card data (Invariant 9): only brand and last 4 are kept; the number and CVC never reach Redis.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any, Literal, cast

from redis.asyncio import Redis
from redis.exceptions import WatchError

from app.core.money import Money
from app.payments import signing
from app.payments.provider import (
    AuthorizeRequest,
    CaptureRequest,
    CardDetails,
    PaymentError,
    PaymentStatus,
    ProviderResult,
    ProviderTimeout,
    RefundRequest,
    VoidRequest,
    WebhookEvent,
)
from app.payments.sandbox._cards import (
    _DELAYED,
    _MESSAGES,
    _SUCCESS,
    _THREE_DS,
    _TIMEOUT,
    TEST_CARDS,
    TEST_TOKENS,
    _screen,
    _Screened,
    provider_ref_for,
)
from app.payments.sandbox._connect import SandboxConnect
from app.payments.sandbox._disputes import SandboxDisputes
from app.payments.sandbox._state import (
    _IDEM_PREFIX,
    _MAX_ATTEMPTS,
    _PI_PREFIX,
    STATE_TTL_S,
    _check_amount,
    _dumps,
    _require,
    _result,
    _State,
    _Step,
)

__all__ = ["STATE_TTL_S", "TEST_CARDS", "TEST_TOKENS", "SandboxProvider", "provider_ref_for"]


# authorize: the key's record and the payment, set together unless either exists (KEYS: key record, payment).
_CREATED, _REPLAYED, _REF_TAKEN = 0, 1, 2
_FAULT_PREFIX = "till:sandbox:fault:"
_DROP_PREFIX = "till:sandbox:drop-webhook:"
_CREATE_LUA = """
local stored = redis.call('GET', KEYS[1])
if stored then return {1, stored} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {2} end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
if KEYS[3] then
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
end
return {0}
"""
# The payments made for one account (the store the provider was built for), by creation time: the sandbox's own
# list of transactions, which app/reconciliation reads as Stripe's list APIs are read.
ACCOUNT_PAYMENTS_PREFIX = "till:sandbox:acct:"


class SandboxProvider(SandboxConnect, SandboxDisputes):
    """Deterministic fake gateway; see the module docstring for the test cards and rules."""

    def __init__(
        self, redis: Redis, *, webhook_secret: str, base_url: str = "", name: str = "sandbox", account: str = ""
    ) -> None:
        self.name = name
        self.account = account  # the store it acts for, if known: its payments are listed under it
        self._redis = redis
        self._webhook_secret = webhook_secret
        self._base_url = base_url.rstrip("/")
        self._create_script = redis.register_script(_CREATE_LUA)

    # -- the PaymentProvider interface ---------------------------------------------------------

    async def authorize(self, request: AuthorizeRequest) -> ProviderResult:
        _check_amount(request.amount)
        screened = self._screen_source(request)
        ref = provider_ref_for(request.idempotency_key)
        fingerprint = _dumps(
            [request.amount.amount_minor, request.amount.currency, request.capture, screened.fingerprint]
        )

        result, first = await self._create(ref, request, screened, fingerprint)
        await self._credit_destination(result)
        if first and screened.behaviour == _TIMEOUT:
            raise ProviderTimeout("sandbox processing error: outcome unknown", provider_ref=ref)
        return result

    async def capture(self, request: CaptureRequest) -> ProviderResult:
        ref = request.provider_ref
        _check_amount(request.amount)

        def step(current: _State | None) -> tuple[_State, dict[str, Any]]:
            state = _require(current, ref)
            _check_amount(request.amount, state)
            if state["status"] != PaymentStatus.AUTHORIZED:
                raise PaymentError(
                    "invalid_state", f"cannot capture a payment that is {state['status']}", provider_ref=ref
                )
            if request.amount.amount_minor > state["amount"]:
                raise PaymentError(
                    "amount_too_large",
                    f"capture {request.amount.amount_minor} exceeds the authorised {state['amount']}",
                    provider_ref=ref,
                )
            new: _State = {**state, "status": PaymentStatus.CAPTURED.value, "captured": request.amount.amount_minor}
            return new, {}

        fingerprint = _dumps(["capture", ref, request.amount.amount_minor, request.amount.currency])
        fault = await self._take_fault(ref, "capture")
        result, _ = await self._transact(
            ref=ref, idempotency_key=request.idempotency_key, op="capture", fingerprint=fingerprint, step=step
        )
        await self._credit_destination(result)
        return self._after_fault(fault, result)

    async def void(self, request: VoidRequest) -> ProviderResult:
        ref = request.provider_ref
        voidable = {PaymentStatus.AUTHORIZED, PaymentStatus.REQUIRES_ACTION, PaymentStatus.PENDING}

        def step(current: _State | None) -> tuple[_State, dict[str, Any]]:
            state = _require(current, ref)
            if state["status"] not in voidable:
                raise PaymentError(
                    "invalid_state", f"cannot void a payment that is {state['status']}", provider_ref=ref
                )
            new: _State = {**state, "status": PaymentStatus.VOIDED.value, "action_url": ""}
            return new, {}

        fault = await self._take_fault(ref, "void")
        result, _ = await self._transact(
            ref=ref, idempotency_key=request.idempotency_key, op="void", fingerprint=_dumps(["void", ref]), step=step
        )
        return self._after_fault(fault, result)

    async def refund(self, request: RefundRequest) -> ProviderResult:
        ref = request.provider_ref
        _check_amount(request.amount)
        refund_id = "re_" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]

        def step(current: _State | None) -> tuple[_State, dict[str, Any]]:
            state = _require(current, ref)
            _check_amount(request.amount, state)
            if state["status"] not in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED):
                raise PaymentError(
                    "invalid_state", f"cannot refund a payment that is {state['status']}", provider_ref=ref
                )
            refundable = state["captured"] - state["refunded"]
            if request.amount.amount_minor > refundable:
                raise PaymentError(
                    "amount_too_large",
                    f"refund {request.amount.amount_minor} exceeds the refundable {refundable}",
                    provider_ref=ref,
                )
            refunded = state["refunded"] + request.amount.amount_minor
            status = PaymentStatus.REFUNDED if refunded == state["captured"] else PaymentStatus.CAPTURED
            new: _State = {**state, "status": status.value, "refunded": refunded}
            return new, {"refund_id": refund_id, "refund_amount": request.amount.amount_minor}

        fingerprint = _dumps(["refund", ref, request.amount.amount_minor, request.amount.currency])
        fault = await self._take_fault(ref, "refund")
        result, _ = await self._transact(
            ref=ref, idempotency_key=request.idempotency_key, op="refund", fingerprint=fingerprint, step=step
        )
        return self._after_fault(fault, result)

    async def get_transaction(self, provider_ref: str) -> ProviderResult:
        return _result(_require(self._load(await self._redis.get(_PI_PREFIX + provider_ref)), provider_ref))

    def verify_webhook(self, payload: bytes, signature_header: str, *, now: int | None = None) -> WebhookEvent:
        """Verify (raises ``signing.InvalidSignature``) then parse; a signed but malformed body raises ValueError."""
        signing.verify(payload, signature_header, self._webhook_secret, now=now)
        try:
            body = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError("malformed webhook payload: not JSON") from exc
        if not (
            isinstance(body, dict)
            and isinstance(body.get("id"), str)
            and isinstance(body.get("type"), str)
            and isinstance(body.get("created"), int)
            and isinstance(body.get("data"), dict)
        ):
            raise ValueError("malformed webhook payload: needs id, type, created and data")
        return WebhookEvent(id=body["id"], type=body["type"], created=body["created"], data=body["data"])

    # -- sandbox-only controls -------------------------------------------------------------------

    def ref_for(self, idempotency_key: str) -> str:
        """The reference an authorisation with this key has (or would have): lets a crashed caller ask."""
        return provider_ref_for(idempotency_key)

    async def challenge_return_url(self, provider_ref: str) -> str:
        """The return URL the payment was authorised with ("" if none)."""
        return _require(self._load(await self._redis.get(_PI_PREFIX + provider_ref)), provider_ref).get(
            "return_url", ""
        )

    async def complete_challenge(self, provider_ref: str, approve: bool) -> ProviderResult:
        """The shopper passed (``approve``) or failed the 3-D Secure challenge.

        Repeating it once resolved is a no-op that returns the current state (a double click on the
        challenge page changes nothing).
        """

        def step(current: _State | None) -> tuple[_State, dict[str, Any]]:
            state = _require(current, provider_ref)
            if state["flow"] != "challenge":
                raise PaymentError(
                    "invalid_state", "this payment has no 3-D Secure challenge", provider_ref=provider_ref
                )
            if state["status"] != PaymentStatus.REQUIRES_ACTION:
                return state, {}
            if approve:
                new = self._succeeded(state)
            else:
                new = {
                    **state,
                    "status": PaymentStatus.DECLINED.value,
                    "decline_code": "authentication_failed",
                    "message": _MESSAGES["authentication_failed"],
                    "action_url": "",
                }
            return new, {}

        result, _ = await self._transact(
            ref=provider_ref, idempotency_key=None, op="challenge", fingerprint="", step=step
        )
        await self._credit_destination(result)
        return result

    async def settle_pending(self, provider_ref: str) -> ProviderResult:
        """A delayed success (card ...0077) goes through. Repeating it is a no-op."""

        def step(current: _State | None) -> tuple[_State, dict[str, Any]]:
            state = _require(current, provider_ref)
            if state["flow"] != "pending":
                raise PaymentError("invalid_state", "this payment was never pending", provider_ref=provider_ref)
            if state["status"] != PaymentStatus.PENDING:
                return state, {}
            new = self._succeeded(state)
            return new, {}

        result, _ = await self._transact(ref=provider_ref, idempotency_key=None, op="settle", fingerprint="", step=step)
        await self._credit_destination(result)
        return result

    async def fail_next(self, provider_ref: str, op: Literal["capture", "void", "refund"], *, applied: bool) -> None:
        """Make the next ``op`` on this payment time out (a test control, like Stripe's test clocks):
        ``applied`` — the money moves, then the answer is lost; otherwise the request never arrives."""
        await self._redis.set(f"{_FAULT_PREFIX}{provider_ref}:{op}", "applied" if applied else "lost", ex=STATE_TTL_S)

    async def drop_next_webhook(self, provider_ref: str) -> None:
        """Make the sandbox lose the next webhook it would send about this payment (a test control: the status
        poller in app/reconciliation must find the payment's outcome without it)."""
        await self._redis.set(f"{_DROP_PREFIX}{provider_ref}", "1", ex=STATE_TTL_S)

    async def take_dropped_webhook(self, provider_ref: str) -> bool:
        """True (once) when the next webhook about this payment is to be dropped."""
        return bool(await self._redis.getdel(f"{_DROP_PREFIX}{provider_ref}"))

    async def _credit_destination(self, result: ProviderResult) -> None:
        """A destination charge's capture credits the connected account (less the platform's fee), once."""
        if result.status != PaymentStatus.CAPTURED or not result.raw.get("destination"):
            return
        share = result.captured.amount_minor - int(result.raw.get("application_fee", 0))
        if share > 0:
            await self.credit(
                str(result.raw["destination"]),
                Money(share, result.captured.currency),
                idempotency_key=f"destination:{result.provider_ref}",
                source_ref=result.provider_ref,
            )

    async def _take_fault(self, provider_ref: str, op: str) -> str | None:
        fault = await self._redis.getdel(f"{_FAULT_PREFIX}{provider_ref}:{op}")
        if fault == b"lost":
            raise ProviderTimeout("sandbox: the request was lost (fail_next)", provider_ref=provider_ref)
        return None if fault is None else fault.decode()

    @staticmethod
    def _after_fault(fault: str | None, result: ProviderResult) -> ProviderResult:
        if fault == "applied":
            raise ProviderTimeout(
                "sandbox: applied, then the answer was lost (fail_next)", provider_ref=result.provider_ref
            )
        return result

    def event_for(self, result: ProviderResult, type: str, *, created: int | None = None) -> tuple[bytes, str]:
        """A signed webhook about ``result``: (raw JSON body, ``Stripe-Signature``-style header).

        The event id is derived from the type and the object's state, so resending the same event
        (a retried job) carries the same id and the receiver's dedupe catches it.
        """
        ts = int(time.time()) if created is None else created
        obj = {
            "id": result.provider_ref,
            "object": "payment_intent",
            "status": result.status.value,
            "amount": result.amount.amount_minor,
            "currency": result.amount.currency,
            "amount_captured": result.captured.amount_minor,
            "amount_refunded": result.refunded.amount_minor,
            "decline_code": result.decline_code,
        }
        event_id = "evt_" + hashlib.sha256(_dumps([type, obj]).encode()).hexdigest()[:24]
        payload = _dumps({"id": event_id, "type": type, "created": ts, "data": {"object": obj}}).encode()
        return payload, signing.sign(payload, self._webhook_secret, ts)

    # -- internals -------------------------------------------------------------------------------

    def _screen_source(self, request: AuthorizeRequest) -> _Screened:
        if request.card is not None and request.payment_method_token is not None:
            raise PaymentError("invalid_request", "give either a card or a payment method token, not both")
        if request.card is not None:
            return _screen(request.card, datetime.now(UTC))
        if request.payment_method_token is None:
            raise PaymentError("missing_payment_method", "a card or a payment method token is required")
        number = TEST_TOKENS.get(request.payment_method_token)
        if number is None:
            raise PaymentError("unknown_payment_method", f"unknown sandbox token {request.payment_method_token!r}")
        screened = _screen(CardDetails(number, 12, datetime.now(UTC).year + 5, "123"), datetime.now(UTC))
        return _Screened(
            brand=screened.brand,
            last4=screened.last4,
            behaviour=screened.behaviour,
            fingerprint=request.payment_method_token,
        )

    def _new_state(self, ref: str, request: AuthorizeRequest, screened: _Screened) -> _State:
        state: _State = {
            "id": ref,
            "status": PaymentStatus.AUTHORIZED.value,
            "currency": request.amount.currency,
            "amount": request.amount.amount_minor,
            "captured": 0,
            "refunded": 0,
            "capture": request.capture,
            "flow": "",
            "brand": screened.brand,
            "last4": screened.last4,
            "decline_code": "",
            "message": "",
            "action_url": "",
            "created": int(time.time()),
        }
        if request.return_url:
            state["return_url"] = request.return_url
        if request.destination_account:
            state["destination"] = request.destination_account
            state["application_fee"] = request.application_fee.amount_minor if request.application_fee else 0
        behaviour = screened.behaviour
        if behaviour in (_SUCCESS, _TIMEOUT):
            return self._succeeded(state)
        if behaviour == _THREE_DS:
            return {
                **state,
                "status": PaymentStatus.REQUIRES_ACTION.value,
                "flow": "challenge",
                "action_url": f"{self._base_url}/sandbox/3ds/{ref}",
            }
        if behaviour == _DELAYED:
            return {**state, "status": PaymentStatus.PENDING.value, "flow": "pending"}
        return {
            **state,
            "status": PaymentStatus.DECLINED.value,
            "decline_code": behaviour,
            "message": _MESSAGES.get(behaviour, "The card was declined."),
        }

    @staticmethod
    def _succeeded(state: _State) -> _State:
        if state["capture"]:
            return {**state, "status": PaymentStatus.CAPTURED.value, "captured": state["amount"], "action_url": ""}
        return {**state, "status": PaymentStatus.AUTHORIZED.value, "action_url": ""}

    @staticmethod
    def _load(raw: bytes | str | None) -> _State | None:
        return None if raw is None else cast(_State, json.loads(raw))

    async def _transact(
        self, *, ref: str, idempotency_key: str | None, op: str, fingerprint: str, step: _Step
    ) -> tuple[ProviderResult, bool]:
        """Apply ``step`` to the payment and store its result under the idempotency key, atomically.

        Optimistic transaction: WATCH the state and idempotency keys, compute, then MULTI/EXEC both
        writes; a concurrent writer makes EXEC fail and we start again (seeing its result). Returns
        the result and whether this call made the change (False: a replay of an earlier call).
        """
        pi_key = _PI_PREFIX + ref
        idem_key = _IDEM_PREFIX + idempotency_key if idempotency_key is not None else None
        watched = [pi_key] if idem_key is None else [pi_key, idem_key]
        async with self._redis.pipeline(transaction=True) as pipe:
            for _attempt in range(_MAX_ATTEMPTS):
                try:
                    await pipe.watch(*watched)
                    if idem_key is not None:
                        stored = await pipe.get(idem_key)
                        if stored is not None:  # leaving the block resets the pipeline (UNWATCH)
                            return self._replay(stored, op, fingerprint, ref), False
                    current = self._load(await pipe.get(pi_key))
                    try:
                        new_state, extra = step(current)
                    except PaymentError:
                        # The two reads above may straddle another writer's EXEC (key record still empty,
                        # payment already there). Only refuse once an empty EXEC proves they were consistent.
                        pipe.multi()  # type: ignore[no-untyped-call]
                        await pipe.execute()
                        raise
                    if new_state == current and idem_key is None:  # a no-op: a repeated challenge answer
                        return _result(new_state, **extra), False
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves multi() unannotated
                    if new_state != current:
                        pipe.set(pi_key, _dumps(new_state), ex=STATE_TTL_S)
                    if idem_key is not None:  # the answer, as of this change, for replays
                        record = {"op": op, "fingerprint": fingerprint, "state": new_state, "extra": extra}
                        pipe.set(idem_key, _dumps(record), ex=STATE_TTL_S)
                    await pipe.execute()
                    return _result(new_state, **extra), True
                except WatchError:
                    await asyncio.sleep(0)
        raise PaymentError("busy", "too many concurrent changes to this payment; try again", provider_ref=ref)

    async def _create(
        self, ref: str, request: AuthorizeRequest, screened: _Screened, fingerprint: str
    ) -> tuple[ProviderResult, bool]:
        """A new payment and its key record in one atomic script (one round trip; every checkout pays it).
        Returns the result and whether this call created it (False: a replay of an earlier call)."""
        state = self._new_state(ref, request, screened)
        record = {"op": "authorize", "fingerprint": fingerprint, "state": state, "extra": {}}
        keys = [_IDEM_PREFIX + request.idempotency_key, _PI_PREFIX + ref]
        args: list[str | int] = [_dumps(record), _dumps(state), STATE_TTL_S]
        if self.account:
            keys.append(f"{ACCOUNT_PAYMENTS_PREFIX}{self.account}:payments")
            args += [state["created"], ref]
        outcome = await self._create_script(keys=keys, args=args)
        if outcome[0] == _REPLAYED:
            return self._replay(outcome[1], "authorize", fingerprint, ref), False
        if outcome[0] == _REF_TAKEN:  # the ref exists but the key's record expired or was lost
            raise PaymentError("idempotency_key_reused", "this key already authorised a payment", provider_ref=ref)
        return _result(state), True

    @staticmethod
    def _replay(stored: bytes | str, op: str, fingerprint: str, ref: str) -> ProviderResult:
        record = json.loads(stored)
        if record["op"] != op or record["fingerprint"] != fingerprint:
            raise PaymentError(
                "idempotency_key_reused",
                "this idempotency key was used for a different request",
                provider_ref=ref,
            )
        return _result(cast(_State, record["state"]), **record["extra"])
