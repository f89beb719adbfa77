"""Image derivatives: thumb, card and full, each in WebP and JPEG, upright (EXIF orientation applied) and with
no metadata at all (no GPS, camera or personal EXIF). Names carry their content's hash."""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from app.media.validation import MAX_PIXELS, MediaRefused, check_image

SIZES: dict[str, int] = {"thumb": 240, "card": 640, "full": 1600}  # longest side, never upscaled
FORMATS = (("webp", "image/webp"), ("jpg", "image/jpeg"))


@dataclass(frozen=True)
class Derivative:
    name: str  # thumb.webp, card.jpg, …
    filename: str  # card.3f2a9c1d0b7e4a55.jpg
    data: bytes
    width: int
    height: int
    content_type: str


@dataclass(frozen=True)
class ImageResult:
    width: int  # upright
    height: int
    derivatives: list[Derivative]


def _encode(im: Image.Image, ext: str) -> bytes:
    out = io.BytesIO()
    if ext == "webp":
        im.save(out, "WEBP", quality=80, method=4, exif=b"", xmp=b"")
    else:
        if im.mode != "RGB":
            flat = Image.new("RGB", im.size, (255, 255, 255))
            flat.paste(im, mask=im.getchannel("A") if "A" in im.getbands() else None)
            im = flat
        im.save(out, "JPEG", quality=82, progressive=True, exif=b"")
    return out.getvalue()


def _fit(size: tuple[int, int], longest: int) -> tuple[int, int]:
    w, h = size
    scale = min(1.0, longest / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def make_derivatives(path: Path) -> ImageResult:
    header = check_image(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as src:
                src.seek(0)  # a GIF: its first frame
                scale = SIZES["full"] / max(src.size)
                if src.format == "JPEG" and scale < 1:
                    # Decode at the smallest DCT scale (1/2, 1/4, 1/8) still at least as large as the biggest
                    # derivative: a 12 MP photo decodes as 3 MP, a quarter of the work for decoding and resizing.
                    src.draft("RGB", (math.ceil(src.width * scale), math.ceil(src.height * scale)))
                im = ImageOps.exif_transpose(src)
                im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaRefused("The image is damaged or not an image we can read.") from exc
    if im.width * im.height > MAX_PIXELS:
        raise MediaRefused("The image has too many pixels.")
    has_alpha = im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info)
    im = im.convert("RGBA" if has_alpha else "RGB")
    im.info = {}
    # Upright size of the original (the header's size turned by the orientation, not the draft's scale).
    upright = (
        (header.height, header.width)
        if (im.width > im.height) != (header.width > header.height)
        else (
            header.width,
            header.height,
        )
    )
    derivatives: list[Derivative] = []
    current = im
    for name in ("full", "card", "thumb"):  # each from the one before: less work than from the original
        target = _fit(current.size, SIZES[name])
        if target != current.size:
            current = current.resize(target, Image.Resampling.LANCZOS, reducing_gap=2.0)
        for ext, content_type in FORMATS:
            data = _encode(current, ext)
            digest = hashlib.sha256(data).hexdigest()[:16]
            derivatives.append(
                Derivative(f"{name}.{ext}", f"{name}.{digest}.{ext}", data, current.width, current.height, content_type)
            )
    return ImageResult(upright[0], upright[1], derivatives)
