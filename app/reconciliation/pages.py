"""Staff pages: the reconciliation report (managers) and the kill switches (settings; managers and owners)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import kill_switches
from app.core.csv_export import csv_response
from app.core.errors import TillError, ValidationFailed
from app.core.rbac import Role, principal_of, require_role
from app.core.tenancy import bind_store
from app.payments.registry import provider_of
from app.reconciliation import metrics as _metrics  # noqa: F401  (registers the /metrics figures)
from app.reconciliation import provider_calls, services
from app.reconciliation.jobs import reconcile_store, source_for
from app.reconciliation.models import ReconciliationDrift, ReconciliationRun
from app.stores.models import Store

DbSession = NamedDependency[AsyncSession]
FormData = URLEncodedBody[dict[str, str]]
NOTICES = {
    "cleared": "Re-synced from the provider: it matches now, and the drift is cleared.",
    "still": "Re-synced from the provider, but it still differs: see below.",
    "resolved": "Marked resolved.",
    "ran": "Reconciled: the report below is the new run.",
    "engaged": "Switch engaged.",
    "released": "Switch released.",
}
DRIFT_STATUSES = ("open", "cleared", "resolved")


class ReconciliationPagesController(Controller):
    path = "/staff/payments/reconciliation"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    include_in_schema = False

    @get("/")
    async def report(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        run: FromQuery[uuid.UUID | None] = None,
        kind: FromQuery[str] = "",
        status: FromQuery[str] = "open",
        notice: FromQuery[str] = "",
    ) -> Template:
        me = principal_of(request)
        bind_store(db_session, me.store_id)
        current = await services.get_run(db_session, run) if run else await services.latest_run(db_session)
        runs = list(
            await db_session.scalars(select(ReconciliationRun).order_by(ReconciliationRun.created_at.desc()).limit(10))
        )
        drifts: list[ReconciliationDrift] = []
        kind = kind if kind in services.DRIFT_KINDS else ""
        status = status if status in DRIFT_STATUSES else ""
        counts: dict[str, int] = {}
        if current is not None:
            query = select(ReconciliationDrift).where(ReconciliationDrift.run_id == current.id)
            counted = await db_session.execute(
                select(ReconciliationDrift.status, func.count())
                .where(ReconciliationDrift.run_id == current.id)
                .group_by(ReconciliationDrift.status)
            )
            counts = {str(s): int(n) for s, n in counted.tuples()}
            if kind:
                query = query.where(ReconciliationDrift.kind == kind)
            if status:
                query = query.where(ReconciliationDrift.status == status)
            drifts = list(await db_session.scalars(query.order_by(ReconciliationDrift.kind).limit(500)))
        return Template(
            "reconciliation/report.html",
            context={
                "me": me,
                "run": current,
                "runs": runs,
                "drifts": drifts,
                "counts": counts,
                "kind": kind,
                "status": status,
                "kinds": services.DRIFT_KINDS,
                "labels": services.KIND_LABELS,
                "statuses": DRIFT_STATUSES,
                "notice": NOTICES.get(notice, ""),
            },
        )

    @post("/run", status_code=303)
    async def run_now(self, request: Request[Any, Any, Any]) -> Redirect:
        """Reconcile the last 24 hours now (on demand; the nightly job does yesterday)."""
        me = principal_of(request)
        state = request.app.state
        now = datetime.now(UTC)
        window = services.DayWindow(now - timedelta(days=1), now)
        done = await reconcile_store(
            state.sessions,
            state.redis,
            state.settings,
            me.store_id,
            window=window,
            trigger=f"on demand: {me.display_name}",
        )
        target = "/staff/payments/reconciliation"
        return Redirect(f"{target}?run={done.id}&notice=ran" if done else target, status_code=303)

    @get("/runs/{run_id:uuid}/csv")
    async def run_csv(
        self, request: Request[Any, Any, Any], db_session: DbSession, run_id: FromPath[uuid.UUID]
    ) -> Response[str]:
        bind_store(db_session, principal_of(request).store_id)
        run = await services.get_run(db_session, run_id)
        drifts = await db_session.scalars(
            select(ReconciliationDrift).where(ReconciliationDrift.run_id == run.id).order_by(ReconciliationDrift.kind)
        )
        header = ["kind", "status", "provider_ref", "payout_ref", "currency", "difference_minor", "local", "provider"]
        rows = [[*header, "resolution", "resolved_by"]] + [
            [
                d.kind,
                d.status,
                d.provider_ref,
                d.payout_ref,
                d.currency,
                str(d.difference_minor),
                _side(d.local),
                _side(d.remote),
                d.resolution,
                d.resolved_by,
            ]
            for d in drifts
        ]
        return csv_response(rows, f"reconciliation-{run.window_start:%Y-%m-%d}-{run.id}.csv")

    @get("/drifts/{drift_id:uuid}")
    async def drift(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        drift_id: FromPath[uuid.UUID],
        notice: FromQuery[str] = "",
    ) -> Template:
        bind_store(db_session, principal_of(request).store_id)
        drift = await services.get_drift(db_session, drift_id)
        return self._drift_page(request, drift, {}, NOTICES.get(notice, ""))

    def _drift_page(
        self,
        request: Request[Any, Any, Any],
        drift: ReconciliationDrift,
        errors: dict[str, str],
        notice: str,
        status_code: int = 200,
    ) -> Template:
        return Template(
            "reconciliation/drift.html",
            context={
                "me": principal_of(request),
                "drift": drift,
                "labels": services.KIND_LABELS,
                "errors": errors,
                "notice": notice,
                "payout_kinds": services.PAYOUT_KINDS,
            },
            status_code=status_code,
        )

    @post("/drifts/{drift_id:uuid}/resync", status_code=303)
    async def resync(self, request: Request[Any, Any, Any], drift_id: FromPath[uuid.UUID]) -> Redirect | Template:
        me = principal_of(request)
        state = request.app.state
        async with state.sessions() as session:
            store = await session.get(Store, me.store_id)
        assert store is not None
        provider = await provider_of(state.sessions, store, state.redis, state.settings)
        source = source_for(store, provider, state.redis)
        try:
            if source is None:
                raise ValidationFailed(f"{provider.name} has no ledger Till can read.")
            drift = await services.resync(state.sessions, me.store_id, provider, source, drift_id, me)
        except TillError as exc:
            async with state.sessions() as session:
                bind_store(session, me.store_id)
                current = await services.get_drift(session, drift_id)
                return self._drift_page(request, current, {"form": exc.detail}, "", exc.status_code)
        notice = "cleared" if drift.status == "cleared" else "still"
        return Redirect(f"/staff/payments/reconciliation/drifts/{drift.id}?notice={notice}", status_code=303)

    @post("/drifts/{drift_id:uuid}/resolve", status_code=303)
    async def resolve(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        drift_id: FromPath[uuid.UUID],
        data: FormData,
    ) -> Redirect | Template:
        me = principal_of(request)
        bind_store(db_session, me.store_id)
        try:
            drift = await services.resolve(db_session, drift_id, data.get("reason", ""), me)
        except TillError as exc:
            await db_session.rollback()
            current = await services.get_drift(db_session, drift_id)
            errors = {"form": exc.detail, **exc.fields}
            page = self._drift_page(request, current, errors, "", exc.status_code)
            page.context["reason"] = data.get("reason", "")
            return page
        return Redirect(f"/staff/payments/reconciliation/drifts/{drift.id}?notice=resolved", status_code=303)


def _side(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items())


class KillSwitchPagesController(Controller):
    """Settings → Kill switches: this store's switches (and whether one is on for every store)."""

    path = "/staff/settings/switches"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    include_in_schema = False

    @get("/")
    async def page(
        self, request: Request[Any, Any, Any], db_session: DbSession, notice: FromQuery[str] = ""
    ) -> Template:
        me = principal_of(request)
        return Template(
            "reconciliation/switches.html",
            context={
                "me": me,
                "switches": await kill_switches.states(db_session, me.store_id),
                "history": await kill_switches.history(db_session, me.store_id),
                "notice": NOTICES.get(notice, ""),
            },
        )

    @post("/{name:str}/{action:str}", status_code=303)
    async def change(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        name: FromPath[str],
        action: FromPath[str],
        data: FormData,
    ) -> Redirect | Template:
        me = principal_of(request)
        try:
            switch = kill_switches.Switch(name)
        except ValueError:
            raise ValidationFailed(f"There is no switch {name!r}.") from None
        if action not in ("engage", "release"):
            raise ValidationFailed(f"A switch is engaged or released, not {action!r}.")
        reason = data.get("reason", "").strip()
        if action == "engage" and not reason:
            page = Template(
                "reconciliation/switches.html",
                context={
                    "me": me,
                    "switches": await kill_switches.states(db_session, me.store_id),
                    "history": await kill_switches.history(db_session, me.store_id),
                    "notice": "",
                    "errors": {switch.value: "Say why (it goes in the audit trail)."},
                },
                status_code=422,
            )
            return page
        change = kill_switches.engage if action == "engage" else kill_switches.release
        await change(db_session, switch, me.store_id, principal=me, reason=reason[:500])
        await db_session.commit()
        await kill_switches.refresh_mirror(db_session, request.app.state.redis)
        notice = "engaged" if action == "engage" else "released"
        return Redirect(f"/staff/settings/switches?notice={notice}", status_code=303)


class ProviderCallPagesController(Controller):
    """The provider call audit, searchable by a payment's reference, an idempotency key or a correlation id."""

    path = "/staff/payments/provider-calls"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    include_in_schema = False

    @get("/")
    async def calls(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        q: FromQuery[str] = "",
        operation: FromQuery[str] = "",
        outcome: FromQuery[str] = "",
    ) -> Template:
        bind_store(db_session, principal_of(request).store_id)
        query = provider_calls.CallQuery(q=q.strip()[:255], operation=operation, outcome=outcome)
        return Template(
            "reconciliation/provider_calls.html",
            context={
                "me": principal_of(request),
                "query": query,
                "calls": await provider_calls.search(db_session, query),
                "operations": provider_calls.OPERATIONS,
                "outcomes": provider_calls.OUTCOMES,
                "retention_days": provider_calls.RETENTION.days,
            },
        )
