"""The order state machine (Invariant 7): which status changes exist, for which orders, and who may make them.

Two axes are changed by people: the order's own status and its fulfilment status. The third, the
payment status, follows the payments ledger and is never set by hand. One table lists every allowed
change; ``decide`` is the only place that reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.core.rbac import Role


class Axis(StrEnum):
    ORDER = "order"
    FULFILMENT = "fulfilment"


ORDER_STATUSES = ("placed", "accepted", "in_progress", "ready", "completed", "cancelled")
FULFILMENT_STATUSES = (
    "unfulfilled",
    "partially_fulfilled",
    "fulfilled",
    "shipped",
    "picked_up",
    "delivered",
    "returned",
)
STATUSES = {Axis.ORDER: ORDER_STATUSES, Axis.FULFILMENT: FULFILMENT_STATUSES}
# Set from the payments ledger only (app.payments.services.order_payment_status), listed for filters.
PAYMENT_STATUSES = (
    "unpaid",
    "authorized",
    "partially_paid",
    "paid",
    "partially_refunded",
    "refunded",
    "voided",
    "disputed",  # a dispute is open on the payment (app/disputes)
    "charged_back",  # a dispute was lost: its amount left the store
)
CHANNELS = ("web", "pos", "ingested")
METHODS = ("pickup", "shipping", "local_delivery")
ALL_METHODS = frozenset(METHODS)


@dataclass(frozen=True)
class Transition:
    axis: Axis
    source: str
    target: str
    min_role: Role
    methods: frozenset[str] = ALL_METHODS  # the fulfilment methods this change exists for


def _t(axis: Axis, source: str, target: str, role: Role, methods: frozenset[str] = ALL_METHODS) -> Transition:
    return Transition(axis, source, target, role, methods)


ORD, FUL = Axis.ORDER, Axis.FULFILMENT
PICKUP = frozenset({"pickup"})
SHIPPED = frozenset({"shipping"})
DELIVERED = frozenset({"shipping", "local_delivery"})

CANCELLED = "cancelled"

# Cancelling gives money and stock back (app/orders/cancellation.py), so it needs a manager and a reason.
TRANSITIONS: tuple[Transition, ...] = (
    _t(ORD, "placed", "accepted", Role.STAFF),
    _t(ORD, "accepted", "in_progress", Role.STAFF),
    _t(ORD, "in_progress", "ready", Role.STAFF),
    _t(ORD, "ready", "completed", Role.STAFF),
    *(_t(ORD, source, CANCELLED, Role.MANAGER) for source in ("placed", "accepted", "in_progress", "ready")),
    _t(FUL, "unfulfilled", "partially_fulfilled", Role.STAFF),
    _t(FUL, "unfulfilled", "fulfilled", Role.STAFF),
    _t(FUL, "partially_fulfilled", "fulfilled", Role.STAFF),
    _t(FUL, "fulfilled", "picked_up", Role.STAFF, PICKUP),
    _t(FUL, "fulfilled", "shipped", Role.STAFF, SHIPPED),
    _t(FUL, "shipped", "delivered", Role.STAFF, SHIPPED),
    _t(FUL, "fulfilled", "delivered", Role.STAFF, frozenset({"local_delivery"})),
    _t(FUL, "picked_up", "returned", Role.MANAGER, PICKUP),
    _t(FUL, "delivered", "returned", Role.MANAGER, DELIVERED),
)
_BY_KEY = {(t.axis, t.source, t.target): t for t in TRANSITIONS}

_METHOD_WORDS = {"pickup": "a pickup order", "shipping": "a shipped order", "local_delivery": "a local delivery"}


@dataclass(frozen=True)
class Decision:
    """``allowed`` (and ``changes``: False for a repeat of the current status), or a reason a person reads."""

    allowed: bool
    changes: bool = False
    reason: str = ""
    forbidden: bool = False  # allowed for the order, but not for this role


def decide(axis: Axis, current: str, target: str, *, method: str, role: Role) -> Decision:
    words = target.replace("_", " ")
    if target not in STATUSES[axis]:
        return Decision(False, reason=f"'{target}' is not a {axis.value} status.")
    if target == current:
        return Decision(True, changes=False)
    transition = _BY_KEY.get((axis, current, target))
    if transition is None:
        nexts = [t.target.replace("_", " ") for t in TRANSITIONS if t.axis == axis and t.source == current]
        after = f" From {current.replace('_', ' ')} it can go to: {', '.join(nexts)}." if nexts else ""
        return Decision(False, reason=f"An order that is {current.replace('_', ' ')} cannot become {words}.{after}")
    if method not in transition.methods:
        return Decision(False, reason=f"{_METHOD_WORDS.get(method, 'This order').capitalize()} is never {words}.")
    if not role.at_least(transition.min_role):
        return Decision(
            False, forbidden=True, reason=f"Marking an order {words} needs the {transition.min_role.value} role."
        )
    return Decision(True, changes=True)


def next_statuses(axis: Axis, current: str, *, method: str) -> list[str]:
    """The steps forward a card's one-tap button offers (the board), in table order: not cancelling."""
    return [
        t.target
        for t in TRANSITIONS
        if t.axis == axis and t.source == current and method in t.methods and t.target != CANCELLED
    ]
