"""Saved replies: placeholders filled safely, who keeps which replies, the order they are offered in,
filling the answer without JavaScript, usage counted when an answer using one is sent, and the audit."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine
from sqlalchemy import select

from app.consultations import saved_replies
from app.consultations.saved_replies import ReplyContent, ReplyText, SavedReplyRefused, fill
from app.extensions import db
from app.models import AuditEvent, SavedReply
from tests.factories import login_as, make_consultation, make_user

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
VALUES = {"first_name": "Ona", "condition": "Aknė", "follow_up_date": "2026 m. gruodžio 14 d."}


@pytest.fixture(autouse=True)
def pinned_clock():
    with time_machine.travel(NOW, tick=False):
        yield


# --- Placeholders: unit tests -----------------------------------------------------------------------


def test_known_placeholders_are_filled():
    text = "Dear {first_name}, this looks like {condition}. Write to us by {follow_up_date}."
    assert fill(text, VALUES) == "Dear Ona, this looks like Aknė. Write to us by 2026 m. gruodžio 14 d.."


def test_unknown_or_unfilled_placeholders_stay_visible():
    assert fill("Hello {name}, see {condition}", {"first_name": "Ona"}) == "Hello {name}, see {condition}"
    assert fill("{ first_name } {First_Name} {{first_name}}", VALUES) == "{ first_name } {First_Name} {Ona}"


def test_no_format_string_injection():
    # Format-string tricks in a reply, and braces in a value, come out exactly as written.
    hostile = "{first_name.__class__} {0} {condition!r} {follow_up_date:>20} %(first_name)s {__import__}"
    assert fill(hostile, VALUES) == hostile
    assert fill("Dear {first_name}", {"first_name": "{condition}"}) == "Dear {condition}"
    assert fill("Dear {first_name}", {"first_name": r"\1 \g<0>"}) == r"Dear \1 \g<0>"


def test_first_name_is_the_first_word():
    assert saved_replies.first_name("  Ona   Petraitienė ") == "Ona"
    assert saved_replies.first_name("") == ""


def test_placeholder_values_are_in_the_patients_language(app):
    consultation, _ = make_consultation(patient_name="Ona Petraitienė", language="lt")
    values = saved_replies.placeholder_values(consultation, "Aknė", date(2026, 12, 14))
    assert values == {"first_name": "Ona", "condition": "Aknė", "follow_up_date": "2026 m. gruodžio 14 d."}


# --- Keeping replies --------------------------------------------------------------------------------


def content(title="Mild acne", language="en", condition="acne", **text) -> ReplyContent:
    return ReplyContent(
        title=title,
        language=language,
        condition_slug=condition,
        text=ReplyText(**({"assessment": "Dear {first_name}, this is mild {condition}."} | text)),
    )


def test_dermatologists_keep_their_own_and_admins_the_clinic_wide_ones(app):
    derm, other, admin = make_user("dermatologist"), make_user("dermatologist"), make_user("admin")
    own = saved_replies.create(derm, content(), ("en", "lt"))
    shared = saved_replies.create(admin, content("Eczema basics", condition="hand-eczema"), ("en", "lt"))
    assert own.owner_id == derm.id and shared.clinic_wide
    assert saved_replies.manageable(derm) == [own]
    assert saved_replies.manageable(admin) == [shared]
    assert {r.id for r in saved_replies.usable(derm)} == {own.id, shared.id}
    assert [r.id for r in saved_replies.usable(other)] == [shared.id]
    with pytest.raises(SavedReplyRefused):
        saved_replies.change(shared, derm, content("Mine now"), ("en",))
    with pytest.raises(SavedReplyRefused):
        saved_replies.delete(own, other)
    with pytest.raises(SavedReplyRefused):
        saved_replies.create(make_user("staff"), content(), ("en",))
    db.session.rollback()
    actions = db.session.execute(select(AuditEvent.action, AuditEvent.detail)).all()
    assert ("saved_reply_created", f"saved reply {own.id}") in actions
    assert ("saved_reply_created", f"saved reply {shared.id}") in actions


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (content(title="  "), "title"),
        (content(language="fr"), "language"),
        (ReplyContent("Empty", "en", None, ReplyText()), "at least one"),
        (content(assessment="x" * 5001), "at most"),
    ],
)
def test_a_reply_must_make_sense(app, bad, message):
    with pytest.raises(SavedReplyRefused, match=message):
        saved_replies.create(make_user("dermatologist"), bad, ("en", "lt"))
    assert db.session.execute(select(SavedReply)).first() is None


def test_replies_for_the_requests_condition_and_language_come_first(app):
    derm = make_user("dermatologist")
    made = {
        title: saved_replies.create(derm, content(title, language, condition), ("en", "lt"))
        for title, language, condition in [
            ("en other", "en", "psoriasis"),
            ("lt general", "lt", None),
            ("lt other", "lt", "psoriasis"),
            ("en acne", "en", "acne"),
            ("lt acne", "lt", "acne"),
        ]
    }
    ordered = [r.title for r in saved_replies.for_request(list(made.values()), "acne", "lt")]
    assert ordered == ["lt acne", "lt general", "en acne", "lt other", "en other"]
    assert saved_replies.is_suggested(made["lt general"], "acne", "lt")
    assert not saved_replies.is_suggested(made["en acne"], "acne", "lt")


# --- On the request page ----------------------------------------------------------------------------


def claimed_request(derm, **fields):
    consultation, _token = make_consultation(claimed_by=derm, status="in_review", **fields)
    return consultation


def test_choosing_a_reply_without_javascript_fills_the_answer(app, client):
    derm = make_user("dermatologist")
    login_as(client, derm)
    consultation = claimed_request(derm, patient_name="Ona Petraitienė", language="lt", condition_slug="acne")
    reply = saved_replies.create(
        derm,
        content(
            "Lengva aknė",
            "lt",
            "acne",
            assessment="Ona? {first_name}: {condition} <script>alert(1)</script>",
            follow_up="Parašykite iki {follow_up_date}. {unknown}",
        ),
        ("en", "lt"),
    )
    page = client.get(f"/queue/{consultation.reference}?reply={reply.id}").get_data(as_text=True)
    assert "Ona? Ona: Spuogai (aknė) &lt;script&gt;alert(1)&lt;/script&gt;</textarea>" in page
    assert "Parašykite iki 2026 m. gruodžio 14 d.. {unknown}</textarea>" in page  # 14 days after today
    assert f'name="saved_reply_id" type="hidden" value="{reply.id}"' in page
    assert "<script>alert(1)" not in page


def test_someone_elses_reply_is_not_offered_or_filled(app, client):
    derm, other = make_user("dermatologist"), make_user("dermatologist")
    login_as(client, derm)
    consultation = claimed_request(derm)
    private = saved_replies.create(other, content("Not yours", assessment="secret text"), ("en",))
    page = client.get(f"/queue/{consultation.reference}?reply={private.id}").get_data(as_text=True)
    assert "secret text" not in page and "Not yours" not in page


def test_usage_is_counted_when_the_answer_is_sent(app, client):
    derm = make_user("dermatologist")
    login_as(client, derm)
    consultation = claimed_request(derm)
    reply = saved_replies.create(derm, content(), ("en",))
    someone_elses = saved_replies.create(make_user("dermatologist"), content("Other"), ("en",))
    response = client.post(
        f"/queue/{consultation.reference}/answer",
        data={"assessment": "Edited text.", "treatment": "Cream.", "saved_reply_id": str(reply.id)},
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(SavedReply, reply.id).usage_count == 1
    used = db.session.execute(select(AuditEvent).where(AuditEvent.action == "saved_reply_used")).scalar_one()
    assert used.request_id == consultation.id and used.detail == f"saved reply {reply.id}"

    # A refused answer counts nothing; a reply the author may not use is never counted.
    second = claimed_request(derm)
    client.post(
        f"/queue/{second.reference}/answer",
        data={"assessment": "", "treatment": "", "saved_reply_id": str(reply.id)},
    )
    client.post(
        f"/queue/{second.reference}/answer",
        data={"assessment": "A.", "treatment": "B.", "saved_reply_id": str(someone_elses.id)},
    )
    db.session.expire_all()
    assert db.session.get(SavedReply, reply.id).usage_count == 1
    assert db.session.get(SavedReply, someone_elses.id).usage_count == 0


def test_answer_and_open_the_next_unclaimed_request(app, client):
    derm = make_user("dermatologist")
    login_as(client, derm)
    consultation = claimed_request(derm)
    waiting, _ = make_consultation()
    response = client.post(
        f"/queue/{consultation.reference}/answer", data={"assessment": "A.", "treatment": "B.", "then": "next"}
    )
    assert response.headers["Location"] == f"/queue/{waiting.reference}"
    last = claimed_request(derm)
    client.post(f"/queue/{waiting.reference}/claim")
    response = client.post(
        f"/queue/{last.reference}/answer", data={"assessment": "A.", "treatment": "B.", "then": "next"}
    )
    assert response.headers["Location"] == "/queue/"


# --- /queue/replies/ --------------------------------------------------------------------------------


def test_managing_replies_in_the_browser(app, client):
    derm = make_user("dermatologist")
    login_as(client, derm)
    assert client.get("/queue/replies/").status_code == 200
    form = {
        "title": "Mild acne",
        "language": "en",
        "condition_slug": "acne",
        "assessment": "Dear {first_name}, this is mild {condition}.",
        "treatment": "",
        "prescription_note": "",
        "follow_up": "",
    }
    assert client.post("/queue/replies/new", data=form).status_code == 302
    reply = db.session.execute(select(SavedReply)).scalar_one()
    assert reply.owner_id == derm.id and reply.condition_slug == "acne"
    listing = client.get("/queue/replies/").get_data(as_text=True)
    assert "Mild acne" in listing

    # A bad form keeps what was typed.
    response = client.post(f"/queue/replies/{reply.id}", data=form | {"title": "", "treatment": "Kept text"})
    assert response.status_code == 422 and "Kept text" in response.get_data(as_text=True)
    assert client.post(f"/queue/replies/{reply.id}", data=form | {"title": "Acne, mild"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(SavedReply, reply.id).title == "Acne, mild"

    # Another dermatologist cannot see or change it; staff have no saved replies.
    client.post("/logout")
    login_as(client, make_user("dermatologist"))
    assert client.get(f"/queue/replies/{reply.id}").status_code == 404
    assert client.post(f"/queue/replies/{reply.id}/delete").status_code == 404
    client.post("/logout")
    login_as(client, make_user("staff"))
    assert client.get("/queue/replies/").status_code == 403

    client.post("/logout")
    login_as(client, derm)
    assert client.post(f"/queue/replies/{reply.id}/delete").status_code == 302
    assert db.session.execute(select(SavedReply)).first() is None
    audited = db.session.execute(select(AuditEvent.action).where(AuditEvent.detail == f"saved reply {reply.id}"))
    assert set(audited.scalars()) == {"saved_reply_created", "saved_reply_updated", "saved_reply_deleted"}
