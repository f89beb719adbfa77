"""``/pos/api/…``: the tablet's JSON API (docs/pos.md, "The POS API"), except the card readers'
(app/pos/readers/api.py). The staff session cookie and the ``x-csrftoken`` header; every error is
problem+json. Cashiers and up; every id is looked up in the caller's store only (another store's: 404)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, ValidationFailed
from app.core.idempotency import HEADER, MAX_KEY_LENGTH, REPLAYED_HEADER, IdempotencyStore, StoredResponse, request_hash
from app.core.rbac import principal_of, require_role
from app.payments.order_payments import store_of
from app.payments.provider import PaymentProvider
from app.payments.registry import provider_of
from app.pos.catalog import catalog_snapshot, price_now, search_customers
from app.pos.refunds import PosRefunds
from app.pos.registers import RegisterService
from app.pos.reports import shift_json
from app.pos.sales import PosSales
from app.pos.schemas import CashMovementIn, CloseShiftIn, OpenShiftIn, PriceIn, RefundIn, VoidIn, decode
from app.pos.shifts import ShiftService
from app.pos.sync import PosSync
from app.pos.voids import record_void, void_json

__all__ = ["PosApiController", "pos_sales"]

DbSession = NamedDependency[AsyncSession]


def _json(body: Any, status_code: int = 200) -> Response[Any]:
    return Response(body, status_code=status_code, media_type="application/json")


async def once(
    request: Request[Any, Any, Any], raw: bytes, run: Callable[[], Awaitable[Response[Any]]]
) -> Response[Any]:
    """Run a call that moves money or cash once per ``Idempotency-Key`` (invariant 2): the same key and body again
    answers what the first answered; another body under the key is a 422, the key while the first still runs a 409.
    ``run`` commits its own work before answering, so the key is completed only for work that is done. A refusal
    releases the key (the call may be corrected and sent again). Without the header the call simply runs."""
    key = request.headers.get(HEADER)
    if key is None:
        return await run()
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise ValidationFailed("Bad Idempotency-Key.", fields={HEADER: f"1 to {MAX_KEY_LENGTH} characters."})
    me = principal_of(request)
    keys: IdempotencyStore = request.app.state.idempotency
    fingerprint = request_hash(request.method, request.url.path, request.scope.get("query_string", b""), raw)
    claim = await keys.claim(me.store_id, me.idempotency_scope, key, fingerprint)
    if claim.outcome == "mismatch":
        raise ValidationFailed("This Idempotency-Key was used for a different request.", fields={HEADER: "Reused."})
    if claim.outcome == "in_flight":
        raise Conflict("A request with this Idempotency-Key is still running.", fields={HEADER: "In progress."})
    if claim.outcome == "replay" and claim.response is not None:
        stored = claim.response
        return Response(stored.body, status_code=stored.status, media_type="application/json",
                        headers={REPLAYED_HEADER: "true"})  # fmt: skip
    try:
        response = await run()
    except BaseException:
        await keys.release(me.store_id, me.idempotency_scope, key)
        raise
    body = msgspec.json.encode(response.content)
    await keys.complete(me.store_id, me.idempotency_scope, key, StoredResponse(response.status_code or 200, {}, body))
    return response


async def pos_sales(request: Request[Any, Any, Any]) -> PosSales:
    state = request.app.state
    return PosSales(state.engine, state.sessions, state.redis, await store_of(request), principal_of(request))


class PosApiController(Controller):
    path = "/pos/api"
    guards = [require_role]
    include_in_schema = False

    # -- registers and shifts -----------------------------------------------------------------------------

    @get("/registers")
    async def registers(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        rows = await RegisterService(db_session, principal_of(request).store_id).rows()
        shifts = ShiftService(db_session, principal_of(request).store_id)
        body = []
        for row in rows:
            shift = None
            if row.open_shift is not None:
                view = await shifts.view(row.open_shift, with_key=False)
                shift = shift_json(view.shift, view.register_name, view.opened_by)
            reader = (
                {"id": str(row.reader.id), "label": row.reader.label, "provider": row.reader.provider}
                if row.reader
                else None
            )
            body.append({"id": str(row.register.id), "name": row.register.name, "open_shift": shift, "reader": reader})
        return _json(body)

    @post("/shifts")
    async def open_shift(self, request: Request[Any, Any, Any]) -> Response[Any]:
        raw = await request.body()
        data = decode(raw, OpenShiftIn)
        me = principal_of(request)

        async def run() -> Response[Any]:
            async with request.app.state.sessions() as session, session.begin():
                shifts = ShiftService(session, me.store_id)
                view = await shifts.open(data.register_id, data.opening_float_minor, actor=me)
                body = shift_json(view.shift, view.register_name, view.opened_by, view.offline_key)
            return _json(body, 201)

        return await once(request, raw, run)

    @get("/shifts/{shift_id:uuid}")
    async def shift(
        self, request: Request[Any, Any, Any], shift_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Response[Any]:
        shifts = ShiftService(db_session, principal_of(request).store_id)
        view = await shifts.view(await shifts.get(shift_id), with_key=True)
        return _json(shift_json(view.shift, view.register_name, view.opened_by, view.offline_key))

    @post("/shifts/{shift_id:uuid}/cash")
    async def cash(self, request: Request[Any, Any, Any], shift_id: FromPath[uuid.UUID]) -> Response[Any]:
        raw = await request.body()
        data = decode(raw, CashMovementIn)
        me = principal_of(request)

        async def run() -> Response[Any]:
            async with request.app.state.sessions() as session, session.begin():
                movement = await ShiftService(session, me.store_id).cash(
                    shift_id, data.kind, data.amount_minor, data.reason, actor=me
                )
                body = {
                    "id": str(movement.id),
                    "shift_id": str(shift_id),
                    "kind": movement.kind,
                    "amount_minor": movement.amount_minor,
                    "reason": movement.reason,
                }
            return _json(body, 201)

        return await once(request, raw, run)

    @post("/shifts/{shift_id:uuid}/close")
    async def close(self, request: Request[Any, Any, Any], shift_id: FromPath[uuid.UUID]) -> Response[Any]:
        raw = await request.body()
        data = decode(raw, CloseShiftIn)
        me = principal_of(request)

        async def run() -> Response[Any]:
            async with request.app.state.sessions() as session, session.begin():
                shifts = ShiftService(session, me.store_id)
                report = await shifts.close(shift_id, data.counted_cash_minor, data.note, actor=me)
                body = report.as_json()
            return _json(body)

        return await once(request, raw, run)

    @get("/shifts/{shift_id:uuid}/report")
    async def report(
        self, request: Request[Any, Any, Any], shift_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Response[Any]:
        report = await ShiftService(db_session, principal_of(request).store_id).report(shift_id)
        return _json(report.as_json())

    # -- catalog, customers, pricing --------------------------------------------------------------------------

    @get("/catalog")
    async def catalog(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        body = await catalog_snapshot(db_session, await store_of(request), principal_of(request))
        response = _json(body)
        response.headers["cache-control"] = "no-cache"  # the service worker keeps the offline copy
        return response

    @get("/customers")
    async def customers(
        self, request: Request[Any, Any, Any], db_session: DbSession, q: FromQuery[str] = ""
    ) -> Response[Any]:
        return _json(await search_customers(db_session, principal_of(request).store_id, q))

    @post("/price")
    async def price(self, request: Request[Any, Any, Any]) -> Response[Any]:
        data = decode(await request.body(), PriceIn)
        return _json(await price_now(request.app.state.engine, await store_of(request), data))

    # -- sales, sync, refunds -----------------------------------------------------------------------------------

    @post("/sales")
    async def sale(self, request: Request[Any, Any, Any]) -> Response[Any]:
        sale_json = decode(await request.body(), dict[str, Any])
        status, answer = await (await pos_sales(request)).sell(sale_json)
        return _json(answer.body(), status)

    @post("/sync")
    async def sync(self, request: Request[Any, Any, Any]) -> Response[Any]:
        results = await PosSync(await pos_sales(request)).sync(await request.body())
        return _json({"results": [r.as_json() for r in results]}, 200)

    @post("/voids")
    async def void(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """A ticket or line voided on the tablet, recorded once by its ``client_void_id`` (201, then 200)."""
        data = decode(await request.body(), VoidIn)
        me = principal_of(request)
        async with request.app.state.sessions() as session, session.begin():
            created, row = await record_void(session, me.store_id, data, actor=me)
            body = void_json(row)
        return _json(body, 201 if created else 200)

    @post("/refunds")
    async def refund(self, request: Request[Any, Any, Any]) -> Response[Any]:
        raw = await request.body()
        data = decode(raw, RefundIn)
        state = request.app.state
        store = await store_of(request)

        async def provider() -> PaymentProvider:
            return await provider_of(state.sessions, store, state.redis, state.settings)

        async def run() -> Response[Any]:
            refunds = PosRefunds(state.sessions, state.redis, store, principal_of(request), provider)
            return _json((await refunds.refund(data)).as_json(), 201)

        return await once(request, raw, run)
