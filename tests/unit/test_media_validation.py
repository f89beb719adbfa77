"""Media: type sniffing from the bytes, the pixel limits and decompression-bomb guard, derivatives without GPS,
signed URLs (expiry, tampering), S3 presigned URLs made offline by botocore."""

from __future__ import annotations

import base64
import io
import json
import struct
import uuid
import zlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import ExifTags, Image

from app.media import signing
from app.media.images import make_derivatives
from app.media.storage import S3Storage, parse_s3_url
from app.media.validation import MediaRefused, check_bytes, check_declared, check_image, sniff


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` by ``height`` pixels (header only: nothing is ever decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def phone_photo(width: int = 400, height: int = 300) -> bytes:
    """A landscape-stored JPEG whose EXIF says "rotate 90° clockwise" (Orientation 6), with GPS and a camera."""
    im = Image.new("RGB", (width, height), (200, 30, 30))
    im.paste((30, 30, 200), (0, 0, width // 4, height))  # a blue band on the stored left: the top once upright
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (52.0, 31.0, 12.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (13.0, 24.0, 0.0),
    }
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00", "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00", "video/quicktime"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86", "video/webm"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00", "image/heic"),
        (b"<?php echo 'hi'; ?>", None),
        (b"%PDF-1.7\n", None),
        (b"", None),
    ],
)
def test_sniff_reads_the_bytes(head: bytes, expected: str | None) -> None:
    assert sniff(head) == expected


def test_a_file_named_like_a_photo_is_judged_by_its_bytes() -> None:
    with pytest.raises(MediaRefused, match="not a photo or video"):
        check_bytes(b"#!/bin/sh\nrm -rf /\n", 20, "image")
    with pytest.raises(MediaRefused, match="contents are a video"):
        check_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00", 100, "image")
    with pytest.raises(MediaRefused, match="HEIC"):
        check_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00", 100, "image")
    assert check_bytes(phone_photo()[:64], 1000, "image") == "image/jpeg"


def test_declared_type_and_size_are_checked_before_any_upload() -> None:
    assert check_declared("image/jpeg", 1000) == "image"
    assert check_declared("video/mp4", 1000) == "video"
    with pytest.raises(MediaRefused) as refused:
        check_declared("application/pdf", 1000)
    assert refused.value.fields == {"content_type": refused.value.reason}
    with pytest.raises(MediaRefused, match="too large"):
        check_declared("image/png", 26 * 1024 * 1024)
    with pytest.raises(MediaRefused, match="empty"):
        check_declared("image/png", 0)


def test_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(30_000, 30_000))  # 900 MP in 60 bytes: Pillow's own guard (an error past 2× limit)
    with pytest.raises(MediaRefused, match="decompression bomb"):
        check_image(bomb)
    big = tmp_path / "big.png"
    big.write_bytes(png_header(9_000, 6_000))  # 54 MP: under Pillow's limit, over ours
    with pytest.raises(MediaRefused, match="9000×6000 pixels"):
        check_image(big)
    with pytest.raises(MediaRefused, match=r"too many pixels|decompression"):
        make_derivatives(bomb)
    fine = tmp_path / "fine.png"
    fine.write_bytes(png_header(4_000, 3_000))
    assert check_image(fine).width == 4_000


def test_derivatives_are_upright_and_carry_no_gps_or_camera(tmp_path: Path) -> None:
    photo = tmp_path / "phone.jpg"
    photo.write_bytes(phone_photo(400, 300))
    result = make_derivatives(photo)
    assert (result.width, result.height) == (300, 400)  # turned upright
    names = {d.name for d in result.derivatives}
    assert names == {f"{n}.{e}" for n in ("thumb", "card", "full") for e in ("webp", "jpg")}
    for d in result.derivatives:
        assert d.filename.startswith(d.name.split(".")[0] + ".") and len(d.filename.split(".")[1]) == 16
        assert b"PhoneCo" not in d.data and b"GPS" not in d.data
        im = Image.open(io.BytesIO(d.data))
        assert not im.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert im.height > im.width  # portrait, as the phone was held
        top = im.convert("RGB").getpixel((im.width // 2, 2))
        assert isinstance(top, tuple) and top[2] > 150 and top[0] < 100  # the blue band is at the top
    thumb = next(d for d in result.derivatives if d.name == "thumb.jpg")
    assert max(thumb.width, thumb.height) <= 240


def test_delivery_token_expires_and_rejects_tampering() -> None:
    secret, store, asset = "s" * 40, uuid.uuid4(), uuid.uuid4()
    now = 1_800_000_000.0
    expires = signing.delivery_expiry(now)
    assert expires - now >= signing.DELIVERY_TTL and expires % signing.DELIVERY_WINDOW == 0
    token = signing.delivery_token(secret, store, asset, expires)
    assert signing.check_delivery_token(secret, store, asset, token, now=now)
    assert not signing.check_delivery_token(secret, store, asset, token, now=expires + 1)  # expired
    assert not signing.check_delivery_token(secret, uuid.uuid4(), asset, token, now=now)  # another store
    assert not signing.check_delivery_token(secret, store, uuid.uuid4(), token, now=now)  # another asset
    later = f"{expires + 86400}.{token.partition('.')[2]}"
    assert not signing.check_delivery_token(secret, store, asset, later, now=now)  # expiry pushed back
    assert not signing.check_delivery_token("t" * 40, store, asset, token, now=now)  # another key
    assert not signing.check_delivery_token(secret, store, asset, "garbage", now=now)


def test_upload_signature_binds_store_asset_size_and_expiry() -> None:
    secret, store, asset = "s" * 40, uuid.uuid4(), uuid.uuid4()
    sig = signing.upload_signature(secret, store, asset, 1000, 2_000_000_000)
    assert signing.check_upload_signature(secret, store, asset, 1000, 2_000_000_000, sig, now=1_900_000_000)
    assert not signing.check_upload_signature(secret, store, asset, 1000, 2_000_000_000, sig, now=2_000_000_001)
    assert not signing.check_upload_signature(secret, store, asset, 9999, 2_000_000_000, sig, now=1_900_000_000)
    assert not signing.check_upload_signature(secret, store, uuid.uuid4(), 1000, 2_000_000_000, sig, now=0)


def test_s3_backend_signs_offline_with_botocore() -> None:
    location = parse_s3_url("s3://AKIDEXAMPLE:wJalrXUtnFEMI%2FK7MDENG@127.0.0.1:9000/till-media?region=eu-west-1&tls=0")
    assert (location.bucket, location.endpoint_url, location.region) == (
        "till-media",
        "http://127.0.0.1:9000",
        "eu-west-1",
    )
    assert location.secret_key == "wJalrXUtnFEMI/K7MDENG"
    storage = S3Storage(location)  # no network: presigning is local
    url = storage.read_url("store/asset/card.abc.jpg", 300)
    assert url is not None
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.netloc == "127.0.0.1:9000" and parts.path == "/till-media/store/asset/card.abc.jpg"
    assert query["X-Amz-Expires"] == ["300"] and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/") and "/eu-west-1/s3/" in query["X-Amz-Credential"][0]
    assert len(query["X-Amz-Signature"][0]) == 64
    again = storage.read_url("store/asset/card.abc.jpg", 300)
    assert again is not None and parse_qs(urlsplit(again).query)["X-Amz-Credential"] == query["X-Amz-Credential"]
    target = storage.upload_target(uuid.uuid4(), uuid.uuid4(), "store/asset/original", "image/jpeg", 5000, 2**31)
    assert target.method == "POST" and target.url == "http://127.0.0.1:9000/till-media"
    assert target.fields["key"] == "store/asset/original" and target.fields["Content-Type"] == "image/jpeg"
    policy = json.loads(base64.b64decode(target.fields["policy"]))
    assert ["content-length-range", 1, 5000] in policy["conditions"]
    assert len(target.fields["x-amz-signature"]) == 64


def test_a_large_photo_is_decoded_at_a_reduced_scale_and_still_upright(tmp_path: Path) -> None:
    photo = tmp_path / "big.jpg"
    photo.write_bytes(phone_photo(3200, 2400))  # decoded at 1/2 scale (1600 by 1200), then turned
    result = make_derivatives(photo)
    assert (result.width, result.height) == (2400, 3200)  # the original's upright size, not the decoded one
    full = next(d for d in result.derivatives if d.name == "full.webp")
    assert (full.width, full.height) == (1200, 1600)
    top = Image.open(io.BytesIO(full.data)).convert("RGB").getpixel((600, 2))
    assert isinstance(top, tuple) and top[2] > 150 and top[0] < 100


async def test_s3_backend_calls_the_object_storage_api_as_botocore_expects() -> None:
    from botocore.response import StreamingBody  # type: ignore[import-untyped]
    from botocore.stub import Stubber  # type: ignore[import-untyped]

    storage = S3Storage(parse_s3_url("s3://AKIDEXAMPLE:secret@127.0.0.1:9000/till-media?tls=0"))
    with Stubber(storage.client) as stub:
        stub.add_response(
            "put_object",
            {},
            {"Bucket": "till-media", "Key": "s/a/card.1.webp", "Body": b"RIFF", "ContentType": "image/webp"},
        )
        stub.add_response("head_object", {"ContentLength": 1234}, {"Bucket": "till-media", "Key": "s/a/original"})
        stub.add_client_error("head_object", "404", http_status_code=404)
        stub.add_response(
            "get_object",
            {"Body": StreamingBody(io.BytesIO(b"\xff\xd8\xff\xe0"), 4)},
            {"Bucket": "till-media", "Key": "s/a/original", "Range": "bytes=0-3"},
        )
        stub.add_response(
            "list_objects_v2",
            {"Contents": [{"Key": "s/a/original"}, {"Key": "s/a/card.1.webp"}]},
            {"Bucket": "till-media", "Prefix": "s/a/"},
        )
        stub.add_response(
            "delete_objects",
            {},
            {"Bucket": "till-media", "Delete": {"Objects": [{"Key": "s/a/original"}, {"Key": "s/a/card.1.webp"}]}},
        )
        await storage.put_bytes("s/a/card.1.webp", b"RIFF", "image/webp")
        assert await storage.size("s/a/original") == 1234
        assert await storage.size("s/a/missing") is None
        assert await storage.read_head("s/a/original", 4) == b"\xff\xd8\xff\xe0"
        await storage.delete_prefix("s/a/")
        stub.assert_no_pending_responses()
    with pytest.raises(ValueError, match="bad media key"):
        await storage.put_bytes("s/../etc/passwd", b"", "text/plain")
