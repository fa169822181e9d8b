"""The review queue and the request page: views parse a form, call one rule in
app.consultations.staff_actions, commit and redirect (post/redirect/get)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from app.auth.session import roles_required
from app.conditions.library import articles
from app.consultations import letter, photo_views, saved_replies
from app.consultations.lateness import is_late
from app.consultations.rota import duty_board
from app.consultations.staff_actions import (
    CLINICAL_ROLES,
    COORDINATOR_ROLES,
    QUEUE_ROLES,
    ActionRefused,
    Answer,
    LateReasonNeeded,
    add_note,
    allowed_actions,
    answer,
    ask,
    claim,
    reassign,
    release,
)
from app.consultations.states import HELD
from app.extensions import db
from app.intake.forms import BODY_SITES
from app.letters import render as render_letter
from app.models import PATIENT_REPLY, AuditAction, AuditEvent, ConsultationRequest, Message, Photo, SavedReply, User
from app.queue import bp
from app.queue.case import case_facts, earlier_requests
from app.queue.display import (
    condition_title,
    countdown,
    countdown_formats,
    describe_age,
    status_labels,
    warning_hours,
)
from app.queue.forms import ActionForm, AnswerForm, LateReasonFields, NoteForm, QuestionForm, ReassignForm
from app.queue.listing import FILTERS, neighbours, next_unclaimed, normalise_reference, queue_page, tab_counts
from app.runtime import audit, client_address, policies
from app.storage import StorageError, photo_storage
from app.timeutil import utcnow

# 10,000 pages of 25 rows: beyond every queue a clinic will have.
MAX_PAGE = 10_000


def _me() -> User:
    return current_user._get_current_object()


@bp.get("/")
@roles_required(*QUEUE_ROLES)
def index():
    filter_name = request.args.get("filter", "open")
    if filter_name not in FILTERS:
        filter_name = "open"
    search = request.args.get("q", "").strip()[:40]
    page = request.args.get("page", 1, type=int) or 1
    if page > MAX_PAGE:  # far past any queue; and a huge number would overflow the OFFSET
        abort(404)
    result = queue_page(filter_name, current_user.id, page=page, search=search)
    if search and len(result.rows) == 1 and result.rows[0].reference == normalise_reference(search):
        # A whole reference (read out on the phone, say) goes straight to that request.
        return redirect(url_for("queue.detail", reference=result.rows[0].reference))
    now = utcnow()
    return render_template(
        "queue/index.html",
        board=duty_board(policies().rota, now),
        result=result,
        filter_name=filter_name,
        search=search,
        counts=tab_counts(current_user.id),
        now=now,
        countdown=countdown,
        warning_hours=warning_hours,
        describe_age=describe_age,
        condition_title=condition_title,
        formats=countdown_formats(),
        statuses=status_labels(),
    )


def _load(reference: str) -> ConsultationRequest:
    consultation = db.session.execute(
        select(ConsultationRequest)
        .where(ConsultationRequest.reference == reference.upper())
        .options(
            selectinload(ConsultationRequest.photos),
            selectinload(ConsultationRequest.messages).selectinload(Message.author),
            selectinload(ConsultationRequest.claimed_by),
            selectinload(ConsultationRequest.check_ins),
        )
    ).scalar_one_or_none()
    if consultation is None or consultation.status in HELD:  # not a consultation until it is paid
        abort(404)
    return consultation


def _reassign_form(consultation: ConsultationRequest) -> ReassignForm:
    form = ReassignForm()
    dermatologists = db.session.execute(
        select(User).where(User.role == "dermatologist", User.active.is_(True)).order_by(User.name)
    ).scalars()
    form.dermatologist.choices = [(u.id, u.name) for u in dermatologists if u.id != consultation.claimed_by_id]
    return form


def placeholder_values(consultation: ConsultationRequest) -> dict[str, str]:
    """What {first_name}, {condition} and {follow_up_date} become for this request, in the patient's
    language. A request without a known condition leaves {condition} visible for the writer to fix."""
    until = policies().follow_up.until(utcnow())
    values = saved_replies.placeholder_values(
        consultation, "", until.astimezone(policies().zone).date() if until else None
    )
    values.pop("condition")
    if consultation.condition_slug:
        article, _ = articles().get(consultation.condition_slug, consultation.language, include_drafts=True)
        if article is not None:
            values["condition"] = article.title
    return values


@dataclass(frozen=True)
class OfferedReply:
    reply: SavedReply
    text: saved_replies.ReplyText
    suggested: bool


def _offered_replies(consultation: ConsultationRequest) -> list[OfferedReply]:
    """The saved replies the dermatologist may use here, filled in, the request's own kind first."""
    values = placeholder_values(consultation)
    ordered = saved_replies.for_request(saved_replies.usable(_me()), consultation.condition_slug, consultation.language)
    return [
        OfferedReply(
            reply=reply,
            text=saved_replies.filled(reply, values),
            suggested=saved_replies.is_suggested(reply, consultation.condition_slug, consultation.language),
        )
        for reply in ordered
    ]


def _prefilled_answer(consultation: ConsultationRequest, offered: list[OfferedReply]) -> AnswerForm:
    """The answer form, filled from ?reply=<id> when chosen without JavaScript."""
    chosen = request.args.get("reply", type=int)
    for item in offered:
        if item.reply.id == chosen:
            return AnswerForm(formdata=None, data={**item.text.as_dict(), "saved_reply_id": item.reply.id})
    return AnswerForm(formdata=None)


def _render_detail(consultation: ConsultationRequest, status: int = 200, kept: str | None = None, **forms):
    """The request page; every showing of it is a view of health data, so it is audited.

    `kept` names a refused form whose text must stay on screen even if the action is gone.
    """
    audit(AuditAction.VIEWED, consultation=consultation)
    db.session.commit()
    me = _me()
    actions = allowed_actions(consultation, me)
    answering = "answer" in actions or kept == "answer_form"
    offered = _offered_replies(consultation) if answering else []
    if "answer_form" not in forms:
        forms["answer_form"] = _prefilled_answer(consultation, offered) if answering else AnswerForm(formdata=None)
    forms.setdefault("question_form", QuestionForm(formdata=None))
    forms.setdefault("note_form", NoteForm(formdata=None))
    forms.setdefault("reassign_form", _reassign_form(consultation))
    now = utcnow()
    return render_template(
        "queue/detail.html",
        consultation=consultation,
        actions=actions,
        late_now=is_late(consultation.due_at, now),
        kept=kept,
        action_form=ActionForm(),
        now=now,
        countdown=countdown,
        warning_hours=warning_hours,
        describe_age=describe_age,
        condition_title=condition_title,
        formats=countdown_formats(),
        statuses=status_labels(),
        facts=case_facts(consultation, now.astimezone(policies().zone).date()),
        earlier=earlier_requests(consultation),
        around=neighbours(consultation.id),
        offered_replies=offered,
        licence_missing=me.is_dermatologist and not me.licence_number,
        **_case_views(consultation),
        **forms,
    ), status


def _case_views(consultation: ConsultationRequest) -> dict:
    """The red-flag answers in the reader's language, the photos grouped by area and view, and each
    check-in reply's photos beside the first ones (before and after)."""
    questions = policies().triage.questions
    language = str(get_locale() or "en")
    red_flags = []
    for key in consultation.triage_flags or []:
        question = questions.get(key)
        red_flags.append((question.text(language), question.level) if question else (key, None))
    first = [p for p in consultation.photos if p.message_id is None]
    replies = {m.id for m in consultation.messages if m.kind == PATIENT_REPLY}
    comparisons = {
        check_in.reply_id: photo_views.before_after(
            first, [p for p in consultation.photos if p.message_id == check_in.reply_id]
        )
        for check_in in consultation.check_ins
        if check_in.reply_id in replies
    }
    return {
        "red_flags": red_flags,
        "photo_groups": photo_views.group(first),
        "site_labels": dict(BODY_SITES),
        "view_labels": photo_views.VIEW_LABELS,
        "check_in_replies": {c.reply_id: c for c in consultation.check_ins if c.reply_id is not None},
        "comparisons": comparisons,
    }


@bp.get("/<reference>")
@roles_required(*QUEUE_ROLES)
def detail(reference: str):
    return _render_detail(_load(reference))


def _act(
    reference: str,
    rule: Callable[[ConsultationRequest], object],
    done: str | Callable[[object], str],
    form_name: str | None = None,
    form: FlaskForm | None = None,
    then: Callable[[ConsultationRequest], str] | None = None,
):
    """Run one rule and commit; on refusal roll back and show the page again with what was typed.

    `done` is the message for success, or makes it from what the rule returned; `then` gives the
    address to go on to (by default the request page again)."""
    consultation = _load(reference)
    try:
        result = rule(consultation)
    except ActionRefused as refusal:
        db.session.rollback()
        flash(str(refusal), "error")
        if form_name is None:
            return redirect(url_for("queue.detail", reference=consultation.reference))
        # Keep what they typed on screen even though the form is no longer on offer.
        kept_form = form or _FORMS[form_name]()
        if isinstance(refusal, LateReasonNeeded) and isinstance(kept_form, LateReasonFields):
            kept_form.late_reason.errors = [*kept_form.late_reason.errors, gettext("Choose a reason.")]
            return _render_detail(_load(reference), 422, kept=form_name, **{form_name: kept_form})
        return _render_detail(_load(reference), 409, kept=form_name, **{form_name: kept_form})
    db.session.commit()
    flash(done(result) if callable(done) else done, "success")
    if then is not None:
        return redirect(then(consultation))
    return redirect(url_for("queue.detail", reference=consultation.reference))


_FORMS = {"answer_form": AnswerForm, "question_form": QuestionForm, "note_form": NoteForm}


@bp.post("/<reference>/claim")
@roles_required(*CLINICAL_ROLES)
def claim_request(reference: str):
    return _act(reference, lambda c: claim(c, _me(), utcnow()), gettext("You have claimed this request."))


def _released(new_holder: object) -> str:
    if isinstance(new_holder, User):
        return gettext("The request now belongs to %(name)s, a colleague on duty.", name=new_holder.name)
    return gettext("The request is back in the queue.")


@bp.post("/<reference>/release")
@roles_required(*QUEUE_ROLES)
def release_request(reference: str):
    return _act(reference, lambda c: release(c, _me(), utcnow(), policies=policies()), _released)


@bp.post("/<reference>/reassign")
@roles_required(*COORDINATOR_ROLES)
def reassign_request(reference: str):
    consultation = _load(reference)
    form = _reassign_form(consultation)
    # The form accepts only the dermatologists it listed, so a valid choice is always found.
    target = db.session.get(User, form.dermatologist.data) if form.validate_on_submit() else None
    if target is None:
        flash(gettext("Choose a dermatologist to give the request to."), "error")
        return redirect(url_for("queue.detail", reference=consultation.reference))
    return _act(
        reference,
        lambda c: reassign(c, target, _me(), utcnow()),
        gettext("The request now belongs to %(name)s.", name=target.name),
    )


@bp.post("/<reference>/answer")
@roles_required(*CLINICAL_ROLES)
def answer_request(reference: str):
    form = AnswerForm()
    valid = form.validate_on_submit()
    reason_given, late = form.late_explanation()
    if not (valid and reason_given):
        return _render_detail(_load(reference), 422, kept="answer_form", answer_form=form)
    content = Answer(
        assessment=form.assessment.data,
        treatment=form.treatment.data,
        prescription_note=form.prescription_note.data or "",
        follow_up=form.follow_up.data or "",
    )
    used = saved_replies.find_usable(_me(), form.saved_reply_id.data)
    weeks = form.check_in_weeks.data or None
    return _act(
        reference,
        lambda c: answer(
            c,
            _me(),
            content,
            utcnow(),
            late=late,
            address=client_address(),
            saved_reply=used,
            check_in_weeks=weeks,
            check_in_policy=policies().check_ins,
        ),
        gettext("Your answer is on the patient's page, and we have emailed them that it is ready."),
        "answer_form",
        form,
        then=_open_next if request.form.get("then") == "next" else None,
    )


def _open_next(answered: ConsultationRequest) -> str:
    """After an answer: the most urgent unclaimed request, or the queue when none is left."""
    following = next_unclaimed(excluding_id=answered.id)
    if following is None:
        flash(gettext("No unclaimed request is waiting: the queue is clear."), "success")
        return url_for("queue.index")
    return url_for("queue.detail", reference=following)


@bp.post("/<reference>/ask")
@roles_required(*CLINICAL_ROLES)
def ask_patient(reference: str):
    form = QuestionForm()
    valid = form.validate_on_submit()
    reason_given, late = form.late_explanation()
    if not (valid and reason_given):
        return _render_detail(_load(reference), 422, kept="question_form", question_form=form)
    return _act(
        reference,
        lambda c: ask(c, _me(), form.question.data, utcnow(), late=late),
        gettext("Your question is on the patient's page, and we have emailed them to look."),
        "question_form",
        form,
    )


@bp.post("/<reference>/note")
@roles_required(*QUEUE_ROLES)
def add_internal_note(reference: str):
    form = NoteForm()
    if not form.validate_on_submit():
        return _render_detail(_load(reference), 422, kept="note_form", note_form=form)
    return _act(
        reference,
        lambda c: add_note(c, _me(), form.note.data, utcnow()),
        gettext("Note added. Only colleagues can see it."),
        "note_form",
    )


@bp.get("/<reference>/photos/<key>")
@roles_required(*QUEUE_ROLES)
def photo(reference: str, key: str):
    """A photo (or its thumbnail) of this request, for signed-in staff only; audited, never cached."""
    found = db.session.execute(
        select(Photo)
        .join(ConsultationRequest, Photo.request_id == ConsultationRequest.id)
        .where(
            ConsultationRequest.reference == reference.upper(),
            ConsultationRequest.status.not_in(HELD),
            or_(Photo.storage_key == key, Photo.thumbnail_key == key),
        )
    ).scalar_one_or_none()
    if found is None:
        abort(404)
    try:
        data = photo_storage().read(key)
    except StorageError:
        current_app.logger.warning("photo %s of request %s is missing from storage", found.id, found.request_id)
        abort(404)
    kind = "thumbnail" if key == found.thumbnail_key else "photo"
    audit(AuditAction.PHOTO_VIEWED, consultation=found.request, detail=f"{kind} {found.id}")
    db.session.commit()
    response = Response(data, mimetype="image/jpeg")
    response.headers["Cache-Control"] = "no-store, private"
    response.headers["Content-Disposition"] = "inline"
    return response


@bp.get("/<reference>/letter.pdf")
@roles_required(*QUEUE_ROLES)
def letter_pdf(reference: str):
    """The patient's letter for an answer (the latest, or ?answer=<message id>), as the patient gets it."""
    consultation = _load(reference)
    answer_message = letter.answer_for_letter(consultation, request.args.get("answer", type=int))
    if answer_message is None:
        abort(404)
    pdf = render_letter(letter.letter_text(consultation, answer_message, policies().clinic, policies().zone))
    audit(AuditAction.LETTER_DOWNLOADED, consultation=consultation, detail=f"message {answer_message.id}")
    db.session.commit()
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{consultation.reference}-letter.pdf"'
    response.headers["Cache-Control"] = "no-store, private"
    return response


@bp.get("/<reference>/audit")
@roles_required(*COORDINATOR_ROLES)
def audit_log(reference: str):
    """Who viewed or changed this request, newest first (staff and admins)."""
    consultation = _load(reference)
    events = db.session.execute(
        select(AuditEvent)
        .where(AuditEvent.request_id == consultation.id)
        .options(selectinload(AuditEvent.actor))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(500)
    ).scalars()
    return render_template("queue/audit.html", consultation=consultation, events=list(events))
