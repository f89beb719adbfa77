"""A cart priced with the store's promotions: the quote's (delivery known, every code checked) and the cart page's
preview (delivery not chosen yet). One read (``load_offers``), then the pure engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from app.cart.services import CartView
from app.core import pg
from app.promotions.claims import OfferContext, load_offers
from app.promotions.engine import Applied, apply_promotions, normalise_code
from app.stores.models import Store


async def price_cart(
    conn: pg.Connection,
    store: Store,
    cart: CartView,
    *,
    codes: Iterable[str] = (),
    email: str = "",
    customer_id: uuid.UUID | None = None,
    shipping_minor: int | None = None,
    now: datetime | None = None,
) -> tuple[Applied, OfferContext]:
    """The discounts on ``cart`` (each line keyed by its position) and what the engine read; ``rejected`` holds
    each code that does not apply, with its reason."""
    wanted = tuple(normalise_code(code) for code in codes if code.strip())
    context = await load_offers(
        conn,
        store.id,
        codes=wanted,
        variant_ids=[line.variant_id for line in cart.lines],
        email=email,
        customer_id=customer_id,
    )
    if not context.offers and not wanted:
        return Applied(store.currency), context
    applied = apply_promotions(
        [context.line(str(i), line.variant_id, line.quantity, line.unit_price) for i, line in enumerate(cart.lines)],
        context.offers,
        currency=store.currency,
        now=now or datetime.now(UTC),
        timezone=store.timezone,
        codes=wanted,
        shopper=context.shopper,
        shipping_minor=shipping_minor,
    )
    return applied, context
