"""Logs carry no names, emails, symptoms or private links: a check of every log call in the code,
a patient's whole journey under a capturing log, and database errors that do not quote values."""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import User
from tests.factories import login_as, make_photo, make_user, submit_request

APP_DIR = Path(__file__).resolve().parents[2] / "app"
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
# Attributes and names that hold health data, contact details or secrets.
SENSITIVE_ATTRIBUTES = {
    "patient_name",
    "patient_email",
    "patient_phone",
    "date_of_birth",
    "description",
    "symptoms",
    "medications",
    "allergies",
    "history",
    "history_notes",
    "body",
    "assessment",
    "treatment",
    "prescription_note",
    "follow_up",
    "recipient",
    "email",
    "filename",
    "form",
    "args",
}
SENSITIVE_NAMES = {"token", "password", "code", "secret", "details", "answers"}


def log_calls() -> list[tuple[str, ast.Call]]:
    calls = []
    for path in sorted(APP_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LOG_METHODS:
                target = ast.unparse(node.func.value)
                if target in {"log", "logger", "logging", "current_app.logger", "app.logger"} or target.endswith(
                    "getLogger(__name__)"
                ):
                    calls.append((f"{path.relative_to(APP_DIR.parent)}:{node.lineno}", node))
    return calls


def test_the_code_has_log_calls_to_check():
    assert len(log_calls()) >= 5


@pytest.mark.parametrize(("where", "call"), log_calls(), ids=[where for where, _ in log_calls()])
def test_no_log_call_passes_health_data_contact_details_or_secrets(where, call):
    for argument in [*call.args, *(keyword.value for keyword in call.keywords)]:
        for node in ast.walk(argument):
            if isinstance(node, ast.Attribute):
                assert node.attr not in SENSITIVE_ATTRIBUTES, f"{where} logs .{node.attr}"
            if isinstance(node, ast.Name):
                assert node.id not in SENSITIVE_NAMES, f"{where} logs {node.id}"


def test_a_patients_journey_leaves_nothing_personal_in_the_logs(app, client, caplog):
    caplog.set_level(logging.DEBUG)
    submit_request(client, full_name="Ona Petraitienė", description="Weeping blisters on both palms since May.")
    private_link = re.search(r"/c/[A-Za-z0-9_\-]{20,}", client.get("/consultation/received").get_data(as_text=True))[0]
    client.get(private_link)
    client.post("/consultation/link", data={"email": "ona.patient@example.com"})
    from app.models import ConsultationRequest

    consultation = db.session.query(ConsultationRequest).one()
    missing = make_photo(consultation)
    (Path(app.config["UPLOAD_DIR"]) / missing.storage_key).unlink()
    login_as(client, make_user("dermatologist"))
    client.get(f"/queue/{consultation.reference}/photos/{missing.storage_key}")  # logs a warning
    assert "missing from storage" in caplog.text
    for personal in ("Ona", "Petraitien", "blisters", "ona.patient@example.com", "@example.com", private_link):
        assert personal not in caplog.text


def test_database_errors_do_not_quote_the_values_they_failed_on(app, caplog):
    make_user("dermatologist", email="ona.secret@example.com")
    db.session.add(User(email="ona.secret@example.com", name="Ona Secret", role="staff", password_hash="x"))
    with pytest.raises(IntegrityError) as failure:
        db.session.commit()
    db.session.rollback()
    # SQLAlchemy leaves the parameters out of the message (hide_parameters)...
    assert "Ona Secret" not in str(failure.value) and "[parameters:" not in str(failure.value)
    # ...and a logged failure (an unexpected 500 is logged like this by Flask) keeps its frames but
    # not the message, where PostgreSQL itself quotes the duplicate email.
    with caplog.at_level(logging.ERROR, logger="app"):
        app.logger.error(
            "Exception on /c/someprivatetoken123 [POST]",
            exc_info=(type(failure.value), failure.value, failure.value.__traceback__),
        )
    assert "IntegrityError: [message withheld]" in caplog.text
    assert "Traceback (most recent call last)" in caplog.text
    for secret in ("ona.secret@example.com", "Ona Secret", "someprivatetoken123"):
        assert secret not in caplog.text
