"""Stock rules. Reserving is one statement that locks the rows in variant order and refuses to over-reserve."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

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


_RESERVE = text(
    """
    WITH wanted AS (
        SELECT unnest(CAST(:variant_ids AS uuid[])) AS variant_id, unnest(CAST(:quantities AS int[])) AS quantity
    ), locked AS (
        SELECT s.id FROM stock_levels s JOIN wanted w ON w.variant_id = s.variant_id
        WHERE s.location_id = :location_id AND s.store_id = :store_id
        ORDER BY s.variant_id FOR UPDATE OF s
    )
    UPDATE stock_levels s SET reserved = s.reserved + w.quantity, updated_at = now()
    FROM wanted w
    WHERE s.id IN (SELECT id FROM locked) AND s.variant_id = w.variant_id AND s.on_hand - s.reserved >= w.quantity
    RETURNING s.variant_id
    """
)

_MOVE_RESERVED = text(
    """
    WITH held AS (
        UPDATE stock_reservations SET status = :new_status, updated_at = now()
        WHERE holder_id = :holder_id AND status = 'active' AND store_id = :store_id
        RETURNING variant_id, location_id, quantity
    )
    UPDATE stock_levels s
    SET reserved = s.reserved - h.quantity, on_hand = s.on_hand - (CASE WHEN :commit THEN h.quantity ELSE 0 END),
        updated_at = now()
    FROM held h WHERE s.variant_id = h.variant_id AND s.location_id = h.location_id
    RETURNING s.variant_id
    """
)


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

    async def reserve(
        self, holder_id: uuid.UUID, quantities: Mapping[uuid.UUID, int], location_id: uuid.UUID, *, now: datetime
    ) -> None:
        """Reserve every line or none: raises SoldOut naming the variants that fell short.

        The reservation rows go in first; the stock UPDATE (which takes the row locks, in variant order)
        comes last, so the caller can commit right after it.
        """
        ordered = sorted(quantities.items())
        await self.session.execute(
            insert(Reservation),
            [
                {
                    "id": uuid.uuid4(),
                    "store_id": self.store_id,
                    "holder_id": holder_id,
                    "variant_id": variant_id,
                    "location_id": location_id,
                    "quantity": quantity,
                    "status": "active",
                    "expires_at": now + RESERVATION_TTL,
                }
                for variant_id, quantity in ordered
            ],
        )
        reserved = (
            await self.session.scalars(
                _RESERVE,
                {
                    "variant_ids": [v for v, _ in ordered],
                    "quantities": [q for _, q in ordered],
                    "location_id": location_id,
                    "store_id": self.store_id,
                },
            )
        ).all()
        if len(reserved) != len(ordered):
            short = sorted(set(quantities) - set(reserved))
            raise SoldOut(short)  # the caller's transaction rolls back the partial reservation

    async def commit(self, holder_id: uuid.UUID) -> int:
        """Turn a holder's reservations into sold stock (on hand goes down)."""
        return len((await self.session.scalars(_MOVE_RESERVED, self._params(holder_id, commit=True))).all())

    async def release(self, holder_id: uuid.UUID) -> int:
        """Give a holder's reserved units back. Releasing twice is a no-op."""
        return len((await self.session.scalars(_MOVE_RESERVED, self._params(holder_id, commit=False))).all())

    def _params(self, holder_id: uuid.UUID, *, commit: bool) -> dict[str, object]:
        return {
            "holder_id": holder_id,
            "store_id": self.store_id,
            "commit": commit,
            "new_status": "committed" if commit else "released",
        }

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
    for store_id, holder_id in expired:
        released += len(
            (
                await session.scalars(
                    _MOVE_RESERVED,
                    {"holder_id": holder_id, "store_id": store_id, "commit": False, "new_status": "released"},
                )
            ).all()
        )
    return released


__all__ = ["ADJUSTMENT_REASONS", "Availability", "InventoryService", "SoldOut", "release_expired_reservations"]
