"""Stored value on one ledger (issue 15): gift cards, store credit and loyalty points.

Three tables:

- ``stored_value_accounts``: one per gift card, per customer's store credit, per customer's loyalty points.
  ``unit`` is an ISO-4217 currency for money accounts and ``"PTS"`` for points (whole points, no currency).
  ``balance_minor`` and ``held_minor`` are the running totals the ledger keeps in the same statement as each
  entry, so a spend locks one row and checks ``balance_minor - held_minor`` (spendable) as it writes
  (Invariant 3). The truth is the entries: ``balance_minor`` always equals ``SUM(delta_minor)`` of the account's
  entries (``Ledger.verify`` and the property tests check it).
- ``stored_value_entries``: append-only. ``kind`` is issue | hold | capture | release | refund | expire | adjust;
  ``amount_minor`` the size (≥ 0), ``delta_minor`` the signed effect on the balance (hold/release: 0; issue,
  refund: +; capture, expire: -; adjust: either), with reason, actor and the order / checkout attempt / POS sale
  it is about.
- ``stored_value_holds``: each spend. Opened by a hold (``open``: counted in ``held_minor``), then ``captured``
  (the balance goes down) or ``released``. A POS spend is captured at once. Refunds are counted against what
  was captured (``refunded_minor <= captured_minor``). ``value_minor`` is the money the spend pays in the
  order's ``currency`` (for points: converted at the program's rate; for money accounts: the amount).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import UUIDv7AuditBase
from app.core.tenancy import TenantMixin

KINDS = ("gift_card", "store_credit", "loyalty_points")
POINTS = "PTS"  # the unit of loyalty accounts: whole points, not money
ACCOUNT_STATUSES = ("active", "disabled")
ENTRY_KINDS = ("issue", "hold", "capture", "release", "refund", "expire", "adjust")
HOLD_STATUSES = ("open", "captured", "released")


class StoredValueAccount(TenantMixin, UUIDv7AuditBase):
    """A balance someone can spend: a gift card (found by its code), or a customer's store credit or points."""

    __tablename__ = "stored_value_accounts"
    __store_index__ = False
    __table_args__ = (
        Index(
            "uq_stored_value_accounts_code",
            "store_id",
            "code_hash",
            unique=True,
            postgresql_where=text("code_hash IS NOT NULL"),
        ),
        # One store-credit and one points account per customer.
        Index(
            "uq_stored_value_accounts_customer_kind",
            "store_id",
            "customer_id",
            "kind",
            unique=True,
            postgresql_where=text("customer_id IS NOT NULL AND kind <> 'gift_card'"),
        ),
        Index("ix_stored_value_accounts_store_kind", "store_id", "kind", "created_at"),
        Index("ix_stored_value_accounts_last4", "store_id", "code_last4"),
        Index(
            "ix_stored_value_accounts_source_order",
            "source_order_id",
            postgresql_where=text("source_order_id IS NOT NULL"),
        ),
        CheckConstraint("balance_minor >= 0", name="balance_not_negative"),
        CheckConstraint("held_minor >= 0 AND held_minor <= balance_minor", name="held_within_balance"),
        CheckConstraint("kind IN ('gift_card', 'store_credit', 'loyalty_points')", name="kind_known"),
    )

    kind: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str] = mapped_column(String(3))  # ISO-4217, or "PTS"
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), default=None)
    # Gift cards: HMAC-SHA256 (hex) of the normalised code under a server key of ``code_key_version``; the code
    # itself is never stored. ``code_last4`` is for display and search.
    code_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    code_key_version: Mapped[int] = mapped_column(Integer, default=0)
    code_last4: Mapped[str] = mapped_column(String(4), default="")
    status: Mapped[str] = mapped_column(String(10), default="active")
    expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    balance_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    held_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    issued_minor: Mapped[int] = mapped_column(BigInteger, default=0)  # what was first loaded, for display
    note: Mapped[str] = mapped_column(String(200), default="")
    # A gift card sold on the storefront or the POS: the order / sale that bought it (activated on payment).
    source_order_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # A card bought in an order: its code encrypted under the keyring (bound to this account) until the buyer's
    # order page shows it once; then None. Never the code in clear.
    reveal_ciphertext: Mapped[str | None] = mapped_column(Text, default=None)


class StoredValueEntry(TenantMixin, UUIDv7AuditBase):
    """One append-only ledger line. Never updated, never deleted."""

    __tablename__ = "stored_value_entries"
    __store_index__ = False
    __table_args__ = (
        Index("ix_stored_value_entries_account", "account_id", "created_at"),
        Index("ix_stored_value_entries_order", "order_id", postgresql_where=text("order_id IS NOT NULL")),
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        CheckConstraint(
            "kind IN ('issue', 'hold', 'capture', 'release', 'refund', 'expire', 'adjust')", name="kind_known"
        ),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stored_value_accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    delta_minor: Mapped[int] = mapped_column(BigInteger)  # the signed effect on the balance
    hold_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    reason: Mapped[str] = mapped_column(String(200), default="")
    actor: Mapped[str] = mapped_column(String(120), default="")
    order_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    attempt_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    pos_sale_id: Mapped[uuid.UUID | None] = mapped_column(default=None)


class StoredValueHold(TenantMixin, UUIDv7AuditBase):
    """A spend: held while a checkout pays, then captured with the order or released; a POS spend is captured at
    once. ``holder_id`` is the checkout attempt or the POS sale."""

    __tablename__ = "stored_value_holds"
    __store_index__ = False
    __table_args__ = (
        Index("ix_stored_value_holds_holder", "holder_id"),
        Index("ix_stored_value_holds_order", "order_id", postgresql_where=text("order_id IS NOT NULL")),
        Index("ix_stored_value_holds_open", "expires_at", postgresql_where=text("status = 'open'")),
        Index("ix_stored_value_holds_account", "account_id", "created_at"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint(
            "captured_minor >= 0 AND captured_minor <= amount_minor AND refunded_minor >= 0 "
            "AND refunded_minor <= captured_minor",
            name="refund_within_capture",
        ),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stored_value_accounts.id", ondelete="CASCADE"))
    instrument: Mapped[str] = mapped_column(String(20))  # gift_card | store_credit | loyalty | ...
    holder_kind: Mapped[str] = mapped_column(String(10))  # checkout | pos | manual
    holder_id: Mapped[uuid.UUID] = mapped_column()
    amount_minor: Mapped[int] = mapped_column(BigInteger)  # in the account's unit
    value_minor: Mapped[int] = mapped_column(BigInteger)  # the money it pays, in ``currency``
    currency: Mapped[str] = mapped_column(String(3))
    captured_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)  # account units given back
    status: Mapped[str] = mapped_column(String(10), default="open")
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    order_id: Mapped[uuid.UUID | None] = mapped_column(default=None)


__all__ = [
    "ACCOUNT_STATUSES",
    "ENTRY_KINDS",
    "HOLD_STATUSES",
    "KINDS",
    "POINTS",
    "StoredValueAccount",
    "StoredValueEntry",
    "StoredValueHold",
]
