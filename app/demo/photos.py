"""Generated photos of skin for the demo and the benchmarks: skin tones with reddish patches, not noise.

Deterministic for a seed, so a run makes the same pictures every time. The examples' photos go
through the real upload pipeline (app.photos.clean_photo) before they are submitted.
"""

from __future__ import annotations

import functools
import io
import random

from PIL import Image, ImageChops, ImageDraw, ImageFilter

from app.photos import CleanPhoto, PhotoLimits, clean_photo

SKIN_TONES = ((241, 203, 177), (226, 178, 146), (199, 143, 108), (160, 106, 74), (112, 72, 50))


def _noise(size: tuple[int, int], sigma: float, blur: float = 0) -> Image.Image:
    layer = Image.effect_noise(size, sigma)
    return layer.filter(ImageFilter.GaussianBlur(blur)) if blur else layer


def _patch_mask(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """Where the skin is red: irregular plaques (clusters of ovals) and small papules, soft-edged."""
    width, height = size
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for _ in range(rng.randint(2, 4)):
        cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
        spread = rng.uniform(0.03, 0.1) * width
        for _ in range(rng.randint(4, 9)):
            x, y = cx + rng.gauss(0, spread), cy + rng.gauss(0, spread * 0.7)
            rx, ry = rng.uniform(0.3, 1.0) * spread, rng.uniform(0.3, 0.9) * spread
            draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=rng.randint(130, 210))
    for _ in range(rng.randint(8, 30)):
        x, y = rng.uniform(0.05, 0.95) * width, rng.uniform(0.05, 0.95) * height
        radius = rng.uniform(0.003, 0.01) * width
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=rng.randint(170, 255))
    mask = mask.filter(ImageFilter.GaussianBlur(width / 100))
    mottle = _noise((width // 8, height // 8), 50, 1).resize(size, Image.Resampling.BICUBIC)
    return ImageChops.multiply(mask, mottle.point(lambda v: min(255, 100 + v)))


def skin_photo(seed: int, size: tuple[int, int] = (1024, 768)) -> Image.Image:
    """A plausible close-up of skin with reddish patches (deterministic for a seed), not random noise."""
    rng = random.Random(seed)  # noqa: S311  (demo pictures: deterministic on purpose, not a secret)  # nosec B311
    base = rng.choice(SKIN_TONES)
    shade = Image.new("RGB", size, tuple(int(c * 0.72) for c in base))
    # Light from one side, as by a window; blotchy tone; fine grain (pores, sensor noise).
    light = Image.linear_gradient("L").rotate(rng.choice((0, 90, 180, 270))).resize(size, Image.Resampling.BILINEAR)
    image = Image.composite(Image.new("RGB", size, base), shade, light.point(lambda v: 110 + v // 2))
    blotch = _noise((size[0] // 16, size[1] // 16), 40, 1).resize(size, Image.Resampling.BICUBIC)
    image = Image.composite(image, shade, blotch.point(lambda v: 190 + (v - 128) // 3))
    image = Image.blend(image, _noise(size, 60).convert("RGB"), 0.05)
    red = Image.new("RGB", size, (min(255, int(base[0] * 0.88) + 20), int(base[1] * 0.5), int(base[2] * 0.52)))
    return Image.composite(red, image, _patch_mask(rng, size))


@functools.lru_cache(maxsize=64)
def skin_photo_jpeg(seed: int, size: tuple[int, int] = (1024, 768), quality: int = 90) -> bytes:
    """The photo as a phone would send it; drawn once per process for a seed (drawing is most of the
    cost of seeding the demo, and a demo reset or a second seed draws the same pictures again)."""
    buffer = io.BytesIO()
    skin_photo(seed, size).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def example_photos(seed: int, count: int, limits: PhotoLimits) -> list[CleanPhoto]:
    """An example's photos as a patient's upload leaves the pipeline: landscape, now and then portrait."""
    return [
        clean_photo(skin_photo_jpeg(seed * 10 + number, (1024, 768) if (seed + number) % 3 else (768, 1024)), limits)
        for number in range(count)
    ]
