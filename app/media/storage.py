"""Where media bytes live, behind one interface: the local data folder (default) or S3-compatible storage.

Keys are ``{store_id}/{asset_id}/{name}``. Originals are private (never delivered) and deleted once the
derivatives exist; derivatives are immutable (content-hashed names).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from app.config import Settings
from app.media import signing


@dataclass(frozen=True)
class UploadTarget:
    """How the client sends the bytes: ``PUT url`` with the raw body, or (S3) ``POST url`` multipart with
    ``fields`` first and the file last."""

    method: str
    url: str
    expires: int
    fields: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class Storage(Protocol):
    name: str

    async def put_file(self, key: str, path: Path, content_type: str) -> None: ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    async def fetch_to(self, key: str, path: Path) -> int:
        """Copy the object to a local file; its size. FileNotFoundError when it is not there."""
        ...

    async def read_head(self, key: str, length: int) -> bytes: ...

    async def size(self, key: str) -> int | None: ...

    async def delete(self, key: str) -> None: ...

    async def delete_prefix(self, prefix: str) -> None: ...

    def upload_target(
        self, store_id: uuid.UUID, asset_id: uuid.UUID, key: str, content_type: str, max_bytes: int, expires: int
    ) -> UploadTarget: ...

    def local_path(self, key: str) -> Path | None:
        """A file the app can stream itself (local backend), else None."""
        ...

    def read_url(self, key: str, expires_in: int) -> str | None:
        """A URL the browser may be redirected to (object storage), else None."""
        ...


def _safe(key: str) -> str:
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") or "\\" in p for p in parts):
        raise ValueError(f"bad media key {key!r}")
    return key


class LocalStorage:
    """Files under ``<data_dir>/media``. Uploads come straight to the app (a signed PUT)."""

    name = "local"

    def __init__(self, root: Path, secret_key: str) -> None:
        self.root = root
        self.secret_key = secret_key

    def _path(self, key: str) -> Path:
        return self.root / _safe(key)

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        target = self._path(key)

        def copy() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            shutil.copyfile(path, tmp)
            tmp.replace(target)

        await asyncio.to_thread(copy)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        target = self._path(key)

        def write() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(target)

        await asyncio.to_thread(write)

    async def fetch_to(self, key: str, path: Path) -> int:
        source = self._path(key)

        def copy() -> int:
            shutil.copyfile(source, path)
            return path.stat().st_size

        return await asyncio.to_thread(copy)

    async def read_head(self, key: str, length: int) -> bytes:
        def read() -> bytes:
            with self._path(key).open("rb") as f:
                return f.read(length)

        return await asyncio.to_thread(read)

    async def size(self, key: str) -> int | None:
        path = self._path(key)
        return path.stat().st_size if path.exists() else None

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    async def delete_prefix(self, prefix: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self._path(prefix.rstrip("/")), True)

    def upload_target(
        self, store_id: uuid.UUID, asset_id: uuid.UUID, key: str, content_type: str, max_bytes: int, expires: int
    ) -> UploadTarget:
        sig = signing.upload_signature(self.secret_key, store_id, asset_id, max_bytes, expires)
        url = f"/api/v1/media/uploads/{asset_id}/content?store={store_id}&limit={max_bytes}&expires={expires}&sig={sig}"
        return UploadTarget("PUT", url, expires, headers={"content-type": content_type})

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def read_url(self, key: str, expires_in: int) -> str | None:
        return None


@dataclass(frozen=True)
class S3Location:
    bucket: str
    endpoint_url: str | None
    region: str
    access_key: str | None
    secret_key: str | None


def parse_s3_url(raw: str) -> S3Location:
    """``s3://KEY:SECRET@host:9000/bucket?region=eu-west-1&tls=0`` (an endpoint) or ``s3://bucket`` (AWS)."""
    parts = urlsplit(raw)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    path_bucket = parts.path.strip("/")
    if path_bucket:  # an endpoint with a bucket in the path
        scheme = "http" if query.get("tls") == "0" else "https"
        host = parts.hostname or ""
        endpoint = f"{scheme}://{host}" + (f":{parts.port}" if parts.port else "")
        bucket = path_bucket
    else:
        endpoint, bucket = None, parts.hostname or ""
    return S3Location(
        bucket=bucket,
        endpoint_url=endpoint,
        region=query.get("region", "us-east-1"),
        access_key=unquote(parts.username) if parts.username else None,
        secret_key=unquote(parts.password) if parts.password else None,
    )


class S3Storage:
    """S3-compatible object storage through boto3 (signing by botocore, never by hand). The browser uploads with
    a presigned POST whose policy caps the size; delivery redirects to a short presigned GET."""

    name = "s3"

    def __init__(self, location: S3Location, client: Any | None = None) -> None:
        self.location = location
        if client is None:
            import boto3  # type: ignore[import-untyped]
            from botocore.config import Config  # type: ignore[import-untyped]

            client = boto3.client(
                "s3",
                endpoint_url=location.endpoint_url,
                region_name=location.region,
                aws_access_key_id=location.access_key,
                aws_secret_access_key=location.secret_key,
                config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
            )
        self.client = client

    @property
    def bucket(self) -> str:
        return self.location.bucket

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.upload_file, str(path), self.bucket, _safe(key), ExtraArgs={"ContentType": content_type}
        )

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.put_object, Bucket=self.bucket, Key=_safe(key), Body=data, ContentType=content_type
        )

    async def fetch_to(self, key: str, path: Path) -> int:
        try:
            await asyncio.to_thread(self.client.download_file, self.bucket, _safe(key), str(path))
        except Exception as exc:  # botocore's ClientError 404
            raise FileNotFoundError(key) from exc
        return await asyncio.to_thread(lambda: path.stat().st_size)

    async def read_head(self, key: str, length: int) -> bytes:
        response = await asyncio.to_thread(
            self.client.get_object, Bucket=self.bucket, Key=_safe(key), Range=f"bytes=0-{length - 1}"
        )
        body: bytes = response["Body"].read()
        return body

    async def size(self, key: str) -> int | None:
        try:
            head = await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=_safe(key))
        except Exception:
            return None
        return int(head["ContentLength"])

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=_safe(key))

    async def delete_prefix(self, prefix: str) -> None:
        prefix = _safe(prefix.rstrip("/")) + "/"
        listed = await asyncio.to_thread(self.client.list_objects_v2, Bucket=self.bucket, Prefix=prefix)
        keys = [{"Key": o["Key"]} for o in listed.get("Contents", [])]
        if keys:
            await asyncio.to_thread(self.client.delete_objects, Bucket=self.bucket, Delete={"Objects": keys})

    def upload_target(
        self, store_id: uuid.UUID, asset_id: uuid.UUID, key: str, content_type: str, max_bytes: int, expires: int
    ) -> UploadTarget:
        import time

        post = self.client.generate_presigned_post(
            Bucket=self.bucket,
            Key=_safe(key),
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=max(1, expires - int(time.time())),
        )
        return UploadTarget("POST", post["url"], expires, fields=dict(post["fields"]))

    def local_path(self, key: str) -> Path | None:
        return None

    def read_url(self, key: str, expires_in: int) -> str | None:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": _safe(key)}, ExpiresIn=expires_in
        )
        return url


_cache: dict[tuple[str | None, Path], Storage] = {}


def storage_for(settings: Settings) -> Storage:
    """The configured backend (one per process and setting)."""
    cache_key = (settings.media_storage_url, settings.data_dir)
    found = _cache.get(cache_key)
    if found is None:
        if settings.media_storage_url:
            found = S3Storage(parse_s3_url(settings.media_storage_url))
        else:
            found = LocalStorage(settings.data_dir / "media", settings.secret_key)
        _cache[cache_key] = found
    return found
