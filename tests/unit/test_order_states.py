"""The order state table: every allowed change per order type and role, and the refusals people read."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from app.core.rbac import Role
from app.orders.board import card_context
from app.orders.models import Order
from app.orders.states import (
    FULFILMENT_STATUSES,
    METHODS,
    ORDER_STATUSES,
    TRANSITIONS,
    Axis,
    decide,
    next_statuses,
)

ALLOWED = {(t.axis, t.source, t.target, m): t.min_role for t in TRANSITIONS for m in t.methods}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(("axis", "statuses"), [(Axis.ORDER, ORDER_STATUSES), (Axis.FULFILMENT, FULFILMENT_STATUSES)])
def test_every_pair_of_statuses_is_decided_by_the_table(
    axis: Axis, statuses: tuple[str, ...], role: Role, method: str
) -> None:
    for source in statuses:
        for target in statuses:
            decision = decide(axis, source, target, method=method, role=role)
            if source == target:
                assert decision.allowed and not decision.changes
                continue
            needed = ALLOWED.get((axis, source, target, method))
            if needed is None:
                assert not decision.allowed and not decision.forbidden and decision.reason
            elif role.at_least(needed):
                assert decision.allowed and decision.changes
            else:
                assert not decision.allowed and decision.forbidden and needed.value in decision.reason


def test_the_kitchen_flow_and_its_refusals_read_like_sentences() -> None:
    flow = ["placed", "accepted", "in_progress", "ready", "completed"]
    for source, target in itertools.pairwise(flow):
        assert decide(Axis.ORDER, source, target, method="pickup", role=Role.STAFF).changes
    skip = decide(Axis.ORDER, "placed", "ready", method="pickup", role=Role.STAFF)
    assert skip.reason == (
        "An order that is placed cannot become ready. From placed it can go to: accepted, cancelled."
    )
    back = decide(Axis.ORDER, "completed", "placed", method="pickup", role=Role.OWNER)
    assert back.reason == "An order that is completed cannot become placed."
    cashier = decide(Axis.ORDER, "placed", "accepted", method="pickup", role=Role.CASHIER)
    assert cashier.forbidden and cashier.reason == "Marking an order accepted needs the staff role."
    assert not decide(Axis.ORDER, "placed", "lost", method="pickup", role=Role.OWNER).allowed


def test_a_pickup_order_is_never_shipped_and_a_shipment_is_never_picked_up() -> None:
    shipped = decide(Axis.FULFILMENT, "fulfilled", "shipped", method="pickup", role=Role.OWNER)
    assert not shipped.allowed and shipped.reason == "A pickup order is never shipped."
    picked = decide(Axis.FULFILMENT, "fulfilled", "picked_up", method="shipping", role=Role.OWNER)
    assert not picked.allowed and picked.reason == "A shipped order is never picked up."
    assert next_statuses(Axis.FULFILMENT, "fulfilled", method="pickup") == ["picked_up"]
    assert next_statuses(Axis.FULFILMENT, "fulfilled", method="shipping") == ["shipped"]
    assert next_statuses(Axis.FULFILMENT, "fulfilled", method="local_delivery") == ["delivered"]
    returned = decide(Axis.FULFILMENT, "delivered", "returned", method="local_delivery", role=Role.STAFF)
    assert returned.forbidden and "manager" in returned.reason


def test_cancelling_needs_a_manager_and_an_open_order() -> None:
    for source in ("placed", "accepted", "in_progress", "ready"):
        assert decide(Axis.ORDER, source, "cancelled", method="pickup", role=Role.MANAGER).changes
        staff = decide(Axis.ORDER, source, "cancelled", method="pickup", role=Role.STAFF)
        assert staff.forbidden and "manager" in staff.reason
    assert not decide(Axis.ORDER, "completed", "cancelled", method="shipping", role=Role.OWNER).allowed
    assert not decide(Axis.ORDER, "cancelled", "placed", method="shipping", role=Role.OWNER).allowed


def test_a_board_card_is_delayed_after_the_stores_threshold_in_one_status() -> None:
    placed = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    order = Order(placed_at=placed, updated_at=placed, status="accepted", fulfilment_method="pickup", lines=[])
    fresh = card_context(order, placed + timedelta(minutes=9), timedelta(minutes=10))
    late = card_context(order, placed + timedelta(minutes=11), timedelta(minutes=10))
    assert (fresh["delayed"], late["delayed"]) == (False, True)
    assert late["next"] == ["in_progress"] and late["age"] == "11 min" and late["delay_s"] == 600
