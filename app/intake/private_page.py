"""The patient's private page /c/<token>, built in one place: the page and its photos, and what the
patient does there: reply to the dermatologist (with photos), mark the consultation resolved,
withdraw it, download their data, erase it.

Every route here shares one rate-limit budget (guessing links through many routes gets no more
tries than through one), is never cached, and is audited as the patient. Every action is a POST
with a CSRF token, answered with a redirect (post/redirect/get). Views stay thin: the rules are in
app.consultations.conversation and app.consultations.privacy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flask import (
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_babel import gettext
from flask_wtf.csrf import validate_csrf
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from wtforms import ValidationError

from app.consultations import (
    check_ins,
    conversation,
    feedback,
    letter,
    payments,
    photo_views,
    privacy,
    refunds,
    uploads,
)
from app.consultations.conversation import PatientActionRefused, PatientChoices, ThreadEntry
from app.consultations.pending import PendingPhotos
from app.extensions import csrf, db, limiter
from app.intake import bp
from app.intake.forms import BODY_SITES
from app.intake.patient_forms import ConfirmForm, EraseForm, FeedbackForm, ReplyForm
from app.letters import render as render_letter
from app.models import AuditAction, CheckIn, ConsultationRequest, Message, Photo, find_by_token
from app.payments import money
from app.payments.checkout import send_to_checkout
from app.photos import ACCEPTED_MIME_TYPES, PhotoLimits
from app.runtime import audit, client_address, current_actor, policies
from app.storage import StorageError, photo_storage
from app.timeutil import utcnow

log = logging.getLogger(__name__)

MAX_TOKEN_LENGTH = 100


def _private_limit() -> str:
    return current_app.config["PRIVATE_LINK_RATE_LIMIT"]


# One budget per address for everything under /c/<token> (page, photos, replies, export), so that
# guessing links through many routes gets no more tries than through one.
private_link_limit = limiter.shared_limit(_private_limit, scope="private-link")


def no_store(response: Response) -> Response:
    """Private pages and photos are never kept by the browser's or anyone else's cache."""
    response.headers["Cache-Control"] = "no-store, private"
    response.headers["Pragma"] = "no-cache"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


# --- The page's conversation part (used by templates/intake/private.html) -------------------------


@dataclass
class PrivatePage:
    """What the private page shows besides the request itself."""

    choices: PatientChoices
    thread: list[ThreadEntry]
    form: ReplyForm
    kept_photos: list[str] = field(default_factory=list)
    notice: str | None = None
    photos_lost: bool = False
    accept: str = ACCEPTED_MIME_TYPES
    max_length: int = conversation.MAX_REPLY_LENGTH
    payment: payments.PatientPayment | None = None  # paid consultations: the price, the refunds
    check_in: CheckIn | None = None  # planned, not sent yet: the patient may turn it off
    may_rate: bool = False
    feedback_form: FeedbackForm | None = None
    slots: dict | None = None  # a check-in reply's guided photo slots (the same areas as the first photos)


def _draft(consultation: ConsultationRequest) -> PendingPhotos:
    key = conversation.reply_draft_key(consultation.id, consultation.reference)
    return PendingPhotos(current_app.config["UPLOAD_DIR"], key)


def private_page(
    consultation: ConsultationRequest,
    messages: list[Message] | None = None,
    *,
    form: ReplyForm | None = None,
    notice: str | None = None,
    photos_lost: bool = False,
    feedback_form: FeedbackForm | None = None,
    token: str | None = None,
) -> PrivatePage:
    choices = conversation.patient_choices(consultation, utcnow(), policies().follow_up, policies().check_ins)
    draft = _draft(consultation)
    # Photos that passed on an earlier try wait here, so a reload or a correction keeps them.
    kept = draft.ids() if choices.reply else []
    slots = None
    if choices.reply == conversation.CHECK_IN:
        slots = _check_in_slots(consultation, draft, kept, token)
        kept = slots["unslotted"]
    return PrivatePage(
        choices=choices,
        thread=conversation.patient_thread(consultation, messages),
        form=form or ReplyForm(formdata=None),
        kept_photos=kept,
        notice=notice,
        photos_lost=photos_lost,
        payment=payments.patient_payment(consultation, policies().payments),
        check_in=check_ins.planned(consultation) if consultation.status == "answered" else None,
        may_rate=feedback.may_rate(consultation),
        feedback_form=feedback_form or FeedbackForm(formdata=None),
        slots=slots,
    )


def check_in_areas(consultation: ConsultationRequest) -> list[tuple[int, str | None]]:
    """The areas a check-in reply asks about: those of the first photos, or one area when none had a slot."""
    areas = sorted({(p.area, p.body_site) for p in consultation.photos if p.message_id is None and p.area})
    return areas or [(1, None)]


def _check_in_slots(
    consultation: ConsultationRequest, draft: PendingPhotos, kept: list[str], token: str | None
) -> dict:
    in_slots: dict[tuple[int, str], list[tuple[str, str]]] = {}
    unslotted = []
    for photo_id in kept:
        area, view = draft.slot(photo_id)
        if area is None or view is None or token is None:
            unslotted.append(photo_id)
            continue
        thumbnail = url_for("intake.reply_draft_photo", token=token, photo_id=photo_id)
        in_slots.setdefault((area, view), []).append((photo_id, thumbnail))
    return {
        "areas": check_in_areas(consultation),
        "kept": in_slots,
        "unslotted": unslotted,
        "views": photo_views.VIEWS,
        "labels": photo_views.VIEW_LABELS,
        "hints": photo_views.VIEW_HINTS,
        "pictures": photo_views.VIEW_PICTURES,
        "site_labels": dict(BODY_SITES),
        "body_sites": BODY_SITES,
    }


# --- The patient's private page ------------------------------------------------------------------


def _consultation_for(token: str) -> ConsultationRequest:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        abort(404)
    consultation = find_by_token(token)
    if consultation is None:
        abort(404)
    return consultation


@bp.get("/c/<token>")
@private_link_limit
def private(token: str):
    consultation = _consultation_for(token)
    audit(AuditAction.VIEWED, consultation=consultation, patient=True)
    db.session.commit()
    html = render_template(
        "intake/private.html",
        consultation=consultation,
        token=token,
        now=utcnow(),
        photos=[p for p in consultation.photos if p.message_id is None],
        messages=[m for m in consultation.messages if m.visible_to_patient],
        page=private_page(consultation, token=token),
    )
    return no_store(make_response(html))


@bp.get("/c/<token>/photos/<storage_key>")
@private_link_limit
def photo(token: str, storage_key: str):
    return _serve_photo(token, storage_key, thumbnail=False)


@bp.get("/c/<token>/photos/<storage_key>/thumb")
@private_link_limit
def photo_thumbnail(token: str, storage_key: str):
    return _serve_photo(token, storage_key, thumbnail=True)


def _serve_photo(token: str, storage_key: str, thumbnail: bool):
    """A photo of this request only: the key must belong to the request the token opens."""
    consultation = _consultation_for(token)
    found = db.session.execute(
        select(Photo).where(Photo.request_id == consultation.id, Photo.storage_key == storage_key)
    ).scalar_one_or_none()
    if found is None:
        abort(404)
    try:
        data = photo_storage().read(found.thumbnail_key if thumbnail else found.storage_key)
    except (StorageError, OSError):
        abort(404)
    detail = f"photo {found.id}" + (" thumbnail" if thumbnail else "")
    audit(AuditAction.PHOTO_VIEWED, consultation=consultation, patient=True, detail=detail)
    db.session.commit()
    return private_image(data)


def private_image(data: bytes) -> Response:
    response = Response(data, mimetype="image/jpeg")
    response.headers["Content-Disposition"] = "inline"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return no_store(response)


def _show_page(consultation: ConsultationRequest, token: str, status: int, **page_values):
    """The private page again (a reply that needs correcting): it shows health data, so it is audited."""
    audit(AuditAction.VIEWED, consultation=consultation, patient=True, detail="reply form")
    db.session.commit()
    html = render_template(
        "intake/private.html",
        consultation=consultation,
        token=token,
        now=utcnow(),
        photos=[p for p in consultation.photos if p.message_id is None],
        messages=[m for m in consultation.messages if m.visible_to_patient],
        page=private_page(consultation, token=token, **page_values),
    )
    return no_store(make_response(html, status))


def _back_to_page(token: str, anchor: str | None = None):
    return redirect(url_for("intake.private", token=token, _anchor=anchor), code=303)


@bp.get("/c/<token>/letter.pdf")
@private_link_limit
def letter_pdf(token: str):
    """The dermatologist's answer as a letter to take to one's own doctor (the latest answer, or
    ?answer=<message id>); in the patient's language, audited like the page itself."""
    consultation = _consultation_for(token)
    answer = letter.answer_for_letter(consultation, request.args.get("answer", type=int))
    if answer is None:
        abort(404)
    pdf = render_letter(letter.letter_text(consultation, answer, policies().clinic, policies().zone))
    audit(AuditAction.LETTER_DOWNLOADED, consultation=consultation, patient=True, detail=f"message {answer.id}")
    db.session.commit()
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="skin-clinic-{consultation.reference}-letter.pdf"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return no_store(response)


# --- Replying ------------------------------------------------------------------------------------


def _csrf_valid() -> bool:
    if not current_app.config.get("WTF_CSRF_ENABLED", True):
        return True
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError:
        return False
    return True


def _reply_limit() -> str:
    return current_app.config["SUBMIT_RATE_LIMIT"]


@bp.post("/c/<token>/reply")
@private_link_limit
# A reply may carry photos, as a new request does, so it has the same budget (SUBMIT_RATE_LIMIT).
@limiter.limit(_reply_limit)
@csrf.exempt  # checked below instead, so an expired page gives the typed text back rather than an error page
def reply(token: str):
    consultation = _consultation_for(token)
    form = ReplyForm()
    if not _csrf_valid():
        notice = gettext(
            "This page was open for a long time and has expired, so your message has not been sent yet. "
            "We kept your text: please check it and press “Send” again."
        )
        lost = bool(uploads.chosen_files(request.files.getlist("photos")))
        return _show_page(consultation, token, 400, form=form, notice=notice, photos_lost=lost)
    if conversation.patient_choices(consultation, utcnow(), policies().follow_up, policies().check_ins).reply is None:
        # Settled before any photo is decoded: a request not waiting for the patient takes no reply.
        return _no_reply_now(consultation, token, form)
    draft = _draft(consultation)
    areas = check_in_areas(consultation)
    batch = conversation.collect_reply_photos(
        request.files.getlist("photos"),
        request.form.getlist("kept_photos"),
        draft,
        PhotoLimits.from_config(current_app.config),
        current_app.config["MAX_PHOTOS"],
        slotted=photo_views.slotted_files(request.files, max(area for area, _ in areas)),
    )
    # A check-in reply's slots are the first photos' areas; an area without a site may be given one here.
    chosen = photo_views.area_sites(request.form, len(areas), [key for key, _ in BODY_SITES])
    sites = {area: site or chosen.get(area) for area, site in areas}
    batch.place({area: site for area, site in sites.items() if site})
    form_ok = form.validate()
    form.photos.errors = list(form.photos.errors) + batch.errors
    if form_ok and not batch.errors and not form.body.data and not batch.photos:
        form.body.errors = [*form.body.errors, str(conversation.NOTHING_TO_SEND)]
        form_ok = False
    if not form_ok or batch.errors:
        if not batch.keep_for_later(draft):  # the upload folder is full or read-only
            return _photos_not_kept(consultation, token, form)
        return _show_page(consultation, token, 422, form=form)
    return _send_reply(consultation, token, form, batch, draft)


def _no_reply_now(consultation: ConsultationRequest, token: str, form: ReplyForm):
    """Not waiting for the patient: a second press of "Send" finds the first reply; anything else is refused."""
    earlier = conversation.reply_just_sent(consultation, form.body.data, utcnow())
    if earlier is not None:
        flash(_sent_message(consultation), "success")
        return _back_to_page(token, anchor=f"message-{earlier.id}")
    lost = bool(uploads.chosen_files(request.files.getlist("photos")))
    return _show_page(consultation, token, 409, form=form, notice=str(conversation.CANNOT_REPLY), photos_lost=lost)


def _photos_not_kept(consultation: ConsultationRequest, token: str, form: ReplyForm):
    notice = str(uploads.PHOTOS_NOT_KEPT)
    return _show_page(consultation, token, 503, form=form, notice=notice, photos_lost=True)


def _send_reply(consultation: ConsultationRequest, token: str, form: ReplyForm, batch, draft: PendingPhotos):
    try:
        result = conversation.reply(
            consultation,
            form.body.data or "",
            batch.photos,
            now=utcnow(),
            policies=policies(),
            storage=photo_storage(),
            address=client_address(),
            progress=form.progress.data or None,
        )
    except PatientActionRefused as refused:
        if not batch.keep_for_later(draft):  # the upload folder is full or read-only
            return _photos_not_kept(consultation, token, form)
        return _show_page(consultation, token, 409, form=form, notice=str(refused))
    except (SQLAlchemyError, OSError) as error:
        # The type only: database errors can quote the values they failed on, and those are health data.
        log.error("conversation: a reply could not be stored (%s); nothing was kept", type(error).__name__)
        notice = gettext(
            "We could not send your message just now, so nothing has been sent yet. "
            "Your text is still here: please press “Send” again in a moment."
        )
        return _show_page(consultation, token, 503, form=form, notice=notice, photos_lost=bool(batch.new))
    draft.clear()
    flash(_sent_message(consultation), "success")
    return _back_to_page(token, anchor=f"message-{result.message.id}")


def _sent_message(consultation: ConsultationRequest) -> str:
    hours = consultation.response_target_hours or current_app.config["RESPONSE_TARGET_HOURS"]
    if consultation.claimed_by is not None:
        return gettext(
            "Your message has been sent to %(name)s. You will have an answer here within %(hours)s hours.",
            name=consultation.claimed_by.name,
            hours=hours,
        )
    return gettext("Your message has been sent. A dermatologist will answer here within %(hours)s hours.", hours=hours)


@bp.get("/c/<token>/reply/photos/<photo_id>")
@private_link_limit
def reply_draft_photo(token: str, photo_id: str):
    """A thumbnail of a photo kept for a reply being corrected."""
    consultation = _consultation_for(token)
    data = _draft(consultation).thumbnail(photo_id)
    if data is None:
        abort(404)
    audit(AuditAction.PHOTO_VIEWED, consultation=consultation, patient=True, detail="reply photo not sent yet")
    db.session.commit()
    return private_image(data)


# --- Check-in and feedback -----------------------------------------------------------------------


@bp.post("/c/<token>/check-in/off")
@private_link_limit
def check_in_off(token: str):
    """The patient does not want the planned check-in email."""
    consultation = _consultation_for(token)
    if not ConfirmForm().validate_on_submit():
        flash(gettext("The page had expired. Please try again."), "error")
    elif check_ins.turn_off(consultation, utcnow(), address=client_address()):
        flash(gettext("We will not send you the check-in email."), "success")
    else:
        flash(gettext("There is no check-in email to turn off."), "error")
    return _back_to_page(token)


@bp.post("/c/<token>/feedback")
@private_link_limit
def give_feedback(token: str):
    """Was this helpful? A rating (1-5) and an optional comment, once per request."""
    consultation = _consultation_for(token)
    form = FeedbackForm()
    if not form.validate_on_submit():
        return _show_page(consultation, token, 422, feedback_form=form)
    try:
        feedback.give(consultation, form.rating.data, form.comment.data, utcnow(), address=client_address())
    except feedback.FeedbackRefused as refused:
        flash(str(refused), "error")
        return _back_to_page(token)
    flash(gettext("Thank you for telling us. It helps us look after the next patient better."), "success")
    return _back_to_page(token, anchor="feedback")


# --- Resolved, withdrawn -------------------------------------------------------------------------

# action -> (the rule, what the request becomes)
ENDINGS = {
    "resolve": (conversation.resolve, "resolved"),
    "withdraw": (conversation.withdraw, "withdrawn"),
}


@bp.route("/c/<token>/resolve", methods=["GET", "POST"], endpoint="resolve")
@bp.route("/c/<token>/withdraw", methods=["GET", "POST"], endpoint="withdraw")
@private_link_limit
def end_consultation(token: str):
    """Mark resolved / withdraw: a confirmation page first (GET), then the change (POST)."""
    if request.endpoint is None:  # never: it is set once the URL has matched this view
        abort(404)
    action = request.endpoint.rsplit(".", 1)[1]
    consultation = _consultation_for(token)
    form = ConfirmForm()
    if request.method == "GET" or not form.validate_on_submit():
        return _confirmation_page(consultation, token, action, form)
    rule, done = ENDINGS[action]
    refundable = _refundable_on_withdrawal(consultation) if action == "withdraw" else None
    try:
        rule(consultation, utcnow(), address=client_address())
    except PatientActionRefused as refused:
        flash(str(refused), "error")
        return _back_to_page(token)
    if done == "resolved":
        flash(gettext("Thank you. Your consultation is closed. We hope your skin feels better soon."), "success")
    else:
        flash(gettext("Your request has been withdrawn. No dermatologist will work on it."), "success")
        if refundable is not None:
            flash(gettext("We are refunding %(amount)s to the card you paid with.", amount=refundable), "success")
    return _back_to_page(token)


def _refundable_on_withdrawal(consultation: ConsultationRequest) -> str | None:
    """What a withdrawal gives back of a paid request (app.consultations.refunds.refund_withdrawn), as
    the reader writes money; None when nothing was paid or nothing is left."""
    payment = refunds.refundable_on_withdrawal(consultation)
    return None if payment is None else money(payment.refundable_cents, payment.currency)


def _confirmation_page(consultation: ConsultationRequest, token: str, action: str, form, status: int = 200):
    choices = conversation.patient_choices(consultation, utcnow(), policies().follow_up, policies().check_ins)
    allowed = {"resolve": choices.resolve, "withdraw": choices.withdraw, "erase": True}[action]
    if not allowed:
        return _back_to_page(token)
    audit(AuditAction.VIEWED, consultation=consultation, patient=True, detail=f"{action} confirmation")
    db.session.commit()
    refundable = _refundable_on_withdrawal(consultation) if action == "withdraw" else None
    html = render_template(
        "intake/confirm.html", consultation=consultation, token=token, action=action, form=form, refundable=refundable
    )
    return no_store(make_response(html, status))


# --- Paying (paid consultations): the private link is the way back to the payment page -------------


@bp.post("/c/<token>/pay")
@private_link_limit
def pay(token: str):
    """A trip to the provider's payment page for a request waiting for its payment (from the page shown
    after the form, or from the private page); if none can be opened, back there with the reason.

    A form, not a script or a redirect from the consultation form: the form is sent by XMLHttpRequest,
    which may not follow a redirect to another site; a form may (CSP form-action names the provider)."""
    consultation = _consultation_for(token)
    payment = payments.payment_for(consultation)
    back = (
        url_for("intake.received")
        if request.form.get("from") == "received"
        else url_for("intake.private", token=token, _anchor="payment")
    )
    if not ConfirmForm().validate_on_submit() or payment is None:
        return redirect(back, code=303)
    return send_to_checkout(payment, fallback=back)


# --- Your data: download and erase ---------------------------------------------------------------


@bp.post("/c/<token>/export")
@private_link_limit
def export(token: str):
    """A zip with data.json and the photos; a POST, so link scanners and prefetchers never trigger it."""
    consultation = _consultation_for(token)
    archive = privacy.export_archive(consultation, photo_storage())
    audit(AuditAction.EXPORTED, consultation=consultation, patient=True)
    db.session.commit()
    response = send_file(
        archive,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"skin-clinic-{consultation.reference}.zip",
        conditional=False,
        etag=False,
        max_age=0,
    )
    response.headers.pop("Expires", None)
    return no_store(response)


@bp.route("/c/<token>/erase", methods=["GET", "POST"])
@private_link_limit
def erase(token: str):
    consultation = _consultation_for(token)
    form = EraseForm()
    if request.method == "GET":
        return _confirmation_page(consultation, token, "erase", form)
    if not form.validate_on_submit():
        return _confirmation_page(consultation, token, "erase", form, status=422)
    erased = privacy.erase_consultation(
        consultation, photo_storage(), policies().upload_dir, actor=current_actor(patient=True)
    )
    session["erased_reference"] = erased.reference
    return redirect(url_for("intake.erased"), code=303)


@bp.get("/consultation/erased")
def erased():
    reference = session.pop("erased_reference", None)
    return no_store(make_response(render_template("intake/erased.html", reference=reference)))
