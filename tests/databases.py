"""Apps on a database that several threads (or processes) can share, and a way to run work at once.

The usual `app` fixture uses an in-memory SQLite that every thread shares through one connection,
so races cannot happen there. These helpers use a SQLite file (several connections, as with
several processes), or PostgreSQL when TEST_DATABASE_URL points at it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from app.extensions import db
from tests.conftest import ON_POSTGRES, app_with

DATABASES = [
    "sqlite-file",
    pytest.param("postgresql", marks=pytest.mark.skipif(not ON_POSTGRES, reason="needs TEST_DATABASE_URL")),
]


@contextmanager
def shared_app(kind: str, tmp_path, **overrides) -> Iterator:
    """An app (inside its app context) on a database real concurrent connections can share."""
    if kind == "sqlite-file":
        overrides.setdefault("SQLALCHEMY_DATABASE_URI", f"sqlite:///{tmp_path / 'shared.sqlite'}")
    with app_with(tmp_path, **overrides) as app:
        yield app


def run_together(app, work: Callable[[], object], workers: int = 2) -> list[object]:
    """Run `work` in `workers` threads released at the same moment, each with its own app context
    (so its own database session and connection). Returns the results; re-raises the first error."""
    barrier = threading.Barrier(workers)
    results: list[object] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                result = work()
                with lock:
                    results.append(result)
            except BaseException as error:  # reported to the test below
                with lock:
                    errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, name=f"worker-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    if errors:
        raise errors[0]
    return results
