"""Gift cards and store credit: what staff do with them (issue, adjust, disable), every change audited. Both are
accounts on the one ledger (``ledger.py``); spending goes through the instruments (checkout, POS)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import pg
from app.core.audit import actor_label, record
from app.core.encryption import current_keyring
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.rbac import Principal
from app.core.tenancy import bind_store
from app.customers.models import Customer
from app.stored_value import codes
from app.stored_value.instruments import find_gift_card
from app.stored_value.ledger import Account, Entry, Ledger, Refs, account_of
from app.stored_value.models import StoredValueAccount

MAX_BULK = 1000
MAX_AMOUNT_MINOR = 10_000_000  # 100 000.00: a typo guard, not a policy


@dataclass(frozen=True)
class IssuedCard:
    account: Account
    code: str  # shown once, never stored


@dataclass(frozen=True)
class Replacement:
    """A gift card replaced: the new card (its code shown once) and the old one, disabled and emptied."""

    card: IssuedCard
    replaced: Account
    moved_minor: int


class CannotReplace(Conflict):
    code = "gift_card_not_replaceable"


# The old card, locked: a second replace of it (a double click, two managers) waits here, then finds it disabled.
_LOCK_CARD = """
    SELECT status, balance_minor, held_minor, expires_at, reveal_ciphertext IS NOT NULL AS unrevealed
    FROM stored_value_accounts WHERE store_id = $1 AND id = $2 AND kind = 'gift_card'
    FOR UPDATE
"""
# A card bought on the storefront whose code its buyer has not seen yet: replaced, that code must not be shown.
_FORGET_REVEAL = "UPDATE stored_value_accounts SET reveal_ciphertext = NULL WHERE store_id = $1 AND id = $2"


def _amount(amount_minor: int) -> int:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ValidationFailed("Enter an amount above zero.", fields={"amount": "Enter an amount above zero."})
    if amount_minor > MAX_AMOUNT_MINOR:
        raise ValidationFailed("That amount is too large.", fields={"amount": "At most 100000."})
    return amount_minor


def _reason(reason: str) -> str:
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationFailed("Say why.", fields={"reason": "A reason is required."})
    return reason[:200]


class GiftCardService:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        self.ledger = Ledger(session, store_id)
        bind_store(session, store_id)

    async def issue(
        self,
        amount_minor: int,
        currency: str,
        *,
        principal: Principal | None,
        count: int = 1,
        expires_at: datetime | None = None,
        note: str = "",
        source_order_id: uuid.UUID | None = None,
    ) -> list[IssuedCard]:
        """``count`` new cards of ``amount_minor`` each. The codes are returned once and never stored."""
        _amount(amount_minor)
        if not 1 <= count <= MAX_BULK:
            raise ValidationFailed(f"Issue 1 to {MAX_BULK} cards at once.", fields={"count": f"1 to {MAX_BULK}."})
        actor = actor_label(principal)
        issued = []
        for _ in range(count):
            code = codes.new_code()
            account = await self.ledger.open_account(
                "gift_card",
                currency,
                code_hash=codes.code_hash(self.store_id, code),
                code_key_version=current_keyring().newest_version,
                code_last4=codes.last4(code),
                expires_at=expires_at,
                note=note,
                source_order_id=source_order_id,
            )
            await self.ledger.post(account.id, "issue", amount_minor, reason=note or "issued", actor=actor)
            issued.append(IssuedCard(await self.ledger.account(account.id), code))
        record(
            self.session,
            principal,
            "gift_card.issued",
            target_type="gift_card",
            target_id=issued[0].account.id if count == 1 else f"{count} cards",
            details={
                "count": count,
                "amount_minor": amount_minor,
                "currency": currency,
                "last4": issued[0].account.code_last4,
            },
            store_id=self.store_id,
        )
        return issued

    async def lookup(self, code: str) -> Account | None:
        return await find_gift_card(await pg.reader(self.session), self.store_id, code)

    async def get(self, account_id: uuid.UUID) -> Account:
        account = await self.ledger.account(account_id)
        if account.kind != "gift_card":
            raise NotFound("No such gift card.")
        return account

    async def search(self, query: str = "", *, limit: int = 100) -> list[Account]:
        """Newest first; ``query`` matches the last 4 symbols or the note, or a customer's e-mail."""
        stmt = select(StoredValueAccount).where(StoredValueAccount.kind == "gift_card")
        query = query.strip()
        if query:
            like = f"%{query.lower()}%"
            stmt = stmt.outerjoin(Customer, Customer.id == StoredValueAccount.customer_id).where(
                or_(
                    StoredValueAccount.code_last4 == query.upper()[-4:],
                    func.lower(StoredValueAccount.note).like(like),
                    func.lower(Customer.email).like(like),
                )
            )
        rows = await self.session.scalars(stmt.order_by(StoredValueAccount.created_at.desc()).limit(limit))
        return [account_of(r.__dict__) for r in rows]

    async def set_status(self, account_id: uuid.UUID, status: str, *, principal: Principal | None) -> Account:
        await self.get(account_id)
        account = await self.ledger.set_status(account_id, status)
        action = "gift_card.disabled" if status == "disabled" else "gift_card.enabled"
        record(self.session, principal, action, target_type="gift_card", target_id=account_id, store_id=self.store_id)
        return account

    async def replace(self, account_id: uuid.UUID, reason: str, *, principal: Principal | None) -> Replacement:
        """A new card for an old one whose code was lost (a till sale's answer that never reached the tablet, a
        lost card): the old card is disabled and its whole balance moves to a new card with a new code (shown
        once), as one transfer on the ledger — ``adjust`` out of the old card, ``issue`` into the new one — in
        this transaction, audited. The old card's row is locked first, so a second replace of it (a double click)
        waits and is then refused: the balance moves once. Refused (409, nothing written) for a disabled, expired
        or empty card, or one a checkout holds right now."""
        why = _reason(reason)
        row = await (await pg.writer(self.session)).fetchrow(_LOCK_CARD, self.store_id, account_id)
        if row is None:
            raise NotFound("No such gift card.")
        old = await self.ledger.account(account_id)
        if row["status"] != "active":
            raise CannotReplace(
                "This gift card is disabled, so it cannot be replaced (a card replaced already is disabled: its "
                "ledger names the card that replaced it)."
            )
        if not old.usable():
            raise CannotReplace("This gift card has expired: its balance cannot move to a new card.")
        if row["held_minor"]:
            raise CannotReplace("A checkout is paying with this card right now; replace it once that has finished.")
        amount = int(row["balance_minor"])
        if amount <= 0:
            raise CannotReplace("This gift card is empty: there is no balance to move to a new card.")
        actor = actor_label(principal)
        code = codes.new_code()
        new4 = codes.last4(code)
        await self.ledger.set_status(account_id, "disabled")
        if row["unrevealed"]:
            await (await pg.writer(self.session)).execute(_FORGET_REVEAL, self.store_id, account_id)
        account = await self.ledger.open_account(
            "gift_card",
            old.unit,
            customer_id=old.customer_id,
            code_hash=codes.code_hash(self.store_id, code),
            code_key_version=current_keyring().newest_version,
            code_last4=new4,
            expires_at=old.expires_at,
            note=f"Replaces gift card •••• {old.code_last4}",
        )
        await self.ledger.post(
            account_id, "adjust", -amount, reason=f"Replaced by gift card •••• {new4}: {why}"[:200], actor=actor
        )
        await self.ledger.post(
            account.id, "issue", amount, reason=f"Moved from gift card •••• {old.code_last4}: {why}"[:200],
            actor=actor,
        )  # fmt: skip
        record(
            self.session,
            principal,
            "gift_card.replaced",
            target_type="gift_card",
            target_id=account_id,
            details={"new_card_id": str(account.id), "old_last4": old.code_last4, "new_last4": new4,
                     "amount_minor": amount, "currency": old.unit, "reason": why},
            store_id=self.store_id,
        )  # fmt: skip
        return Replacement(
            IssuedCard(await self.ledger.account(account.id), code), await self.ledger.account(account_id), amount
        )

    async def adjust(
        self, account_id: uuid.UUID, amount_minor: int, reason: str, *, principal: Principal | None
    ) -> Entry:
        """Add (positive) or take off (negative) with a reason; never below what is held."""
        await self.get(account_id)
        if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor == 0:
            raise ValidationFailed("Enter a non-zero amount.", fields={"amount": "Enter a non-zero amount."})
        entry = await self.ledger.post(
            account_id, "adjust", amount_minor, reason=_reason(reason), actor=actor_label(principal)
        )
        record(
            self.session,
            principal,
            "gift_card.adjusted",
            target_type="gift_card",
            target_id=account_id,
            details={"amount_minor": amount_minor, "reason": entry.reason},
            store_id=self.store_id,
        )
        return entry


class StoreCreditService:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        self.ledger = Ledger(session, store_id)
        bind_store(session, store_id)

    async def customer_by_email(self, email: str) -> uuid.UUID:
        """The store's customer with this e-mail (any case); ValidationFailed on ``email`` when none."""
        email = email.strip().lower()
        found: uuid.UUID | None = None
        if email:
            found = await self.session.scalar(select(Customer.id).where(func.lower(Customer.email) == email))
        if found is None:
            raise ValidationFailed(
                "No customer with this e-mail.", fields={"email": "No customer with this e-mail in this store."}
            )
        return found

    async def of_customer(self, customer_id: uuid.UUID) -> Account | None:
        return await self.ledger.customer_account(customer_id, "store_credit", "", create=False)

    async def issue(
        self,
        customer_id: uuid.UUID,
        amount_minor: int,
        currency: str,
        reason: str,
        *,
        principal: Principal | None,
        refs: Refs = Refs(),
    ) -> Entry:
        """Credit a customer (goodwill, a return, a refund's destination), with a reason."""
        _amount(amount_minor)
        if await self.session.get(Customer, customer_id) is None:
            raise ValidationFailed("No such customer.", fields={"customer": "No such customer."})
        account = await self.ledger.customer_account(customer_id, "store_credit", currency)
        entry = await self.ledger.post(
            account.id, "issue", amount_minor, reason=_reason(reason), actor=actor_label(principal), refs=refs
        )
        record(
            self.session,
            principal,
            "store_credit.issued",
            target_type="customer",
            target_id=customer_id,
            details={"amount_minor": amount_minor, "currency": currency, "reason": entry.reason},
            store_id=self.store_id,
        )
        return entry

    async def accounts(self, *, limit: int = 200) -> list[tuple[Account, str]]:
        """Every store-credit account with its customer's e-mail, largest balance first."""
        rows = await self.session.execute(
            select(StoredValueAccount, Customer.email)
            .join(Customer, Customer.id == StoredValueAccount.customer_id)
            .where(StoredValueAccount.kind == "store_credit")
            .order_by(StoredValueAccount.balance_minor.desc(), StoredValueAccount.created_at.desc())
            .limit(limit)
        )
        return [(account_of(a.__dict__), email) for a, email in rows.all()]


__all__ = ["CannotReplace", "GiftCardService", "IssuedCard", "Replacement", "StoreCreditService"]
