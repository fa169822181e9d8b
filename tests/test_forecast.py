"""The coverage forecast on a built rota: the gaps of the next 48 hours, the open and expected
requests due in them, the breaches nobody on the rota can prevent, and the one email per gap that
staff get, early (as soon as the breach enters the 48 hours) and once (run twice, two workers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from app.consultations import forecast, rota
from app.consultations.audit import Actor
from app.extensions import db
from app.models import OutboundEmail
from app.outbox import render
from app.runtime import policies
from tests.databases import DATABASES, run_together, shared_app
from tests.factories import login_as, make_consultation, make_user

VILNIUS = ZoneInfo("Europe/Vilnius")


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VILNIUS).astimezone(UTC)


SATURDAY_MORNING = local(2026, 12, 5, 9)


def test_arrival_rates_are_per_hour_of_the_week_over_four_weeks():
    starts = [local(2026, 11, 7 + 7 * week, 15, minute) for week in range(4) for minute in (10, 40)]
    starts.append(local(2026, 11, 27, 17, 20))
    rates = forecast.arrival_rates(starts, VILNIUS)
    assert rates == {(5, 15): 2.0, (4, 17): 0.25}


def test_expected_arrivals_count_what_is_left_of_the_first_hour():
    rates = {(5, 9): 1.0, (5, 10): 0.5}
    slots = forecast.expected_arrivals(rates, local(2026, 12, 5, 9, 30), local(2026, 12, 5, 11), VILNIUS)
    assert slots == [(local(2026, 12, 5, 9, 45), 0.5), (local(2026, 12, 5, 10, 30), 0.5)]


def build_clinic() -> None:
    """Rūta works weekdays 08:00-16:00, Tomas Saturdays 10:00-14:00. In each of the last four weeks two
    requests came on Saturday between 15:00 and 16:00 and one on Friday between 17:00 and 18:00."""
    ruta = make_user("dermatologist", email="ruta@clinic.example")
    tomas = make_user("dermatologist", email="tomas@clinic.example")
    rota.set_weekly(ruta, rota.parse_weekly("Mon-Fri 08:00-16:00"), Actor.system())
    rota.set_weekly(tomas, rota.parse_weekly("Sat 10:00-14:00"), Actor.system())
    for week in range(4):
        for moment in (local(2026, 11, 7 + 7 * week, 15, 10), local(2026, 11, 7 + 7 * week, 15, 40)):
            make_consultation(created_at=moment, status="answered")
        make_consultation(created_at=local(2026, 11, 6 + 7 * week, 17, 20), status="answered")


def test_the_forecast_on_a_built_rota(app):
    build_clinic()
    due_saturday, _ = make_consultation(created_at=local(2026, 12, 4, 15))  # due Sat 15:00: Tomas can answer first
    due_sunday, _ = make_consultation(created_at=local(2026, 12, 5, 8))  # due Sun 08:00: Tomas can, too
    make_consultation(created_at=local(2026, 12, 4, 11))  # due Sat 11:00, while Tomas is on duty: no gap
    found = forecast.build(policies(), SATURDAY_MORNING)
    assert found.in_use and found.expected_arrivals == 2.0  # Saturday 15:00-16:00; Friday's hour is past
    first, second = found.gaps
    # The gap we are in began on Friday at 16:00; the next runs from Saturday 14:00 past the horizon.
    assert (first.starts, first.ends, first.hours) == (local(2026, 12, 4, 16), local(2026, 12, 5, 10), 18.0)
    assert first.longer_than_warning and first.open_due == () and first.expected_due == 0 and not first.breach_forecast
    assert (second.starts, second.ends) == (local(2026, 12, 5, 14), local(2026, 12, 7, 8))
    assert not second.ends_after_horizon and second.hours == 42.0
    assert second.open_due == (due_saturday.reference, due_sunday.reference)
    assert second.open_unpreventable == ()  # Tomas is on duty before either is due
    # The two expected on Saturday afternoon come due on Sunday afternoon, with nobody on duty in between.
    assert (second.expected_due, second.expected_unpreventable) == (2.0, 2.0)
    assert second.breach_forecast and second.first_breach_at == local(2026, 12, 6, 15, 30)
    assert (found.open_due_uncovered, found.expected_due_uncovered) == (2, 2.0)


def gap_emails() -> list[OutboundEmail]:
    query = select(OutboundEmail).where(OutboundEmail.template == "coverage_gap").order_by(OutboundEmail.id)
    return list(db.session.execute(query).scalars())


def test_staff_get_one_email_per_gap_as_soon_as_the_breach_enters_the_forecast(app):
    build_clinic()
    # The breach (due Sunday 15:30) enters the 48 hours on Friday at 15:30, while Rūta is still at work.
    assert forecast.alert_gaps(policies(), local(2026, 12, 4, 15, 29)) == {"gaps_alerted": 0, "gap_emails": 0}
    sent_at = local(2026, 12, 4, 15, 31)
    assert forecast.alert_gaps(policies(), sent_at) == {"gaps_alerted": 1, "gap_emails": 1}
    for later in (sent_at + timedelta(minutes=1), SATURDAY_MORNING, local(2026, 12, 6, 12)):
        assert forecast.alert_gaps(policies(), later)["gap_emails"] == 0
    (email,) = gap_emails()
    assert email.recipient == "alerts@clinic.example" and email.dedupe_key.startswith("coverage-gap:20261205T1200Z:")
    first_breach = local(2026, 12, 6, 15, 30)
    assert first_breach - sent_at >= timedelta(hours=app.config["SLA_WARNING_HOURS"])
    assert email.context == {
        "gap_from": "2026-12-05 14:00",
        "gap_to": "2026-12-06 15:31",  # the end of the 48 hours: nobody comes on duty before it
        "open_until": True,
        "open_requests": 0,
        "open_before_gap": 0,
        "expected_requests": 2.0,
        "first_breach": "2026-12-06 15:30",
        "link": {"endpoint": "staff.dashboard", "values": {}},
    }
    subject, text, _html = render(email)
    assert subject == "Rota gap from 2026-12-05 14:00: replies will be late unless someone covers it"
    assert "Nobody is on the duty rota from 2026-12-05 14:00 until at least 2026-12-06 15:31" in text
    assert "http://localhost/staff/#coverage" in text and "new requests expected from recent weeks: 2.0" in text


def test_an_open_request_is_reported_when_the_last_one_on_duty_leaves(app):
    ruta = make_user("dermatologist", email="ruta@clinic.example")
    rota.set_weekly(ruta, rota.parse_weekly("Mon-Fri 08:00-16:00"), Actor.system())
    make_consultation(created_at=local(2026, 12, 4, 15))  # due Saturday 15:00, nobody on duty all weekend
    assert forecast.alert_gaps(policies(), local(2026, 12, 4, 15, 59))["gap_emails"] == 0  # Rūta can still reply
    assert forecast.alert_gaps(policies(), local(2026, 12, 4, 16))["gap_emails"] == 1
    (email,) = gap_emails()
    assert (email.context["open_requests"], email.context["first_breach"]) == (1, "2026-12-05 15:00")
    assert local(2026, 12, 5, 15) - local(2026, 12, 4, 16) >= timedelta(hours=4)


def test_staff_hear_of_a_request_due_soon_after_the_last_shift_before_its_warning_window(app):
    """Rūta leaves on Friday at 16:00; a request due at 18:00 cannot wait until she leaves for staff to
    hear of it: the email comes at least the warning window before the breach, and only once."""
    ruta = make_user("dermatologist", email="ruta@clinic.example")
    rota.set_weekly(ruta, rota.parse_weekly("Mon-Fri 08:00-16:00"), Actor.system())
    due = local(2026, 12, 4, 18)
    make_consultation(created_at=due - timedelta(hours=24))
    warning = timedelta(hours=app.config["SLA_WARNING_HOURS"])
    assert forecast.build(policies(), due - warning - timedelta(hours=1)).breaches == []  # time enough for Rūta
    sent_at = due - warning - forecast.STAFF_LEAD
    assert forecast.alert_gaps(policies(), sent_at - timedelta(minutes=1))["gap_emails"] == 0
    assert forecast.alert_gaps(policies(), sent_at)["gap_emails"] == 1
    for later in (sent_at + timedelta(minutes=1), local(2026, 12, 4, 16), local(2026, 12, 4, 17)):
        assert forecast.alert_gaps(policies(), later)["gap_emails"] == 0  # the same gap: no second email
    (email,) = gap_emails()
    assert due - sent_at >= warning
    assert (email.context["open_requests"], email.context["open_before_gap"]) == (0, 1)
    assert email.context["first_breach"] == "2026-12-04 18:00"
    _subject, text, html = render(email)
    assert "open requests due soon after the last shift ends, unless answered before it: 1" in text
    assert "unless answered before it: 1" in html


def test_no_rota_no_gaps_and_no_email(app):
    make_user("dermatologist")
    make_consultation(created_at=local(2026, 12, 4, 15))
    found = forecast.build(policies(), SATURDAY_MORNING)
    assert not found.in_use and found.gaps == []
    assert forecast.alert_gaps(policies(), SATURDAY_MORNING)["gap_emails"] == 0


@pytest.mark.parametrize("database", DATABASES)
def test_two_workers_at_once_send_the_gap_email_once(tmp_path, database):
    with shared_app(database, tmp_path, STAFF_ALERT_EMAILS=["desk@clinic.example", "lead@clinic.example"]) as app:
        build_clinic()
        results = run_together(app, lambda: forecast.alert_gaps(policies(), SATURDAY_MORNING), workers=2)
        assert sum(r["gap_emails"] for r in results) == 2
        assert sorted(e.recipient for e in gap_emails()) == ["desk@clinic.example", "lead@clinic.example"]


def test_the_dashboard_shows_the_forecast(app, client):
    build_clinic()
    make_consultation(created_at=local(2026, 12, 4, 15))
    with time_machine.travel(SATURDAY_MORNING, tick=False):
        login_as(client, make_user("staff"))
        page = client.get("/staff/").text
    coverage = page[page.index('id="coverage"') : page.index('id="within-target"')]
    assert "Gaps in the rota: 1 open requests and about 2.0 expected ones come due" in coverage
    assert coverage.count('class="gap-breach"') == 1 and "Yes, first due" in coverage
    assert "New requests and patient replies expected in the next 48 hours: 2.0." in coverage
