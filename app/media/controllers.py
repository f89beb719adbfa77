"""Media routes: the upload API (/api/v1/media), the direct upload for the local backend (a signed PUT), the
staff product page's media section, and delivery (/media/…: signed, expiring, immutable)."""

from __future__ import annotations

import contextlib
import mimetypes
import os
import re
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import File, Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.errors import NotFound, PermissionDenied, TillError, ValidationFailed
from app.core.http_errors import problem
from app.core.rbac import Role, principal_of, require_role
from app.media import metrics as _metrics  # noqa: F401  (registers the /metrics figures)
from app.media import signing
from app.media.delivery import IMMUTABLE, clip_of, picture_of
from app.media.models import MediaAsset
from app.media.services import MediaService, Negotiated
from app.media.storage import storage_for
from app.media.validation import SNIFF_BYTES, MediaRefused, check_bytes, check_image

DbSession = NamedDependency[AsyncSession]
UPLOAD_LIMIT = 210 * 1024 * 1024  # the largest body the direct upload reads (the signed size caps each upload)
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,80}(/[A-Za-z0-9._-]{1,80}){0,2}$")


@dataclass
class UploadIn:
    product_id: uuid.UUID
    filename: str
    content_type: str
    bytes: int


@dataclass
class UploadOut:
    asset_id: uuid.UUID
    status: str
    method: str
    upload_url: str
    expires_at: int
    fields: dict[str, str]
    headers: dict[str, str]
    complete_url: str


@dataclass
class AssetOut:
    id: uuid.UUID
    product_id: uuid.UUID
    kind: str
    status: str
    failure_reason: str
    content_type: str
    width: int | None
    height: int | None
    duration_ms: int | None
    bytes: int
    checksum: str
    is_primary: bool
    position: int
    alt_text: str

    @classmethod
    def of(cls, a: MediaAsset) -> AssetOut:
        return cls(
            a.id, a.product_id, a.kind, a.status, a.failure_reason, a.content_type, a.width, a.height,
            a.duration_ms, a.stored_bytes or a.original_bytes or a.declared_bytes, a.checksum, a.is_primary,
            a.position, a.alt_text,
        )  # fmt: skip


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _service(request: Request[Any, Any, Any], session: AsyncSession, store_id: uuid.UUID) -> MediaService:
    settings = _settings(request)
    return MediaService(session, store_id, settings, storage_for(settings))


def _upload_out(n: Negotiated, complete_url: str) -> UploadOut:
    t = n.target
    return UploadOut(n.asset.id, n.asset.status, t.method, t.url, t.expires, t.fields, t.headers, complete_url)


async def _complete(request: Request[Any, Any, Any], store_id: uuid.UUID, asset_id: uuid.UUID) -> MediaAsset:
    """Its own transaction: a refused file's record and bytes are deleted (committed), then the refusal raised."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    refused: MediaRefused | None = None
    async with sessions() as session, session.begin():
        try:
            asset = await _service(request, session, store_id).complete(asset_id)
        except MediaRefused as exc:
            refused = exc
    if refused is not None:
        raise refused
    return asset


class MediaApiController(Controller):
    path = "/api/v1/media"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    tags = ["media"]

    @post(
        "/uploads",
        status_code=201,
        summary="Start an upload: a signed, expiring upload URL and the new asset's id",
        description="The size and type are checked against the limits and the store's quota (422 problem+json "
        "naming the field). Send the bytes as the answer says (PUT the raw body, or POST multipart with `fields` "
        "first for object storage), then POST `complete_url`.",
    )
    async def negotiate(
        self, request: Request[Any, Any, Any], data: JSONBody[UploadIn], db_session: DbSession
    ) -> UploadOut:
        me = principal_of(request)
        n = await _service(request, db_session, me.store_id).negotiate(
            data.product_id, data.filename, data.content_type, data.bytes
        )
        return _upload_out(n, f"/api/v1/media/uploads/{n.asset.id}/complete")

    @post(
        "/uploads/{asset_id:uuid}/complete",
        status_code=202,
        summary="The bytes are up: check them (type sniffed from the bytes, size) and queue processing",
    )
    async def complete(self, request: Request[Any, Any, Any], asset_id: FromPath[uuid.UUID]) -> AssetOut:
        return AssetOut.of(await _complete(request, principal_of(request).store_id, asset_id))

    @get("/assets/{asset_id:uuid}", summary="One asset: status (queued, processing, ready, failed + reason), metadata")
    async def asset(
        self, request: Request[Any, Any, Any], asset_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> AssetOut:
        me = principal_of(request)
        return AssetOut.of(await _service(request, db_session, me.store_id).asset(asset_id))


class MediaUploadController(Controller):
    """The local backend's direct upload: no session or token, the signed URL is the permission."""

    path = "/api/v1/media/uploads"
    include_in_schema = False

    @put("/{asset_id:uuid}/content", status_code=200, request_max_body_size=UPLOAD_LIMIT)
    async def receive(
        self,
        request: Request[Any, Any, Any],
        asset_id: FromPath[uuid.UUID],
        db_session: DbSession,
        store: FromQuery[uuid.UUID],
        limit: FromQuery[int],
        expires: FromQuery[int],
        sig: FromQuery[str],
    ) -> dict[str, Any]:
        settings = _settings(request)
        if not signing.check_upload_signature(settings.secret_key, store, asset_id, limit, expires, sig):
            raise PermissionDenied("This upload link is not valid or has expired: start the upload again.")
        service = _service(request, db_session, store)
        asset = await service.asset(asset_id)
        if asset.status != "pending":
            raise ValidationFailed("This file was uploaded already.", fields={"file": "already uploaded"})
        try:
            received = await _receive_to_storage(request, service, asset, limit)
        except MediaRefused:
            await _discard(request, store, asset_id)
            raise
        return {"asset_id": str(asset_id), "received": received}


async def _receive_to_storage(
    request: Request[Any, Any, Any], service: MediaService, asset: MediaAsset, limit: int
) -> int:
    """Stream the body to a temporary file (refusing early when the first bytes are not what was announced or
    the body outgrows its signed size), check it, and store it as the asset's original."""
    received = 0
    fd, name = tempfile.mkstemp(prefix="till-upload-")
    tmp_path = Path(name)
    try:
        head = b""
        with open(fd, "wb") as tmp:  # noqa: ASYNC230 (a local temporary file)
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise MediaRefused("The file is larger than announced.")
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                    if len(head) >= SNIFF_BYTES:
                        check_bytes(head, received, asset.kind)
                tmp.write(chunk)
        check_bytes(head, received, asset.kind)
        if asset.kind == "image":
            check_image(tmp_path)  # the pixel limits and the decompression-bomb guard, header only
        await service.storage.put_file(asset.original_key, tmp_path, asset.content_type)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
    return received


async def _discard(request: Request[Any, Any, Any], store_id: uuid.UUID, asset_id: uuid.UUID) -> None:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session, session.begin():
        service = _service(request, session, store_id)
        with contextlib.suppress(NotFound):
            await service.discard(await service.asset(asset_id))


def _problem(exc: TillError) -> Response[Any]:
    return problem(exc.status_code, exc.title, exc.detail, code=exc.code, fields=exc.fields)


def _moves(ids: list[uuid.UUID]) -> dict[uuid.UUID, list[tuple[str, str]]]:
    """For each file, the whole order after moving it up or down one place (forms that work without script)."""
    moves: dict[uuid.UUID, list[tuple[str, str]]] = {}
    for i, asset_id in enumerate(ids):
        for label, j in (("Move up", i - 1), ("Move down", i + 1)):
            if 0 <= j < len(ids):
                order = list(ids)
                order[i], order[j] = order[j], order[i]
                moves.setdefault(asset_id, []).append((label, ",".join(map(str, order))))
    return moves


def _csv_uuids(raw: str) -> list[uuid.UUID]:
    try:
        return [uuid.UUID(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise ValidationFailed("The order is not a list of files.", fields={"order": "bad"}) from None


class MediaStaffController(Controller):
    """The media section of the staff product page (loaded into it by htmx), and what its script calls."""

    path = "/staff/products/{product_id:uuid}/media"
    guards = [require_role]
    opt = {"min_role": Role.MANAGER}
    include_in_schema = False

    async def _section(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        product_id: uuid.UUID,
        *,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        me = principal_of(request)
        service = _service(request, db_session, me.store_id)
        assets = await service.for_product(product_id)
        secret = _settings(request).secret_key
        fragment = request.headers.get("hx-request") == "true"
        return Template(
            "media/_section.html" if fragment else "media/page.html",
            context={
                "me": me,
                "product_id": product_id,
                "assets": assets,
                "pictures": {a.id: picture_of(secret, a) for a in assets},
                "clips": {a.id: clip_of(secret, a) for a in assets},
                "usage": await service.usage(),
                "errors": errors or {},
                "working": any(a.status in ("queued", "processing") for a in assets),
                "moves": _moves([a.id for a in assets]),
            },
            status_code=status_code,
        )

    @get("/")
    async def section(
        self, request: Request[Any, Any, Any], product_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Template:
        return await self._section(request, db_session, product_id)

    @post("/uploads", status_code=201, media_type=MediaType.JSON)
    async def negotiate(
        self,
        request: Request[Any, Any, Any],
        product_id: FromPath[uuid.UUID],
        data: JSONBody[UploadIn],
        db_session: DbSession,
    ) -> UploadOut | Response[Any]:
        """As the API's, for the page's script (session + CSRF); refusals are problem+json here too."""
        me = principal_of(request)
        try:
            if data.product_id != product_id:
                raise ValidationFailed("Upload to this product.", fields={"product_id": "mismatch"})
            n = await _service(request, db_session, me.store_id).negotiate(
                product_id, data.filename, data.content_type, data.bytes
            )
        except TillError as exc:
            return _problem(exc)
        return _upload_out(n, f"/staff/products/{product_id}/media/{n.asset.id}/complete")

    @post("/{asset_id:uuid}/complete", status_code=202, media_type=MediaType.JSON)
    async def complete(
        self, request: Request[Any, Any, Any], product_id: FromPath[uuid.UUID], asset_id: FromPath[uuid.UUID]
    ) -> AssetOut | Response[Any]:
        try:
            return AssetOut.of(await _complete(request, principal_of(request).store_id, asset_id))
        except TillError as exc:
            return _problem(exc)

    @post("/{asset_id:uuid}", status_code=200, media_type=MediaType.HTML)
    async def update(
        self,
        request: Request[Any, Any, Any],
        product_id: FromPath[uuid.UUID],
        asset_id: FromPath[uuid.UUID],
        db_session: DbSession,
    ) -> Template | Redirect:
        me = principal_of(request)
        form = dict(await request.form())
        service = _service(request, db_session, me.store_id)
        action = str(form.get("action", "save"))
        try:
            if action == "delete":
                await service.delete(asset_id)
            elif action == "retry":
                await service.retry(asset_id)
            else:
                await service.update(asset_id, alt_text=str(form.get("alt_text", "")), primary=action == "primary")
        except ValidationFailed as exc:
            await db_session.rollback()
            errors = {f"{asset_id}.{k}": v for k, v in exc.fields.items()}
            return await self._section(request, db_session, product_id, errors=errors, status_code=422)
        if request.headers.get("hx-request") != "true":
            return Redirect(f"/staff/products/{product_id}", status_code=303)
        return await self._section(request, db_session, product_id)

    @post("/order", status_code=200, media_type=MediaType.HTML)
    async def reorder(
        self, request: Request[Any, Any, Any], product_id: FromPath[uuid.UUID], db_session: DbSession
    ) -> Template | Redirect:
        me = principal_of(request)
        form = dict(await request.form())
        try:
            await _service(request, db_session, me.store_id).reorder(product_id, _csv_uuids(str(form.get("order", ""))))
        except ValidationFailed as exc:
            await db_session.rollback()
            return await self._section(request, db_session, product_id, errors={"order": exc.detail}, status_code=422)
        if request.headers.get("hx-request") != "true":
            return Redirect(f"/staff/products/{product_id}", status_code=303)
        return await self._section(request, db_session, product_id)


class MediaDeliveryController(Controller):
    """``/media/{store}/{asset}/{expires}.{sig}/{name}``: checks the signature and expiry (no database), then
    streams the file (local) or redirects to a short-lived presigned URL (object storage)."""

    path = "/media"
    include_in_schema = False

    @get("/{store_id:uuid}/{asset_id:uuid}/{token:str}/{name:path}", cache=False)
    async def deliver(
        self,
        request: Request[Any, Any, Any],
        store_id: FromPath[uuid.UUID],
        asset_id: FromPath[uuid.UUID],
        token: FromPath[str],
        name: FromPath[str],
    ) -> Response[Any]:
        settings = _settings(request)
        name = name.lstrip("/")
        if not signing.check_delivery_token(settings.secret_key, store_id, asset_id, token):
            raise PermissionDenied("This media link is not valid or has expired.")
        if not _NAME.match(name) or ".." in name or name.startswith("original"):
            raise NotFound("No such file.")
        storage = storage_for(settings)
        key = f"{store_id}/{asset_id}/{name}"
        path = storage.local_path(key)
        if path is not None:
            content_type = _content_type(name)
            return File(
                path=path,
                filename=Path(name).name,
                content_disposition_type="inline",
                media_type=content_type,
                headers={"cache-control": IMMUTABLE, "x-content-type-options": "nosniff"},
            )
        expires_in = max(60, int(token.partition(".")[0]) - int(time.time()))
        url = storage.read_url(key, min(expires_in, 3600))
        if url is None:
            raise NotFound("No such file.")
        return Redirect(url, status_code=302, headers={"cache-control": "private, max-age=300"})


def _content_type(name: str) -> str:
    if name.endswith(".m3u8"):
        return "application/vnd.apple.mpegurl"
    if name.endswith(".ts"):
        return "video/mp2t"
    if name.endswith(".webp"):
        return "image/webp"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


ROUTES = [MediaApiController, MediaUploadController, MediaStaffController, MediaDeliveryController]
__all__ = ["ROUTES"]
