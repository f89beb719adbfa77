"""Promotion tables: the promotion, each use of it (held by a checkout, used by an order), and a shopper's count
of uses for per-customer limits."""

from __future__ import annotations

import uuid
from datetime import datetime

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import UUIDv7AuditBase
from app.core.tenancy import TenantMixin

KINDS = ("percentage", "fixed", "free_shipping", "buy_x_get_y")
TARGETS = ("all", "products", "categories")
STATUSES = ("active", "paused")
# held: claimed by a checkout that is paying; used: on an order; released: that checkout failed;
# returned: the order was refunded in full or cancelled and the store gives the use back.
REDEMPTION_STATUSES = ("held", "used", "released", "returned")


class Promotion(TenantMixin, UUIDv7AuditBase):
    """A discount a store offers: with a code the shopper types (kept upper-case: codes are case-insensitive),
    or automatic (no code). Never deleted for real: ``deleted_at`` hides it and frees its code."""

    __tablename__ = "promotions"
    __store_index__ = False
    __table_args__ = (
        Index(
            "uq_promotions_store_code",
            "store_id",
            "code",
            unique=True,
            postgresql_where=text("code IS NOT NULL AND deleted_at IS NULL"),
        ),
        Index("ix_promotions_store_created", "store_id", "created_at"),
        CheckConstraint("percent_bps BETWEEN 0 AND 10000", name="percent_in_range"),
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        CheckConstraint("uses_claimed >= 0", name="uses_not_negative"),
    )

    name: Mapped[str] = mapped_column(String(120))
    code: Mapped[str | None] = mapped_column(String(40), default=None)  # None: automatic
    kind: Mapped[str] = mapped_column(String(20))
    percent_bps: Mapped[int] = mapped_column(Integer, default=0)  # percentage; buy X get Y: off the Y items
    amount_minor: Mapped[int] = mapped_column(Integer, default=0)  # fixed amount
    buy_quantity: Mapped[int] = mapped_column(Integer, default=0)
    get_quantity: Mapped[int] = mapped_column(Integer, default=0)
    applies_to: Mapped[str] = mapped_column(String(12), default="all")
    product_ids: Mapped[list[str]] = mapped_column(JsonB, default=list)
    category_ids: Mapped[list[str]] = mapped_column(JsonB, default=list)
    min_subtotal_minor: Mapped[int] = mapped_column(Integer, default=0)
    first_order_only: Mapped[bool] = mapped_column(default=False)
    customers_only: Mapped[bool] = mapped_column(default=False)  # signed-in shoppers only
    starts_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    ends_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)  # exclusive
    max_discount_minor: Mapped[int | None] = mapped_column(Integer, default=None)
    usage_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    per_customer_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    # Uses counted against ``usage_limit`` (held + used), kept only while there is a limit: an unlimited
    # promotion's row is never locked by a checkout (no hot row). Recounted when a limit is set.
    uses_claimed: Mapped[int] = mapped_column(Integer, default=0)
    combinable: Mapped[bool] = mapped_column(default=False)  # False: exclusive, applies alone
    priority: Mapped[int] = mapped_column(Integer, default=0)  # higher first
    status: Mapped[str] = mapped_column(String(10), default="active")
    deleted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class PromotionRedemption(TenantMixin, UUIDv7AuditBase):
    """One use of a promotion: claimed with the checkout attempt (``holder_id``) and held while it pays, then on
    the order; or claimed with an ingested order or a POS sale, used at once."""

    __tablename__ = "promotion_redemptions"
    __store_index__ = False
    __table_args__ = (
        Index("ix_promotion_redemptions_promotion", "promotion_id", "created_at"),
        Index("ix_promotion_redemptions_holder", "holder_id"),
        Index("ix_promotion_redemptions_order", "order_id"),
    )

    promotion_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("promotions.id", ondelete="CASCADE"))
    holder_id: Mapped[uuid.UUID] = mapped_column()
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"), default=None)
    channel: Mapped[str] = mapped_column(String(16), default="web")  # web | ingested | pos
    customer_key: Mapped[str] = mapped_column(String(254))  # the shopper's e-mail, lower-case
    code: Mapped[str] = mapped_column(String(40), default="")  # "" for an automatic promotion
    discount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10), default="held")


class PromotionCustomerUse(TenantMixin, UUIDv7AuditBase):
    """How many uses of a promotion one shopper holds (held + used), for ``per_customer_limit``. Made when a quote
    applies such a promotion, so that a checkout's claim finds a row to lock (two first uses at once queue)."""

    __tablename__ = "promotion_customer_uses"
    __store_index__ = False
    __table_args__ = (
        UniqueConstraint("promotion_id", "customer_key"),
        CheckConstraint("uses >= 0", name="uses_not_negative"),
    )

    promotion_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("promotions.id", ondelete="CASCADE"))
    customer_key: Mapped[str] = mapped_column(String(254))
    uses: Mapped[int] = mapped_column(Integer, default=0)
