"""Media rules: negotiating an upload within the store's quota, accepting the bytes, and what staff do with a
product's media (alt text, order, primary, delete, retry). The only writer of ``media_assets``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Product
from app.config import Settings
from app.core.errors import NotFound, ValidationFailed
from app.core.outbox import emit
from app.core.tenancy import bind_store
from app.media import signing
from app.media.models import MediaAsset, MediaQuota
from app.media.storage import Storage, UploadTarget
from app.media.validation import (
    SNIFF_BYTES,
    MediaRefused,
    QuotaExceeded,
    check_bytes,
    check_declared,
)

MEDIA_UPLOADED = "media.uploaded"
MEDIA_RELEASED = "media.released"  # assets whose rows are going (a deleted product): the worker deletes their files
PRODUCT_SAVED = "product.saved"  # the catalog's change event: the storefront's cached pages refresh on it
PENDING_TTL = timedelta(seconds=signing.UPLOAD_TTL + 60)  # a negotiation never completed stops counting after this
MAX_ALT = 300


@dataclass(frozen=True)
class Usage:
    bytes: int
    count: int
    max_bytes: int
    max_count: int

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.bytes / self.max_bytes)) if self.max_bytes else 100


@dataclass(frozen=True)
class Negotiated:
    asset: MediaAsset
    target: UploadTarget


def _counted(now: datetime) -> Any:
    """Assets that take quota: everything but failed ones and negotiations that were never completed."""
    return (MediaAsset.status != "failed") & (
        (MediaAsset.status != "pending") | (MediaAsset.created_at > now - PENDING_TTL)
    )


async def emit_product_changed(session: AsyncSession, store_id: uuid.UUID, product_id: uuid.UUID) -> None:
    """The catalog's own ``product.saved`` event, in the caller's transaction (the storefront cache refreshes)."""
    slug = await session.scalar(select(Product.slug).where(Product.id == product_id))
    if slug is not None:
        emit(
            session,
            PRODUCT_SAVED,
            aggregate_type="product",
            aggregate_id=product_id,
            payload={"slug": slug, "media": True},
            store_id=store_id,
        )


async def release_product_media(session: AsyncSession, store_id: uuid.UUID, product_id: uuid.UUID) -> list[uuid.UUID]:
    """Before a product is deleted (its asset rows go with it, by cascade): one ``media.released`` event naming its
    assets, in the caller's transaction, so the worker's ``delete_media_files`` deletes their stored files (local
    or S3) once the deletion is committed, and only then (a rolled-back deletion keeps its files)."""
    asset_ids = list(await session.scalars(select(MediaAsset.id).where(MediaAsset.product_id == product_id)))
    if asset_ids:
        emit(
            session,
            MEDIA_RELEASED,
            aggregate_type="product",
            aggregate_id=product_id,
            payload={"asset_ids": [str(a) for a in asset_ids]},
            store_id=store_id,
        )
    return asset_ids


async def usage_of(session: AsyncSession, store_id: uuid.UUID, settings: Settings) -> Usage:
    now = datetime.now(UTC)
    row = (
        await session.execute(
            select(
                func.coalesce(
                    func.sum(
                        case((MediaAsset.status == "ready", MediaAsset.stored_bytes), else_=MediaAsset.declared_bytes)
                    ),
                    0,
                ),
                func.count(),
            ).where(MediaAsset.store_id == store_id, _counted(now))
        )
    ).one()
    quota = await session.scalar(select(MediaQuota).where(MediaQuota.store_id == store_id))
    return Usage(
        bytes=int(row[0]),
        count=int(row[1]),
        max_bytes=quota.max_bytes if quota else settings.media_quota_bytes,
        max_count=quota.max_count if quota else settings.media_quota_count,
    )


def _human(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n //= 1024
    return str(n)


class MediaService:
    def __init__(self, session: AsyncSession, store_id: uuid.UUID, settings: Settings, storage: Storage) -> None:
        self.session = session
        self.store_id = store_id
        self.settings = settings
        self.storage = storage
        bind_store(session, store_id)

    async def usage(self) -> Usage:
        return await usage_of(self.session, self.store_id, self.settings)

    async def _lock_quota(self) -> None:
        """Negotiations of one store take turns, so two at once cannot both squeeze into the last megabyte."""
        await self.session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(f"media-quota:{self.store_id}", 0)))
        )

    async def negotiate(self, product_id: uuid.UUID, filename: str, content_type: str, size: int) -> Negotiated:
        kind = check_declared(content_type, size)
        if await self.session.scalar(select(Product.id).where(Product.id == product_id)) is None:
            raise NotFound("No such product.")
        await self._lock_quota()
        usage = await self.usage()
        if usage.count + 1 > usage.max_count:
            raise QuotaExceeded(
                f"The store's media library is full: {usage.count} of {usage.max_count} files. "
                "Delete some before uploading more."
            )
        if usage.bytes + size > usage.max_bytes:
            raise QuotaExceeded(
                f"Not enough room: this file needs {_human(size)} and {_human(max(0, usage.max_bytes - usage.bytes))} "
                f"of the store's {_human(usage.max_bytes)} are free."
            )
        position = await self.session.scalar(
            select(func.coalesce(func.max(MediaAsset.position) + 1, 0)).where(MediaAsset.product_id == product_id)
        )
        asset = MediaAsset(
            product_id=product_id,
            kind=kind,
            status="pending",
            filename=filename.strip()[:200],
            content_type=content_type,
            declared_bytes=size,
            position=int(position or 0),
        )
        self.session.add(asset)
        await self.session.flush()
        expires = int(time.time()) + signing.UPLOAD_TTL
        target = self.storage.upload_target(self.store_id, asset.id, asset.original_key, content_type, size, expires)
        return Negotiated(asset, target)

    async def asset(self, asset_id: uuid.UUID, *, for_update: bool = False) -> MediaAsset:
        stmt = select(MediaAsset).where(MediaAsset.id == asset_id)
        if for_update:
            stmt = stmt.with_for_update()
        asset = await self.session.scalar(stmt)
        if asset is None:
            raise NotFound("No such media file.")
        return asset

    async def complete(self, asset_id: uuid.UUID) -> MediaAsset:
        """The client says the bytes are up: check what arrived (sniffed type, size), then queue processing.
        A refused file is deleted with its record before the refusal is raised (the caller commits that)."""
        asset = await self.asset(asset_id, for_update=True)
        if asset.status != "pending":
            return asset  # completed before: the same answer again
        size = await self.storage.size(asset.original_key)
        try:
            if size is None:
                raise MediaRefused("The file did not arrive: upload it again.")
            if size > asset.declared_bytes:
                raise MediaRefused("The file is larger than announced.")
            content_type = check_bytes(await self.storage.read_head(asset.original_key, SNIFF_BYTES), size, asset.kind)
        except MediaRefused:
            await self.discard(asset)
            raise
        asset.content_type, asset.original_bytes = content_type, size
        asset.status, asset.uploaded_at, asset.failure_reason = "queued", datetime.now(UTC), ""
        emit(
            self.session,
            MEDIA_UPLOADED,
            aggregate_type="media_asset",
            aggregate_id=asset.id,
            payload={"product_id": str(asset.product_id), "kind": asset.kind},
        )
        return asset

    async def discard(self, asset: MediaAsset) -> None:
        await self.storage.delete_prefix(f"{self.store_id}/{asset.id}/")
        await self.session.delete(asset)
        await self.session.flush()

    async def for_product(self, product_id: uuid.UUID) -> list[MediaAsset]:
        rows = await self.session.scalars(
            select(MediaAsset)
            .where(MediaAsset.product_id == product_id, MediaAsset.status != "pending")
            .order_by(MediaAsset.position, MediaAsset.id)
        )
        return list(rows)

    async def update(self, asset_id: uuid.UUID, *, alt_text: str | None = None, primary: bool = False) -> MediaAsset:
        asset = await self.asset(asset_id, for_update=True)
        if alt_text is not None:
            alt = " ".join(alt_text.split())
            if len(alt) > MAX_ALT:
                raise ValidationFailed(
                    "Check the description.", fields={"alt_text": f"Keep it under {MAX_ALT} characters."}
                )
            asset.alt_text = alt
        if primary:
            if asset.kind != "image" or asset.status != "ready":
                raise ValidationFailed(
                    "Only a processed photo can be the main one.", fields={"primary": "Choose a ready photo."}
                )
            others = await self.session.scalars(
                select(MediaAsset).where(MediaAsset.product_id == asset.product_id, MediaAsset.is_primary.is_(True))
            )
            for other in others:
                other.is_primary = False
            await self.session.flush()
            asset.is_primary = True
        await self.session.flush()
        await emit_product_changed(self.session, self.store_id, asset.product_id)
        return asset

    async def reorder(self, product_id: uuid.UUID, order: Sequence[uuid.UUID]) -> None:
        assets = {a.id: a for a in await self.for_product(product_id)}
        if set(order) != set(assets):
            raise ValidationFailed("The list of files changed meanwhile: reload the page.", fields={"order": "stale"})
        for position, asset_id in enumerate(order):
            assets[asset_id].position = position
        await self.session.flush()
        await emit_product_changed(self.session, self.store_id, product_id)

    async def delete(self, asset_id: uuid.UUID) -> MediaAsset:
        asset = await self.asset(asset_id, for_update=True)
        was_primary, product_id = asset.is_primary, asset.product_id
        await self.discard(asset)
        if was_primary:
            await self.ensure_primary(product_id)
        await emit_product_changed(self.session, self.store_id, product_id)
        return asset

    async def retry(self, asset_id: uuid.UUID) -> MediaAsset:
        """A failed file whose original is still stored is queued again (its attempts start over)."""
        asset = await self.asset(asset_id, for_update=True)
        if asset.status != "failed":
            return asset
        if await self.storage.size(asset.original_key) is None:
            raise ValidationFailed(
                "The uploaded file is gone: delete this one and upload it again.", fields={"retry": "gone"}
            )
        asset.status, asset.attempts, asset.failure_reason = "queued", 0, ""
        emit(
            self.session,
            MEDIA_UPLOADED,
            aggregate_type="media_asset",
            aggregate_id=asset.id,
            payload={"product_id": str(asset.product_id), "kind": asset.kind, "retry": True},
        )
        return asset

    async def ensure_primary(self, product_id: uuid.UUID) -> None:
        """A product with ready photos has exactly one primary: the first by position when none is chosen."""
        photos = [a for a in await self.for_product(product_id) if a.kind == "image" and a.status == "ready"]
        if photos and not any(a.is_primary for a in photos):
            photos[0].is_primary = True
            await self.session.flush()
