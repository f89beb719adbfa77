"""What a file is (sniffed from its bytes, never its name) and whether we take it."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from app.core.errors import ValidationFailed

IMAGE_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif"}
VIDEO_TYPES = {"video/mp4", "video/quicktime", "video/webm"}
IMAGE_MAX_BYTES = 25 * 1024 * 1024
VIDEO_MAX_BYTES = 200 * 1024 * 1024
MAX_PIXELS = 50_000_000  # 50 MP: a phone's 48 MP photo passes, a decompression bomb does not
MAX_SIDE = 12_000
VIDEO_MAX_SECONDS = 120
SNIFF_BYTES = 64


class MediaRefused(ValidationFailed):
    """A file we will not take; ``reason`` is one sentence a manager can act on (422 problem+json on the API,
    shown next to the file on the staff page)."""

    code = "media_refused"

    def __init__(self, reason: str, field: str = "file") -> None:
        super().__init__(reason, fields={field: reason})
        self.reason = reason
        self.field = field


class QuotaExceeded(MediaRefused):
    title = "Media quota exceeded"
    code = "media_quota_exceeded"


def sniff(head: bytes) -> str | None:
    """The media type the first bytes say, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"hevc", b"avif"):
            return "image/heic"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    return None


def kind_of(content_type: str) -> str | None:
    if content_type in IMAGE_TYPES:
        return "image"
    if content_type in VIDEO_TYPES:
        return "video"
    return None


def max_bytes_for(kind: str) -> int:
    return IMAGE_MAX_BYTES if kind == "image" else VIDEO_MAX_BYTES


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MB"


def check_declared(content_type: str, size: int) -> str:
    """At negotiation: the type the client says and the size it will send; the kind (image/video)."""
    kind = kind_of(content_type)
    if kind is None:
        raise MediaRefused("Upload a JPEG, PNG, WebP or GIF photo, or an MP4, MOV or WebM video.", field="content_type")
    if size < 1:
        raise MediaRefused("The file is empty.", field="bytes")
    if size > max_bytes_for(kind):
        raise MediaRefused(f"The file is too large: {kind}s may be up to {_mb(max_bytes_for(kind))}.", field="bytes")
    return kind


def check_bytes(head: bytes, size: int, expected_kind: str) -> str:
    """At upload and in the job: what the bytes are; their media type."""
    found = sniff(head)
    if found == "image/heic":
        raise MediaRefused("HEIC/AVIF photos are not supported yet: export the photo as JPEG and upload that.")
    if found is None:
        raise MediaRefused("This file is not a photo or video we can read (JPEG, PNG, WebP, GIF, MP4, MOV, WebM).")
    kind = kind_of(found)
    if kind != expected_kind:
        raise MediaRefused(f"The file's contents are a {kind}, but it was announced as a {expected_kind}.")
    if size > max_bytes_for(kind):
        raise MediaRefused(f"The file is too large: {kind}s may be up to {_mb(max_bytes_for(kind))}.")
    return found


@dataclass(frozen=True)
class ImageHeader:
    width: int
    height: int
    format: str


def check_image(path: Path) -> ImageHeader:
    """Read only the header: refuse what would decode to too many pixels (Pillow's decompression-bomb guard as an
    error, and our own lower limit) before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height, fmt = im.width, im.height, im.format or ""
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaRefused(
            f"The image has too many pixels (a decompression bomb?): the limit is {MAX_PIXELS // 1_000_000} MP."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise MediaRefused("The image is damaged or not an image we can read.") from None
    if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
        raise MediaRefused(
            f"The image is {width}×{height} pixels: the limit is {MAX_PIXELS // 1_000_000} MP "
            f"and {MAX_SIDE} pixels a side."
        )
    return ImageHeader(width, height, fmt)
