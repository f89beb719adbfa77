"""Shifts: opened with a counted float (one open per register, by the database's partial unique index), cash
put in or taken out with a reason, closed with the counted cash (expected vs counted: over or short).

Each shift has an offline key: 32 random bytes the tablet encrypts and checksums its offline queue with. It is
kept encrypted at rest (app/core/encryption.py, bound to its store, shift and column) and handed out only while
the shift is open; the server keeps it to verify the checksums of sales that sync after the shift closed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from app.core import audit
from app.core.encryption import EncryptionError, Keyring, current_keyring
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.outbox import emit
from app.core.rbac import Principal
from app.core.tenancy import bind_store, system_scope
from app.payments.credentials import RotationResult
from app.pos.canonical import key_from_text, key_text, new_offline_key
from app.pos.models import CashMovement, Register, Shift
from app.pos.pricing import MAX_MINOR
from app.pos.registers import RegisterService
from app.pos.reports import ShiftReport, shift_report
from app.stores.models import User

__all__ = ["CASH_KINDS", "OpenShift", "ShiftService", "offline_key_context", "rotate_offline_keys"]

CASH_KINDS = ("in", "out")
MAX_REASON = 200
MAX_NOTE = 500


def offline_key_context(store_id: uuid.UUID, shift_id: uuid.UUID) -> str:
    """Where a shift's key lives: a ciphertext copied to another shift or store does not decrypt."""
    return f"pos:{store_id}:shifts:{shift_id}:offline_key"


def decrypt_offline_key(shift: Shift, keyring: Keyring | None = None) -> bytes:
    keyring = keyring or current_keyring()
    return key_from_text(
        keyring.decrypt(shift.offline_key_ciphertext, context=offline_key_context(shift.store_id, shift.id))
    )


@dataclass(frozen=True)
class OpenShift:
    """A shift as the API answers it; ``offline_key`` only while it is open and only where the contract says."""

    shift: Shift
    register_name: str
    opened_by: str
    offline_key: str | None = None


def _amount(value: int, field: str, *, positive: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed("Enter an amount in minor units.", fields={field: "A whole number of cents."})
    low = 1 if positive else 0
    if not low <= value <= MAX_MINOR:
        raise ValidationFailed(
            "That amount is not right.", fields={field: "More than zero." if positive else "Zero or more."}
        )
    return value


class ShiftService:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        bind_store(session, store_id)

    async def _names(self, shift: Shift) -> tuple[str, str]:
        register = await self.session.get(Register, shift.register_id)
        user = await self.session.get(User, shift.opened_by_id) if shift.opened_by_id else None
        return (register.name if register else ""), (user.name if user else "")

    async def view(self, shift: Shift, *, with_key: bool) -> OpenShift:
        register_name, opened_by = await self._names(shift)
        key = key_text(decrypt_offline_key(shift)) if with_key and shift.closed_at is None else None
        return OpenShift(shift, register_name, opened_by, key)

    async def get(self, shift_id: uuid.UUID, *, lock: bool = False) -> Shift:
        shift = await self.session.get(Shift, shift_id, with_for_update=lock)
        if shift is None:
            raise NotFound("No such shift.")
        return shift

    async def open(self, register_id: uuid.UUID, opening_float_minor: int, *, actor: Principal) -> OpenShift:
        """Open a shift on the register with the float counted in the drawer; 409 when one is open already
        (also when two tablets open it at the same moment: the partial unique index decides)."""
        register = await RegisterService(self.session, self.store_id).get(register_id)
        opening_float_minor = _amount(opening_float_minor, "opening_float_minor", positive=False)
        if not register.is_active:
            raise ValidationFailed(
                "This register is deactivated.", fields={"register_id": "Choose an active register."}
            )
        shift_id = uuid7()
        key = new_offline_key()
        shift = Shift(
            id=shift_id,
            register_id=register.id,
            opened_by_id=actor.user_id,
            opened_at=datetime.now(UTC),
            opening_float_minor=opening_float_minor,
            offline_key_ciphertext=current_keyring().encrypt(
                key_text(key), context=offline_key_context(self.store_id, shift_id)
            ),
        )
        try:
            async with self.session.begin_nested():
                self.session.add(shift)
                await self.session.flush()
        except IntegrityError:
            raise Conflict(f"{register.name} has an open shift already: join it, or close it first.") from None
        audit.record(self.session, actor, "pos.shift_opened", target_type="shift", target_id=shift.id,
                     details={"register": register.name, "opening_float_minor": opening_float_minor})  # fmt: skip
        return OpenShift(shift, register.name, actor.display_name, key_text(key))

    async def cash(
        self, shift_id: uuid.UUID, kind: str, amount_minor: int, reason: str, *, actor: Principal
    ) -> CashMovement:
        """Cash put into (``in``) or taken out of (``out``) the drawer, with a reason."""
        fields: dict[str, str] = {}
        if kind not in CASH_KINDS:
            fields["kind"] = "in or out."
        reason = " ".join(reason.split())
        if not reason:
            fields["reason"] = "Say why the cash goes in or out."
        elif len(reason) > MAX_REASON:
            fields["reason"] = f"At most {MAX_REASON} characters."
        if fields:
            raise ValidationFailed("Check the cash movement.", fields=fields)
        amount_minor = _amount(amount_minor, "amount_minor", positive=True)
        shift = await self.get(shift_id, lock=True)
        if shift.closed_at is not None:
            raise Conflict("This shift is closed.")
        movement = CashMovement(shift_id=shift.id, kind=kind, amount_minor=amount_minor, reason=reason,
                                actor_id=actor.user_id)  # fmt: skip
        self.session.add(movement)
        await self.session.flush()
        return movement

    async def close(self, shift_id: uuid.UUID, counted_cash_minor: int, note: str, *, actor: Principal) -> ShiftReport:
        """Close with the cash counted in the drawer: expected vs counted is recorded (over > 0, short < 0)."""
        counted_cash_minor = _amount(counted_cash_minor, "counted_cash_minor", positive=False)
        note = note.strip()
        if len(note) > MAX_NOTE:
            raise ValidationFailed("The note is too long.", fields={"note": f"At most {MAX_NOTE} characters."})
        shift = await self.get(shift_id, lock=True)  # a sale in flight holds it shared: it lands before or after
        if shift.closed_at is not None:
            raise Conflict("This shift is closed already.")
        before = await shift_report(self.session, shift)
        shift.closed_at = datetime.now(UTC)
        shift.closed_by_id = actor.user_id
        shift.counted_cash_minor = counted_cash_minor
        shift.expected_cash_minor = before.expected_cash_minor
        shift.over_short_minor = counted_cash_minor - before.expected_cash_minor
        shift.close_note = note
        await self.session.flush()
        details = {
            "expected_cash_minor": shift.expected_cash_minor,
            "counted_cash_minor": counted_cash_minor,
            "over_short_minor": shift.over_short_minor,
        }
        audit.record(self.session, actor, "pos.shift_closed", target_type="shift", target_id=shift.id, details=details)
        # The closed shift's receipt (app/receipts) is made from this event.
        emit(self.session, "pos.shift_closed", aggregate_type="shift", aggregate_id=shift.id, payload=details)
        return await shift_report(self.session, shift)

    async def report(self, shift_id: uuid.UUID) -> ShiftReport:
        return await shift_report(self.session, await self.get(shift_id))


async def rotate_offline_keys(session: AsyncSession, keyring: Keyring) -> RotationResult:
    """Re-encrypt every shift's offline key under the newest key (part of ``till keys rotate``). Idempotent; a key
    that cannot be decrypted stops it (and its transaction) naming the shift."""
    system_scope(session)
    rotated = current = 0
    for shift in await session.scalars(select(Shift).order_by(Shift.id).with_for_update()):
        if keyring.is_current(shift.offline_key_ciphertext):
            current += 1
            continue
        context = offline_key_context(shift.store_id, shift.id)
        try:
            shift.offline_key_ciphertext = keyring.rotate(shift.offline_key_ciphertext, context=context)
        except EncryptionError as exc:
            raise type(exc)(f"offline key of shift {shift.id} (store {shift.store_id}): {exc}") from None
        rotated += 1
    await session.flush()
    return RotationResult(newest_version=keyring.newest_version, rotated=rotated, current=current)
