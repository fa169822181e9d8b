"""Hostile uploads under load (security finding F1): 8 concurrent submits of six worst-case images each.

F1's goal: 8 concurrent POSTs of 6 worst-case files each keep every gunicorn worker under 400 MB and
each answer under 15 s, on 2 cores; every answer a success or a clear refusal (a 4xx with a
message), never a 5xx.

The worst cases are the costliest files the pipeline (app/photos.py) still accepts and decodes, made
with Pillow and small on disk as an attacker's are; together they stay within MAX_PIXELS_PER_REQUEST,
as app.photos.decode_cost counts it (checked here before anything is posted):

- a 16-bit greyscale PNG of 25 MP (FULL_DECODE_MAX_PIXELS) with EXIF orientation 6 and a noisy band;
- a HEIC of 25 MP with alpha (decoded in full by libheif, then copied into Pillow);
- a progressive greyscale JPEG of 25 MP in MAX_JPEG_SCANS scans (32; each scan is a pass over the
  full-size coefficients, which libjpeg keeps for a JPEG in several scans, so no draft saves them);
- a noisy RGBA PNG of 12 MP;
- a lossless RGBA WebP of 3 MP (Pillow's WebP decoder holds four copies of it: 12 MP counted);
- a noisy 60 MP baseline JPEG (MAX_IMAGE_PIXELS; decoded at 1/4 scale, but all of its data is read).

Before them, the attack itself: 8 concurrent POSTs of six copies of F1's 7745x7745 RGBA PNG
(60 MP, a few hundred KiB), which must be refused from their headers, quickly.

The server is the one bench/uploads.py measures, started the same way (`burst_on_gunicorn`: the
shipped gunicorn.conf.py, behind the shipped nginx site when nginx is installed, rate limits off so
that one machine may post 8 forms at once); each POST's time and status, and every worker's peak
resident memory (VmHWM since it started) after each burst, are reported.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

from PIL import Image, ImageDraw

from app.photos import MAX_JPEG_SCANS as SCANS
from bench.common import Figure, Workspace
from bench.uploads import CLIENTS, PHOTOS, Bursts, Patient, burst_on_gunicorn

LIMIT_MIB = 400
LIMIT_SECONDS = 15
GOAL = f"≤ {LIMIT_MIB} MiB"
NAME = f"Peak memory of the busiest gunicorn worker, {CLIENTS} concurrent submits of six worst-case accepted images"
HEADLINE = NAME
SLOWEST = f"Slowest of {CLIENTS} concurrent submits of six worst-case accepted images (F1)"
ATTACK = f"Slowest of {CLIENTS} concurrent submits of six of F1's 7745×7745 RGBA PNGs (refused)"
# A refusal shows the file's name and the reason next to the photo field.
REFUSAL = re.compile(r"“[^”]+”: [^<]{10,}")


def _drawn(mode: str, size: tuple[int, int], colour, spot) -> Image.Image:
    image = Image.new(mode, size, colour)
    width, height = size
    ImageDraw.Draw(image).ellipse((width // 4, height // 4, width // 2, height // 2), fill=spot)
    return image


def _noisy(image: Image.Image, share: float) -> Image.Image:
    """`image` with a band of grain across `share` of its height (noise does not compress)."""
    band = (image.width, max(1, int(image.height * share)))
    grain = Image.effect_noise(band, 60)
    if image.mode == "I;16":
        grain = grain.point(lambda value: value * 256, "I").convert("I;16")
    else:
        grain = grain.convert(image.mode)
    image.paste(grain, (0, image.height // 2))
    return image


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    image.close()
    return buffer.getvalue()


def jpeg_with_scans(progressive: bytes, scans: int) -> bytes:
    """A progressive JPEG with its last scan repeated until it has `scans` scans: legal to libjpeg
    (a warning), and each scan one more pass over every coefficient of the full canvas."""
    at, found = 2, []
    while progressive[at + 1] != 0xD9:  # every segment up to EOI, the tables between scans included
        end = at + 2 + int.from_bytes(progressive[at + 2 : at + 4], "big")
        if progressive[at + 1] == 0xDA:
            following = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]").search(progressive, end)
            assert following is not None
            end = following.start()
            found.append(progressive[at:end])
        at = end
    return progressive[:at] + found[-1] * (scans - len(found)) + b"\xff\xd9"


def _alpha_heic() -> tuple[str, bytes]:
    try:
        return "alpha.heic", _encoded(
            _drawn("RGBA", (5000, 5000), (200, 120, 110, 128), (140, 60, 50, 255)), "HEIF", quality=50
        )
    except (OSError, KeyError, ValueError):  # pillow-heif without an encoder: the same canvas as PNG
        return "alpha-instead-of-heic.png", _encoded(
            _drawn("RGBA", (5000, 5000), (200, 120, 110, 128), (140, 60, 50, 255)), "PNG"
        )


def worst_case_images() -> list[tuple[str, bytes]]:
    """The six files, each accepted by the pipeline, together within the post's pixel budget."""
    import app.photos  # noqa: F401  (registers the HEIC opener and saver)

    exif = Image.Exif()
    exif[0x0112] = 6
    grey16 = _noisy(_drawn("I;16", (5000, 5000), 40_000, 12_000), 0.15)
    progressive = _encoded(_noisy(_drawn("L", (5000, 5000), 160, 90), 0.02), "JPEG", quality=90, progressive=True)
    noisy_alpha = _noisy(_drawn("RGBA", (3500, 3500), (200, 120, 110, 128), (140, 60, 50, 255)), 0.2)
    return [
        ("grey16-exif.png", _encoded(grey16, "PNG", exif=exif.tobytes())),
        _alpha_heic(),
        (f"progressive-{SCANS}-scans.jpg", jpeg_with_scans(progressive, SCANS)),
        ("noisy-alpha.png", _encoded(noisy_alpha, "PNG")),
        (
            "alpha.webp",
            _encoded(_drawn("RGBA", (1750, 1750), (200, 120, 110, 128), (140, 60, 50, 255)), "WEBP", lossless=True),
        ),
        (
            "noisy-60mp.jpg",
            _encoded(_noisy(_drawn("RGB", (8000, 7500), (200, 120, 110), (140, 60, 50)), 0.3), "JPEG", quality=85),
        ),
    ]


def attack_images() -> list[tuple[str, bytes]]:
    """F1's file: 7745x7745 RGBA (just under MAX_IMAGE_PIXELS), small on disk."""
    png = _encoded(_drawn("RGBA", (7745, 7745), (200, 120, 110, 128), (180, 60, 50, 255)), "PNG")
    return [(f"attack-{n}.png", png) for n in range(1, PHOTOS + 1)]


def _budget(images: list[tuple[str, bytes]]) -> tuple[list[tuple[str, float]], int]:
    """Each file's decode cost (MP, as the app counts it) and the post's budget: all must be accepted."""
    import config
    from app.photos import PhotoLimits, decode_cost

    limits = PhotoLimits.from_config(config.load("development"))
    costs = [(name, decode_cost(content, limits) / 1e6) for name, content in images]
    total = sum(cost for _, cost in costs)
    if total * 1e6 > limits.max_request_pixels:
        raise RuntimeError(f"the worst-case mix ({total:.1f} MP) is over MAX_PIXELS_PER_REQUEST")
    return costs, limits.max_request_pixels


def _answers(patients: list[Patient]) -> tuple[list[str], list[str]]:
    """Each answer as "time s status", and what was wrong with any (neither a success nor a clear 4xx)."""
    shown, wrong = [], []
    for patient in sorted(patients, key=lambda p: p.seconds or 0):
        status = patient.status
        shown.append(f"{patient.seconds:.1f} s {status}" if patient.seconds is not None else "no answer")
        if status in (302, 303) and patient.error is None:
            continue
        if status is not None and 400 <= status < 500 and REFUSAL.search(patient.text):
            continue
        wrong.append(patient.error or f"answered {status}")
    return shown, wrong


def _peaks(found: Bursts, burst: int) -> str:
    peaks = found.peaks[burst]
    return ", ".join(
        f"{peaks[pid] / 1024:.0f} (at start {found.baseline.get(pid, 0) / 1024:.0f})" for pid in sorted(peaks)
    )


def run(root: Path) -> list[Figure]:
    hostile, attack = worst_case_images(), attack_images()
    costs, budget = _budget(hostile)
    found = burst_on_gunicorn(Workspace(root, "hostile_uploads"), attack, hostile)
    attack_answers, attack_wrong = _answers(found.patients[0])
    answers, wrong = _answers(found.patients[1])
    refused = [p for p in found.patients[0] if p.status is not None and 400 <= p.status < 500]
    accepted = [p for p in found.patients[1] if p.status in (302, 303) and p.error is None]
    times = [p.seconds for p in found.patients[1] if p.seconds is not None]
    attack_times = [p.seconds for p in found.patients[0] if p.seconds is not None]
    busiest = max(found.peaks[1].values()) / 1024
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mix = ", ".join(
        f"{name} {len(content) / 1024:.0f} KiB ({cost:.1f} MP)"
        for (name, content), (_, cost) in zip(hostile, costs, strict=True)
    )
    detail = (
        f"{CLIENTS} POSTs, {found.route}, {cores} cores usable, load average before "
        f"{' / '.join(f'{load:.1f}' for load in os.getloadavg())}; the six files (decode cost as the app "
        f"counts it, {sum(c for _, c in costs):.1f} of {budget / 1e6:.0f} MP): {mix}; "
        f"answers: {', '.join(answers)} ({len(accepted)} accepted); the server used {found.cpu[1]:.1f} CPU-seconds "
        f"for the burst ({found.cpu[1] / cores:.1f} s on {cores} idle cores); "
        f"peak RSS per worker (MiB): {_peaks(found, 1)}"
    )
    if found.replaced:
        detail += f"; {len(found.replaced)} worker(s) were replaced during the bursts"
    if wrong:
        detail += f"; {len(wrong)} neither accepted nor clearly refused: {wrong[0]}"
    attack_detail = (
        f"{len(attack[0][1]) / 1024:.0f} KiB each; answers: {', '.join(attack_answers)} "
        f"({len(refused)} of {CLIENTS} refused with a message per file), {found.cpu[0]:.1f} CPU-seconds in all; "
        f"peak RSS per worker after this burst (MiB): {_peaks(found, 0)}"
    )
    if attack_wrong:
        attack_detail += f"; not refused: {attack_wrong[0]}"
    slowest = max(times) if times else None
    return [
        Figure(NAME, f"{busiest:.0f} MiB", GOAL, busiest < LIMIT_MIB and not wrong and not found.replaced, detail),
        Figure(
            SLOWEST,
            f"{slowest:.1f} s" if slowest is not None else "none finished",
            f"< {LIMIT_SECONDS} s, no 5xx",
            slowest is not None and slowest < LIMIT_SECONDS and len(times) == CLIENTS and not wrong,
            "every answer's time and status are in the row above",
        ),
        Figure(
            ATTACK,
            f"{max(attack_times):.1f} s" if attack_times else "none finished",
            "every one a 4xx naming each file",
            len(refused) == CLIENTS and not attack_wrong,
            attack_detail,
        ),
    ]
