"""Nightly reconciliation: a store's ledger against its provider's, drift by drift, streamed.

A run (:func:`reconcile`) for one store and provider over a window (a day by default):

1. A ``reconciliation_runs`` row is committed (``running``), so a run that dies is visible.
2. In one transaction on one connection, the provider's payments created in the window (widened by
   :data:`MARGIN` either side: a payment made at 23:59:59 here may be 00:00:01 there) are streamed into a temporary
   table with ``COPY`` (:meth:`LedgerSource.payments` yields pages; nothing holds the whole list). Local payments
   of the window the listing did not carry are asked for one by one (``payment(ref)``) and added when found (a
   POS reader's payment is not in the store's account listing; a truly missing one is not found).
3. One statement classifies every pair (a ``FULL JOIN`` of the local ``payment_intents`` and the provider's rows
   on the reference), writes the drifts to ``reconciliation_drifts`` and returns the counts by kind; matched pairs
   are counted, never written. A pair neither side of which was created inside the window is left to its own day.
4. Payouts arriving in the window: each payout's balance transactions are streamed into a second temporary table;
   a payout whose transactions do not sum to its amount is a ``payout_mismatch``, a transaction naming a payment
   Till does not have, or a charge of another amount than Till captured, is ``payout_unexplained``.
5. The run is marked ``succeeded`` with its totals (or ``failed`` with the error).

Python holds one page of provider rows at a time and PostgreSQL does the matching, so memory does not grow with
the count (bench/reconciliation.py measures 100,000 payments at two sizes).

Kinds, one per payment, the first that applies: ``missing_locally`` (money at the provider Till never recorded),
``missing_at_provider`` (Till recorded money the provider does not have), ``currency_mismatch``,
``amount_mismatch`` (authorised or captured differ), ``refund_missing_locally`` / ``refund_missing_at_provider``,
``status_mismatch``, ``fee_mismatch``; and per payout ``payout_mismatch`` / ``payout_unexplained``.

Fixes (:func:`resync`, :func:`resolve`): re-sync a payment from the provider through the same idempotent path as a
webhook (``sync_intent``, actor ``reconciliation``) and check that one pair again with the same statement; the
drift clears when it matches. Or mark it resolved with a reason. Both are audited.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core import audit, pg
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.rbac import Principal
from app.core.tenancy import bind_store
from app.payments.provider import PaymentProvider
from app.payments.sync import PaymentBusy, sync_intent
from app.reconciliation.models import ReconciliationDrift, ReconciliationRun
from app.reconciliation.sources import LedgerSource, RemotePayment

log = structlog.get_logger(__name__)

MARGIN = timedelta(hours=1)
RECONCILIATION = "reconciliation"
PAYMENT_KINDS = (
    "missing_locally",
    "missing_at_provider",
    "currency_mismatch",
    "amount_mismatch",
    "refund_missing_locally",
    "refund_missing_at_provider",
    "status_mismatch",
    "fee_mismatch",
)
PAYOUT_KINDS = ("payout_mismatch", "payout_unexplained")
DRIFT_KINDS = PAYMENT_KINDS + PAYOUT_KINDS
KIND_LABELS = {
    "missing_locally": "Charge Till never recorded",
    "missing_at_provider": "Recorded here, not at the provider",
    "currency_mismatch": "Currency differs",
    "amount_mismatch": "Amount differs",
    "refund_missing_locally": "Refund Till never recorded",
    "refund_missing_at_provider": "Refund recorded here, not at the provider",
    "status_mismatch": "Status differs",
    "fee_mismatch": "Fee differs",
    "payout_mismatch": "Payout does not add up",
    "payout_unexplained": "Payout carries an unexplained transaction",
}
MONEY = "('authorized', 'captured', 'refunded')"

_REMOTE_TABLE = """
CREATE TEMPORARY TABLE recon_remote (
    ref text NOT NULL, status text NOT NULL, currency text NOT NULL, amount bigint NOT NULL,
    captured bigint NOT NULL, refunded bigint NOT NULL, fee bigint NOT NULL, created timestamptz NOT NULL
) ON COMMIT DROP
"""
_REMOTE_COLUMNS = ["ref", "status", "currency", "amount", "captured", "refunded", "fee", "created"]
_PAYOUT_TABLES = """
CREATE TEMPORARY TABLE recon_payouts (ref text, currency text, amount bigint, status text) ON COMMIT DROP;
CREATE TEMPORARY TABLE recon_payout_items (
    payout_ref text, id text, type text, source_ref text, amount bigint, fee bigint, net bigint
) ON COMMIT DROP;
"""

# Local payments of the window the provider's listing did not carry: asked for one by one.
_LOCAL_ONLY = """
SELECT p.provider_ref FROM payment_intents AS p
WHERE p.store_id = $1 AND p.provider = $2 AND p.created_at >= $3 AND p.created_at < $4
  AND NOT EXISTS (SELECT 1 FROM recon_remote AS r WHERE r.ref = p.provider_ref)
"""

# Every pair, classified. $1 store, $2 provider, $3/$4 the window, $5/$6 the window widened by the margin,
# $7 a single reference (a re-check) or NULL.
_CLASSIFIED_TEMPLATE = """
WITH local AS (
    SELECT id, provider_ref AS ref, status, currency, amount_minor::bigint AS amount,
           captured_minor::bigint AS captured, refunded_minor::bigint AS refunded,
           CASE WHEN captured_minor > 0 THEN processing_fee_minor ELSE 0 END::bigint AS fee,
           ($7::text IS NOT NULL OR (created_at >= $3 AND created_at < $4)) AS in_window
    FROM payment_intents
    WHERE store_id = $1 AND provider = $2 AND {local_filter}
),
remote AS (
    SELECT *, ($7::text IS NOT NULL OR (created >= $3 AND created < $4)) AS in_window
    FROM recon_remote WHERE $7::text IS NULL OR ref = $7
),
pairs AS (
    SELECT COALESCE(l.ref, r.ref) AS ref, l.id AS intent_id, COALESCE(l.currency, r.currency) AS currency,
           l.status AS l_status, l.amount AS l_amount, l.captured AS l_captured, l.refunded AS l_refunded,
           l.fee AS l_fee, r.status AS r_status, r.amount AS r_amount, r.captured AS r_captured,
           r.refunded AS r_refunded, r.fee AS r_fee, r.currency AS r_currency,
           CASE
             WHEN l.ref IS NULL THEN
               CASE WHEN r.in_window AND r.status IN {money} THEN 'missing_locally' ELSE 'ignored' END
             WHEN r.ref IS NULL THEN
               CASE WHEN l.in_window AND l.status IN {money} THEN 'missing_at_provider' ELSE 'ignored' END
             WHEN NOT (l.in_window OR r.in_window) THEN 'ignored'
             WHEN l.currency <> r.currency THEN 'currency_mismatch'
             WHEN l.amount <> r.amount OR l.captured <> r.captured THEN 'amount_mismatch'
             WHEN r.refunded > l.refunded THEN 'refund_missing_locally'
             WHEN r.refunded < l.refunded THEN 'refund_missing_at_provider'
             WHEN l.status <> r.status THEN 'status_mismatch'
             WHEN l.fee <> r.fee THEN 'fee_mismatch'
             ELSE 'matched'
           END AS kind
    FROM local AS l FULL JOIN remote AS r ON r.ref = l.ref
)
SELECT *,
       CASE kind
         WHEN 'missing_locally' THEN r_captured - r_refunded
         WHEN 'missing_at_provider' THEN l_refunded - l_captured
         WHEN 'amount_mismatch' THEN r_captured - l_captured
         WHEN 'refund_missing_locally' THEN r_refunded - l_refunded
         WHEN 'refund_missing_at_provider' THEN r_refunded - l_refunded
         WHEN 'fee_mismatch' THEN r_fee - l_fee
         ELSE 0
       END AS difference
FROM pairs
"""
# The run: the window widened by the margin. A re-check: one reference (the statement is the same otherwise).
_CLASSIFIED = _CLASSIFIED_TEMPLATE.format(money=MONEY, local_filter="created_at >= $5 AND created_at < $6")
_CLASSIFIED_ONE = _CLASSIFIED_TEMPLATE.format(
    money=MONEY,
    local_filter="provider_ref = $7 AND $5::timestamptz <= $6::timestamptz",  # ($5, $6 unused)
)

_SIDE = """
CASE WHEN {p}_status IS NULL THEN '{{}}'::jsonb ELSE jsonb_build_object(
    'status', {p}_status, 'amount', {p}_amount, 'captured', {p}_captured, 'refunded', {p}_refunded, 'fee', {p}_fee
) END
"""

_RECORD = f"""
WITH classified AS ({_CLASSIFIED}),
written AS (
    INSERT INTO reconciliation_drifts (
        id, store_id, run_id, kind, provider_ref, payout_ref, intent_id, currency, local, remote,
        difference_minor, status, resolution, resolved_by, created_at, updated_at
    )
    SELECT gen_random_uuid(), $1::uuid, $8::uuid, kind, ref, '', intent_id, currency,
           {_SIDE.format(p="l")}, {_SIDE.format(p="r")}, difference, 'open', '', '', now(), now()
    FROM classified WHERE kind NOT IN ('matched', 'ignored')
    RETURNING 1
)
SELECT kind, count(*) AS n, count(*) FILTER (WHERE l_status IS NOT NULL) AS local_n,
       (SELECT count(*) FROM written) AS written
FROM classified GROUP BY kind
"""  # noqa: S608 (composed of constants only)

_LOCAL_SIDE, _REMOTE_SIDE = _SIDE.format(p="l"), _SIDE.format(p="r")
_RECHECK = f"SELECT kind, {_LOCAL_SIDE} AS local, {_REMOTE_SIDE} AS remote, difference FROM ({_CLASSIFIED_ONE}) AS c"  # noqa: S608

_PAYOUT_DRIFTS = """
WITH sums AS (
    SELECT p.ref, p.currency, p.amount, COALESCE(sum(i.net), 0) AS net, count(i.id) AS items
    FROM recon_payouts AS p LEFT JOIN recon_payout_items AS i ON i.payout_ref = p.ref
    GROUP BY p.ref, p.currency, p.amount
),
unexplained AS (
    SELECT i.*, pi.id AS intent_id, pi.captured_minor, pi.currency AS l_currency, p.currency
    FROM recon_payout_items AS i
    JOIN recon_payouts AS p ON p.ref = i.payout_ref
    LEFT JOIN payment_intents AS pi ON pi.store_id = $1 AND pi.provider = $2 AND pi.provider_ref = i.source_ref
    WHERE i.type IN ('charge', 'refund')
      AND (pi.id IS NULL OR (i.type = 'charge' AND i.amount <> pi.captured_minor))
),
written AS (
    INSERT INTO reconciliation_drifts (
        id, store_id, run_id, kind, provider_ref, payout_ref, intent_id, currency, local, remote,
        difference_minor, status, resolution, resolved_by, created_at, updated_at
    )
    SELECT gen_random_uuid(), $1::uuid, $3::uuid, 'payout_mismatch', '', ref, NULL, currency,
           jsonb_build_object('transactions_net', net, 'transactions', items), jsonb_build_object('amount', amount),
           amount - net, 'open', '', '', now(), now()
    FROM sums WHERE amount <> net
    UNION ALL
    SELECT gen_random_uuid(), $1::uuid, $3::uuid, 'payout_unexplained', source_ref, payout_ref, intent_id, currency,
           CASE WHEN intent_id IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('captured', captured_minor) END,
           jsonb_build_object('transaction', id, 'type', type, 'amount', amount, 'fee', fee, 'net', net),
           net, 'open', '', '', now(), now()
    FROM unexplained
    RETURNING kind
)
SELECT kind, count(*) AS n FROM written GROUP BY kind
"""


@dataclass(frozen=True)
class DayWindow:
    start: datetime
    end: datetime

    @classmethod
    def day_before(cls, now: datetime | None = None) -> DayWindow:
        """Yesterday in UTC (the nightly run)."""
        today = (now or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(today - timedelta(days=1), today)


async def _rows(source: LedgerSource, start: int, end: int) -> AsyncIterator[tuple[Any, ...]]:
    async for p in source.payments(start, end):
        yield _row(p)


def _row(p: RemotePayment) -> tuple[Any, ...]:
    return (
        p.ref,
        p.status,
        p.currency,
        p.amount,
        p.captured,
        p.refunded,
        p.fee,
        datetime.fromtimestamp(p.created, UTC),
    )


async def reconcile(
    sessions: async_sessionmaker[AsyncSession],
    store_id: uuid.UUID,
    source: LedgerSource,
    *,
    window: DayWindow | None = None,
    trigger: str = "nightly",
) -> ReconciliationRun:
    """One run for one store and provider; see the module docstring. Returns the finished run."""
    window = window or DayWindow.day_before()
    engine: AsyncEngine = sessions.kw["bind"]
    async with sessions() as session, session.begin():
        bind_store(session, store_id)
        run = ReconciliationRun(
            provider=source.name, window_start=window.start, window_end=window.end, status="running", trigger=trigger
        )
        session.add(run)
    started = time.perf_counter()
    try:
        totals, provider_count, local_count, payout_count = await _compare(engine, store_id, source, window, run.id)
    except Exception as exc:
        log.exception("reconciliation.failed", store_id=str(store_id), run_id=str(run.id))
        async with sessions() as session, session.begin():
            bind_store(session, store_id)
            failed = await session.get(ReconciliationRun, run.id)
            assert failed is not None
            failed.status, failed.error, failed.finished_at = "failed", f"{type(exc).__name__}: {exc}"[:2000], _now()
        return failed
    async with sessions() as session, session.begin():
        bind_store(session, store_id)
        done = await session.get(ReconciliationRun, run.id)
        assert done is not None
        done.status, done.totals, done.finished_at = "succeeded", totals, _now()
        done.provider_count, done.local_count, done.payout_count = provider_count, local_count, payout_count
    log.info(
        "reconciliation.done",
        store_id=str(store_id),
        run_id=str(run.id),
        provider=source.name,
        seconds=round(time.perf_counter() - started, 3),
        **{k: v for k, v in totals.items() if v},
    )
    return done


def _now() -> datetime:
    return datetime.now(UTC)


async def _compare(
    engine: AsyncEngine, store_id: uuid.UUID, source: LedgerSource, window: DayWindow, run_id: uuid.UUID
) -> tuple[dict[str, int], int, int, int]:
    wide_start, wide_end = window.start - MARGIN, window.end + MARGIN
    totals = {"matched": 0, **dict.fromkeys(DRIFT_KINDS, 0)}
    async with pg.transaction(engine) as conn:
        await conn.execute(_REMOTE_TABLE)
        await conn.copy_records_to_table(
            "recon_remote",
            records=_rows(source, int(wide_start.timestamp()), int(wide_end.timestamp())),
            columns=_REMOTE_COLUMNS,
        )
        await conn.execute("CREATE INDEX ON recon_remote (ref); ANALYZE recon_remote")
        extra: list[tuple[Any, ...]] = []
        for row in await conn.fetch(_LOCAL_ONLY, store_id, source.name, window.start, window.end):
            found = await source.payment(row["provider_ref"])
            if found is not None:
                extra.append(_row(found))
        if extra:
            await conn.copy_records_to_table("recon_remote", records=extra, columns=_REMOTE_COLUMNS)
        local_count = 0
        for row in await conn.fetch(
            _RECORD, store_id, source.name, window.start, window.end, wide_start, wide_end, None, run_id
        ):
            if row["kind"] != "ignored":
                totals[row["kind"]] = int(row["n"])
                local_count += int(row["local_n"])
        provider_count = sum(n for k, n in totals.items() if k != "missing_at_provider")

        await conn.execute(_PAYOUT_TABLES)
        payout_count = 0
        async for payout in source.payouts(int(window.start.timestamp()), int(window.end.timestamp())):
            payout_count += 1
            await conn.execute(
                "INSERT INTO recon_payouts VALUES ($1, $2, $3, $4)",
                payout.ref,
                payout.currency,
                payout.amount,
                payout.status,
            )
            await conn.copy_records_to_table(
                "recon_payout_items",
                records=_items(source, payout.ref),
                columns=["payout_ref", "id", "type", "source_ref", "amount", "fee", "net"],
            )
        if payout_count:
            for row in await conn.fetch(_PAYOUT_DRIFTS, store_id, source.name, run_id):
                totals[row["kind"]] = int(row["n"])
    return totals, provider_count, local_count, payout_count


async def _items(source: LedgerSource, payout_ref: str) -> AsyncIterator[tuple[Any, ...]]:
    async for i in source.payout_items(payout_ref):
        yield (payout_ref, i.id, i.type, i.source_ref, i.amount, i.fee, i.net)


# -- the report and its fixes ------------------------------------------------------------------------------------


class DriftClosed(Conflict):
    code = "drift_closed"
    title = "Drift already closed"


async def latest_run(session: AsyncSession) -> ReconciliationRun | None:
    run: ReconciliationRun | None = await session.scalar(
        select(ReconciliationRun).order_by(ReconciliationRun.created_at.desc()).limit(1)
    )
    return run


async def get_run(session: AsyncSession, run_id: uuid.UUID) -> ReconciliationRun:
    run = await session.get(ReconciliationRun, run_id)
    if run is None:
        raise NotFound("No such reconciliation run.")
    return run


async def get_drift(session: AsyncSession, drift_id: uuid.UUID) -> ReconciliationDrift:
    drift = await session.scalar(select(ReconciliationDrift).where(ReconciliationDrift.id == drift_id))
    if drift is None:
        raise NotFound("No such drift.")
    return drift


async def resync(
    sessions: async_sessionmaker[AsyncSession],
    store_id: uuid.UUID,
    provider: PaymentProvider,
    source: LedgerSource,
    drift_id: uuid.UUID,
    principal: Principal | None,
) -> ReconciliationDrift:
    """Bring the drift's payment up to the provider's answer, then check that pair again: the drift clears when it
    now matches, else it stays open with what still differs. Audited either way."""
    async with sessions() as session:
        bind_store(session, store_id)
        drift = await get_drift(session, drift_id)
        if drift.status != "open":
            raise DriftClosed(f"This drift is {drift.status} already.")
        if drift.kind in PAYOUT_KINDS or not drift.provider_ref:
            raise Conflict("A payout is not re-synced: check it at the provider and resolve it with a reason.")
        ref = drift.provider_ref
    detail = ""
    try:
        outcome = await sync_intent(sessions, store_id, provider, ref, actor=RECONCILIATION)
        detail = outcome.detail
    except PaymentBusy as exc:
        raise Conflict(f"{exc}: try again in a moment.") from exc
    kind, local, remote, difference = await recheck(sessions.kw["bind"], store_id, source, ref)
    async with sessions() as session, session.begin():
        bind_store(session, store_id)
        drift = await get_drift(session, drift_id)
        if drift.status != "open":  # a parallel re-sync cleared it
            return drift
        cleared = kind in ("matched", "ignored")
        drift.local, drift.remote, drift.difference_minor = local, remote, difference
        if cleared:
            drift.status, drift.resolution = "cleared", "Re-synced from the provider: it matches now."
            drift.resolved_by, drift.resolved_at = audit.actor_label(principal), _now()
        else:
            drift.resolution = f"Re-synced, but still: {KIND_LABELS.get(kind, kind).lower()}."
        audit.record(
            session,
            principal,
            "reconciliation.resynced",
            target_type="reconciliation_drift",
            target_id=drift.id,
            details={"provider_ref": ref, "kind": drift.kind, "now": kind, "sync": detail[:200]},
        )
        return drift


async def recheck(
    engine: AsyncEngine, store_id: uuid.UUID, source: LedgerSource, ref: str
) -> tuple[str, dict[str, Any], dict[str, Any], int]:
    """Classify one payment now, with the run's own statement: (kind, local side, provider side, difference)."""
    remote = await source.payment(ref)
    async with pg.transaction(engine) as conn:
        await conn.execute(_REMOTE_TABLE)
        if remote is not None:
            await conn.copy_records_to_table("recon_remote", records=[_row(remote)], columns=_REMOTE_COLUMNS)
        far = datetime(1970, 1, 1, tzinfo=UTC)
        row = await conn.fetchrow(_RECHECK, store_id, source.name, far, far, far, far, ref)
    if row is None:
        return "ignored", {}, {}, 0
    return str(row["kind"]), dict(row["local"]), dict(row["remote"]), int(row["difference"])


async def resolve(
    session: AsyncSession, drift_id: uuid.UUID, reason: str, principal: Principal | None
) -> ReconciliationDrift:
    """Close a drift by hand with a reason (the session is bound to the store; the caller commits). Audited."""
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("Say why it is resolved.", fields={"reason": "Required: what was done about it."})
    if len(reason) > 500:
        raise ValidationFailed("The reason is too long.", fields={"reason": "At most 500 characters."})
    drift = await get_drift(session, drift_id)
    if drift.status != "open":
        raise DriftClosed(f"This drift is {drift.status} already.")
    drift.status, drift.resolution = "resolved", reason
    drift.resolved_by, drift.resolved_at = audit.actor_label(principal), _now()
    audit.record(
        session,
        principal,
        "reconciliation.resolved",
        target_type="reconciliation_drift",
        target_id=drift.id,
        details={
            "provider_ref": drift.provider_ref,
            "payout_ref": drift.payout_ref,
            "kind": drift.kind,
            "reason": reason,
        },
    )
    return drift
