"""The sandbox's Connect and customers: connected accounts, onboarding, transfers and payouts, in Redis.

State (JSON, same 7-day TTL as payments, renewed on every change):

- ``till:sandbox:acct:<acct_id>``: one connected account with its payouts;
- ``till:sandbox:cus:<cus_id>``: one customer (e-mail and name only);
- ``till:sandbox:idem:<key>``: the first answer to a keyed call (shared with payments; a key used for
  a different call or different arguments raises ``PaymentError("idempotency_key_reused")``).

Accounts:

- ``create_account`` makes ``acct_`` + HMAC(webhook secret, idempotency key)[:16]: the same key gives
  the same account (replays, and a re-creation after the state expired), and ids cannot be guessed
  from a store's id. A new account is *pending*: details not submitted, charges and payouts off,
  requirements due ``business_type``, ``external_account``, ``tos_acceptance.date``.
- ``onboarding_link`` → ``{base_url}/sandbox/connect/{acct}?return=...&refresh=...`` (expires in
  5 minutes, like Stripe's account links). The URLs are also stored on the account: the onboarding
  page redirects only to the stored ones (the query is for reading, never trusted: no open redirect).
- :meth:`SandboxConnect.complete_onboarding` (the page's button) enables the account: details
  submitted, charges and payouts on, nothing due. :meth:`SandboxConnect.require_more` makes an
  enabled account *restricted* (payouts off, requirements due) to try that state.

Money and payouts (deterministic, no clock-driven schedule):

- :meth:`SandboxConnect.credit` (a destination charge's share on capture) and ``create_transfer``
  (separate charges and transfers) add to the account's balance. The balance *is* the open payout:
  one ``in_transit`` payout per currency, created by the first credit (arrival date: 2 days after it
  opened, UTC) and growing with every later credit. Both need an account that takes charges.
- :meth:`SandboxConnect.pay_out` marks the open payouts ``paid`` (arrival date: the day it ran); the
  next credit opens a new ``in_transit`` one. It needs payouts enabled.
- ``list_payouts`` returns them newest first: upcoming (``in_transit``) and past (``paid``).
- :meth:`SandboxConnect.account_event` is a signed ``account.updated`` webhook (Stripe's shape) for
  the webhook pipeline, its id derived from the account's state (a resend has the same id).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypedDict, cast
from urllib.parse import quote

from redis.asyncio import Redis
from redis.exceptions import WatchError

from app.core.money import Money
from app.payments import signing
from app.payments.capabilities import ConnectedAccount, OnboardingLink, Payout, PayoutStatus, Transfer
from app.payments.provider import PaymentError
from app.payments.sandbox._state import _IDEM_PREFIX, _MAX_ATTEMPTS, STATE_TTL_S, _dumps

__all__ = ["ACCOUNT_PREFIX", "CUSTOMER_PREFIX", "INITIAL_REQUIREMENTS", "LINK_TTL_S", "SandboxConnect"]

ACCOUNT_PREFIX = "till:sandbox:acct:"
CUSTOMER_PREFIX = "till:sandbox:cus:"
LINK_TTL_S = 300
PAYOUT_DAYS = 2
INITIAL_REQUIREMENTS = ("business_type", "external_account", "tos_acceptance.date")


class _PayoutRow(TypedDict):
    id: str
    amount: int
    currency: str
    status: str  # in_transit | paid
    arrival_date: str  # ISO date
    created: int


class _Account(TypedDict):
    id: str
    email: str
    country: str
    created: int
    details_submitted: bool
    charges_enabled: bool
    payouts_enabled: bool
    requirements_due: list[str]
    return_url: str
    refresh_url: str
    payouts: list[_PayoutRow]


# A step computes the new stored value and the answer (kept for replays) from the current one, or raises.
_Step = Callable[[Any], tuple[Any, dict[str, Any]]]


def _account(raw: dict[str, Any]) -> ConnectedAccount:
    return ConnectedAccount(
        id=raw["id"],
        charges_enabled=raw["charges_enabled"],
        payouts_enabled=raw["payouts_enabled"],
        details_submitted=raw["details_submitted"],
        requirements_due=tuple(raw["requirements_due"]),
    )


def _payout(row: _PayoutRow) -> Payout:
    return Payout(
        id=row["id"],
        amount=Money(row["amount"], row["currency"]),
        status=cast(PayoutStatus, row["status"]),
        arrival_date=date.fromisoformat(row["arrival_date"]),
        created=row["created"],
    )


def _require_account(state: _Account | None, account_id: str) -> _Account:
    if state is None:
        raise PaymentError("unknown_account", f"no sandbox connected account {account_id}")
    return state


def _positive(amount: Money) -> None:
    if amount.amount_minor <= 0:
        raise PaymentError("invalid_amount", f"amount must be positive, got {amount.amount_minor}")


def _credited(state: _Account, amount: Money, now: int) -> tuple[_Account, _PayoutRow]:
    """The account with ``amount`` added to its open payout in that currency (opened if none)."""
    if not state["charges_enabled"]:
        raise PaymentError("account_not_enabled", f"account {state['id']} cannot receive funds before onboarding")
    rows = list(state["payouts"])
    index = next(
        (i for i, p in enumerate(rows) if p["status"] == "in_transit" and p["currency"] == amount.currency), None
    )
    if index is None:
        arrival = datetime.fromtimestamp(now, UTC).date() + timedelta(days=PAYOUT_DAYS)
        rows.append(
            {
                "id": "po_" + hashlib.sha256(f"{state['id']}:{len(rows)}".encode()).hexdigest()[:24],
                "amount": 0,
                "currency": amount.currency,
                "status": "in_transit",
                "arrival_date": arrival.isoformat(),
                "created": now,
            }
        )
        index = len(rows) - 1
    row: _PayoutRow = {**rows[index], "amount": rows[index]["amount"] + amount.amount_minor}
    rows[index] = row
    return {**state, "payouts": rows}, row


class SandboxConnect:
    """Connect and customers for :class:`SandboxProvider` (a mixin: it shares the provider's Redis)."""

    _redis: Redis
    _base_url: str
    _webhook_secret: str

    # -- SupportsConnect -----------------------------------------------------------------------

    async def create_account(self, *, email: str, country: str, idempotency_key: str) -> ConnectedAccount:
        digest = hmac.new(self._webhook_secret.encode(), idempotency_key.encode(), hashlib.sha256).hexdigest()
        account_id = "acct_" + digest[:16]

        def step(current: _Account | None) -> tuple[_Account, dict[str, Any]]:
            if current is not None:  # its key record expired before it: the same account again
                return current, dict(current)
            new: _Account = {
                "id": account_id,
                "email": email,
                "country": country.upper(),
                "created": int(time.time()),
                "details_submitted": False,
                "charges_enabled": False,
                "payouts_enabled": False,
                "requirements_due": list(INITIAL_REQUIREMENTS),
                "return_url": "",
                "refresh_url": "",
                "payouts": [],
            }
            return new, dict(new)

        answer = await self._keyed(
            ACCOUNT_PREFIX + account_id,
            idempotency_key=idempotency_key,
            op="create_account",
            fingerprint=_dumps([email, country.upper()]),
            step=step,
        )
        return _account(answer)

    async def onboarding_link(self, account_id: str, *, refresh_url: str, return_url: str) -> OnboardingLink:
        def step(current: _Account | None) -> tuple[_Account, dict[str, Any]]:
            state = _require_account(current, account_id)
            return {**state, "return_url": return_url, "refresh_url": refresh_url}, {}

        await self._keyed(ACCOUNT_PREFIX + account_id, idempotency_key=None, op="", fingerprint="", step=step)
        url = (
            f"{self._base_url}/sandbox/connect/{account_id}"
            f"?return={quote(return_url, safe='')}&refresh={quote(refresh_url, safe='')}"
        )
        return OnboardingLink(url=url, expires_at=int(time.time()) + LINK_TTL_S)

    async def get_account(self, account_id: str) -> ConnectedAccount:
        return _account(dict(await self._load_account(account_id)))

    async def create_transfer(
        self, *, amount: Money, destination: str, transfer_group: str, idempotency_key: str, source_ref: str = ""
    ) -> Transfer:
        _positive(amount)
        transfer_id = "tr_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]

        def step(current: _Account | None) -> tuple[_Account, dict[str, Any]]:
            new, _ = _credited(_require_account(current, destination), amount, int(time.time()))
            return new, {"id": transfer_id}

        await self._keyed(
            ACCOUNT_PREFIX + destination,
            idempotency_key=idempotency_key,
            op="transfer",
            fingerprint=_dumps([amount.amount_minor, amount.currency, destination, transfer_group, source_ref]),
            step=step,
        )
        return Transfer(id=transfer_id, amount=amount, destination=destination, transfer_group=transfer_group)

    async def list_payouts(self, account_id: str, *, limit: int = 20) -> list[Payout]:
        rows = (await self._load_account(account_id))["payouts"]
        newest_first = sorted(enumerate(rows), key=lambda pair: (pair[1]["created"], pair[0]), reverse=True)
        return [_payout(row) for _, row in newest_first[: max(0, limit)]]

    # -- SupportsCustomers ---------------------------------------------------------------------

    async def ensure_customer(self, *, email: str, name: str, existing_ref: str, idempotency_key: str) -> str:
        if existing_ref and await self._redis.exists(CUSTOMER_PREFIX + existing_ref):
            return existing_ref
        customer_id = "cus_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]

        def step(current: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
            state = current or {"id": customer_id, "email": email, "name": name, "created": int(time.time())}
            return state, {"id": customer_id}

        answer = await self._keyed(
            CUSTOMER_PREFIX + customer_id,
            idempotency_key=idempotency_key,
            op="customer",
            fingerprint=_dumps([email, name]),
            step=step,
        )
        return str(answer["id"])

    # -- sandbox-only controls -------------------------------------------------------------------

    async def complete_onboarding(self, account_id: str) -> ConnectedAccount:
        """The owner finished onboarding: details submitted, charges and payouts on, nothing due."""

        def step(current: _Account | None) -> tuple[_Account, dict[str, Any]]:
            state = _require_account(current, account_id)
            new: _Account = {
                **state,
                "details_submitted": True,
                "charges_enabled": True,
                "payouts_enabled": True,
                "requirements_due": [],
            }
            return new, dict(new)

        return _account(
            await self._keyed(ACCOUNT_PREFIX + account_id, idempotency_key=None, op="", fingerprint="", step=step)
        )

    async def require_more(
        self, account_id: str, requirements_due: tuple[str, ...] = ("individual.verification.document",)
    ) -> ConnectedAccount:
        """The provider wants more before paying out again: payouts off, ``requirements_due`` due."""

        def step(current: _Account | None) -> tuple[_Account, dict[str, Any]]:
            state = _require_account(current, account_id)
            new: _Account = {**state, "payouts_enabled": False, "requirements_due": list(requirements_due)}
            return new, dict(new)

        return _account(
            await self._keyed(ACCOUNT_PREFIX + account_id, idempotency_key=None, op="", fingerprint="", step=step)
        )

    async def return_url_for(self, account_id: str) -> str:
        """The return URL of the account's latest onboarding link ("" if none was made)."""
        return (await self._load_account(account_id))["return_url"]

    async def credit(self, account_id: str, amount: Money, *, idempotency_key: str, source_ref: str = "") -> Payout:
        """Add a destination charge's share (captured amount less the application fee) to the account's
        balance, i.e. its open ``in_transit`` payout, which it returns. Once per key."""
        _positive(amount)

        def step(current: _Account | None) -> tuple[_Account, dict[str, Any]]:
            new, row = _credited(_require_account(current, account_id), amount, int(time.time()))
            return new, dict(row)

        answer = await self._keyed(
            ACCOUNT_PREFIX + account_id,
            idempotency_key=idempotency_key,
            op="credit",
            fingerprint=_dumps([account_id, amount.amount_minor, amount.currency, source_ref]),
            step=step,
        )
        return _payout(cast(_PayoutRow, answer))

    async def pay_out(self, account_id: str, *, now: int | None = None) -> list[Payout]:
        """Pay the balance out: every ``in_transit`` payout becomes ``paid``, arriving today. Returns them."""
        paid_at = int(time.time()) if now is None else now
        today = datetime.fromtimestamp(paid_at, UTC).date().isoformat()

        def step(current: _Account | None) -> tuple[_Account, dict[str, Any]]:
            state = _require_account(current, account_id)
            if not state["payouts_enabled"]:
                raise PaymentError("payouts_not_enabled", f"account {account_id} cannot be paid out now")
            paid: list[_PayoutRow] = []
            rows: list[_PayoutRow] = []
            for row in state["payouts"]:
                if row["status"] == "in_transit":
                    row = {**row, "status": "paid", "arrival_date": today}
                    paid.append(row)
                rows.append(row)
            return {**state, "payouts": rows}, {"paid": paid}

        answer = await self._keyed(ACCOUNT_PREFIX + account_id, idempotency_key=None, op="", fingerprint="", step=step)
        return [_payout(row) for row in answer["paid"]]

    async def account_event(self, account_id: str, *, created: int | None = None) -> tuple[bytes, str]:
        """A signed ``account.updated`` webhook for the account as it is: (raw JSON body, signature header)."""
        state = await self._load_account(account_id)
        ts = int(time.time()) if created is None else created
        obj = {
            "id": state["id"],
            "object": "account",
            "charges_enabled": state["charges_enabled"],
            "payouts_enabled": state["payouts_enabled"],
            "details_submitted": state["details_submitted"],
            "requirements": {"currently_due": list(state["requirements_due"])},
        }
        event_id = "evt_" + hashlib.sha256(_dumps(["account.updated", obj]).encode()).hexdigest()[:24]
        payload = _dumps({"id": event_id, "type": "account.updated", "created": ts, "data": {"object": obj}}).encode()
        return payload, signing.sign(payload, self._webhook_secret, ts)

    # -- internals -------------------------------------------------------------------------------

    async def _load_account(self, account_id: str) -> _Account:
        raw = await self._redis.get(ACCOUNT_PREFIX + account_id)
        return _require_account(None if raw is None else cast(_Account, json.loads(raw)), account_id)

    async def _keyed(
        self, key: str, *, idempotency_key: str | None, op: str, fingerprint: str, step: _Step
    ) -> dict[str, Any]:
        """Apply ``step`` to the value at ``key`` and keep its answer under the idempotency key, atomically.

        The payments' optimistic transaction (WATCH, compute, MULTI/EXEC; a concurrent writer makes EXEC
        fail and we start again, then see its answer). A refusal (PaymentError) is not kept.
        """
        idem_key = None if idempotency_key is None else _IDEM_PREFIX + idempotency_key
        watched = [key] if idem_key is None else [key, idem_key]
        async with self._redis.pipeline(transaction=True) as pipe:
            for _attempt in range(_MAX_ATTEMPTS):
                try:
                    await pipe.watch(*watched)
                    if idem_key is not None:
                        stored = await pipe.get(idem_key)
                        if stored is not None:
                            record = json.loads(stored)
                            if record.get("op") != op or record.get("fingerprint") != fingerprint:
                                raise PaymentError(
                                    "idempotency_key_reused", "this idempotency key was used for a different request"
                                )
                            return cast(dict[str, Any], record["answer"])
                    raw = await pipe.get(key)
                    current = None if raw is None else json.loads(raw)
                    try:
                        new, answer = step(current)
                    except PaymentError:
                        pipe.multi()  # type: ignore[no-untyped-call]  # an empty EXEC proves the reads were consistent
                        await pipe.execute()
                        raise
                    pipe.multi()  # type: ignore[no-untyped-call]
                    if new != current:
                        pipe.set(key, _dumps(new), ex=STATE_TTL_S)
                    if idem_key is not None:
                        record = {"op": op, "fingerprint": fingerprint, "answer": answer}
                        pipe.set(idem_key, _dumps(record), ex=STATE_TTL_S)
                    await pipe.execute()
                    return answer
                except WatchError:
                    await asyncio.sleep(0)
        raise PaymentError("busy", "too many concurrent changes to this account; try again")
