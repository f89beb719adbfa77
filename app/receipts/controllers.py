"""Receipt routes: the staff order page's panel (status and history per channel, resend / reprint, the PDF), the
shopper's signed PDF link (no account needed), and /api/v1/orders/{id}/receipts."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, URLEncodedBody
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.core.errors import NotFound, TillError
from app.core.rbac import Principal, principal_of, require_role
from app.core.tenancy import bind_store
from app.orders.services import OrderService
from app.receipts import links
from app.receipts.channels import ReceiptChannel
from app.receipts.channels.registry import default_channels
from app.receipts.document import ReceiptDocument
from app.receipts.models import Receipt
from app.receipts.pdf import render_pdf
from app.receipts.schemas import ReceiptOut, ReceiptRequestIn
from app.receipts.services import ReceiptService, ensure_sale_receipt
from app.stores.models import StoreLogo

DbSession = NamedDependency[AsyncSession]
FormData = URLEncodedBody[dict[str, str]]


def _channels(request: Request[Any, Any, Any]) -> dict[str, ReceiptChannel]:
    state = request.app.state
    return default_channels(state.sessions, state.settings)


def signed_url(settings: Settings, receipt_id: uuid.UUID) -> str:
    return links.signed_path(settings.secret_key, receipt_id)


async def pdf_response(session: AsyncSession, receipt: Receipt, *, download: bool = True) -> Response[bytes]:
    doc = ReceiptDocument.from_json(receipt.content, number=receipt.number)
    disposition = "attachment" if download else "inline"
    logo = await session.scalar(select(StoreLogo.data).where(StoreLogo.store_id == receipt.store_id))
    return Response(
        render_pdf(doc, logo_png=logo),
        media_type="application/pdf",
        headers={"content-disposition": f'{disposition}; filename="receipt-{doc.display_number}.pdf"'},
    )


def _requested_by(me: Principal) -> str:
    return me.display_name[:120]


async def order_receipts(session: AsyncSession, store_id: uuid.UUID, order_id: uuid.UUID) -> list[Receipt]:
    """An order's receipts with their deliveries (the staff order page's panel)."""
    return await ReceiptService(session, store_id).for_order(order_id)


class ReceiptPagesController(Controller):
    path = "/staff"
    guards = [require_role]
    include_in_schema = False

    @get("/orders/{order_id:uuid}/receipts")
    async def panel(
        self, request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Template:
        me = principal_of(request)
        order = await OrderService(db_session, me.store_id).get(order_id)
        context = {
            "me": me,
            "order": order,
            "receipts": await order_receipts(db_session, me.store_id, order_id),
            "receipt_channels": _channels(request),
        }
        return Template("receipts/_order_receipts.html", context=context)

    @post("/orders/{order_id:uuid}/receipts", status_code=303)
    async def request_delivery(
        self, request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], data: FormData, db_session: DbSession
    ) -> Redirect:
        """Resend (e-mail, WhatsApp) or reprint (receipt printer) one receipt: a new delivery, queued."""
        me = principal_of(request)
        await OrderService(db_session, me.store_id).get(order_id)
        service = ReceiptService(db_session, me.store_id)
        try:
            receipt_id = uuid.UUID(data.get("receipt_id", ""))
            receipt = await service.get(receipt_id)
            if receipt.order_id != order_id:
                raise NotFound("We could not find that receipt.")
            channels = _channels(request)
            channel = data.get("channel", "")
            target = data.get("target", "") if channel == "email" else ""  # the address field is for e-mail only
            await service.request(receipt_id, channel, channels, requested_by=_requested_by(me), target=target)
            verb = "Reprint" if channel == "thermal" else "Sending"
            flash(
                request,
                f"{verb} of receipt R-{receipt.number:06d} queued ({channels[channel].label}).",
                category="success",
            )
        except ValueError:
            flash(request, "Choose a receipt.", category="error")
        except TillError as exc:
            await db_session.rollback()
            flash(request, next(iter(exc.fields.values()), exc.detail) if exc.fields else exc.detail, category="error")
        return Redirect(f"/staff/orders/{order_id}#receipts", status_code=303)

    @post("/orders/{order_id:uuid}/receipts/send", status_code=202)
    async def send_after_sale(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[uuid.UUID],
        data: JSONBody[ReceiptRequestIn],
        db_session: DbSession,
    ) -> dict[str, Any]:
        """The till after a sale: print it (once: a print already queued for it is not repeated) or e-mail it."""
        me = principal_of(request)
        await OrderService(db_session, me.store_id).get(order_id)
        channels = _channels(request)
        receipt = await ensure_sale_receipt(db_session, me.store_id, order_id, channels)
        if receipt is None:
            raise NotFound("This order has no receipt: it is not paid.")
        queued = [d for d in receipt.deliveries if d.channel == data.channel]
        if data.channel == "thermal" and queued:
            return {"number": f"R-{receipt.number:06d}", "channel": "thermal", "status": queued[-1].status}
        delivery = await ReceiptService(db_session, me.store_id).request(
            receipt.id, data.channel, channels, requested_by=_requested_by(me), target=data.target
        )
        return {"number": f"R-{receipt.number:06d}", "channel": delivery.channel, "status": delivery.status}

    @get("/receipts/{receipt_id:uuid}/pdf")
    async def staff_pdf(
        self, request: Request[Any, Any, Any], receipt_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Response[bytes]:
        me = principal_of(request)
        return await pdf_response(db_session, await ReceiptService(db_session, me.store_id).get(receipt_id))


class ReceiptLinkController(Controller):
    """The shopper's signed link: works without an account until it expires; a changed link is refused."""

    path = "/r"
    include_in_schema = False

    @get("/{receipt_id:uuid}")
    async def shopper_pdf(
        self,
        request: Request[Any, Any, Any],
        receipt_id: FromPath[uuid.UUID],
        db_session: DbSession,
        exp: FromQuery[str] = "",
        sig: FromQuery[str] = "",
    ) -> Response[bytes] | Template:
        settings: Settings = request.app.state.settings
        verdict = links.check(settings.secret_key, receipt_id, exp, sig)
        if verdict != "ok":
            message = (
                "This receipt link has expired. Open your order page again for a fresh link, or ask the shop."
                if verdict == "expired"
                else "This receipt link is not valid. Use the link from your order page or e-mail as it was sent."
            )
            status = 410 if verdict == "expired" else 403
            return Template("receipts/link_refused.html", context={"message": message}, status_code=status)
        from app.core.tenancy import system_scope

        system_scope(db_session)  # the signature names the receipt; its store comes with it
        receipt = await db_session.scalar(select(Receipt).where(Receipt.id == receipt_id))
        if receipt is None:
            raise NotFound("We could not find that receipt.")
        return await pdf_response(db_session, receipt, download=False)


class ReceiptsApiController(Controller):
    path = "/api/v1/orders"
    guards = [require_role]
    tags = ["receipts"]

    @get("/{order_id:uuid}/receipts", summary="An order's receipts with their deliveries per channel")
    async def list_receipts(
        self, request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> list[ReceiptOut]:
        me = principal_of(request)
        await OrderService(db_session, me.store_id).get(order_id)
        settings: Settings = request.app.state.settings
        receipts = await order_receipts(db_session, me.store_id, order_id)
        return [ReceiptOut.of(r, signed_url(settings, r.id)) for r in receipts]

    @post(
        "/{order_id:uuid}/receipts",
        status_code=202,
        summary="Send or print an order's receipt on one channel",
        description="Queues a delivery of the order's sale receipt (or `receipt_id`) on `channel` (email, thermal, "
        "whatsapp); `target` is another e-mail address. 202 with the receipt; the delivery's status follows "
        "(pending → sent, or retrying → failed). A channel that cannot reach the receipt is 422.",
    )
    async def request_receipt(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[uuid.UUID],
        data: JSONBody[ReceiptRequestIn],
        db_session: DbSession,
    ) -> ReceiptOut:
        me = principal_of(request)
        await OrderService(db_session, me.store_id).get(order_id)
        service = ReceiptService(db_session, me.store_id)
        receipts = await service.for_order(order_id)
        chosen = [r for r in receipts if (r.id == data.receipt_id if data.receipt_id else r.kind == "sale")]
        if not chosen:
            raise NotFound("This order has no such receipt (yet): a receipt is made once the order is paid.")
        delivery = await service.request(
            chosen[0].id, data.channel, _channels(request), requested_by=_requested_by(me), target=data.target
        )
        await db_session.flush()
        receipt = await db_session.scalar(
            select(Receipt).where(Receipt.id == delivery.receipt_id).execution_options(populate_existing=True)
        )
        assert receipt is not None
        bind_store(db_session, me.store_id)
        return ReceiptOut.of(receipt, signed_url(request.app.state.settings, receipt.id))


async def shopper_receipt(
    session: AsyncSession, settings: Settings, store_id: uuid.UUID, order_id: uuid.UUID
) -> dict[str, Any]:
    """What the shopper's order page says about the receipt: its signed PDF link and the e-mail's status."""
    receipts = [r for r in await ReceiptService(session, store_id).for_order(order_id) if r.kind == "sale"]
    if not receipts:
        return {"receipt": None}
    receipt = receipts[0]
    emails = [d for d in receipt.deliveries if d.channel == "email"]
    return {
        "receipt": receipt,
        "number": f"R-{receipt.number:06d}",
        "pdf_url": signed_url(settings, receipt.id),
        "email": emails[-1] if emails else None,
    }
