"""Forms for staff sign-in and two-step sign-in."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(_l("Enter your email address.")), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter your password.")), Length(max=1000)])
    next = HiddenField()


class SecondStepForm(FlaskForm):
    """The code asked for after the password: from the authenticator app, or a recovery code."""

    code = StringField(
        _l("Code"),
        validators=[DataRequired(_l("Enter the 6-digit code from your app, or a recovery code.")), Length(max=64)],
    )


class AuthenticatorCodeForm(FlaskForm):
    """A fresh code from the authenticator app: to finish setting it up, or to change its settings."""

    code = StringField(
        _l("6-digit code from the app"),
        validators=[DataRequired(_l("Enter the 6-digit code your app shows now.")), Length(max=64)],
    )
