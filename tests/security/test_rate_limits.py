"""Rate limits (switched on here, as in production) on sign-in, submitting, 'lost your link?' and
private-link lookups; in memory by default, and in Redis through RATELIMIT_STORAGE_URI."""

from __future__ import annotations

import random

import pytest

import config as app_config
from tests.factories import make_consultation, submit_request
from tests.security.attack import app_with, assert_refused, nothing_stored

REDIS_URI = "redis://127.0.0.1:6379/15"


def too_many(response) -> None:
    text = assert_refused(response, 429)
    assert "Too many attempts" in text
    assert int(response.headers["Retry-After"]) > 0


def test_production_has_rate_limits_on(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "x")
    settings = app_config.load("production")
    assert settings["RATELIMIT_ENABLED"] is True
    for name in ("LOGIN_RATE_LIMIT", "SUBMIT_RATE_LIMIT", "RESEND_RATE_LIMIT", "PRIVATE_LINK_RATE_LIMIT"):
        assert " per " in settings[name]


def test_sign_in_attempts_are_limited(tmp_path):
    with app_with(tmp_path, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute") as app:
        client = app.test_client()
        for _ in range(3):
            assert client.post("/login", data={"email": "x@clinic.example", "password": "guess"}).status_code == 200
        too_many(client.post("/login", data={"email": "x@clinic.example", "password": "guess"}))
        assert client.get("/login").status_code == 200  # reading the page stays possible


def test_submits_are_limited_and_the_refused_one_keeps_nothing(tmp_path):
    with app_with(tmp_path, RATELIMIT_ENABLED=True, SUBMIT_RATE_LIMIT="2 per hour") as app:
        client = app.test_client()
        for _ in range(2):
            assert submit_request(client).status_code == 303
        with nothing_stored(app):
            too_many(submit_request(client))


def test_link_resends_are_limited(tmp_path):
    with app_with(tmp_path, RATELIMIT_ENABLED=True, RESEND_RATE_LIMIT="2 per hour") as app:
        make_consultation(email="ona@example.com")
        client = app.test_client()
        for _ in range(2):
            assert client.post("/consultation/link", data={"email": "ona@example.com"}).status_code == 303
        with nothing_stored(app):
            too_many(client.post("/consultation/link", data={"email": "ona@example.com"}))


def test_private_link_guessing_is_limited(tmp_path):
    with app_with(tmp_path, RATELIMIT_ENABLED=True, PRIVATE_LINK_RATE_LIMIT="5 per minute") as app:
        _, token = make_consultation()
        client = app.test_client()
        codes = [client.get(f"/c/guess-{n:040d}").status_code for n in range(5)]
        assert codes == [404] * 5
        too_many(client.get(f"/c/{token}"))  # even the right link, once the address has been guessing
        other_address = {"REMOTE_ADDR": "198.51.100.23"}
        assert client.get(f"/c/{token}", environ_base=other_address).status_code == 200


def test_every_private_link_route_draws_on_one_budget(tmp_path):
    """Guessing through photo or export URLs gets no more tries than through the page itself."""
    with app_with(tmp_path, RATELIMIT_ENABLED=True, PRIVATE_LINK_RATE_LIMIT="4 per minute") as app:
        _, token = make_consultation()
        client = app.test_client()
        guesses = [
            f"/c/guess-{0:040d}",
            f"/c/guess-{1:040d}/photos/{'a' * 32}.jpg",
            f"/c/guess-{2:040d}/photos/{'b' * 32}.jpg/thumb",
            f"/c/guess-{3:040d}",
        ]
        assert [client.get(path).status_code for path in guesses] == [404] * 4
        too_many(client.get(f"/c/{token}"))


def _redis_or_skip():
    redis = pytest.importorskip("redis")
    connection = redis.Redis.from_url(REDIS_URI, socket_connect_timeout=1, socket_timeout=2)
    try:
        connection.ping()
    except redis.exceptions.RedisError:
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    return connection


def test_limits_are_shared_through_redis(tmp_path):
    """Several web processes share one count when RATELIMIT_STORAGE_URI points at Redis."""
    connection = _redis_or_skip()
    # A random documentation address keeps this run's counters apart from anyone else's on the database.
    env = {"REMOTE_ADDR": f"192.0.2.{random.randint(1, 254)}"}
    settings = {"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": REDIS_URI, "LOGIN_RATE_LIMIT": "3 per minute"}
    attempt = {"email": "x@clinic.example", "password": "wrong"}
    try:
        with app_with(tmp_path / "first", **settings) as first:
            for _ in range(3):
                assert first.test_client().post("/login", data=attempt, environ_base=env).status_code == 200
        assert list(connection.scan_iter(match=f"*{env['REMOTE_ADDR']}*")), "the counters are in Redis"
        # Another process (a fresh app, nothing in its memory) sees the same count.
        with app_with(tmp_path / "second", **settings) as second:
            too_many(second.test_client().post("/login", data=attempt, environ_base=env))
    finally:
        for key in connection.scan_iter(match=f"*{env['REMOTE_ADDR']}*"):
            connection.delete(key)
