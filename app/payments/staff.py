"""Staff's view of the money: every refund that needs attention, recent payments and refunds, one
payment with its refunds, a refund by hand (audited) and "try again now" for a refused refund.

Staff and admins only (dermatologists work from the queue). No health data is shown here: amounts,
tiers, references and the provider's ids.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import select

from app.auth.session import roles_required
from app.consultations import refunds
from app.consultations.refunds import PaymentRefused
from app.consultations.staff_actions import COORDINATOR_ROLES
from app.extensions import db
from app.models import Payment, PaymentStatus, Refund
from app.payments import bp
from app.payments.figures import build, needing_attention
from app.payments.forms import ButtonForm, RefundForm
from app.runtime import current_actor, payment_provider, policies
from app.timeutil import utcnow

RECENT = 50


@bp.get("/staff/payments/")
@roles_required(*COORDINATOR_ROLES)
def staff_payments():
    now = utcnow()
    recent_refunds = db.session.execute(select(Refund).order_by(Refund.id.desc()).limit(RECENT)).scalars()
    recent_payments = db.session.execute(
        select(Payment)
        .where(Payment.status == PaymentStatus.PAID.value)
        .order_by(Payment.paid_at.desc(), Payment.id.desc())
        .limit(RECENT)
    ).scalars()
    return render_template(
        "payments/staff_list.html",
        figures=build(now, policies().zone),
        attention=needing_attention(now),
        refunds=list(recent_refunds),
        payments=list(recent_payments),
        button=ButtonForm(),
    )


def _payment(reference: str) -> Payment:
    payment = db.session.execute(
        select(Payment).where(Payment.reference == reference.upper()[:12]).order_by(Payment.id.desc()).limit(1)
    ).scalar_one_or_none()
    if payment is None or payment.status == PaymentStatus.AWAITING:
        abort(404)  # an unpaid request is nobody's business yet
    return payment


def _show(payment: Payment, form: RefundForm | None = None, status: int = 200):
    if form is None:
        form = RefundForm(formdata=None)
        form.amount.data = f"{payment.refundable_cents / 100:.2f}"
    return (
        render_template("payments/staff_payment.html", payment=payment, form=form, button=ButtonForm()),
        status,
    )


@bp.get("/staff/payments/<reference>")
@roles_required(*COORDINATOR_ROLES)
def staff_payment(reference: str):
    return _show(_payment(reference))


@bp.post("/staff/payments/<reference>/refund")
@roles_required(*COORDINATOR_ROLES)
def refund_by_hand(reference: str):
    payment = _payment(reference)
    form = RefundForm()
    if not form.validate_on_submit():
        return _show(payment, form, 422)
    now = utcnow()
    try:
        refund = refunds.refund_by_hand(payment, form.cents, current_actor(current_user._get_current_object()), now)
    except PaymentRefused as refused:
        flash(str(refused), "error")
        return _show(payment, form, 409)
    if refunds.retry_refund(refund, payment_provider(), policies(), now):
        flash(gettext("The refund has been sent; the patient is emailed about it."), "success")
    else:
        flash(gettext("The refund is recorded, but the payment provider has not accepted it yet: see below."), "error")
    return redirect(url_for("payments.staff_payment", reference=payment.reference), code=303)


@bp.post("/staff/payments/refunds/<int:refund_id>/retry")
@roles_required(*COORDINATOR_ROLES)
def retry_refund(refund_id: int):
    refund = db.session.get(Refund, refund_id) or abort(404)
    if not ButtonForm().validate_on_submit():
        abort(400)
    if refunds.retry_refund(refund, payment_provider(), policies(), utcnow()):
        flash(gettext("The refund went through."), "success")
    else:
        flash(gettext("The payment provider still refuses this refund: see its answer below."), "error")
    return redirect(url_for("payments.staff_payment", reference=refund.payment.reference), code=303)
