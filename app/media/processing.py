"""The worker's side: turn a queued upload into derivatives. Checks everything again (type from the bytes, pixel
limits, the store's quota with the real sizes), waits while the store's media kill switch is engaged, retries
transient failures with backoff (SAQ) and records a failure with its reason on the asset."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.kill_switches import Switch, is_engaged
from app.core.tenancy import bind_store, system_scope
from app.media import images, metrics, video
from app.media.models import MediaAsset
from app.media.services import PENDING_TTL, MediaService, emit_product_changed, usage_of
from app.media.storage import Storage
from app.media.validation import SNIFF_BYTES, MediaRefused, QuotaExceeded, check_bytes

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 5
STALE_PROCESSING = timedelta(minutes=15)  # a worker that died mid-job: the asset is taken up again after this
SWEEP_AFTER = timedelta(seconds=20)  # a queued asset no job picked up (lost, or paused then released)


async def processing_paused(session: AsyncSession, store_id: uuid.UUID) -> bool:
    """The MEDIA_PAUSED kill switch (app/core/kill_switches.py), for this store or for every store."""
    return await is_engaged(session, Switch.MEDIA_PAUSED, store_id)


@dataclass
class Outcome:
    status: str
    detail: str = ""


class MediaProcessor:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        storage: Storage,
        redis: Redis | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.storage = storage
        self.redis = redis

    async def _record(self, kind: str, outcome: str, started: float) -> None:
        if self.redis is not None:
            await metrics.record_job(self.redis, kind, outcome, time.perf_counter() - started)

    async def _claim(self, store_id: uuid.UUID, asset_id: uuid.UUID) -> MediaAsset | Outcome:
        async with self.sessions() as session, session.begin():
            bind_store(session, store_id)
            asset = await session.scalar(select(MediaAsset).where(MediaAsset.id == asset_id).with_for_update())
            if asset is None:
                return Outcome("skipped", "deleted")
            now = datetime.now(UTC)
            stale = asset.status == "processing" and (
                asset.processing_started_at is None or asset.processing_started_at < now - STALE_PROCESSING
            )
            if asset.status != "queued" and not stale:
                return Outcome("skipped", asset.status)
            if await processing_paused(session, store_id):
                return Outcome("paused")
            asset.status, asset.processing_started_at = "processing", now
            asset.attempts += 1
            await session.flush()
            session.expunge(asset)
            return asset

    async def process(self, store_id: uuid.UUID, asset_id: uuid.UUID) -> Outcome:
        claimed = await self._claim(store_id, asset_id)
        if isinstance(claimed, Outcome):
            return claimed
        asset = claimed
        started = time.perf_counter()
        try:
            with tempfile.TemporaryDirectory(prefix="till-media-") as tmp:
                stored = await self._make(asset, Path(tmp))
        except MediaRefused as exc:
            await self._fail(asset, exc.reason)
            await self._record(asset.kind, "failed", started)
            return Outcome("failed", exc.reason)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:300]
            if asset.attempts >= MAX_ATTEMPTS:
                await self._fail(asset, f"Processing failed {asset.attempts} times; last: {reason}")
                await self._record(asset.kind, "failed", started)
                return Outcome("failed", reason)
            await self._requeue(asset, reason)
            await self._record(asset.kind, "retry", started)
            log.warning("media.retry", asset_id=str(asset.id), attempt=asset.attempts, reason=reason)
            raise  # SAQ tries again, with backoff
        await self._ready(asset, stored)
        await self._record(asset.kind, "ready", started)
        return Outcome("ready")

    async def _make(self, asset: MediaAsset, tmp: Path) -> dict[str, Any]:
        source = tmp / "original"
        try:
            size = await self.storage.fetch_to(asset.original_key, source)
        except FileNotFoundError:
            raise MediaRefused("The uploaded file is gone: upload it again.") from None
        with source.open("rb") as f:
            content_type = check_bytes(f.read(SNIFF_BYTES), size, asset.kind)
        checksum = await asyncio.to_thread(_sha256, source)
        prefix = f"{asset.store_id}/{asset.id}/"
        files: list[tuple[str, bytes | Path, str]] = []
        meta: dict[str, Any] = {"content_type": content_type, "checksum": checksum, "original_bytes": size}
        if asset.kind == "image":
            result = await asyncio.to_thread(images.make_derivatives, source)
            meta.update(width=result.width, height=result.height, duration_ms=None)
            derivatives = {
                d.name: {"file": d.filename, "width": d.width, "height": d.height, "bytes": len(d.data),
                         "content_type": d.content_type}
                for d in result.derivatives
            }  # fmt: skip
            files = [(d.filename, d.data, d.content_type) for d in result.derivatives]
        else:
            clip = await video.transcode(source, tmp / "out", checksum[:16])
            meta.update(width=clip.probe.width, height=clip.probe.height, duration_ms=clip.probe.duration_ms)
            files = [(name, path, ct) for name, path, ct in clip.files]
            derivatives = {
                "hls": {"file": clip.master, "content_type": "application/vnd.apple.mpegurl"},
                "mp4": {"file": clip.mp4, "content_type": "video/mp4"},
                "poster": {"file": clip.poster, "content_type": "image/jpeg"},
            }
        stored_bytes = sum(len(d) if isinstance(d, bytes) else d.stat().st_size for _, d, _ in files)
        # The quota again, with the real sizes (a negotiation counted what the client announced).
        async with self.sessions() as session:
            system_scope(session)
            usage = await usage_of(session, asset.store_id, self.settings)
        others = usage.bytes - asset.declared_bytes
        if others + stored_bytes > usage.max_bytes:
            raise QuotaExceeded(
                f"The store's media quota is used up ({usage.max_bytes // (1024 * 1024)} MB): "
                "delete some files and retry."
            )
        for name, data, ct in files:
            if isinstance(data, bytes):
                await self.storage.put_bytes(prefix + name, data, ct)
            else:
                await self.storage.put_file(prefix + name, data, ct)
        meta.update(derivatives=derivatives, stored_bytes=stored_bytes)
        return meta

    async def _ready(self, asset: MediaAsset, meta: dict[str, Any]) -> None:
        async with self.sessions() as session, session.begin():
            service = MediaService(session, asset.store_id, self.settings, self.storage)
            row = await service.asset(asset.id, for_update=True)
            row.status, row.failure_reason, row.ready_at = "ready", "", datetime.now(UTC)
            row.content_type, row.checksum = meta["content_type"], meta["checksum"]
            row.original_bytes, row.stored_bytes = meta["original_bytes"], meta["stored_bytes"]
            row.width, row.height, row.duration_ms = meta["width"], meta["height"], meta["duration_ms"]
            row.derivatives = meta["derivatives"]
            await session.flush()
            await service.ensure_primary(row.product_id)
            await emit_product_changed(session, asset.store_id, row.product_id)
        await self.storage.delete(asset.original_key)  # it may carry GPS and camera details: never kept

    async def _requeue(self, asset: MediaAsset, reason: str) -> None:
        async with self.sessions() as session, session.begin():
            bind_store(session, asset.store_id)
            row = await session.get(MediaAsset, asset.id, with_for_update=True)
            if row is not None:
                row.status, row.failure_reason = "queued", f"Attempt {asset.attempts} failed ({reason}); retrying."

    async def _fail(self, asset: MediaAsset, reason: str) -> None:
        async with self.sessions() as session, session.begin():
            bind_store(session, asset.store_id)
            row = await session.get(MediaAsset, asset.id, with_for_update=True)
            if row is not None:
                row.status, row.failure_reason = "failed", reason[:500]
        log.warning("media.failed", asset_id=str(asset.id), reason=reason)

    async def resumable(self, limit: int = 100) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """The waiting assets of stores whose processing is not paused."""
        waiting = await self.waiting(limit)
        paused: dict[uuid.UUID, bool] = {}
        async with self.sessions() as session:
            for store_id in {s for s, _ in waiting}:
                paused[store_id] = await processing_paused(session, store_id)
        return [(s, a) for s, a in waiting if not paused[s]]

    async def sweep_abandoned(self, limit: int = 100) -> int:
        """Negotiations never completed (the upload link expired): their record and any bytes that arrived."""
        cutoff = datetime.now(UTC) - PENDING_TTL
        async with self.sessions() as session, session.begin():
            system_scope(session)
            rows = list(
                await session.scalars(
                    select(MediaAsset)
                    .where(MediaAsset.status == "pending", MediaAsset.created_at < cutoff)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            for asset in rows:
                await self.storage.delete_prefix(f"{asset.store_id}/{asset.id}/")
                await session.delete(asset)
        return len(rows)

    async def waiting(self, limit: int = 100) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(store, asset) of queued assets no job has picked up for a while, and of stale processing ones."""
        now = datetime.now(UTC)
        async with self.sessions() as session:
            system_scope(session)
            rows = await session.execute(
                select(MediaAsset.store_id, MediaAsset.id)
                .where(
                    ((MediaAsset.status == "queued") & (MediaAsset.updated_at < now - SWEEP_AFTER))
                    | (
                        (MediaAsset.status == "processing")
                        & (MediaAsset.processing_started_at < now - STALE_PROCESSING)
                    )
                )
                .order_by(MediaAsset.id)
                .limit(limit)
            )
            return [(r[0], r[1]) for r in rows]


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
