"""Staff dispute pages (managers): the list, and one dispute's evidence pack with notes, files and submission.

Plain forms (they work without JavaScript): a success answers 303 back to the page; a refusal re-renders
the page with the message next to its field and status 422 (409 when the dispute's state forbids it), and
nothing is written.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, URLEncodedBody
from litestar.plugins.flash import flash
from litestar.response import File, Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import TillError
from app.core.rbac import Role, principal_of, require_role
from app.disputes.evidence import ALLOWED_WORDS, MAX_FILE_BYTES, MAX_NOTE_CHARS, DisputeEvidenceService
from app.disputes.models import DISPUTE_STATUSES
from app.disputes.services import DisputeListing
from app.orders.services import Actor
from app.payments.order_payments import store_of
from app.payments.registry import provider_of

DbSession = NamedDependency[AsyncSession]
STATUS_FILTERS = ("open", "closed", *DISPUTE_STATUSES)


def _evidence(request: Request[Any, Any, Any]) -> DisputeEvidenceService:
    state = request.app.state
    return DisputeEvidenceService(state.sessions, principal_of(request).store_id, state.settings.data_dir)


class DisputePagesController(Controller):
    path = "/staff/disputes"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    include_in_schema = False

    @get("/")
    async def list_disputes(
        self, request: Request[Any, Any, Any], db_session: DbSession, status: FromQuery[str] = ""
    ) -> Template:
        me = principal_of(request)
        chosen = status if status in STATUS_FILTERS else ""
        rows = await DisputeListing(db_session, me.store_id).rows(status=chosen)
        context = {"me": me, "rows": rows, "status": chosen, "choices": STATUS_FILTERS}
        return Template("disputes/list.html", context=context)

    @get("/for-order/{order_id:uuid}")
    async def of_order(
        self, request: Request[Any, Any, Any], order_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Redirect:
        """The order's latest dispute (the order page's payment panel links here), else the list."""
        disputes = await DisputeListing(db_session, principal_of(request).store_id).of_order(order_id)
        return Redirect(f"/staff/disputes/{disputes[0].id}" if disputes else "/staff/disputes", status_code=303)

    @get("/{dispute_id:uuid}")
    async def dispute(self, request: Request[Any, Any, Any], dispute_id: FromPath[uuid.UUID]) -> Template:
        return await _render(request, dispute_id)

    @post("/{dispute_id:uuid}/notes", status_code=303)
    async def add_note(
        self, request: Request[Any, Any, Any], dispute_id: FromPath[uuid.UUID], data: URLEncodedBody[dict[str, str]]
    ) -> Redirect | Template:
        note = data.get("note", "")
        try:
            await _evidence(request).add_note(dispute_id, note, actor=Actor.of(principal_of(request)))
        except TillError as exc:
            return await _render(request, dispute_id, error=exc, form={"note": note})
        flash(request, "Note added.", category="success")
        return Redirect(f"/staff/disputes/{dispute_id}", status_code=303)

    @post("/{dispute_id:uuid}/files", status_code=303)
    async def add_file(
        self,
        request: Request[Any, Any, Any],
        dispute_id: FromPath[uuid.UUID],
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Redirect | Template:
        upload = data.get("file")
        try:
            if not isinstance(upload, UploadFile):
                content, name = b"", ""
            else:
                content, name = await upload.read(MAX_FILE_BYTES + 1), upload.filename
            await _evidence(request).add_file(dispute_id, content, name, actor=Actor.of(principal_of(request)))
        except TillError as exc:
            return await _render(request, dispute_id, error=exc)
        flash(request, "File added.", category="success")
        return Redirect(f"/staff/disputes/{dispute_id}", status_code=303)

    @get("/{dispute_id:uuid}/evidence/{evidence_id:uuid}")
    async def evidence_file(
        self, request: Request[Any, Any, Any], dispute_id: FromPath[uuid.UUID], evidence_id: FromPath[uuid.UUID]
    ) -> File:
        item, path = await _evidence(request).file(dispute_id, evidence_id)
        return File(
            path=path,
            filename=item.original_name,
            media_type=item.content_type,
            content_disposition_type="attachment",
            headers={"cache-control": "private, no-store"},
        )

    @post("/{dispute_id:uuid}/submit", status_code=303)
    async def submit(self, request: Request[Any, Any, Any], dispute_id: FromPath[uuid.UUID]) -> Redirect | Template:
        state = request.app.state
        try:
            store = await store_of(request)
            provider = await provider_of(state.sessions, store, state.redis, state.settings)
            submission = await _evidence(request).submit(dispute_id, provider, actor=Actor.of(principal_of(request)))
        except TillError as exc:
            return await _render(request, dispute_id, error=exc)
        where = (
            f"sent to {provider.name}"
            if submission.submitted
            else "recorded here; send it from the provider's dashboard"
        )
        flash(request, f"Evidence submitted ({where}).", category="success")
        return Redirect(f"/staff/disputes/{dispute_id}", status_code=303)


async def _render(
    request: Request[Any, Any, Any],
    dispute_id: uuid.UUID,
    *,
    error: TillError | None = None,
    form: dict[str, str] | None = None,
) -> Template:
    pack = await _evidence(request).pack(dispute_id)
    context = {
        "me": principal_of(request),
        "pack": pack,
        "dispute": pack.dispute,
        "order": pack.order,
        "error": error.detail if error else "",
        "errors": error.fields if error else {},
        "form": form or {},
        "limits": {"file_mb": MAX_FILE_BYTES // (1024 * 1024), "types": ALLOWED_WORDS, "note": MAX_NOTE_CHARS},
    }
    status = 200 if error is None else (error.status_code if error.status_code in (404, 409, 422) else 422)
    return Template("disputes/detail.html", context=context, status_code=status)
