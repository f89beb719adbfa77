"""The sandbox's disputes: open one against a captured payment, take evidence, close it won or lost.

State: ``till:sandbox:dispute:<dp_id>`` (JSON, the payments' 7-day TTL). One dispute per payment, as
Stripe has one per charge: its id is ``dp_`` + sha256(payment ref)[:24], so opening it again returns it.

- :meth:`SandboxDisputes.open_dispute` → a signed ``charge.dispute.created`` event (Stripe's shape:
  ``id``, ``amount``, ``currency``, ``reason``, ``status`` ``needs_response``, ``evidence_details.due_by``
  seven days on, ``payment_intent``, ``charge``), for the webhook pipeline or a test to deliver.
- ``submit_dispute_evidence`` (SupportsDisputes) records the evidence here; ``submit=True`` moves the
  dispute to ``under_review`` (only from a ``*needs_response`` status; the same evidence again is a replay).
- :meth:`SandboxDisputes.close_dispute` → ``won`` or ``lost`` and a signed ``charge.dispute.closed`` event;
  closing it again the same way returns the same event, the other way is refused.
- :meth:`SandboxDisputes.dispute_event` signs any event about the dispute as it is now (``charge.dispute.updated``).
Event ids derive from the type and the object, so a resent event carries the same id.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import WatchError

from app.core.money import Money
from app.payments import signing
from app.payments.capabilities import DisputeEvidence, DisputeSubmission
from app.payments.provider import PaymentError, PaymentStatus
from app.payments.sandbox._state import _MAX_ATTEMPTS, _PI_PREFIX, STATE_TTL_S, _dumps

__all__ = ["DISPUTE_FEE_MINOR", "DISPUTE_PREFIX", "DUE_AFTER_S", "SandboxDisputes"]

DISPUTE_PREFIX = "till:sandbox:dispute:"
DUE_AFTER_S = 7 * 24 * 3600
DISPUTE_FEE_MINOR = 1500  # the bank's fee for a dispute, withdrawn with the amount and kept whatever the outcome
_REASONS = frozenset(
    {
        "bank_cannot_process", "check_returned", "credit_not_processed", "customer_initiated", "debit_not_authorized",
        "duplicate", "fraudulent", "general", "incorrect_account_details", "insufficient_funds", "noncompliant",
        "product_not_received", "product_unacceptable", "subscription_canceled", "unrecognized",
    }
)  # fmt: skip
_Dispute = dict[str, Any]


def dispute_id_for(provider_ref: str) -> str:
    return "dp_" + hashlib.sha256(provider_ref.encode()).hexdigest()[:24]


class SandboxDisputes:
    """Disputes for :class:`SandboxProvider` (a mixin: it shares the provider's Redis and webhook secret)."""

    _redis: Redis
    _webhook_secret: str

    async def open_dispute(
        self, provider_ref: str, amount: Money, reason: str = "fraudulent", *, created: int | None = None
    ) -> tuple[bytes, str]:
        """The cardholder disputes ``amount`` of a captured payment: (signed body, signature header)."""
        if reason not in _REASONS:
            raise PaymentError("invalid_request", f"unknown dispute reason {reason!r}")
        raw = await self._redis.get(_PI_PREFIX + provider_ref)
        if raw is None:
            raise PaymentError("unknown_payment", f"no sandbox payment {provider_ref}", provider_ref=provider_ref)
        payment = json.loads(raw)
        disputable = payment["captured"] - payment["refunded"]
        if payment["status"] not in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED) or disputable <= 0:
            raise PaymentError("invalid_state", "only captured money can be disputed", provider_ref=provider_ref)
        if amount.currency != payment["currency"] or not 0 < amount.amount_minor <= disputable:
            raise PaymentError("amount_too_large", f"at most {disputable} can be disputed", provider_ref=provider_ref)
        now = int(time.time()) if created is None else created
        dispute_id = dispute_id_for(provider_ref)

        def step(current: _Dispute | None) -> _Dispute:
            if current is not None:
                return current
            return {
                "id": dispute_id,
                "object": "dispute",
                "amount": amount.amount_minor,
                "currency": amount.currency.lower(),
                "reason": reason,
                "status": "needs_response",
                "created": now,
                "evidence_details": {"due_by": now + DUE_AFTER_S, "has_evidence": False, "submission_count": 0},
                "evidence": {},
                "payment_intent": provider_ref,
                "charge": "ch_" + provider_ref.removeprefix("sb_"),
                "is_charge_refundable": False,
                # As Stripe: the withdrawal of the amount and the dispute fee (reinstatement added if won).
                "balance_transactions": [
                    _balance_transaction(dispute_id, -amount.amount_minor, amount.currency, DISPUTE_FEE_MINOR, now)
                ],
            }

        dispute = await self._change_dispute(dispute_id, step)
        return self._dispute_webhook(dispute, "charge.dispute.created", now)

    async def submit_dispute_evidence(
        self, dispute_id: str, evidence: DisputeEvidence, submit: bool = True
    ) -> DisputeSubmission:
        fields = evidence.fields()

        def step(current: _Dispute | None) -> _Dispute:
            dispute = _require(current, dispute_id)
            details = dict(dispute["evidence_details"])
            if dispute["evidence"] == fields and (details["submission_count"] > 0) == submit:
                return dispute  # the same call again
            if not str(dispute["status"]).endswith("needs_response"):
                raise PaymentError("invalid_state", f"the dispute is {dispute['status']}", provider_ref=dispute_id)
            status = dispute["status"]
            if submit:
                status = "warning_under_review" if status.startswith("warning") else "under_review"
                details["submission_count"] += 1
            details["has_evidence"] = bool(fields)
            return {**dispute, "evidence": fields, "evidence_details": details, "status": status}

        dispute = await self._change_dispute(dispute_id, step)
        return DisputeSubmission(dispute_id=dispute_id, status=str(dispute["status"]), submitted=submit)

    async def close_dispute(self, dispute_id: str, won: bool, *, created: int | None = None) -> tuple[bytes, str]:
        """The bank decided: (signed ``charge.dispute.closed`` body, signature header)."""
        outcome = "won" if won else "lost"

        def step(current: _Dispute | None) -> _Dispute:
            dispute = _require(current, dispute_id)
            if dispute["status"] == outcome:
                return dispute
            if dispute["status"] in ("won", "lost"):
                raise PaymentError(
                    "invalid_state", f"the dispute was already {dispute['status']}", provider_ref=dispute_id
                )
            closed = int(time.time()) if created is None else created
            moved = list(dispute.get("balance_transactions") or [])
            if won:  # the amount comes back; the fee stays with the bank
                moved.append(_balance_transaction(dispute_id, dispute["amount"], dispute["currency"], 0, closed))
            return {**dispute, "status": outcome, "closed": closed, "balance_transactions": moved}

        dispute = await self._change_dispute(dispute_id, step)
        return self._dispute_webhook(dispute, "charge.dispute.closed", int(dispute["closed"]))

    async def get_dispute(self, dispute_id: str) -> dict[str, Any]:
        raw = await self._redis.get(DISPUTE_PREFIX + dispute_id)
        return _require(None if raw is None else cast(_Dispute, json.loads(raw)), dispute_id)

    async def dispute_event(self, dispute_id: str, type: str, *, created: int | None = None) -> tuple[bytes, str]:
        """A signed event about the dispute as it is now (e.g. ``charge.dispute.updated``)."""
        dispute = await self.get_dispute(dispute_id)
        return self._dispute_webhook(dispute, type, int(time.time()) if created is None else created)

    def _dispute_webhook(self, dispute: _Dispute, type: str, created: int) -> tuple[bytes, str]:
        obj = {k: v for k, v in dispute.items() if k != "closed"}
        event_id = "evt_" + hashlib.sha256(_dumps([type, obj]).encode()).hexdigest()[:24]
        payload = _dumps({"id": event_id, "type": type, "created": created, "data": {"object": obj}}).encode()
        return payload, signing.sign(payload, self._webhook_secret, int(time.time()))

    async def _change_dispute(self, dispute_id: str, step: Callable[[_Dispute | None], _Dispute]) -> _Dispute:
        key = DISPUTE_PREFIX + dispute_id
        async with self._redis.pipeline(transaction=True) as pipe:
            for _attempt in range(_MAX_ATTEMPTS):
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    current = None if raw is None else cast(_Dispute, json.loads(raw))
                    new = step(current)
                    if new == current:
                        return new  # leaving the block resets the pipeline (UNWATCH)
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves multi() unannotated
                    pipe.set(key, _dumps(new), ex=STATE_TTL_S)
                    await pipe.execute()
                    return new
                except WatchError:
                    await asyncio.sleep(0)
        raise PaymentError("busy", "too many concurrent changes to this dispute; try again", provider_ref=dispute_id)


def _balance_transaction(dispute_id: str, amount_minor: int, currency: str, fee_minor: int, at: int) -> dict[str, Any]:
    return {
        "id": f"txn_{dispute_id.removeprefix('dp_')}_{'in' if amount_minor > 0 else 'out'}",
        "object": "balance_transaction",
        "amount": amount_minor,
        "currency": currency.lower(),
        "fee": fee_minor,
        "net": amount_minor - fee_minor,
        "created": at,
        "type": "adjustment",
        "description": "Chargeback reversal" if amount_minor > 0 else "Chargeback withdrawal",
    }


def _require(dispute: _Dispute | None, dispute_id: str) -> _Dispute:
    if dispute is None:
        raise PaymentError("unknown_dispute", f"no sandbox dispute {dispute_id}", provider_ref=dispute_id)
    return dispute
