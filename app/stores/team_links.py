"""The public side of a team's e-mailed links: accepting an invitation (/invite/{secret}) and setting a new
password (/reset/{secret}). No one is signed in; the link's secret is the key, and only its hash is stored.
Each link works once: its row is locked while it is used, so of two concurrent uses the second finds it used."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.errors import Conflict, TooManyRequests, ValidationFailed
from app.core.passwords import hash_password, verify_password
from app.core.ratelimit import SIGNIN_PER_EMAIL, SIGNIN_PER_IP
from app.core.rbac import Role
from app.core.tenancy import bind_store, system_scope
from app.stores.models import Membership, PasswordReset, StaffInvitation, Store, User
from app.stores.services import SignIn, UserService, staff_principal
from app.stores.team import LinkGone, LinkInvalid, link_hash, new_password_fields

_SECRET_MAX = 128
_Link = TypeVar("_Link", StaffInvitation, PasswordReset)


@dataclass(frozen=True)
class InvitationView:
    email: str
    role: Role
    store_name: str
    has_account: bool  # an account with this e-mail exists: the page asks for its password instead


@dataclass(frozen=True)
class ResetView:
    email: str
    name: str
    store_name: str


class StaffLinks:
    """The public side of invitation and reset links: no one is signed in; the link's secret is the key."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open_invitation(self, secret: str) -> InvitationView:
        invitation = await self._find(StaffInvitation, secret, lock=False)
        _check_invitation(invitation)
        store = await self._store(invitation.store_id)
        has_account = await self.session.scalar(select(User.id).where(User.email == invitation.email)) is not None
        return InvitationView(invitation.email, Role(invitation.role), store.name, has_account)

    async def accept_invitation(
        self,
        redis: Redis,
        secret: str,
        *,
        name: str = "",
        password: str,
        password_confirm: str = "",
        client_ip: str = "unknown",
    ) -> SignIn:
        """Join the store: a new account (name + password twice), or an existing one's password. Single use: the
        invitation row is locked, so of two concurrent accepts the second finds it used."""
        invitation = await self._find(StaffInvitation, secret, lock=True)
        _check_invitation(invitation)
        users = UserService(self.session)
        user = await self.session.scalar(select(User).where(User.email == invitation.email))
        if user is not None:
            await _check_password(redis, user, password, client_ip)
        else:
            fields = new_password_fields(password, password_confirm)
            if not name.strip():
                fields["name"] = "Enter your name."
            elif len(name.strip()) > 120:
                fields["name"] = "Use at most 120 characters."
            if fields:
                raise ValidationFailed("Check the highlighted fields.", fields=fields)
            user = await users.create_user(email=invitation.email, name=name, password=password)
        store = await self._store(invitation.store_id)
        if await self.session.scalar(select(Membership.id).where(Membership.user_id == user.id)) is not None:
            raise Conflict(f"You are a member of {store.name} already: sign in instead.")
        role = Role(invitation.role)
        await users.add_member(store, user, role)
        now = datetime.now(UTC)
        invitation.accepted_at = now
        invitation.accepted_by_id = user.id
        user.last_signed_in_at = now
        audit.record(
            self.session,
            staff_principal(store, user, role),
            "staff.invitation_accepted",
            target_type="invitation",
            target_id=invitation.id,
            details={"email": user.email, "role": role.value},
        )
        return SignIn(user_id=user.id, store_id=store.id)

    async def open_reset(self, secret: str) -> ResetView:
        reset = await self._find(PasswordReset, secret, lock=False)
        user, store = await self._check_reset(reset)
        return ResetView(user.email, user.name, store.name)

    async def reset_password(self, redis: Redis, secret: str, *, password: str, password_confirm: str) -> User:
        """Set the new password and use up the link (and the store's other open reset links for this person).
        The old password stops working, and sessions opened with it end (app/stores/access.py)."""
        reset = await self._find(PasswordReset, secret, lock=True)
        user, store = await self._check_reset(reset)
        fields = new_password_fields(password, password_confirm)
        if fields:
            raise ValidationFailed("Check the highlighted fields.", fields=fields)
        now = datetime.now(UTC)
        user.password_hash = hash_password(password)
        await self.session.execute(
            update(PasswordReset)
            .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
            .values(used_at=now)
        )
        reset.used_at = now
        await SIGNIN_PER_EMAIL.clear(redis, user.email)
        membership = await self.session.scalar(select(Membership).where(Membership.user_id == user.id))
        role = Role(membership.role) if membership else Role.CASHIER
        audit.record(
            self.session,
            staff_principal(store, user, role),
            "staff.password_reset",
            target_type="user",
            target_id=user.id,
            details={"email": user.email},
        )
        return user

    async def _find(self, model: type[_Link], secret: str, *, lock: bool) -> _Link:
        """The link's row, found by its hash across stores; the session is then bound to its store."""
        if not secret or len(secret) > _SECRET_MAX:
            raise LinkInvalid("This link is not valid. Check that you copied all of it.")
        system_scope(self.session)
        query = select(model).where(model.token_hash == link_hash(secret)).execution_options(populate_existing=True)
        if lock:
            query = query.with_for_update()
        row = await self.session.scalar(query)
        if row is None:
            raise LinkInvalid("This link is not valid. Check that you copied all of it.")
        bind_store(self.session, row.store_id)
        return row

    async def _store(self, store_id: uuid.UUID) -> Store:
        store = await self.session.get(Store, store_id)
        assert store is not None
        return store

    async def _check_reset(self, reset: PasswordReset) -> tuple[User, Store]:
        if reset.used_at is not None:
            raise LinkGone("This link was used already. Ask the store owner for a new one.")
        if reset.expires_at <= datetime.now(UTC):
            raise LinkGone("This link has expired (links work for one hour). Ask the store owner for a new one.")
        store = await self._store(reset.store_id)
        membership = await self.session.scalar(select(Membership).where(Membership.user_id == reset.user_id))
        if membership is None or membership.deactivated_at is not None:
            raise LinkGone(f"This link no longer works: your access to {store.name} is turned off.")
        return membership.user, store


def _check_invitation(invitation: StaffInvitation) -> None:
    if invitation.accepted_at is not None:
        raise LinkGone("This invitation was used already. Sign in, or ask the store owner for a new one.")
    if invitation.revoked_at is not None:
        raise LinkGone("This invitation was withdrawn. Ask the store owner for a new one.")
    if invitation.expires_at <= datetime.now(UTC):
        raise LinkGone("This invitation has expired (invitations last 7 days). Ask the store owner for a new one.")


async def _check_password(redis: Redis, user: User, password: str, client_ip: str) -> None:
    """An existing account joins with its password, under the sign-in's failure limits."""
    wait = max(await SIGNIN_PER_EMAIL.locked_for(redis, user.email), await SIGNIN_PER_IP.locked_for(redis, client_ip))
    if wait:
        raise TooManyRequests("Too many wrong passwords. Try again later.", retry_after=wait)
    if not password:
        raise ValidationFailed("Enter your password.", fields={"password": "Enter your password."})
    if not user.is_active or not verify_password(user.password_hash, password):
        await SIGNIN_PER_EMAIL.record_failure(redis, user.email)
        await SIGNIN_PER_IP.record_failure(redis, client_ip)
        raise ValidationFailed("That password is not right.", fields={"password": "Wrong password."})
    await SIGNIN_PER_EMAIL.clear(redis, user.email)
