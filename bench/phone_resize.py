"""Bytes posted per 12 MP photo when the phone sizes it first, against the photo's own size.

The app (development settings, CSRF on) runs on loopback in this process; Debian's Chromium, driven
by Playwright with a 390 × 844 phone screen, opens the consultation form, fills it in, puts three
12 MP camera JPEGs (bench/photos.py: 4000×3000, skin tones, grain, EXIF orientation 6, quality 92,
several MB each) into the first area's far, medium and close-up slots, waits until static/js/
photo-prep.js has checked and resized each one, and presses "Send". The POST is intercepted with
Playwright's request routing and its multipart body parsed: the figure is the bytes of each photo
part divided by the size of the file chosen, averaged over the three photos. The request must be
stored (the confirmation page) for the figure to count.
"""

from __future__ import annotations

import statistics
import threading
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

from bench.common import Figure, NotRun, Workspace, not_run

HEADLINE = "Bytes posted per 12 MP photo, resized on the phone ÷ original"
GOAL = "≤ 0.3"
CHROMIUM = Path("/usr/bin/chromium")
VIEWS = ("far", "medium", "close")


def _photos(folder: Path) -> list[Path]:
    from bench.photos import camera_jpeg, camera_photo

    paths = []
    for number in range(1, len(VIEWS) + 1):
        path = folder / f"IMG_50{number:02d}.jpg"
        path.write_bytes(camera_jpeg(camera_photo(seed=12 + number), mark=number))
        paths.append(path)
    return paths


def _serve(workspace: Workspace):
    from werkzeug.serving import make_server

    workspace.create_schema()
    app = workspace.app(RATELIMIT_ENABLED=False)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.server_port}"


def _fill_in(page) -> None:
    page.fill("#full_name", "Ona Petraitienė")
    page.fill("#email", "ona@example.com")
    page.fill("#date_of_birth", "1986-04-12")
    page.check('input[name="sex"][value="female"]')
    page.check('input[name="body_sites"][value="hands"]')
    page.check('input[name="duration"][value="months"]')
    page.fill("#description", "Small yellow pustules on both palms that come back every few weeks.")
    page.check('input[name="red_flags"][value="none"]')
    page.check("#consent_health_data")
    page.check("#consent_terms")
    page.select_option("#area-1-site", "hands")


def _part_sizes(body: bytes, content_type: str) -> dict[str, int]:
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    return {
        part.get_param("name", header="content-disposition"): len(part.get_payload(decode=True))
        for part in message.iter_parts()
        if part.get_filename()
    }


def _send(url: str, photos: list[Path]) -> tuple[dict[str, int], str]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
            page.goto(f"{url}/consultation/new")
            _fill_in(page)
            for view, path in zip(VIEWS, photos, strict=True):
                page.set_input_files(f"#photo-1-{view}", str(path))
            for view in VIEWS:  # checked and resized: the slot shows its preview
                page.locator(f'[data-photo-slot="photo-1-{view}"] .slot-preview img').wait_for(timeout=60_000)
            bodies = []

            def keep(route) -> None:
                bodies.append((route.request.post_data_buffer or b"", route.request.headers["content-type"]))
                route.continue_()

            page.route("**/consultation/new", keep)
            page.click("#send-button")
            page.wait_for_url("**/consultation/received", timeout=120_000)
        finally:
            browser.close()
    body, content_type = bodies[0]
    return _part_sizes(body, content_type), content_type


def run(root: Path) -> list[Figure]:
    if not CHROMIUM.exists():
        return [not_run(HEADLINE, GOAL, f"{CHROMIUM} is not installed")]
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        raise NotRun("Playwright is not installed") from error
    workspace = Workspace(root, "phone")
    photos = _photos(workspace.path)
    server, thread, url = _serve(workspace)
    try:
        sizes, _ = _send(url, photos)
    finally:
        server.shutdown()
        thread.join(timeout=10)
    originals = {f"photo-1-{view}": path.stat().st_size for view, path in zip(VIEWS, photos, strict=True)}
    if set(sizes) != set(originals):
        raise RuntimeError(f"the form posted {sorted(sizes)}, not the three slots")
    ratios = [sizes[name] / originals[name] for name in originals]
    value = statistics.mean(ratios)
    bound = float(GOAL.split()[-1])
    detail = (
        "posted "
        + ", ".join(f"{sizes[name] / 1e6:.2f} MB of {originals[name] / 1e6:.1f} MB" for name in originals)
        + f" (each under 1.2 MB: {'yes' if max(sizes.values()) < 1.2 * 1024 * 1024 else 'NO'}); "
        "Chromium on a 390 px screen, resized to PHOTO_MAX_EDGE and re-encoded as JPEG by static/js/photo-prep.js"
    )
    return [Figure(HEADLINE, f"{value:.2f}", GOAL, value <= bound, detail)]
