"""SAQ task bodies for media (registered in workers/settings.py): tiny, they call the processor."""

from __future__ import annotations

import uuid
from typing import Any

import structlog

from app.core.jobs import enqueue
from app.core.outbox import register_consumer
from app.media.processing import MediaProcessor
from app.media.services import MEDIA_RELEASED, MEDIA_UPLOADED
from app.media.storage import storage_for
from app.webhooks.receipts import exactly_once

log = structlog.get_logger(__name__)


def _processor(ctx: Any) -> MediaProcessor:
    settings = ctx["settings"]
    return MediaProcessor(ctx["sessions"], settings, storage_for(settings), ctx.get("redis"))


@exactly_once
async def process_media(ctx: Any, *, event: dict[str, Any]) -> str:
    """media.uploaded: make the derivatives. A transient failure raises (SAQ retries with backoff); the last
    attempt, or a refusal, marks the asset failed with its reason; a paused store leaves it queued."""
    outcome = await _processor(ctx).process(uuid.UUID(event["store_id"]), uuid.UUID(event["aggregate_id"]))
    return outcome.status


async def process_media_asset(ctx: Any, *, store_id: str, asset_id: str) -> str:
    """The same for one asset found waiting by the sweep (a lost job, or a store whose pause was released)."""
    outcome = await _processor(ctx).process(uuid.UUID(store_id), uuid.UUID(asset_id))
    return outcome.status


async def resume_media(ctx: Any) -> int:
    """Every 30 s: queue a job for each asset left waiting, except in stores whose processing is paused (their
    assets stay queued until the switch is released); drop negotiations whose upload never came."""
    media = _processor(ctx)
    await media.sweep_abandoned()
    waiting = await media.resumable()
    queue = ctx["queue"] if "queue" in ctx else ctx["worker"].queue
    for store_id, asset_id in waiting:
        await enqueue(
            queue,
            "process_media_asset",
            key=f"media:{asset_id}",
            retries=5,
            store_id=str(store_id),
            asset_id=str(asset_id),
        )
    if waiting:
        log.info("media.swept", waiting=len(waiting))
    return len(waiting)


async def delete_media_files(ctx: Any, *, event: dict[str, Any]) -> int:
    """media.released (a deleted product): delete the stored files of its assets, local or S3. Deleting what is
    already gone is a no-op, so a retry or a second delivery is harmless; a storage error raises (SAQ retries)."""
    storage = storage_for(ctx["settings"])
    store_id = uuid.UUID(str(event["store_id"]))
    asset_ids = [uuid.UUID(a) for a in event["payload"].get("asset_ids", [])]
    for asset_id in asset_ids:
        await storage.delete_prefix(f"{store_id}/{asset_id}/")
    log.info("media.files_deleted", store_id=str(store_id), assets=len(asset_ids))
    return len(asset_ids)


register_consumer(MEDIA_UPLOADED, "process_media")
register_consumer(MEDIA_RELEASED, "delete_media_files")
