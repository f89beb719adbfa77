"""Channel order ingestion over HTTP: the signed intake, and the staff page with the attempts and the secret."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.days import day_range
from app.core.errors import ValidationFailed
from app.core.http_errors import PROBLEM_JSON
from app.core.rbac import Role, principal_of, require_role
from app.ingestion.attempts import AttemptFilter, AttemptLog
from app.ingestion.credentials import IngestionSecretService
from app.ingestion.models import OUTCOMES
from app.ingestion.services import SIGNATURE_HEADER, OrderIngestion

DbSession = NamedDependency[AsyncSession]
PAGE = "/staff/ingestion"
OWNER = {"min_role": Role.OWNER}
ISSUED_SECRET_KEY = "issued_ingestion_secret"  # noqa: S105  (a session key name)


class IngestController(Controller):
    """POST /webhooks/orders/ingest: no session, no CSRF (``^/webhooks/`` is exempt); a bearer token and a
    signature instead. Takes no database session: the service runs its own short statements."""

    path = "/webhooks/orders"
    include_in_schema = False

    @post("/ingest")
    async def ingest(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        state = request.app.state
        answer = await OrderIngestion(state.engine, state.sessions).ingest(
            await request.body(),
            authorization=request.headers.get("authorization"),
            signature=request.headers.get(SIGNATURE_HEADER, ""),
            remote_addr=request.client.host if request.client else "",
        )
        media_type = PROBLEM_JSON if answer.is_problem else MediaType.JSON
        return Response(answer.body, status_code=answer.status, media_type=media_type)


class IngestionPagesController(Controller):
    """/staff/ingestion: managers read the attempts; owners create or rotate the signing secret."""

    path = PAGE
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    include_in_schema = False

    @get("/")
    async def page(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        outcome: FromQuery[str] = "",
        since: FromQuery[str] = "",
        until: FromQuery[str] = "",
    ) -> Template:
        me = principal_of(request)
        query = {"outcome": outcome.strip(), "since": since.strip(), "until": until.strip()}
        errors: dict[str, str] = {}
        rows = []
        try:
            start, end = day_range(query["since"], query["until"], me.timezone)
            rows = await AttemptLog(db_session, me.store_id).newest(AttemptFilter(query["outcome"], start, end))
        except ValidationFailed as exc:
            errors = {"form": exc.detail, **exc.fields}
        issued = request.session.pop(ISSUED_SECRET_KEY, None) if isinstance(request.session, dict) else None
        secret = await IngestionSecretService(db_session, me.store_id).current()
        return Template(
            "ingestion/attempts.html",
            context={
                "me": me,
                "rows": rows,
                "query": query,
                "errors": errors,
                "outcomes": OUTCOMES,
                "secret": secret,
                "issued": issued if me.can(Role.OWNER) else None,
            },
            status_code=422 if errors else 200,
        )

    @post("/secret", opt=OWNER, status_code=303, media_type=MediaType.HTML)
    async def rotate(self, request: Request[Any, Any, Any], db_session: DbSession) -> Redirect:
        """Make (or replace) the secret; the next page view shows it once, then only its hint."""
        me = principal_of(request)
        secret = await IngestionSecretService(db_session, me.store_id).rotate(
            updated_by=me.display_name, updated_by_id=me.user_id
        )
        request.session[ISSUED_SECRET_KEY] = secret
        return Redirect(PAGE, status_code=303)

    @post("/secret/end-grace", opt=OWNER, status_code=303, media_type=MediaType.HTML)
    async def end_grace(self, request: Request[Any, Any, Any], db_session: DbSession) -> Redirect:
        me = principal_of(request)
        await IngestionSecretService(db_session, me.store_id).end_grace()
        return Redirect(PAGE, status_code=303)
