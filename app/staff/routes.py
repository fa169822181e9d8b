"""The staff dashboard: the 24-hour target's figures, the outbox, and the CSV export.

Staff and admins only; dermatologists work from the queue and get 403 here.
"""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, url_for
from flask_babel import gettext

from app import outbox
from app.auth.session import roles_required
from app.extensions import db
from app.models import AuditAction, OutboundEmail
from app.payments import figures as payment_figures
from app.runtime import audit, policies
from app.staff import bp
from app.staff.dashboard import (
    EMAIL_KINDS,
    build,
    csv_text,
    late_figures,
    outbox_overview,
    references,
    rota_figures,
)
from app.timeutil import local, utcnow

STAFF_ROLES = ("staff", "admin")


@bp.get("/")
@roles_required(*STAFF_ROLES)
def dashboard():
    now = utcnow()
    mail = outbox_overview()
    return render_template(
        "staff/dashboard.html",
        figures=build(now, policies().response, policies().zone),
        rota=rota_figures(now, policies()),
        outbox=mail,
        references=references(mail.failed + mail.pending + mail.sent),
        mail_configured=outbox.mail_configured(),
        email_kinds=EMAIL_KINDS,
        # Paid consultations: refunds per month and the cost of lateness (app/payments/figures.py).
        payments=payment_figures.build(now, policies().zone) if policies().payments.enabled else None,
    )


@bp.get("/export.csv")
@roles_required(*STAFF_ROLES)
def export_csv():
    now = utcnow()
    body = csv_text(build(now, policies().response, policies().zone), late_figures(now, policies()))
    audit(AuditAction.EXPORTED, detail="staff dashboard figures (csv)")
    db.session.commit()
    filename = f"target-figures-{local(now):%Y-%m-%d}.csv"
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@bp.get("/outbox/<int:email_id>")
@roles_required(*STAFF_ROLES)
def outbox_email(email_id: int):
    """What an email says (private links hidden), so staff can see mail that has not gone out."""
    email = db.session.get(OutboundEmail, email_id) or abort(404)
    try:
        subject, text, _html = outbox.render(email, reveal_secrets=False)
    except Exception:  # a broken template: say so rather than fail the page
        subject, text = None, None
    return render_template(
        "staff/outbox_email.html", email=email, subject=subject, text=text, references=references([email])
    )


@bp.post("/outbox/<int:email_id>/retry")
@roles_required(*STAFF_ROLES)
def retry_email(email_id: int):
    if outbox.retry(email_id):
        db.session.commit()
        flash(gettext("The email is back in the queue and goes out in the next delivery round."), "success")
    else:
        flash(gettext("That email is not waiting for a retry; it may already have been sent."), "error")
    return redirect(url_for("staff.dashboard", _anchor="outbox"))
