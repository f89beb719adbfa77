"""``/api/v1/admin/payments/reconciliation``: the latest (or a named) run with its drifts, an on-demand run, and the
two fixes (re-sync from the provider, resolve with a reason). Managers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound, ValidationFailed
from app.core.rbac import Role, principal_of, require_role
from app.core.tenancy import bind_store
from app.payments.registry import provider_of
from app.reconciliation import services
from app.reconciliation.jobs import reconcile_store, source_for
from app.reconciliation.models import ReconciliationDrift, ReconciliationRun
from app.stores.models import Store

DbSession = NamedDependency[AsyncSession]
MAX_WINDOW = timedelta(days=31)


class RunOut(msgspec.Struct):
    id: uuid.UUID
    provider: str
    window_start: datetime
    window_end: datetime
    status: str
    trigger: str
    provider_count: int
    local_count: int
    payout_count: int
    totals: dict[str, int]
    error: str
    started_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, run: ReconciliationRun) -> RunOut:
        return cls(
            id=run.id,
            provider=run.provider,
            window_start=run.window_start,
            window_end=run.window_end,
            status=run.status,
            trigger=run.trigger,
            provider_count=run.provider_count,
            local_count=run.local_count,
            payout_count=run.payout_count,
            totals={k: int(v) for k, v in run.totals.items()},
            error=run.error,
            started_at=run.created_at,
            finished_at=run.finished_at,
        )


class DriftOut(msgspec.Struct):
    id: uuid.UUID
    run_id: uuid.UUID
    kind: str
    status: str
    provider_ref: str
    payout_ref: str
    currency: str
    difference_minor: int
    local: dict[str, Any]
    provider: dict[str, Any]
    resolution: str
    resolved_by: str
    resolved_at: datetime | None

    @classmethod
    def of(cls, d: ReconciliationDrift) -> DriftOut:
        return cls(
            id=d.id,
            run_id=d.run_id,
            kind=d.kind,
            status=d.status,
            provider_ref=d.provider_ref,
            payout_ref=d.payout_ref,
            currency=d.currency,
            difference_minor=d.difference_minor,
            local=d.local,
            provider=d.remote,
            resolution=d.resolution,
            resolved_by=d.resolved_by,
            resolved_at=d.resolved_at,
        )


class ReportOut(msgspec.Struct):
    run: RunOut | None
    drifts: list[DriftOut]


class RunIn(msgspec.Struct):
    since: datetime | None = None
    until: datetime | None = None


class ResolveIn(msgspec.Struct):
    reason: str = ""


class ReconciliationApiController(Controller):
    path = "/api/v1/admin/payments/reconciliation"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    tags = ["payments"]

    @get(
        "/",
        summary="The latest reconciliation run (or `run_id`'s) with its drifts",
        description="`totals` counts matched payments and each drift kind. Drifts: `missing_locally`, "
        "`missing_at_provider`, `currency_mismatch`, `amount_mismatch`, `refund_missing_locally`, "
        "`refund_missing_at_provider`, `status_mismatch`, `fee_mismatch`, `payout_mismatch`, `payout_unexplained`; "
        "each `open`, `cleared` (re-synced) or `resolved` (by hand). `run` is null before the first run.",
    )
    async def report(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        run_id: Annotated[uuid.UUID | None, QueryParameter(description="A run; the latest when left out")] = None,
        status: Annotated[str, QueryParameter(description="open, cleared or resolved; every one when empty")] = "",
        kind: Annotated[str, QueryParameter(description="One drift kind; every one when empty")] = "",
    ) -> ReportOut:
        if status and status not in ("open", "cleared", "resolved"):
            raise ValidationFailed("Unknown status.", fields={"status": "One of open, cleared, resolved."})
        if kind and kind not in services.DRIFT_KINDS:
            raise ValidationFailed("Unknown drift kind.", fields={"kind": f"One of {', '.join(services.DRIFT_KINDS)}."})
        bind_store(db_session, principal_of(request).store_id)
        run = await services.get_run(db_session, run_id) if run_id else await services.latest_run(db_session)
        if run is None:
            return ReportOut(run=None, drifts=[])
        query = select(ReconciliationDrift).where(ReconciliationDrift.run_id == run.id)
        if status:
            query = query.where(ReconciliationDrift.status == status)
        if kind:
            query = query.where(ReconciliationDrift.kind == kind)
        drifts = await db_session.scalars(query.order_by(ReconciliationDrift.kind, ReconciliationDrift.id).limit(5000))
        return ReportOut(run=RunOut.of(run), drifts=[DriftOut.of(d) for d in drifts])

    @post(
        "/runs",
        status_code=201,
        summary="Reconcile now",
        description="`since`/`until` (ISO 8601) default to the last 24 hours; at most 31 days; `until` after "
        "`since`. Runs at once and answers the finished run (a failed run says why in `error`).",
    )
    async def run(self, request: Request[Any, Any, Any], data: JSONBody[RunIn]) -> RunOut:
        me = principal_of(request)
        until = data.until or datetime.now(UTC)
        since = data.since or until - timedelta(days=1)
        if since.tzinfo is None or until.tzinfo is None:
            raise ValidationFailed("Give times with a UTC offset.", fields={"since": "e.g. 2026-12-04T00:00:00Z"})
        if until <= since:
            raise ValidationFailed("The window is empty.", fields={"until": "Must be after since."})
        if until - since > MAX_WINDOW:
            raise ValidationFailed("The window is too long.", fields={"since": "At most 31 days before until."})
        state = request.app.state
        done = await reconcile_store(
            state.sessions,
            state.redis,
            state.settings,
            me.store_id,
            window=services.DayWindow(since, until),
            trigger=f"api: {me.display_name}",
        )
        if done is None:
            raise ValidationFailed("This store's payment provider has no ledger Till can reconcile against.")
        return RunOut.of(done)

    @post("/drifts/{drift_id:uuid}/resync", status_code=200, summary="Re-sync a drift's payment from the provider")
    async def resync(self, request: Request[Any, Any, Any], drift_id: FromPath[uuid.UUID]) -> DriftOut:
        """The drift comes back `cleared` when the payment matches after the sync, else still `open` (409 for a
        payout drift or one already closed)."""
        me = principal_of(request)
        state = request.app.state
        async with state.sessions() as session:
            store = await session.get(Store, me.store_id)
        if store is None:
            raise NotFound("No such store.")
        provider = await provider_of(state.sessions, store, state.redis, state.settings)
        source = source_for(store, provider, state.redis)
        if source is None:
            raise ValidationFailed(f"{provider.name} has no ledger Till can read.")
        return DriftOut.of(await services.resync(state.sessions, me.store_id, provider, source, drift_id, me))

    @post("/drifts/{drift_id:uuid}/resolve", status_code=200, summary="Mark a drift resolved, with a reason")
    async def resolve(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        drift_id: FromPath[uuid.UUID],
        data: JSONBody[ResolveIn],
    ) -> Response[DriftOut]:
        me = principal_of(request)
        bind_store(db_session, me.store_id)
        drift = await services.resolve(db_session, drift_id, data.reason, me)
        return Response(DriftOut.of(drift))
