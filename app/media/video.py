"""Video with ffmpeg (the Debian package): an MP4 (H.264/AAC) rendition per height, each also cut into an HLS
playlist, a master playlist over them, and a poster frame. Metadata (GPS "location" atoms included) is dropped."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from app.media.validation import VIDEO_MAX_SECONDS, MediaRefused

HEIGHTS = (360, 720)  # a rendition per height up to the source's own
SEGMENT_SECONDS = 2
FFMPEG_TIMEOUT = 600


@dataclass(frozen=True)
class VideoProbe:
    width: int
    height: int
    duration_ms: int
    has_audio: bool


@dataclass(frozen=True)
class VideoResult:
    probe: VideoProbe
    files: list[tuple[str, Path, str]]  # (relative name, file, content type)
    mp4: str  # relative name of the fallback MP4 (the largest rendition)
    master: str  # relative name of the HLS master playlist
    poster: str


async def _run(*args: str, limit: float = FFMPEG_TIMEOUT) -> bytes:
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"{args[0]} took longer than {limit:.0f} s") from None
    if proc.returncode != 0:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {last[0][:200]}")
    return out


def tools_present() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


async def probe(path: Path) -> VideoProbe:
    try:
        out = await _run(
            "ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format", str(path), limit=60
        )
    except RuntimeError:
        raise MediaRefused("The video is damaged or in a format we cannot read.") from None
    info = json.loads(out)
    video = next((s for s in info.get("streams", []) if s.get("codec_type") == "video"), None)
    if video is None:
        raise MediaRefused("The file has no video track.")
    duration = float(info.get("format", {}).get("duration") or video.get("duration") or 0)
    if duration <= 0:
        raise MediaRefused("The video has no length.")
    if duration > VIDEO_MAX_SECONDS:
        raise MediaRefused(f"The video is {duration:.0f} s long: the limit is {VIDEO_MAX_SECONDS} s.")
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    rotation = 0
    for side in video.get("side_data_list", []) or []:
        if "rotation" in side:
            rotation = int(side["rotation"])
    if abs(rotation) % 180 == 90:  # a phone's portrait video: ffmpeg turns it upright, so do the sizes
        width, height = height, width
    has_audio = any(s.get("codec_type") == "audio" for s in info.get("streams", []))
    return VideoProbe(width, height, round(duration * 1000), has_audio)


async def transcode(source: Path, out_dir: Path, tag: str) -> VideoResult:
    """Renditions under ``out_dir/v.<tag>/`` (``tag``: the source's content hash, so the names are immutable)."""
    info = await probe(source)
    base = f"v.{tag}"
    root = out_dir / base
    root.mkdir(parents=True, exist_ok=True)
    heights = [h for h in HEIGHTS if h <= info.height] or [min(HEIGHTS[0], info.height - info.height % 2)]
    files: list[tuple[str, Path, str]] = []
    variants: list[tuple[int, int, str]] = []
    for height in heights:
        mp4 = root / f"{height}p.mp4"
        audio = ["-c:a", "aac", "-b:a", "96k", "-ac", "2"] if info.has_audio else ["-an"]
        await _run(
            "ffmpeg", "-nostdin", "-y", "-v", "error", "-threads", "2", "-i", str(source),
            "-map", "0:v:0", *(["-map", "0:a:0"] if info.has_audio else []),
            "-map_metadata", "-1", "-map_chapters", "-1",
            "-vf", f"scale=-2:{height}", "-c:v", "libx264", "-preset", "veryfast", "-crf", "24",
            "-profile:v", "main", "-pix_fmt", "yuv420p",
            "-force_key_frames", f"expr:gte(t,n_forced*{SEGMENT_SECONDS})",
            *audio, "-movflags", "+faststart", str(mp4),
        )  # fmt: skip
        hls_dir = root / f"{height}p"
        hls_dir.mkdir(exist_ok=True)
        await _run(
            "ffmpeg", "-nostdin", "-y", "-v", "error", "-i", str(mp4), "-c", "copy", "-map_metadata", "-1",
            "-f", "hls", "-hls_time", str(SEGMENT_SECONDS), "-hls_playlist_type", "vod",
            "-hls_segment_filename", str(hls_dir / "s%03d.ts"), str(hls_dir / "index.m3u8"),
        )  # fmt: skip
        files.append((f"{base}/{height}p.mp4", mp4, "video/mp4"))
        for f in sorted(hls_dir.iterdir()):
            content_type = "application/vnd.apple.mpegurl" if f.suffix == ".m3u8" else "video/mp2t"
            files.append((f"{base}/{height}p/{f.name}", f, content_type))
        bandwidth = max(1, mp4.stat().st_size * 8 * 1000 // max(info.duration_ms, 1))
        width = round(info.width * height / info.height / 2) * 2
        variants.append((height, width, str(bandwidth)))
    master = root / "master.m3u8"
    lines = ["#EXTM3U", "#EXT-X-VERSION:3"]
    for h, w, rate in variants:
        lines += [f"#EXT-X-STREAM-INF:BANDWIDTH={rate},RESOLUTION={w}x{h}", f"{h}p/index.m3u8"]
    master.write_text("\n".join(lines) + "\n")
    files.append((f"{base}/master.m3u8", master, "application/vnd.apple.mpegurl"))
    poster = root / "poster.jpg"
    at = min(1.0, info.duration_ms / 2000)
    await _run(
        "ffmpeg", "-nostdin", "-y", "-v", "error", "-ss", f"{at:.2f}", "-i", str(source), "-frames:v", "1",
        "-map_metadata", "-1", "-vf", f"scale=-2:{min(720, info.height - info.height % 2)}", "-q:v", "4", str(poster),
    )  # fmt: skip
    files.append((f"{base}/poster.jpg", poster, "image/jpeg"))
    return VideoResult(info, files, f"{base}/{heights[-1]}p.mp4", f"{base}/master.m3u8", f"{base}/poster.jpg")
