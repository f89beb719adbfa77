"""Sign-in, the staff home, store settings and API tokens: pages and /api/v1 routes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from litestar import Controller, MediaType, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, URLEncodedBody
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import TillError, TooManyRequests, ValidationFailed
from app.core.rbac import Principal, Role, principal_of, require_role
from app.stores.access import SESSION_STORE, SESSION_USER
from app.stores.changes import apply_store_changes
from app.stores.schemas import ApiTokenCreate, ApiTokenIssued, ApiTokenOut, StoreOut, StoreUpdate
from app.stores.services import ApiTokenService, StaffAccessService, StoreService

FormData = URLEncodedBody[dict[str, str]]
ISSUED_TOKEN_KEY = "issued_api_token"  # noqa: S105  (a session key name)
DbSession = NamedDependency[AsyncSession]


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/staff"


def _client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _major(minor: int | None) -> str:
    return "" if minor is None else f"{minor // 100}.{minor % 100:02d}"


class SignInController(Controller):
    path = "/"
    include_in_schema = False

    @get("/signin", name="signin")
    async def signin_page(self, request: Request[Any, Any, Any], next: FromQuery[str | None] = None) -> Template:
        return Template("auth/signin.html", context={"next": _safe_next(next), "values": {}, "errors": {}})

    @post("/signin", status_code=303, media_type=MediaType.HTML)
    async def signin(
        self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        redis: Redis = request.app.state.redis
        values = {"email": data.get("email", "")}
        target = _safe_next(data.get("next"))
        try:
            result = await StaffAccessService(db_session).sign_in(
                redis, data.get("email", ""), data.get("password", ""), _client_ip(request)
            )
        except (ValidationFailed, TooManyRequests) as exc:
            errors = dict(exc.fields) or {"form": exc.detail}
            errors.setdefault("form", exc.detail)
            status = exc.status_code
            return Template(
                "auth/signin.html",
                context={"next": target, "values": values, "errors": errors},
                status_code=status,
            )
        request.set_session({SESSION_USER: str(result.user_id), SESSION_STORE: str(result.store_id)})
        return Redirect(target, status_code=303)

    @post("/signout", status_code=303)
    async def signout(self, request: Request[Any, Any, Any]) -> Redirect:
        request.set_session({})
        flash(request, "You are signed out.", category="info")
        return Redirect("/signin", status_code=303)


@dataclass(frozen=True)
class Section:
    title: str
    href: str
    description: str
    min_role: Role


def sections_for(me: Principal) -> list[Section]:
    """The staff home's tiles this person's role may open."""
    return [
        Section(s.title, s.href.format(slug=me.store_slug), s.description, s.min_role)
        for s in STAFF_SECTIONS
        if me.can(s.min_role)
    ]


STAFF_SECTIONS = (
    Section("Board", "/staff/board", "Open orders by status, live.", Role.CASHIER),
    Section("Orders", "/staff/orders", "Every order: status, payment, fulfilment, history.", Role.CASHIER),
    Section("Products", "/staff/products", "Catalog, variants, prices and stock.", Role.MANAGER),
    Section("Payments", "/staff/payments", "Every payment with filters and totals.", Role.MANAGER),
    Section("Refund approvals", "/staff/refunds", "Refunds over the store's limit, waiting for you.", Role.MANAGER),
    Section("Disputes", "/staff/disputes", "Chargebacks: the evidence pack and the answer.", Role.MANAGER),
    Section("Promotions", "/staff/promotions", "Codes and automatic discounts, their limits and usage.", Role.MANAGER),
    Section("Payouts", "/staff/payouts", "Where the money goes: onboarding and payouts.", Role.OWNER),
    Section("Store settings", "/staff/settings", "Details, hours, tax, shipping, payments.", Role.MANAGER),
    Section("Team", "/staff/team", "Invite colleagues, change roles, deactivate, reset passwords.", Role.OWNER),
    Section("API tokens", "/staff/api-tokens", "Keys for integrations using /api/v1.", Role.MANAGER),
    Section("Webhooks", "/staff/webhooks", "Provider events: search, failures and replay.", Role.MANAGER),
    Section("Order ingestion", "/staff/ingestion", "Orders sent by other channels, and the secret.", Role.MANAGER),
    Section("API reference", "/schema/openapi.json", "The OpenAPI description of /api/v1.", Role.MANAGER),
    Section("Storefront", "/s/{slug}", "What shoppers see.", Role.CASHIER),
    Section("Point of sale", "/pos", "The till at the counter: cash and card, offline too.", Role.CASHIER),
    Section("Registers", "/staff/registers", "Tills, their shifts and card readers; your approval PIN.", Role.MANAGER),
    Section("POS review", "/staff/pos/review", "Register sales that synced with something to check.", Role.MANAGER),
)


class StaffController(Controller):
    path = "/staff"
    guards = [require_role]
    include_in_schema = False

    @post("/stores/{store_id:uuid}/switch", status_code=303)
    async def switch_store(self, request: Request[Any, Any, Any], store_id: FromPath[uuid.UUID]) -> Redirect:
        me = principal_of(request)
        if all(s.id != store_id for s in me.stores):
            flash(request, "You are not a member of that store.", category="error")
            return Redirect("/staff", status_code=303)
        request.set_session({SESSION_USER: str(me.user_id), SESSION_STORE: str(store_id)})
        return Redirect("/staff", status_code=303)

    @get("/api-tokens", opt={"min_role": Role.MANAGER})
    async def tokens_page(self, request: Request[Any, Any, Any], db_session: DbSession) -> Template:
        # A new token's secret waits in the server-side session for exactly one page view.
        issued = request.session.pop(ISSUED_TOKEN_KEY, None) if isinstance(request.session, dict) else None
        return await self._tokens_page(request, db_session, issued=issued)

    async def _tokens_page(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        *,
        issued: str | None = None,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        me = principal_of(request)
        tokens = await ApiTokenService.for_store(db_session, me.store_id).list_tokens()
        return Template(
            "staff/api_tokens.html",
            context={
                "me": me,
                "tokens": tokens,
                "roles": list(Role),
                "issued": issued,
                "errors": errors or {},
                "values": values or {"role": Role.STAFF.value},
            },
            status_code=status_code,
        )

    @post("/api-tokens", opt={"min_role": Role.OWNER}, status_code=303, media_type=MediaType.HTML)
    async def create_token(
        self, request: Request[Any, Any, Any], data: FormData, db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        service = ApiTokenService.for_store(db_session, me.store_id)
        try:
            _, secret = await service.issue(name=data.get("name", ""), role=data.get("role", ""), created_by=me.user_id)
        except ValidationFailed as exc:
            return await self._tokens_page(
                request, db_session, errors={"form": exc.detail, **exc.fields}, values=data, status_code=422
            )
        request.session[ISSUED_TOKEN_KEY] = secret
        return Redirect("/staff/api-tokens", status_code=303)

    @post("/api-tokens/{token_id:uuid}/revoke", opt={"min_role": Role.OWNER}, status_code=303)
    async def revoke_token(
        self, request: Request[Any, Any, Any], token_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Redirect:
        me = principal_of(request)
        token = await ApiTokenService.for_store(db_session, me.store_id).revoke(token_id)
        flash(request, f"Token “{token.name}” revoked.", category="success")
        return Redirect("/staff/api-tokens", status_code=303)


class StoreApiController(Controller):
    path = "/api/v1"
    guards = [require_role]
    tags = ["store"]

    @get("/store", summary="The store this token belongs to")
    async def get_store(self, request: Request[Principal, Any, Any], db_session: DbSession) -> StoreOut:
        me = principal_of(request)
        return StoreOut.of(await StoreService(db_session, me.store_id).get())

    @patch(
        "/store",
        opt={"min_role": Role.MANAGER},
        summary="Change the store's settings",
        description="Name, time zone, board delay, refund approvals, details (address, contact, colour), tax, "
        "shipping, opening hours; with the owner role also currency and country (until the first order) and "
        "live. Omitted fields stay. Every bad field is named at once (``tax.rules.jurisdictions.0.country``) "
        "and nothing is written unless all of it is right.",
    )
    async def update_store(
        self, request: Request[Principal, Any, Any], data: JSONBody[StoreUpdate], db_session: DbSession
    ) -> StoreOut:
        return StoreOut.of(await apply_store_changes(db_session, principal_of(request), data))

    @get("/api-tokens", opt={"min_role": Role.MANAGER}, tags=["api tokens"], summary="List API tokens")
    async def list_tokens(self, request: Request[Principal, Any, Any], db_session: DbSession) -> list[ApiTokenOut]:
        me = principal_of(request)
        return [ApiTokenOut.of(t) for t in await ApiTokenService.for_store(db_session, me.store_id).list_tokens()]

    @post("/api-tokens", opt={"min_role": Role.OWNER}, tags=["api tokens"], summary="Issue an API token")
    async def issue_token(
        self, request: Request[Principal, Any, Any], data: JSONBody[ApiTokenCreate], db_session: DbSession
    ) -> ApiTokenIssued:
        me = principal_of(request)
        token, secret = await ApiTokenService.for_store(db_session, me.store_id).issue(
            name=data.name, role=data.role, created_by=me.user_id
        )
        return ApiTokenIssued(token=ApiTokenOut.of(token), secret=secret)

    @get(
        "/api-tokens/{token_id:uuid}",
        opt={"min_role": Role.MANAGER},
        tags=["api tokens"],
        summary="One API token",
    )
    async def get_token(
        self, request: Request[Principal, Any, Any], token_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> ApiTokenOut:
        me = principal_of(request)
        return ApiTokenOut.of(await ApiTokenService.for_store(db_session, me.store_id).get_token(token_id))

    @delete(
        "/api-tokens/{token_id:uuid}",
        opt={"min_role": Role.OWNER},
        tags=["api tokens"],
        summary="Revoke an API token",
        status_code=204,
    )
    async def revoke_token(
        self, request: Request[Principal, Any, Any], token_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> None:
        me = principal_of(request)
        await ApiTokenService.for_store(db_session, me.store_id).revoke(token_id)


__all__ = ["SignInController", "StaffController", "StoreApiController", "TillError"]
