"""Media through HTTP and the processor on real PostgreSQL: negotiate → upload → complete → process → deliver;
refusals (type from the bytes, quota at negotiation and in the job) as problem+json; retries and failure; the
MEDIA_PAUSED switch; ffmpeg on a tiny generated clip; /metrics; the staff product page's media section."""

from __future__ import annotations

import io
import shutil
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import ExifTags, Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.models import Product
from app.config import Settings
from app.core import kill_switches
from app.core.outbox import OutboxEvent
from app.core.rbac import Role
from app.core.tenancy import system_scope
from app.media import jobs, processing
from app.media.models import MediaAsset, MediaQuota
from app.media.processing import MediaProcessor
from app.media.storage import LocalStorage, storage_for
from tests.integration.conftest import World, bearer, csrf_from, issue_token, sign_in
from tests.integration.shop import make_shop
from tests.unit.test_media_validation import phone_photo


async def product_id(world: World, store_id: uuid.UUID, slug: str = "mug-1") -> uuid.UUID:
    async with world.sessions() as session:
        system_scope(session)
        found = await session.scalar(select(Product.id).where(Product.store_id == store_id, Product.slug == slug))
    assert found is not None
    return found


async def upload(
    client: AsyncTestClient[Litestar], headers: dict[str, str], pid: uuid.UUID, data: bytes, content_type: str
) -> tuple[int, dict[str, Any]]:
    """Negotiate, PUT the bytes, complete: (status of the step that answered last, its JSON)."""
    n = await client.post(
        "/api/v1/media/uploads",
        json={"product_id": str(pid), "filename": "photo.jpg", "content_type": content_type, "bytes": len(data)},
        headers=headers,
    )
    if n.status_code != 201:
        return n.status_code, n.json()
    target = n.json()
    put = await client.put(target["upload_url"], content=data, headers=target["headers"])
    if put.status_code != 200:
        return put.status_code, put.json() | {"asset_id": target["asset_id"]}
    done = await client.post(target["complete_url"], headers=headers)
    return done.status_code, done.json()


def processor(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> MediaProcessor:
    return MediaProcessor(sessions, settings, storage_for(settings))


async def asset_row(sessions: async_sessionmaker[AsyncSession], asset_id: str | uuid.UUID) -> MediaAsset | None:
    async with sessions() as session:
        system_scope(session)
        return await session.get(MediaAsset, uuid.UUID(str(asset_id)))


def tiny_clip(path: Path, seconds: float = 1.0, size: str = "160x120") -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-v", "error",
         "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate=15",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-shortest", "-metadata", "location=+52.5200+013.4050/", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path


async def test_photo_goes_from_upload_to_signed_upright_derivatives_without_gps(
    client: AsyncTestClient[Litestar], world: World, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    shop = await make_shop(world)
    headers = bearer(await issue_token(world, shop.store, Role.MANAGER))
    pid = await product_id(world, shop.store.id)
    status, body = await upload(client, headers, pid, phone_photo(800, 600), "image/jpeg")
    assert status == 202, body
    assert body["status"] == "queued"
    asset_id = body["id"]
    async with sessions() as session:
        system_scope(session)
        events = (await session.scalars(select(OutboxEvent.type).where(OutboxEvent.aggregate_id == asset_id))).all()
    assert list(events) == ["media.uploaded"]

    outcome = await processor(sessions, settings).process(shop.store.id, uuid.UUID(asset_id))
    assert outcome.status == "ready", outcome
    got = (await client.get(f"/api/v1/media/assets/{asset_id}", headers=headers)).json()
    assert (got["status"], got["width"], got["height"], got["is_primary"]) == ("ready", 600, 800, True)
    assert len(got["checksum"]) == 64 and got["bytes"] > 0
    async with sessions() as session:
        system_scope(session)
        saved = (
            await session.scalars(
                select(OutboxEvent).where(OutboxEvent.type == "product.saved", OutboxEvent.aggregate_id == str(pid))
            )
        ).all()
    assert saved and saved[-1].payload["slug"] == "mug-1"  # the storefront's cached pages refresh

    # Every stored file: no GPS, no camera; the original (which had them) is gone.
    media_root = settings.data_dir / "media" / str(shop.store.id) / asset_id
    stored = sorted(p for p in media_root.rglob("*") if p.is_file())
    assert {p.name.split(".")[0] for p in stored} == {"thumb", "card", "full"} and len(stored) == 6
    for p in stored:
        data = p.read_bytes()
        assert b"PhoneCo" not in data
        assert not Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)

    # The storefront: srcset with signed URLs, lazy on the grid; the files immutable and cacheable.
    grid = await client.get(f"/s/{shop.store.slug}")
    assert 'type="image/webp"' in grid.text and 'loading="lazy"' in grid.text
    page = await client.get(f"/s/{shop.store.slug}/p/mug-1")
    assert "srcset=" in page.text
    src = page.text.split('<img src="', 1)[1].split('"', 1)[0]
    assert src.startswith(f"/media/{shop.store.id}/{asset_id}/") and src.endswith(".jpg")
    served = await client.get(src)
    assert served.status_code == 200 and served.headers["content-type"].startswith("image/jpeg")
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"

    # Tampering and expiry.
    prefix, token, name = src.rsplit("/", 2)
    expires, sig = token.split(".")
    assert (await client.get(f"{prefix}/{int(expires) + 3600}.{sig}/{name}")).status_code == 403
    assert (await client.get(f"{prefix}/{expires}.{'0' * 32}/{name}")).status_code == 403
    other_store = (await world.store()).id
    assert (await client.get(src.replace(str(shop.store.id), str(other_store)))).status_code == 403
    from app.media import signing

    stale = signing.delivery_token(settings.secret_key, shop.store.id, uuid.UUID(asset_id), 1_000_000)
    assert (await client.get(f"{prefix}/{stale}/{name}")).status_code == 403
    assert (await client.get(f"{prefix}/{token}/original")).status_code == 404


async def test_a_file_that_is_not_what_it_claims_is_refused_at_upload(
    client: AsyncTestClient[Litestar], world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await make_shop(world)
    headers = bearer(await issue_token(world, shop.store, Role.MANAGER))
    pid = await product_id(world, shop.store.id)
    script = b"<?php system($_GET['c']); ?>" + b" " * 100
    status, body = await upload(client, headers, pid, script, "image/jpeg")
    assert status == 422
    assert body["type"].endswith("/media_refused") and "not a photo or video" in body["fields"]["file"]
    assert await asset_row(sessions, body["asset_id"]) is None  # nothing half-written
    n = await client.post(
        "/api/v1/media/uploads",
        json={"product_id": str(pid), "filename": "a.pdf", "content_type": "application/pdf", "bytes": 10},
        headers=headers,
    )
    assert n.status_code == 422 and "content_type" in n.json()["fields"]
    # An upload link used with another size, or forged, is refused.
    n = await client.post(
        "/api/v1/media/uploads",
        json={"product_id": str(pid), "filename": "a.jpg", "content_type": "image/jpeg", "bytes": 10},
        headers=headers,
    )
    url = n.json()["upload_url"]
    assert (await client.put(url.replace("limit=10", "limit=99999"), content=b"x")).status_code == 403
    big = phone_photo()
    too_long = await client.put(url, content=big, headers={"content-type": "image/jpeg"})
    assert too_long.status_code == 422 and "larger than announced" in too_long.json()["detail"]


async def test_quota_is_enforced_at_negotiation_and_again_in_the_job(
    client: AsyncTestClient[Litestar], world: World, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    shop = await make_shop(world)
    headers = bearer(await issue_token(world, shop.store, Role.MANAGER))
    pid = await product_id(world, shop.store.id)
    photo = phone_photo(800, 600)
    async with sessions() as session, session.begin():
        session.add(MediaQuota(store_id=shop.store.id, max_bytes=len(photo) + 1000, max_count=2))
    status, first = await upload(client, headers, pid, photo, "image/jpeg")
    assert status == 202
    status, body = await upload(client, headers, pid, photo, "image/jpeg")
    assert status == 422 and body["type"].endswith("/media_quota_exceeded")
    assert "Not enough room" in body["detail"]
    # The job checks again with the real sizes: the quota shrank meanwhile.
    async with sessions() as session, session.begin():
        system_scope(session)
        quota = await session.scalar(select(MediaQuota).where(MediaQuota.store_id == shop.store.id))
        assert quota is not None
        quota.max_bytes = 1000
    outcome = await processor(sessions, settings).process(shop.store.id, uuid.UUID(first["id"]))
    assert outcome.status == "failed" and "quota" in outcome.detail
    row = await asset_row(sessions, first["id"])
    assert row is not None and row.status == "failed" and "quota" in row.failure_reason
    # Count: a failed file takes no room; two files fill a quota of two.
    async with sessions() as session, session.begin():
        system_scope(session)
        quota = await session.scalar(select(MediaQuota).where(MediaQuota.store_id == shop.store.id))
        assert quota is not None
        quota.max_bytes, quota.max_count = 10**9, 2
    assert (await upload(client, headers, pid, photo, "image/jpeg"))[0] == 202
    assert (await upload(client, headers, pid, photo, "image/jpeg"))[0] == 202
    status, body = await upload(client, headers, pid, photo, "image/jpeg")
    assert status == 422 and "2 of 2 files" in body["detail"]


async def test_a_transient_failure_is_retried_and_the_last_one_is_recorded(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = await make_shop(world)
    headers = bearer(await issue_token(world, shop.store, Role.MANAGER))
    pid = await product_id(world, shop.store.id)
    _, body = await upload(client, headers, pid, phone_photo(), "image/jpeg")
    asset_id = uuid.UUID(body["id"])
    failures = {"left": 1}
    real_put = LocalStorage.put_bytes

    async def flaky_put(self: LocalStorage, key: str, data: bytes, content_type: str) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise OSError("disk went away")
        await real_put(self, key, data, content_type)

    monkeypatch.setattr(LocalStorage, "put_bytes", flaky_put)
    media = processor(sessions, settings)
    with pytest.raises(OSError, match="disk went away"):  # raised, so SAQ retries it with backoff
        await media.process(shop.store.id, asset_id)
    row = await asset_row(sessions, asset_id)
    assert row is not None and (row.status, row.attempts) == ("queued", 1) and "disk went away" in row.failure_reason
    assert (await media.process(shop.store.id, asset_id)).status == "ready"
    row = await asset_row(sessions, asset_id)
    assert row is not None and (row.status, row.attempts, row.failure_reason) == ("ready", 2, "")

    # Failing every time: after MAX_ATTEMPTS the asset is failed with its reason, shown on the product page.
    _, body = await upload(client, headers, pid, phone_photo(), "image/jpeg")
    broken = uuid.UUID(body["id"])
    failures["left"] = 10**6
    for _ in range(processing.MAX_ATTEMPTS - 1):
        with pytest.raises(OSError):
            await media.process(shop.store.id, broken)
    outcome = await media.process(shop.store.id, broken)
    assert outcome.status == "failed"
    row = await asset_row(sessions, broken)
    assert row is not None and row.status == "failed" and row.attempts == processing.MAX_ATTEMPTS
    assert f"failed {processing.MAX_ATTEMPTS} times" in row.failure_reason
    assert (await media.process(shop.store.id, broken)).status == "skipped"  # a late retry does nothing

    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(client, manager.email)
    section = await client.get(f"/staff/products/{pid}/media/", headers={"hx-request": "true"})
    assert "Failed" in section.text and "disk went away" in section.text and "Try again" in section.text
    failures["left"] = 0
    retry = await client.post(
        f"/staff/products/{pid}/media/{broken}",
        data={"action": "retry", "_csrf_token": csrf_from(section.text)},
        headers={"hx-request": "true"},
    )
    assert retry.status_code == 200 and "Queued" in retry.text
    assert (await media.process(shop.store.id, broken)).status == "ready"


async def test_processing_waits_while_the_media_switch_is_engaged(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = await make_shop(world)
    headers = bearer(await issue_token(world, shop.store, Role.MANAGER))
    pid = await product_id(world, shop.store.id)
    async with sessions() as session, session.begin():
        await kill_switches.engage(
            session, kill_switches.Switch.MEDIA_PAUSED, shop.store.id, principal=None, actor="test"
        )
    status, body = await upload(client, headers, pid, phone_photo(), "image/jpeg")
    assert status == 202  # uploads are still accepted
    asset_id = uuid.UUID(body["id"])
    media = processor(sessions, settings)
    assert (await media.process(shop.store.id, asset_id)).status == "paused"
    row = await asset_row(sessions, asset_id)
    assert row is not None and (row.status, row.attempts) == ("queued", 0)
    # The 30 s sweep leaves a paused store's assets alone, and picks them up once the switch is released.
    monkeypatch.setattr(processing, "SWEEP_AFTER", timedelta(0))
    queue = FakeQueue()
    ctx = {"settings": settings, "sessions": sessions, "queue": queue}
    assert await jobs.resume_media(ctx) == 0 and queue.jobs == []
    async with sessions() as session, session.begin():
        await kill_switches.release(
            session, kill_switches.Switch.MEDIA_PAUSED, shop.store.id, principal=None, actor="test"
        )
    assert await jobs.resume_media(ctx) == 1
    ((task, kwargs),) = queue.jobs
    assert task == "process_media_asset" and kwargs["asset_id"] == str(asset_id) and kwargs["retries"] == 5
    assert await jobs.process_media_asset(ctx, store_id=kwargs["store_id"], asset_id=kwargs["asset_id"]) == "ready"
    row = await asset_row(sessions, asset_id)
    assert row is not None and row.status == "ready"


class FakeQueue:
    def __init__(self) -> None:
        self.jobs: list[tuple[str, dict[str, Any]]] = []

    async def enqueue(self, task: str, **kwargs: Any) -> None:
        self.jobs.append((task, kwargs))


async def test_abandoned_negotiations_are_swept(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = await make_shop(world)
    headers = bearer(await issue_token(world, shop.store, Role.MANAGER))
    pid = await product_id(world, shop.store.id)
    n = await client.post(
        "/api/v1/media/uploads",
        json={"product_id": str(pid), "filename": "a.jpg", "content_type": "image/jpeg", "bytes": 5000},
        headers=headers,
    )
    asset_id = n.json()["asset_id"]
    assert (
        await client.put(n.json()["upload_url"], content=phone_photo(), headers=n.json()["headers"])
    ).status_code == 200
    media = processor(sessions, settings)
    assert await media.sweep_abandoned() == 0  # still within its upload window
    monkeypatch.setattr(processing, "PENDING_TTL", timedelta(0))
    assert await media.sweep_abandoned() == 1
    assert await asset_row(sessions, asset_id) is None
    assert not (settings.data_dir / "media" / str(shop.store.id) / asset_id).exists()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is installed by `make debs`")
async def test_ffmpeg_turns_a_tiny_clip_into_hls_an_mp4_and_a_poster(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tmp_path: Path,
) -> None:
    shop = await make_shop(world)
    headers = bearer(await issue_token(world, shop.store, Role.MANAGER))
    pid = await product_id(world, shop.store.id)
    clip = tiny_clip(tmp_path / "clip.mp4").read_bytes()
    status, body = await upload(client, headers, pid, clip, "video/mp4")
    assert status == 202, body
    outcome = await processor(sessions, settings).process(shop.store.id, uuid.UUID(body["id"]))
    assert outcome.status == "ready", outcome
    row = await asset_row(sessions, body["id"])
    assert row is not None and (row.width, row.height) == (160, 120)
    assert row.duration_ms is not None and 900 <= row.duration_ms <= 1200
    assert set(row.derivatives) == {"hls", "mp4", "poster"} and not row.is_primary
    root = settings.data_dir / "media" / str(shop.store.id) / body["id"]
    master = (root / row.derivatives["hls"]["file"]).read_text()
    assert master.startswith("#EXTM3U") and "120p/index.m3u8" in master
    playlist = (root / row.derivatives["hls"]["file"]).parent / "120p" / "index.m3u8"
    assert "#EXT-X-ENDLIST" in playlist.read_text() and list(playlist.parent.glob("s*.ts"))
    assert (root / row.derivatives["poster"]["file"]).read_bytes()[:3] == b"\xff\xd8\xff"
    for f in root.rglob("*"):
        if f.is_file():
            assert b"+52.5200" not in f.read_bytes()  # the clip's GPS location is gone
    assert not (root / "original").exists()
    page = await client.get(f"/s/{shop.store.slug}/p/mug-1")
    assert "<video" in page.text and 'type="video/mp4"' in page.text and "application/vnd.apple.mpegurl" in page.text
    mp4 = page.text.split('<source src="', 2)[2].split('"', 1)[0]
    assert (await client.get(mp4)).headers["content-type"] == "video/mp4"


async def test_metrics_report_job_duration_waiting_and_bytes_per_store(
    client: AsyncTestClient[Litestar],
    world: World,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    redis: Any,
) -> None:
    shop = await make_shop(world)
    headers = bearer(await issue_token(world, shop.store, Role.MANAGER))
    pid = await product_id(world, shop.store.id)
    _, body = await upload(client, headers, pid, phone_photo(), "image/jpeg")
    _, waiting = await upload(client, headers, pid, phone_photo(), "image/jpeg")
    media = MediaProcessor(sessions, settings, storage_for(settings), redis)
    assert (await media.process(shop.store.id, uuid.UUID(body["id"]))).status == "ready"
    text = (await client.get("/metrics")).text
    assert 'till_media_job_duration_seconds_count{kind="image",outcome="ready"} 1.0' in text
    assert 'till_media_queue_depth{status="queued"} 1.0' in text
    row = await asset_row(sessions, body["id"])
    assert row is not None
    assert f'till_media_stored_bytes{{store_id="{shop.store.id}"}} {float(row.stored_bytes)}' in text
    assert waiting["status"] == "queued"


async def test_staff_set_alt_text_primary_and_order_and_see_the_quota(
    client: AsyncTestClient[Litestar], world: World, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    shop = await make_shop(world)
    manager = await world.staff(shop.store, Role.MANAGER)
    await sign_in(client, manager.email)
    pid = await product_id(world, shop.store.id)
    form = await client.get(f"/staff/products/{pid}")
    assert 'id="media-drop"' in form.text and "/static/media/uploader.js" in form.text
    csrf = csrf_from(form.text)
    ids = []
    for _ in range(2):  # the staff page's own negotiation (session + CSRF header)
        n = await client.post(
            f"/staff/products/{pid}/media/uploads",
            json={"product_id": str(pid), "filename": "p.jpg", "content_type": "image/jpeg", "bytes": 5000},
            headers={"x-csrftoken": csrf},
        )
        assert n.status_code == 201, n.text
        target = n.json()
        assert (
            await client.put(target["upload_url"], content=phone_photo(), headers=target["headers"])
        ).status_code == 200
        done = await client.post(target["complete_url"], headers={"x-csrftoken": csrf})
        assert done.status_code == 202
        ids.append(target["asset_id"])
        await processor(sessions, settings).process(shop.store.id, uuid.UUID(target["asset_id"]))
    refused = await client.post(
        f"/staff/products/{pid}/media/uploads",
        json={"product_id": str(pid), "filename": "cv.pdf", "content_type": "application/pdf", "bytes": 5000},
        headers={"x-csrftoken": csrf},
    )
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")
    assert "Upload a JPEG" in refused.json()["fields"]["content_type"]  # what the page shows next to the file
    hx = {"hx-request": "true", "x-csrftoken": csrf}
    section = await client.get(f"/staff/products/{pid}/media/", headers=hx)
    assert "2 of 500 files" in section.text and section.text.count('data-testid="media-item"') == 2
    too_long = await client.post(f"/staff/products/{pid}/media/{ids[1]}", data={"alt_text": "x" * 301}, headers=hx)
    assert too_long.status_code == 422 and "under 300 characters" in too_long.text
    saved = await client.post(
        f"/staff/products/{pid}/media/{ids[1]}", data={"alt_text": "A red mug", "action": "primary"}, headers=hx
    )
    assert saved.status_code == 200 and 'value="A red mug"' in saved.text
    rows = {str(a.id): a for a in [await asset_row(sessions, i) for i in ids] if a is not None}
    assert rows[ids[1]].is_primary and not rows[ids[0]].is_primary
    moved = await client.post(f"/staff/products/{pid}/media/order", data={"order": f"{ids[1]},{ids[0]}"}, headers=hx)
    assert moved.status_code == 200 and moved.text.index(ids[1]) < moved.text.index(ids[0])
    stale = await client.post(f"/staff/products/{pid}/media/order", data={"order": ids[0]}, headers=hx)
    assert stale.status_code == 422 and "reload the page" in stale.text
    page = await client.get(f"/s/{shop.store.slug}/p/mug-1")
    assert 'alt="A red mug"' in page.text
    deleted = await client.post(f"/staff/products/{pid}/media/{ids[1]}", data={"action": "delete"}, headers=hx)
    assert deleted.status_code == 200 and "1 of 500 files" in deleted.text
    row = await asset_row(sessions, ids[0])
    assert row is not None and row.is_primary  # the remaining photo became the main one
