"""Kill switches: operational off-switches per store and for the whole platform (docs/operations.md).

A switch is *engaged* for a store when the store's own row or the global row (``store_id`` NULL) exists in
``kill_switches``; releasing deletes the row. Every engage and release is written to the append-only
``kill_switch_changes`` history (global ones included, which have no store for ``audit_entries``), and a
store's change also to the store's audit trail (``app.core.audit.record``) in the same transaction.

``kill_switches`` is not a tenant table (a global switch has no store): every statement here names the store
itself, and :func:`is_engaged` reads the store's row *or* the global one, nothing else.

Hot paths that must not spend a SQL statement (checkout completion, ADR 0003) read :func:`engaged_fast`: a
Redis mirror (one ``SMISMEMBER``) that engage/release write after their commit. The database stays the source
of truth: the mirror is rebuilt from it by :func:`refresh_mirror` every minute (the reconciliation poller's
cron) and on every engage/release, so a lost Redis write or a flushed Redis heals within a minute, and the
pages in front of completion (the checkout page, the quote) check the database itself.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import structlog
from redis.asyncio import Redis
from sqlalchemy import ColumnElement, ForeignKey, Index, String, delete, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core import audit
from app.core.db import UUIDv7AuditBase
from app.core.errors import TillError
from app.core.logging import current_correlation_id
from app.core.rbac import Principal

log = structlog.get_logger(__name__)

MIRROR_KEY = "till:kill_switches"
GLOBAL = "global"


class Switch(StrEnum):
    PROVIDER_OFF = "provider_off"  # no card payments taken online: checkout says so, nothing is charged
    CARD_TENDERS_OFF = "card_tenders_off"  # the POS refuses card tenders (readers and offline cards)
    WEBHOOKS_PAUSED = "webhooks_paused"  # events are stored and acknowledged, processed after release
    RECEIPTS_PAUSED = "receipts_paused"  # receipt deliveries wait (app/receipts checks it)
    MEDIA_PAUSED = "media_paused"  # media processing waits (app/media checks it)


LABELS: dict[Switch, tuple[str, str]] = {
    Switch.PROVIDER_OFF: ("Online card payments off", "Checkout tells shoppers card payment is unavailable."),
    Switch.CARD_TENDERS_OFF: ("POS card tenders off", "The till refuses card tenders; cash still works."),
    Switch.WEBHOOKS_PAUSED: (
        "Webhook processing paused",
        "Provider events are still received and stored; they are processed after release.",
    ),
    Switch.RECEIPTS_PAUSED: ("Receipts paused", "Receipt deliveries wait until release."),
    Switch.MEDIA_PAUSED: ("Media processing paused", "Image processing waits until release."),
}


PAYMENTS_OFF_MESSAGE = (
    "Card payments are switched off for this shop for the moment. Nothing was charged; please try again later."
)


class PaymentsSwitchedOff(TillError):
    """The ``provider_off`` switch is engaged: no payment is started (503; nothing charged)."""

    status_code = 503
    title = "Payments switched off"
    code = "payments_off"


async def ensure_payments_on(redis: Redis, store_id: uuid.UUID) -> None:
    """Refuse to start a payment while ``provider_off`` is engaged (the mirror: no SQL on the checkout path)."""
    if await engaged_fast(redis, Switch.PROVIDER_OFF, store_id):
        raise PaymentsSwitchedOff(PAYMENTS_OFF_MESSAGE)


CARD_TENDERS_OFF_MESSAGE = "Card payments at the till are switched off for the moment: take cash, or try again later."


class CardTendersSwitchedOff(TillError):
    """The ``card_tenders_off`` switch is engaged: the POS puts no amount on a card reader (503; nothing charged)."""

    status_code = 503
    title = "Card tenders switched off"
    code = "card_tenders_off"


async def ensure_card_tenders_on(redis: Redis, store_id: uuid.UUID) -> None:
    if await engaged_fast(redis, Switch.CARD_TENDERS_OFF, store_id):
        raise CardTendersSwitchedOff(CARD_TENDERS_OFF_MESSAGE, fields={"tender": "Card is switched off: take cash."})


class KillSwitch(UUIDv7AuditBase):
    """An engaged switch: for one store, or for every store when ``store_id`` is NULL."""

    __tablename__ = "kill_switches"
    __table_args__ = (
        Index("uq_kill_switches_switch_store", "switch", "store_id", unique=True, postgresql_nulls_not_distinct=True),
    )

    store_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), default=None)
    switch: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(String(500), default="")
    engaged_by: Mapped[str] = mapped_column(String(160), default="")


class KillSwitchChange(UUIDv7AuditBase):
    """The history of every engage and release (append-only), global ones included."""

    __tablename__ = "kill_switch_changes"
    __table_args__ = (Index("ix_kill_switch_changes_store_created", "store_id", "created_at"),)

    store_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), default=None)
    switch: Mapped[str] = mapped_column(String(30))
    action: Mapped[str] = mapped_column(String(10))  # engaged | released
    actor: Mapped[str] = mapped_column(String(160))
    reason: Mapped[str] = mapped_column(String(500), default="")
    correlation_id: Mapped[str | None] = mapped_column(String(64), default=None)


@dataclass(frozen=True)
class SwitchState:
    switch: Switch
    store_engaged: bool
    global_engaged: bool
    reason: str = ""
    engaged_by: str = ""
    engaged_at: datetime | None = None

    @property
    def engaged(self) -> bool:
        return self.store_engaged or self.global_engaged

    @property
    def label(self) -> str:
        return LABELS[self.switch][0]

    @property
    def effect(self) -> str:
        return LABELS[self.switch][1]


def _member(switch: Switch, store_id: uuid.UUID | None) -> str:
    return f"{switch.value}:{store_id or GLOBAL}"


async def is_engaged(session: AsyncSession, switch: Switch, store_id: uuid.UUID | None) -> bool:
    """True when ``switch`` is engaged for ``store_id`` or globally (``store_id`` None: only the global one).
    One statement; the database is the source of truth."""
    scope: ColumnElement[bool] = KillSwitch.store_id.is_(None)
    if store_id is not None:
        scope = or_(scope, KillSwitch.store_id == store_id)
    found = await session.scalar(select(KillSwitch.id).where(KillSwitch.switch == switch.value, scope).limit(1))
    return found is not None


async def engaged_fast(redis: Redis, switch: Switch, store_id: uuid.UUID | None) -> bool:
    """The Redis mirror's answer (no SQL): for hot paths only; see the module docstring.

    Requests that ask the same question together share one ``SMISMEMBER`` (issue 20): the first schedules it and
    every request arriving before it is sent joins it, so each still sees the mirror as it was after its own
    arrival (what a read of its own gives), at one round trip per batch under a crowd of checkouts."""
    members = (_member(switch, None),) + ((_member(switch, store_id),) if store_id is not None else ())
    loop = asyncio.get_running_loop()
    key = (id(loop), id(redis), members)
    batch = _mirror_reads.get(key)
    if batch is None:
        batch = _mirror_reads[key] = loop.create_future()
        batch.add_done_callback(_retrieved)
        task = loop.create_task(_read_mirror(redis, key, batch))
        _mirror_reading.add(task)
        task.add_done_callback(_mirror_reading.discard)
    return await asyncio.shield(batch)


_mirror_reads: dict[tuple[int, int, tuple[str, ...]], asyncio.Future[bool]] = {}
_mirror_reading: set[asyncio.Task[None]] = set()  # a reference keeps each read alive


async def _read_mirror(redis: Redis, key: tuple[int, int, tuple[str, ...]], batch: asyncio.Future[bool]) -> None:
    del _mirror_reads[key]  # before the read goes out: later arrivals start the next batch
    try:
        found = await redis.smismember(MIRROR_KEY, list(key[2]))  # type: ignore[misc]
    except Exception as exc:
        batch.set_exception(exc)
    else:
        batch.set_result(any(found))


def _retrieved(future: asyncio.Future[bool]) -> None:
    if not future.cancelled():
        future.exception()  # a failed read is each waiter's to handle; none left is not an error


@dataclass(frozen=True)
class Engaged:
    """Where one switch is engaged, from the mirror: everywhere, or for these stores."""

    everywhere: bool
    stores: frozenset[uuid.UUID]

    def covers(self, store_id: uuid.UUID | None) -> bool:
        return self.everywhere or (store_id is not None and store_id in self.stores)


async def engaged_where(redis: Redis, switch: Switch) -> Engaged:
    """The mirror's answer for every store at once (one round trip): for loops that handle many stores' work."""
    members = {m.decode() if isinstance(m, bytes) else str(m) for m in await redis.smembers(MIRROR_KEY)}  # type: ignore[misc]
    prefix = f"{switch.value}:"
    scopes = {m[len(prefix) :] for m in members if m.startswith(prefix)}
    stores = frozenset(uuid.UUID(s) for s in scopes if s != GLOBAL)
    return Engaged(everywhere=GLOBAL in scopes, stores=stores)


async def states(session: AsyncSession, store_id: uuid.UUID | None) -> list[SwitchState]:
    """Every switch as it stands for ``store_id`` (None: the global ones)."""
    scope: ColumnElement[bool] = KillSwitch.store_id.is_(None)
    if store_id is not None:
        scope = or_(scope, KillSwitch.store_id == store_id)
    rows = list(await session.scalars(select(KillSwitch).where(scope)))
    out = []
    for switch in Switch:
        own = next((r for r in rows if r.switch == switch.value and r.store_id is not None), None)
        glob = next((r for r in rows if r.switch == switch.value and r.store_id is None), None)
        shown = own or glob
        out.append(
            SwitchState(
                switch=switch,
                store_engaged=own is not None,
                global_engaged=glob is not None,
                reason=shown.reason if shown else "",
                engaged_by=shown.engaged_by if shown else "",
                engaged_at=shown.created_at if shown else None,
            )
        )
    return out


async def engage(
    session: AsyncSession,
    switch: Switch,
    store_id: uuid.UUID | None,
    *,
    principal: Principal | None,
    reason: str = "",
    actor: str | None = None,
) -> bool:
    """Engage ``switch`` for ``store_id`` (None: every store) in the caller's transaction; audited.
    Returns False when it was engaged already (a no-op, not an error). Call :func:`refresh_mirror` after the
    commit (the pages and the CLI do)."""
    who = actor or audit.actor_label(principal)
    inserted = await session.scalar(
        insert(KillSwitch)
        .values(id=uuid.uuid4(), store_id=store_id, switch=switch.value, reason=reason[:500], engaged_by=who[:160])
        .on_conflict_do_nothing()
        .returning(KillSwitch.id)
    )
    if inserted is None:
        return False
    _history(session, switch, store_id, "engaged", who, reason, principal)
    return True


async def release(
    session: AsyncSession,
    switch: Switch,
    store_id: uuid.UUID | None,
    *,
    principal: Principal | None,
    reason: str = "",
    actor: str | None = None,
) -> bool:
    """Release ``switch`` for ``store_id`` (None: the global one; a store's release leaves a global switch on).
    Returns False when it was not engaged at that scope."""
    who = actor or audit.actor_label(principal)
    scope = KillSwitch.store_id.is_(None) if store_id is None else KillSwitch.store_id == store_id
    deleted = await session.scalar(
        delete(KillSwitch).where(KillSwitch.switch == switch.value, scope).returning(KillSwitch.id)
    )
    if deleted is None:
        return False
    _history(session, switch, store_id, "released", who, reason, principal)
    return True


def _history(
    session: AsyncSession,
    switch: Switch,
    store_id: uuid.UUID | None,
    action: str,
    who: str,
    reason: str,
    principal: Principal | None,
) -> None:
    session.add(
        KillSwitchChange(
            store_id=store_id,
            switch=switch.value,
            action=action,
            actor=who[:160],
            reason=reason[:500],
            correlation_id=current_correlation_id(),
        )
    )
    if store_id is not None:
        entry = audit.record(
            session,
            principal,
            f"kill_switch.{action}",
            target_type="kill_switch",
            target_id=switch.value,
            details={"reason": reason} if reason else {},
            store_id=store_id,
        )
        entry.actor = who[:160]
    log.warning("kill_switch.changed", switch=switch.value, action=action, store_id=str(store_id or GLOBAL), actor=who)


async def history(session: AsyncSession, store_id: uuid.UUID | None, *, limit: int = 20) -> list[KillSwitchChange]:
    """The latest changes for ``store_id`` and the global ones, newest first."""
    scope: ColumnElement[bool] = KillSwitchChange.store_id.is_(None)
    if store_id is not None:
        scope = or_(scope, KillSwitchChange.store_id == store_id)
    query = select(KillSwitchChange).where(scope).order_by(KillSwitchChange.created_at.desc()).limit(limit)
    return list(await session.scalars(query))


async def all_engaged(session: AsyncSession) -> list[KillSwitch]:
    """Every engaged switch of every store (the CLI's list, the mirror)."""
    return list(await session.scalars(select(KillSwitch).order_by(KillSwitch.created_at)))


async def refresh_mirror(session: AsyncSession, redis: Redis) -> int:
    """Rebuild the Redis mirror from the database (atomically: MULTI/EXEC). Returns how many are engaged."""
    rows = await all_engaged(session)
    members = [f"{row.switch}:{row.store_id or GLOBAL}" for row in rows]
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(MIRROR_KEY)
        if members:
            pipe.sadd(MIRROR_KEY, *members)
        await pipe.execute()
    return len(members)
