"""/staff/team (owners): members, invitations, roles, deactivation, reset links; and the public link pages
/invite/{secret} (join a store) and /reset/{secret} (set a new password)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, URLEncodedBody
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.core.errors import TillError
from app.core.passwords import MIN_PASSWORD_LENGTH
from app.core.rbac import Principal, Role, principal_of, require_role
from app.stores.access import SESSION_STORE, SESSION_USER
from app.stores.team import LinkGone, LinkInvalid, TeamService
from app.stores.team_links import StaffLinks

FormData = URLEncodedBody[dict[str, str]]
DbSession = NamedDependency[AsyncSession]
PAGE = "/staff/team"


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _team(request: Request[Any, Any, Any], db_session: AsyncSession) -> tuple[Principal, TeamService]:
    me = principal_of(request)
    return me, TeamService(db_session, me.store_id, public_url=_settings(request).public_url)


def _form_errors(exc: TillError, row_key: str | None = None) -> dict[str, str]:
    """Errors for the page: a row's action shows its reason in that row only (its fields are not the invite
    form's); a form shows the reason on top and each field's next to it."""
    if row_key:
        return {row_key: exc.detail}
    return {"form": exc.detail, **exc.fields}


class TeamPagesController(Controller):
    path = PAGE
    guards = [require_role]
    opt = {"min_role": Role.OWNER}
    include_in_schema = False

    @get("/")
    async def team_page(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        return await self._page(request, db_session)

    async def _page(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        me, team = _team(request, db_session)
        settings = _settings(request)
        context = {
            "me": me,
            "team": await team.team(),
            "roles": list(Role),
            "errors": errors or {},
            "values": values or {"role": Role.STAFF.value},
            "outbox_page": not settings.smtp_url and not settings.is_production,
        }
        return Template("staff/team.html", context=context, status_code=status_code)

    async def _refused(
        self, request: Request[Any, Any, Any], db_session: AsyncSession, exc: TillError, row_key: str | None = None
    ) -> Template:
        """The page again with the reason inline. The request's transaction rolls back (a 4xx), so the page is
        read in a fresh one: nothing of the refused change shows or stays."""
        await db_session.rollback()
        return await self._page(request, db_session, errors=_form_errors(exc, row_key), status_code=exc.status_code)

    @post("/invitations", status_code=303, media_type=MediaType.HTML)
    async def invite(
        self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me, team = _team(request, db_session)
        values = {"email": data.get("email", ""), "role": data.get("role", "")}
        try:
            invitation = await team.invite(me, email=values["email"], role=values["role"])
        except TillError as exc:
            await db_session.rollback()
            return await self._page(
                request, db_session, errors=_form_errors(exc), values=values, status_code=exc.status_code
            )
        flash(request, f"Invitation sent to {invitation.email}.", category="success")
        return Redirect(PAGE, status_code=303)

    @post("/invitations/{invitation_id:uuid}/withdraw", status_code=303, media_type=MediaType.HTML)
    async def withdraw(
        self, request: Request[Any, Any, Any], invitation_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Template | Redirect:
        me, team = _team(request, db_session)
        invitation = await team.invitation(invitation_id)  # 404 for another store's
        try:
            await team.withdraw(me, invitation_id)
        except TillError as exc:
            return await self._refused(request, db_session, exc, f"invitation:{invitation_id}")
        flash(request, f"Invitation of {invitation.email} withdrawn.", category="success")
        return Redirect(PAGE, status_code=303)

    @post("/members/{user_id:uuid}/role", status_code=303, media_type=MediaType.HTML)
    async def change_role(
        self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me, team = _team(request, db_session)
        await team.member(user_id)  # 404 for someone not in this store
        try:
            member = await team.change_role(me, user_id, data.get("role", ""))
        except TillError as exc:
            return await self._refused(request, db_session, exc, f"member:{user_id}")
        flash(request, f"{member.name} is {member.role.value} now.", category="success")
        return Redirect(PAGE, status_code=303)

    @post("/members/{user_id:uuid}/deactivate", status_code=303, media_type=MediaType.HTML)
    async def deactivate(
        self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Template | Redirect:
        me, team = _team(request, db_session)
        await team.member(user_id)
        try:
            member = await team.deactivate(me, user_id)
        except TillError as exc:
            return await self._refused(request, db_session, exc, f"member:{user_id}")
        flash(request, f"{member.name} is deactivated: signed out, and their API tokens revoked.", category="success")
        return Redirect("/signin" if user_id == me.user_id else PAGE, status_code=303)

    @post("/members/{user_id:uuid}/reactivate", status_code=303, media_type=MediaType.HTML)
    async def reactivate(
        self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Redirect:
        me, team = _team(request, db_session)
        member = await team.reactivate(me, user_id)
        flash(request, f"{member.name} can sign in again.", category="success")
        return Redirect(PAGE, status_code=303)

    @post("/members/{user_id:uuid}/password-reset", status_code=303, media_type=MediaType.HTML)
    async def password_reset(
        self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Template | Redirect:
        me, team = _team(request, db_session)
        member = await team.member(user_id)
        try:
            await team.send_password_reset(me, user_id)
        except TillError as exc:
            return await self._refused(request, db_session, exc, f"member:{user_id}")
        flash(request, f"A link to set a new password is on its way to {member.email}.", category="success")
        return Redirect(PAGE, status_code=303)


class StaffLinksController(Controller):
    """Public pages opened from an e-mailed link. A bad link answers 404, a used/expired/withdrawn one 410."""

    path = "/"
    include_in_schema = False

    @get("/invite/{secret:str}")
    async def invitation_page(self, secret: FromPath[str], db_session: DbSession) -> Template:
        try:
            invitation = await StaffLinks(db_session).open_invitation(secret)
        except (LinkInvalid, LinkGone) as exc:
            return _link_problem("auth/invite.html", exc)
        return Template("auth/invite.html", context=_invite_context(secret, invitation, {}, {}))

    @post("/invite/{secret:str}", status_code=303, media_type=MediaType.HTML)
    async def accept(
        self, request: Request[Any, Any, Any], secret: FromPath[str], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        redis: Redis = request.app.state.redis
        links = StaffLinks(db_session)
        try:
            joined = await links.accept_invitation(
                redis,
                secret,
                name=data.get("name", ""),
                password=data.get("password", ""),
                password_confirm=data.get("password_confirm", ""),
                client_ip=_client_ip(request),
            )
        except (LinkInvalid, LinkGone) as exc:
            return _link_problem("auth/invite.html", exc)
        except TillError as exc:
            await db_session.rollback()
            try:
                invitation = await StaffLinks(db_session).open_invitation(secret)
            except (LinkInvalid, LinkGone) as gone:
                return _link_problem("auth/invite.html", gone)
            values = {"name": data.get("name", "")}
            context = _invite_context(secret, invitation, values, _form_errors(exc))
            return Template("auth/invite.html", context=context, status_code=exc.status_code)
        request.set_session({SESSION_USER: str(joined.user_id), SESSION_STORE: str(joined.store_id)})
        flash(request, "Welcome to the team.", category="success")
        return Redirect("/staff", status_code=303)

    @get("/reset/{secret:str}")
    async def reset_page(self, secret: FromPath[str], db_session: DbSession) -> Template:
        try:
            reset = await StaffLinks(db_session).open_reset(secret)
        except (LinkInvalid, LinkGone) as exc:
            return _link_problem("auth/reset.html", exc)
        return Template("auth/reset.html", context=_reset_context(secret, reset, {}))

    @post("/reset/{secret:str}", status_code=303, media_type=MediaType.HTML)
    async def reset(
        self, request: Request[Any, Any, Any], secret: FromPath[str], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        redis: Redis = request.app.state.redis
        try:
            await StaffLinks(db_session).reset_password(
                redis, secret, password=data.get("password", ""), password_confirm=data.get("password_confirm", "")
            )
        except (LinkInvalid, LinkGone) as exc:
            return _link_problem("auth/reset.html", exc)
        except TillError as exc:
            await db_session.rollback()
            try:
                reset = await StaffLinks(db_session).open_reset(secret)
            except (LinkInvalid, LinkGone) as gone:
                return _link_problem("auth/reset.html", gone)
            return Template(
                "auth/reset.html", context=_reset_context(secret, reset, _form_errors(exc)), status_code=exc.status_code
            )
        request.set_session({})
        flash(request, "Your password is changed. Sign in with it.", category="success")
        return Redirect("/signin", status_code=303)


def _link_problem(template: str, exc: TillError) -> Template:
    context = {"problem": {"title": exc.title, "detail": exc.detail}, "errors": {}, "values": {}}
    return Template(template, context=context, status_code=exc.status_code)


def _invite_context(secret: str, invitation: object, values: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    return {
        "secret": secret,
        "invitation": invitation,
        "values": values,
        "errors": errors,
        "min_password": MIN_PASSWORD_LENGTH,
    }


def _reset_context(secret: str, reset: object, errors: dict[str, str]) -> dict[str, Any]:
    return {"secret": secret, "reset": reset, "values": {}, "errors": errors, "min_password": MIN_PASSWORD_LENGTH}
