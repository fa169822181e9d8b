"""A wrong setting stops the app, the worker and every command at start-up, with one clear line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import config as app_config
from app import create_app

ROOT = Path(__file__).resolve().parent.parent

WRONG_SETTINGS = [
    ({"SLA_CALENDAR": "clinical"}, "SLA_CALENDAR"),
    ({"SLA_CALENDAR": "clinic", "CLINIC_OPENING_HOUR": 20, "CLINIC_CLOSING_HOUR": 8}, "CLINIC_CLOSING_HOUR"),
    ({"CLINIC_OPENING_HOUR": 25}, "CLINIC_OPENING_HOUR"),
    ({"CLINIC_CLOSING_HOUR": 0}, "CLINIC_CLOSING_HOUR"),
    ({"RESPONSE_TARGET_HOURS": 4, "SLA_WARNING_HOURS": 4}, "SLA_WARNING_HOURS"),
    ({"RESPONSE_TARGET_HOURS": 0}, "RESPONSE_TARGET_HOURS"),
    ({"LANGUAGES": ["en", "de"]}, "LANGUAGES"),
    ({"LANGUAGES": []}, "LANGUAGES"),
    ({"STAFF_ALERT_LANGUAGE": "fr"}, "STAFF_ALERT_LANGUAGE"),
    ({"LANGUAGES": ["en"], "STAFF_ALERT_LANGUAGE": "lt"}, "STAFF_ALERT_LANGUAGE"),
    ({"STORAGE_BACKEND": "s3"}, "STORAGE_BACKEND"),
    ({"SUBMIT_RATE_LIMIT": "ten an hour"}, "SUBMIT_RATE_LIMIT"),
    ({"LOGIN_RATE_LIMIT": "20 per fortnight"}, "LOGIN_RATE_LIMIT"),
    ({"PHOTO_MAX_EDGE": 500}, "PHOTO_MAX_EDGE"),
    ({"DISPLAY_TIMEZONE": "Europe/Kaunas"}, "DISPLAY_TIMEZONE"),
    ({"CLINIC_HOLIDAYS_COUNTRY": "XX"}, "CLINIC_HOLIDAYS_COUNTRY"),
    ({"PUBLIC_BASE_URL": "clinic.example"}, "PUBLIC_BASE_URL"),
    ({"MAX_PHOTOS": 0}, "MAX_PHOTOS"),
]


@pytest.mark.parametrize(("overrides", "setting"), WRONG_SETTINGS)
def test_a_wrong_setting_is_refused_naming_it_and_what_is_allowed(overrides, setting):
    with pytest.raises(app_config.ConfigError) as refused:
        app_config.load("testing", overrides)
    message = str(refused.value)
    assert refused.value.setting == setting
    assert message.startswith(f"Setting {setting}=") and "use " in message and "\n" not in message


def test_the_shipped_defaults_and_a_clinic_calendar_are_accepted():
    for name in ("development", "testing"):
        app_config.load(name)
    settings = app_config.load(
        "testing", {"SLA_CALENDAR": "clinic", "CLINIC_OPENING_HOUR": 8, "CLINIC_CLOSING_HOUR": 20}
    )
    assert settings["SLA_CALENDAR"] == "clinic"


def test_a_language_without_a_compiled_catalogue_is_refused(tmp_path):
    catalogues = tmp_path / "translations"
    shutil.copytree(ROOT / "translations", catalogues, ignore=shutil.ignore_patterns("*.mo"))
    with pytest.raises(app_config.ConfigError, match=r"LANGUAGES='en,lt'.*pybabel compile.*'lt'"):
        create_app("testing", {"BABEL_TRANSLATION_DIRECTORIES": str(catalogues), "UPLOAD_DIR": str(tmp_path)})


def test_a_wrong_number_in_the_environment_is_named(monkeypatch):
    monkeypatch.setenv("RESPONSE_TARGET_HOURS", "24h")
    with pytest.raises(app_config.ConfigError, match=r"RESPONSE_TARGET_HOURS='24h'.*whole number"):
        app_config.load("development")


def _environment(tmp_path, **settings) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MAIL_", "DATABASE_"))}
    env.update(
        APP_CONFIG="development",
        FLASK_APP="wsgi:app",
        DATABASE_URL=f"sqlite:///{tmp_path / 'clinic.sqlite'}",
        UPLOAD_DIR=str(tmp_path / "uploads"),
        **settings,
    )
    return env


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["-m", "flask", "worker", "--once"],
        ["-m", "flask", "sla", "check"],
        ["-m", "flask", "users", "list"],
        ["-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", "127.0.0.1:0", "wsgi:app"],
    ],
    ids=["worker", "sla-check", "users", "gunicorn"],
)
def test_processes_refuse_to_start_with_one_clear_line(tmp_path, command):
    finished = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env=_environment(tmp_path, SLA_CALENDAR="clinc"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode != 0
    lines = [line for line in finished.stderr.splitlines() if "SLA_CALENDAR" in line]
    allowed = "'calendar' (every hour counts) or 'clinic' (opening hours)"
    assert lines == [f"skin-clinic: Setting SLA_CALENDAR='clinc' is not allowed: use {allowed}."]
    assert "Traceback" not in finished.stderr
