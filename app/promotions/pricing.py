"""A cart priced with the store's promotions: the quote's (delivery known, every code checked) and the cart page's
preview (delivery not chosen yet). One read (``load_offers``, or the quote's ``cart_with_offers``: the cart and its
offers in one statement), then the pure engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from app.cart.services import CART_VIEW_ORDER, CART_VIEW_SQL, CartView, cart_of_rows
from app.core import pg
from app.promotions.claims import OFFERS_COLUMNS, OfferContext, load_offers, offer_context, offer_params
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
    context: OfferContext | None = None,
) -> tuple[Applied, OfferContext]:
    """The discounts on ``cart`` (each line keyed by its position) and what the engine read (``context``, when
    given: read with the cart by ``cart_with_offers`` for the same codes and shopper); ``rejected`` holds each
    code that does not apply, with its reason."""
    wanted = wanted_codes(codes)
    if context is None:
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


def wanted_codes(codes: Iterable[str]) -> tuple[str, ...]:
    """The codes a shopper gave, as the engine compares them."""
    return tuple(normalise_code(code) for code in codes if code.strip())


# The cart view's rows, each with the offers the cart may get (the offers' columns are computed once).
_CART_WITH_OFFERS = f"""
    SELECT cart_rows.*, offers.* FROM ({CART_VIEW_SQL}) AS cart_rows, (SELECT {OFFERS_COLUMNS}) AS offers
    {CART_VIEW_ORDER}
"""  # noqa: S608 (constant fragments)


async def cart_with_offers(
    conn: pg.Connection,
    store: Store,
    token: str,
    *,
    codes: Iterable[str] = (),
    email: str = "",
    customer_id: uuid.UUID | None = None,
) -> tuple[CartView, OfferContext]:
    """The open cart behind ``token`` and the offers it may get (for ``price_cart``'s ``context``), in one
    statement: the quote's first read (issue 20: one round trip and one statement fewer per checkout)."""
    params = offer_params(wanted_codes(codes), email, customer_id) | {"cart_token": token, "store_id": store.id}
    sql, args = pg.named(_CART_WITH_OFFERS, params)
    rows = await conn.fetch(sql, *args)
    if not rows:
        return cart_of_rows(rows, store.currency), OfferContext()
    catalog = {  # as load_offers reads it: each variant's product and category
        str(row["variant_id"]): (str(row["product_id"] or ""), str(row["category_id"] or ""))
        for row in rows
        if row["sku"] is not None
    }
    return cart_of_rows(rows, store.currency), offer_context(rows[0], customer_id, catalog)
