"""e2e: a manager uploads a phone photo (stored sideways with EXIF Orientation 6, with GPS) and a short video on the
staff product page; the storefront shows the photo upright with srcset and the video plays; no stored file carries
the GPS."""

from __future__ import annotations

import base64
import io
import subprocess
import time
from pathlib import Path

from PIL import ExifTags, Image
from playwright.sync_api import Page, expect

from app.seed import DEMO_ACCOUNTS
from tests.e2e.conftest import LIVE_ENV, screenshot, sign_in

PRODUCT = "Kreuzberg House Espresso"


def phone_photo(path: Path) -> Path:
    """A 1600 by 1200 JPEG stored landscape whose EXIF says "rotate 90° clockwise", with GPS and a camera make."""
    im = Image.new("RGB", (1600, 1200), (180, 60, 40))
    im.paste((40, 60, 180), (0, 0, 400, 1200))  # the stored left edge: the top once upright
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (52.0, 29.0, 58.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (13.0, 25.0, 24.0),
    }
    im.save(path, "JPEG", quality=88, exif=exif.tobytes())
    return path


def short_clip(path: Path) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=3:size=640x360:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-c:v", "libx264", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-shortest", "-metadata", "location=+52.4994+013.4233/", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path


def test_manager_uploads_a_phone_photo_and_a_video_that_the_shop_shows(
    tablet: Page, phone: Page, tmp_path: Path
) -> None:
    photo = phone_photo(tmp_path / "IMG_2041.jpg")
    clip = short_clip(tmp_path / "pour-over.mp4")
    sign_in(tablet, DEMO_ACCOUNTS[1].email)  # the manager
    tablet.goto("/staff/products")
    tablet.get_by_role("link", name=PRODUCT).click()
    expect(tablet.locator("#media-drop")).to_be_visible()
    tablet.set_input_files("#media-files", [str(photo), str(clip)])
    uploads = tablet.get_by_test_id("upload")
    expect(uploads).to_have_count(2)
    expect(uploads.nth(0)).to_contain_text("Uploaded: processing.", timeout=20_000)
    expect(uploads.nth(1)).to_contain_text("Uploaded: processing.", timeout=20_000)
    items = tablet.get_by_test_id("media-item")
    expect(items).to_have_count(2, timeout=20_000)
    # The section refreshes itself every 2 s while a worker has files: both become Ready.
    expect(items.nth(0).get_by_test_id("media-status")).to_have_text("Ready", timeout=60_000)
    expect(items.nth(1).get_by_test_id("media-status")).to_have_text("Ready", timeout=60_000)
    expect(items.nth(0).get_by_test_id("media-primary")).to_have_text("Main photo")
    items.nth(0).get_by_label("Description for screen readers (alt text)").fill("A bag of espresso beans")
    items.nth(0).get_by_role("button", name="Save text").click()
    expect(
        tablet.get_by_test_id("media-item").nth(0).get_by_label("Description for screen readers (alt text)")
    ).to_have_value("A bag of espresso beans")
    # A photo dropped on the box uploads too; Move up and dragging reorder the list.
    png = io.BytesIO()
    Image.new("RGB", (300, 200), (20, 160, 90)).save(png, "PNG")
    drop = tablet.evaluate_handle(
        """b64 => { const dt = new DataTransfer();
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        dt.items.add(new File([bytes], 'dropped.png', { type: 'image/png' })); return dt; }""",
        base64.b64encode(png.getvalue()).decode(),
    )
    tablet.dispatch_event("#media-drop", "drop", {"dataTransfer": drop})
    expect(tablet.get_by_test_id("upload").nth(2)).to_contain_text("Uploaded: processing.", timeout=20_000)
    expect(items).to_have_count(3, timeout=20_000)
    expect(items.nth(2).get_by_test_id("media-status")).to_have_text("Ready", timeout=60_000)
    expect(items.nth(2)).to_contain_text("dropped.png")
    items.nth(2).get_by_role("button", name="Move up").click()
    expect(items.nth(1)).to_contain_text("dropped.png")
    # Dragging (synthetic drag events: Playwright's mouse drag starts no HTML5 drag in headless Chromium here).
    dt = tablet.evaluate_handle("() => new DataTransfer()")
    top = items.nth(0).bounding_box()
    assert top is not None
    items.nth(1).dispatch_event("dragstart", {"dataTransfer": dt})
    items.nth(0).dispatch_event("dragover", {"dataTransfer": dt, "clientY": top["y"] + 2})
    items.nth(0).dispatch_event("dragend", {"dataTransfer": dt})
    expect(items.nth(0)).to_contain_text("dropped.png")
    tablet.reload()
    expect(tablet.get_by_test_id("media-item").nth(0)).to_contain_text("dropped.png")  # the order was saved
    items.nth(0).get_by_role("button", name="Delete").click()
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text("IMG_2041.jpg")
    # A file that is not a photo says why, next to its name.
    fake = tmp_path / "notes.jpg"
    fake.write_text("these are my notes, not a photo\n" * 5)
    tablet.set_input_files("#media-files", [str(fake)])
    expect(tablet.get_by_test_id("upload").last).to_contain_text("not a photo or video we can read")
    expect(tablet.get_by_test_id("media-usage")).to_contain_text("2 of 500 files")
    screenshot(tablet, "media-staff-product-tablet")

    slug = tablet.get_by_label("Address (slug)").input_value()
    phone.goto(f"/s/demo/p/{slug}")
    picture = phone.get_by_test_id("product-picture")
    expect(picture).to_have_attribute("alt", "A bag of espresso beans")
    assert "w, " in (picture.get_attribute("srcset") or "")
    phone.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle(), timeout=10_000)
    size = picture.evaluate("img => [img.naturalWidth, img.naturalHeight, img.currentSrc]")
    assert size[1] > size[0], f"the photo is not upright: {size}"  # portrait, as the phone was held
    assert "/media/" in size[2]
    top = phone.evaluate(
        """img => {
          const c = document.createElement('canvas');
          c.width = img.naturalWidth;
          c.height = img.naturalHeight;
          const g = c.getContext('2d');
          g.drawImage(img, 0, 0);
          return Array.from(g.getImageData(c.width / 2, 2, 1, 1).data);
        }""",
        picture.element_handle(),
    )
    assert top[2] > 150 and top[0] < 100, f"the blue band should be at the top: {top}"
    video = phone.get_by_test_id("product-video")
    expect(video).to_be_visible()
    video.evaluate("v => v.play()")
    phone.wait_for_function("v => v.currentTime > 0.3 && v.readyState >= 2", arg=video.element_handle(), timeout=20_000)
    playing = video.evaluate("v => [v.currentSrc, v.error ? v.error.code : 0, v.videoWidth]")
    assert playing[1] == 0 and playing[2] > 0, playing
    assert playing[0].endswith(".m3u8"), playing  # Debian's Chromium 156 plays the HLS playlist natively
    # The MP4 rendition (for browsers that cannot play HLS) plays too.
    mp4 = video.locator('source[type="video/mp4"]').get_attribute("src")
    phone.evaluate(
        """src => { const v = document.createElement('video'); v.id = 'mp4-check'; v.muted = true; v.src = src;
        document.body.append(v); return v.play(); }""",
        mp4,
    )
    phone.wait_for_function("() => document.getElementById('mp4-check').currentTime > 0.3", timeout=20_000)
    phone.evaluate("() => document.getElementById('mp4-check').remove()")
    video.evaluate("v => { v.pause(); v.currentTime = 1; }")
    screenshot(phone, "media-storefront-product-phone")
    phone.goto("/s/demo")
    card = phone.locator(".product-card", has_text=PRODUCT).locator("img")
    expect(card).to_have_attribute("loading", "lazy")
    assert "w, " in (card.get_attribute("srcset") or "")
    card.scroll_into_view_if_needed()
    phone.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=card.element_handle(), timeout=10_000)
    screenshot(phone, "media-storefront-grid-phone")

    # No stored file carries the GPS (or the camera): the originals are gone, the derivatives have no metadata.
    root = Path(LIVE_ENV["TILL_DATA_DIR"]) / "media"
    deadline = time.monotonic() + 10
    while any(p.name == "original" for p in root.rglob("original")) and time.monotonic() < deadline:
        time.sleep(0.2)
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files and not any(p.name == "original" for p in files)
    for p in files:
        data = p.read_bytes()
        assert b"PhoneCo" not in data and b"+52.4994" not in data, p
        if p.suffix in (".jpg", ".webp"):
            assert not Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo), p
