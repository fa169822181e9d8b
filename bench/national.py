"""A national service's history, written straight into the database: COPY on PostgreSQL, batched
INSERTs on SQLite. No Flask app, no ORM objects, no argon2: a million requests in minutes.

    python -m bench.national DATABASE_URL --requests 1000000 [--first-number N] [--accounts-password PASSWORD]

The schema must exist (`flask db upgrade`). A second load into the same database takes numbers after
the first one's (--first-number), or its submission keys clash and nothing is written.

What it writes, for N requests arriving at a steady RATE_PER_DAY (274 a day: a million requests are
ten years, RETENTION_DAYS, of a large national teledermatology service; a service that purges
nightly never holds more than that):

- ACCOUNTS: admins, staff members and dermatologists (DERMATOLOGISTS of them), with one password
  hash shared by all (argon2, computed once);
- every request with the fields the intake form stores, its response rounds (ResponseClock), one
  to three photo rows (files are not written: nothing here reads them), a private link per email
  sent to the patient, the thread (a question and the patient's reply for some, the answer), the
  emails (receipt, the team's new-request alert, the reply notice: all sent, a few recent ones
  pending and a few failed) and the audit trail (claimed, viewed, answered);
- stories by age, the same for a request of the same age at any N: the newest hours hold unclaimed
  and claimed requests, a few waiting for the patient's answer; older ones were answered (92 % in
  time, the rest 24-40 hours late) and then stayed "answered" (patients rarely mark a request
  resolved) or were closed by the patient within two weeks; 3 % were withdrawn. Questions the
  patient never answered are closed after a fortnight (the app itself has no such rule yet: see
  docs/performance.md).

Rows are made newest first from one seeded random stream, so a database of 10,000 requests holds
exactly the newest 10,000 of a database of 1,000,000 made with the same `now`.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

RATE_PER_DAY = 274
PASSWORD = "national-bench-password"
# Who the benchmarks sign in as.
SIGN_IN = {"dermatologist": "dr01@national.example", "staff": "staff@national.example"}
DERMATOLOGISTS = 40
BATCH = 20_000
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


@dataclass(frozen=True)
class Account:
    role: str
    email: str
    name: str


def accounts() -> list[Account]:
    made = [
        Account("admin", "admin@national.example", "Admin One"),
        Account("staff", "staff@national.example", "Staff One"),
    ]
    made += [Account("staff", f"staff{n}@national.example", f"Staff {n}") for n in range(2, 9)]
    made += [
        Account("dermatologist", f"dr{n:02d}@national.example", f"Dr {FIRST[n % len(FIRST)]} {LAST[n % len(LAST)]} {n}")
        for n in range(1, DERMATOLOGISTS + 1)
    ]
    return made


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
    """The next free id of each table (the loader sets the sequences afterwards)."""

    def __init__(self, start: dict[str, int]) -> None:
        self.next = dict(start)

    def take(self, table: str) -> int:
        value = self.next[table]
        self.next[table] = value + 1
        return value


class Story:
    """One request's history, played out from its age; appends its rows to a batch."""

    def __init__(self, rng: random.Random, ids: Ids, rows: Rows, now: datetime, dermatologists: list[int],
                 team_email: str, references: set[str], key_format: str) -> None:  # fmt: skip
        self.rng, self.ids, self.rows, self.now = rng, ids, rows, now
        self.dermatologists, self.team_email, self.references = dermatologists, team_email, references
        self.key_format = key_format

    def reference(self) -> str:
        while True:
            candidate = "DRM-" + "".join(self.rng.choices(REFERENCE_ALPHABET, k=6))
            if candidate not in self.references:
                self.references.add(candidate)
                return candidate

    def write(self, number: int) -> None:
        rng, now = self.rng, self.now
        request_id = self.ids.take("consultation_requests")
        created = now - timedelta(hours=number * 24 / RATE_PER_DAY + rng.uniform(0, 0.08))
        age = (now - created) / HOUR
        reference = self.reference()
        email = f"patient.{number}@example.com"
        language = "lt" if rng.random() < 0.8 else "en"
        derm = rng.choice(self.dermatologists)
        reply_after = rng.uniform(1, 23) if rng.random() < 0.92 else rng.uniform(24, 40)
        r = {
            "status": "submitted", "claimed_by_id": None, "claimed_at": None, "first_response_at": None,
            "answered_at": None, "closed_at": None, "updated_at": created, "response_round": 1,
            "clock_started_at": created, "due_at": created + 24 * HOUR,
        }  # fmt: skip
        clocks: list[list] = [[1, created, created + 24 * HOUR, None, None]]
        self._link(request_id, created)
        self._email(email, "request_received", language, reference, f"received:{request_id}", request_id, created)
        self._email(
            self.team_email, "staff_new_request", "en", reference, f"new:{request_id}:team", request_id, created
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
        self._request_row(request_id, reference, number, email, language, created, r)
        for round_number, started, due, stopped, stopped_by in clocks:
            self.rows.add("response_clocks", (self.ids.take("response_clocks"), request_id, round_number, started, due,
                                              stopped, stopped_by))  # fmt: skip

    def _replied(self, request_id, reference, email, language, derm, created, age, reply_after, r, clocks) -> None:
        rng = self.rng
        replied = created + reply_after * HOUR
        self._audit(replied - 0.2 * HOUR, derm, "viewed", request_id)
        withdrawn = rng.random() < 0.03
        if withdrawn:
            r.update(status="withdrawn", closed_at=replied, updated_at=replied, due_at=None, clock_started_at=None)
            return
        asked = rng.random() < 0.05
        clock = clocks[-1]
        if asked:
            self._message(request_id, "question", derm, replied, body=QUESTION)
            self._patient_email(request_id, reference, email, language, replied)
            clock[3], clock[4] = replied, derm
            r.update(status="awaiting_patient", first_response_at=replied, updated_at=replied, due_at=None,
                     clock_started_at=None)  # fmt: skip
            back = replied + rng.uniform(2, 72) * HOUR
            if back > self.now:
                if (self.now - replied) > 14 * DAY:
                    r.update(status="closed", closed_at=replied + 14 * DAY, updated_at=replied + 14 * DAY)
                return
            message = self._message(request_id, "patient_reply", None, back, body=REPLY)
            self._photo(request_id, message, back)
            self._email(self.team_email, "patient_replied", "en", reference, f"patient-replied:{message}:team",
                        request_id, back)  # fmt: skip
            clocks.append([2, back, back + 24 * HOUR, None, None])
            r.update(status="in_review", response_round=2, updated_at=back, clock_started_at=back,
                     due_at=back + 24 * HOUR)  # fmt: skip
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

    def _request_row(self, request_id, reference, number, email, language, created, r) -> None:
        rng = self.rng
        self.rows.add(
            "consultation_requests",
            (
                request_id, reference, self.key_format.format(number), r["status"], language,
                f"{rng.choice(FIRST)} {rng.choice(LAST)}", email,
                f"+370 6{rng.randrange(10_000_000):07d}" if rng.random() < 0.7 else None,
                date(rng.randint(1940, 2010), rng.randint(1, 12), rng.randint(1, 28)),
                rng.choice(("female", "male", "other")), rng.choice(SLUGS) if rng.random() < 0.9 else None,
                sorted(rng.sample(BODY_SITES, rng.randint(1, 3))), rng.choice(DURATIONS),
                sorted(rng.sample(SYMPTOMS, rng.randint(1, 3))), DESCRIPTION,
                rng.choice((None, "None", "Cetirizine 10 mg when itchy")),
                rng.choice((None, "None known", "Penicillin")),
                [], None, created, created, CONSENT_VERSION, created, r["updated_at"], r["clock_started_at"],
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
        photo_id = self.ids.take("photos")
        self.rows.add("photos", (photo_id, request_id, message_id, f"n{photo_id:09d}.jpg", f"n{photo_id:09d}-t.jpg",
                                 2048, 1536, 612_345, f"{photo_id:064x}", at))  # fmt: skip

    def _link(self, request_id: int, at: datetime) -> None:
        link_id = self.ids.take("patient_links")
        token_hash = hashlib.sha256(f"national-link-{link_id}".encode()).hexdigest()
        self.rows.add("patient_links", (link_id, request_id, token_hash, at))

    def _patient_email(self, request_id, reference, email, language, at) -> None:
        self._link(request_id, at)
        key = f"replied:{request_id}:{at.timestamp():.0f}"
        self._email(email, "patient_reply_ready", language, reference, key, request_id, at)

    def _email(self, recipient, template, language, reference, key, request_id, at) -> None:
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


# --- Writing ---------------------------------------------------------------------------------------


def _password_hash(password: str) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def _start_ids(connection: sa.Connection) -> dict[str, int]:
    return {
        table: int(connection.execute(sa.text(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")).scalar_one())
        for table in ORDER
    }


def _ensure_accounts(connection: sa.Connection, password: str, now: datetime) -> dict[str, int]:
    """The accounts by email (created when missing); one argon2 hash for all of them."""
    existing = dict(connection.execute(sa.text("SELECT email, id FROM users")).all())
    missing = [account for account in accounts() if account.email not in existing]
    if missing:
        hashed = _password_hash(password)
        connection.execute(
            sa.text(
                "INSERT INTO users (email, name, role, password_hash, active, created_at, failed_logins, "
                "session_version, language) VALUES (:email, :name, :role, :hash, :active, :at, 0, 1, 'en')"
            ),
            [
                {"email": a.email, "name": a.name, "role": a.role, "hash": hashed, "active": True, "at": now}
                for a in missing
            ],
        )
        existing = dict(connection.execute(sa.text("SELECT email, id FROM users")).all())
    return existing


def _batches(numbers: range, now: datetime, ids: Ids, dermatologists: list[int], team: str, references: set[str],
             key_format: str) -> Iterator[Rows]:  # fmt: skip
    rng = random.Random(20261130)
    for start in range(numbers.start, numbers.stop, BATCH):
        rows = Rows()
        story = Story(rng, ids, rows, now, dermatologists, team, references, key_format)
        for number in range(start, min(start + BATCH, numbers.stop)):
            story.write(number)
        yield rows


def _copy(cursor, table: str, rows: list[tuple]) -> None:
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
    metadata_table = _tables()[table]
    columns = COLUMNS[table]
    connection.execute(metadata_table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])


def _tables() -> dict[str, sa.Table]:
    from app import models  # noqa: F401  (the tables are defined by the models)
    from app.extensions import db

    return dict(db.metadata.tables)


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


def load(
    url: str,
    total: int,
    now: datetime | None = None,
    password: str = PASSWORD,
    *,
    dermatologists: list[int] | None = None,
    key_format: str = "national-{:07d}",
    first_number: int = 0,
) -> dict:
    """Write `total` requests (and everything about them) into the database at `url`; returns what it made.

    By default the requests belong to this module's accounts (created when missing, all with
    `password`). `flask demo seed --requests N` can write its bulk rows with the same code: its
    dermatologists' ids, its submission keys ("demo-{:06d}") and numbers after its hand-written
    examples (a request's number sets its age: RATE_PER_DAY a day, going back from `now`).
    """
    now = now or datetime.now(UTC)
    engine = sa.create_engine(url)
    started = time.perf_counter()
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as connection:
        users = _ensure_accounts(connection, password, now) if dermatologists is None else {}
        references = set(connection.execute(sa.text("SELECT reference FROM consultation_requests")).scalars())
        ids = Ids(_start_ids(connection))
        rebuild: list[str] = []
        if postgres:
            # The rows are made consistent, so the foreign-key triggers can sleep; and building each
            # index once after the load is many times faster than updating it row by row.
            try:
                with connection.begin_nested():  # needs a superuser; without one, the triggers simply run
                    connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
            except sa.exc.DBAPIError:
                pass
            connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
            connection.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
            rebuild = _drop_secondary_indexes(connection)
        if dermatologists is None:
            dermatologists = [users[a.email] for a in accounts() if a.role == "dermatologist"]
        counts: dict[str, int] = dict.fromkeys(ORDER, 0)
        numbers = range(first_number, first_number + total)
        for rows in _batches(numbers, now, ids, dermatologists, "team@national.example", references, key_format):
            for table in ORDER:
                batch = rows.tables.get(table, [])
                if not batch:
                    continue
                if postgres:
                    _copy(connection.connection.cursor(), table, batch)
                else:
                    _insert(connection, table, batch)
                counts[table] += len(batch)
        for statement in rebuild:
            connection.exec_driver_sql(statement)
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS bench_history (made_at VARCHAR(40), requests INTEGER)")
        connection.exec_driver_sql("DELETE FROM bench_history")
        connection.execute(
            sa.text("INSERT INTO bench_history (made_at, requests) VALUES (:at, :n)"),
            {"at": now.isoformat(), "n": total},
        )
        if postgres:
            for table in ORDER:
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
                )
    if postgres:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    return {"seconds": time.perf_counter() - started, "rows": counts, "users": users, "now": now}


def history(url: str) -> tuple[datetime, int] | None:
    """When the history in the database at `url` was made, and how many requests it holds; None if not made here."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(sa.text("SELECT made_at, requests FROM bench_history")).first()
    except sa.exc.SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    return (datetime.fromisoformat(row[0]), int(row[1])) if row else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.national", description=__doc__.splitlines()[0])
    parser.add_argument("database_url")
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--first-number", type=int, default=0, help="number of the newest request (sets its age)")
    parser.add_argument("--accounts-password", default=PASSWORD)
    args = parser.parse_args(argv)
    made = load(args.database_url, args.requests, password=args.accounts_password, first_number=args.first_number)
    rows = ", ".join(f"{table} {count:,}" for table, count in made["rows"].items())
    print(f"{args.requests:,} requests in {made['seconds']:.0f} s: {rows}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
