"""The refund approvals queue: every refund request waiting for a manager, across orders, at /staff/refunds."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, MediaType, Request, get, post
from litestar.params import FromPath, URLEncodedBody
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from sqlalchemy import select

from app.core.errors import TillError
from app.core.rbac import Role, principal_of, require_role
from app.core.tenancy import bind_store
from app.orders.models import Order
from app.orders.services import Actor
from app.payments.models import RefundRequest
from app.payments.order_payments import refunds_for

RECENT = 20


class RefundQueueController(Controller):
    path = "/staff/refunds"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    include_in_schema = False

    @get("/")
    async def queue(self, request: Request[Any, Any, Any]) -> Template:
        me = principal_of(request)
        async with request.app.state.sessions() as session:
            bind_store(session, me.store_id)
            rows = (
                await session.execute(
                    select(RefundRequest, Order.number)
                    .join(Order, Order.id == RefundRequest.order_id)
                    .order_by(RefundRequest.status != "pending", RefundRequest.created_at.desc())
                    .limit(200)
                )
            ).all()
        waiting = [(req, number) for req, number in rows if req.status == "pending"]
        decided = [(req, number) for req, number in rows if req.status != "pending"][:RECENT]
        return Template("payments/refunds.html", context={"me": me, "waiting": waiting, "decided": decided})

    @post("/{request_id:uuid}/{decision:str}", status_code=303, media_type=MediaType.HTML)
    async def decide(
        self,
        request: Request[Any, Any, Any],
        request_id: FromPath[uuid.UUID],
        decision: FromPath[str],
        data: URLEncodedBody[dict[str, str]],
    ) -> Redirect:
        actor = Actor.of(principal_of(request))
        refunds = await refunds_for(request)
        try:
            if decision == "approve":
                await refunds.approve(request_id, actor=actor, note=data.get("note", ""))
                flash(request, "Approved: the refund was made.", category="success")
            elif decision == "reject":
                await refunds.reject(request_id, actor=actor, note=data.get("note", ""))
                flash(request, "Rejected.", category="success")
            else:
                flash(request, "Approve or reject.", category="error")
        except TillError as exc:
            flash(request, exc.detail, category="error")
        return Redirect("/staff/refunds", status_code=303)
