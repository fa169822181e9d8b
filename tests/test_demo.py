"""`flask demo seed`: works on an empty database, is idempotent, --requests N makes N, --reset starts over."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from urllib.parse import urlsplit

from PIL import Image, ImageChops, ImageFilter, ImageStat
from sqlalchemy import func, select

from app.consultations import clock as sla
from app.consultations import staff_actions
from app.demo.accounts import DEMO_ACCOUNTS
from app.demo.cases import DEMO_CASES, SHOWCASE_LINKS, Story
from app.demo.photos import skin_photo
from app.demo.store import submission_key
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
    SUBMITTED,
    AuditEvent,
    ConsultationRequest,
    Message,
    OutboundEmail,
    PatientLink,
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


SEEDED = (User, ConsultationRequest, Photo, Message, ResponseClock, PatientLink, AuditEvent, OutboundEmail)


def test_seed_twice_changes_nothing(app, runner):
    first = seed(runner)
    before = [count(model) for model in SEEDED]
    files = len(photo_storage().keys())

    output = seed(runner)

    assert [count(model) for model in SEEDED] == before
    assert len(photo_storage().keys()) == files
    assert "Created by this run: 0" in output
    assert private_links(output) == private_links(first)


# What the real flow leaves after each story: the status, and the audit rows in order, each by the
# dermatologist holding the request or by the patient.
REAL_FLOW = {
    Story.NEW: (SUBMITTED, []),
    Story.CLAIMED: (IN_REVIEW, [("claimed", "holder")]),
    Story.ASKED: (AWAITING_PATIENT, [("claimed", "holder"), ("asked", "holder")]),
    Story.REPLIED: (IN_REVIEW, [("claimed", "holder"), ("asked", "holder"), ("patient_replied", "patient")]),
    Story.ANSWERED: (ANSWERED, [("claimed", "holder"), ("answered", "holder")]),
    Story.CLOSED: (CLOSED, [("claimed", "holder"), ("answered", "holder"), ("resolved", "patient")]),
}


def test_the_examples_leave_what_the_real_actions_leave(app, runner):
    seed(runner)

    dermatologists = list(
        db.session.execute(select(User).where(User.role == "dermatologist").order_by(User.id)).scalars()
    )
    target = timedelta(hours=policies().response.target_hours)
    outcomes = set()
    for number, case in enumerate(DEMO_CASES, start=1):
        request = db.session.execute(
            select(ConsultationRequest).where(ConsultationRequest.submission_key == submission_key(number))
        ).scalar_one()
        status, steps = REAL_FLOW[case.story]
        holder = dermatologists[case.holder or 0]
        events = list(
            db.session.execute(
                select(AuditEvent).where(AuditEvent.request_id == request.id).order_by(AuditEvent.id)
            ).scalars()
        )
        assert request.status == status, case
        by = {"holder": ("user", holder.id), "patient": ("patient", None)}
        assert [(e.action, e.actor_kind, e.actor_user_id) for e in events] == [(a, *by[who]) for a, who in steps]
        # Dated when each step happened, not when the seed ran.
        sent = {message.kind: message.created_at for message in request.messages}  # one of each kind at most
        when = {
            "claimed": request.claimed_at,
            "asked": sent.get(QUESTION),
            "answered": sent.get(ANSWER),
            "patient_replied": sent.get(PATIENT_REPLY),
            "resolved": request.closed_at,
        }
        assert [e.at for e in events] == [when[e.action] for e in events], case
        assert request.updated_at == (events[-1].at if events else request.created_at)
        # The first round is met when the dermatologist's first message came within the target.
        first_round = min(request.clocks, key=lambda clock: clock.round)
        if case.reply_after is not None:
            outcome = sla.round_outcome(first_round.due_at, first_round.stopped_at)
            assert outcome == (sla.MET if timedelta(hours=case.reply_after) < target else sla.MISSED), case
            outcomes.add(outcome)
    assert outcomes == {sla.MET, sla.MISSED}, "answers on time and one late"
    assert_clocks_match_the_requests(all_requests())
    assert count(OutboundEmail) == 0, "nobody is emailed about demo data"


def test_an_example_that_fails_partway_is_removed_and_made_afresh_next_time(app, runner, monkeypatch):
    def refused(*args, **kwargs):
        raise RuntimeError("the answer could not be saved")

    monkeypatch.setattr(staff_actions, "answer", refused)
    assert runner.invoke(args=["demo", "seed"]).exit_code != 0

    first_answered = next(n for n, case in enumerate(DEMO_CASES, start=1) if case.story == Story.ANSWERED)
    kept = DEMO_CASES[: first_answered - 1]
    assert [r.submission_key for r in all_requests()] == [submission_key(n) for n in range(1, first_answered)]
    assert len(photo_storage().keys()) == 2 * sum(case.photos for case in kept), "its photos and thumbnails are gone"
    monkeypatch.undo()
    seed(runner)
    assert count(ConsultationRequest) == len(DEMO_CASES)
    assert_clocks_match_the_requests(all_requests())


def private_links(output: str) -> list[str]:
    return re.findall(r"https?://\S+/c/\S+", output)


def test_the_summary_shows_working_private_links(app, runner, client):
    links = private_links(seed(runner))

    assert len(links) == len(SHOWCASE_LINKS)
    for link in links:
        assert link.startswith(app.config["PUBLIC_BASE_URL"])
        assert client.get(urlsplit(link).path).status_code == 200


def test_requests_n_makes_exactly_n_requests_and_keeps_them_on_the_next_run(app, runner):
    total = len(DEMO_CASES) + 150  # the history goes back about half a day (tests/test_demo_history.py)

    seed(runner, "--requests", str(total))
    seed(runner, "--requests", str(total))
    seed(runner)  # the default number is smaller: nothing is removed

    requests = all_requests()
    assert len(requests) == total
    assert len({r.reference for r in requests}) == total
    bulk = [r for r in requests if int(r.submission_key.removeprefix("demo-")) > len(DEMO_CASES)]
    assert len(bulk) == 150 and all(not r.photos for r in bulk), "history rows have no photos"
    assert {r.status for r in bulk} >= {SUBMITTED, IN_REVIEW, ANSWERED}
    examples = [r for r in requests if r not in bulk]
    assert_clocks_match_the_requests(examples)


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
