"""Stock rules. Reserving is one statement that locks the rows in variant order and refuses to over-reserve."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import pg
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.tenancy import bind_store
from app.inventory.models import Location, Reservation, StockLevel, StockMovement

RESERVATION_TTL = timedelta(minutes=20)
_DEFAULT_LOCATION_IDS: dict[uuid.UUID, uuid.UUID] = {}
ADJUSTMENT_REASONS = {
    "received": "Received from supplier",
    "count": "Stock count",
    "damaged": "Damaged or spoiled",
    "return": "Customer return",
    "cancelled": "Order cancelled",
    "correction": "Correction",
}


class SoldOut(Conflict):
    code = "sold_out"

    def __init__(self, variant_ids: list[uuid.UUID]) -> None:
        super().__init__("Some items just sold out.", fields={"cart": "Some items just sold out."})
        self.variant_ids = variant_ids


@dataclass(frozen=True)
class Availability:
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return max(self.on_hand - self.reserved, 0)


# Raw SQL (ADR 0003): checkout reserves and commits stock on every order. Each runs as one statement in
# autocommit, so hot stock rows are locked while the server executes it, never across a client round trip.
# Reserving is two fragments of the holder's claim statement (as the checkout composes it with promotions):
# RESERVE_CHECK_CTES locks the stock rows in variant order at the default location and lists in ``short``
# every variant that does not fit; the caller's CTE ``holder`` (a data-modifying CTE that RETURNs its holder
# id, gated on ``NOT EXISTS (SELECT 1 FROM short)``) claims the holder; RESERVE_CTES then reserves every line
# for it, or nothing when it inserted no row. Parameters: :store_id and ``reserve_params``.
RESERVE_CHECK_CTES = """
    wanted AS (
        SELECT unnest(:reserve_variant_ids::uuid[]) AS variant_id, unnest(:reserve_quantities::int[]) AS quantity
    ), locked AS (
        SELECT s.id, s.variant_id, s.location_id, s.on_hand - s.reserved AS free
        FROM stock_levels s  -- by variant: joined with wanted, the plan read every stock row of the store
        WHERE s.variant_id = ANY(:reserve_variant_ids::uuid[]) AND s.store_id = :store_id
          AND s.location_id = (SELECT id FROM locations WHERE store_id = :store_id AND is_default LIMIT 1)
        ORDER BY s.variant_id FOR UPDATE OF s
    ), short AS (
        SELECT w.variant_id FROM wanted w LEFT JOIN locked l ON l.variant_id = w.variant_id
        WHERE l.free IS NULL OR l.free < w.quantity
    )
"""
RESERVE_CTES = """
    reserved AS (
        UPDATE stock_levels s SET reserved = s.reserved + w.quantity, updated_at = now()
        FROM locked l JOIN wanted w ON w.variant_id = l.variant_id
        WHERE s.id = l.id AND EXISTS (SELECT 1 FROM holder)
        RETURNING s.variant_id, s.location_id, w.quantity
    ), held AS (
        INSERT INTO stock_reservations (id, store_id, holder_id, variant_id, location_id, quantity, status, expires_at,
                                        created_at, updated_at)
        SELECT gen_random_uuid(), :store_id, (SELECT id FROM holder), variant_id, location_id, quantity, 'active',
               :reserve_expires_at, now(), now()
        FROM reserved
    )
"""
_RESERVE = f"""
    WITH {RESERVE_CHECK_CTES}, holder AS ({{claim_sql}}), {RESERVE_CTES}
    SELECT (SELECT id FROM holder) AS holder_id, ARRAY(SELECT variant_id FROM short) AS short
"""  # noqa: S608 (constant fragments)
# reserve_stock's positional contract: $1 variant ids, $2 quantities, $3 the store, $4 the expiry, $5... the claim's.
_RESERVE_POSITIONS = {"1": "reserve_variant_ids", "2": "reserve_quantities", "3": "store_id", "4": "reserve_expires_at"}


def reserve_params(quantities: Mapping[uuid.UUID, int], *, now: datetime) -> dict[str, Any]:
    """Parameters of RESERVE_CHECK_CTES / RESERVE_CTES: one entry per variant (sum repeated lines first)."""
    ordered = sorted(quantities.items())
    return {
        "reserve_variant_ids": [v for v, _ in ordered],
        "reserve_quantities": [q for _, q in ordered],
        "reserve_expires_at": now + RESERVATION_TTL,
    }


# A holder's active reservations become sold (or go back on the shelf). Also a fragment of the checkout's
# placing statement (ADR 0003), so its CTE names are prefixed; parameters: :store_id and
# ``stock_move_params``. The stock rows are locked in variant order by ``stock_locked``.
MOVE_RESERVED_CTES = """
    stock_held AS (
        UPDATE stock_reservations SET status = :stock_new_status, updated_at = now()
        WHERE holder_id = :stock_holder_id AND status = 'active' AND store_id = :store_id
        RETURNING variant_id, location_id, quantity
    ), stock_locked AS (
        SELECT s.id, h.quantity FROM stock_levels s
        JOIN stock_held h ON h.variant_id = s.variant_id AND h.location_id = s.location_id
        WHERE s.store_id = :store_id
        ORDER BY s.variant_id FOR UPDATE OF s
    ), stock_moved AS (
        UPDATE stock_levels s
        SET reserved = s.reserved - l.quantity,
            on_hand = s.on_hand - (CASE WHEN :stock_sold::boolean THEN l.quantity ELSE 0 END), updated_at = now()
        FROM stock_locked l WHERE s.id = l.id
        RETURNING s.variant_id
    )
"""
# Selling without a reservation (an order a sales channel already made, app/ingestion): two fragments of one
# statement around the caller's gate. SELL_CHECK_CTES locks the stock rows in variant order at the default
# location and lists in ``stock_short`` (variant_id, quantity, free) every line that does not fit; the caller's
# CTE ``go`` runs only when none falls short. SELL_CTES then takes the units off the shelf and records each
# as a 'sale' movement. On hand never goes below what is free: a short line sells nothing at all.
# Parameters: :store_id and ``sell_params``.
SELL_CHECK_CTES = """
    stock_wanted AS (
        SELECT unnest(:sell_variant_ids::uuid[]) AS variant_id, unnest(:sell_quantities::int[]) AS quantity
    ), stock_to_sell AS (
        SELECT s.id, s.variant_id, s.location_id, s.on_hand - s.reserved AS free
        FROM stock_levels s  -- by variant, as in RESERVE_CHECK_CTES
        WHERE s.variant_id = ANY(:sell_variant_ids::uuid[]) AND s.store_id = :store_id
          AND s.location_id = (SELECT id FROM locations WHERE store_id = :store_id AND is_default LIMIT 1)
        ORDER BY s.variant_id FOR UPDATE OF s
    ), stock_short AS (
        SELECT w.variant_id, w.quantity, COALESCE(l.free, 0) AS free
        FROM stock_wanted w LEFT JOIN stock_to_sell l ON l.variant_id = w.variant_id
        WHERE l.free IS NULL OR l.free < w.quantity
    )
"""
_SELL_TEMPLATE = """
    stock_sold AS (
        UPDATE stock_levels s SET on_hand = s.on_hand - {taken}, updated_at = now()
        FROM stock_to_sell l JOIN stock_wanted w ON w.variant_id = l.variant_id
        WHERE s.id = l.id AND EXISTS (SELECT 1 FROM go) AND {taken} > 0
        RETURNING s.variant_id, s.location_id, {taken} AS quantity
    ), stock_sale_recorded AS (
        INSERT INTO stock_movements (id, store_id, variant_id, location_id, delta, reason, note, actor_id, reference,
                                     created_at, updated_at)
        SELECT gen_random_uuid(), :store_id, variant_id, location_id, -quantity, 'sale', :sell_note, NULL,
               :sell_reference, now(), now()
        FROM stock_sold
    )
"""
SELL_CTES = _SELL_TEMPLATE.format(taken="w.quantity")
# The same, for goods already handed over (a POS sale, app/pos): the caller's ``go`` runs whatever falls short,
# and each line takes what is free of it (none of what checkouts hold reserved), so on hand never goes below
# zero nor below what is reserved; the caller records the rest from ``stock_short`` as a shortfall to review.
SELL_AVAILABLE_CTES = _SELL_TEMPLATE.format(taken="LEAST(w.quantity, l.free)")


def sell_params(quantities: Mapping[uuid.UUID, int], *, reference: str, note: str = "") -> dict[str, Any]:
    """Parameters of SELL_CHECK_CTES / SELL_CTES: one entry per variant (sum repeated lines first)."""
    ordered = sorted(quantities.items())
    return {
        "sell_variant_ids": [v for v, _ in ordered],
        "sell_quantities": [q for _, q in ordered],
        "sell_reference": reference[:80],
        "sell_note": note[:500],
    }


_MOVE_RESERVED = f"WITH {MOVE_RESERVED_CTES} SELECT count(*) FROM stock_moved"  # noqa: S608 (constant fragment)
# Both statements lock stock rows in variant order: two checkouts sharing variants queue, never deadlock.


def stock_move_params(holder_id: uuid.UUID, *, sold: bool) -> dict[str, Any]:
    return {"stock_holder_id": holder_id, "stock_new_status": "committed" if sold else "released", "stock_sold": sold}


async def reserve_stock(
    conn: pg.Connection,
    store_id: uuid.UUID,
    quantities: Mapping[uuid.UUID, int],
    *,
    claim_sql: str,
    claim_args: Sequence[Any],
    now: datetime,
) -> uuid.UUID | None:
    """Claim a holder and reserve every line for it at the default location, or nothing, in one statement.

    ``claim_sql`` is the holder's INSERT ... RETURNING id, gated by ``NOT EXISTS (SELECT 1 FROM short)``,
    with its own parameters from $5 on (``claim_args``). Raises SoldOut naming the variants that fell short;
    returns None when the claim inserted nothing (the holder exists already). Run it outside a transaction
    (``pg.connection``): the stock rows, locked in variant order, are free again when it returns.
    """
    claim = re.sub(r"\$(\d+)", lambda m: ":" + _RESERVE_POSITIONS.get(m.group(1), f"claim_arg_{m.group(1)}"), claim_sql)
    params = {"store_id": store_id, **reserve_params(quantities, now=now)}
    params.update({f"claim_arg_{n}": value for n, value in enumerate(claim_args, start=5)})
    sql, args = pg.named(_RESERVE.format(claim_sql=claim), params)
    row = await conn.fetchrow(sql, *args)
    if row["short"]:
        raise SoldOut(sorted(row["short"]))
    holder_id: uuid.UUID | None = row["holder_id"]
    return holder_id


async def move_reserved(conn: pg.Connection, store_id: uuid.UUID, holder_id: uuid.UUID, *, sold: bool) -> int:
    """A holder's active reservations become sold stock (``sold``) or go back on the shelf. Twice is a no-op."""
    sql, args = pg.named(_MOVE_RESERVED, {"store_id": store_id, **stock_move_params(holder_id, sold=sold)})
    moved: int = await conn.fetchval(sql, *args)
    return moved


class InventoryService:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID) -> None:
        self.session = session
        self.store_id = store_id
        bind_store(session, store_id)

    async def default_location_id(self) -> uuid.UUID:
        """The default location's id, remembered per store (a location's id never changes)."""
        known = _DEFAULT_LOCATION_IDS.get(self.store_id)
        if known is None:
            known = _DEFAULT_LOCATION_IDS[self.store_id] = (await self.default_location()).id
        return known

    async def default_location(self) -> Location:
        location = await self.session.scalar(select(Location).where(Location.is_default.is_(True)))
        if location is None:
            location = Location(code="main", name="Shop", is_default=True)
            self.session.add(location)
            await self.session.flush()
        return location

    async def availability(self, variant_ids: list[uuid.UUID]) -> dict[uuid.UUID, Availability]:
        rows = await self.session.execute(
            select(StockLevel.variant_id, func.sum(StockLevel.on_hand), func.sum(StockLevel.reserved))
            .where(StockLevel.variant_id.in_(variant_ids))
            .group_by(StockLevel.variant_id)
        )
        found = {vid: Availability(int(on_hand), int(reserved)) for vid, on_hand, reserved in rows}
        return {vid: found.get(vid, Availability(0, 0)) for vid in variant_ids}

    async def commit(self, holder_id: uuid.UUID) -> int:
        """Turn a holder's reservations into sold stock (on hand goes down)."""
        return await move_reserved(await pg.writer(self.session), self.store_id, holder_id, sold=True)

    async def release(self, holder_id: uuid.UUID) -> int:
        """Give a holder's reserved units back. Releasing twice is a no-op."""
        return await move_reserved(await pg.writer(self.session), self.store_id, holder_id, sold=False)

    async def adjust(
        self, variant_id: uuid.UUID, delta: int, reason: str, *, note: str = "", actor_id: uuid.UUID | None = None
    ) -> StockLevel:
        """Change on-hand stock by ``delta`` with a recorded reason."""
        fields: dict[str, str] = {}
        if reason not in ADJUSTMENT_REASONS:
            fields["reason"] = "Choose a reason."
        if delta == 0:
            fields["delta"] = "Enter a change other than 0, e.g. 5 or -2."
        if len(note) > 500:
            fields["note"] = "Keep the note under 500 characters."
        if fields:
            raise ValidationFailed("Check the stock adjustment.", fields=fields)
        location = await self.default_location()
        level = await self.session.scalar(
            select(StockLevel)
            .where(StockLevel.variant_id == variant_id, StockLevel.location_id == location.id)
            .with_for_update()
        )
        if level is None:
            from app.catalog.models import Variant

            if await self.session.get(Variant, variant_id) is None:
                raise NotFound("No such variant.")
            level = StockLevel(variant_id=variant_id, location_id=location.id, on_hand=0, reserved=0)
            self.session.add(level)
        if level.on_hand + delta < level.reserved:
            raise ValidationFailed(
                "That would leave less stock than is reserved.",
                fields={"delta": f"At most {level.on_hand - level.reserved} can be removed now."},
            )
        level.on_hand += delta
        self.session.add(
            StockMovement(
                variant_id=variant_id, location_id=location.id, delta=delta, reason=reason, note=note, actor_id=actor_id
            )
        )
        await self.session.flush()
        return level

    async def movements(self, variant_id: uuid.UUID, limit: int = 20) -> list[StockMovement]:
        rows = await self.session.scalars(
            select(StockMovement)
            .where(StockMovement.variant_id == variant_id)
            .order_by(StockMovement.created_at.desc())
            .limit(limit)
        )
        return list(rows)


async def release_expired_reservations(session: AsyncSession, now: datetime | None = None) -> int:
    """Sweeper: release reservations past their expiry whose holder never finished (system scope)."""
    now = now or datetime.now(UTC)
    expired = (
        await session.execute(
            select(Reservation.store_id, Reservation.holder_id)
            .where(Reservation.status == "active", Reservation.expires_at < now)
            .distinct()
        )
    ).all()
    released = 0
    conn = await pg.writer(session)
    for store_id, holder_id in expired:
        released += await move_reserved(conn, store_id, holder_id, sold=False)
    return released


__all__ = [
    "ADJUSTMENT_REASONS",
    "MOVE_RESERVED_CTES",
    "RESERVE_CHECK_CTES",
    "RESERVE_CTES",
    "SELL_AVAILABLE_CTES",
    "SELL_CHECK_CTES",
    "SELL_CTES",
    "Availability",
    "InventoryService",
    "SoldOut",
    "move_reserved",
    "release_expired_reservations",
    "reserve_params",
    "reserve_stock",
    "sell_params",
    "stock_move_params",
]
