"""What the patient's letter says: the clinic, the date, the reference, the patient, the four answer
fields, the dermatologist who signed them (name and licence number), and that the consultation was
remote and based on photos; always in the patient's language, whoever downloads it.

app/letters.py turns the result into a PDF. Both doors (the patient's private page and the queue)
come here, so patient and staff get the same letter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date
from flask_babel import force_locale, gettext

from app.letters import LetterText
from app.models import ANSWER, ConsultationRequest, Message
from app.timeutil import as_utc


@dataclass(frozen=True)
class Clinic:
    """Who writes the letter and sells the consultation (the CLINIC_* settings)."""

    name: str
    address: str
    company_code: str = ""  # on receipts, when set
    vat_number: str = ""


def answer_for_letter(consultation: ConsultationRequest, message_id: int | None = None) -> Message | None:
    """The answer a letter is for: the one asked for, or the latest; None if there is none."""
    answers = [m for m in consultation.messages if m.kind == ANSWER]
    if message_id is not None:
        return next((m for m in answers if m.id == message_id), None)
    return answers[-1] if answers else None


def letter_text(consultation: ConsultationRequest, answer: Message, clinic: Clinic, zone: ZoneInfo) -> LetterText:
    language = consultation.language or "en"
    signed_at: datetime = as_utc(answer.created_at).astimezone(zone)
    author = answer.author
    licence = answer.signed_licence_number or (author.licence_number if author is not None else None) or "–"
    with force_locale(language):
        born = consultation.date_of_birth
        fields = [
            (gettext("Assessment and likely diagnosis"), answer.assessment),
            (gettext("Recommended treatment"), answer.treatment),
            (gettext("Prescription note"), answer.prescription_note),
            (gettext("Follow-up advice"), answer.follow_up),
        ]
        return LetterText(
            language=language,
            title=gettext("Dermatologist's letter"),
            clinic_name=clinic.name,
            clinic_address=clinic.address,
            date_line=gettext("Date: %(date)s", date=format_date(signed_at.date(), "long", locale=language)),
            details=[
                (gettext("Reference"), consultation.reference),
                (gettext("Patient"), consultation.patient_name),
                (
                    gettext("Date of birth"),
                    format_date(born, "long", locale=language) if born else gettext("Not given"),
                ),
            ],
            sections=[(heading, text.strip()) for heading, text in fields if text and text.strip()],
            remote_note=gettext(
                "This was a remote consultation: the dermatologist saw only the photos and the description "
                "the patient sent online, without an examination in person. If the problem gets worse or "
                "new signs appear, see a doctor in person."
            ),
            signature=[
                author.name if author is not None else gettext("Dermatologist"),
                gettext("Dermatologist · licence number %(licence)s", licence=licence),
            ],
            footer=gettext(
                "%(clinic)s · %(reference)s · page %(page)s",
                clinic=clinic.name,
                reference=consultation.reference,
                page="{page}",
            ),
            created_at=signed_at,
        )
