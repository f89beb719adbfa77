"""Request and response types of /api/v1/admin/staff. An invitation's secret never appears in any of them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from app.core.rbac import Role
from app.stores.team import Member, PendingInvitation

RoleName = Annotated[str, msgspec.Meta(description="A staff role", extra_json_schema={"enum": [r.value for r in Role]})]


class MemberOut(msgspec.Struct):
    user_id: uuid.UUID
    name: str
    email: str
    role: Role
    active: bool  # false: deactivated in this store (no sign-in, no API tokens of theirs)
    deactivated_at: datetime | None
    last_signed_in_at: datetime | None
    joined_at: datetime

    @classmethod
    def of(cls, member: Member) -> MemberOut:
        return cls(
            user_id=member.user_id,
            name=member.name,
            email=member.email,
            role=member.role,
            active=member.active,
            deactivated_at=member.deactivated_at,
            last_signed_in_at=member.last_signed_in_at,
            joined_at=member.joined_at,
        )


class InvitationOut(msgspec.Struct):
    id: uuid.UUID
    email: str
    role: Role
    created_at: datetime
    expires_at: datetime
    expired: bool
    # The invitation e-mail's delivery: pending | sending | sent | retrying | failed (none: no e-mail found).
    delivery_status: str
    delivery_error: str

    @classmethod
    def of(cls, invitation: PendingInvitation) -> InvitationOut:
        return cls(
            id=invitation.id,
            email=invitation.email,
            role=invitation.role,
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
            expired=invitation.expired,
            delivery_status=invitation.delivery,
            delivery_error=invitation.delivery_error,
        )


class StaffOut(msgspec.Struct):
    members: list[MemberOut]
    invitations: list[InvitationOut]  # neither accepted nor withdrawn; expired ones are marked


class InvitationCreate(msgspec.Struct, forbid_unknown_fields=True):
    email: str
    role: RoleName = Role.STAFF.value


class MemberUpdate(msgspec.Struct, forbid_unknown_fields=True):
    role: RoleName | None = None
    active: bool | None = None  # false deactivates (sessions end, their API tokens here are revoked)


class PasswordResetSent(msgspec.Struct):
    user_id: uuid.UUID
    expires_at: datetime  # the link works once, until then
