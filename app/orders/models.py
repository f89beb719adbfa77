from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import BigInteger, ForeignKey, Index, Integer, Sequence, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import UUIDv7AuditBase, metadata
from app.core.tenancy import TenantMixin

# Human order numbers (#1001, ...) come from one sequence: no counter row to serialise checkouts on.
# A store sees gaps where other stores' orders took numbers; numbers never repeat within a store.
order_number_seq = Sequence("order_number_seq", start=1001, metadata=metadata)


class Order(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "orders"
    __store_index__ = False
    __table_args__ = (
        UniqueConstraint("store_id", "number"),
        # The order list: newest first by keyset, on its own or within one status (the board's columns).
        Index("ix_orders_store_placed", "store_id", "placed_at", "id"),
        Index("ix_orders_store_status_placed", "store_id", "status", "placed_at", "id"),
        # Search by the start of an e-mail address (LIKE 'ann@%'), whatever the database's collation.
        Index("ix_orders_store_email", "store_id", "email", postgresql_ops={"email": "varchar_pattern_ops"}),
        # ... or of the recipient's name (migration 0007 adds the expression index
        # ix_orders_store_recipient on (store_id, lower(address->>'name') text_pattern_ops)).
    )

    number: Mapped[int] = mapped_column(BigInteger, order_number_seq, server_default=order_number_seq.next_value())
    channel: Mapped[str] = mapped_column(String(16), default="web")  # web | pos | ingested
    status: Mapped[str] = mapped_column(String(20), default="placed")
    payment_status: Mapped[str] = mapped_column(String(20), default="unpaid")
    fulfilment_status: Mapped[str] = mapped_column(String(20), default="unfulfilled")
    fulfilment_method: Mapped[str] = mapped_column(String(20), default="pickup")  # pickup | shipping | local_delivery
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str] = mapped_column(String(40), default="")
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_minor: Mapped[int] = mapped_column(Integer)
    discount_minor: Mapped[int] = mapped_column(Integer, default=0)
    # The promotions behind ``discount_minor`` as the quote froze them (app/promotions): name, code, amount_minor,
    # shipping_minor and each line's part by position; [] without a discount.
    discounts: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    shipping_minor: Mapped[int] = mapped_column(Integer)
    tax_minor: Mapped[int] = mapped_column(Integer)
    total_minor: Mapped[int] = mapped_column(Integer)
    prices_include_tax: Mapped[bool] = mapped_column()
    shipping: Mapped[dict[str, Any]] = mapped_column(JsonB)
    address: Mapped[dict[str, Any] | None] = mapped_column(JsonB, default=None)
    snapshot_id: Mapped[uuid.UUID | None] = mapped_column(unique=True)  # None: ingested from a channel
    access_token: Mapped[str] = mapped_column(String(64))
    placed_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))

    lines: Mapped[list[OrderLine]] = relationship(lazy="selectin", order_by="OrderLine.position")


class OrderLine(TenantMixin, UUIDv7AuditBase):
    __tablename__ = "order_lines"
    __store_index__ = False

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    variant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("variants.id", ondelete="SET NULL"))
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_minor: Mapped[int] = mapped_column(Integer)
    discount_minor: Mapped[int] = mapped_column(Integer, default=0)
    tax_minor: Mapped[int] = mapped_column(Integer)
    tax_rate_bps: Mapped[int] = mapped_column(Integer)
    total_minor: Mapped[int] = mapped_column(Integer)


class OrderStatusChange(TenantMixin, UUIDv7AuditBase):
    """One change of an order's status on one axis, with who made it, from where and why (append-only)."""

    __tablename__ = "order_status_changes"
    __store_index__ = False  # reached through the order

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    axis: Mapped[str] = mapped_column(String(16))  # order | fulfilment
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(default=None)  # a user or an API token
    actor: Mapped[str] = mapped_column(String(120))  # who, as people read it
    source: Mapped[str] = mapped_column(String(16))  # staff | shopper | webhook | pos | system | api
    reason: Mapped[str] = mapped_column(String(500), default="")
    correlation_id: Mapped[str | None] = mapped_column(String(64), default=None)
