"""Instruments: how a checkout or a POS sale pays with stored value (issue 15).

An instrument turns what the shopper or cashier asked for (a ``TenderRequest``: "gift card XXXX-…", "my store
credit", "500 points") into a ``Tender``: which account to hold, how much in the account's unit, and the money it
pays. The saga and the POS hold every tender in the statement that claims the attempt / records the sale
(``app/stored_value/fragments.py``), so an instrument only reads here; the hold re-checks the balance under the
row lock.

Built in: ``gift_card`` and ``store_credit`` (this module). Loyalty registers ``loyalty`` from its own module
(``app/stored_value/loyalty/instrument.py``: points converted to money at the program's rate), imported by
``registry()`` when present.

    class MyInstrument:
        name = "my_instrument"
        async def resolve(self, conn, request, ctx) -> Tender: ...
    register(MyInstrument())
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from app.core import pg
from app.core.errors import ValidationFailed
from app.stored_value import codes
from app.stored_value.ledger import Account, AccountUnavailable, InsufficientBalance, account_of

__all__ = [
    "GiftCardInstrument",
    "Instrument",
    "SpendContext",
    "StoreCreditInstrument",
    "Tender",
    "TenderRequest",
    "find_gift_card",
    "register",
    "registry",
    "resolve_tenders",
]


@dataclass(frozen=True)
class TenderRequest:
    """What the payer asked for. ``amount_minor``: the money to pay with it (None: as much as it covers of what
    is left to pay); ``points``: for points instruments, the points to redeem (None: derive from the amount)."""

    instrument: str
    code: str = ""
    amount_minor: int | None = None
    points: int | None = None


@dataclass(frozen=True)
class SpendContext:
    store_id: uuid.UUID
    currency: str
    due_minor: int  # what is still to pay when this instrument's turn comes
    customer_id: uuid.UUID | None = None
    channel: str = "web"  # web | pos


@dataclass(frozen=True)
class Tender:
    """A resolved instrument: hold ``amount_minor`` (account units) on ``account_id``; it pays ``value_minor``."""

    instrument: str
    account_id: uuid.UUID
    amount_minor: int
    value_minor: int
    label: str  # "Gift card •••• 7Q2K", "Store credit", "Points"

    def as_param(self) -> dict[str, object]:
        return {
            "account_id": str(self.account_id),
            "amount": self.amount_minor,
            "value": self.value_minor,
            "instrument": self.instrument,
        }


@runtime_checkable
class Instrument(Protocol):
    name: str

    async def resolve(self, conn: pg.Connection, request: TenderRequest, ctx: SpendContext) -> Tender:
        """The tender for ``request``, paying at most ``ctx.due_minor``. Raises ValidationFailed (field
        ``stored_value``), AccountUnavailable or InsufficientBalance with a sentence for the payer."""
        ...


_REGISTRY: dict[str, Instrument] = {}
_OPTIONAL = ("app.stored_value.loyalty.instrument",)  # modules that register an instrument when imported
_loaded = False


def register(instrument: Instrument) -> Instrument:
    _REGISTRY[instrument.name] = instrument
    return instrument


def registry() -> dict[str, Instrument]:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _OPTIONAL:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
    return _REGISTRY


def _bad(message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={"stored_value": message})


def _take(request: TenderRequest, account: Account, ctx: SpendContext, label: str) -> Tender:
    """Money accounts pay 1:1 in their own currency: as much as asked, covered and due."""
    if account.unit != ctx.currency:
        raise _bad(f"This {label.lower()} is in {account.unit}; the order is in {ctx.currency}.")
    if not account.usable(datetime.now(UTC)):
        raise AccountUnavailable(
            f"This {label.lower()} has expired." if account.status == "active" else f"This {label.lower()} is disabled."
        )
    wanted = ctx.due_minor if request.amount_minor is None else min(request.amount_minor, ctx.due_minor)
    if request.amount_minor is not None and request.amount_minor <= 0:
        raise _bad("The amount to pay with it must be more than zero.")
    amount = min(wanted, account.spendable_minor)
    if request.amount_minor is not None and amount < wanted:
        raise InsufficientBalance(
            f"Only {account.spendable_minor} is left on this {label.lower()}.", fields={"stored_value": "Too much."}
        )
    if amount <= 0:
        raise InsufficientBalance(f"This {label.lower()} has no balance left.", fields={"stored_value": "Empty."})
    return Tender(request.instrument, account.id, amount, amount, label)


_BY_CODE = """
    SELECT id, kind, unit, customer_id, code_last4, status, expires_at, balance_minor, held_minor, issued_minor, note,
           created_at
    FROM stored_value_accounts WHERE store_id = $1 AND code_hash = ANY($2::text[]) AND kind = 'gift_card'
"""
_OF_CUSTOMER = """
    SELECT id, kind, unit, customer_id, code_last4, status, expires_at, balance_minor, held_minor, issued_minor, note,
           created_at
    FROM stored_value_accounts WHERE store_id = $1 AND customer_id = $2 AND kind = $3
"""


async def find_gift_card(conn: pg.Connection, store_id: uuid.UUID, code: str) -> Account | None:
    """The gift card with this code (one indexed statement), or None; no statement for a malformed code."""
    if not codes.normalise(code):
        return None
    row = await conn.fetchrow(_BY_CODE, store_id, codes.candidate_hashes(store_id, code))
    return account_of(row) if row is not None else None


class GiftCardInstrument:
    name = "gift_card"

    async def resolve(self, conn: pg.Connection, request: TenderRequest, ctx: SpendContext) -> Tender:
        account = await find_gift_card(conn, ctx.store_id, request.code)
        if account is None:
            raise _bad("We could not find a gift card with this code. Check it and try again.")
        return _take(request, account, ctx, f"Gift card •••• {account.code_last4}")


class StoreCreditInstrument:
    name = "store_credit"

    async def resolve(self, conn: pg.Connection, request: TenderRequest, ctx: SpendContext) -> Tender:
        if ctx.customer_id is None:
            raise _bad("Sign in to use your store credit.")
        row = await conn.fetchrow(_OF_CUSTOMER, ctx.store_id, ctx.customer_id, "store_credit")
        if row is None:
            raise InsufficientBalance("You have no store credit.", fields={"stored_value": "Empty."})
        return _take(request, account_of(row), ctx, "Store credit")


register(GiftCardInstrument())
register(StoreCreditInstrument())


async def resolve_tenders(conn: pg.Connection, requests: Sequence[TenderRequest], ctx: SpendContext) -> list[Tender]:
    """Each request in turn, each paying from what the ones before left due (one statement each). The same
    account twice is refused (one hold per account per holder)."""
    tenders: list[Tender] = []
    due = ctx.due_minor
    known = registry()
    for request in requests:
        instrument = known.get(request.instrument)
        if instrument is None:
            raise _bad(f"Unknown payment instrument {request.instrument!r}.")
        if due <= 0:
            break
        tender = await instrument.resolve(conn, request, SpendContext(ctx.store_id, ctx.currency, due,
                                                                      ctx.customer_id, ctx.channel))  # fmt: skip
        if any(t.account_id == tender.account_id for t in tenders):
            raise _bad("The same card or balance was given twice.")
        if tender.value_minor <= 0 or tender.value_minor > due:
            raise _bad("That instrument cannot pay this amount.")
        tenders.append(tender)
        due -= tender.value_minor
    return tenders
