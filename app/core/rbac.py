"""Staff roles and the one guard that checks them."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from app.core.errors import NotSignedIn, PermissionDenied


class Role(enum.StrEnum):
    """Staff roles, lowest to highest. A role may do everything the roles below it may."""

    CASHIER = "cashier"
    STAFF = "staff"
    MANAGER = "manager"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


@dataclass(frozen=True)
class StoreRef:
    id: uuid.UUID
    slug: str
    name: str
    role: Role


@dataclass(frozen=True)
class Principal:
    """Who is acting, for which store, with which role."""

    kind: Literal["staff", "token"]
    store_id: uuid.UUID
    store_slug: str
    store_name: str
    currency: str
    timezone: str
    role: Role
    display_name: str
    user_id: uuid.UUID | None = None
    email: str | None = None
    token_id: uuid.UUID | None = None
    stores: tuple[StoreRef, ...] = field(default=())

    def can(self, role: Role | str) -> bool:
        return self.role.at_least(Role(role))

    @property
    def idempotency_scope(self) -> str:
        return f"token:{self.token_id}" if self.token_id else f"user:{self.user_id}"


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise NotSignedIn("Sign in to continue.")
    return user


async def require_role(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Guard for staff pages and the API: signed in, and at least ``opt={"min_role": ...}``.

    A coroutine on purpose: Litestar runs a plain-function guard in a worker thread (measured: a thread
    hop on every API call)."""
    principal = principal_of(connection)
    min_role = Role(handler.opt.get("min_role", Role.CASHIER))
    if not principal.can(min_role):
        raise PermissionDenied(f"This needs the {min_role.value} role or higher.")
