"""The photo pipeline on a 12-megapixel camera JPEG against a plain Pillow decode of the same file.

The photo: 4000×3000, skin tones with reddish patches (app.demo.photos.skin_photo) plus sensor-like
grain so that it compresses like a phone photo, saved at quality 92 with the EXIF a phone writes
(orientation 6, camera make, GPS position), so the pipeline has to turn it and strip the metadata.

- Time: app.photos.clean_photo(bytes, limits) (decode, orient, colour, resize to PHOTO_MAX_EDGE,
  re-encode, thumbnail) against Image.open(bytes) + load(), alternating, the median of 5 each.
- Memory: one upload in a fresh process (bench/photo_memory.py), for the pipeline and the decode.
- End to end: the real consultation form (development settings, CSRF on; rate limits off so the
  benchmark can post repeatedly) posted with six such photos by the test client; the figure is the
  time of the POST, reported against six plain decodes.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import random
import re
import subprocess
from pathlib import Path

from PIL import Image, ImageDraw

from bench.common import PYTHON, ROOT, Figure, NotRun, Workspace, median, not_run, ratio_figure, seconds
from bench.intake_form import check_stored, open_form, post_form

SIZE = (4000, 3000)
ROUNDS = 5
SUBMITS = 2
GOAL = "≤ 1.5"
PIPELINE = "Photo pipeline ÷ plain Pillow decode, 12 MP JPEG"
HEADLINE = PIPELINE
SUBMIT = "Submit with six 12 MP photos through the form, end to end"
ORIENTATION, MAKE, MODEL, GPS = 0x0112, 0x010F, 0x0110, 0x8825


def camera_photo(seed: int = 12) -> Image.Image:
    from app.demo.photos import skin_photo

    image = skin_photo(seed, SIZE)
    grain = Image.effect_noise(SIZE, 64).convert("RGB")
    return Image.blend(image, grain, 0.12)


def camera_jpeg(image: Image.Image, mark: int = 0) -> bytes:
    """A phone's JPEG of `image`; `mark` draws a small extra spot so that each file differs."""
    if mark:
        image = image.copy()
        rng = random.Random(mark)
        x, y = rng.randrange(200, SIZE[0] - 200), rng.randrange(200, SIZE[1] - 200)
        ImageDraw.Draw(image).ellipse((x, y, x + 60, y + 40), fill=(190, 80, 70))
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[MAKE], exif[MODEL] = "PhoneMaker", "Phone 12"
    exif[GPS] = {1: "N", 2: (54.0, 41.0, 12.5), 3: "E", 4: (25.0, 16.0, 45.0)}
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92, exif=exif.tobytes())
    return buffer.getvalue()


def plain_decode(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()


def _where_time_goes(action) -> str:
    """The three most expensive calls of one pipeline run (a hint for whoever tunes it)."""
    profile = cProfile.Profile()
    profile.runcall(action)
    stats = pstats.Stats(profile).stats
    total = sum(entry[2] for entry in stats.values()) or 1
    top = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:3]
    return ", ".join(f"{_readable(name)} {entry[2] / total:.0%}" for (_, _, name), entry in top)


def _readable(name: str) -> str:
    """ "<method 'resize' of 'ImagingCore' objects>" -> "ImagingCore.resize"."""
    method = re.match(r"<method '(\w+)' of '(\w+)' objects>", name)
    if method:
        return f"{method.group(2)}.{method.group(1)}"
    return re.sub(r"^<built-in method (\S+)>$", r"\1", name)


def _memory(mode: str, path: Path) -> dict:
    result = subprocess.run(
        [PYTHON, "-m", "bench.photo_memory", mode, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _pipeline_figures(data: bytes, path: Path) -> tuple[list[Figure], float]:
    import config
    from app.photos import PhotoLimits, clean_photo

    limits = PhotoLimits.from_config(config.load("development"))
    clean_photo(data, limits), plain_decode(data)  # warm-up
    pipeline, decode = [], []
    for _ in range(ROUNDS):
        pipeline.append(seconds(lambda: clean_photo(data, limits)))
        decode.append(seconds(lambda: plain_decode(data)))
    hint = _where_time_goes(lambda: clean_photo(data, limits))
    detail = (
        f"{median(pipeline) * 1000:.0f} ms vs {median(decode) * 1000:.0f} ms (median of {ROUNDS}); "
        f"{len(data) / 1e6:.1f} MB file; most time in: {hint}"
    )
    ratio = ratio_figure(
        "Photo pipeline ÷ plain Pillow decode, 12 MP JPEG", median(pipeline), median(decode), GOAL, detail
    )
    used, decoded = _memory("pipeline", path), _memory("decode", path)
    pixels = SIZE[0] * SIZE[1] * 3 / 2**20
    memory = Figure(
        "Peak memory for one 12 MP upload (pipeline)",
        f"{used['rss_growth_kib'] / 1024:.0f} MiB",
        detail=f"rise of peak RSS in a fresh process; a plain decode: {decoded['rss_growth_kib'] / 1024:.0f} MiB "
        f"(the RGB pixels alone are {pixels:.0f} MiB); tracemalloc peak {used['traced_peak_bytes'] / 2**20:.0f} MiB "
        "(Python objects only)",
    )
    return [ratio, memory], median(decode)


def _six_photo_submit(root: Path, image: Image.Image, decode_seconds: float) -> Figure:
    workspace = Workspace(root, "photos")
    workspace.create_schema()
    client = workspace.app(RATELIMIT_ENABLED=False).test_client()
    photos = [(f"IMG_{1000 + n}.jpg", camera_jpeg(image, mark=n + 1)) for n in range(6)]
    times = []
    for _ in range(SUBMITS):
        hidden = open_form(client)
        response = None

        def post(hidden=hidden):
            nonlocal response
            response = post_form(client, hidden, photos)

        times.append(seconds(post))
        check_stored(response)
    took = median(times)
    posted = sum(len(content) for _, content in photos)
    return Figure(
        SUBMIT,
        f"{took:.1f} s",
        detail=f"= {took / (6 * decode_seconds):.1f} × six plain decodes; {posted / 1e6:.0f} MB posted; "
        f"median of {SUBMITS} POSTs (test client, SQLite file, photos written to disk)",
    )


def run(root: Path) -> list[Figure]:
    try:
        import app.photos  # noqa: F401
    except ImportError:
        reason = "app/photos.py is not there yet"
        return [not_run(PIPELINE, GOAL, reason)]
    image = camera_photo()
    data = camera_jpeg(image)
    path = root / "camera-12mp.jpg"
    path.write_bytes(data)
    figures, decode_seconds = _pipeline_figures(data, path)
    try:
        figures.append(_six_photo_submit(root, image, decode_seconds))
    except NotRun as reason:
        figures.append(not_run(SUBMIT, "reported", str(reason)))
    return figures
