"""The stored-value ledger: the one core gift cards, store credit and loyalty points are built on (issue 15).

Public API (stable: add, don't rename). Everything runs inside the caller's session transaction
(``Ledger(session, store_id)``), one statement per call, and never writes half:

    ledger = Ledger(session, store_id)
    acct = await ledger.open_account("gift_card", "EUR", code_hash=..., code_last4="7Q2K")
    acct = await ledger.customer_account(customer_id, "loyalty_points", POINTS)   # get or make (one per kind)
    await ledger.post(acct.id, "issue", 5000, reason="bought", actor="user:…")      # issue | refund | expire | adjust
    hold = await ledger.hold(acct.id, 1200, holder_id=attempt_id, holder_kind="checkout",
                             value_minor=1200, currency="EUR")                       # InsufficientBalance
    await ledger.capture(hold.id, order_id=order_id)                                 # all, or part (rest released)
    await ledger.release(hold.id, reason="declined")                                 # no-op unless open
    await ledger.release_holder(attempt_id, reason="checkout failed")                # every open hold of a holder
    spent = await ledger.spend(acct.id, 800, holder_id=sale_id, holder_kind="pos")  # hold + capture at once
    await ledger.refund(hold.id, 300, reason="returned")                             # ≤ captured - refunded
    await ledger.balance(acct.id)    # SUM(delta_minor) of the entries — the truth
    await ledger.spendable(acct.id)  # balance - open holds

Amounts are integers in the account's unit: minor units of ``unit`` (a currency) for money accounts, whole
points for ``loyalty_points`` (unit ``"PTS"``). A hold also records ``value_minor`` + ``currency``: the money it
pays on the order (for points, converted by the loyalty module at its program's rate).

Concurrency (Invariant 3): a hold or spend is one conditional ``UPDATE`` of the account row
(``balance_minor - held_minor >= amount``): PostgreSQL locks the row and re-checks the condition on its newest
version, so concurrent spends queue on the row and can never overdraw; a CHECK constraint
(``0 <= held_minor <= balance_minor``) backs it up. The checkout's and the POS's one-statement paths use the
fragments in ``app/stored_value/fragments.py`` with the same rules.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, overload

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import pg
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.stored_value.models import KINDS, POINTS

__all__ = [
    "HOLD_TTL",
    "POINTS",
    "Account",
    "AccountUnavailable",
    "Entry",
    "Hold",
    "InsufficientBalance",
    "Ledger",
    "Refs",
    "expire_holds",
]

# How long an open hold counts against the balance before the expiry job releases it. Far longer than a
# checkout takes (the crash sweeper compensates a stalled attempt after 2 minutes); the placing statement
# captures only while every hold of the attempt is still open.
HOLD_TTL = timedelta(minutes=30)
POSTABLE = ("issue", "refund", "expire", "adjust")


class InsufficientBalance(Conflict):
    title = "Insufficient balance"
    code = "insufficient_balance"


class AccountUnavailable(Conflict):
    """Disabled or expired: nothing can be spent from it."""

    title = "Not available"
    code = "stored_value_unavailable"


@dataclass(frozen=True)
class Refs:
    """What an entry is about (any of them may be None)."""

    order_id: uuid.UUID | None = None
    attempt_id: uuid.UUID | None = None
    pos_sale_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Account:
    id: uuid.UUID
    kind: str
    unit: str
    customer_id: uuid.UUID | None
    code_last4: str
    status: str
    expires_at: datetime | None
    balance_minor: int
    held_minor: int
    issued_minor: int
    note: str
    created_at: datetime

    @property
    def spendable_minor(self) -> int:
        return self.balance_minor - self.held_minor

    @property
    def is_points(self) -> bool:
        return self.unit == POINTS

    def usable(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return self.status == "active" and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class Hold:
    id: uuid.UUID
    account_id: uuid.UUID
    instrument: str
    holder_kind: str
    holder_id: uuid.UUID
    amount_minor: int
    value_minor: int
    currency: str
    captured_minor: int
    refunded_minor: int
    status: str
    expires_at: datetime
    order_id: uuid.UUID | None
    created_at: datetime


@dataclass(frozen=True)
class Entry:
    id: uuid.UUID
    account_id: uuid.UUID
    kind: str
    amount_minor: int
    delta_minor: int
    hold_id: uuid.UUID | None
    reason: str
    actor: str
    order_id: uuid.UUID | None
    attempt_id: uuid.UUID | None
    pos_sale_id: uuid.UUID | None
    created_at: datetime


_ACCOUNT_COLS = (
    "id, kind, unit, customer_id, code_last4, status, expires_at, balance_minor, held_minor, issued_minor, note, "
    "created_at"
)
_HOLD_COLS = (
    "id, account_id, instrument, holder_kind, holder_id, amount_minor, value_minor, currency, captured_minor, "
    "refunded_minor, status, expires_at, order_id, created_at"
)
_ENTRY_COLS = (
    "id, account_id, kind, amount_minor, delta_minor, hold_id, reason, actor, order_id, attempt_id, pos_sale_id, "
    "created_at"
)


def account_of(row: Any) -> Account:
    return Account(**{k: row[k] for k in Account.__dataclass_fields__})


def hold_of(row: Any) -> Hold:
    return Hold(**{k: row[k] for k in Hold.__dataclass_fields__})


def entry_of(row: Any) -> Entry:
    return Entry(**{k: row[k] for k in Entry.__dataclass_fields__})


# ---- statements (every one names store_id) ----------------------------------------------------------------

_OPEN = f"""
    INSERT INTO stored_value_accounts (id, store_id, kind, unit, customer_id, code_hash, code_key_version, code_last4,
                                       status, expires_at, balance_minor, held_minor, issued_minor, note,
                                       source_order_id, created_at, updated_at)
    VALUES (:id, :store_id, :kind, :unit, :customer_id, :code_hash, :code_key_version, :code_last4, :status,
            :expires_at, 0, 0, 0, :note, :source_order_id, now(), now())
    ON CONFLICT DO NOTHING
    RETURNING {_ACCOUNT_COLS}
"""  # noqa: S608 (column lists are constants)
_CUSTOMER_ACCOUNT = f"""
    SELECT {_ACCOUNT_COLS} FROM stored_value_accounts
    WHERE store_id = $1 AND customer_id = $2 AND kind = $3
"""  # noqa: S608
_ACCOUNT = f"SELECT {_ACCOUNT_COLS} FROM stored_value_accounts WHERE id = $2 AND store_id = $1"  # noqa: S608
_ENTRY_INSERT = """
    INSERT INTO stored_value_entries (id, store_id, account_id, kind, amount_minor, delta_minor, hold_id, reason, actor,
                                      order_id, attempt_id, pos_sale_id, created_at, updated_at)
"""
# issue / refund-to-account / expire / adjust: the account row changes only when the balance stays >= its holds.
_POST = f"""
    WITH a AS (
        UPDATE stored_value_accounts
        SET balance_minor = balance_minor + :delta::bigint,
            issued_minor = issued_minor + CASE WHEN :kind::text = 'issue' THEN :delta::bigint ELSE 0 END,
            updated_at = now()
        WHERE id = :account_id AND store_id = :store_id AND balance_minor - held_minor + :delta::bigint >= 0
        RETURNING id
    ), e AS (
        {_ENTRY_INSERT}
        SELECT :entry_id, :store_id, a.id, :kind, abs(:delta::bigint), :delta::bigint, NULL, :reason, :actor, :order_id,
               :attempt_id, :pos_sale_id, now(), now()
        FROM a
        RETURNING {_ENTRY_COLS}
    )
    SELECT * FROM e
"""  # noqa: S608
# A hold: the account row is locked by the UPDATE, which re-checks spendable on the row's newest version.
_HOLD = f"""
    WITH a AS (
        UPDATE stored_value_accounts
        SET held_minor = held_minor + :amount::bigint, balance_minor = balance_minor - :captured::bigint,
            updated_at = now()
        WHERE id = :account_id AND store_id = :store_id AND status = 'active'
          AND (expires_at IS NULL OR expires_at > now())
          AND balance_minor - held_minor >= :amount::bigint + :captured::bigint
        RETURNING id, kind
    ), h AS (
        INSERT INTO stored_value_holds (id, store_id, account_id, instrument, holder_kind, holder_id, amount_minor,
                                        value_minor, currency, captured_minor, refunded_minor, status, expires_at,
                                        order_id, created_at, updated_at)
        SELECT :hold_id, :store_id, a.id, COALESCE(:instrument, a.kind), :holder_kind, :holder_id,
               :amount::bigint + :captured::bigint, :value_minor, :currency, :captured::bigint, 0, :status,
               :expires_at, :order_id, now(), now()
        FROM a
        RETURNING {_HOLD_COLS}
    ), e AS (
        {_ENTRY_INSERT}
        SELECT gen_random_uuid(), :store_id, h.account_id, :entry_kind, h.amount_minor, -:captured::bigint, h.id,
               :reason, :actor, :order_id, :attempt_id, :pos_sale_id, now(), now()
        FROM h
    )
    SELECT * FROM h
"""  # noqa: S608
# Capture ``:amount`` of an open hold (the rest is released): hold row, then account row.
_CAPTURE = f"""
    WITH h AS (
        UPDATE stored_value_holds
        SET status = 'captured', captured_minor = :amount::bigint, order_id = COALESCE(:order_id, order_id),
            updated_at = now()
        WHERE id = :hold_id AND store_id = :store_id AND status = 'open' AND :amount::bigint <= amount_minor
        RETURNING {_HOLD_COLS}
    ), a AS (
        UPDATE stored_value_accounts a
        SET balance_minor = a.balance_minor - :amount::bigint, held_minor = a.held_minor - h.amount_minor,
            updated_at = now()
        FROM h WHERE a.id = h.account_id AND a.store_id = :store_id
    ), e AS (
        {_ENTRY_INSERT}
        SELECT gen_random_uuid(), :store_id, h.account_id, x.kind, x.amount, x.delta, h.id, :reason, :actor,
               h.order_id, :attempt_id, :pos_sale_id, now(), now()
        FROM h, LATERAL (VALUES ('capture', :amount::bigint, -:amount::bigint),
                                ('release', h.amount_minor - :amount::bigint, 0)) AS x(kind, amount, delta)
        WHERE x.kind = 'capture' OR x.amount > 0
    )
    SELECT * FROM h
"""  # noqa: S608
# Release open holds chosen by ``{which}`` (aggregated per account: one account row update each).
_RELEASE_TEMPLATE = f"""
    WITH h AS (
        UPDATE stored_value_holds SET status = 'released', updated_at = now()
        WHERE {{which}} AND status = 'open'
        RETURNING id, store_id, account_id, amount_minor, holder_id, holder_kind
    ), a AS (
        UPDATE stored_value_accounts a SET held_minor = a.held_minor - s.amount, updated_at = now()
        FROM (SELECT account_id, sum(amount_minor) AS amount FROM h GROUP BY account_id) s
        WHERE a.id = s.account_id
    ), e AS (
        {_ENTRY_INSERT}
        SELECT gen_random_uuid(), h.store_id, h.account_id, 'release', h.amount_minor, 0, h.id, :reason, :actor, NULL,
               CASE WHEN h.holder_kind = 'checkout' THEN h.holder_id END,
               CASE WHEN h.holder_kind = 'pos' THEN h.holder_id END, now(), now()
        FROM h
    )
    SELECT count(*) FROM h
"""  # noqa: S608
_RELEASE_ONE = _RELEASE_TEMPLATE.format(which="id = :hold_id AND store_id = :store_id")
_RELEASE_HOLDER = _RELEASE_TEMPLATE.format(which="holder_id = :holder_id AND store_id = :store_id")
_RELEASE_EXPIRED = _RELEASE_TEMPLATE.format(
    which="id IN (SELECT id FROM stored_value_holds WHERE status = 'open' AND expires_at < :now LIMIT 500)"
)
_REFUND = f"""
    WITH h AS (
        UPDATE stored_value_holds SET refunded_minor = refunded_minor + :amount::bigint, updated_at = now()
        WHERE id = :hold_id AND store_id = :store_id AND status = 'captured'
          AND refunded_minor + :amount::bigint <= captured_minor
        RETURNING id, account_id, order_id
    ), a AS (
        UPDATE stored_value_accounts a SET balance_minor = a.balance_minor + :amount::bigint, updated_at = now()
        FROM h WHERE a.id = h.account_id AND a.store_id = :store_id
    ), e AS (
        {_ENTRY_INSERT}
        SELECT :entry_id, :store_id, h.account_id, 'refund', :amount::bigint, :amount::bigint, h.id, :reason, :actor,
               COALESCE(:order_id, h.order_id), NULL, :pos_sale_id, now(), now()
        FROM h
        RETURNING {_ENTRY_COLS}
    )
    SELECT * FROM e
"""  # noqa: S608
_BALANCE = """
    SELECT COALESCE(sum(delta_minor), 0)::bigint FROM stored_value_entries WHERE account_id = $2 AND store_id = $1
"""
_SPENDABLE = """
    SELECT (SELECT COALESCE(sum(delta_minor), 0) FROM stored_value_entries WHERE account_id = $2 AND store_id = $1)
         - (SELECT COALESCE(sum(amount_minor), 0) FROM stored_value_holds
            WHERE account_id = $2 AND store_id = $1 AND status = 'open')
"""
_VERIFY = """
    SELECT a.balance_minor, a.held_minor,
           (SELECT COALESCE(sum(delta_minor), 0) FROM stored_value_entries e WHERE e.account_id = a.id
              AND e.store_id = $1)::bigint AS entries_sum,
           (SELECT COALESCE(sum(amount_minor), 0) FROM stored_value_holds h WHERE h.account_id = a.id
              AND h.store_id = $1 AND h.status = 'open')::bigint AS open_holds
    FROM stored_value_accounts a WHERE a.id = $2 AND a.store_id = $1
"""
_ENTRIES = f"""
    SELECT {_ENTRY_COLS} FROM stored_value_entries WHERE account_id = $2 AND store_id = $1
    ORDER BY created_at DESC, id DESC LIMIT $3
"""  # noqa: S608
_HOLDS_OF_HOLDER = (
    f"SELECT {_HOLD_COLS} FROM stored_value_holds WHERE holder_id = $2 AND store_id = $1 ORDER BY created_at"  # noqa: S608
)
_HOLDS_OF_ORDER = (
    f"SELECT {_HOLD_COLS} FROM stored_value_holds WHERE order_id = $2 AND store_id = $1 ORDER BY created_at"  # noqa: S608
)
_HOLD_BY_ID = f"SELECT {_HOLD_COLS} FROM stored_value_holds WHERE id = $2 AND store_id = $1"  # noqa: S608
_SET_STATUS = f"""
    UPDATE stored_value_accounts SET status = $3, updated_at = now() WHERE id = $2 AND store_id = $1
    RETURNING {_ACCOUNT_COLS}
"""  # noqa: S608


def _positive(amount_minor: int, field: str = "amount_minor") -> None:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError("stored-value amounts are integers (minor units or whole points)")
    if amount_minor <= 0:
        raise ValidationFailed("The amount must be more than zero.", fields={field: "Must be more than zero."})


class Ledger:
    """The stored-value ledger of one store, inside the caller's session transaction."""

    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id

    async def _conn(self) -> pg.Connection:
        return await pg.writer(self.session)

    async def _row(self, sql: str, params: dict[str, Any]) -> Any:
        text, args = pg.named(sql, {"store_id": self.store_id, **params})
        return await (await self._conn()).fetchrow(text, *args)

    # ---- accounts --------------------------------------------------------------------------------------

    async def open_account(
        self,
        kind: str,
        unit: str,
        *,
        customer_id: uuid.UUID | None = None,
        code_hash: str | None = None,
        code_key_version: int = 0,
        code_last4: str = "",
        expires_at: datetime | None = None,
        note: str = "",
        status: str = "active",
        source_order_id: uuid.UUID | None = None,
    ) -> Account:
        """A new account with a zero balance (load it with ``post(..., "issue", ...)``). Conflict when the code
        is taken, or when the customer already has an account of this kind (use ``customer_account``)."""
        if kind not in KINDS:
            raise ValidationFailed(f"Unknown stored-value kind {kind!r}.", fields={"kind": "Unknown kind."})
        if (kind == "loyalty_points") != (unit == POINTS):
            raise ValidationFailed("Points accounts count points; money accounts a currency.", fields={"unit": unit})
        row = await self._row(
            _OPEN,
            {
                "id": uuid.uuid4(),
                "kind": kind,
                "unit": unit,
                "customer_id": customer_id,
                "code_hash": code_hash,
                "code_key_version": code_key_version,
                "code_last4": code_last4,
                "status": status,
                "expires_at": expires_at,
                "note": note[:200],
                "source_order_id": source_order_id,
            },
        )
        if row is None:
            raise Conflict("An account with this code or for this customer exists already.")
        return account_of(row)

    @overload
    async def customer_account(
        self, customer_id: uuid.UUID, kind: str, unit: str, *, create: Literal[True] = True
    ) -> Account: ...
    @overload
    async def customer_account(
        self, customer_id: uuid.UUID, kind: str, unit: str, *, create: bool
    ) -> Account | None: ...
    async def customer_account(
        self, customer_id: uuid.UUID, kind: str, unit: str, *, create: bool = True
    ) -> Account | None:
        """The customer's store-credit or points account; made (empty) when missing and ``create``."""
        conn = await self._conn()
        row = await conn.fetchrow(_CUSTOMER_ACCOUNT, self.store_id, customer_id, kind)
        if row is not None or not create:
            return account_of(row) if row is not None else None
        text, args = pg.named(
            _OPEN,
            {
                "id": uuid.uuid4(),
                "store_id": self.store_id,
                "kind": kind,
                "unit": unit,
                "customer_id": customer_id,
                "code_hash": None,
                "code_key_version": 0,
                "code_last4": "",
                "status": "active",
                "expires_at": None,
                "note": "",
                "source_order_id": None,
            },
        )
        row = await conn.fetchrow(text, *args) or await conn.fetchrow(
            _CUSTOMER_ACCOUNT, self.store_id, customer_id, kind
        )
        return account_of(row)

    async def account(self, account_id: uuid.UUID) -> Account:
        row = await (await self._conn()).fetchrow(_ACCOUNT, self.store_id, account_id)
        if row is None:
            raise NotFound("No such stored-value account.")
        return account_of(row)

    async def set_status(self, account_id: uuid.UUID, status: str) -> Account:
        """active | disabled. A disabled account cannot be spent from; its holds still capture or release."""
        if status not in ("active", "disabled"):
            raise ValidationFailed("Unknown status.", fields={"status": "active or disabled"})
        row = await (await self._conn()).fetchrow(_SET_STATUS, self.store_id, account_id, status)
        if row is None:
            raise NotFound("No such stored-value account.")
        return account_of(row)

    # ---- entries -------------------------------------------------------------------------------------

    async def post(
        self,
        account_id: uuid.UUID,
        kind: str,
        amount_minor: int,
        *,
        reason: str,
        actor: str,
        refs: Refs = Refs(),
    ) -> Entry:
        """issue / refund (+amount), expire (-amount), adjust (signed). The balance never goes below what is held:
        InsufficientBalance otherwise. A refund against a spend goes through ``refund`` instead."""
        if kind not in POSTABLE:
            raise ValidationFailed(f"Entries of kind {kind!r} are made by hold/capture/release.")
        if kind == "adjust":
            if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor == 0:
                raise ValidationFailed("An adjustment is a non-zero whole amount.", fields={"amount_minor": "≠ 0"})
            delta = amount_minor
        else:
            _positive(amount_minor)
            delta = -amount_minor if kind == "expire" else amount_minor
        if not reason.strip():
            raise ValidationFailed("Say why.", fields={"reason": "A reason is required."})
        row = await self._row(
            _POST,
            {
                "account_id": account_id,
                "entry_id": uuid.uuid4(),
                "kind": kind,
                "delta": delta,
                "reason": reason[:200],
                "actor": actor[:120],
                "order_id": refs.order_id,
                "attempt_id": refs.attempt_id,
                "pos_sale_id": refs.pos_sale_id,
            },
        )
        if row is None:
            await self.account(account_id)  # NotFound
            raise InsufficientBalance(
                "That would take the balance below what is spent or held.", fields={"amount_minor": "Too much."}
            )
        return entry_of(row)

    # ---- holds ---------------------------------------------------------------------------------------

    async def hold(
        self,
        account_id: uuid.UUID,
        amount_minor: int,
        *,
        holder_id: uuid.UUID,
        holder_kind: str = "manual",
        instrument: str | None = None,
        value_minor: int | None = None,
        currency: str | None = None,
        ttl: timedelta = HOLD_TTL,
        reason: str = "",
        actor: str = "",
        refs: Refs = Refs(),
    ) -> Hold:
        """Set ``amount_minor`` aside for ``holder_id`` (a checkout attempt, a POS sale): spendable drops, the
        balance does not. InsufficientBalance / AccountUnavailable when it cannot."""
        return await self._hold(
            account_id, amount_minor, 0, holder_id, holder_kind, instrument, value_minor, currency, ttl, reason,
            actor, refs,
        )  # fmt: skip

    async def spend(
        self,
        account_id: uuid.UUID,
        amount_minor: int,
        *,
        holder_id: uuid.UUID,
        holder_kind: str = "pos",
        instrument: str | None = None,
        value_minor: int | None = None,
        currency: str | None = None,
        reason: str = "",
        actor: str = "",
        refs: Refs = Refs(),
    ) -> Hold:
        """Hold and capture at once (a POS tender): the returned spend can be refunded."""
        return await self._hold(
            account_id, 0, amount_minor, holder_id, holder_kind, instrument, value_minor, currency, timedelta(0),
            reason, actor, refs,
        )  # fmt: skip

    async def _hold(
        self,
        account_id: uuid.UUID,
        held: int,
        captured: int,
        holder_id: uuid.UUID,
        holder_kind: str,
        instrument: str | None,
        value_minor: int | None,
        currency: str | None,
        ttl: timedelta,
        reason: str,
        actor: str,
        refs: Refs,
    ) -> Hold:
        _positive(held + captured)
        account = await self.account(account_id)
        row = await self._row(
            _HOLD,
            {
                "account_id": account_id,
                "hold_id": uuid.uuid4(),
                "amount": held,
                "captured": captured,
                "instrument": instrument,
                "holder_kind": holder_kind,
                "holder_id": holder_id,
                "value_minor": held + captured if value_minor is None else value_minor,
                "currency": currency or account.unit,
                "status": "open" if held else "captured",
                "expires_at": datetime.now(UTC) + ttl,
                "entry_kind": "hold" if held else "capture",
                "order_id": refs.order_id,
                "attempt_id": refs.attempt_id,
                "pos_sale_id": refs.pos_sale_id,
                "reason": reason[:200],
                "actor": actor[:120],
            },
        )
        if row is None:
            fresh = await self.account(account_id)
            if not fresh.usable():
                raise AccountUnavailable(
                    "This card has expired." if fresh.status == "active" else "This card is disabled."
                )
            raise InsufficientBalance(
                f"Only {fresh.spendable_minor} left to spend.", fields={"amount_minor": "More than the balance."}
            )
        return hold_of(row)

    async def capture(
        self,
        hold_id: uuid.UUID,
        *,
        amount_minor: int | None = None,
        order_id: uuid.UUID | None = None,
        reason: str = "",
        actor: str = "",
        refs: Refs = Refs(),
    ) -> Hold:
        """Take what the hold set aside (``amount_minor`` ≤ held; the rest is released). Conflict when the hold
        is not open (released or captured already)."""
        hold = await self.get_hold(hold_id)
        amount = hold.amount_minor if amount_minor is None else amount_minor
        _positive(amount)
        row = await self._row(
            _CAPTURE,
            {
                "hold_id": hold_id,
                "amount": amount,
                "order_id": order_id or refs.order_id,
                "reason": reason[:200],
                "actor": actor[:120],
                "attempt_id": refs.attempt_id,
                "pos_sale_id": refs.pos_sale_id,
            },
        )
        if row is None:
            if amount > hold.amount_minor:
                raise ValidationFailed("More than was held.", fields={"amount_minor": "More than was held."})
            raise Conflict(f"This hold is {hold.status}, not open.")
        return hold_of(row)

    async def release(self, hold_id: uuid.UUID, *, reason: str = "", actor: str = "") -> bool:
        """Give an open hold back. False (a no-op) when it was not open."""
        text, args = pg.named(
            _RELEASE_ONE, {"hold_id": hold_id, "store_id": self.store_id, "reason": reason[:200], "actor": actor}
        )
        return bool(await (await self._conn()).fetchval(text, *args))

    async def release_holder(self, holder_id: uuid.UUID, *, reason: str = "", actor: str = "") -> int:
        """Give back every open hold of a checkout attempt or POS sale (compensation). Twice is a no-op."""
        return await release_holder(await self._conn(), self.store_id, holder_id, reason=reason, actor=actor)

    async def refund(
        self,
        hold_id: uuid.UUID,
        amount_minor: int,
        *,
        reason: str,
        actor: str = "",
        refs: Refs = Refs(),
    ) -> Entry:
        """Put back part of a captured spend (account units). Never more than was captured, over all refunds."""
        _positive(amount_minor)
        row = await self._row(
            _REFUND,
            {
                "hold_id": hold_id,
                "amount": amount_minor,
                "entry_id": uuid.uuid4(),
                "reason": reason[:200],
                "actor": actor[:120],
                "order_id": refs.order_id,
                "pos_sale_id": refs.pos_sale_id,
            },
        )
        if row is None:
            hold = await self.get_hold(hold_id)
            left = hold.captured_minor - hold.refunded_minor
            raise ValidationFailed(
                f"Only {left} of this spend can still be refunded.", fields={"amount_minor": f"At most {left}."}
            )
        return entry_of(row)

    # ---- reading -------------------------------------------------------------------------------------

    async def balance(self, account_id: uuid.UUID) -> int:
        """The sum of the account's entries (the ledger's truth)."""
        value: int = await (await self._conn()).fetchval(_BALANCE, self.store_id, account_id)
        return int(value)

    async def spendable(self, account_id: uuid.UUID) -> int:
        """Balance - open holds."""
        return int(await (await self._conn()).fetchval(_SPENDABLE, self.store_id, account_id))

    async def verify(self, account_id: uuid.UUID) -> dict[str, int]:
        """The running totals against the entries and open holds: ``drift`` is 0 when they agree."""
        row = await (await self._conn()).fetchrow(_VERIFY, self.store_id, account_id)
        if row is None:
            raise NotFound("No such stored-value account.")
        drift = abs(row["balance_minor"] - row["entries_sum"]) + abs(row["held_minor"] - row["open_holds"])
        return {**dict(row), "drift": drift}

    async def entries(self, account_id: uuid.UUID, *, limit: int = 200) -> list[Entry]:
        rows = await (await self._conn()).fetch(_ENTRIES, self.store_id, account_id, limit)
        return [entry_of(r) for r in rows]

    async def get_hold(self, hold_id: uuid.UUID) -> Hold:
        row = await (await self._conn()).fetchrow(_HOLD_BY_ID, self.store_id, hold_id)
        if row is None:
            raise NotFound("No such hold.")
        return hold_of(row)

    async def holds_of_holder(self, holder_id: uuid.UUID) -> list[Hold]:
        rows = await (await self._conn()).fetch(_HOLDS_OF_HOLDER, self.store_id, holder_id)
        return [hold_of(r) for r in rows]

    async def holds_of_order(self, order_id: uuid.UUID) -> list[Hold]:
        rows = await (await self._conn()).fetch(_HOLDS_OF_ORDER, self.store_id, order_id)
        return [hold_of(r) for r in rows]


async def release_holder(
    conn: pg.Connection, store_id: uuid.UUID, holder_id: uuid.UUID, *, reason: str = "", actor: str = ""
) -> int:
    """Every open hold of ``holder_id`` goes back (one statement; for raw-SQL callers such as the saga)."""
    text, args = pg.named(
        _RELEASE_HOLDER,
        {"holder_id": holder_id, "store_id": store_id, "reason": reason[:200] or "released", "actor": actor[:120]},
    )
    return int(await conn.fetchval(text, *args))


async def expire_holds(conn: pg.Connection, *, now: datetime | None = None) -> int:
    """Every store's open holds past their expiry go back (the hold-expiry job; up to 500 a call)."""
    text, args = pg.named(
        _RELEASE_EXPIRED, {"now": now or datetime.now(UTC), "reason": "hold expired", "actor": "system"}
    )
    return int(await conn.fetchval(text, *args))
