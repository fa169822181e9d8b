"""A large service's history, written straight into the database: COPY on PostgreSQL, batched
INSERTs on SQLite. No ORM objects, no actions, no argon2: a million requests in minutes.

Used by `flask demo seed --requests N` (the requests after the played examples, seed.py) and by the
benchmarks (bench/national.py, which adds its own accounts). The schema must exist.

What it writes, for requests arriving at a steady RATE_PER_DAY (274 a day: a million requests are
ten years of a large national teledermatology service), a request's number setting its age:

- every request with the fields the intake form stores, its response rounds (ResponseClock), a
  private link per email sent to the patient, the thread (a question and the patient's reply for
  some, the answer), the audit trail (claimed, viewed, asked, answered; the patient's reply and
  resolving); optionally (`photos`, `emails`)
  one to three photo rows (no files: only for benchmarks, where nothing reads them) and the emails
  (receipt, the team's alert, the reply notice: sent, a few recent ones pending and a few failed);
- stories by age, the same for a request of the same age at any size: the newest hours hold
  unclaimed and claimed requests, a few waiting for the patient's answer; older ones were answered
  (92 % in time, the rest after 24 to 40 hours) and then stayed "answered" or were closed by the
  patient within two weeks; 3 % were withdrawn before the answer (their round cancelled, as
  conversation.withdraw leaves it). A question the patient never answered ends with the patient
  marking the request resolved after a fortnight.

Rows are made newest first from one seeded random stream, so a history of 10,000 requests holds
exactly the newest 10,000 of a history of 1,000,000 made with the same `now`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import random
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa

from app.extensions import db
from app.models import hash_token

RATE_PER_DAY = 274
BATCH = 20_000
# Above this many requests (and when they at least double the tables), PostgreSQL's indexes are
# dropped for the load and built once afterwards: many times faster than updating them row by row.
REBUILD_FROM = 50_000
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
SLUGS = (
    "acne", "atopic-dermatitis", "psoriasis", "rosacea", "urticaria", "scabies", "warts", "vitiligo",
    "hand-eczema", "contact-dermatitis", "pityriasis-rosea", "moles-and-melanoma", "fungal-skin-infections",
    "seborrhoeic-dermatitis", "palmoplantar-pustulosis", "impetigo", "shingles", "cold-sores",
)  # fmt: skip
BODY_SITES = ("face", "scalp", "neck", "chest", "back", "arms", "hands", "legs", "feet", "nails")
SYMPTOMS = ("itching", "pain", "burning", "scaling", "bleeding", "spreading", "blisters")
DURATIONS = ("days", "weeks", "months", "years", "recurring")
FIRST = ("Rūta", "Jonas", "Eglė", "Mantas", "Laura", "Paulius", "Ieva", "Lukas", "Gabija", "Tomas", "Ugnė", "Karolis")
LAST = ("Kazlauskas", "Petraitė", "Jonaitis", "Vasiliauskienė", "Žukauskas", "Balčiūnas", "Rimkus", "Stankevičiūtė")
DESCRIPTION = "A red, itchy rash on both forearms for three weeks, worse at night; moisturiser did not help."
ANSWER = {
    "assessment": "From your photos and description this looks most like eczema. Nothing suggests anything serious.",
    "treatment": "A fragrance-free moisturiser twice a day and the cream below on the red areas for two weeks.",
    "prescription_note": "Hydrocortisone 1% cream, thin layer once a day, at most 14 days.",
    "follow_up": "If it is not clearly better in three weeks, send a new request with fresh photos.",
}
QUESTION = "Could you send one more photo in daylight from about 30 cm away?"
REPLY = "Here is a photo in daylight. It itches most in the evening."
CONSENT_VERSION = "2026-11"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def day_later(start: datetime) -> datetime:
    """The default due moment: 24 calendar hours (the demo passes the clinic's own rule, clock.due_time)."""
    return start + 24 * HOUR


def unknowable_links() -> Callable[[str], str]:
    """Link hashes whose tokens nobody knows (a fresh secret per load): the links exist, nobody can open them."""
    secret = secrets.token_bytes(32)

    def link_hash(name: str) -> str:
        token = base64.urlsafe_b64encode(hmac.new(secret, name.encode(), hashlib.sha256).digest()).decode()
        return hash_token(token.rstrip("="))

    return link_hash


@dataclass(frozen=True)
class Plan:
    """What to write, besides how many: when "now" is, who answers, how the rows are named and dated."""

    now: datetime
    dermatologists: Sequence[int]
    key_format: str = "national-{:07d}"  # a request's submission key from its number
    slugs: Sequence[str] = SLUGS  # the conditions patients choose (one in ten chooses none)
    consent_version: str = CONSENT_VERSION
    due: Callable[[datetime], datetime] = day_later  # when a reply to something received then is due
    # A private link's stored hash from its name: the request's submission key for the first link,
    # "key/2", "key/3"... for the links sent with later emails.
    link_hash: Callable[[str], str] = field(default_factory=unknowable_links)
    photos: bool = True  # photo rows without files: only where nothing reads them (benchmarks)
    emails: bool = True  # outbox rows (sent, a few pending and failed); the demo emails nobody
    team_email: str = "team@national.example"


@dataclass
class Rows:
    """One batch of rows per table, as tuples in each table's COLUMNS order."""

    tables: dict[str, list[tuple]] = field(default_factory=dict)

    def add(self, table: str, row: tuple) -> None:
        self.tables.setdefault(table, []).append(row)


COLUMNS = {
    "consultation_requests": (
        "id", "reference", "submission_key", "status", "language", "patient_name", "patient_email", "patient_phone",
        "date_of_birth", "sex", "condition_slug", "body_sites", "duration", "symptoms", "description", "medications",
        "allergies", "history", "history_notes", "consent_health_data_at", "consent_terms_at", "consent_version",
        "created_at", "updated_at", "clock_started_at", "due_at", "response_round", "response_target_hours",
        "claimed_by_id", "claimed_at", "first_response_at", "answered_at", "closed_at",
    ),
    "response_clocks": ("id", "request_id", "round", "started_at", "due_at", "stopped_at", "stopped_by_id"),
    "messages": (
        "id", "request_id", "kind", "author_id", "body", "assessment", "treatment", "prescription_note", "follow_up",
        "created_at",
    ),
    "photos": (
        "id", "request_id", "message_id", "storage_key", "thumbnail_key", "width", "height", "bytes", "sha256",
        "created_at",
    ),
    "patient_links": ("id", "request_id", "token_hash", "created_at"),
    "outbound_emails": (
        "id", "recipient", "template", "language", "context", "sealed_context", "status", "attempts",
        "next_attempt_at", "last_error", "dedupe_key", "request_id", "created_at", "sent_at",
    ),
    "audit_events": ("id", "at", "actor_user_id", "actor_kind", "action", "request_id", "detail", "ip"),
}  # fmt: skip
ORDER = tuple(COLUMNS)  # parents first


class Ids:
    """The next free id of each table (PostgreSQL's sequences are set afterwards)."""

    def __init__(self, start: dict[str, int]) -> None:
        self.next = dict(start)

    def take(self, table: str) -> int:
        value = self.next[table]
        self.next[table] = value + 1
        return value


class Story:
    """One request's history, played out from its age; appends its rows to a batch."""

    def __init__(self, rng: random.Random, ids: Ids, rows: Rows, plan: Plan, references: set[str]) -> None:
        self.rng, self.ids, self.rows, self.plan, self.now = rng, ids, rows, plan, plan.now
        self.references = references
        self.key = ""
        self.links = 0

    def reference(self) -> str:
        while True:
            candidate = "DRM-" + "".join(self.rng.choices(REFERENCE_ALPHABET, k=6))
            if candidate not in self.references:
                self.references.add(candidate)
                return candidate

    def write(self, number: int) -> None:
        rng, now, due = self.rng, self.now, self.plan.due
        request_id = self.ids.take("consultation_requests")
        self.key, self.links = self.plan.key_format.format(number), 0
        created = now - timedelta(hours=number * 24 / RATE_PER_DAY + rng.uniform(0, 0.08))
        age = (now - created) / HOUR
        reference = self.reference()
        email = f"patient.{number}@example.com"
        language = "lt" if rng.random() < 0.8 else "en"
        derm = rng.choice(self.plan.dermatologists)
        reply_after = rng.uniform(1, 23) if rng.random() < 0.92 else rng.uniform(24, 40)
        first_due = due(created)
        r: dict[str, Any] = {
            "status": "submitted", "claimed_by_id": None, "claimed_at": None, "first_response_at": None,
            "answered_at": None, "closed_at": None, "updated_at": created, "response_round": 1,
            "clock_started_at": created, "due_at": first_due,
        }  # fmt: skip
        clocks: list[list] = [[1, created, first_due, None, None]]
        self._link(request_id, created)
        self._email(email, "request_received", language, reference, f"received:{request_id}", request_id, created)
        self._email(
            self.plan.team_email, "staff_new_request", "en", reference, f"new:{request_id}:team", request_id, created
        )
        photos = rng.choice((1, 1, 2, 2, 3))
        for _ in range(photos):
            self._photo(request_id, None, created)
        claim_after = min(1.0, age / 4, reply_after / 2)
        if age > claim_after and rng.random() > 0.45 * (age < reply_after):
            r.update(status="in_review", claimed_by_id=derm, claimed_at=created + claim_after * HOUR)
            r["updated_at"] = r["claimed_at"]
            self._audit(r["claimed_at"], derm, "claimed", request_id)
        if age > reply_after and r["claimed_by_id"] is not None:
            self._replied(request_id, reference, email, language, derm, created, age, reply_after, r, clocks)
        self._request_row(request_id, reference, email, language, created, r)
        for round_number, started, due_at, stopped, stopped_by in clocks:
            self.rows.add("response_clocks", (self.ids.take("response_clocks"), request_id, round_number, started,
                                              due_at, stopped, stopped_by))  # fmt: skip

    def _replied(self, request_id, reference, email, language, derm, created, age, reply_after, r, clocks) -> None:
        rng = self.rng
        replied = created + reply_after * HOUR
        self._audit(replied - 0.2 * HOUR, derm, "viewed", request_id)
        withdrawn = rng.random() < 0.03
        if withdrawn:  # as conversation.withdraw leaves it: the round cancelled, its clock never stopped
            r.update(status="withdrawn", closed_at=replied, updated_at=replied, due_at=None, clock_started_at=None)
            return
        asked = rng.random() < 0.05
        clock = clocks[-1]
        if asked:
            self._message(request_id, "question", derm, replied, body=QUESTION)
            self._patient_email(request_id, reference, email, language, replied)
            self._audit(replied, derm, "asked", request_id)
            clock[3], clock[4] = replied, derm
            r.update(status="awaiting_patient", first_response_at=replied, updated_at=replied, due_at=None,
                     clock_started_at=None)  # fmt: skip
            back = replied + rng.uniform(2, 72) * HOUR
            if back > self.now:
                if (self.now - replied) > 14 * DAY:  # the patient let it be: marked resolved
                    r.update(status="closed", closed_at=replied + 14 * DAY, updated_at=replied + 14 * DAY)
                    self._patient_audit(replied + 14 * DAY, "resolved", request_id)
                return
            message = self._message(request_id, "patient_reply", None, back, body=REPLY)
            self._photo(request_id, message, back)
            self._email(self.plan.team_email, "patient_replied", "en", reference, f"patient-replied:{message}:team",
                        request_id, back)  # fmt: skip
            self._patient_audit(back, "patient_replied", request_id)
            round_due = self.plan.due(back)
            clocks.append([2, back, round_due, None, None])
            r.update(status="in_review", response_round=2, updated_at=back, clock_started_at=back, due_at=round_due)
            replied = back + rng.uniform(1, 23) * HOUR
            if replied > self.now:
                return
            clock = clocks[-1]
        self._message(request_id, "answer", derm, replied, **ANSWER)
        self._patient_email(request_id, reference, email, language, replied)
        self._audit(replied, derm, "answered", request_id)
        clock[3], clock[4] = replied, derm
        r.update(status="answered", answered_at=replied, updated_at=replied, due_at=None, clock_started_at=None)
        r["first_response_at"] = r["first_response_at"] or replied
        closed = replied + rng.uniform(1, 14) * DAY
        if rng.random() < 0.4 and closed < self.now:
            r.update(status="closed", closed_at=closed, updated_at=closed)
            self._patient_audit(closed, "resolved", request_id)

    def _request_row(self, request_id, reference, email, language, created, r) -> None:
        rng, plan = self.rng, self.plan
        self.rows.add(
            "consultation_requests",
            (
                request_id, reference, self.key, r["status"], language,
                f"{rng.choice(FIRST)} {rng.choice(LAST)}", email,
                f"+370 6{rng.randrange(10_000_000):07d}" if rng.random() < 0.7 else None,
                date(rng.randint(1940, 2010), rng.randint(1, 12), rng.randint(1, 28)),
                rng.choice(("female", "male", "other")), rng.choice(plan.slugs) if rng.random() < 0.9 else None,
                sorted(rng.sample(BODY_SITES, rng.randint(1, 3))), rng.choice(DURATIONS),
                sorted(rng.sample(SYMPTOMS, rng.randint(1, 3))), DESCRIPTION,
                rng.choice((None, "None", "Cetirizine 10 mg when itchy")),
                rng.choice((None, "None known", "Penicillin")),
                [], None, created, created, plan.consent_version, created, r["updated_at"], r["clock_started_at"],
                r["due_at"], r["response_round"], None, r["claimed_by_id"], r["claimed_at"], r["first_response_at"],
                r["answered_at"], r["closed_at"],
            ),
        )  # fmt: skip

    def _message(self, request_id: int, kind: str, author: int | None, at: datetime, body: str | None = None,
                 **answer: str) -> int:  # fmt: skip
        message_id = self.ids.take("messages")
        self.rows.add("messages", (message_id, request_id, kind, author, body, answer.get("assessment"),
                                   answer.get("treatment"), answer.get("prescription_note"), answer.get("follow_up"),
                                   at))  # fmt: skip
        return message_id

    def _photo(self, request_id: int, message_id: int | None, at: datetime) -> None:
        if not self.plan.photos:
            return
        photo_id = self.ids.take("photos")
        self.rows.add("photos", (photo_id, request_id, message_id, f"n{photo_id:09d}.jpg", f"n{photo_id:09d}-t.jpg",
                                 2048, 1536, 612_345, f"{photo_id:064x}", at))  # fmt: skip

    def _link(self, request_id: int, at: datetime) -> None:
        self.links += 1
        name = self.key if self.links == 1 else f"{self.key}/{self.links}"
        self.rows.add("patient_links", (self.ids.take("patient_links"), request_id, self.plan.link_hash(name), at))

    def _patient_email(self, request_id, reference, email, language, at) -> None:
        self._link(request_id, at)
        key = f"replied:{request_id}:{at.timestamp():.0f}"
        self._email(email, "patient_reply_ready", language, reference, key, request_id, at)

    def _email(self, recipient, template, language, reference, key, request_id, at) -> None:
        if not self.plan.emails:
            return
        email_id = self.ids.take("outbound_emails")
        age = self.now - at
        status = "sent" if age > 5 * 60 * timedelta(seconds=1) else "pending"
        if status == "sent" and self.rng.random() < 0.0002:
            status = "failed"
        sent_at = at + timedelta(seconds=20) if status == "sent" else None
        attempts = 1 if status == "sent" else (8 if status == "failed" else 0)
        error = "SMTPRecipientsRefused: 550 mailbox unavailable" if status == "failed" else None
        self.rows.add("outbound_emails", (email_id, recipient, template, language, {"reference": reference},
                                          None, status, attempts, at, error, key, request_id, at, sent_at))  # fmt: skip

    def _audit(self, at: datetime, user_id: int, action: str, request_id: int) -> None:
        self.rows.add("audit_events", (self.ids.take("audit_events"), at, user_id, "user", action, request_id, None,
                                       "10.0.0.8"))  # fmt: skip

    def _patient_audit(self, at: datetime, action: str, request_id: int) -> None:
        self.rows.add("audit_events", (self.ids.take("audit_events"), at, None, "patient", action, request_id, None,
                                       None))  # fmt: skip


# --- Writing ---------------------------------------------------------------------------------------


@dataclass
class Loaded:
    """What a load wrote: rows per table, and how long it took (indexes and statistics included)."""

    requests: int
    rows: dict[str, int]
    seconds: float


# Told how far a load is: requests written so far, of how many, and the stage ("rows", then on
# PostgreSQL after a large load "indexes" while they are built again).
Progress = Callable[[int, int, str], None]


def _next_id(table: str) -> sa.ScalarSelect[Any]:
    """The id after the highest one stored in `table` (one of ORDER's names)."""
    ids = sa.table(table, sa.column("id"))
    return sa.select(sa.func.coalesce(sa.func.max(ids.c.id), 0) + 1).scalar_subquery()


def _start_ids(connection: sa.Connection) -> dict[str, int]:
    return {table: int(connection.execute(sa.select(_next_id(table))).scalar_one()) for table in ORDER}


def _batches(numbers: Sequence[int], plan: Plan, ids: Ids, references: set[str]) -> Iterator[tuple[int, Rows]]:
    rng = random.Random(20261130)  # noqa: S311  (made-up history: the same rows on every run)  # nosec B311
    for start in range(0, len(numbers), BATCH):
        rows = Rows()
        story = Story(rng, ids, rows, plan, references)
        chunk = numbers[start : start + BATCH]
        for number in chunk:
            story.write(number)
        yield len(chunk), rows


def _copy(cursor: Any, table: str, rows: list[tuple]) -> None:
    """COPY in PostgreSQL's text format (NULL as \\N, tabs, newlines and backslashes escaped)."""
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(_text(value) for value in row))
        buffer.write("\n")
    with cursor.copy(f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN") as copy:
        copy.write(buffer.getvalue())


def _text(value: object) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _insert(connection: sa.Connection, table: str, rows: list[tuple]) -> None:
    """Batched INSERTs through SQLAlchemy (SQLite), so dates are stored as the app stores them."""
    columns = COLUMNS[table]
    connection.execute(db.metadata.tables[table].insert(), [dict(zip(columns, row, strict=True)) for row in rows])


def _drop_secondary_indexes(connection: sa.Connection) -> list[str]:
    """Drop every index and unique constraint but the primary keys of the loaded tables; returns the
    statements that make them again."""
    again: list[str] = []
    for table in ORDER:
        constraints = connection.execute(
            sa.text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = CAST(:table AS regclass) AND contype = 'u'"
            ),
            {"table": table},
        ).all()
        for name, definition in constraints:
            connection.exec_driver_sql(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            again.append(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        indexes = connection.execute(
            sa.text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :table AND indexname NOT IN "
                "(SELECT conname FROM pg_constraint WHERE conrelid = CAST(:table AS regclass))"
            ),
            {"table": table},
        ).all()
        for name, definition in indexes:
            connection.exec_driver_sql(f"DROP INDEX {name}")
            again.append(definition)
    return again


def load(connection: sa.Connection, numbers: Sequence[int], plan: Plan, progress: Progress | None = None) -> Loaded:
    """Write the requests numbered `numbers` (and everything about them) in the caller's transaction.

    A request's number sets its age (RATE_PER_DAY a day, going back from plan.now) and its
    submission key (plan.key_format), so numbers already in the database must not be asked for
    again: their keys would clash and the transaction fail. The caller commits, then may call
    `analyse` (PostgreSQL) so that the planner knows the new rows.
    """
    started = time.perf_counter()
    postgres = connection.dialect.name == "postgresql"
    references = set(connection.execute(sa.text("SELECT reference FROM consultation_requests")).scalars())
    ids = Ids(_start_ids(connection))
    rebuild: list[str] = []
    if postgres:
        # The rows are made consistent, so the foreign-key triggers can sleep; and building each
        # index once after a large load is many times faster than updating it row by row.
        try:
            with connection.begin_nested():  # needs a superuser; without one, the triggers simply run
                connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        except sa.exc.DBAPIError:
            pass
        connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
        connection.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        if len(numbers) >= max(REBUILD_FROM, len(references)):
            rebuild = _drop_secondary_indexes(connection)
    counts: dict[str, int] = dict.fromkeys(ORDER, 0)
    done = 0
    if progress:
        progress(0, len(numbers), "rows")
    for made, rows in _batches(numbers, plan, ids, references):
        for table in ORDER:
            batch = rows.tables.get(table, [])
            if not batch:
                continue
            if postgres:
                _copy(cast(Any, connection.connection).cursor(), table, batch)
            else:
                _insert(connection, table, batch)
            counts[table] += len(batch)
        done += made
        if progress:
            progress(done, len(numbers), "rows")
    if rebuild and progress:
        progress(done, len(numbers), "indexes")
    for statement in rebuild:
        connection.exec_driver_sql(statement)
    if postgres:
        for table in ORDER:
            sequence = sa.func.pg_get_serial_sequence(table, "id")
            connection.execute(sa.select(sa.func.setval(sequence, _next_id(table), False)))
    return Loaded(done, counts, time.perf_counter() - started)


def analyse(engine: sa.Engine) -> None:
    """After a load's commit, on PostgreSQL: VACUUM ANALYZE the loaded tables (plans, visibility map)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"VACUUM ANALYZE {', '.join(ORDER)}")
