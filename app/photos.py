"""The photo upload pipeline: trust no name or extension, decode, clean, re-encode.

A patient's upload goes through `clean_photo(data, limits)`:

1. the bytes must decode as JPEG, PNG, WebP or HEIC/HEIF (the file name and the browser's
   content type are ignored: only Pillow's decoders decide);
2. the pixel count is read from the header and checked *before* the image is decoded, so a
   small file claiming a huge canvas (a decompression bomb) costs nothing;
3. the image is decoded at the smallest scale that still gives PHOTO_MAX_EDGE: a JPEG straight
   from the decoder at 1/2, 1/4 or 1/8 (`draft`); other formats, which can only be decoded in
   full, at most FULL_DECODE_MAX_PIXELS (beyond that they are refused with a message), then
   reduced at once by a whole factor (`reduce`) before anything else is done with them. What a
   decoder holds besides the pixels counts too: a JPEG in several scans (progressive) keeps every
   coefficient of the full canvas, and Pillow's WebP decoder four canvases (`_decoded_pixels`);
   and a process decodes one such heavy image at a time (`_ONE_HEAVY_DECODE`);
4. transparency is flattened onto white in one canvas, the image turned upright from its EXIF
   orientation and converted to sRGB (a truncated file fails in step 3);
5. a fresh image is built from the pixels alone (no EXIF, GPS, camera or XMP data, no ICC
   profile) and re-encoded as JPEG, with a thumbnail.

What decoding will cost is known from the header alone (`decode_cost`), so a form's uploads are
all measured, and held to MAX_PIXELS_PER_REQUEST together, before any of them is decoded. After
heavy work, `release_memory` hands the pixel buffers back to the operating system, so a worker
that cleaned big photos does not keep their memory.

Only that re-encode and its thumbnail are ever stored; the original upload is never kept.
Functions here take bytes and limits and return values; storage and the database are elsewhere.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import hashlib
import io
import math
import re
import threading
from dataclasses import dataclass
from typing import IO, Any

import pillow_heif
from flask_babel import lazy_gettext as _l
from PIL import Image, ImageCms, ImageFile, UnidentifiedImageError

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
# The largest canvas decoded in full (PNG, WebP, HEIC: their decoders cannot scale while decoding).
# A 24 MP phone HEIC (5712x4284) passes; a 60 MP RGBA PNG, 240 MB once decoded, does not.
FULL_DECODE_MAX_PIXELS = 25_000_000
# After a post that decoded at least this many pixels, the memory is handed back (release_memory).
HEAVY_PIXELS = 4_000_000
# A file that costs this much to decode waits while another thread of the same process decodes one:
# a gunicorn worker's two threads never hold two full-size canvases (a 24 MP HEIC with alpha peaks at
# about 200 MB) at once. Phone JPEGs, decoded at a reduced scale (about 3 MP), never wait.
_ONE_HEAVY_DECODE = threading.Lock()
# A JPEG in more than one scan (progressive, or one scan per colour) cannot be decoded at a reduced
# scale in memory: libjpeg keeps every DCT coefficient of the full canvas (2 bytes per sample) until
# the last scan, 480 MB for a 60 MP CMYK file of 1 MB. That buffer counts as pixels of RGBA (4 bytes)
# against FULL_DECODE_MAX_PIXELS and the post's budget, like a PNG's canvas.
COEFFICIENT_BYTES = 2 * 64  # per 8x8 block of one component
# Each scan is a pass over the coefficients: a 900 KB file of 2,000 empty scans took 7 s of CPU, and
# 100 scans of a 25 MP greyscale one 1.3 s. Cameras write one scan; libjpeg's and mozjpeg's
# progressive files have about ten (six for greyscale).
MAX_JPEG_SCANS = 32
# Pillow's WebP decoder holds four copies of the canvas while decoding (libwebp's frame and its
# previous frame, the bytes handed to Pillow, the image): 382 MB for a 25 MP WebP of 22 KB.
WEBP_COPIES = 4
# The next marker after a scan's entropy-coded data (0xFF 0x00 is a stuffed byte, 0xFFD0-D7 a restart).
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


@dataclass(frozen=True)
class PhotoLimits:
    max_bytes: int
    max_pixels: int
    max_edge: int
    thumbnail_edge: int
    # Pixels all the uploads of one post may take to decode, together (MAX_PIXELS_PER_REQUEST).
    max_request_pixels: int = 100_000_000

    @classmethod
    def from_config(cls, config: Any) -> PhotoLimits:
        return cls(
            max_bytes=int(config["MAX_PHOTO_BYTES"]),
            max_pixels=int(config["MAX_IMAGE_PIXELS"]),
            max_edge=int(config["PHOTO_MAX_EDGE"]),
            thumbnail_edge=int(config["THUMBNAIL_EDGE"]),
            max_request_pixels=int(config["MAX_PIXELS_PER_REQUEST"]),
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
TOO_BIG_TO_DECODE = _l(
    "This picture has too many pixels for us to process in this format. Please send it as a JPEG, "
    "or a smaller copy (most phones offer a smaller size when sharing)."
)
TOO_MANY_PIXELS_TOGETHER = _l(
    "Together these photos are too large for us to process at once. Please send fewer of them now "
    "(you can add the others in a reply), or smaller copies."
)


def decode_cost(data: bytes, limits: PhotoLimits) -> int:
    """The pixels decoding this upload will take, from its header alone (nothing is decoded).

    Raises PhotoRejected for what clean_photo would refuse before decoding: an empty or too big
    file, not an image we take, a canvas over MAX_IMAGE_PIXELS, or one too big to decode in full.
    """
    if not data:
        raise PhotoRejected(EMPTY)
    if len(data) > limits.max_bytes:
        raise PhotoRejected(TOO_LARGE, mb=limits.max_bytes // (1024 * 1024))
    image = _open_checked(io.BytesIO(data), limits)
    try:
        return _decoded_pixels(image, limits, data)
    finally:
        image.close()


def clean_photo(data: bytes, limits: PhotoLimits) -> CleanPhoto:
    """Check and clean one upload; raises PhotoRejected with a message for the patient."""
    if not data:
        raise PhotoRejected(EMPTY)
    if len(data) > limits.max_bytes:
        raise PhotoRejected(TOO_LARGE, mb=limits.max_bytes // (1024 * 1024))
    image = _open_checked(io.BytesIO(data), limits)
    try:
        # Sets the JPEG draft; refuses what cannot be decoded in full.
        if _decoded_pixels(image, limits, data) < HEAVY_PIXELS:
            return _re_encode(image, limits)
        with _ONE_HEAVY_DECODE:
            return _re_encode(image, limits)
    finally:
        image.close()


def _open_checked(stream: IO[bytes], limits: PhotoLimits) -> Image.Image:
    """Identify the image from its header only and refuse a canvas over the pixel limit before decoding."""
    try:
        image = Image.open(stream, formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as error:  # Pillow's own, higher, limit tripped in the header
        raise PhotoRejected(TOO_MANY_PIXELS) from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise PhotoRejected(NOT_AN_IMAGE) from error
    width, height = image.size
    if width <= 0 or height <= 0 or width * height > limits.max_pixels:
        image.close()
        raise PhotoRejected(TOO_MANY_PIXELS)
    return image


def _decoded_pixels(image: Image.Image, limits: PhotoLimits, data: bytes) -> int:
    """What decoding `image` will hold in memory, in pixels of RGBA; for a JPEG, after choosing its
    reduced scale.

    For JPEG, the decoder scales down by 1/2..1/8 while decoding: a 48 MP photo never needs to
    exist in memory at full size when we keep at most PHOTO_MAX_EDGE pixels; but a JPEG in several
    scans also holds the coefficients of its full canvas, so those count, and too many scans or too
    big a buffer are refused. Other formats can only be decoded in full (WebP four times over), so a
    canvas too big for that is refused here, before decoding.
    """
    if image.format in ("JPEG", "MPO"):  # MPO: the multi-picture JPEG many phones write
        scans = _jpeg_scans(data)
        if scans > MAX_JPEG_SCANS:
            raise PhotoRejected(TOO_MANY_PIXELS)
        held = _coefficient_pixels(image) if scans > 1 else 0
        if held > FULL_DECODE_MAX_PIXELS:
            raise PhotoRejected(TOO_MANY_PIXELS)
        image.draft("RGB", _draft_size(image.size, limits.max_edge))
        return held + image.width * image.height
    pixels = image.width * image.height * (WEBP_COPIES if image.format == "WEBP" else 1)
    if pixels > FULL_DECODE_MAX_PIXELS:
        raise PhotoRejected(TOO_BIG_TO_DECODE)
    return pixels


def _jpeg_scans(data: bytes) -> int:
    """How many scans the (first) picture of a JPEG has, counted from its markers without decoding.

    A malformed marker sequence ends the count: the decoder refuses such a file anyway.
    """
    scans, at = 0, 2  # after SOI
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker == 0xD9:  # EOI: what follows (an MPO's other pictures) is not decoded
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            at += 2
            continue
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        if marker == 0xDA:  # SOS: a scan, its entropy-coded data runs to the next marker
            scans += 1
            following = _NEXT_MARKER.search(data, at)
            if following is None:
                break
            at = following.start()
    return scans


def _coefficient_pixels(image: Image.Image) -> int:
    """The full-size coefficient buffer libjpeg keeps for a JPEG in several scans, in pixels of RGBA."""
    components = getattr(image, "layer", None) or [("", 1, 1, 0)] * len(image.getbands())
    h_max = max(component[1] for component in components) or 1
    v_max = max(component[2] for component in components) or 1
    width, height = image.size
    held = 0
    for _, h, v, _ in components:
        across = _round_up(math.ceil(math.ceil(width * h / h_max) / 8), max(h, 1))
        down = _round_up(math.ceil(math.ceil(height * v / v_max) / 8), max(v, 1))
        held += across * down * COEFFICIENT_BYTES
    return held // 4


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _re_encode(image: Image.Image, limits: PhotoLimits) -> CleanPhoto:
    try:
        image.load()
    except Image.DecompressionBombError as error:
        raise PhotoRejected(TOO_MANY_PIXELS) from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise PhotoRejected(DAMAGED) from error
    icc_profile = image.info.get("icc_profile")
    turn = _orientation(image)  # read now: the reduced image below is a new one, without the EXIF
    # Reduce first, flatten with it: every later step works on the small image, never the full canvas.
    small = _flatten_alpha(_reduced(image, limits.max_edge))
    upright = small.transpose(turn) if turn is not None else small
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


ORIENTATION = 0x0112
# EXIF orientation -> the turn that makes the picture upright (as ImageOps.exif_transpose does).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Transparent images are flattened and reduced a band of about this many pixels at a time.
BAND_PIXELS = 2_000_000


def _orientation(image: Image.Image) -> Image.Transpose | None:
    try:
        return UPRIGHT.get(int(image.getexif().get(ORIENTATION) or 1))
    except (OSError, SyntaxError, ValueError, TypeError, KeyError):
        return None  # unreadable EXIF: keep the pixels as they are rather than refuse the photo


def _reduced(image: Image.Image, max_edge: int) -> Image.Image:
    """A full-size decode made smaller at once by a whole factor, so that its long edge stays at or
    a little under max_edge (as the JPEG draft does); the full-size pixels are released."""
    factor = int(max(image.size) // (max_edge * DRAFT_SLACK))
    if factor < 2:
        return image
    if image.mode in ("RGB", "L", "CMYK", "I", "F"):
        return _replace(image, image.reduce(factor))
    # Transparency, a palette, 16 bits or 1 bit: converted as well as reduced, a band at a time.
    return _replace(image, _converted_and_reduced(image, factor))


def _converted_and_reduced(image: Image.Image, factor: int) -> Image.Image:
    """Plain 8-bit pixels (transparency flattened onto white) reduced by `factor`, a band at a time,
    so that no second full-size canvas ever exists: converting a 25 MP 16-bit or 1-bit PNG whole took
    two or three more copies, and reduce() on RGBA alone makes a premultiplied one."""
    width, height = image.size
    out: Image.Image | None = None
    rows = factor * max(1, BAND_PIXELS // (width * factor))  # a whole number of reduced rows
    for top in range(0, height, rows):
        flat = _flatten_alpha(_eight_bit(image.crop((0, top, width, min(height, top + rows)))))
        small = flat.reduce(factor)
        flat.close()
        if out is None:
            out = Image.new(small.mode, (-(-width // factor), -(-height // factor)), "white")
        out.paste(small, (0, top // factor))
    return out if out is not None else image  # None only for an image without rows


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit greyscale scaled to 8 bits, 1-bit made greyscale, a palette expanded; others unchanged."""
    if image.mode in ("I;16", "I;16B", "I;16L"):
        return _replace(image, image.point(lambda value: value * (1 / 256)).convert("L"))
    if image.mode == "1":
        return _replace(image, image.convert("L"))
    if image.mode == "P":
        return _replace(image, image.convert("RGBA" if "transparency" in image.info else "RGB"))
    return image


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Transparency flattened onto white: one new canvas without alpha, the pixels pasted through their
    own alpha, instead of a white RGBA background, a composite and a conversion (three full copies)."""
    if image.mode == "P" and "transparency" in image.info:
        image = _replace(image, image.convert("RGBA"))
    if image.mode == "PA":
        image = _replace(image, image.convert("RGBA"))
    if image.mode not in ("RGBA", "LA"):
        return image
    flat = Image.new("RGB" if image.mode == "RGBA" else "L", image.size, "white")
    flat.paste(image, (0, 0), image)
    return _replace(image, flat)


def _replace(old: Image.Image, new: Image.Image) -> Image.Image:
    """`new`, with `old`'s pixel memory released now rather than whenever it is collected."""
    if new is not old:
        old.close()
    return new


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Plain 8-bit RGB in sRGB.

    Phone photos are often in Display P3; since the profile is dropped with the other metadata,
    the colours are converted first so a rash looks as red to the dermatologist as it did to the patient.
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit greyscale PNG: scale down to 8 bits
        image = image.point(lambda value: value * (1 / 256)).convert("L")
    image = _flatten_alpha(image)
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


def release_memory() -> None:
    """Hand the memory of big decodes back to the operating system.

    Pillow frees its pixel buffers at once, but the C library keeps freed memory for reuse, so a
    worker that decoded a few big photos would keep the peak for the rest of its life. Collect
    what Python still holds, empty Pillow's block cache, then ask glibc to return free memory.
    """
    gc.collect()
    Image.core.clear_cache()
    if _libc is not None:
        _libc.malloc_trim(0)


def _load_libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None  # glibc only


_libc = _load_libc()
# Big buffers (pixels, decoders' canvases, uploads' bytes) are mapped on their own and unmapped when
# freed. glibc otherwise soon serves them from each thread's heap, which keeps freed memory: after
# the two threads of a worker had each cleaned a worst-case post in turn, the process held both
# peaks at once (232 MB above its size here, 202 MB with this; 82 MB kept afterwards, 11 MB with it).
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1024 * 1024
if _libc is not None and hasattr(_libc, "mallopt"):
    _libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
