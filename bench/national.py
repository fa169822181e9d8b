"""A national service's history for the benchmarks: the loader (app/demo/history.py: COPY on
PostgreSQL, batched INSERTs on SQLite) with accounts of its own. A million requests in minutes.

    python -m bench.national DATABASE_URL --requests 1000000 [--first-number N] [--accounts-password PASSWORD]

The schema must exist (`flask db upgrade`). A second load into the same database takes numbers after
the first one's (--first-number), or its submission keys clash and nothing is written.

Besides what the loader writes (see app/demo/history.py: requests, rounds, messages, links, audit
rows, photo rows without files and the outbox), it makes ACCOUNTS: admins, staff members and
dermatologists (DERMATOLOGISTS of them), with one password hash shared by all (argon2, computed once),
and notes when and how large the history was made (`history`), so a benchmark can reuse it.

Rows are made newest first from one seeded random stream, so a database of 10,000 requests holds
exactly the newest 10,000 of a database of 1,000,000 made with the same `now`.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from app.demo import history as loader

PASSWORD = "national-bench-password"
# Who the benchmarks sign in as.
SIGN_IN = {"dermatologist": "dr01@national.example", "staff": "staff@national.example"}
DERMATOLOGISTS = 40
FIRST, LAST = loader.FIRST, loader.LAST


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


def _password_hash(password: str) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


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
    `password`); `dermatologists` (ids) gives them to others instead. A request's number sets its
    age: RATE_PER_DAY a day, going back from `now`.
    """
    now = now or datetime.now(UTC)
    engine = sa.create_engine(url)
    started = time.perf_counter()
    with engine.begin() as connection:
        users = _ensure_accounts(connection, password, now) if dermatologists is None else {}
        if dermatologists is None:
            dermatologists = [users[a.email] for a in accounts() if a.role == "dermatologist"]
        plan = loader.Plan(now=now, dermatologists=dermatologists, key_format=key_format)
        made = loader.load(connection, range(first_number, first_number + total), plan)
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS bench_history (made_at VARCHAR(40), requests INTEGER)")
        connection.exec_driver_sql("DELETE FROM bench_history")
        connection.execute(
            sa.text("INSERT INTO bench_history (made_at, requests) VALUES (:at, :n)"),
            {"at": now.isoformat(), "n": total},
        )
    loader.analyse(engine)
    engine.dispose()
    return {"seconds": time.perf_counter() - started, "rows": made.rows, "users": users, "now": now}


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
