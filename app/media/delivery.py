"""What pages show: signed URLs of an asset's derivatives, ``srcset`` strings, a product's pictures and videos."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.media import signing
from app.media.models import MediaAsset

IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Picture:
    """A ready photo: ``webp_srcset`` / ``jpeg_srcset`` with width descriptors, a fallback ``src``."""

    asset_id: uuid.UUID
    alt: str
    width: int
    height: int
    webp_srcset: str
    jpeg_srcset: str
    src: str
    thumb: str


@dataclass(frozen=True)
class Clip:
    asset_id: uuid.UUID
    alt: str
    hls: str
    mp4: str
    poster: str
    width: int
    height: int
    duration_ms: int


def base_url(secret_key: str, asset: MediaAsset, expires: int | None = None) -> str:
    token = signing.delivery_token(
        secret_key, asset.store_id, asset.id, signing.delivery_expiry() if expires is None else expires
    )
    return f"/media/{asset.store_id}/{asset.id}/{token}/"


def picture_of(secret_key: str, asset: MediaAsset) -> Picture | None:
    d = asset.derivatives
    if asset.kind != "image" or asset.status != "ready" or "card.jpg" not in d:
        return None
    base = base_url(secret_key, asset)

    def srcset(ext: str) -> str:
        return ", ".join(
            f"{base}{d[f'{n}.{ext}']['file']} {d[f'{n}.{ext}']['width']}w" for n in ("thumb", "card", "full")
        )

    card = d["card.jpg"]
    return Picture(
        asset.id,
        asset.alt_text,
        int(card["width"]),
        int(card["height"]),
        srcset("webp"),
        srcset("jpg"),
        base + card["file"],
        base + d["thumb.jpg"]["file"],
    )


def clip_of(secret_key: str, asset: MediaAsset) -> Clip | None:
    d = asset.derivatives
    if asset.kind != "video" or asset.status != "ready" or "mp4" not in d:
        return None
    base = base_url(secret_key, asset)
    return Clip(
        asset.id,
        asset.alt_text,
        base + d["hls"]["file"],
        base + d["mp4"]["file"],
        base + d["poster"]["file"],
        asset.width or 0,
        asset.height or 0,
        asset.duration_ms or 0,
    )


async def primary_pictures(
    session: AsyncSession, secret_key: str, product_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Picture]:
    """Each product's primary photo (the session is bound to the store)."""
    if not product_ids:
        return {}
    rows = await session.scalars(
        select(MediaAsset).where(
            MediaAsset.product_id.in_(list(product_ids)),
            MediaAsset.is_primary.is_(True),
            MediaAsset.status == "ready",
        )
    )
    found: dict[uuid.UUID, Picture] = {}
    for asset in rows:
        picture = picture_of(secret_key, asset)
        if picture is not None:
            found[asset.product_id] = picture
    return found


@dataclass(frozen=True)
class Gallery:
    pictures: list[Picture]  # the primary first, then by position
    clips: list[Clip]

    @property
    def primary(self) -> Picture | None:
        return self.pictures[0] if self.pictures else None


async def gallery(session: AsyncSession, secret_key: str, product_id: uuid.UUID) -> Gallery:
    rows = list(
        await session.scalars(
            select(MediaAsset)
            .where(MediaAsset.product_id == product_id, MediaAsset.status == "ready")
            .order_by(MediaAsset.is_primary.desc(), MediaAsset.position, MediaAsset.id)
        )
    )
    pictures = [p for a in rows if (p := picture_of(secret_key, a)) is not None]
    clips = [c for a in rows if (c := clip_of(secret_key, a)) is not None]
    return Gallery(pictures, clips)
