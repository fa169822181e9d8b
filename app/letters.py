"""The patient's letter as a PDF: text already written in the patient's language goes in, bytes come out.

fpdf2 draws it with a font vendored in static/fonts (DejaVu Sans, cut down to the Latin alphabets),
embedded in the file, so Lithuanian letters (ą č ę ė į š ų ū ž) print the same on every machine
whatever fonts it has. Characters the font lacks (an emoji in an answer, say) are left out with a
warning in the log rather than failing the download.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fpdf import FPDF

FONT_DIR = Path(__file__).resolve().parent.parent / "static" / "fonts"
REGULAR = FONT_DIR / "DejaVuSans-Latin.ttf"
BOLD = FONT_DIR / "DejaVuSans-Bold-Latin.ttf"
FAMILY = "DejaVuSans"
LINE = 5.5  # mm between lines of body text

# fpdf2 (through fontTools) logs every font table it reads at INFO level.
logging.getLogger("fontTools").setLevel(logging.WARNING)


@dataclass(frozen=True)
class LetterText:
    """Everything the letter says, already in the reader's language."""

    language: str
    title: str
    clinic_name: str
    clinic_address: str
    date_line: str
    details: list[tuple[str, str]]  # (label, value): reference, patient, date of birth
    sections: list[tuple[str, str]]  # (heading, text): the four answer fields that have text
    remote_note: str
    signature: list[str]  # the dermatologist's name, their licence number
    footer: str  # e.g. "DRM-7K3Q9X · page {page}"
    created_at: datetime


class _Letter(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font(FAMILY, "", 8)
        self.set_text_color(90, 90, 90)
        # An explicit replace, not str.format: the footer holds the reference and translated words.
        self.cell(0, 8, self.footer_text.replace("{page}", str(self.page_no())), align="C")


def render(letter: LetterText) -> bytes:
    pdf = _Letter(format="A4")
    pdf.footer_text = letter.footer
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_font(FAMILY, "", str(REGULAR))
    pdf.add_font(FAMILY, "B", str(BOLD))
    pdf.set_title(letter.title)
    pdf.set_author(letter.clinic_name)
    pdf.set_creator(letter.clinic_name)
    pdf.set_lang(letter.language)
    pdf.set_creation_date(letter.created_at)
    pdf.add_page()

    def paragraph(text: str, size: float = 10.5, style: str = "", gap: float = 0) -> None:
        pdf.set_font(FAMILY, style, size)
        pdf.multi_cell(0, LINE, text, new_x="LMARGIN", new_y="NEXT")
        if gap:
            pdf.ln(gap)

    paragraph(letter.clinic_name, size=15, style="B")
    if letter.clinic_address:
        paragraph(letter.clinic_address, size=9.5)
    pdf.ln(2)
    pdf.set_draw_color(15, 118, 110)
    pdf.set_line_width(0.6)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(5)
    paragraph(letter.title, size=14, style="B", gap=2)
    paragraph(letter.date_line, gap=1)
    for label, value in letter.details:
        pdf.set_font(FAMILY, "B", 10.5)
        label_width = pdf.get_string_width(label + ": ") + 1
        pdf.cell(label_width, LINE, label + ":")
        pdf.set_font(FAMILY, "", 10.5)
        pdf.multi_cell(0, LINE, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for heading, text in letter.sections:
        paragraph(heading, size=11.5, style="B", gap=0.5)
        paragraph(text, gap=3.5)
    pdf.ln(2)
    paragraph(letter.remote_note, size=9.5, gap=6)
    for number, line in enumerate(letter.signature):
        paragraph(line, style="B" if number == 0 else "")
    return bytes(pdf.output())
