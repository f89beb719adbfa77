"""Voided tickets and lines: what a cashier rang up and took off again before it was sold, with the reason.

Nothing was sold, so nothing moves (no order, stock or money; card payments on a voided ticket are given back
through the reader API first, app/pos/readers). The record is for the shift report, where voids sit beside the
sales: a manager sees how much was voided, by whom and why. The tablet names each void (``client_void_id``) and
keeps it until the server has it, like an offline sale: the claim on ``(store, register, client_void_id)`` makes a
void sent twice one record, and the second answer is the first's.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from app.core.errors import ValidationFailed
from app.core.rbac import Principal
from app.pos.models import PosVoid
from app.pos.pricing import MAX_MINOR
from app.pos.registers import RegisterService
from app.pos.sales import CLOCK_SKEW
from app.pos.schemas import VoidIn
from app.pos.shifts import ShiftService

__all__ = ["MAX_VOID_LINES", "VOID_KINDS", "record_void", "void_json"]

VOID_KINDS = ("ticket", "line")
MAX_VOID_LINES = 200
MAX_REASON = 200


def _check(data: VoidIn, now: datetime) -> tuple[str, list[dict[str, Any]], int]:
    """The void's reason, lines and amount, or ValidationFailed naming every field that is wrong."""
    fields: dict[str, str] = {}
    if data.kind not in VOID_KINDS:
        fields["kind"] = "ticket or line."
    reason = " ".join(data.reason.split())
    if not reason:
        fields["reason"] = "Say why it was voided."
    elif len(reason) > MAX_REASON:
        fields["reason"] = f"At most {MAX_REASON} characters."
    if data.voided_at > now + CLOCK_SKEW:
        fields["voided_at"] = "In the future: check the tablet's clock."
    if not data.lines:
        fields["lines"] = "A void names what was voided."
    elif len(data.lines) > MAX_VOID_LINES:
        fields["lines"] = f"At most {MAX_VOID_LINES} lines."
    elif data.kind == "line" and len(data.lines) != 1:
        fields["lines"] = "A line void names exactly one line."
    lines: list[dict[str, Any]] = []
    for i, line in enumerate(data.lines[:MAX_VOID_LINES]):
        if not line.name.strip():
            fields[f"lines.{i}.name"] = "Required."
        if isinstance(line.quantity, bool) or not 1 <= line.quantity <= 9999:
            fields[f"lines.{i}.quantity"] = "1 to 9999."
        if isinstance(line.amount_minor, bool) or not 0 <= line.amount_minor <= MAX_MINOR:
            fields[f"lines.{i}.amount_minor"] = "Zero or more, in minor units."
        lines.append(
            {
                "variant_id": str(line.variant_id) if line.variant_id else None,
                "name": line.name.strip(),
                "quantity": line.quantity,
                "amount_minor": line.amount_minor,
            }
        )
    amount = sum(int(line["amount_minor"]) for line in lines)
    if not fields and amount > MAX_MINOR:
        fields["lines"] = "The voided lines add up to too much."
    if fields:
        raise ValidationFailed("Check the void; nothing was written.", fields=fields)
    return reason, lines, amount


async def record_void(
    session: AsyncSession, store_id: uuid.UUID, data: VoidIn, *, actor: Principal
) -> tuple[bool, PosVoid]:
    """Record the void once (``True``) or answer the record the tablet sent before (``False``). The shift must be
    this register's; it may have closed since (a void kept offline arrives after the close, like a sale)."""
    reason, lines, amount = _check(data, datetime.now(UTC))
    await RegisterService(session, store_id).get(data.register_id)
    shift = await ShiftService(session, store_id).get(data.shift_id)
    if shift.register_id != data.register_id:
        raise ValidationFailed("That shift is not this register's.", fields={"shift_id": "Another register's shift."})
    claimed = await session.scalar(
        insert(PosVoid)
        .values(
            id=uuid7(),
            store_id=store_id,
            register_id=data.register_id,
            shift_id=data.shift_id,
            client_void_id=data.client_void_id,
            kind=data.kind,
            reason=reason,
            amount_minor=amount,
            lines=lines,
            cashier_id=actor.user_id,
            voided_at=data.voided_at,
            created_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["store_id", "register_id", "client_void_id"])
        .returning(PosVoid.id)
    )
    row = await session.scalar(
        select(PosVoid).where(
            PosVoid.store_id == store_id,
            PosVoid.register_id == data.register_id,
            PosVoid.client_void_id == data.client_void_id,
        )
    )
    assert row is not None
    return claimed is not None, row


def void_json(row: PosVoid) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "client_void_id": str(row.client_void_id),
        "register_id": str(row.register_id),
        "shift_id": str(row.shift_id),
        "kind": row.kind,
        "reason": row.reason,
        "amount_minor": row.amount_minor,
        "lines": row.lines,
        "voided_at": row.voided_at.isoformat(),
    }
