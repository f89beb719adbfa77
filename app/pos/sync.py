"""``POST /pos/api/sync``: a tablet's offline queue, oldest first, each sale exactly once (invariant 11).

A batch names its register and shift; at most :data:`MAX_ENTRIES` entries and :data:`MAX_BYTES` of body (413
above). Each entry is checked on its own and placed in its own transaction under the claim
``(store, register, client_sale_id)`` (app/pos/sales.py), so a replayed or doubled batch answers ``existing``
and one bad entry never holds back the others:

- ``refused``: the entry's checksum (hex HMAC-SHA256 of the sale's canonical JSON under the shift's offline
  key, compared in constant time) does not match — it is logged, counted in ``till_pos_sync_refused_total`` and
  put in the audit trail — or the sale cannot be a sale of this store at all (malformed, another register,
  an unknown product, a time in the future, payments that do not add up, a card payment that is not an
  approved one of this register, its id used for another sale).
- ``review``: sold as the tablet charged it, with its conflicts — price changed, not for sale, stock short,
  a discount over the limit without a valid PIN, the shift closed meanwhile, or over an offline limit (store
  settings ``pos``: the tenders allowed offline, the most one offline sale and the offline sales in a row may
  come to, how many hours old an offline sale may be).
- ``created`` / ``existing``: sold now / sold before.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog
from prometheus_client import Counter

from app.core import audit, pg
from app.core.encryption import EncryptionError, current_keyring
from app.core.errors import TillError, ValidationFailed
from app.core.tenancy import bind_store
from app.pos.canonical import checksum_matches, key_from_text, sale_fingerprint
from app.pos.sales import (
    Mode,
    PosSales,
    Prepared,
    SaleAnswer,
    StoredSale,
    Till,
    VariantInfo,
    load_till,
    load_variants,
    reason_of,
    stored_sales,
)
from app.pos.schemas import SaleIn, SyncEntryIn, SyncIn, convert, decode
from app.pos.shifts import offline_key_context
from app.stored_value.purchases import gift_card_products, pos_sale_cards

log = structlog.get_logger(__name__)

__all__ = ["MAX_BYTES", "MAX_ENTRIES", "SYNC_ENTRIES", "SYNC_REFUSED", "PayloadTooLarge", "PosSync", "SyncResult"]

MAX_ENTRIES = 200
MAX_BYTES = 1_000_000
SYNC_REFUSED = Counter("till_pos_sync_refused_total", "Offline POS sales refused at sync", ["reason"])
SYNC_ENTRIES = Counter("till_pos_sync_entries_total", "Offline POS sales synced, by outcome", ["status"])

_RUN = """
    SELECT s.sold_at, s.offline, o.total_minor
    FROM pos_sales s JOIN orders o ON o.id = s.order_id AND o.store_id = $1
    WHERE s.store_id = $1 AND s.register_id = $2 AND s.shift_id = $3
"""


class PayloadTooLarge(TillError):
    status_code = 413
    title = "Payload too large"
    code = "payload_too_large"


@dataclass(frozen=True)
class SyncResult:
    client_sale_id: str
    status: Literal["created", "existing", "review", "refused"]
    order_number: int | None = None
    reason: str = ""
    # ``existing``: the gift cards the sale activated when Till first recorded it, {last4, amount_minor} without
    # codes — its answer was lost, so the tablet tells the cashier a manager must replace them.
    gift_cards: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "client_sale_id": self.client_sale_id,
            "status": self.status,
            "order_number": self.order_number,
            "reason": self.reason,
        }
        if self.gift_cards:
            body["gift_cards"] = self.gift_cards
        return body


@dataclass
class OfflineRun:
    """The register's sales in this shift by the tablet's clock, for the limit on offline sales in a row: those
    made offline since its last online sale."""

    sales: list[tuple[datetime, bool, int]] = field(default_factory=list)

    def before(self, at: datetime) -> int:
        online = [t for t, offline, _ in self.sales if not offline and t <= at]
        since = max(online) if online else None
        return sum(total for t, offline, total in self.sales if offline and t <= at and (since is None or t > since))

    def add(self, at: datetime, total_minor: int) -> None:
        self.sales.append((at, True, total_minor))


class _Refused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class PosSync:
    def __init__(self, sales: PosSales) -> None:
        self.sales = sales
        self.store = sales.store

    async def sync(self, raw: bytes) -> list[SyncResult]:
        if len(raw) > MAX_BYTES:
            raise PayloadTooLarge(f"A sync batch is at most {MAX_BYTES} bytes; send fewer entries at a time.")
        batch = decode(raw, SyncIn)
        if len(batch.entries) > MAX_ENTRIES:
            raise PayloadTooLarge(f"A sync batch has at most {MAX_ENTRIES} entries; send the rest in another.")
        engine = self.sales.engine
        async with pg.connection(engine) as conn:
            till = await load_till(conn, self.store, batch.register_id, batch.shift_id)
            parsed = [self._parse(raw_entry) for raw_entry in batch.entries]
            ids = [e.client_sale_id for e in parsed if isinstance(e, SyncEntryIn)]
            stored = await stored_sales(conn, self.store.id, till.register_id, ids)
            variant_ids = [
                uuid.UUID(str(line["variant_id"]))
                for e in parsed
                if isinstance(e, SyncEntryIn)
                for line in _lines(e.sale)
            ]
            variants = await load_variants(conn, self.store.id, variant_ids)
            run = OfflineRun([(r["sold_at"], r["offline"], r["total_minor"]) for r in await conn.fetch(
                _RUN, self.store.id, till.register_id, till.shift_id)])  # fmt: skip
        key = self._key(till)
        results = []
        for raw_entry, entry in zip(batch.entries, parsed, strict=True):
            try:
                if not isinstance(entry, SyncEntryIn):
                    raise entry
                result = await self._entry(till, key, entry, stored.get(entry.client_sale_id), variants, run)
            except _Refused as refused:
                SYNC_REFUSED.labels(reason=refused.code).inc()
                result = SyncResult(_named_id(raw_entry), "refused", None, refused.reason)
                if refused.code == "bad_checksum":
                    await self._report(till, result)
            SYNC_ENTRIES.labels(status=result.status).inc()
            results.append(result)
        return results

    @staticmethod
    def _parse(raw_entry: Any) -> SyncEntryIn | _Refused:
        try:
            return convert(raw_entry, SyncEntryIn)
        except ValidationFailed as exc:
            return _Refused("malformed", f"The entry is not right: {_fields(exc)}")

    def _key(self, till: Till) -> bytes | None:
        try:
            text = current_keyring().decrypt(
                till.offline_key_ciphertext, context=offline_key_context(self.store.id, till.shift_id)
            )
            return key_from_text(text)
        except (EncryptionError, ValueError):
            log.error("pos.sync.key_unreadable", store_id=str(self.store.id), shift_id=str(till.shift_id))
            return None

    async def _entry(
        self,
        till: Till,
        key: bytes | None,
        entry: SyncEntryIn,
        stored: StoredSale | None,
        variants: dict[uuid.UUID, VariantInfo],
        run: OfflineRun,
    ) -> SyncResult:
        named = str(entry.client_sale_id)
        if key is None or not checksum_matches(key, entry.sale, entry.checksum):
            raise _Refused("bad_checksum", "The sale does not match its checksum: it was changed after it was made.")
        try:
            sale = convert(entry.sale, SaleIn)
        except ValidationFailed as exc:
            raise _Refused("malformed", f"The sale is not right: {_fields(exc)}") from None
        if sale.client_sale_id != entry.client_sale_id:
            raise _Refused("malformed", "The entry and its sale name different client_sale_ids.")
        fingerprint = sale_fingerprint(entry.sale)
        if stored is not None:
            if stored.request_hash != fingerprint:
                raise _Refused(
                    "reused_id",
                    f"Order #{stored.order_number} was made under this client_sale_id from a different sale.",
                )
            return await self._existing(named, stored.order_id, stored.order_number)
        try:
            async with pg.connection(self.sales.engine) as conn:
                prepared = await self.sales.prepare(conn, till, sale, fingerprint, variants, Mode.SYNC)
            prepared.conflicts.extend(self._over_limits(till, sale, run))
            answer = await self._place(till, prepared)
        except TillError as exc:
            raise _Refused(exc.code, f"{exc.detail} {_fields(exc)}".strip()) from None
        if answer.status == "existing":
            return await self._existing(named, answer.order_id, answer.order_number)
        run.add(sale.sold_at, sale.total_minor)
        reason = reason_of(answer.conflicts, till.currency) if answer.status == "review" else ""
        return SyncResult(named, answer.status, answer.order_number, reason)

    async def _existing(self, named: str, order_id: uuid.UUID, order_number: int) -> SyncResult:
        """A sale Till recorded before (a replay, or an online sale whose answer was lost): with the gift cards it
        activated then, if any (their codes were in the lost answer: nobody saw them)."""
        if not gift_card_products(self.store.settings):  # no statement for stores that sell no gift cards
            return SyncResult(named, "existing", order_number)
        async with pg.connection(self.sales.engine) as conn:
            cards = await pos_sale_cards(conn, self.store, order_id)
        sold = [{"last4": c.last4, "amount_minor": c.amount_minor} for c in cards]
        return SyncResult(named, "existing", order_number, gift_cards=sold)

    async def _place(self, till: Till, prepared: Prepared) -> SaleAnswer:
        answer = await self.sales.place(till, prepared, offline=True, allow_closed=till.shift_closed)
        if answer is None:  # the shift closed while this sale was on its way: it is still sold, for review
            prepared.conflicts.append({"kind": "shift_closed"})
            answer = await self.sales.place(till, prepared, offline=True, allow_closed=True)
        assert answer is not None
        return answer

    def _over_limits(self, till: Till, sale: SaleIn, run: OfflineRun) -> list[dict[str, Any]]:
        limits, conflicts = till.pos, []
        if limits.max_offline_hours is not None:
            age = self.sales.now - sale.sold_at
            if age > timedelta(hours=limits.max_offline_hours):
                hours = int(age.total_seconds() // 3600)
                conflicts.append({"kind": "offline_too_old", "hours": hours, "limit_hours": limits.max_offline_hours})
        if limits.max_offline_sale_minor is not None and sale.total_minor > limits.max_offline_sale_minor:
            conflicts.append({"kind": "offline_sale_limit", "total_minor": sale.total_minor,
                              "limit_minor": limits.max_offline_sale_minor})  # fmt: skip
        if limits.max_offline_total_minor is not None:
            in_a_row = run.before(sale.sold_at) + sale.total_minor
            if in_a_row > limits.max_offline_total_minor:
                conflicts.append({"kind": "offline_total_limit", "run_minor": in_a_row,
                                  "limit_minor": limits.max_offline_total_minor})  # fmt: skip
        for kind in sorted({t.kind for t in sale.tenders} - set(limits.offline_tenders)):
            conflicts.append({"kind": "offline_tender", "tender": kind, "allowed": ", ".join(limits.offline_tenders)})
        return conflicts

    async def _report(self, till: Till, result: SyncResult) -> None:
        """A tampered sale: the application log and the store's audit trail say who sent it from where."""
        principal = self.sales.principal
        log.warning("pos.sync.bad_checksum", store_id=str(self.store.id), register_id=str(till.register_id),
                    shift_id=str(till.shift_id), client_sale_id=result.client_sale_id,
                    user_id=str(principal.user_id))  # fmt: skip
        async with self.sales.sessions() as session, session.begin():
            bind_store(session, self.store.id)
            audit.record(session, principal, "pos.sync_refused", target_type="shift", target_id=till.shift_id,
                         details={"client_sale_id": result.client_sale_id, "reason": "bad checksum",
                                  "register": till.register_name})  # fmt: skip


def _lines(sale: Any) -> list[dict[str, Any]]:
    """The sale's lines that name a variant id, before the sale is checked (to load their products at once)."""
    lines = sale.get("lines") if isinstance(sale, dict) else None
    found = []
    for line in lines if isinstance(lines, list) else []:
        if isinstance(line, dict):
            try:
                uuid.UUID(str(line.get("variant_id")))
            except ValueError:
                continue
            found.append(line)
    return found


def _named_id(raw_entry: Any) -> str:
    value = raw_entry.get("client_sale_id") if isinstance(raw_entry, dict) else None
    return str(value)[:64] if value is not None else ""


def _fields(exc: TillError) -> str:
    return "; ".join(f"{name}: {message}" for name, message in exc.fields.items())
