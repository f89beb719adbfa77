"""A store's team, for its owners: invitations, roles, deactivation, password-reset links. The public side of
the links (accepting an invitation, setting a new password) is in team_links.py.

Rules kept here:
- An invitation or reset link carries a random secret; only its SHA-256 is stored. Invitations last 7 days,
  reset links 1 hour; each works once (the row is locked while it is used, so two concurrent uses make one).
- The last active owner of a store can be neither demoted nor deactivated.
- Deactivating someone ends their sessions in that store at once (app/stores/services.py ignores deactivated
  memberships) and revokes the API tokens they issued there, in the same transaction.
- Every change is in the audit trail (``staff.*``).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.errors import Conflict, NotFound, TillError, ValidationFailed
from app.core.passwords import MIN_PASSWORD_LENGTH
from app.core.rbac import Principal, Role
from app.core.tenancy import bind_store
from app.notifications.models import OutboundMessage
from app.notifications.services import latest_by_reference, queue_email, render_email
from app.stores.models import Membership, PasswordReset, StaffInvitation, Store, User
from app.stores.services import ApiTokenService, is_valid_email, normalise_email

INVITATION_TTL = timedelta(days=7)
RESET_TTL = timedelta(hours=1)
INVITATION_PURPOSE = "staff_invitation"
RESET_PURPOSE = "password_reset"


class LinkInvalid(NotFound):
    """No such link: unknown, mistyped or tampered with."""

    title = "Link not found"


class LinkGone(TillError):
    """The link was real but no longer works: expired, withdrawn or used."""

    status_code = 410
    title = "Link no longer valid"
    code = "gone"


def link_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise ValidationFailed(f"Choose a role: {roles}.", fields={"role": f"Choose one of: {roles}."}) from None


def new_password_fields(password: str, confirm: str) -> dict[str, str]:
    """Field errors of a new password and its confirmation (empty when fine)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return {"password": f"Use at least {MIN_PASSWORD_LENGTH} characters."}
    if password != confirm:
        return {"password_confirm": "The two passwords differ."}
    return {}


@dataclass(frozen=True)
class Member:
    user_id: uuid.UUID
    name: str
    email: str
    role: Role
    active: bool
    deactivated_at: datetime | None
    last_signed_in_at: datetime | None
    joined_at: datetime

    @classmethod
    def of(cls, membership: Membership) -> Member:
        return cls(
            user_id=membership.user_id,
            name=membership.user.name,
            email=membership.user.email,
            role=Role(membership.role),
            active=membership.deactivated_at is None,
            deactivated_at=membership.deactivated_at,
            last_signed_in_at=membership.user.last_signed_in_at,
            joined_at=membership.created_at,
        )


@dataclass(frozen=True)
class PendingInvitation:
    id: uuid.UUID
    email: str
    role: Role
    expires_at: datetime
    created_at: datetime
    expired: bool
    delivery: str  # the invitation e-mail's status: pending | sending | sent | retrying | failed
    delivery_error: str

    @classmethod
    def of(cls, invitation: StaffInvitation, message: OutboundMessage | None, now: datetime) -> PendingInvitation:
        return cls(
            id=invitation.id,
            email=invitation.email,
            role=Role(invitation.role),
            expires_at=invitation.expires_at,
            created_at=invitation.created_at,
            expired=invitation.expires_at <= now,
            delivery=message.status if message else "none",
            delivery_error=message.last_error if message else "",
        )


@dataclass(frozen=True)
class Team:
    members: list[Member]
    invitations: list[PendingInvitation]
    activity: list[audit.AuditEntry]


def _actor_id(actor: Principal | None) -> uuid.UUID | None:
    return actor.user_id if actor else None


class TeamService:
    """The team of one store, for its owners (pages and the admin API). The session is bound to the store."""

    def __init__(self, session: AsyncSession, store_id: uuid.UUID, *, public_url: str = "") -> None:
        self.session = session
        self.store_id = store_id
        self.public_url = public_url.rstrip("/")
        bind_store(session, store_id)

    # Reading

    async def team(self) -> Team:
        return Team(await self.members(), await self.invitations(), await self.activity())

    async def members(self) -> list[Member]:
        rows = await self.session.scalars(select(Membership).order_by(Membership.created_at))
        members = [Member.of(m) for m in rows]
        return sorted(members, key=lambda m: (not m.active, -m.role.rank, m.name.lower()))

    async def member(self, user_id: uuid.UUID) -> Member:
        return Member.of(await self._membership(user_id))

    async def invitations(self) -> list[PendingInvitation]:
        """Invitations neither accepted nor withdrawn (expired ones too, marked), newest first."""
        rows = list(
            await self.session.scalars(
                select(StaffInvitation)
                .where(StaffInvitation.accepted_at.is_(None), StaffInvitation.revoked_at.is_(None))
                .order_by(StaffInvitation.created_at.desc())
            )
        )
        messages = await latest_by_reference(self.session, INVITATION_PURPOSE, [str(r.id) for r in rows])
        now = datetime.now(UTC)
        return [PendingInvitation.of(r, messages.get(str(r.id)), now) for r in rows]

    async def invitation(self, invitation_id: uuid.UUID) -> PendingInvitation:
        invitation = await self.session.get(StaffInvitation, invitation_id)
        if invitation is None or invitation.store_id != self.store_id:
            raise NotFound("No such invitation.")
        messages = await latest_by_reference(self.session, INVITATION_PURPOSE, [str(invitation.id)])
        return PendingInvitation.of(invitation, messages.get(str(invitation.id)), datetime.now(UTC))

    async def activity(self, limit: int = 20) -> list[audit.AuditEntry]:
        return await audit.recent(self.session, prefix="staff.", limit=limit)

    # Invitations

    async def invite(self, actor: Principal | None, *, email: str, role: Role | str) -> PendingInvitation:
        """Invite ``email`` with ``role``: a 7-day, single-use link sent by e-mail. A pending invitation for the
        same address is replaced (withdrawn)."""
        email = normalise_email(email)
        fields: dict[str, str] = {}
        if not is_valid_email(email) or len(email) > 254:
            fields["email"] = "Enter a valid e-mail address."
        try:
            role = parse_role(role)
        except ValidationFailed as exc:
            fields.update(exc.fields)
        if fields:
            raise ValidationFailed("Check the highlighted fields.", fields=fields)
        role = Role(role)
        existing = await self.session.scalar(select(Membership).join(User).where(User.email == email))
        if existing is not None and existing.deactivated_at is None:
            raise Conflict(f"{email} is on the team already.", fields={"email": "Already a member of this store."})
        if existing is not None:
            raise Conflict(
                f"{email} is a deactivated member of this store: reactivate them instead.",
                fields={"email": "A deactivated member: reactivate them in the list below."},
            )
        now = datetime.now(UTC)
        replaced = await self.session.execute(
            update(StaffInvitation)
            .where(
                StaffInvitation.email == email,
                StaffInvitation.accepted_at.is_(None),
                StaffInvitation.revoked_at.is_(None),
            )
            .values(revoked_at=now)
            .returning(StaffInvitation.id)
        )
        replaced_ids = [str(i) for i in replaced.scalars()]
        secret = secrets.token_urlsafe(32)
        invitation = StaffInvitation(
            email=email,
            role=role,
            token_hash=link_hash(secret),
            invited_by_id=_actor_id(actor),
            expires_at=now + INVITATION_TTL,
        )
        self.session.add(invitation)
        await self.session.flush()
        store = await self._store()
        text, html = render_email(
            "staff_invitation",
            store_name=store.name,
            inviter=actor.display_name if actor else "The store owner",
            role=role.value,
            link=f"{self.public_url}/invite/{secret}",
            expires=invitation.expires_at.strftime("%d %b %Y %H:%M UTC"),
        )
        message = await queue_email(
            self.session,
            to=email,
            subject=f"Join {store.name} on Till",
            text=text,
            html=html,
            purpose=INVITATION_PURPOSE,
            reference=str(invitation.id),
        )
        details: dict[str, object] = {"email": email, "role": role.value}
        if replaced_ids:
            details["replaced"] = replaced_ids
        audit.record(
            self.session, actor, "staff.invited", target_type="invitation", target_id=invitation.id, details=details
        )
        return PendingInvitation.of(invitation, message, now)

    async def withdraw(self, actor: Principal | None, invitation_id: uuid.UUID) -> None:
        invitation = await self.session.scalar(
            select(StaffInvitation).where(StaffInvitation.id == invitation_id).with_for_update()
        )
        if invitation is None:
            raise NotFound("No such invitation.")
        if invitation.accepted_at is not None:
            raise Conflict("This invitation was accepted already; deactivate the member instead.")
        if invitation.revoked_at is not None:
            return  # withdrawn already: repeating it changes nothing
        invitation.revoked_at = datetime.now(UTC)
        audit.record(
            self.session,
            actor,
            "staff.invitation_withdrawn",
            target_type="invitation",
            target_id=invitation.id,
            details={"email": invitation.email},
        )

    # Members

    async def change_role(self, actor: Principal | None, user_id: uuid.UUID, role: Role | str) -> Member:
        role = parse_role(role)
        owners = await self._lock_owners()
        membership = await self._membership(user_id, lock=True)
        old = Role(membership.role)
        if old == role:
            return Member.of(membership)
        if old == Role.OWNER and membership.deactivated_at is None:
            _keep_an_owner(membership, owners, "demote")
        membership.role = role
        audit.record(
            self.session,
            actor,
            "staff.role_changed",
            target_type="user",
            target_id=user_id,
            details={"email": membership.user.email, "from": old.value, "to": role.value},
        )
        return Member.of(membership)

    async def deactivate(self, actor: Principal | None, user_id: uuid.UUID) -> Member:
        """Stop this person's access to the store at once: sessions refused, their API tokens here revoked."""
        owners = await self._lock_owners()
        membership = await self._membership(user_id, lock=True)
        if membership.deactivated_at is not None:
            return Member.of(membership)
        if Role(membership.role) == Role.OWNER:
            _keep_an_owner(membership, owners, "deactivate")
        membership.deactivated_at = datetime.now(UTC)
        revoked = await ApiTokenService.for_store(self.session, self.store_id).revoke_created_by(user_id)
        audit.record(
            self.session,
            actor,
            "staff.deactivated",
            target_type="user",
            target_id=user_id,
            details={"email": membership.user.email, "api_tokens_revoked": len(revoked)},
        )
        return Member.of(membership)

    async def reactivate(self, actor: Principal | None, user_id: uuid.UUID) -> Member:
        """Give access back (API tokens revoked at deactivation stay revoked)."""
        membership = await self._membership(user_id, lock=True)
        if membership.deactivated_at is None:
            return Member.of(membership)
        membership.deactivated_at = None
        audit.record(
            self.session,
            actor,
            "staff.reactivated",
            target_type="user",
            target_id=user_id,
            details={"email": membership.user.email},
        )
        return Member.of(membership)

    async def update_member(
        self, actor: Principal | None, user_id: uuid.UUID, *, role: Role | str | None = None, active: bool | None = None
    ) -> Member:
        """The API's PATCH: change the role and/or active state; on any refusal nothing is changed."""
        if role is None and active is None:
            raise ValidationFailed("Give a role, active, or both.", fields={"role": "Give a role or active."})
        if role is not None:
            role = parse_role(role)
        member = await self.member(user_id)
        if active is False:
            member = await self.deactivate(actor, user_id)
        if role is not None:
            member = await self.change_role(actor, user_id, role)
        if active is True:
            member = await self.reactivate(actor, user_id)
        return member

    async def send_password_reset(self, actor: Principal | None, user_id: uuid.UUID) -> PasswordReset:
        """E-mail a member a 1-hour, single-use link to set a new password."""
        membership = await self._membership(user_id)
        if membership.deactivated_at is not None:
            raise Conflict(
                f"{membership.user.name} is deactivated: reactivate them first.",
                fields={"user": "Deactivated members get no reset link."},
            )
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        reset = PasswordReset(
            user_id=user_id, token_hash=link_hash(secret), requested_by_id=_actor_id(actor), expires_at=now + RESET_TTL
        )
        self.session.add(reset)
        await self.session.flush()
        store = await self._store()
        text, html = render_email(
            "password_reset",
            person=membership.user.name,
            store_name=store.name,
            requester=actor.display_name if actor else "The store owner",
            link=f"{self.public_url}/reset/{secret}",
            expires=reset.expires_at.strftime("%d %b %Y %H:%M UTC"),
        )
        await queue_email(
            self.session,
            to=membership.user.email,
            subject=f"Set a new password for {store.name} on Till",
            text=text,
            html=html,
            purpose=RESET_PURPOSE,
            reference=str(reset.id),
        )
        audit.record(
            self.session,
            actor,
            "staff.password_reset_sent",
            target_type="user",
            target_id=user_id,
            details={"email": membership.user.email},
        )
        return reset

    async def _membership(self, user_id: uuid.UUID, *, lock: bool = False) -> Membership:
        query = select(Membership).where(Membership.user_id == user_id)
        if lock:
            query = query.with_for_update(of=Membership)
        membership = await self.session.scalar(query.execution_options(populate_existing=True))
        if membership is None:
            raise NotFound("No such team member.")
        return membership

    async def _lock_owners(self) -> list[uuid.UUID]:
        """The active owners, their rows locked (by id) before any other membership row: two owners demoting or
        deactivating each other at once are serialised (the second then sees the first's change), and every
        change locks in the same order, so they cannot deadlock."""
        return list(
            await self.session.scalars(
                select(Membership.user_id)
                .where(Membership.role == Role.OWNER, Membership.deactivated_at.is_(None))
                .order_by(Membership.id)
                .with_for_update(of=Membership)
            )
        )

    async def _store(self) -> Store:
        store = await self.session.get(Store, self.store_id)
        assert store is not None
        return store


def _keep_an_owner(membership: Membership, owners: list[uuid.UUID], action: str) -> None:
    """Refuse to leave the store without an active owner."""
    if not [u for u in owners if u != membership.user_id]:
        verb = "demoted" if action == "demote" else "deactivated"
        raise Conflict(
            f"{membership.user.name} is the store's last active owner and cannot be {verb}. "
            "Make someone else an owner first.",
            fields={"role" if action == "demote" else "active": "The last active owner."},
        )
