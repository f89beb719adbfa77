"""The S3 backend against a real S3-compatible server on loopback (moto's server mode, ADR 0009 addendum): the
browser's presigned POST upload, complete, the processing job reading and writing the bucket, delivery's 302 to a
presigned GET, and the stored objects without GPS; a body larger than announced refused and deleted;
a deleted product's objects deleted from the bucket by the worker."""

from __future__ import annotations

import dataclasses
import io
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3  # type: ignore[import-untyped]
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from moto.server import ThreadedMotoServer
from PIL import ExifTags, Image
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.services import CatalogService
from app.config import Settings
from app.core.rbac import Role
from app.main import create_app
from app.media import jobs
from app.media.processing import MediaProcessor
from app.media.storage import S3Storage, storage_for
from tests.integration.conftest import World, bearer, issue_token
from tests.integration.shop import make_shop
from tests.integration.test_media import asset_row, product_id
from tests.integration.test_media_product_delete import released_events
from tests.unit.test_media_validation import phone_photo


@dataclasses.dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str  # one per test: moto keeps its buckets for the whole process

    def keys(self, prefix: str = "") -> list[str]:
        listed = bucket_client(self.endpoint).list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bucket_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def s3() -> Iterator[S3Server]:
    """moto's S3 on 127.0.0.1 at a free port, with an empty bucket; stopped after the test."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    bucket = f"till-media-{uuid.uuid4().hex[:12]}"
    try:
        bucket_client(endpoint).create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield S3Server(endpoint, bucket)
    finally:
        server.stop()


@pytest.fixture
def s3_settings(settings: Settings, s3: S3Server) -> Settings:
    host_port = s3.endpoint.removeprefix("http://")
    url = f"s3://testing:testing@{host_port}/{s3.bucket}?region=eu-west-1&tls=0"
    return dataclasses.replace(settings, media_storage_url=url)


@pytest.fixture
async def s3_client(s3_settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(s3_settings), base_url="http://testserver.local") as client:
        client.follow_redirects = False
        yield client


async def negotiate(
    client: AsyncTestClient[Litestar], headers: dict[str, str], pid: uuid.UUID, size: int
) -> dict[str, Any]:
    n = await client.post(
        "/api/v1/media/uploads",
        json={"product_id": str(pid), "filename": "phone.jpg", "content_type": "image/jpeg", "bytes": size},
        headers=headers,
    )
    assert n.status_code == 201, n.text
    body: dict[str, Any] = n.json()
    return body


async def test_photo_through_a_real_s3_server_upload_process_deliver_without_gps(
    s3_client: AsyncTestClient[Litestar],
    s3_settings: Settings,
    s3: S3Server,
    world: World,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    assert isinstance(storage_for(s3_settings), S3Storage)
    shop = await make_shop(world)
    headers = bearer(await issue_token(world, shop.store, Role.MANAGER))
    pid = await product_id(world, shop.store.id)
    photo = phone_photo(800, 600)  # rotated (EXIF orientation 6), with GPS and a camera make
    assert Image.open(io.BytesIO(photo)).getexif().get_ifd(ExifTags.IFD.GPSInfo)

    # The browser's part: a presigned POST straight to the bucket, fields first, the file last.
    target = await negotiate(s3_client, headers, pid, len(photo))
    assert target["method"] == "POST" and target["upload_url"].startswith(s3.endpoint)
    async with httpx.AsyncClient() as browser:
        sent = await browser.post(
            target["upload_url"], data=target["fields"], files={"file": ("phone.jpg", photo, "image/jpeg")}
        )
        assert sent.status_code in (200, 201, 204), sent.text
        original_key = target["fields"]["key"]
        assert s3.keys() == [original_key]

        done = await s3_client.post(target["complete_url"], headers=headers)
        assert done.status_code == 202, done.text
        asset_id = done.json()["id"]
        assert done.json()["status"] == "queued"

        # The worker's part: the job reads the original from the bucket and writes the derivatives there.
        outcome = await MediaProcessor(sessions, s3_settings, storage_for(s3_settings)).process(
            shop.store.id, uuid.UUID(asset_id)
        )
        assert outcome.status == "ready", outcome
        got = (await s3_client.get(f"/api/v1/media/assets/{asset_id}", headers=headers)).json()
        assert (got["status"], got["width"], got["height"]) == ("ready", 600, 800)  # upright

        keys = s3.keys(f"{shop.store.id}/{asset_id}/")
        assert original_key not in keys  # the original (GPS, camera) is deleted once the derivatives exist
        assert sorted(k.rsplit("/", 1)[1].split(".")[0] for k in keys) == [
            "card",
            "card",
            "full",
            "full",
            "thumb",
            "thumb",
        ]
        bucket = bucket_client(s3.endpoint)
        for key in keys:
            data = bucket.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
            assert b"PhoneCo" not in data
            assert not Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)

        # Delivery: the app's signed URL answers a 302 to a presigned GET on the bucket, which serves the file.
        page = await s3_client.get(f"/s/{shop.store.slug}/p/mug-1")
        src = page.text.split('<img src="', 1)[1].split('"', 1)[0]
        assert src.startswith(f"/media/{shop.store.id}/{asset_id}/") and src.endswith(".jpg")
        redirect = await s3_client.get(src)
        assert redirect.status_code == 302
        location = redirect.headers["location"]
        assert location.startswith(f"{s3.endpoint}/{s3.bucket}/{shop.store.id}/{asset_id}/")
        assert "X-Amz-Signature=" in location and "X-Amz-Expires=" in location
        served = await browser.get(location)
        assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
        image = Image.open(io.BytesIO(served.content))
        assert image.format == "JPEG" and image.height > image.width  # the upright portrait
        assert not image.getexif().get_ifd(ExifTags.IFD.GPSInfo) and b"PhoneCo" not in served.content


async def test_a_body_larger_than_announced_is_refused_at_complete_and_deleted_from_the_bucket(
    s3_client: AsyncTestClient[Litestar], s3: S3Server, world: World, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The presigned POST's policy caps the size at the storage (AWS and MinIO enforce it; moto's server does not,
    so this checks the app's own second check at complete, which must hold with any S3-compatible storage)."""
    shop = await make_shop(world)
    headers = bearer(await issue_token(world, shop.store, Role.MANAGER))
    pid = await product_id(world, shop.store.id)
    photo = phone_photo(400, 300)
    target = await negotiate(s3_client, headers, pid, len(photo))
    async with httpx.AsyncClient() as browser:
        larger = await browser.post(
            target["upload_url"],
            data=target["fields"],
            files={"file": ("phone.jpg", photo + b"\0" * 4096, "image/jpeg")},
        )
    assert larger.status_code == 204
    assert s3.keys() == [target["fields"]["key"]]
    done = await s3_client.post(target["complete_url"], headers=headers)
    assert done.status_code == 422 and done.headers["content-type"].startswith("application/problem+json")
    assert "larger than announced" in done.text
    assert s3.keys() == []  # the refused file is deleted with its record
    assert await asset_row(sessions, target["asset_id"]) is None


async def test_deleting_a_product_deletes_its_objects_from_the_bucket(
    s3_client: AsyncTestClient[Litestar],
    s3_settings: Settings,
    s3: S3Server,
    world: World,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    shop = await make_shop(world)
    headers = bearer(await issue_token(world, shop.store, Role.MANAGER))
    mug, beans = await product_id(world, shop.store.id, "mug-1"), await product_id(world, shop.store.id, "bean-1")
    assets: dict[uuid.UUID, str] = {}
    async with httpx.AsyncClient() as browser:
        for pid in (mug, beans):
            photo = phone_photo(400, 300)
            target = await negotiate(s3_client, headers, pid, len(photo))
            sent = await browser.post(
                target["upload_url"], data=target["fields"], files={"file": ("p.jpg", photo, "image/jpeg")}
            )
            assert sent.status_code == 204
            assert (await s3_client.post(target["complete_url"], headers=headers)).status_code == 202
            outcome = await MediaProcessor(sessions, s3_settings, storage_for(s3_settings)).process(
                shop.store.id, uuid.UUID(target["asset_id"])
            )
            assert outcome.status == "ready"
            assets[pid] = target["asset_id"]
    mug_prefix, beans_prefix = (f"{shop.store.id}/{assets[p]}/" for p in (mug, beans))
    assert len(s3.keys(mug_prefix)) == 6 and len(s3.keys(beans_prefix)) == 6

    async with sessions() as session, session.begin():
        await CatalogService(session, shop.store.id).delete_product(mug)
    (event,) = await released_events(sessions, mug)
    assert len(s3.keys(mug_prefix)) == 6  # until the worker runs, after the commit
    assert await jobs.delete_media_files({"settings": s3_settings}, event=event) == 1
    assert s3.keys(mug_prefix) == [] and len(s3.keys(beans_prefix)) == 6
