"""Registers (tills): a manager creates, renames and deactivates them; each shows its open shift and its reader."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.rbac import Principal
from app.core.tenancy import bind_store
from app.pos.models import CardReader, Register, Shift

__all__ = ["MAX_NAME", "RegisterRow", "RegisterService"]

MAX_NAME = 60


@dataclass(frozen=True)
class RegisterRow:
    """A register with its open shift (None: closed) and its paired reader (None: none)."""

    register: Register
    open_shift: Shift | None
    reader: CardReader | None


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ValidationFailed("Name the register.", fields={"name": "Required, e.g. Counter 1."})
    if len(name) > MAX_NAME:
        raise ValidationFailed("The name is too long.", fields={"name": f"At most {MAX_NAME} characters."})
    return name


class RegisterService:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        bind_store(session, store_id)

    async def rows(self, *, include_inactive: bool = False) -> list[RegisterRow]:
        """The store's registers by name, with their open shifts and readers (three queries)."""
        query = select(Register).order_by(Register.is_active.desc(), Register.name)
        if not include_inactive:
            query = query.where(Register.is_active.is_(True))
        registers = list(await self.session.scalars(query))
        ids = [r.id for r in registers]
        if not ids:
            return []
        shifts = {
            s.register_id: s
            for s in await self.session.scalars(
                select(Shift).where(Shift.register_id.in_(ids), Shift.closed_at.is_(None))
            )
        }
        readers = {
            r.register_id: r
            for r in await self.session.scalars(
                select(CardReader).where(CardReader.register_id.in_(ids), CardReader.status != "retired")
            )
        }
        return [RegisterRow(r, shifts.get(r.id), readers.get(r.id)) for r in registers]

    async def get(self, register_id: uuid.UUID) -> Register:
        """The store's register (another store's is not found)."""
        register = await self.session.get(Register, register_id)
        if register is None:
            raise NotFound("No such register.")
        return register

    async def _name_taken(self, name: str, *, but: uuid.UUID | None = None) -> bool:
        query = select(func.count()).select_from(Register).where(func.lower(Register.name) == name.lower())
        if but is not None:
            query = query.where(Register.id != but)
        return bool(await self.session.scalar(query))

    async def _save(self, register: Register) -> None:
        """Flush in a savepoint: a name taken by a concurrent request is a 422, not a broken transaction."""
        try:
            async with self.session.begin_nested():
                self.session.add(register)
                await self.session.flush()
        except IntegrityError:
            raise ValidationFailed(
                "That name is taken.", fields={"name": f"There is a register called {register.name} already."}
            ) from None

    async def create(self, name: str, *, actor: Principal) -> Register:
        name = _clean_name(name)
        if await self._name_taken(name):
            raise ValidationFailed(
                "That name is taken.", fields={"name": f"There is a register called {name} already."}
            )
        register = Register(name=name, is_active=True)
        await self._save(register)
        audit.record(self.session, actor, "pos.register_created", target_type="register", target_id=register.id,
                     details={"name": name})  # fmt: skip
        return register

    async def rename(self, register_id: uuid.UUID, name: str, *, actor: Principal) -> Register:
        register = await self.get(register_id)
        name = _clean_name(name)
        if name == register.name:
            return register
        if await self._name_taken(name, but=register.id):
            raise ValidationFailed(
                "That name is taken.", fields={"name": f"There is a register called {name} already."}
            )
        before, register.name = register.name, name
        await self._save(register)
        audit.record(self.session, actor, "pos.register_renamed", target_type="register", target_id=register.id,
                     details={"from": before, "to": name})  # fmt: skip
        return register

    async def set_active(self, register_id: uuid.UUID, active: bool, *, actor: Principal) -> Register:
        """Deactivate (hidden from the tablets; its history stays) or reactivate. A register with an open shift
        is closed first."""
        register = await self.get(register_id)
        if register.is_active == active:
            return register
        if not active:
            open_shift = await self.session.scalar(
                select(Shift.id).where(Shift.register_id == register.id, Shift.closed_at.is_(None))
            )
            if open_shift is not None:
                raise Conflict(f"{register.name} has an open shift: close it on the tablet first.")
        register.is_active = active
        await self.session.flush()
        action = "pos.register_reactivated" if active else "pos.register_deactivated"
        audit.record(self.session, actor, action, target_type="register", target_id=register.id,
                     details={"name": register.name})  # fmt: skip
        return register
