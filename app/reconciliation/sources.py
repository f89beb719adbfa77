"""The provider's side of reconciliation: its list of transactions and payouts, read as a stream.

:class:`LedgerSource` is what a reconciliation run reads; every method yields, so a run never holds a provider's
whole history in memory. Implementations:

- :class:`SandboxLedger`: the sandbox's own ledger in Redis. A store's payments are listed under its account
  (``till:sandbox:acct:<store id>:payments``, a sorted set by creation time that the sandbox's authorisation
  script writes) and read in pages of :data:`PAGE` with one ``MGET`` each. The sandbox charges the same processing
  fee as Till estimates (``app.payments.fees``); a payment may carry its own ``fee`` (a test's injected fee
  mismatch). Payouts are simulated here (:meth:`SandboxLedger.simulate_payout`): a payout gathers the account's
  charges and refunds not yet paid out, as Stripe's balance transactions by payout do.
- ``app.reconciliation.stripe_source.StripeLedger``: Stripe's list APIs with auto-pagination.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from redis.asyncio import Redis

from app.core.money import Money
from app.payments.fees import processing_fee
from app.payments.provider import PaymentError
from app.payments.sandbox import ACCOUNT_PAYMENTS_PREFIX
from app.payments.sandbox._state import _PI_PREFIX, STATE_TTL_S

PAGE = 1000
MONEY_STATUSES = ("authorized", "captured", "refunded")  # money held or moved at the provider


@dataclass(frozen=True, slots=True)
class RemotePayment:
    """One payment as the provider sees it (its totals now; ``fee`` is what it charged for it)."""

    ref: str
    status: str
    currency: str
    amount: int
    captured: int
    refunded: int
    fee: int
    created: int  # unix seconds


@dataclass(frozen=True, slots=True)
class PayoutItem:
    """One balance transaction a payout carries: a charge (+), a refund (-), a fee, a dispute (-)."""

    id: str
    type: str  # charge | refund | dispute | adjustment
    source_ref: str  # the payment it belongs to
    amount: int
    fee: int
    net: int


@dataclass(frozen=True, slots=True)
class RemotePayout:
    ref: str
    currency: str
    amount: int
    status: str
    arrival: int  # unix seconds


class LedgerSource(Protocol):
    name: str

    def payments(self, start: int, end: int) -> AsyncIterator[RemotePayment]:
        """Payments created in [start, end) (unix seconds), in any order."""
        ...

    async def payment(self, ref: str) -> RemotePayment | None:
        """One payment by reference (None: the provider has no such payment)."""
        ...

    def payouts(self, start: int, end: int) -> AsyncIterator[RemotePayout]:
        """Payouts arriving in [start, end)."""
        ...

    def payout_items(self, payout_ref: str) -> AsyncIterator[PayoutItem]:
        """The balance transactions a payout carries."""
        ...


def _remote(state: dict[str, Any]) -> RemotePayment:
    captured = int(state["captured"])
    fee = state.get("fee")
    if fee is None:
        fee = processing_fee("sandbox", Money(int(state["amount"]), state["currency"])).amount_minor if captured else 0
    return RemotePayment(
        ref=state["id"],
        status=state["status"],
        currency=state["currency"],
        amount=int(state["amount"]),
        captured=captured,
        refunded=int(state["refunded"]),
        fee=int(fee),
        created=int(state["created"]),
    )


class SandboxLedger:
    """The sandbox's ledger for one store (see the module docstring)."""

    name = "sandbox"

    def __init__(self, redis: Redis, store_id: uuid.UUID | str) -> None:
        self.redis = redis
        self.account = str(store_id)
        self._index = f"{ACCOUNT_PAYMENTS_PREFIX}{self.account}:payments"
        self._payouts = f"{ACCOUNT_PAYMENTS_PREFIX}{self.account}:payouts"
        self._paid_out = f"{ACCOUNT_PAYMENTS_PREFIX}{self.account}:paid-out"

    async def payments(self, start: int, end: int) -> AsyncIterator[RemotePayment]:
        offset = 0
        while True:
            refs = await self.redis.zrangebyscore(self._index, start, f"({end}", start=offset, num=PAGE)
            if not refs:
                return
            offset += len(refs)
            states = await self.redis.mget([_PI_PREFIX + (r.decode() if isinstance(r, bytes) else r) for r in refs])
            for raw in states:
                if raw is not None:
                    yield _remote(json.loads(raw))
            if len(refs) < PAGE:
                return

    async def payment(self, ref: str) -> RemotePayment | None:
        raw = await self.redis.get(_PI_PREFIX + ref)
        return None if raw is None else _remote(json.loads(raw))

    async def payouts(self, start: int, end: int) -> AsyncIterator[RemotePayout]:
        ids = await self.redis.zrangebyscore(self._payouts, start, f"({end}")
        for payout_id in ids:
            raw = await self.redis.get(f"{self._payouts}:{payout_id.decode()}")
            if raw is not None:
                body = json.loads(raw)
                yield RemotePayout(body["id"], body["currency"], body["amount"], body["status"], body["arrival"])

    async def payout_items(self, payout_ref: str) -> AsyncIterator[PayoutItem]:
        raw = await self.redis.get(f"{self._payouts}:{payout_ref}")
        if raw is None:
            raise PaymentError("unknown_payout", f"no sandbox payout {payout_ref}")
        for item in json.loads(raw)["items"]:
            yield PayoutItem(**item)

    # -- the sandbox's simulation (tests, the demo) ------------------------------------------------------------

    async def simulate_payout(self, currency: str, *, arrival: int | None = None, amount: int | None = None) -> str:
        """Pay out every charge and refund of the account not paid out yet, in ``currency``: a charge's captured
        amount less its fee, less what was refunded (each once). ``amount`` overrides the payout's total: a test's
        payout that does not add up. Returns the payout's id."""
        items: list[PayoutItem] = []
        async for payment in self.payments(0, 2**62):
            if payment.currency != currency:
                continue
            if payment.captured and not await self.redis.sismember(self._paid_out, f"ch:{payment.ref}"):  # type: ignore[misc]
                items.append(
                    PayoutItem(
                        f"txn_ch_{payment.ref}",
                        "charge",
                        payment.ref,
                        payment.captured,
                        payment.fee,
                        payment.captured - payment.fee,
                    )
                )
            refunded_before = int(await self.redis.hget(self._paid_out + ":refunded", payment.ref) or 0)  # type: ignore[misc]
            if payment.refunded > refunded_before:
                part = payment.refunded - refunded_before
                items.append(
                    PayoutItem(f"txn_re_{payment.ref}_{payment.refunded}", "refund", payment.ref, -part, 0, -part)
                )
        payout_id = "po_" + uuid.uuid4().hex[:24]
        arrival = int(time.time()) if arrival is None else arrival
        total = sum(item.net for item in items)
        body = {
            "id": payout_id,
            "currency": currency,
            "amount": total if amount is None else amount,
            "status": "paid",
            "arrival": arrival,
            "items": [asdict(item) for item in items],
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(f"{self._payouts}:{payout_id}", json.dumps(body), ex=STATE_TTL_S)
            pipe.zadd(self._payouts, {payout_id: arrival})
            for item in items:
                if item.type == "charge":
                    pipe.sadd(self._paid_out, f"ch:{item.source_ref}")
                else:
                    pipe.hincrby(self._paid_out + ":refunded", item.source_ref, -item.amount)
            await pipe.execute()
        return payout_id

    async def tamper(self, ref: str, **fields: Any) -> None:
        """Change a payment behind Till's back (tests inject drift: another amount, a fee)."""
        raw = await self.redis.get(_PI_PREFIX + ref)
        if raw is None:
            raise PaymentError("unknown_payment", f"no sandbox payment {ref}")
        state = {**json.loads(raw), **fields}
        await self.redis.set(_PI_PREFIX + ref, json.dumps(state), ex=STATE_TTL_S)
