"""`flask demo seed`: works on an empty database, is idempotent, --requests N makes N, --reset starts over."""

from __future__ import annotations

import io

from PIL import Image, ImageChops, ImageFilter, ImageStat
from sqlalchemy import func, select

from app.cli.demo import DEMO_ACCOUNTS, DEMO_CASES, skin_photo
from app.consultations import clock as sla
from app.extensions import db
from app.models import (
    ANSWER,
    ANSWERED,
    AWAITING_PATIENT,
    CLOSED,
    IN_REVIEW,
    OPEN_STATUSES,
    QUESTION,
    SUBMITTED,
    ConsultationRequest,
    Message,
    Photo,
    ResponseClock,
    User,
)
from app.runtime import policies
from app.storage import photo_storage
from app.timeutil import utcnow


def seed(runner, *args: str):
    result = runner.invoke(args=["demo", "seed", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def all_requests() -> list[ConsultationRequest]:
    return list(db.session.execute(select(ConsultationRequest).order_by(ConsultationRequest.id)).scalars())


def sign_in(client, email: str, password: str):
    return client.post("/login", data={"email": email, "password": password})


def assert_clocks_match_the_requests(requests: list[ConsultationRequest]) -> None:
    """What app.sla's start_clock/stop_clock/next_round leave: one clock per round, the last one
    running exactly while a reply is owed, and the request's due_at mirrors it."""
    dermatologists = set(db.session.execute(select(User.id).where(User.role == "dermatologist")).scalars())
    for request in requests:
        clocks = sorted(request.clocks, key=lambda clock: clock.round)
        assert [clock.round for clock in clocks] == list(range(1, request.response_round + 1)), request
        current = clocks[-1]
        owed = request.status in OPEN_STATUSES
        assert (current.stopped_at is None) == owed, request
        assert request.due_at == (current.due_at if owed else None), request
        for clock in clocks:
            assert clock.due_at == sla.due_time(clock.started_at, policies().response)
            if clock.stopped_at is not None:
                assert clock.stopped_by_id in dermatologists
                assert clock.started_at <= clock.stopped_at
        assert request.first_response_at == clocks[0].stopped_at
        if request.status in (ANSWERED, CLOSED):
            assert ANSWER in {message.kind for message in request.messages}
            assert request.answered_at is not None
        if request.status == AWAITING_PATIENT:
            assert request.messages[-1].kind == QUESTION
        if request.status != SUBMITTED:
            assert request.claimed_by_id in dermatologists


def test_seed_on_an_empty_database_makes_accounts_one_can_sign_in_with(app, runner, client):
    output = seed(runner)

    assert f"{app.config['PUBLIC_BASE_URL']}/login" in output
    for account in DEMO_ACCOUNTS:
        assert account.email in output and account.password in output
    roles = sorted(db.session.execute(select(User.role)).scalars())
    assert roles == ["admin", "dermatologist", "dermatologist", "staff"]
    dermatologist = next(a for a in DEMO_ACCOUNTS if a.role == "dermatologist")
    response = sign_in(client, dermatologist.email, dermatologist.password)
    assert response.status_code == 302 and "/login" not in response.headers["Location"]


def test_seed_makes_a_request_in_every_state_the_queue_shows(app, runner):
    seed(runner)

    requests = all_requests()
    assert len(requests) == len(DEMO_CASES)
    assert {r.status for r in requests} >= {SUBMITTED, IN_REVIEW, AWAITING_PATIENT, ANSWERED, CLOSED}
    now = utcnow()
    states = {sla.clock_state(r.due_at, now, policies().response) for r in requests if r.status in OPEN_STATUSES}
    assert states == {sla.ON_TRACK, sla.AT_RISK, sla.OVERDUE}
    assert any(r.status == SUBMITTED for r in requests) and any(r.claimed_by_id for r in requests if r.is_open)
    assert any(r.response_round == 2 for r in requests), "a patient's reply starts a second round"
    assert len({r.condition_slug for r in requests}) >= 10
    assert_clocks_match_the_requests(requests)


def test_seeded_photos_went_through_the_pipeline_and_are_stored(app, runner):
    seed(runner)

    storage = photo_storage()
    photos = list(db.session.execute(select(Photo)).scalars())
    per_request = {r.id: len(r.photos) for r in all_requests()}
    assert set(per_request.values()) == {1, 2}
    for photo in photos:
        with Image.open(io.BytesIO(storage.read(photo.storage_key))) as image:
            assert image.format == "JPEG" and image.size == (photo.width, photo.height)
            assert not image.getexif() and "icc_profile" not in image.info
        assert storage.exists(photo.thumbnail_key)
        assert photo.bytes == len(storage.read(photo.storage_key))


def test_seed_twice_changes_nothing(app, runner):
    seed(runner)
    before = [count(model) for model in (User, ConsultationRequest, Photo, Message, ResponseClock)]
    files = len(photo_storage().keys())

    output = seed(runner)

    assert [count(model) for model in (User, ConsultationRequest, Photo, Message, ResponseClock)] == before
    assert len(photo_storage().keys()) == files
    assert "Created by this run: 0" in output


def test_requests_n_makes_exactly_n_requests_and_keeps_them_on_the_next_run(app, runner):
    total = len(DEMO_CASES) + 150  # bulk rows go back about 2.5 days: some already closed

    seed(runner, "--requests", str(total))
    seed(runner, "--requests", str(total))
    seed(runner)  # the default number is smaller: nothing is removed

    requests = all_requests()
    assert len(requests) == total
    assert len({r.reference for r in requests}) == total
    bulk = [r for r in requests if int(r.submission_key.removeprefix("demo-")) > len(DEMO_CASES)]
    assert len(bulk) == 150 and all(not r.photos for r in bulk), "bulk rows have no photos"
    assert {r.status for r in bulk} >= {CLOSED, ANSWERED}
    assert_clocks_match_the_requests(requests)


def test_a_small_n_makes_only_the_first_examples(app, runner):
    seed(runner, "--requests", "3")

    assert count(ConsultationRequest) == 3


def test_reset_restores_demo_passwords_and_starts_the_requests_over(app, runner, client):
    seed(runner)
    old_files = set(photo_storage().keys())
    admin = db.session.execute(select(User).where(User.role == "admin")).scalar_one()
    admin.password_hash = "changed"
    db.session.commit()
    assert "(changed; --reset restores)" in seed(runner)

    seed(runner, "--reset")

    assert count(User) == len(DEMO_ACCOUNTS)
    assert count(ConsultationRequest) == len(DEMO_CASES)
    assert not old_files & set(photo_storage().keys()), "the old photo files are gone"
    account = next(a for a in DEMO_ACCOUNTS if a.role == "admin")
    assert sign_in(client, account.email, account.password).status_code == 302


def test_seed_refuses_to_run_in_production(app, runner):
    app.config["CONFIG_NAME"] = "production"

    result = runner.invoke(args=["demo", "seed"])

    assert result.exit_code != 0 and "production" in result.output
    assert count(User) == 0


def test_demo_photos_look_like_skin_with_red_patches_not_noise():
    image = skin_photo(seed=4, size=(320, 240))

    red, green, blue = ImageStat.Stat(image).mean
    assert red > green > blue, "skin tones: more red than green than blue"
    # Red patches: somewhere the gap between red and green is far wider than on most of the skin.
    redness = ImageStat.Stat(ImageChops.subtract(image.getchannel("R"), image.getchannel("G")))
    assert redness.extrema[0][1] - redness.median[0] > 25
    # A photo keeps its contrast when slightly blurred; noise averages away.
    green = image.getchannel("G")
    blurred = green.filter(ImageFilter.GaussianBlur(3))
    assert ImageStat.Stat(blurred).stddev[0] > 0.6 * ImageStat.Stat(green).stddev[0] > 1
