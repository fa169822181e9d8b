"""Patient intake views: the consultation form, the confirmation, the private page and its photos,
and 'lost your link?'.

Views stay thin: the rules live in app.consultations.submission (storing a request), app.consultations.uploads
and app.photos (checking photos) and app.consultations.pending (photos kept while the form is corrected).
"""

from __future__ import annotations

import base64
import hashlib
import logging

from cryptography.fernet import Fernet, InvalidToken
from flask import (
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale, gettext
from flask_wtf.csrf import CSRFError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from wtforms.fields import SelectChoice

from app.conditions.routes import articles
from app.consultations import payments, photo_views, submission, triage, uploads
from app.consultations.pending import PendingPhotos, sweep, valid_submission_key
from app.extensions import db, limiter
from app.intake import bp
from app.intake.forms import BODY_SITES, ConsultationForm, ResendLinkForm
from app.intake.payment_forms import PaidConsultationForm
from app.intake.private_page import no_store, private_image
from app.links import external_url
from app.models import AuditAction, ConsultationRequest, find_by_token, new_access_token
from app.photos import ACCEPTED_MIME_TYPES, PhotoLimits
from app.runtime import audit, client_address, policies
from app.storage import photo_storage
from app.timeutil import utcnow

log = logging.getLogger(__name__)

KEYS_IN_SESSION = 5  # forms open in a few tabs at once each keep their own key
# The confirmation page shows the new private link for an hour after sending; the email keeps it.
LINK_IN_SESSION_SECONDS = 3600


def _submit_limit() -> str:
    return current_app.config["SUBMIT_RATE_LIMIT"]


def _resend_limit() -> str:
    return current_app.config["RESEND_RATE_LIMIT"]


def _resend_email_key() -> str:
    """Limit re-sends per address too (hashed: the limiter's storage never holds the email)."""
    email = (request.form.get("email") or "").strip().lower()
    return "resend:" + hashlib.sha256(email.encode("utf-8")).hexdigest()[:32]


# --- The consultation form ---------------------------------------------------------------------


def _consultation_form() -> ConsultationForm:
    """The form, with the tier to pay for when consultations are paid (app/intake/payment_forms.py)."""
    tiers = policies().payments
    if not tiers.enabled:
        return ConsultationForm()
    form = PaidConsultationForm()
    form.offer_tiers(tiers.tiers)
    return form


@bp.route("/consultation/new", methods=["GET", "POST"])
@limiter.limit(_submit_limit, methods=["POST"])
def new():
    form = _consultation_form()
    _offer_conditions(form)
    _offer_red_flags(form)
    if request.method == "GET":
        form.condition.data = _known_condition(request.args.get("condition"))
        form.submission_key.data = _issue_submission_key()
        return _render_form(form)
    _sweep_pending()
    key = _posted_submission_key(form)
    existing = submission.find_by_submission_key(key)
    if existing is not None:
        return _to_confirmation(existing, token=None)
    pending = PendingPhotos(current_app.config["UPLOAD_DIR"], key)
    batch = _collect_photos(pending)
    form_ok = form.validate()
    form.photos.errors = list(form.photos.errors) + batch.errors
    # Red flags first: someone who may need 112 is told so before any typo is pointed out.
    assessment = _red_flag_assessment(form)
    if not triage.confirmed(assessment, form.triage_seen.data) or not form_ok or batch.errors:
        if not batch.keep_for_later(pending):  # the upload folder is full or read-only
            return _render_form(form, status=503, notice=str(uploads.PHOTOS_NOT_KEPT), photos_lost=True)
        if not triage.confirmed(assessment, form.triage_seen.data):
            return _render_form(form, advice=assessment)
        return _render_form(form, status=422)
    return _store(form, key, batch, pending)


def _max_areas() -> int:
    return photo_views.max_areas(current_app.config["MAX_PHOTOS"])


def _collect_photos(pending: PendingPhotos) -> uploads.PhotoBatch:
    """The photos of this post: kept ones, the guided slots (each with its area's body site) and any others."""
    areas = _max_areas()
    batch = uploads.collect(
        request.files.getlist("photos"),
        request.form.getlist("kept_photos"),
        pending,
        PhotoLimits.from_config(current_app.config),
        current_app.config["MAX_PHOTOS"],
        slotted=photo_views.slotted_files(request.files, areas),
    )
    sites = photo_views.area_sites(request.form, areas, [key for key, _ in BODY_SITES])
    batch.place(sites)
    for area in sorted(batch.areas() - set(sites)):
        batch.errors.append(gettext("Choose where on the body area %(n)s is.", n=area))
    return batch


# --- Red-flag triage ------------------------------------------------------------------------------


def _offer_red_flags(form: ConsultationForm) -> None:
    questions = policies().triage.questions.choices(str(get_locale() or "en"))
    form.red_flags.choices = [SelectChoice(key, text) for key, text in questions] + [
        SelectChoice(triage.NONE_OF_THESE, gettext("None of these"))
    ]


def _red_flag_assessment(form: ConsultationForm) -> triage.Assessment:
    """The advice the answers call for; a "Send anyway" press on the advice page counts as having seen it."""
    seen = form.triage_seen.data or request.form.get("triage_confirm")
    form.triage_seen.data = seen if seen in triage.LEVELS else ""
    return triage.assess(form.red_flags.data or [], policies().triage.questions)


def _store(form: ConsultationForm, key: str, batch: uploads.PhotoBatch, pending: PendingPhotos):
    details = _details(form)
    # --- Paid consultations: the tier the request waits to be paid for (None: not held). ---
    chosen_tier = form.tier.data if isinstance(form, PaidConsultationForm) else None
    held_for = payments.tier_to_hold(details, chosen_tier, policies().payments)
    try:
        result = submission.submit_request(
            details,
            batch.photos,
            submission_key=key,
            language=str(get_locale() or "en"),
            consent_version=current_app.config["CONSENT_VERSION"],
            now=utcnow(),
            storage=photo_storage(),
            policies=policies(),
            held_for=held_for,
        )
    except (SQLAlchemyError, OSError, submission.SubmissionFailed) as error:
        # The type only: database errors can quote the values they failed on, and those are health data.
        log.error("intake: a request could not be stored (%s); nothing was kept", type(error).__name__)
        notice = gettext(
            "We could not save your request just now, so nothing has been sent yet. "
            "Your answers are still here: please press “Send” again in a moment."
        )
        return _render_form(form, status=503, notice=notice, photos_lost=bool(batch.new))
    pending.clear()
    _forget_submission_key(key)
    # A request held for its payment lands on the same page, which then offers to pay.
    return _to_confirmation(result.consultation, token=result.token)


def _details(form: ConsultationForm) -> submission.PatientDetails:
    return submission.PatientDetails(
        name=form.full_name.data,
        email=form.email.data,
        phone=form.phone.data or None,
        date_of_birth=form.date_of_birth.data,
        sex=form.sex.data,
        condition_slug=_known_condition(form.condition.data),
        body_sites=list(form.body_sites.data or []),
        duration=form.duration.data,
        symptoms=list(form.symptoms.data or []),
        description=form.description.data,
        medications=form.medications.data or None,
        allergies=form.allergies.data or None,
        history=form.chosen_history(),
        history_notes=form.history_notes.data or None,
        red_flags=list(form.red_flags.data or []),
    )


def _render_form(
    form: ConsultationForm,
    status: int = 200,
    notice: str | None = None,
    photos_lost: bool = False,
    advice: triage.Assessment | None = None,
):
    """The form (again), or with `advice` the red-flag advice page: the advice first, the form folded below it."""
    key = form.submission_key.data
    pending = PendingPhotos(current_app.config["UPLOAD_DIR"], key) if valid_submission_key(key) else None
    kept = pending.ids() if pending is not None else []
    kept_slots = {photo_id: pending.slot(photo_id) for photo_id in kept} if pending is not None else {}
    condition_slug = _known_condition(form.condition.data)
    language = str(get_locale() or "en")
    condition = articles().get(condition_slug, language)[0] if condition_slug else None
    questions = policies().triage.questions
    return (
        render_template(
            "intake/new.html",
            form=form,
            condition=condition,
            kept_photos=kept,
            notice=notice,
            photos_lost=photos_lost,
            accept=ACCEPTED_MIME_TYPES,
            payment=policies().payments if isinstance(form, PaidConsultationForm) else None,
            max_photos=current_app.config["MAX_PHOTOS"],
            max_photo_mb=current_app.config["MAX_PHOTO_BYTES"] // (1024 * 1024),
            photo_slots=_photo_slots(form, kept, kept_slots),
            advice=advice if advice is not None and advice.urgent else None,
            triage_advice=questions.advice,
            triage_levels=questions.level_of(),
            language=language,
        ),
        status,
    )


def _photo_slots(form: ConsultationForm, kept: list[str], kept_slots: dict) -> dict:
    """What the guided photo step shows: the areas, each one's site, and kept photos in their slots."""
    areas = _max_areas()
    sites = photo_views.area_sites(request.form, areas, [key for key, _ in BODY_SITES]) if request.form else {}
    in_slots: dict[tuple[int, str], list[tuple[str, str]]] = {}
    for photo_id in kept:
        area, view = kept_slots.get(photo_id, (None, None))
        if area is not None and view is not None:
            thumbnail = url_for("intake.pending_photo", photo_id=photo_id)
            in_slots.setdefault((area, view), []).append((photo_id, thumbnail))
    filled = [area for area, _ in in_slots] + list(sites)
    return {
        "areas": areas,
        "open": photo_views.areas_shown(filled, areas),
        "sites": sites,
        "kept": in_slots,
        "unslotted": [photo_id for photo_id in kept if kept_slots.get(photo_id, (None, None))[0] is None],
        "views": photo_views.VIEWS,
        "labels": photo_views.VIEW_LABELS,
        "hints": photo_views.VIEW_HINTS,
        "pictures": photo_views.VIEW_PICTURES,
        "body_sites": BODY_SITES,
    }


def _offer_conditions(form: ConsultationForm) -> None:
    form.condition.choices = [SelectChoice("", gettext("I am not sure, or it is something else"))] + [
        SelectChoice(c.slug, c.title) for c in articles().all(str(get_locale()))
    ]


def _known_condition(slug: str | None) -> str | None:
    """A condition slug we have an article for; anything else is ignored."""
    if not slug or len(slug) > 80:
        return None
    article, _ = articles().get(slug)
    return article.slug if article is not None else None


def _issue_submission_key() -> str:
    key = new_access_token()
    _remember_submission_key(key)
    return key


def _posted_submission_key(form: ConsultationForm) -> str:
    """The form's one-time key; a missing or mangled one gets a fresh key (the post is then a new request)."""
    key = form.submission_key.data
    if not valid_submission_key(key):
        key = new_access_token()
        form.submission_key.data = key
    _remember_submission_key(key)
    return key


def _remember_submission_key(key: str) -> None:
    keys = [k for k in session.get("intake_keys", []) if k != key]
    session["intake_keys"] = [*keys, key][-KEYS_IN_SESSION:]


def _forget_submission_key(key: str) -> None:
    session["intake_keys"] = [k for k in session.get("intake_keys", []) if k != key]


def _sweep_pending() -> None:
    """Kept photos of forms never sent go once the form itself would have expired."""
    max_age = current_app.config.get("WTF_CSRF_TIME_LIMIT") or 6 * 3600
    sweep(current_app.config["UPLOAD_DIR"], max_age)


@bp.get("/consultation/new/photos/<photo_id>")
def pending_photo(photo_id: str):
    """A thumbnail of a photo kept for a form being corrected, for the browser that sent it only."""
    for key in session.get("intake_keys", []):
        if valid_submission_key(key):
            data = PendingPhotos(current_app.config["UPLOAD_DIR"], key).thumbnail(photo_id)
            if data is not None:
                return private_image(data)
    abort(404)


@bp.errorhandler(CSRFError)
def form_expired(error: CSRFError):
    """An expired form must not throw away what a worried patient typed: show it again to resend."""
    if request.endpoint == "intake.new":
        form = _consultation_form()
        _offer_conditions(form)
        _offer_red_flags(form)
        _posted_submission_key(form)
        notice = gettext(
            "This form was open for a long time and has expired, so nothing has been sent yet. "
            "We kept what you typed. Please check it and press “Send” again."
        )
        posted = uploads.chosen_files(request.files.getlist("photos"))
        photos_lost = bool(posted or photo_views.slotted_files(request.files, _max_areas()))
        return _render_form(form, status=400, notice=notice, photos_lost=photos_lost)
    if request.endpoint == "intake.resend":
        flash(gettext("The page had expired. Please enter your email again."), "error")
        return render_template("intake/resend.html", form=ResendLinkForm()), 400
    return render_template("errors/error.html", code=400, error=error), 400


# --- After sending -------------------------------------------------------------------------------


def _session_cipher() -> Fernet:
    """Encrypts the private link kept in the session cookie (signed cookies are readable by anyone
    who holds them: a shared computer, a backup of the browser profile, a proxy's log)."""
    secret = current_app.config["SECRET_KEY"].encode("utf-8")
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"intake-session-link:" + secret).digest()))


def _seal_link(token: str | None) -> str | None:
    return _session_cipher().encrypt(token.encode("ascii")).decode("ascii") if token else None


def _open_link(sealed: object) -> str | None:
    if not isinstance(sealed, str) or not sealed:
        return None
    try:
        return _session_cipher().decrypt(sealed.encode("ascii"), ttl=LINK_IN_SESSION_SECONDS).decode("ascii")
    except (InvalidToken, UnicodeError, ValueError):
        return None  # expired, or made with another SECRET_KEY: the email still has the link


def _to_confirmation(consultation: ConsultationRequest, token: str | None):
    """Remember the request for this browser (with its link, encrypted, when we just made it) and show it."""
    done = session.get("intake_done") or {}
    sealed = _seal_link(token)
    if token is None and done.get("reference") == consultation.reference:
        sealed = done.get("link")  # a double click from the same browser: the first post's link still holds
    session["intake_done"] = {"reference": consultation.reference, "link": sealed}
    return redirect(url_for("intake.received"), code=303)


@bp.get("/consultation/received")
def received():
    done = session.get("intake_done") or {}
    consultation = None
    if done.get("reference"):
        consultation = db.session.execute(
            select(ConsultationRequest).where(ConsultationRequest.reference == done["reference"])
        ).scalar_one_or_none()
    token = _open_link(done.get("link"))
    if consultation is not None and token and find_by_token(token) is not consultation:
        token = None  # the link was replaced since ('lost your link?'): only the email has the new one
    if consultation is not None:
        audit(AuditAction.VIEWED, consultation=consultation, patient=True, detail="confirmation")
        db.session.commit()
    link = external_url("intake.private", token=token) if consultation and token else None
    payment = payments.patient_payment(consultation, policies().payments) if consultation is not None else None
    html = render_template("intake/received.html", consultation=consultation, link=link, token=token, payment=payment)
    return no_store(make_response(html))


# --- Lost your link? -----------------------------------------------------------------------------


@bp.route("/consultation/link", methods=["GET", "POST"])
@limiter.limit(_resend_limit, methods=["POST"])
@limiter.limit(_resend_limit, methods=["POST"], key_func=_resend_email_key)
def resend():
    form = ResendLinkForm()
    if form.validate_on_submit():
        # Only queued here: the lookup happens in the worker, so a known and an unknown address
        # take the same path and time, and the answer cannot tell who is a patient.
        submission.ask_for_links(form.email.data, address=client_address(), now=utcnow())
        # The same words whether or not the address is known: this page must not reveal who asked us.
        flash(
            gettext(
                "If we have a request from that address, we have emailed a new private link to it. "
                "It can take a few minutes; please also check your spam folder."
            ),
            "success",
        )
        return redirect(url_for("intake.resend"), code=303)
    status = 422 if form.errors else 200
    return render_template("intake/resend.html", form=form), status
