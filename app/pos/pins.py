"""A manager's POS PIN: 4 to 8 digits, kept as an argon2 hash on their membership (``pos_pin_hash``). At the till
it approves a discount over a cashier's limit (or a refund over the store's approval threshold).

Wrong PINs are counted per store and cashier like wrong passwords at sign-in (app/core/ratelimit.py): after
five within 15 minutes that cashier's PINs are not checked until the window ends (429), so a PIN cannot be
guessed at the till or through crafted offline sales.
"""

from __future__ import annotations

import asyncio
import re
import uuid

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.errors import NotFound, TooManyRequests, ValidationFailed
from app.core.passwords import hash_password, verify_password
from app.core.ratelimit import FailureLimit
from app.core.rbac import Principal, Role
from app.core.tenancy import bind_store
from app.stores.models import Membership, User

__all__ = ["PIN_FAILURES", "PIN_PATTERN", "PinRefused", "PinService"]

PIN_PATTERN = re.compile(r"^[0-9]{4,8}$")
PIN_FAILURES = FailureLimit("pos-pin", limit=5, window_s=15 * 60)
_APPROVERS = (Role.MANAGER, Role.OWNER)


class PinRefused(ValidationFailed):
    """The PIN given is not a manager's."""


class PinService:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        bind_store(session, store_id)

    async def _membership(self, user_id: uuid.UUID | None) -> Membership:
        membership = await self.session.scalar(select(Membership).where(Membership.user_id == user_id))
        if membership is None:
            raise NotFound("You are not a member of this store.")
        return membership

    async def has_pin(self, user_id: uuid.UUID | None) -> bool:
        return (await self._membership(user_id)).pos_pin_hash is not None

    async def set_pin(self, principal: Principal, pin: str, confirm: str) -> None:
        """Set (or change) the caller's own PIN; managers and owners only."""
        if not principal.can(Role.MANAGER):
            raise ValidationFailed("Only managers approve at the till.", fields={"pin": "Managers and owners only."})
        fields: dict[str, str] = {}
        if not PIN_PATTERN.match(pin):
            fields["pin"] = "4 to 8 digits."
        elif pin != confirm:
            fields["confirm"] = "The two PINs differ."
        if fields:
            raise ValidationFailed("Check the PIN.", fields=fields)
        membership = await self._membership(principal.user_id)
        membership.pos_pin_hash = await asyncio.to_thread(hash_password, pin)
        audit.record(self.session, principal, "pos.pin_set", target_type="membership", target_id=membership.id)

    async def clear_pin(self, principal: Principal) -> None:
        membership = await self._membership(principal.user_id)
        membership.pos_pin_hash = None
        audit.record(self.session, principal, "pos.pin_cleared", target_type="membership", target_id=membership.id)

    async def approver(
        self, redis: Redis, pin: str, *, asked_by: uuid.UUID | None, field: str = "manager_pin"
    ) -> uuid.UUID:
        """The manager (user id) whose PIN this is; PinRefused when it is nobody's, TooManyRequests after too many
        wrong ones from this cashier."""
        subject = f"{self.store_id}:{asked_by}"
        wait = await PIN_FAILURES.locked_for(redis, subject)
        if wait:
            raise TooManyRequests(
                "Too many wrong PINs. Try again in a few minutes.", retry_after=wait, fields={field: "Locked for now."}
            )
        if PIN_PATTERN.match(pin or ""):
            rows = await self.session.execute(
                select(Membership.user_id, Membership.pos_pin_hash)
                .join(User, User.id == Membership.user_id)
                .where(
                    Membership.role.in_(_APPROVERS),
                    Membership.pos_pin_hash.is_not(None),
                    Membership.deactivated_at.is_(None),
                    User.is_active.is_(True),
                )
                .order_by(Membership.created_at)
            )
            for user_id, pin_hash in rows:
                if await asyncio.to_thread(verify_password, pin_hash, pin):
                    await PIN_FAILURES.clear(redis, subject)
                    return uuid.UUID(str(user_id))
        await PIN_FAILURES.record_failure(redis, subject)
        raise PinRefused("That is not a manager's PIN.", fields={field: "Wrong PIN."})
