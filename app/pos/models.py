"""POS tables. A sale is claimed by (store, register, client_sale_id) in the same transaction as its order, so a
sale made offline reaches the server exactly once (invariant 11)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import UUIDv7AuditBase
from app.core.tenancy import TenantMixin


class Register(TenantMixin, UUIDv7AuditBase):
    """A till: a tablet (or several over time) selling at one counter."""

    __tablename__ = "registers"
    __store_index__ = False
    __table_args__ = (UniqueConstraint("store_id", "name"),)

    name: Mapped[str] = mapped_column(String(60))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Receipts (issue 17): the register's network printer (ESC/POS over TCP 9100), "" when none.
    printer_host: Mapped[str] = mapped_column(String(120), default="")
    printer_width_mm: Mapped[int] = mapped_column(Integer, default=80)


class Shift(TenantMixin, UUIDv7AuditBase):
    """One cashier session on a register, from the counted float to the counted close. One open per register."""

    __tablename__ = "shifts"
    __store_index__ = False
    __table_args__ = (
        Index(
            "uq_shifts_one_open_per_register", "register_id", unique=True, postgresql_where=text("closed_at IS NULL")
        ),
        Index("ix_shifts_store_opened", "store_id", "opened_at"),
        CheckConstraint("opening_float_minor >= 0", name="float_not_negative"),
    )

    register_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registers.id", ondelete="RESTRICT"))
    opened_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    opened_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    opening_float_minor: Mapped[int] = mapped_column(Integer)
    closed_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    closed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    counted_cash_minor: Mapped[int | None] = mapped_column(Integer, default=None)
    expected_cash_minor: Mapped[int | None] = mapped_column(Integer, default=None)
    over_short_minor: Mapped[int | None] = mapped_column(Integer, default=None)
    close_note: Mapped[str] = mapped_column(String(500), default="")
    # The key that encrypts and checksums this shift's offline queue on the tablet (AES-GCM / HMAC-SHA256),
    # issued at open and kept encrypted at rest (app/core/encryption.py); the tablet holds it in memory only.
    offline_key_ciphertext: Mapped[str] = mapped_column(Text)


class CashMovement(TenantMixin, UUIDv7AuditBase):
    """Cash put into or taken out of a shift's drawer (append-only): the float, pay-ins and pay-outs with a
    reason. Cash taken for sales is in ``pos_tenders``; expected cash = float + in - out + cash sales - cash refunds."""

    __tablename__ = "cash_movements"
    __store_index__ = False
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)

    shift_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shifts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # in | out
    amount_minor: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class PosSale(TenantMixin, UUIDv7AuditBase):
    """The claim on one sale named by the tablet, and what became of it. Made in the order's transaction."""

    __tablename__ = "pos_sales"
    __store_index__ = False
    __table_args__ = (
        UniqueConstraint("store_id", "register_id", "client_sale_id"),
        Index("ix_pos_sales_shift", "shift_id"),
        Index("ix_pos_sales_review", "store_id", "created_at", postgresql_where=text("review_status = 'open'")),
        # The offline limits at sync: a register's sales by the tablet's clock (app/pos/sync.py).
        Index("ix_pos_sales_register_sold", "store_id", "register_id", "sold_at"),
    )

    register_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registers.id", ondelete="RESTRICT"))
    shift_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shifts.id", ondelete="RESTRICT"))
    client_sale_id: Mapped[uuid.UUID] = mapped_column()
    sequence: Mapped[int] = mapped_column(Integer)  # the register's own numbering, for gaps at sync
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"), unique=True)
    cashier_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    sold_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))  # the tablet's clock
    offline: Mapped[bool] = mapped_column(Boolean, default=False)  # made offline, arrived by sync
    request_hash: Mapped[str] = mapped_column(String(64))  # a repeat is told apart from a reuse of the id
    # Conflicts found at sync (price changed, stock short, stored value overspent): the sale stands, a manager
    # reviews it. [] and review_status "none" when there were none.
    conflicts: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    review_status: Mapped[str] = mapped_column(String(10), default="none")  # none | open | resolved
    reviewed_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    review_note: Mapped[str] = mapped_column(String(500), default="")
    # The manager whose PIN approved a discount over the cashier's limit (None: none was needed).
    discount_approved_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )


class PosRefund(TenantMixin, UUIDv7AuditBase):
    """Money (and maybe goods) given back on a past POS sale, at a register in a shift. ``pending`` while a card
    refund is at the provider (its amount already counts against what is left to refund), then ``done`` with
    its negative tenders and restocked lines, or ``failed`` (nothing moved)."""

    __tablename__ = "pos_refunds"
    __store_index__ = False
    __table_args__ = (
        Index("ix_pos_refunds_order", "store_id", "order_id"),
        Index("ix_pos_refunds_shift", "shift_id"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    register_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registers.id", ondelete="RESTRICT"))
    shift_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shifts.id", ondelete="RESTRICT"))
    amount_minor: Mapped[int] = mapped_column(Integer)
    to: Mapped[str] = mapped_column(String(10))  # original | cash
    # [{position, variant_id, quantity, amount_minor}]: the order lines that came back (restocked once done).
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    # How it was given back: [{kind, amount_minor}] (card: through the payment provider; cash: from the drawer).
    parts: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | done | failed
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    message: Mapped[str] = mapped_column(String(300), default="")  # why it failed


class PosTender(TenantMixin, UUIDv7AuditBase):
    """One way a POS sale (or a POS refund, negative) was paid: cash with change, a card through a reader, and
    later gift card / store credit / points (issue 15)."""

    __tablename__ = "pos_tenders"
    __store_index__ = False
    __table_args__ = (Index("ix_pos_tenders_shift", "shift_id", "kind"),)

    sale_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("pos_sales.id", ondelete="CASCADE"), index=True)
    refund_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("pos_refunds.id", ondelete="CASCADE"), default=None, index=True
    )
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"), index=True)
    shift_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shifts.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(20))  # cash | card | gift_card | store_credit | loyalty
    amount_minor: Mapped[int] = mapped_column(Integer)  # what it paid (negative: given back by a refund)
    tendered_minor: Mapped[int] = mapped_column(Integer, default=0)  # cash handed over
    change_minor: Mapped[int] = mapped_column(Integer, default=0)  # cash handed back
    reader_payment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("reader_payments.id", ondelete="RESTRICT"), default=None, unique=True
    )
    status: Mapped[str] = mapped_column(String(12), default="paid")  # paid | voided | refunded


class CardReader(TenantMixin, UUIDv7AuditBase):
    """A card terminal paired with a register: the sandbox's simulated reader, or a Stripe Terminal reader."""

    __tablename__ = "card_readers"
    __store_index__ = False
    __table_args__ = (UniqueConstraint("store_id", "provider", "provider_reader_id"),)

    provider: Mapped[str] = mapped_column(String(20))  # sandbox | stripe
    provider_reader_id: Mapped[str] = mapped_column(String(80))
    label: Mapped[str] = mapped_column(String(80))
    register_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("registers.id", ondelete="SET NULL"), default=None, unique=True
    )
    status: Mapped[str] = mapped_column(String(20), default="online")  # online | offline | retired


class ReaderPayment(TenantMixin, UUIDv7AuditBase):
    """One card presented at a reader for a POS sale: waiting → approved | declined | timed_out | canceled, and
    an approved one may be voided (the money given back) before its ticket closes: approved → voiding → voided
    (``voiding`` while the provider gives it back; app/pos/readers/services.py). One waiting per reader."""

    __tablename__ = "reader_payments"
    __store_index__ = False
    __table_args__ = (
        UniqueConstraint("store_id", "idempotency_key"),
        Index("ix_reader_payments_reader_status", "reader_id", "status"),
        Index(
            "uq_reader_payments_one_waiting_per_reader",
            "reader_id",
            unique=True,
            postgresql_where=text("status = 'waiting'"),
        ),
    )

    reader_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("card_readers.id", ondelete="RESTRICT"))
    register_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registers.id", ondelete="RESTRICT"))
    client_sale_id: Mapped[uuid.UUID] = mapped_column()
    idempotency_key: Mapped[str] = mapped_column(String(80))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="waiting")
    provider_ref: Mapped[str] = mapped_column(String(120), default="")  # the provider's payment (pi_…)
    card_brand: Mapped[str] = mapped_column(String(20), default="")
    card_last4: Mapped[str] = mapped_column(String(4), default="")
    message: Mapped[str] = mapped_column(String(200), default="")
    payment_intent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("payment_intents.id", ondelete="RESTRICT"), default=None
    )
    # A payment still waiting at this moment times out (checked when it is read or the reader is asked again).
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class PosVoid(TenantMixin, UUIDv7AuditBase):
    """A ticket or a line the cashier voided before it was sold, with the reason (append-only). Nothing was sold,
    so no order, stock or money moved; the record is for the shift report (loss prevention: what was rung up
    and taken off again). Named by the tablet like a sale, so a void sent twice (offline, then retried) is
    recorded once."""

    __tablename__ = "pos_voids"
    __store_index__ = False
    __table_args__ = (
        UniqueConstraint("store_id", "register_id", "client_void_id"),
        Index("ix_pos_voids_shift", "shift_id"),
        CheckConstraint("kind IN ('ticket', 'line')", name="kind_known"),
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
    )

    register_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registers.id", ondelete="RESTRICT"))
    shift_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shifts.id", ondelete="RESTRICT"))
    client_void_id: Mapped[uuid.UUID] = mapped_column()
    kind: Mapped[str] = mapped_column(String(10))  # ticket | line
    reason: Mapped[str] = mapped_column(String(200))
    amount_minor: Mapped[int] = mapped_column(Integer)  # what the voided lines came to, after their discounts
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JsonB)  # [{variant_id, name, quantity, amount_minor}]
    cashier_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    voided_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))  # the tablet's clock
