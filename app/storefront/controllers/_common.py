"""What every shop page shares: the cart cookie, the signed-in shopper, the page context."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import URLEncodedBody
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.cart.services import CartService, CartView
from app.core import pg
from app.core.errors import TillError
from app.core.ratelimit import FailureLimit
from app.core.rbac import Principal
from app.promotions.engine import normalise_code
from app.promotions.pricing import price_cart
from app.shipping.providers import BuiltinShipping
from app.stored_value.loyalty.points import cart_points
from app.stores.details import Profile, is_live
from app.stores.hours import OpenStatus, hours_of, next_change
from app.stores.models import Store
from app.stores.services import store_by_slug

DbSession = NamedDependency[AsyncSession]
FormData = URLEncodedBody[dict[str, str]]
CART_COOKIE = "till_cart"


class StoreNotOpen(TillError):
    """The store exists but has not gone live: shoppers see "opening soon" (app/storefront/controllers)."""

    status_code = 409
    title = "Opening soon"
    code = "store_not_live"

    def __init__(self, store: Store) -> None:
        super().__init__(f"{store.name} is not open yet.")
        self.store = store


async def shop_store(request: Request[Any, Any, Any], db_session: AsyncSession, slug: str) -> Store:
    """The store a shop page is for. Before it goes live only its own staff see it (a preview); shoppers
    get the "opening soon" page."""
    store = await store_by_slug(db_session, slug)
    if not is_live(store):
        viewer = request.scope.get("user")
        if not (isinstance(viewer, Principal) and viewer.store_id == store.id):
            raise StoreNotOpen(store)
    return store


def opening_soon_handler(request: Request[Any, Any, Any], exc: StoreNotOpen) -> Response[Any]:
    """Shoppers of a store that is not live yet: a page with its name, logo and address (200 for a GET, so a
    shared link shows a friendly page; 409 for anything that would change a cart or place an order)."""
    status = 200 if request.method in ("GET", "HEAD") else 409
    return Template(
        "storefront/opening_soon.html",
        context={"store": exc.store, "profile": Profile.of(exc.store.settings)},
        status_code=status,
        headers={"cache-control": "no-store"},
    )


def cart_token(request: Request[Any, Any, Any]) -> str | None:
    return request.cookies.get(CART_COOKIE)


def customer_key(store: Store) -> str:
    return f"customer:{store.id}"


def customer_id_of(request: Request[Any, Any, Any], store: Store) -> uuid.UUID | None:
    session = request.scope.get("session")
    raw = session.get(customer_key(store)) if isinstance(session, dict) else None
    return uuid.UUID(raw) if raw else None


def promo_key(store: Store) -> str:
    return f"promo:{store.id}"


def promo_codes(request: Request[Any, Any, Any], store: Store) -> tuple[str, ...]:
    """The code the shopper applied in this store (kept in their session until the order is placed)."""
    session = request.scope.get("session")
    raw = session.get(promo_key(store)) if isinstance(session, dict) else None
    return (str(raw),) if raw else ()


def set_promo_code(request: Request[Any, Any, Any], store: Store, code: str | None) -> None:
    session = dict(request.session) if isinstance(request.scope.get("session"), dict) else {}
    if code:
        session[promo_key(store)] = normalise_code(code)
    else:
        session.pop(promo_key(store), None)
    request.set_session(session)


# Refused promotion codes per client address and store: a shopper mistyping a few times is fine; trying codes
# one after another to find one that works is not.
CODE_GUESSES = FailureLimit("promo-code", limit=20, window_s=15 * 60)
TOO_MANY_CODES = "Too many codes tried. Try again in a few minutes."


def _code_subject(request: Request[Any, Any, Any], store: Store) -> str:
    return f"{store.id}:{request.client.host if request.client else 'unknown'}"


async def code_tries_left(request: Request[Any, Any, Any], store: Store) -> bool:
    """False while this address has had too many codes refused in this store."""
    return not await CODE_GUESSES.locked_for(request.app.state.redis, _code_subject(request, store))


async def code_refused(request: Request[Any, Any, Any], store: Store) -> None:
    await CODE_GUESSES.record_failure(request.app.state.redis, _code_subject(request, store))


async def cart_promotions(
    request: Request[Any, Any, Any], db_session: AsyncSession, store: Store, cart: CartView
) -> dict[str, Any]:
    """The cart page's promotions: ``promo`` (the automatic ones and the shopper's code on each line; delivery is
    not chosen yet), ``code`` (the code kept in the session) and ``code_error`` (why it does not apply now); and
    the points the goods after discounts would earn (``loyalty``, ``earn_points``: app/stored_value/loyalty)."""
    codes = promo_codes(request, store)
    customer_id = customer_id_of(request, store)
    applied, _ = await price_cart(await pg.reader(db_session), store, cart, codes=codes, customer_id=customer_id)
    code = codes[0] if codes else ""
    points = await cart_points(db_session, store, customer_id, cart.subtotal.amount_minor - applied.goods_minor)
    return {"promo": applied, "code": code, "code_error": applied.rejected.get(code, ""), **points}


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


async def shop_context(request: Request[Any, Any, Any], db_session: AsyncSession, store: Store) -> dict[str, Any]:
    cart = await CartService(db_session, store.id, store.currency).view(cart_token(request))
    return {
        "store": store,
        "cart": cart,
        "customer_id": customer_id_of(request, store),
        "methods": BuiltinShipping.from_settings(store.settings, store.currency),
        "preview": not is_live(store),  # only the store's own staff get here before it is live
        "open_status": open_status(store),
    }


def open_status(store: Store) -> OpenStatus | None:
    """For a store with opening hours: "Open now · closes 18:00", "Closed · opens Mon 08:00"; else None."""
    hours = hours_of(store.settings)
    return next_change(hours, datetime.now(UTC), store.timezone) if hours else None
