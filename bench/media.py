"""Media processing speed: a 12 MP phone JPEG → thumb, card and full in WebP and JPEG (the worker's image job, on
one core), and a 10 s 1080p clip → HLS renditions + MP4 + poster (the video job, ffmpeg).

    .venv/bin/python bench/media.py [--runs 7] [--skip-video]

The photo is synthetic but photo-like (gradients, shapes, fine grain: noise alone is the worst case for both
encoders, flat colour the best), 4000 by 3000, with an EXIF orientation; the clip is ffmpeg's testsrc2 with a tone.
Prints the median and the spread; writes bench/results/media.json. Targets: image < 1 s median on one core (the
seed asks < 5 s), video < 10 min.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import ExifTags, Image, ImageDraw, ImageFilter  # noqa: E402

from app.media import images, video  # noqa: E402


def photo(path: Path, grain: float = 0.08) -> Path:
    w, h = 4000, 3000
    base = Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").resize((w, h)),
            Image.radial_gradient("L").resize((w, h)),
            Image.linear_gradient("L").rotate(90).resize((w, h)),
        ),
    )
    draw = ImageDraw.Draw(base)
    for i in range(60):
        x, y = (i * 397) % w, (i * 211) % h
        draw.ellipse((x, y, x + 300 + i * 7, y + 200 + i * 5), fill=((i * 40) % 256, (i * 90) % 256, (i * 150) % 256))
    noise = Image.effect_noise((w, h), 40).convert("RGB")
    im = Image.blend(base.filter(ImageFilter.GaussianBlur(2)), noise, grain)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    im.save(path, "JPEG", quality=90, exif=exif.tobytes())
    return path


def bench_image(runs: int, grain: float) -> dict[str, float | int]:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as one job gets
    with tempfile.TemporaryDirectory() as tmp:
        source = photo(Path(tmp) / "photo.jpg", grain)
        images.make_derivatives(source)  # warm-up (imports, codec tables)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            result = images.make_derivatives(source)
            times.append(time.perf_counter() - started)
        size = source.stat().st_size
    out_bytes = sum(len(d.data) for d in result.derivatives)
    return {
        "source_bytes": size,
        "derivatives": len(result.derivatives),
        "derivative_bytes": out_bytes,
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
        "runs": runs,
    }


def bench_video() -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-y", "-v", "error",
             "-f", "lavfi", "-i", "testsrc2=duration=10:size=1920x1080:rate=30",
             "-f", "lavfi", "-i", "sine=frequency=440:duration=10", "-c:v", "libx264", "-preset", "veryfast",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(clip)],
            check=True, timeout=600,
        )  # fmt: skip
        started = time.perf_counter()
        result = asyncio.run(video.transcode(clip, Path(tmp) / "out", "bench"))
        seconds = time.perf_counter() - started
        stored = sum(p.stat().st_size for _, p, _ in result.files)
        return {
            "source_bytes": clip.stat().st_size,
            "files": len(result.files),
            "stored_bytes": stored,
            "seconds": round(seconds, 2),
            "renditions": len([n for n, _, _ in result.files if n.endswith(".mp4")]),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--skip-video", action="store_true")
    args = parser.parse_args()
    results: dict[str, object] = {"cpus": os.cpu_count()}
    for label, grain in (("smooth", 0.08), ("grainy", 0.5)):  # a clean shot; a dim, noisy one (a larger file)
        image = bench_image(args.runs, grain)
        results[f"image_12mp_{label}"] = image
        print(
            f"12 MP JPEG, {label} ({image['source_bytes'] / 1e6:.1f} MB) → {image['derivatives']} derivatives "
            f"({image['derivative_bytes'] / 1e3:.0f} KB): median {image['median_s']:.3f} s on one core "
            f"(min {image['min_s']:.3f}, max {image['max_s']:.3f}, {image['runs']} runs; target < 1 s)"
        )
    if not args.skip_video:
        clip = bench_video()
        results["video_10s_1080p"] = clip
        print(
            f"10 s 1080p clip ({clip['source_bytes'] / 1e6:.1f} MB) → HLS ({clip['renditions']} renditions) + MP4 + "
            f"poster, {clip['files']} files ({clip['stored_bytes'] / 1e6:.1f} MB): {clip['seconds']:.1f} s "
            f"(ffmpeg pinned to the same one core; target < 10 min)"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "media.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
