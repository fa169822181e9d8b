# mypy: ignore-errors
# The demo's DraftRequest copy of the model is being replaced by the real actions (issue 13).
"""`flask demo seed`: demo accounts and a realistic spread of consultation requests to try the app with.

What a run makes sure exists:

- four accounts with fixed demo passwords (an admin, a staff member, two dermatologists), printed at
  the end with the sign-in address;
- the hand-written examples (DEMO_CASES), one for each situation the queue shows: new, at risk and
  overdue requests, claimed ones, one waiting for the patient, one where the patient replied, answers
  on time and late, closed ones. Each has one or two generated photos (skin tones with reddish patches)
  put through the real upload pipeline (app.photos.clean_photo) and stored with app.storage; their
  messages, and response clocks set by app.sla.start_clock / stop_clock / next_round as the real flow
  would;
- with `--requests N`, further requests up to N in all ("bulk rows"). Their stories are played out by
  the same code as the examples' (so their clocks also come from app.sla.start_clock / stop_clock /
  next_round), on a plain DraftRequest instead of a mapped object, and they are written with one
  executemany INSERT per table per batch of BATCH_SIZE, so 20,000 take seconds. They have realistic
  fields and messages but no photos (no files, no Photo rows) and no audit events. They arrive at a
  steady BULK_REQUESTS_PER_DAY going back in time, so most of a large history is answered and closed.

Idempotent: every demo request carries a submission key "demo-000001", "demo-000002", ... and a run
creates only those missing; existing accounts are left as they are. `--reset` first deletes the demo
requests (rows and photo files) and restores the demo accounts' passwords.

Refused under APP_CONFIG=production: demo passwords are public and the demo patients' private links
are derived from SECRET_KEY, so that the summary can print them again on every run.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import random
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import click
from flask import current_app
from flask.cli import AppGroup
from PIL import Image, ImageChops, ImageDraw, ImageFilter
from sqlalchemy import delete, func, insert, select

from app import accounts
from app.conditions.content import fold
from app.conditions.library import articles
from app.consultations import audit
from app.consultations import clock as sla
from app.consultations.audit import Actor
from app.consultations.uploads import photo_rows, write_photos
from app.extensions import db
from app.models import (
    ANSWER,
    ANSWERED,
    AWAITING_PATIENT,
    CLOSED,
    IN_REVIEW,
    OPEN_STATUSES,
    PATIENT_REPLY,
    QUESTION,
    STATUSES,
    SUBMITTED,
    AuditAction,
    AuditEvent,
    ConsultationRequest,
    Message,
    OutboundEmail,
    PatientLink,
    Photo,
    ResponseClock,
    User,
    hash_token,
)
from app.models.consultation import REFERENCE_ALPHABET
from app.passwords import verify_password
from app.photos import PhotoLimits, clean_photo
from app.runtime import policies
from app.storage import photo_storage
from app.timeutil import utcnow

commands = AppGroup("demo", help="Demo data for trying the app locally (never in production).")

KEY_PREFIX = "demo-"
BATCH_SIZE = 2000
# About this many requests a day in the bulk history, so that a bigger N means a longer past,
# not a bigger pile of open requests: a clinic with 20,000 requests on file has answered most of them.
BULK_REQUESTS_PER_DAY = 60


@dataclass(frozen=True)
class DemoAccount:
    role: str
    email: str
    name: str
    password: str


DEMO_ACCOUNTS = (
    DemoAccount("admin", "admin@clinic.example", "Aistė Petrauskienė", "demo-admin-password"),
    DemoAccount("staff", "staff@clinic.example", "Tomas Jankauskas", "demo-staff-password"),
    DemoAccount("dermatologist", "dr.ruta@clinic.example", "Dr Rūta Vaitkutė", "demo-derm-password"),
    DemoAccount("dermatologist", "dr.mark@clinic.example", "Dr Mark Ellison", "demo-derm-password"),
)


def submission_key(number: int) -> str:
    return f"{KEY_PREFIX}{number:06d}"


def demo_token(key: str) -> str:
    """The private-link token of a demo request: derived, so the summary can show it on every run."""
    secret = current_app.config["SECRET_KEY"].encode("utf-8")
    digest = hmac.new(secret, f"demo-private-link:{key}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")  # shaped like new_access_token()


# --- Photos ---------------------------------------------------------------------------------------

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


def skin_photo_jpeg(seed: int, size: tuple[int, int] = (1024, 768), quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    skin_photo(seed, size).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _attach_photos(consultation: ConsultationRequest, count: int, seed: int, saved: list[str]) -> None:
    """Generate, clean (the real pipeline) and store photos; `saved` collects keys to undo on failure."""
    limits = PhotoLimits.from_config(current_app.config)
    cleaned = [
        clean_photo(skin_photo_jpeg(seed * 10 + number, (1024, 768) if (seed + number) % 3 else (768, 1024)), limits)
        for number in range(count)
    ]
    stored = write_photos(cleaned, photo_storage(), saved)
    consultation.photos.extend(photo_rows(stored, consultation.created_at))


# --- What the patients wrote ----------------------------------------------------------------------

DESCRIPTIONS = {
    "acne": "Spots on my cheeks and chin for about a year. Some are deep and sore and leave dark marks. "
    "Over-the-counter gels have not helped much.",
    "hand-eczema": "The skin on my hands is dry and cracked, worst between the fingers. It stings when I wash "
    "my hands at work (I am a nurse).",
    "psoriasis": "Thick red patches with silvery flakes on both elbows and knees. They itch at night and a new "
    "one has started on my scalp.",
    "urticaria": "Raised itchy welts that come and go all over my body, each lasting a few hours. It started "
    "after a cold three weeks ago.",
    "palmoplantar-pustulosis": "Small yellow blisters on the soles of both feet that turn brown and peel. "
    "Walking is painful some days.",
    "rosacea": "Redness across my nose and cheeks that gets worse with wine and hot drinks, now with small bumps.",
    "moles-and-melanoma": "A mole on my back that my partner says has grown and looks darker on one side. "
    "It sometimes itches.",
    "scabies": "Intense itching, much worse at night, with small bumps between my fingers and on my wrists. "
    "My son has started itching too.",
    "atopic-dermatitis": "My eczema has flared behind my knees and in the elbow creases. The skin is weeping "
    "in places and I cannot sleep for the itch.",
    "fungal-skin-infections": "A round red patch with a raised edge on my thigh that is slowly getting bigger. "
    "The middle looks clearer.",
    "pityriasis-rosea": "It started with one larger oval patch on my chest, and a week later many smaller ones "
    "appeared on my back and tummy.",
    "warts": "Rough growths on two fingers and one on the sole of my foot. They have been there for months.",
    "seborrhoeic-dermatitis": "Greasy yellowish scales on my scalp and red flaky skin beside my nose and in my "
    "eyebrows.",
    "contact-dermatitis": "An itchy red rash on my wrist exactly where my new watch strap sits, with tiny blisters.",
    "vitiligo": "White patches around my eyes and on the backs of my hands that have grown over the last year.",
    "melasma": "Brown patches on my forehead and upper lip that appeared during pregnancy and darken in summer.",
    "nail-fungus": "Two toenails have turned thick and yellow and crumble at the edges.",
    "hair-loss": "My hair has been coming out in handfuls for two months, and there is a round bald patch at the back.",
    "impetigo": "Crusty honey-coloured sores around my daughter's nose and mouth that are spreading.",
    "lichen-planus": "Purple flat-topped itchy bumps on my wrists and lacy white lines inside my cheeks.",
    "actinic-keratosis": "Rough scaly spots on my forehead and the top of my head that come back after I pick them.",
    "hidradenitis-suppurativa": "Painful lumps in my armpits that burst and leave scars, again and again.",
}
GENERIC_DESCRIPTION = "A red, itchy rash that has been spreading for a few weeks. I am not sure what it is."
# Keys as the intake form stores them (app/intake/forms.py).
BODY_SITES = ("face", "scalp", "neck", "chest", "back", "arms", "hands", "legs", "feet", "nails")
SYMPTOMS = ("itching", "pain", "burning", "scaling", "bleeding", "spreading", "blisters")
DURATIONS = ("days", "weeks", "months", "years", "recurring")
HISTORY = ("family_psoriasis", "family_eczema", "skin_cancer", "smoking")
FIRST_NAMES = (
    "Rūta",
    "Jonas",
    "Eglė",
    "Mantas",
    "Laura",
    "Paulius",
    "Sarah",
    "James",
    "Ieva",
    "Lukas",
    "Emma",
    "Daniel",
    "Gabija",
    "Tomas",
    "Olivia",
    "Marius",
    "Sofia",
    "Adam",
    "Ugnė",
    "Karolis",
)
LAST_NAMES = (
    "Kazlauskas",
    "Petraitė",
    "Smith",
    "Jonaitis",
    "Brown",
    "Vasiliauskienė",
    "Novak",
    "Žukauskas",
    "Williams",
    "Balčiūnas",
    "Garcia",
    "Stankevičiūtė",
    "Miller",
    "Rimkus",
    "Kowalski",
)
QUESTION_TEXT = (
    "Thank you for the photos. Could you send one more taken in daylight from about 30 cm away, and "
    "tell me whether anyone you live with has a similar rash?"
)
REPLY_TEXT = "Here is a photo in daylight. Nobody else at home has it. It itches most in the evening."


def _answer_fields(slug: str | None) -> dict:
    condition = (slug or "skin condition").replace("-", " ")
    return {
        "assessment": f"From your photos and description this looks most like {condition}. "
        "Nothing in the photos suggests anything serious.",
        "treatment": "Use a fragrance-free moisturiser twice a day and the cream below on the red areas "
        "for two weeks, then stop.",
        "prescription_note": "Hydrocortisone 1% cream, thin layer once a day, at most 14 days.",
        "follow_up": "If it is not clearly better in three weeks, or it spreads quickly, send a new request "
        "with fresh photos or see your family doctor.",
    }


def _patient_fields(rng: random.Random, slug: str | None, number: int, created: datetime) -> dict:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    return {
        "language": "lt" if rng.random() < 0.15 else "en",
        "patient_name": f"{first} {last}",
        "patient_email": f"{fold(first)}.{fold(last)}.{number}@example.com",
        "patient_phone": f"+370 6{rng.randint(0, 9999999):07d}" if rng.random() < 0.7 else None,
        "date_of_birth": date(rng.randint(1950, 2007), rng.randint(1, 12), rng.randint(1, 28)),
        "sex": rng.choice(("female", "male", "other")),
        "condition_slug": slug,
        "body_sites": sorted(rng.sample(BODY_SITES, rng.randint(1, 3))),
        "duration": rng.choice(DURATIONS),
        "symptoms": sorted(rng.sample(SYMPTOMS, rng.randint(1, 3))),
        "description": DESCRIPTIONS.get(slug or "", GENERIC_DESCRIPTION),
        "medications": rng.choice((None, "None", "Cetirizine 10 mg when itchy", "Ibuprofen now and then")),
        "allergies": rng.choice((None, "None known", "Penicillin")),
        "history": sorted(rng.sample(HISTORY, rng.choice((0, 0, 1, 2)))),
        "history_notes": None,
        "consent_health_data_at": created,
        "consent_terms_at": created,
        "consent_version": current_app.config["CONSENT_VERSION"],
    }


# --- The hand-written examples --------------------------------------------------------------------

NEW, CLAIMED, ASKED, REPLIED, ANSWERED_STORY, CLOSED_STORY = "new", "claimed", "asked", "replied", "answered", "closed"


@dataclass(frozen=True)
class DemoCase:
    """One example request: how it went, in hours after submission ("reply" is the dermatologist's first message)."""

    slug: str | None
    story: str
    age_hours: float
    holder: int | None = None  # which demo dermatologist holds it (0 or 1)
    photos: int = 1
    reply_after: float | None = None
    patient_reply_ago: float | None = None  # REPLIED: hours ago the patient answered the question
    closed_after: float | None = None


DEMO_CASES = (
    DemoCase("acne", NEW, 2, photos=2),
    DemoCase("hand-eczema", NEW, 0.5),
    DemoCase("psoriasis", NEW, 21.5, photos=2),  # at risk
    DemoCase("urticaria", NEW, 27),  # overdue, nobody has it
    DemoCase("palmoplantar-pustulosis", NEW, 5, photos=2),
    DemoCase(None, NEW, 9),  # the patient did not know what it was
    DemoCase("rosacea", CLAIMED, 6, holder=0),
    DemoCase("moles-and-melanoma", CLAIMED, 22, holder=1, photos=2),  # at risk
    DemoCase("scabies", CLAIMED, 30, holder=0),  # overdue
    DemoCase("atopic-dermatitis", ASKED, 40, holder=1, photos=2, reply_after=10),
    DemoCase("fungal-skin-infections", REPLIED, 50, holder=0, reply_after=8, patient_reply_ago=3),
    DemoCase("pityriasis-rosea", ANSWERED_STORY, 72, holder=0, photos=2, reply_after=14),
    DemoCase("warts", ANSWERED_STORY, 96, holder=1, reply_after=30),  # answered late: target missed
    DemoCase("seborrhoeic-dermatitis", ANSWERED_STORY, 26, holder=1, reply_after=5),
    DemoCase("contact-dermatitis", CLOSED_STORY, 12 * 24, holder=0, photos=2, reply_after=9, closed_after=5 * 24),
    DemoCase("vitiligo", CLOSED_STORY, 20 * 24, holder=1, reply_after=20, closed_after=7 * 24),
)
DERMATOLOGIST_COUNT = sum(1 for account in DEMO_ACCOUNTS if account.role == "dermatologist")
# Whose private pages the summary shows (indexes into DEMO_CASES): an answer, and a question to reply to.
SHOWCASE_LINKS = (11, 9)


def _bulk_case(number: int, slugs: list[str]) -> DemoCase:
    """A bulk request's story: steady arrivals going back in time, most of the past answered and closed."""
    rng = random.Random(number)  # noqa: S311  (demo data: the same story for a number on every run)  # nosec B311
    age = (number - len(DEMO_CASES)) * 24 / BULK_REQUESTS_PER_DAY + rng.uniform(0, 0.3)
    slug = rng.choice(slugs) if slugs and rng.random() < 0.9 else None
    holder = rng.randrange(DERMATOLOGIST_COUNT)
    reply_after = rng.uniform(1, 23) if rng.random() < 0.92 else rng.uniform(24, 40)
    if age <= reply_after:  # nobody has replied yet
        if rng.random() < 0.45:
            return DemoCase(slug, NEW, age, photos=0)
        return DemoCase(slug, CLAIMED, age, holder=holder, photos=0)
    roll = rng.random()
    # Questions wait for the patient a few days at most before the request is closed.
    if roll < 0.06 and age < 5 * 24:
        return DemoCase(slug, ASKED, age, holder=holder, photos=0, reply_after=reply_after)
    patient_reply_ago = rng.uniform(0.5, 20)
    if roll < 0.09 and age < 5 * 24 and reply_after + 1 < age - patient_reply_ago:
        return DemoCase(slug, REPLIED, age, holder, 0, reply_after, patient_reply_ago)
    closed_after = rng.uniform(24, 14 * 24)
    story = CLOSED_STORY if reply_after + closed_after < age else ANSWERED_STORY
    return DemoCase(slug, story, age, holder, 0, reply_after, closed_after=closed_after)


# --- Building a request the way the real flow would ------------------------------------------------


class References:
    """New public references, never one already used (20,000 random ones would otherwise collide)."""

    def __init__(self) -> None:
        self.used = set(db.session.execute(select(ConsultationRequest.reference)).scalars())
        self.rng = random.SystemRandom()

    def new(self) -> str:
        while True:
            reference = "DRM-" + "".join(self.rng.choices(REFERENCE_ALPHABET, k=6))
            if reference not in self.used:
                self.used.add(reference)
                return reference


class DraftRequest:
    """A request's column values while its story is played out.

    app.sla's clock functions work on it exactly as on the model (they only read and set attributes
    and append to `clocks`), and it becomes either a ConsultationRequest (the examples) or plain rows
    for a bulk insert, which is many times faster than building 20,000 mapped objects.
    """

    def __init__(self, **fields: object) -> None:
        # Columns the clock functions read: a demo request is routine, with the clinic's target.
        self.response_target_hours = None
        self.urgent = False
        self.__dict__.update(fields)
        self.clocks: list[ResponseClock] = []
        self.messages: list[dict] = []

    def columns(self) -> dict:
        return {name: value for name, value in vars(self).items() if name not in ("clocks", "messages", "link_hash")}

    def to_model(self) -> ConsultationRequest:
        consultation = ConsultationRequest(**self.columns())
        consultation.clocks = self.clocks
        consultation.links = [PatientLink(token_hash=self.link_hash, created_at=self.created_at)]
        consultation.messages = [Message(**row) for row in self.messages]
        return consultation


def build_request(
    number: int, case: DemoCase, dermatologists: list[User], now: datetime, references: References
) -> DraftRequest:
    """A request with its clocks and messages, as intake and the queue would have left it by `now`."""
    rng = random.Random(number)  # noqa: S311  (demo data: the same patient for a number on every run)  # nosec B311
    created = now - timedelta(hours=case.age_hours)
    key = submission_key(number)
    draft = DraftRequest(
        reference=references.new(),
        submission_key=key,
        status=SUBMITTED,
        created_at=created,
        updated_at=created,
        response_round=1,
        clock_started_at=None,
        due_at=None,
        claimed_by_id=None,
        claimed_at=None,
        first_response_at=None,
        answered_at=None,
        closed_at=None,
        **_patient_fields(rng, case.slug, number, created),
    )
    sla.start_clock(draft, created, policies().response)
    draft.link_hash = hash_token(demo_token(key))
    if case.story != NEW:
        _play_story(draft, case, dermatologists[case.holder or 0], now)
    return draft


def _message(kind: str, author: User | None, at: datetime, body: str | None = None, **answer: str) -> dict:
    """A message row; every row has the same keys, so a batch is one executemany."""
    row = dict.fromkeys(("assessment", "treatment", "prescription_note", "follow_up"))
    row.update(answer, kind=kind, author_id=author.id if author else None, body=body, created_at=at)
    return row


def _play_story(draft: DraftRequest, case: DemoCase, dermatologist: User, now: datetime) -> None:
    """Claim, then ask or answer (stopping the clock), a patient reply (a new round), closing."""
    created = draft.created_at
    claim_after = min(1.0, case.age_hours / 4, (case.reply_after or 2.0) / 2)
    draft.claimed_by_id = dermatologist.id
    draft.claimed_at = draft.updated_at = created + timedelta(hours=claim_after)
    draft.status = IN_REVIEW
    if case.story == CLAIMED:
        return
    replied = created + timedelta(hours=case.reply_after or 0)
    if case.story in (ASKED, REPLIED):
        _send_to_patient(draft, dermatologist, _message(QUESTION, dermatologist, replied, QUESTION_TEXT))
        draft.status = AWAITING_PATIENT
        if case.story == REPLIED:
            back = now - timedelta(hours=case.patient_reply_ago or 0)
            draft.messages.append(_message(PATIENT_REPLY, None, back, REPLY_TEXT))
            sla.next_round(draft, back, policies().response)
            draft.status, draft.updated_at = IN_REVIEW, back
        return
    answer = _message(ANSWER, dermatologist, replied, **_answer_fields(draft.condition_slug))
    _send_to_patient(draft, dermatologist, answer)
    draft.status, draft.answered_at = ANSWERED, replied
    if case.story == CLOSED_STORY:
        draft.status = CLOSED
        draft.closed_at = draft.updated_at = replied + timedelta(hours=case.closed_after or 0)


def _send_to_patient(draft: DraftRequest, author: User, message: dict) -> None:
    draft.messages.append(message)
    sla.stop_clock(draft, message["created_at"], author)
    draft.updated_at = message["created_at"]


def _record_story(consultation: ConsultationRequest) -> None:
    """Audit rows for what happened to an example, dated when it happened."""
    events = [("claimed", consultation.claimed_at, consultation.claimed_by_id)]
    kinds = {QUESTION: "asked", ANSWER: "answered", PATIENT_REPLY: "patient_replied"}
    events += [(kinds[m.kind], m.created_at, m.author_id) for m in consultation.messages if m.kind in kinds]
    for action, at, user_id in events:
        if at is None:
            continue
        user = db.session.get(User, user_id) if user_id else None
        actor = Actor.system(user) if user is not None else Actor.patient()
        event = audit.record(AuditAction(action), actor, consultation=consultation)
        event.at = at


# --- Writing them ---------------------------------------------------------------------------------


def create_examples(numbers: list[int], dermatologists: list[User], now: datetime, references: References) -> None:
    """The hand-written examples, with photos through the real pipeline; files are removed if the commit fails."""
    saved: list[str] = []
    try:
        for number in numbers:
            case = DEMO_CASES[number - 1]
            consultation = build_request(number, case, dermatologists, now, references).to_model()
            _attach_photos(consultation, case.photos, number, saved)
            db.session.add(consultation)
            db.session.flush()
            _record_story(consultation)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        storage = photo_storage()
        for key in saved:
            storage.delete(key)
        raise


CLOCK_COLUMNS = ("round", "started_at", "due_at", "stopped_at", "stopped_by_id")


def _clock_row(request_id: int, clock: ResponseClock) -> dict:
    return {"request_id": request_id, **{column: getattr(clock, column) for column in CLOCK_COLUMNS}}


def create_bulk(numbers: list[int], dermatologists: list[User], now: datetime, references: References) -> None:
    """Bulk rows: one executemany INSERT per table per batch (Core: the ORM would split rows by their None columns)."""
    slugs = [condition.slug for condition in articles().all()]
    requests = ConsultationRequest.__table__
    for start in range(0, len(numbers), BATCH_SIZE):
        drafts = [
            build_request(number, _bulk_case(number, slugs), dermatologists, now, references)
            for number in numbers[start : start + BATCH_SIZE]
        ]
        db.session.execute(insert(requests), [draft.columns() for draft in drafts])
        # Ids by submission key: RETURNING in parameter order would make SQLite insert row by row.
        keys = [draft.submission_key for draft in drafts]
        ids = dict(
            db.session.execute(
                select(requests.c.submission_key, requests.c.id).where(requests.c.submission_key.in_(keys))
            ).all()
        )
        clocks, messages, links = [], [], []
        for draft in drafts:
            request_id = ids[draft.submission_key]
            links.append({"request_id": request_id, "token_hash": draft.link_hash, "created_at": draft.created_at})
            clocks += [
                {"request_id": request_id, **{c: getattr(clock, c) for c in CLOCK_COLUMNS}} for clock in draft.clocks
            ]
            messages += [{"request_id": request_id, **message} for message in draft.messages]
        db.session.execute(insert(ResponseClock.__table__), clocks)
        db.session.execute(insert(PatientLink.__table__), links)
        if messages:
            db.session.execute(insert(Message.__table__), messages)
        db.session.commit()


def ensure_requests(total: int, dermatologists: list[User], now: datetime) -> int:
    """Create the demo requests numbered 1..total that do not exist yet; returns how many were created."""
    existing = set(
        db.session.execute(
            select(ConsultationRequest.submission_key).where(ConsultationRequest.submission_key.like(f"{KEY_PREFIX}%"))
        ).scalars()
    )
    missing = [number for number in range(1, total + 1) if submission_key(number) not in existing]
    references = References()
    examples = [number for number in missing if number <= len(DEMO_CASES)]
    create_examples(examples, dermatologists, now, references)
    create_bulk([number for number in missing if number > len(DEMO_CASES)], dermatologists, now, references)
    return len(missing)


def remove_demo_requests() -> int:
    """Delete every demo request with its photos (rows, then files), messages, clocks, emails and audit rows."""
    demo_ids = select(ConsultationRequest.id).where(ConsultationRequest.submission_key.like(f"{KEY_PREFIX}%"))
    files = db.session.execute(select(Photo.storage_key, Photo.thumbnail_key).where(Photo.request_id.in_(demo_ids)))
    keys = [key for pair in files for key in pair]
    for model in (Photo, Message, ResponseClock, AuditEvent, OutboundEmail):
        db.session.execute(delete(model).where(model.request_id.in_(demo_ids)))
    removed = db.session.execute(
        delete(ConsultationRequest).where(ConsultationRequest.submission_key.like(f"{KEY_PREFIX}%"))
    ).rowcount
    db.session.commit()
    storage = photo_storage()
    for key in keys:  # after the commit: a failed delete must not leave rows pointing at missing files
        storage.delete(key)
    return removed


def ensure_accounts(reset: bool) -> list[tuple[DemoAccount, User, bool]]:
    """The demo accounts: created when missing; with reset, their demo password and access restored.

    Returns (account, user, demo password works) for the summary.
    """
    result = []
    for account in DEMO_ACCOUNTS:
        user = accounts.find_by_email(account.email)
        if user is None:
            user = accounts.create_user(account.email, account.name, account.role, account.password)
        elif reset:
            accounts.reset_password(user, account.password)
            if not user.active:
                accounts.reactivate(user)
        result.append((account, user, verify_password(user.password_hash, account.password)))
    db.session.commit()
    return result


# --- The command ----------------------------------------------------------------------------------


@commands.command("seed")
@click.option(
    "--requests",
    "total",
    type=click.IntRange(min=0),
    default=len(DEMO_CASES),
    show_default=True,
    help=f"How many demo requests there should be in all. The first {len(DEMO_CASES)} are hand-written "
    "examples with photos; the rest are bulk rows without photos (fast: 20,000 take seconds).",
)
@click.option("--reset", is_flag=True, help="Delete the demo requests and restore the demo passwords first.")
def seed(total: int, reset: bool) -> None:
    """Create demo accounts and consultation requests (safe to run again: only what is missing is added)."""
    if current_app.config["CONFIG_NAME"] == "production":
        raise click.ClickException("Demo data has public passwords; it is never created under APP_CONFIG=production.")
    if reset:
        click.echo(f"Removed {remove_demo_requests()} demo requests.")
    users = ensure_accounts(reset)
    dermatologists = [user for account, user, _ in users if account.role == "dermatologist"]
    created = ensure_requests(total, dermatologists, utcnow())
    click.echo(_summary(users, created))


def _summary(users: list[tuple[DemoAccount, User, bool]], created: int) -> str:
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    widths = (13, max(len(a.email) for a in DEMO_ACCOUNTS), max(len(a.password) for a in DEMO_ACCOUNTS))
    rule = "+-" + "-+-".join("-" * width for width in widths) + "-+"
    lines = ["", f"Demo data is ready. Sign in at {base}/login", rule]
    lines.append("| " + " | ".join(t.ljust(w) for t, w in zip(("role", "email", "password"), widths, strict=True)))
    lines[-1] += " |"
    lines.append(rule)
    for account, _user, works in users:
        password = account.password if works else "(changed; --reset restores)"
        cells = (account.role, account.email, password)
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |")
    lines.append(rule)
    lines.append(f"Demo requests on file: {_state_counts()}. Created by this run: {created}.")
    lines.append("A patient's private page (no sign-in; demo data only):")
    for index in SHOWCASE_LINKS:
        key = submission_key(index + 1)
        found = db.session.execute(
            select(ConsultationRequest.reference).where(ConsultationRequest.submission_key == key)
        ).scalar()
        if found:
            lines.append(f"  {found} ({DEMO_CASES[index].story}): {base}/c/{demo_token(key)}")
    return "\n".join(lines) + "\n"


def _state_counts() -> str:
    """Demo requests by what the queue shows: new, claimed (at risk, overdue), awaiting patient, answered, closed."""
    now = utcnow()
    demo = ConsultationRequest.submission_key.like(f"{KEY_PREFIX}%")
    by_status = dict(
        db.session.execute(
            select(ConsultationRequest.status, func.count()).where(demo).group_by(ConsultationRequest.status)
        ).all()
    )
    open_due = db.session.execute(
        select(ConsultationRequest.due_at).where(
            demo, ConsultationRequest.status.in_(OPEN_STATUSES), ConsultationRequest.due_at < now + timedelta(days=1)
        )
    ).scalars()
    clocks = Counter(sla.clock_state(due_at, now, policies().response) for due_at in open_due)
    labels = {SUBMITTED: "new", IN_REVIEW: "claimed", AWAITING_PATIENT: "awaiting patient", ANSWERED: "answered"}
    parts = [f"{by_status[status]} {labels.get(status, status)}" for status in STATUSES if by_status.get(status)]
    text = f"{sum(by_status.values())} ({', '.join(parts)})" if parts else "none"
    return text + f"; open: {clocks[sla.AT_RISK]} at risk, {clocks[sla.OVERDUE]} overdue"
