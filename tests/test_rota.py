"""The duty rota: weekly hours as text, who is on duty at a given moment across midnight, both
daylight-saving changes and public holidays, time off and extra shifts, and the doors that edit it
(`flask rota`, the accounts page) and show it (the queue and the dashboard)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from app.consultations import notify, rota
from app.consultations.audit import Actor
from app.extensions import db
from app.models import AuditEvent, ExceptionKind, RotaException, User, WeeklyShift
from app.runtime import policies
from tests.factories import login_as, make_user, use_settings

VILNIUS = ZoneInfo("Europe/Vilnius")
POLICY = rota.RotaPolicy.default()  # Europe/Vilnius, Lithuanian holidays off
NO_HOLIDAYS = rota.RotaPolicy(VILNIUS, None, POLICY.opening_hours)


def local(*parts: int) -> datetime:
    """A wall-clock moment in Vilnius, in UTC (fold 0: the first of an hour that happens twice)."""
    return datetime(*parts, tzinfo=VILNIUS).astimezone(UTC)


def spans(text: str, starts: datetime, ends: datetime, policy=POLICY, exceptions=()) -> list[tuple[datetime, datetime]]:
    return rota.duty_spans(rota.parse_weekly(text), exceptions, starts, ends, policy)


def hours(span: tuple[datetime, datetime]) -> float:
    return (span[1] - span[0]).total_seconds() / 3600


# --- Weekly hours as text --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shifts"),
    [
        ("Mon-Fri 08:00-16:00", [(d, 480, 960) for d in range(5)]),
        ("Mon-Fri 08:00-16:00, Sat 09:00-13:00", [*((d, 480, 960) for d in range(5)), (5, 540, 780)]),
        ("sun 22:00-06:00", [(6, 1320, 360)]),
        ("Fri-Mon 20:00-08:00", [(0, 1200, 480), (4, 1200, 480), (5, 1200, 480), (6, 1200, 480)]),
        ("Mon,Wed 8-12; Tue 00:00-24:00", [(0, 480, 720), (1, 0, 1440), (2, 480, 720)]),
        ("Saturday 18:00-00:00", [(5, 1080, 1440)]),
        ("off", []),
    ],
)
def test_weekly_hours_are_read_from_text(text, shifts):
    assert [(s.weekday, s.starts_minute, s.ends_minute) for s in rota.parse_weekly(text)] == shifts


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Mon 08:00-08:00", "cannot start and end at the same time"),
        ("Mon 24:00-06:00", "is not a time of day"),
        ("Mon 08:75-10:00", "is not a time of day"),
        ("Mun 08:00-16:00", "“Mun” is not a day"),
        ("Mon-Fri 08:00-16:00, Wed 18:00-20:00", "Wed is given twice"),
        ("Mon-Fri", "Could not read"),
        ("Mon 08:00-16:00 and more", "Could not read"),
    ],
)
def test_unreadable_weekly_hours_say_what_is_wrong(app, text, message):
    with pytest.raises(rota.RotaError) as refused:
        rota.parse_weekly(text)
    assert message in str(refused.value)


def test_weekly_hours_are_written_back_grouped():
    text = "Mon-Fri 08:00-16:00, Sat 09:00-13:00, Sun 22:00-06:00"
    assert rota.format_weekly(rota.parse_weekly(text)) == text
    assert rota.format_weekly(rota.parse_weekly("Mon 08:00-12:00, Wed 08:00-12:00")) == (
        "Mon 08:00-12:00, Wed 08:00-12:00"
    )


# --- On duty: the edges -------------------------------------------------------------------------------


def test_a_night_shift_runs_past_midnight_and_ends_at_its_end():
    # Saturday 2026-11-28 22:00 to Sunday 06:00, winter time (UTC+2).
    found = spans("Sat 22:00-06:00", local(2026, 11, 27), local(2026, 12, 1))
    assert found == [(local(2026, 11, 28, 22), local(2026, 11, 29, 6))]
    assert found[0][0] == datetime(2026, 11, 28, 20, tzinfo=UTC)
    assert hours(found[0]) == 8


def test_the_night_shift_that_began_yesterday_is_on_at_midnight():
    """A window opening at midnight still sees last night's shift (it started the day before)."""
    found = spans("Sat 22:00-06:00", local(2026, 11, 29), local(2026, 11, 30))
    assert found == [(local(2026, 11, 29), local(2026, 11, 29, 6))]


def test_a_shift_to_midnight_ends_at_midnight():
    found = spans("Sat 18:00-24:00", local(2026, 11, 28), local(2026, 11, 30))
    assert found == [(local(2026, 11, 28, 18), local(2026, 11, 29))]
    assert spans("Sat 18:00-00:00", local(2026, 11, 28), local(2026, 11, 30)) == found


@pytest.mark.parametrize(
    ("saturday", "night_hours", "offset_before", "offset_after"),
    [
        (date(2026, 3, 28), 7, 2, 3),  # summer time starts on Sunday 29 March 2026 at 03:00
        (date(2026, 10, 24), 9, 3, 2),  # summer time ends on Sunday 25 October 2026 at 04:00
        (date(2027, 3, 27), 7, 2, 3),  # 28 March 2027 (Easter Sunday, too)
        (date(2027, 10, 30), 9, 3, 2),  # 31 October 2027
    ],
)
def test_daylight_saving_changes_keep_wall_clock_hours(saturday, night_hours, offset_before, offset_after):
    sunday = saturday + timedelta(days=1)
    window = (local(saturday.year, saturday.month, saturday.day), local(sunday.year, sunday.month, sunday.day, 23))
    # The night across the change is an hour shorter in March and an hour longer in October.
    night = spans("Sat 22:00-06:00", *window, policy=NO_HOLIDAYS)
    assert len(night) == 1 and hours(night[0]) == night_hours
    assert night[0][0] == datetime.combine(saturday, datetime.min.time(), UTC) + timedelta(hours=22 - offset_before)
    # A day shift on either side starts at 08:00 local time, whatever the offset.
    day = spans("Sat 08:00-16:00, Sun 08:00-16:00", *window, policy=NO_HOLIDAYS)
    assert [s.astimezone(VILNIUS).strftime("%a %H:%M") for s, _ in day] == ["Sat 08:00", "Sun 08:00"]
    assert [s.hour for s, _ in day] == [8 - offset_before, 8 - offset_after]
    assert all(hours(span) == 8 for span in day)


def test_a_whole_day_on_the_day_of_a_change_has_23_or_25_hours():
    march = spans("Sun 00:00-24:00", local(2026, 3, 29), local(2026, 3, 30), policy=NO_HOLIDAYS)
    october = spans("Sun 00:00-24:00", local(2026, 10, 25), local(2026, 10, 26), policy=NO_HOLIDAYS)
    assert [hours(s) for s in march] == [23] and [hours(s) for s in october] == [25]


def test_public_holidays_suspend_the_weekly_hours_unless_an_extra_shift_is_added():
    week = (local(2026, 12, 21), local(2026, 12, 28))  # Christmas Eve, Day and the 26th are Lithuanian holidays
    worked = spans("Mon-Fri 08:00-16:00", *week)
    assert [s.astimezone(VILNIUS).date().day for s, _ in worked] == [21, 22, 23]  # Thursday 24 and Friday 25 off
    assert len(spans("Mon-Fri 08:00-16:00", *week, policy=NO_HOLIDAYS)) == 5  # ROTA_HOLIDAYS_OFF=false
    extra = rota.DatedException(ExceptionKind.EXTRA, local(2026, 12, 24, 9), local(2026, 12, 24, 13))
    with_extra = spans("Mon-Fri 08:00-16:00", *week, exceptions=[extra])
    assert (local(2026, 12, 24, 9), local(2026, 12, 24, 13)) in with_extra


def test_time_off_cuts_the_weekly_hours_and_an_extra_shift_counts_even_during_it():
    week = (local(2026, 11, 30), local(2026, 12, 7))
    leave = rota.DatedException(ExceptionKind.OFF, local(2026, 12, 1), local(2026, 12, 3, 12))
    comes_in = rota.DatedException(ExceptionKind.EXTRA, local(2026, 12, 2, 10), local(2026, 12, 2, 14))
    found = spans("Mon-Fri 08:00-16:00", *week, exceptions=[leave, comes_in])
    assert [
        (s.astimezone(VILNIUS).strftime("%d %H:%M"), e.astimezone(VILNIUS).strftime("%H:%M")) for s, e in found
    ] == [
        ("30 08:00", "16:00"),
        ("02 10:00", "14:00"),
        ("03 12:00", "16:00"),
        ("04 08:00", "16:00"),
    ]


def test_gaps_are_the_moments_nobody_is_on_duty():
    day = (local(2026, 11, 30), local(2026, 12, 1))
    early = spans("Mon 06:00-14:00", *day)
    late = spans("Mon 13:00-22:00", *day)
    assert rota.gaps([early, late], *day) == [
        (local(2026, 11, 30), local(2026, 11, 30, 6)),
        (local(2026, 11, 30, 22), local(2026, 12, 1)),
    ]


# --- From the database, with the clock moved ------------------------------------------------------------


@pytest.fixture
def team(app):
    return (
        make_user("dermatologist", email="ruta@clinic.example", name="Dr Rūta Jonaitė"),
        make_user("dermatologist", email="tomas@clinic.example", name="Dr Tomas Kazlauskas"),
    )


def on_duty_at(moment: datetime) -> list[str]:
    with time_machine.travel(moment, tick=False):
        return sorted(user.email for user in notify.on_duty_dermatologists(moment, policies().rota))


def test_without_a_rota_every_active_dermatologist_is_on_duty(app, team):
    make_user("dermatologist", email="left@clinic.example", active=False)
    assert on_duty_at(local(2026, 12, 25, 3)) == ["ruta@clinic.example", "tomas@clinic.example"]
    assert rota.duty_board(policies().rota, local(2026, 12, 25, 3)).in_use is False


def test_once_anyone_has_hours_the_rota_decides(app, team):
    ruta, tomas = team
    rota.set_weekly(ruta, rota.parse_weekly("Mon-Fri 08:00-16:00"), Actor.system())
    rota.set_weekly(tomas, rota.parse_weekly("Sat-Sun 20:00-08:00"), Actor.system())
    # Sunday's night shift runs into Monday morning and hands over at 08:00 exactly.
    assert on_duty_at(local(2026, 11, 30, 7, 59)) == ["tomas@clinic.example"]
    assert on_duty_at(local(2026, 11, 30, 8)) == ["ruta@clinic.example"]
    assert on_duty_at(local(2026, 11, 30, 16)) == []
    assert on_duty_at(local(2026, 11, 29, 23, 59)) == ["tomas@clinic.example"]  # Sunday night
    assert on_duty_at(local(2026, 11, 30, 0, 0)) == ["tomas@clinic.example"]  # past midnight, still Sunday's shift
    assert on_duty_at(local(2026, 12, 24, 10)) == []  # Christmas Eve: a holiday
    board = rota.duty_board(policies().rota, local(2026, 11, 30, 9))
    assert [(user.email, until) for user, until in board.now] == [("ruta@clinic.example", local(2026, 11, 30, 16))]
    assert [(user.email, starts) for user, starts, _ in board.next] == [
        ("tomas@clinic.example", local(2026, 12, 5, 20))
    ]


def test_holidays_count_as_working_days_when_the_setting_says_so(app, monkeypatch, team):
    settings = use_settings(app, monkeypatch, ROTA_HOLIDAYS_OFF=False)
    rota.set_weekly(team[0], rota.parse_weekly("Mon-Fri 08:00-16:00"), Actor.system())
    with time_machine.travel(local(2026, 12, 24, 10), tick=False):
        assert [u.email for u in notify.on_duty_dermatologists(local(2026, 12, 24, 10), settings.rota)] == [
            "ruta@clinic.example"
        ]


# --- flask rota -----------------------------------------------------------------------------------------


def test_flask_rota_sets_hours_time_off_and_extra_shifts(app, runner, team):
    result = runner.invoke(args=["rota", "set", "--email", "RUTA@clinic.example", "--weekly", "Mon-Fri 08:00-16:00"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Weekly hours of ruta@clinic.example: Mon-Fri 08:00-16:00."
    off = runner.invoke(
        args=["rota", "off", "--email", "ruta@clinic.example", "--from", "2026-12-28", "--to", "2026-12-31"]
    )
    assert off.exit_code == 0, off.output
    assert off.output.strip() == "Time off for ruta@clinic.example: Mon 2026-12-28 00:00 to Fri 2027-01-01 00:00."
    extra = runner.invoke(
        args=[
            "rota",
            "extra",
            "--email",
            "tomas@clinic.example",
            "--from",
            "2026-12-27 09:00",
            "--to",
            "2026-12-27 13:00",
        ]
    )
    assert extra.exit_code == 0, extra.output
    entries = db.session.execute(select(RotaException).order_by(RotaException.id)).scalars().all()
    assert [(e.kind, e.starts_at, e.ends_at) for e in entries] == [
        ("off", local(2026, 12, 28), local(2027, 1, 1)),
        ("extra", local(2026, 12, 27, 9), local(2026, 12, 27, 13)),
    ]
    assert on_duty_at(local(2026, 12, 29, 10)) == []  # on leave
    assert on_duty_at(local(2026, 12, 27, 12)) == ["tomas@clinic.example"]  # a Sunday, extra shift
    details = db.session.execute(select(AuditEvent.detail).where(AuditEvent.action == "rota_changed")).scalars().all()
    assert len(details) == 3 and details[0] == f"user {team[0].id} weekly Mon-Fri 08:00-16:00"
    with time_machine.travel(local(2026, 12, 27, 12), tick=False):
        shown = runner.invoke(args=["rota", "show"])
    assert "ruta@clinic.example" in shown.output and "Mon-Fri 08:00-16:00" in shown.output
    assert "On duty now: tomas@clinic.example (until Sun 2026-12-27 13:00)" in shown.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set", "--email", "ruta@clinic.example", "--weekly", "Mon 8-8"], "cannot start and end at the same time"),
        (["set", "--email", "nobody@clinic.example", "--weekly", "Mon 8-9"], "No account with email"),
        (["set", "--email", "desk@clinic.example", "--weekly", "Mon 8-9"], "Only dermatologists have working hours"),
        (["off", "--email", "ruta@clinic.example", "--from", "2026-12-31", "--to", "2026-12-01"], "must come after"),
        (["off", "--email", "ruta@clinic.example", "--from", "31.12.2026", "--to", "2027-01-02"], "is not a date"),
    ],
)
def test_flask_rota_refuses_what_it_cannot_store(app, runner, team, args, message):
    make_user("staff", email="desk@clinic.example")
    result = runner.invoke(args=["rota", *args])
    assert result.exit_code == 1 and message in result.output
    assert db.session.execute(select(WeeklyShift)).first() is None
    assert db.session.execute(select(RotaException)).first() is None


def test_flask_users_names_and_unnames_the_medical_lead(app, runner, team):
    assert runner.invoke(args=["users", "medical-lead", "--email", "tomas@clinic.example"]).exit_code == 0
    assert db.session.get(User, team[1].id).is_medical_lead is True
    assert "medical lead" in runner.invoke(args=["users", "list"]).output
    removed = runner.invoke(args=["users", "medical-lead", "--email", "tomas@clinic.example", "--off"])
    assert removed.output.strip() == "tomas@clinic.example is no longer a medical lead."
    assert db.session.get(User, team[1].id).is_medical_lead is False


# --- The accounts page -------------------------------------------------------------------------------


@pytest.fixture
def admin(app):
    return make_user("admin", email="admin@clinic.example")


def weekly_form(**days: tuple[str, str]) -> dict[str, str]:
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    form = {}
    for number, name in enumerate(names):
        starts, ends = days.get(name, ("", ""))
        form[f"starts_{number}"], form[f"ends_{number}"] = starts, ends
    return form


def test_an_admin_sets_weekly_hours_on_the_accounts_page(app, client, admin, team):
    ruta = team[0]
    login_as(client, admin)
    page = client.get(f"/staff/users/{ruta.id}")
    assert page.status_code == 200 and 'id="rota"' in page.text and "Weekly working hours" in page.text
    form = weekly_form(mon=("08:00", "16:00"), tue=("08:00", "16:00"), sat=("22:00", "06:00"))
    saved = client.post(f"/staff/users/{ruta.id}/rota/weekly", data=form, follow_redirects=True)
    assert saved.status_code == 200
    assert "Working hours saved: Mon-Tue 08:00-16:00, Sat 22:00-06:00." in saved.text
    assert 'value="22:00"' in saved.text  # the form shows what is stored
    rows = db.session.execute(select(WeeklyShift).order_by(WeeklyShift.weekday)).scalars().all()
    assert [(r.weekday, r.starts_minute, r.ends_minute) for r in rows] == [(0, 480, 960), (1, 480, 960), (5, 1320, 360)]
    listing = client.get("/staff/users")
    assert "Mon-Tue 08:00-16:00, Sat 22:00-06:00" in listing.text


def test_a_half_filled_day_is_refused_and_keeps_what_was_typed(app, client, admin, team):
    ruta = team[0]
    login_as(client, admin)
    rota.set_weekly(ruta, rota.parse_weekly("Fri 10:00-12:00"), Actor.system())
    form = weekly_form(mon=("08:00", "16:00"), wed=("09:30", ""))
    refused = client.post(f"/staff/users/{ruta.id}/rota/weekly", data=form)
    assert refused.status_code == 422
    assert "Give both times, or neither." in refused.text
    assert 'value="09:30"' in refused.text and 'value="16:00"' in refused.text
    rows = db.session.execute(select(WeeklyShift)).scalars().all()
    assert [(r.weekday, r.starts_minute) for r in rows] == [(4, 600)]  # nothing changed


def test_an_admin_adds_and_removes_time_off_on_the_accounts_page(app, client, admin, team):
    ruta = team[0]
    with time_machine.travel(local(2026, 12, 1, 9), tick=False):
        login_as(client, admin)
        added = client.post(
            f"/staff/users/{ruta.id}/rota/exceptions",
            data={"kind": "off", "starts_on": "2026-12-24", "starts_at": "", "ends_on": "2026-12-27", "ends_at": ""},
            follow_redirects=True,
        )
        assert added.status_code == 200 and "Added to the rota." in added.text
        entry = db.session.execute(select(RotaException)).scalar_one()
        assert (entry.kind, entry.starts_at, entry.ends_at) == ("off", local(2026, 12, 24), local(2026, 12, 28))
        backwards = client.post(
            f"/staff/users/{ruta.id}/rota/exceptions",
            data={
                "kind": "extra",
                "starts_on": "2026-12-27",
                "starts_at": "14:00",
                "ends_on": "2026-12-27",
                "ends_at": "09:00",
            },
        )
        assert backwards.status_code == 422 and "The end must come after the start." in backwards.text
        assert 'value="2026-12-27"' in backwards.text
        removed = client.post(f"/staff/users/{ruta.id}/rota/exceptions/{entry.id}/remove", follow_redirects=True)
        assert "Removed from the rota." in removed.text
    assert db.session.execute(select(RotaException)).first() is None


def test_the_medical_lead_is_set_on_the_accounts_page_and_only_by_admins(app, client, admin, team):
    tomas = team[1]
    login_as(client, tomas)
    assert client.post(f"/staff/users/{tomas.id}/medical-lead", data={"medical_lead": "y"}).status_code == 403
    assert client.post(f"/staff/users/{tomas.id}/rota/weekly", data=weekly_form()).status_code == 403
    client.post("/logout")
    login_as(client, admin)
    done = client.post(f"/staff/users/{tomas.id}/medical-lead", data={"medical_lead": "y"}, follow_redirects=True)
    assert "This account is now a medical lead." in done.text
    assert db.session.get(User, tomas.id).is_medical_lead is True
    client.post(f"/staff/users/{tomas.id}/medical-lead", data={})
    assert db.session.get(User, tomas.id).is_medical_lead is False


# --- On duty now and next, on the queue and the dashboard -------------------------------------------------


def test_the_queue_and_the_dashboard_show_who_is_on_duty_now_and_next(app, client, admin, team):
    ruta, tomas = team
    make_user("dermatologist", email="ieva@clinic.example", name="Dr Ieva Petrauskienė")
    rota.set_weekly(ruta, rota.parse_weekly("Mon-Fri 08:00-16:00"), Actor.system())
    rota.set_weekly(tomas, rota.parse_weekly("Mon-Fri 16:00-22:00"), Actor.system())
    with time_machine.travel(local(2026, 12, 1, 9), tick=False):
        login_as(client, ruta)
        queue = client.get("/queue/").text
        client.post("/logout")
        login_as(client, admin)
        dashboard = client.get("/staff/").text
    for page in (queue, dashboard):
        now_part = page[page.index("<dt>Now</dt>") : page.index("<dt>Next</dt>")]
        next_part = page[page.index("<dt>Next</dt>") : page.index("</dl>", page.index("<dt>Next</dt>"))]
        assert "Dr Rūta Jonaitė" in now_part and "Dr Tomas" not in now_part
        assert "Dr Tomas Kazlauskas" in next_part
    assert "Never on duty (no working hours): Dr Ieva Petrauskienė." in dashboard
    assert "Never on duty" not in queue  # dermatologists are not told about colleagues' hours


def test_without_a_rota_the_queue_says_everyone_counts_as_on_duty(app, client, team):
    login_as(client, team[0])
    assert "No rota is set, so every active dermatologist counts as on duty" in client.get("/queue/").text
