"""What the tablet sells from: the catalog snapshot (cached by its service worker for offline), customer search,
and the server's own pricing of a ticket (``POST /pos/api/price``)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.catalog.services import CatalogService
from app.core import pg
from app.core.errors import NotFound, ValidationFailed
from app.core.rbac import Principal
from app.core.tenancy import bind_store
from app.customers.models import Customer
from app.pos.pricing import TicketLine, price_ticket
from app.pos.promotions import ticket_promotions
from app.pos.sales import load_variants
from app.pos.schemas import PriceIn
from app.pos.settings import PosSettings
from app.stored_value.purchases import gift_card_products
from app.stores.commerce import CommerceSettings
from app.stores.models import Store
from app.tax.providers import DEFAULT_TAX_RULES, BuiltinTax

__all__ = ["catalog_snapshot", "price_now", "search_customers"]

MAX_CUSTOMERS = 20


async def catalog_snapshot(session: AsyncSession, store: Store, principal: Principal) -> dict[str, Any]:
    """Everything the tablet prices and sells with offline: products for sale with their variants and what is
    available, the tax rules, the offline limits, and the caller's own discount limit. ``version`` changes
    whenever any of it does."""
    catalog = CatalogService(session, store.id)
    categories = [{"slug": c.slug, "name": c.name} for c in await catalog.categories()]
    products = []
    gift_cards = gift_card_products(store.settings)  # activated when sold online (app/stored_value/purchases.py)
    for view in await catalog.browse():
        product = view.product
        products.append(
            {
                "id": str(product.id),
                "name": product.name,
                "category": product.category.slug if product.category else None,
                "image": product.image,
                "gift_card": str(product.id) in gift_cards,
                "variants": [
                    {
                        "id": str(v.variant.id),
                        "sku": v.variant.sku,
                        "barcode": v.variant.sku,
                        "title": " / ".join(str(o) for o in v.variant.options.values()),
                        "price_minor": v.variant.price_minor,
                        "tax_class": product.tax_class,
                        "available": v.stock.available,
                    }
                    for v in view.variants
                ],
            }
        )
    commerce = CommerceSettings.of(store.settings)
    pos = PosSettings.of(store.settings)
    body: dict[str, Any] = {
        "currency": store.currency,
        "categories": categories,
        "products": products,
        "tax": {
            "prices_include_tax": commerce.prices_include_tax,
            "country": commerce.country,
            "rules": store.settings.get("tax", DEFAULT_TAX_RULES),
        },
        "limits": pos.limits(),
        "discount_limit_bps": pos.discount_limit_bps(principal.role),
    }
    body["version"] = hashlib.sha256(msgspec.json.encode(body)).hexdigest()[:16]
    return body


async def search_customers(session: AsyncSession, store_id: uuid.UUID, q: str) -> list[dict[str, Any]]:
    """Customers whose name, e-mail or phone contains ``q`` (at least 2 characters), by name."""
    q = q.strip()
    if len(q) < 2:
        return []
    bind_store(session, store_id)
    pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    digits = "".join(ch for ch in q if ch.isdigit())
    conditions = [func.lower(Customer.name).like(pattern), Customer.email.like(pattern)]
    if len(digits) >= 3:
        conditions.append(func.regexp_replace(Customer.phone, "[^0-9]", "", "g").like(f"%{digits}%"))
    rows = await session.scalars(
        select(Customer).where(or_(*conditions)).order_by(Customer.name, Customer.email).limit(MAX_CUSTOMERS)
    )
    return [{"id": str(c.id), "name": c.name, "email": c.email, "phone": c.phone} for c in rows]


_CUSTOMER_EMAIL = "SELECT email FROM customers WHERE store_id = $1 AND id = $2"


async def price_now(engine: AsyncEngine, store: Store, body: PriceIn) -> dict[str, Any]:
    """The server's pricing of a ticket at today's catalog prices; 422 for an unknown product or a discount that
    does not fit."""
    promotions = None
    async with pg.connection(engine) as conn:
        variants = await load_variants(conn, store.id, [line.variant_id for line in body.lines])
        unknown = {
            f"lines.{i}.variant_id": "Not a product of this store."
            for i, line in enumerate(body.lines)
            if line.variant_id not in variants or not variants[line.variant_id].for_sale
        }
        if unknown:
            raise ValidationFailed("Some lines are not products for sale.", fields=unknown)
        if body.promotion_code and body.promotion_code.strip():
            customer = None
            if body.customer_id is not None:
                row = await conn.fetchrow(_CUSTOMER_EMAIL, store.id, body.customer_id)
                if row is None:
                    raise NotFound("No such customer.", fields={"customer_id": "Not a customer of this store."})
                customer = (body.customer_id, row["email"])
            promotions = await ticket_promotions(
                conn, store, body.promotion_code,
                [(line.variant_id, line.quantity, variants[line.variant_id].price_minor) for line in body.lines],
                now=datetime.now(UTC), customer=customer,
            )  # fmt: skip
            if promotions.refused:
                raise ValidationFailed(
                    f"The code {promotions.code} does not apply: {promotions.refused}",
                    fields={"promotion_code": promotions.refused},
                )
    parts = promotions.parts if promotions else tuple(0 for _ in body.lines)
    lines = [
        TicketLine(line.variant_id, line.quantity, variants[line.variant_id].price_minor, line.discount_minor + part,
                   variants[line.variant_id].tax_class)
        for line, part in zip(body.lines, parts, strict=True)
    ]  # fmt: skip
    commerce = CommerceSettings.of(store.settings)
    priced = price_ticket(
        lines,
        body.ticket_discount_minor,
        tax=BuiltinTax.from_settings(store.settings, store.currency),
        country=commerce.country,
        prices_include_tax=commerce.prices_include_tax,
        currency=store.currency,
    )
    return {
        "lines": [
            {
                "variant_id": str(p.variant_id),
                "name": variants[p.variant_id].name,
                "quantity": p.quantity,
                "unit_price_minor": p.unit_price_minor,
                "discount_minor": p.discount_minor,
                "promotion_minor": part,
                "tax_minor": p.tax_minor,
                "total_minor": p.total_minor,
            }
            for p, part in zip(priced.lines, parts, strict=True)
        ],
        "promotion_code": promotions.code if promotions else None,
        "promotions": [
            {"code": d["code"], "name": d["name"], "amount_minor": d["amount_minor"]}
            for d in (promotions.discounts if promotions else [])
        ],
        "subtotal_minor": priced.subtotal_minor,
        "discount_minor": priced.discount_minor,
        "tax_minor": priced.tax_minor,
        "total_minor": priced.total_minor,
    }
