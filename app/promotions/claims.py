"""Promotions on the hot path (ADR 0003, ADR 0006): what a quote reads, and the fragments that claim a use inside
the statement that claims the checkout (or places an ingested order or a POS sale), so a usage limit is never
exceeded under any concurrency.

A use is claimed in the same statement as its holder (the checkout attempt, the ingestion claim, the POS sale):
the promotion rows with a usage limit are locked in id order, after the caller's stock rows, then the shopper's
per-customer rows; nothing is claimed unless every promotion still has a use left, and the holder itself is gated
on that. A checkout's use is ``held`` while it pays and becomes ``used`` in the placing statement; a failed or
compensated checkout releases it. Every raw statement names ``store_id``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core import pg
from app.promotions.engine import Offer, PricedLine, Shopper

# ---- what a quote reads: one statement --------------------------------------------------------------------

# The store's live automatic promotions and the promotions behind the codes given (any status: a paused or
# expired code gets its reason), whether the shopper ordered before (only asked when a first-order promotion is
# among them), and the shopper's uses of those with a per-customer limit (found by promotion and shopper, the
# uses' unique key: not by scanning every shopper's uses): columns for a SELECT, also the quote's statement that
# reads the cart and its offers at once (app/promotions/pricing.py). Parameters :store_id and ``offer_params``.
OFFERS_COLUMNS = """
      (SELECT COALESCE(jsonb_agg(to_jsonb(p)), '[]'::jsonb) FROM promotions p
       WHERE p.store_id = :store_id AND p.deleted_at IS NULL
         AND ((p.code IS NULL AND p.status = 'active') OR p.code = ANY(:offer_codes::text[]))) AS offers,
      CASE WHEN (:offer_customer_key <> '' OR :offer_customer_id::uuid IS NOT NULL) AND EXISTS (
             SELECT 1 FROM promotions p WHERE p.store_id = :store_id AND p.deleted_at IS NULL AND p.first_order_only
               AND ((p.code IS NULL AND p.status = 'active') OR p.code = ANY(:offer_codes::text[])))
           THEN EXISTS (SELECT 1 FROM orders o WHERE o.store_id = :store_id AND o.status <> 'cancelled'
                          AND (o.email = :offer_customer_key OR o.customer_id = :offer_customer_id::uuid)) END
        AS ordered_before,
      (SELECT COALESCE(jsonb_object_agg(u.promotion_id::text, u.uses), '{}'::jsonb)
       FROM promotions p JOIN promotion_customer_uses u
         ON u.promotion_id = p.id AND u.customer_key = :offer_customer_key AND u.store_id = :store_id
       WHERE p.store_id = :store_id AND p.deleted_at IS NULL AND p.per_customer_limit IS NOT NULL
         AND ((p.code IS NULL AND p.status = 'active') OR p.code = ANY(:offer_codes::text[]))
         AND :offer_customer_key <> '') AS uses
"""
# With each variant's product and category (the quote has them from the cart's rows).
_OFFERS = f"""
    SELECT {OFFERS_COLUMNS},
      (SELECT COALESCE(jsonb_object_agg(v.id::text, jsonb_build_array(v.product_id, pr.category_id)), '{{}}'::jsonb)
       FROM variants v JOIN products pr ON pr.id = v.product_id AND pr.store_id = :store_id
       WHERE v.store_id = :store_id AND v.id = ANY(:offer_variant_ids::uuid[])) AS variants
"""  # noqa: S608 (constant fragments)


@dataclass(frozen=True)
class OfferContext:
    """What pricing a cart needs from the database: the offers, each variant's (product, category), the shopper."""

    offers: tuple[Offer, ...] = ()
    catalog: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # variant id → (product id, category id)
    shopper: Shopper = field(default_factory=Shopper)

    def line(self, key: str, variant_id: uuid.UUID | str, quantity: int, unit_price_minor: int) -> PricedLine:
        product_id, category_id = self.catalog.get(str(variant_id), ("", ""))
        return PricedLine(key, quantity, unit_price_minor, product_id, category_id)


def customer_key(email: str) -> str:
    """Whose uses count for a per-customer limit: the shopper's e-mail, lower-case (guests and accounts alike)."""
    return email.strip().lower()


def offer_params(codes: Iterable[str], email: str, customer_id: uuid.UUID | None) -> dict[str, Any]:
    """OFFERS_COLUMNS' parameters but :store_id (and the variants)."""
    return {"offer_codes": list(codes), "offer_customer_key": customer_key(email), "offer_customer_id": customer_id}


def offer_context(
    row: Mapping[str, Any], customer_id: uuid.UUID | None, catalog: Mapping[str, tuple[str, str]]
) -> OfferContext:
    """The context from a row with OFFERS_COLUMNS and the cart's ``catalog`` (variant id → (product, category))."""
    ordered_before = row["ordered_before"]
    shopper = Shopper(
        signed_in=customer_id is not None,
        first_order=None if ordered_before is None else not ordered_before,
        uses={str(k): int(v) for k, v in row["uses"].items()},
    )
    return OfferContext(tuple(Offer.of(o) for o in row["offers"]), catalog, shopper)


async def load_offers(
    conn: pg.Connection,
    store_id: uuid.UUID,
    *,
    codes: Iterable[str] = (),
    variant_ids: Iterable[uuid.UUID | str] = (),
    email: str = "",
    customer_id: uuid.UUID | None = None,
) -> OfferContext:
    """One statement: the offers a cart may get, with what their conditions need to know (see ``OFFERS_COLUMNS``)."""
    params = offer_params(codes, email, customer_id) | {
        "store_id": store_id,
        "offer_variant_ids": [uuid.UUID(str(v)) for v in variant_ids],
    }
    sql, args = pg.named(_OFFERS, params)
    row = await conn.fetchrow(sql, *args)
    catalog = {
        variant: (str(product or ""), str(category or "")) for variant, (product, category) in row["variants"].items()
    }
    return offer_context(row, customer_id, catalog)


_ENSURE_CUSTOMER_USES = """
    INSERT INTO promotion_customer_uses (id, store_id, promotion_id, customer_key, uses, created_at, updated_at)
    SELECT gen_random_uuid(), $1, p.id, $3, 0, now(), now()
    FROM promotions p WHERE p.store_id = $1 AND p.id = ANY($2::uuid[]) AND p.per_customer_limit IS NOT NULL
    ON CONFLICT (promotion_id, customer_key) DO NOTHING
"""


async def ensure_customer_uses(
    conn: pg.Connection, store_id: uuid.UUID, offers: Sequence[Offer], promotion_ids: Iterable[str], email: str
) -> None:
    """Make the shopper's use-count rows of the per-customer-limited promotions among ``promotion_ids``, so the
    claim finds rows to lock (two first uses at once then queue on the row instead of both counting 0). Sends
    nothing when none of them has a per-customer limit."""
    ids = set(promotion_ids)
    limited = [uuid.UUID(o.id) for o in offers if o.id in ids and o.per_customer_limit is not None]
    if limited:
        await conn.execute(_ENSURE_CUSTOMER_USES, store_id, limited, customer_key(email))


# ---- claiming a use inside the holder's statement ----------------------------------------------------------

# Before the holder. Needs the caller's CTE ``promo_gate`` (a row when the claim may go ahead: the stock fits),
# whose evaluation locks the caller's stock rows first: stock rows, then promotions by id, then the shopper's
# use counts, in every statement that takes more than one of them. ``promo_short`` lists each promotion that
# cannot be claimed and why (ended | used_up | customer_used | changed); the caller gates its holder on it
# being empty. Parameters: :store_id and ``claim_params``.
PROMO_CHECK_CTES = """
    promo_wanted AS (
        SELECT w.id, w.code, w.discount_minor
        FROM jsonb_to_recordset(:promo_claims::jsonb) AS w(id uuid, code text, discount_minor int)
    ), promo_rows AS (
        SELECT p.id, p.per_customer_limit,
               (p.status = 'active' AND p.deleted_at IS NULL AND (p.starts_at IS NULL OR p.starts_at <= now())
                AND (p.ends_at IS NULL OR p.ends_at > now())) AS on_now
        FROM promotions p WHERE p.store_id = :store_id AND p.id IN (SELECT id FROM promo_wanted)
    ), promo_locked AS (
        SELECT p.id, p.uses_claimed, p.usage_limit FROM promotions p
        WHERE p.store_id = :store_id AND p.id IN (SELECT id FROM promo_wanted) AND p.usage_limit IS NOT NULL
          AND EXISTS (SELECT 1 FROM promo_gate)
        ORDER BY p.id FOR UPDATE
    ), promo_customer_locked AS (
        SELECT u.id, u.promotion_id, u.uses FROM promotion_customer_uses u
        WHERE u.store_id = :store_id AND u.customer_key = :promo_customer_key
          AND u.promotion_id IN (SELECT id FROM promo_wanted)
          AND EXISTS (SELECT 1 FROM promo_gate) AND (SELECT count(*) FROM promo_locked) >= 0
        ORDER BY u.promotion_id FOR UPDATE
    ), promo_short AS (
        SELECT w.id, w.code,
               CASE WHEN r.id IS NULL OR NOT r.on_now THEN 'ended'
                    WHEN l.id IS NOT NULL AND l.uses_claimed >= l.usage_limit THEN 'used_up'
                    WHEN c.id IS NULL THEN 'changed'
                    ELSE 'customer_used' END AS reason
        FROM promo_wanted w
        LEFT JOIN promo_rows r ON r.id = w.id
        LEFT JOIN promo_locked l ON l.id = w.id
        LEFT JOIN promo_customer_locked c ON c.promotion_id = w.id
        WHERE EXISTS (SELECT 1 FROM promo_gate)
          AND (r.id IS NULL OR NOT r.on_now OR (l.id IS NOT NULL AND l.uses_claimed >= l.usage_limit)
               OR (r.per_customer_limit IS NOT NULL AND (c.id IS NULL OR c.uses >= r.per_customer_limit)))
    )
"""
# After the holder. Needs the caller's CTE ``promo_holder`` (the holder's id, a row only when it was claimed):
# counts the use against the limits and records it, held (a checkout paying) or used (an order placed now).
PROMO_CLAIM_CTES = """
    promo_counted AS (
        UPDATE promotions p SET uses_claimed = p.uses_claimed + 1, updated_at = now()
        FROM promo_locked l WHERE p.id = l.id AND p.store_id = :store_id AND EXISTS (SELECT 1 FROM promo_holder)
        RETURNING p.id
    ), promo_customer_counted AS (
        UPDATE promotion_customer_uses u SET uses = u.uses + 1, updated_at = now()
        FROM promo_customer_locked c
        WHERE u.id = c.id AND u.store_id = :store_id AND EXISTS (SELECT 1 FROM promo_holder)
        RETURNING u.id
    ), promo_claimed AS (
        INSERT INTO promotion_redemptions (id, store_id, promotion_id, holder_id, order_id, channel, customer_key, code,
                                           discount_minor, currency, status, created_at, updated_at)
        SELECT gen_random_uuid(), :store_id, w.id, h.id, :promo_order_id::uuid, :promo_channel, :promo_customer_key,
               w.code, w.discount_minor, :promo_currency, :promo_status, now(), now()
        FROM promo_wanted w, promo_holder h
        RETURNING id
    )
"""
# A checkout's held uses go on its order, in the placing statement (after PLACE_ORDER_CTES' ``placed``).
PROMO_USE_CTES = """
    promo_used AS (
        UPDATE promotion_redemptions r SET status = 'used', order_id = p.id, updated_at = now()
        FROM placed p WHERE r.holder_id = :promo_holder_id AND r.store_id = :store_id AND r.status = 'held'
    )
"""


def claims_of(discounts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The uses to claim for a quote's (or an order's) discounts: one per promotion."""
    return [
        {"id": d["promotion_id"], "code": d.get("code", ""), "discount_minor": int(d["amount_minor"])}
        for d in discounts
    ]


def claim_params(
    discounts: Sequence[Mapping[str, Any]],
    *,
    email: str,
    currency: str,
    channel: str,
    order_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Parameters of PROMO_CHECK_CTES / PROMO_CLAIM_CTES: held for a checkout (no order yet), used for an order
    placed in the same statement (``order_id``)."""
    return {
        "promo_claims": pg.jsonb(claims_of(discounts)),
        "promo_customer_key": customer_key(email),
        "promo_currency": currency,
        "promo_channel": channel,
        "promo_order_id": order_id,
        "promo_status": "held" if order_id is None else "used",
    }


SHORT_REASONS = {
    "ended": "This offer has ended.",
    "used_up": "This code has just been used up.",
    "customer_used": "You have already used this code.",
    "changed": "This offer changed since your totals were calculated.",
}


def short_message(short: Sequence[Sequence[str]]) -> tuple[str, dict[str, str]]:
    """What a refused claim tells the shopper (``promo_short`` rows as [id, code, reason]): one sentence and the
    ``code`` field's reason."""
    _, code, reason = short[0]
    words = SHORT_REASONS.get(reason, SHORT_REASONS["changed"])
    if not code:
        words = words.replace("This code", "This offer")
    sentence = f"{code}: {words}" if code else words
    return f"{sentence} Please review the new total.", {"code": words}


# ---- giving uses back ----------------------------------------------------------------------------------------

_GIVE_BACK = """
    WITH given AS (
        UPDATE promotion_redemptions SET status = $3, updated_at = now()
        WHERE store_id = $1 AND {which}
        RETURNING promotion_id, customer_key
    ), counts AS (
        SELECT promotion_id, customer_key, count(*)::int AS n FROM given GROUP BY promotion_id, customer_key
    ), promo_locked AS (
        SELECT p.id FROM promotions p
        WHERE p.store_id = $1 AND p.id IN (SELECT promotion_id FROM counts) AND p.usage_limit IS NOT NULL
        ORDER BY p.id FOR UPDATE
    ), uncounted AS (
        UPDATE promotions p SET uses_claimed = GREATEST(p.uses_claimed - c.n, 0), updated_at = now()
        FROM (SELECT promotion_id, sum(n)::int AS n FROM counts GROUP BY promotion_id) c
        WHERE p.id = c.promotion_id AND p.store_id = $1 AND p.id IN (SELECT id FROM promo_locked)
    ), customer_uncounted AS (
        UPDATE promotion_customer_uses u SET uses = GREATEST(u.uses - c.n, 0), updated_at = now()
        FROM counts c
        WHERE u.promotion_id = c.promotion_id AND u.customer_key = c.customer_key AND u.store_id = $1
          AND (SELECT count(*) FROM promo_locked) >= 0
    )
    SELECT count(*) FROM given
"""
_RELEASE_HELD = _GIVE_BACK.format(which="holder_id = $2 AND status = 'held'")
_RETURN_USED = _GIVE_BACK.format(which="order_id = $2 AND status = 'used'")


async def release_held(conn: pg.Connection, store_id: uuid.UUID, holder_id: uuid.UUID) -> int:
    """A failed or compensated checkout's held uses go back to the limits. Twice is a no-op. Run it after the
    holder's stock was released in the same transaction (stock rows before promotion rows)."""
    released: int = await conn.fetchval(_RELEASE_HELD, store_id, holder_id, "released")
    return released


async def return_used(conn: pg.Connection, store_id: uuid.UUID, order_id: uuid.UUID) -> int:
    """An order's used uses go back to the limits (refunded in full or cancelled). Twice is a no-op."""
    returned: int = await conn.fetchval(_RETURN_USED, store_id, order_id, "returned")
    return returned
