"""/api/v1/admin/staff: the team for integrations (owner tokens). Rules live in app/stores/team.py."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.core.rbac import Principal, Role, principal_of, require_role
from app.stores.team import TeamService
from app.stores.team_schemas import (
    InvitationCreate,
    InvitationOut,
    MemberOut,
    MemberUpdate,
    PasswordResetSent,
    StaffOut,
)

DbSession = NamedDependency[AsyncSession]


def _team(request: Request[Any, Any, Any], db_session: AsyncSession) -> tuple[Principal, TeamService]:
    me = principal_of(request)
    settings: Settings = request.app.state.settings
    return me, TeamService(db_session, me.store_id, public_url=settings.public_url)


class TeamApiController(Controller):
    path = "/api/v1/admin/staff"
    guards = [require_role]
    opt = {"min_role": Role.OWNER}
    tags = ["staff"]

    @get("/", summary="List the team: members and pending invitations")
    async def list_staff(self, request: Request[Principal, Any, Any], db_session: DbSession) -> StaffOut:
        _, team = _team(request, db_session)
        return StaffOut(
            members=[MemberOut.of(m) for m in await team.members()],
            invitations=[InvitationOut.of(i) for i in await team.invitations()],
        )

    @post(
        "/invitations",
        summary="Invite someone by e-mail",
        description="Sends a single-use link valid for 7 days; a pending invitation for the same address is "
        "replaced. 409 when the address is a member already. The link's secret is never returned.",
        status_code=201,
    )
    async def invite(
        self, request: Request[Principal, Any, Any], data: JSONBody[InvitationCreate], db_session: DbSession
    ) -> InvitationOut:
        me, team = _team(request, db_session)
        return InvitationOut.of(await team.invite(me, email=data.email, role=data.role))

    @delete("/invitations/{invitation_id:uuid}", summary="Withdraw an invitation", status_code=204)
    async def withdraw(
        self, request: Request[Principal, Any, Any], invitation_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> None:
        me, team = _team(request, db_session)
        await team.withdraw(me, invitation_id)

    @patch(
        "/{user_id:uuid}",
        summary="Change a member's role, or deactivate / reactivate them",
        description="`active: false` ends their sessions in this store at once and revokes the API tokens they "
        "issued here. The store's last active owner can be neither demoted nor deactivated (409).",
    )
    async def update_member(
        self,
        request: Request[Principal, Any, Any],
        user_id: FromPath[uuid.UUID],
        data: JSONBody[MemberUpdate],
        db_session: DbSession,
    ) -> MemberOut:
        me, team = _team(request, db_session)
        return MemberOut.of(await team.update_member(me, user_id, role=data.role, active=data.active))

    @post(
        "/{user_id:uuid}/password-reset",
        summary="E-mail a member a link to set a new password",
        description="The link works once, for one hour. Answers 202: the e-mail is sent by a worker.",
        status_code=202,
    )
    async def password_reset(
        self, request: Request[Principal, Any, Any], user_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> PasswordResetSent:
        me, team = _team(request, db_session)
        reset = await team.send_password_reset(me, user_id)
        return PasswordResetSent(user_id=user_id, expires_at=reset.expires_at)
