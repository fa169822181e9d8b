"""The photo upload pipeline: trust no name or extension, decode, clean, re-encode.

A patient's upload goes through `clean_photo(data, limits)`:

1. the bytes must decode as JPEG, PNG, WebP or HEIC/HEIF (the file name and the browser's
   content type are ignored: only Pillow's decoders decide);
2. the pixel count is read from the header and checked *before* the image is decoded, so a
   small file claiming a huge canvas (a decompression bomb) costs nothing;
3. the image is decoded in full (a truncated file fails here), turned upright from its EXIF
   orientation and converted to sRGB;
4. a fresh image is built from the pixels alone (no EXIF, GPS, camera or XMP data, no ICC
   profile) and re-encoded as JPEG, with a thumbnail.

Only that re-encode and its thumbnail are ever stored; the original upload is never kept.
Functions here take bytes and limits and return values; storage and the database are elsewhere.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from typing import Any

import pillow_heif
from flask_babel import lazy_gettext as _l
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

# Phones (iPhones above all) send HEIC; teach Pillow to open it.
pillow_heif.register_heif_opener()
# A truncated file must fail, never be padded with grey and accepted.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# The only decoders Pillow may try: an SVG, PDF, GIF, TIFF, PSD or script is simply "not an image".
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
ACCEPTED_MIME_TYPES = "image/jpeg,image/png,image/webp,image/heic,image/heif"
JPEG_QUALITY = 88
THUMBNAIL_QUALITY = 80
# Resize in two steps (a fast integer reduction, then a fine filter) for big photos: same look, less time.
REDUCING_GAP = 3.0
# The thumbnail is small: a coarse integer reduction first costs nothing visible.
THUMBNAIL_REDUCING_GAP = 1.5
DRAFT_SLACK = 0.9


@dataclass(frozen=True)
class PhotoLimits:
    max_bytes: int
    max_pixels: int
    max_edge: int
    thumbnail_edge: int

    @classmethod
    def from_config(cls, config: Any) -> PhotoLimits:
        return cls(
            max_bytes=int(config["MAX_PHOTO_BYTES"]),
            max_pixels=int(config["MAX_IMAGE_PIXELS"]),
            max_edge=int(config["PHOTO_MAX_EDGE"]),
            thumbnail_edge=int(config["THUMBNAIL_EDGE"]),
        )


@dataclass(frozen=True)
class CleanPhoto:
    """A photo ready to store: a metadata-free JPEG and its thumbnail.

    `area`, `view` and `body_site` are what the patient said the photo shows, when it was sent in a
    guided slot (see app.consultations.photo_views); the pipeline never sets or reads them.
    """

    jpeg: bytes
    thumbnail: bytes
    width: int
    height: int
    area: int | None = None
    view: str | None = None
    body_site: str | None = None

    @property
    def size(self) -> int:
        return len(self.jpeg)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.jpeg).hexdigest()


class PhotoRejected(ValueError):
    """An upload that is not a photo we accept; `reason` is a sentence for the patient."""

    def __init__(self, message: Any, **params: Any) -> None:
        super().__init__(message)
        self.message = message  # lazy: translated when shown, in the reader's language
        self.params = params

    @property
    def reason(self) -> str:
        return str(self.message) % self.params if self.params else str(self.message)


# Messages for the patient, one per way an upload can fail.
EMPTY = _l("The file is empty. Please choose the photo again.")
TOO_LARGE = _l("The file is larger than %(mb)s MB. Please send a smaller photo.")
NOT_AN_IMAGE = _l("This is not a photo we can open. Please send JPEG, PNG, WebP or HEIC (iPhone) photos.")
TOO_MANY_PIXELS = _l("The picture is too large in pixels to process. Please send a photo straight from a phone camera.")
DAMAGED = _l("The photo seems damaged or incomplete. Please take it again or choose another one.")


def clean_photo(data: bytes, limits: PhotoLimits) -> CleanPhoto:
    """Check and clean one upload; raises PhotoRejected with a message for the patient."""
    if not data:
        raise PhotoRejected(EMPTY)
    if len(data) > limits.max_bytes:
        raise PhotoRejected(TOO_LARGE, mb=limits.max_bytes // (1024 * 1024))
    image = _open_checked(data, limits)
    try:
        return _re_encode(image, limits)
    finally:
        image.close()


def _open_checked(data: bytes, limits: PhotoLimits) -> Image.Image:
    """Identify the image from its header only and refuse a canvas over the pixel limit before decoding."""
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as error:  # Pillow's own, higher, limit tripped in the header
        raise PhotoRejected(TOO_MANY_PIXELS) from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise PhotoRejected(NOT_AN_IMAGE) from error
    width, height = image.size
    if width <= 0 or height <= 0 or width * height > limits.max_pixels:
        image.close()
        raise PhotoRejected(TOO_MANY_PIXELS)
    return image


def _re_encode(image: Image.Image, limits: PhotoLimits) -> CleanPhoto:
    # For JPEG, let the decoder scale down by 1/2..1/8 while decoding: a 48 MP photo never
    # needs to exist in memory at full size when we keep at most PHOTO_MAX_EDGE pixels.
    if image.format in ("JPEG", "MPO"):  # MPO: the multi-picture JPEG many phones write
        image.draft("RGB", _draft_size(image.size, limits.max_edge))
    try:
        image.load()
    except Image.DecompressionBombError as error:
        raise PhotoRejected(TOO_MANY_PIXELS) from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise PhotoRejected(DAMAGED) from error
    icc_profile = image.info.get("icc_profile")
    try:
        upright = ImageOps.exif_transpose(image) or image
    except (OSError, SyntaxError, ValueError, TypeError, KeyError):
        upright = image  # unreadable EXIF: keep the pixels as they are rather than refuse the photo
    rgb = _to_srgb(upright, icc_profile)
    rgb.thumbnail((limits.max_edge, limits.max_edge), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    # A new image holding only pixels: nothing from the upload's info (EXIF, GPS, XMP, ICC) can follow.
    clean = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    preview = clean.copy()
    preview.thumbnail(
        (limits.thumbnail_edge, limits.thumbnail_edge), Image.Resampling.LANCZOS, reducing_gap=THUMBNAIL_REDUCING_GAP
    )
    return CleanPhoto(
        jpeg=_jpeg_bytes(clean, JPEG_QUALITY),
        thumbnail=_jpeg_bytes(preview, THUMBNAIL_QUALITY),
        width=clean.width,
        height=clean.height,
    )


def _draft_size(size: tuple[int, int], max_edge: int) -> tuple[int, int]:
    """The smallest size worth decoding: the photo scaled so its long edge is near max_edge.

    The JPEG decoder picks the largest 1/2, 1/4 or 1/8 reduction that is still at least this
    size in both directions, so the box keeps the photo's own shape; and it may land a little
    under max_edge (DRAFT_SLACK), so that a 4032 px phone photo decodes at half scale (2016 px)
    instead of at full size only to be resized down by a few pixels.
    """
    width, height = size
    scale = min(1.0, max_edge * DRAFT_SLACK / max(width, height))
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Plain 8-bit RGB in sRGB, transparency flattened onto white.

    Phone photos are often in Display P3; since the profile is dropped with the other metadata,
    the colours are converted first so a rash looks as red to the dermatologist as it did to the patient.
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit greyscale PNG: scale down to 8 bits
        image = image.point(lambda value: value * (1 / 256)).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba).convert("RGB")
    if icc_profile and image.mode in ("RGB", "CMYK", "L"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
            converted = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
            if converted is not None:  # always: only inPlace=True returns None
                return converted
        except (ImageCms.PyCMSError, OSError, TypeError, ValueError):
            pass  # a broken or mismatched profile: the pixels as they are beat refusing the photo
    return image if image.mode == "RGB" else image.convert("RGB")


def _jpeg_bytes(image: Image.Image, quality: int) -> bytes:
    # Baseline JPEG: a progressive, optimised encode took four times as long for a few percent fewer bytes.
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def describe(data: bytes) -> tuple[int, int]:
    """Width and height of a stored (already clean) JPEG, read from its header."""
    with Image.open(io.BytesIO(data), formats=("JPEG",)) as image:
        return image.size


def from_stored(jpeg: bytes, thumbnail: bytes) -> CleanPhoto:
    """A CleanPhoto for bytes this pipeline produced earlier (photos kept while the form is corrected)."""
    width, height = describe(jpeg)
    return CleanPhoto(jpeg=jpeg, thumbnail=thumbnail, width=width, height=height)
