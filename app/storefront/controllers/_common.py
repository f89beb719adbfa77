"""What every shop page shares: the cart cookie, the signed-in shopper, the page context."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request
from litestar.di import NamedDependency
from litestar.params import URLEncodedBody
from sqlalchemy.ext.asyncio import AsyncSession

from app.cart.services import CartService
from app.stores.models import Store

DbSession = NamedDependency[AsyncSession]
FormData = URLEncodedBody[dict[str, str]]
CART_COOKIE = "till_cart"


def cart_token(request: Request[Any, Any, Any]) -> str | None:
    return request.cookies.get(CART_COOKIE)


def customer_key(store: Store) -> str:
    return f"customer:{store.id}"


def customer_id_of(request: Request[Any, Any, Any], store: Store) -> uuid.UUID | None:
    session = request.scope.get("session")
    raw = session.get(customer_key(store)) if isinstance(session, dict) else None
    return uuid.UUID(raw) if raw else None


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


async def shop_context(request: Request[Any, Any, Any], db_session: AsyncSession, store: Store) -> dict[str, Any]:
    cart = await CartService(db_session, store.id, store.currency).view(cart_token(request))
    return {"store": store, "cart": cart, "customer_id": customer_id_of(request, store)}
