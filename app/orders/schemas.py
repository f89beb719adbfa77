"""API shapes for orders."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec
import msgspec.structs

from app.orders.models import Order, OrderStatusChange
from app.orders.states import Axis, next_statuses


class StatusChangeIn(msgspec.Struct):
    status: str
    axis: Literal["order", "fulfilment"] = "order"
    reason: str = ""


class StatusChangeOut(msgspec.Struct):
    axis: str
    from_status: str
    to_status: str
    actor: str
    source: str
    reason: str
    correlation_id: str | None
    at: datetime

    @classmethod
    def of(cls, change: OrderStatusChange) -> StatusChangeOut:
        return cls(
            axis=change.axis,
            from_status=change.from_status,
            to_status=change.to_status,
            actor=change.actor,
            source=change.source,
            reason=change.reason,
            correlation_id=change.correlation_id,
            at=change.created_at,
        )


class OrderLineOut(msgspec.Struct):
    sku: str
    name: str
    quantity: int
    unit_price_minor: int
    tax_minor: int
    total_minor: int
    discount_minor: int = 0  # this line's part of the order's discounts (total_minor is before it)


class OrderSummaryOut(msgspec.Struct):
    id: uuid.UUID
    number: int
    channel: str
    status: str
    payment_status: str
    fulfilment_status: str
    fulfilment_method: str
    email: str
    currency: str
    total_minor: int
    placed_at: datetime

    @classmethod
    def of(cls, order: Order) -> OrderSummaryOut:
        return cls(
            id=order.id,
            number=order.number,
            channel=order.channel,
            status=order.status,
            payment_status=order.payment_status,
            fulfilment_status=order.fulfilment_status,
            fulfilment_method=order.fulfilment_method,
            email=order.email,
            currency=order.currency,
            total_minor=order.total_minor,
            placed_at=order.placed_at,
        )


class OrderDetailOut(OrderSummaryOut):
    phone: str
    next_statuses: list[str]
    next_fulfilment_statuses: list[str]
    subtotal_minor: int
    shipping_minor: int
    tax_minor: int
    lines: list[OrderLineOut]
    history: list[StatusChangeOut]  # newest first
    discount_minor: int = 0
    # The promotions applied: promotion_id, name, code ("" automatic), kind, amount_minor, shipping_minor, lines
    # (each line's part by its position).
    discounts: list[dict[str, Any]] = msgspec.field(default_factory=list)

    @classmethod
    def of(cls, order: Order, history: list[OrderStatusChange]) -> OrderDetailOut:  # type: ignore[override]
        method = order.fulfilment_method
        return cls(
            **msgspec.structs.asdict(OrderSummaryOut.of(order)),
            phone=order.phone,
            next_statuses=next_statuses(Axis.ORDER, order.status, method=method),
            next_fulfilment_statuses=next_statuses(Axis.FULFILMENT, order.fulfilment_status, method=method),
            subtotal_minor=order.subtotal_minor,
            shipping_minor=order.shipping_minor,
            tax_minor=order.tax_minor,
            lines=[
                OrderLineOut(
                    sku=line.sku,
                    name=line.name,
                    quantity=line.quantity,
                    unit_price_minor=line.unit_price_minor,
                    tax_minor=line.tax_minor,
                    total_minor=line.total_minor,
                    discount_minor=line.discount_minor,
                )
                for line in order.lines
            ],
            history=[StatusChangeOut.of(change) for change in history],
            discount_minor=order.discount_minor,
            discounts=list(order.discounts or []),
        )


class OrderPage(msgspec.Struct):
    items: list[OrderSummaryOut]
    next_cursor: str | None  # pass as ?cursor= for the next page; None on the last page


class AuditEntryOut(msgspec.Struct):
    at: datetime
    kind: str
    summary: str
    actor: str
    source: str
    reason: str
    correlation_id: str | None
    reference: str
