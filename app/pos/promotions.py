"""Promotions on a POS ticket (docs/pos.md, "Promotion codes"): the web checkout's engine (app/promotions/engine.py)
on the ticket's lines, only when the ticket names a ``promotion_code`` (the store's automatic promotions are then
added too, as a shop cart gets them). Each line's part is the line's ``promotion_minor``; the use is claimed in the
sale's own statement (app/pos/sales.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.core import pg
from app.promotions.claims import ensure_customer_uses, load_offers
from app.promotions.engine import Applied, apply_promotions, normalise_code
from app.stores.models import Store

__all__ = ["NAMED_CUSTOMER", "TicketPromotions", "ticket_promotions"]

NAMED_CUSTOMER = "This code is once per customer: add the customer to the ticket first."


@dataclass(frozen=True)
class TicketPromotions:
    """The promotions on one ticket: each line's part (by position), the discounts an order keeps, or why the code
    was refused."""

    code: str
    parts: tuple[int, ...]
    discounts: list[dict[str, Any]] = field(default_factory=list)
    refused: str = ""


async def ticket_promotions(
    conn: pg.Connection,
    store: Store,
    code: str,
    lines: Sequence[tuple[uuid.UUID, int, int]],  # variant id, quantity, unit price
    *,
    now: datetime,
    customer: tuple[uuid.UUID, str] | None = None,  # id, e-mail
    claim: bool = False,
) -> TicketPromotions:
    """The code's and the automatic promotions' discounts on ``lines`` (one statement; one more to make the
    customer's use-count rows when ``claim`` and the code has a per-customer limit)."""
    code = normalise_code(code)
    email = customer[1] if customer else ""
    context = await load_offers(
        conn,
        store.id,
        codes=[code],
        variant_ids=[variant for variant, _, _ in lines],
        email=email,
        customer_id=customer[0] if customer else None,
    )
    priced = [context.line(str(i), variant, quantity, price) for i, (variant, quantity, price) in enumerate(lines)]
    # Without a customer, a per-customer limit cannot be counted: such an automatic promotion is left out, and
    # such a code is refused with what to do.
    offers = [o for o in context.offers if email or o.code or o.per_customer_limit is None]
    named = next((o for o in offers if o.code == code and not o.deleted), None)
    if named is not None and named.per_customer_limit is not None and not email:
        return TicketPromotions(code, tuple(0 for _ in lines), refused=NAMED_CUSTOMER)
    applied: Applied = apply_promotions(
        priced, offers, currency=store.currency, now=now, timezone=store.timezone, codes=[code],
        shopper=context.shopper, shipping_minor=0,
    )  # fmt: skip
    refused = applied.rejected.get(code, "")
    if refused:
        return TicketPromotions(code, tuple(0 for _ in lines), refused=refused)
    if claim:
        await ensure_customer_uses(conn, store.id, offers, [d.promotion_id for d in applied.discounts], email)
    return TicketPromotions(
        code,
        tuple(applied.line_discount(str(i)) for i in range(len(lines))),
        [d.as_dict() for d in applied.discounts],
    )
