"""Test-data factories and helpers that read like what a user does."""

from __future__ import annotations

import itertools
from datetime import datetime

from app.consultations.clock import start_clock
from app.consultations.policies import Policies
from app.extensions import db
from app.models import ConsultationRequest, User, new_reference
from app.passwords import hash_password
from app.runtime import policies
from app.timeutil import utcnow

DEFAULT_PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)


def make_user(
    role: str = "dermatologist",
    *,
    email: str | None = None,
    name: str | None = None,
    password: str = DEFAULT_PASSWORD,
    active: bool = True,
    licence_number: str | None = "",
) -> User:
    """A staff account; a dermatologist gets a licence number (needed to answer) unless given None."""
    number = next(_counter)
    if licence_number == "":
        licence_number = f"MPL-{number:05d}" if role == "dermatologist" else None
    user = User(
        email=email or f"{role}{number}@clinic.example",
        name=name or f"Dr Test {number}" if role == "dermatologist" else name or f"Staff {number}",
        role=role,
        password_hash=hash_password(password),
        active=active,
        licence_number=licence_number,
    )
    db.session.add(user)
    db.session.commit()
    return user


def make_consultation(
    *,
    created_at: datetime | None = None,
    status: str = "submitted",
    email: str = "patient@example.com",
    condition_slug: str | None = "acne",
    claimed_by: User | None = None,
    **fields,
) -> tuple[ConsultationRequest, str]:
    """A stored request as intake would leave it; returns (request, private-link token)."""
    now = created_at or utcnow()
    consultation = ConsultationRequest(
        reference=new_reference(),
        status=status,
        patient_name=fields.pop("patient_name", "Test Patient"),
        patient_email=email,
        condition_slug=condition_slug,
        body_sites=fields.pop("body_sites", ["hands"]),
        symptoms=fields.pop("symptoms", ["itching"]),
        description=fields.pop("description", "Itchy spots on both palms for three weeks."),
        duration=fields.pop("duration", "weeks"),
        consent_health_data_at=now,
        consent_terms_at=now,
        consent_version="2026-11",
        created_at=now,
        **fields,
    )
    if claimed_by is not None:
        consultation.claimed_by_id = claimed_by.id
        consultation.claimed_at = now
    token = consultation.issue_link(now)
    start_clock(consultation, now, policies().response)
    db.session.add(consultation)
    db.session.commit()
    return consultation, token


def use_settings(app, monkeypatch, **settings) -> Policies:
    """Change settings for one test, with the policies the rules get rebuilt from them (as create_app does)."""
    for name, value in settings.items():
        monkeypatch.setitem(app.config, name, value)
    rebuilt = Policies.from_config(app.config)
    monkeypatch.setitem(app.extensions, "clinic_policies", rebuilt)
    return rebuilt


def login_as(client, user: User, password: str = DEFAULT_PASSWORD):
    """Sign in through the real login form (no session tricks)."""
    return client.post("/login", data={"email": user.email, "password": password}, follow_redirects=False)


def make_photo(
    consultation: ConsultationRequest,
    *,
    message_id: int | None = None,
    size: tuple[int, int] = (64, 48),
    colour: tuple[int, int, int] = (200, 120, 110),
):
    """A real JPEG (and thumbnail) in photo storage, attached to the request, as intake leaves it."""
    import hashlib
    import io

    from PIL import Image

    from app.models import Photo
    from app.storage import photo_storage

    def jpeg(dimensions: tuple[int, int]) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", dimensions, colour).save(buffer, "JPEG", quality=85)
        return buffer.getvalue()

    storage = photo_storage()
    full, thumb = jpeg(size), jpeg((size[0] // 2 or 1, size[1] // 2 or 1))
    photo = Photo(
        request_id=consultation.id,
        message_id=message_id,
        storage_key=storage.new_key(".jpg"),
        thumbnail_key=storage.new_key(".thumb.jpg"),
        width=size[0],
        height=size[1],
        bytes=len(full),
        sha256=hashlib.sha256(full).hexdigest(),
    )
    storage.save(photo.storage_key, full)
    storage.save(photo.thumbnail_key, thumb)
    db.session.add(photo)
    db.session.commit()
    return photo


# --- Patient intake: real photo files made with Pillow, and the consultation form as a patient fills it ---

ORIENTATION_TAG = 0x0112
GPS_IFD_TAG = 0x8825
CAMERA_MAKE_TAG = 0x010F


def photo_bytes(fmt: str = "JPEG", size: tuple[int, int] = (640, 480), colour=(200, 90, 80), **save_options) -> bytes:
    """A real image file in `fmt` (JPEG, PNG, WEBP, HEIF, GIF...), as a phone or computer would send it."""
    import io

    from PIL import Image

    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    mode = "RGBA" if len(colour) == 4 else "RGB"
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format=fmt, **save_options)
    return buffer.getvalue()


def phone_jpeg_with_gps(size: tuple[int, int] = (400, 200)) -> bytes:
    """A JPEG as a phone held sideways writes it: GPS position, camera make, and orientation 6
    (rotate 90° clockwise to view). A red block marks the stored top-left corner."""
    import io

    from PIL import Image

    image = Image.new("RGB", size, (235, 225, 210))
    image.paste((220, 0, 0), (0, 0, size[0] // 5, size[1] // 5))
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    exif[CAMERA_MAKE_TAG] = "PhoneMaker"
    exif[GPS_IFD_TAG] = {1: "N", 2: (54.0, 41.0, 12.5), 3: "E", 4: (25.0, 16.0, 45.0)}
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes(), quality=92)
    return buffer.getvalue()


def intake_answers(**overrides) -> dict:
    """Valid answers to the consultation form (without photos or the submission key)."""
    answers = {
        "full_name": "Ona Petraitienė",
        "email": "Ona.Patient@Example.com",
        "phone": "+370 600 12345",
        "date_of_birth": "1986-04-12",
        "sex": "female",
        "condition": "palmoplantar-pustulosis",
        "body_sites": ["hands", "feet"],
        "duration": "months",
        "symptoms": ["itching", "blisters"],
        "description": "Yellow-brown spots with small pustules on both palms, worse after washing.",
        "medications": "Hydrocortisone cream",
        "allergies": "Penicillin",
        "history": ["family_psoriasis", "smoking"],
        "history_notes": "Stopped smoking last year.",
        "red_flags": ["none"],
        "consent_health_data": "y",
        "consent_terms": "y",
    }
    answers.update(overrides)
    return {key: value for key, value in answers.items() if value is not None}


def open_consultation_form(client, condition: str | None = None) -> tuple[str, str]:
    """Open /consultation/new like a browser; returns (page html, the form's submission key)."""
    import re

    query = {"condition": condition} if condition else None
    page = client.get("/consultation/new", query_string=query).get_data(as_text=True)
    match = re.search(r'name="submission_key" type="hidden" value="([^"]+)"', page)
    assert match, "the form has no submission key"
    return page, match.group(1)


def submit_request(client, photos=None, *, submission_key: str | None = None, kept_photos=(), **answers):
    """Fill in and send the consultation form. `photos` is a list of (file name, bytes).

    Without a submission key the form is opened first, as a browser would.
    """
    import io

    if photos is None:
        photos = [("rash.jpg", photo_bytes())]
    if submission_key is None:
        _, submission_key = open_consultation_form(client)
    data = intake_answers(**answers)
    data["submission_key"] = submission_key
    data["photos"] = [(io.BytesIO(content), name) for name, content in photos]
    if kept_photos:
        data["kept_photos"] = list(kept_photos)
    return client.post("/consultation/new", data=data, content_type="multipart/form-data")


def stored_files(upload_dir) -> list[str]:
    """Every file under the upload folder (pending photos included), relative to it."""
    from pathlib import Path

    root = Path(upload_dir)
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def failed_sign_ins(user: User, address: str = "127.0.0.1") -> int:
    """Failed sign-ins in a row on `user`'s account from `address` (the test client's by default)."""
    from sqlalchemy import select

    from app.auth.signin import source_of
    from app.models import SignInFailures

    db.session.expire_all()
    found = db.session.execute(
        select(SignInFailures).where(SignInFailures.user_id == user.id, SignInFailures.source == source_of(address))
    ).scalar_one_or_none()
    return found.failures if found is not None else 0
