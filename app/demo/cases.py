"""The hand-written examples (DEMO_CASES) and what the demo patients and dermatologists wrote.

A case says how a request went, in hours after its submission; stories.py plays it through the
real actions. A demo patient is derived from the request's
number, so the same number gives the same patient on every run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from app.conditions.content import fold
from app.consultations.staff_actions import Answer
from app.consultations.submission import PatientDetails


class Story(StrEnum):
    """How far a request's story goes."""

    NEW = "new"  # submitted, nobody has claimed it
    CLAIMED = "claimed"  # a dermatologist holds it
    ASKED = "asked"  # the dermatologist asked the patient a question
    REPLIED = "replied"  # ... and the patient replied: a second round
    ANSWERED = "answered"
    CLOSED = "closed"  # answered, then marked resolved by the patient


@dataclass(frozen=True)
class DemoCase:
    """One example request: how it went, in hours after submission ("reply" is the dermatologist's first message)."""

    slug: str | None
    story: Story
    age_hours: float
    holder: int | None = None  # which demo dermatologist holds it (0 or 1)
    photos: int = 1
    reply_after: float | None = None
    patient_reply_ago: float | None = None  # REPLIED: hours ago the patient answered the question
    closed_after: float | None = None


DEMO_CASES = (
    DemoCase("acne", Story.NEW, 2, photos=2),
    DemoCase("hand-eczema", Story.NEW, 0.5),
    DemoCase("psoriasis", Story.NEW, 21.5, photos=2),  # at risk
    DemoCase("urticaria", Story.NEW, 27),  # overdue, nobody has it
    DemoCase("palmoplantar-pustulosis", Story.NEW, 5, photos=2),
    DemoCase(None, Story.NEW, 9),  # the patient did not know what it was
    DemoCase("rosacea", Story.CLAIMED, 6, holder=0),
    DemoCase("moles-and-melanoma", Story.CLAIMED, 22, holder=1, photos=2),  # at risk
    DemoCase("scabies", Story.CLAIMED, 30, holder=0),  # overdue
    DemoCase("atopic-dermatitis", Story.ASKED, 40, holder=1, photos=2, reply_after=10),
    DemoCase("fungal-skin-infections", Story.REPLIED, 50, holder=0, reply_after=8, patient_reply_ago=3),
    DemoCase("pityriasis-rosea", Story.ANSWERED, 72, holder=0, photos=2, reply_after=14),
    DemoCase("warts", Story.ANSWERED, 96, holder=1, reply_after=30),  # answered late: target missed
    DemoCase("seborrhoeic-dermatitis", Story.ANSWERED, 26, holder=1, reply_after=5),
    DemoCase("contact-dermatitis", Story.CLOSED, 12 * 24, holder=0, photos=2, reply_after=9, closed_after=5 * 24),
    DemoCase("vitiligo", Story.CLOSED, 20 * 24, holder=1, reply_after=20, closed_after=7 * 24),
)
# Whose private pages the summary shows (indexes into DEMO_CASES): an answer, and a question to reply to.
SHOWCASE_LINKS = (11, 9)


# --- What the patients wrote ----------------------------------------------------------------------

DESCRIPTIONS = {
    "acne": "Spots on my cheeks and chin for about a year. Some are deep and sore and leave dark marks. "
    "Over-the-counter gels have not helped much.",
    "hand-eczema": "The skin on my hands is dry and cracked, worst between the fingers. It stings when I wash "
    "my hands at work (I am a nurse).",
    "psoriasis": "Thick red patches with silvery flakes on both elbows and knees. They itch at night and a new "
    "one has started on my scalp.",
    "urticaria": "Raised itchy welts that come and go all over my body, each lasting a few hours. It started "
    "after a cold three weeks ago.",
    "palmoplantar-pustulosis": "Small yellow blisters on the soles of both feet that turn brown and peel. "
    "Walking is painful some days.",
    "rosacea": "Redness across my nose and cheeks that gets worse with wine and hot drinks, now with small bumps.",
    "moles-and-melanoma": "A mole on my back that my partner says has grown and looks darker on one side. "
    "It sometimes itches.",
    "scabies": "Intense itching, much worse at night, with small bumps between my fingers and on my wrists. "
    "My son has started itching too.",
    "atopic-dermatitis": "My eczema has flared behind my knees and in the elbow creases. The skin is weeping "
    "in places and I cannot sleep for the itch.",
    "fungal-skin-infections": "A round red patch with a raised edge on my thigh that is slowly getting bigger. "
    "The middle looks clearer.",
    "pityriasis-rosea": "It started with one larger oval patch on my chest, and a week later many smaller ones "
    "appeared on my back and tummy.",
    "warts": "Rough growths on two fingers and one on the sole of my foot. They have been there for months.",
    "seborrhoeic-dermatitis": "Greasy yellowish scales on my scalp and red flaky skin beside my nose and in my "
    "eyebrows.",
    "contact-dermatitis": "An itchy red rash on my wrist exactly where my new watch strap sits, with tiny blisters.",
    "vitiligo": "White patches around my eyes and on the backs of my hands that have grown over the last year.",
    "melasma": "Brown patches on my forehead and upper lip that appeared during pregnancy and darken in summer.",
    "nail-fungus": "Two toenails have turned thick and yellow and crumble at the edges.",
    "hair-loss": "My hair has been coming out in handfuls for two months, and there is a round bald patch at the back.",
    "impetigo": "Crusty honey-coloured sores around my daughter's nose and mouth that are spreading.",
    "lichen-planus": "Purple flat-topped itchy bumps on my wrists and lacy white lines inside my cheeks.",
    "actinic-keratosis": "Rough scaly spots on my forehead and the top of my head that come back after I pick them.",
    "hidradenitis-suppurativa": "Painful lumps in my armpits that burst and leave scars, again and again.",
}
GENERIC_DESCRIPTION = "A red, itchy rash that has been spreading for a few weeks. I am not sure what it is."
# Keys as the intake form stores them (app/intake/forms.py).
BODY_SITES = ("face", "scalp", "neck", "chest", "back", "arms", "hands", "legs", "feet", "nails")
SYMPTOMS = ("itching", "pain", "burning", "scaling", "bleeding", "spreading", "blisters")
DURATIONS = ("days", "weeks", "months", "years", "recurring")
HISTORY = ("family_psoriasis", "family_eczema", "skin_cancer", "smoking")
FIRST_NAMES = (
    "Rūta",
    "Jonas",
    "Eglė",
    "Mantas",
    "Laura",
    "Paulius",
    "Sarah",
    "James",
    "Ieva",
    "Lukas",
    "Emma",
    "Daniel",
    "Gabija",
    "Tomas",
    "Olivia",
    "Marius",
    "Sofia",
    "Adam",
    "Ugnė",
    "Karolis",
)
LAST_NAMES = (
    "Kazlauskas",
    "Petraitė",
    "Smith",
    "Jonaitis",
    "Brown",
    "Vasiliauskienė",
    "Novak",
    "Žukauskas",
    "Williams",
    "Balčiūnas",
    "Garcia",
    "Stankevičiūtė",
    "Miller",
    "Rimkus",
    "Kowalski",
)
QUESTION_TEXT = (
    "Thank you for the photos. Could you send one more taken in daylight from about 30 cm away, and "
    "tell me whether anyone you live with has a similar rash?"
)
REPLY_TEXT = "Here is a photo in daylight. Nobody else at home has it. It itches most in the evening."


@dataclass(frozen=True)
class DemoPatient:
    """What a demo patient filled in on the form, and the language they used."""

    details: PatientDetails
    language: str


def patient(number: int, slug: str | None) -> DemoPatient:
    """The patient of demo request `number` (the same on every run)."""
    rng = random.Random(number)  # noqa: S311  (demo data: the same patient for a number on every run)  # nosec B311
    # The draws keep one order, so that a number keeps its patient from one version of the demo to the next.
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    language = "lt" if rng.random() < 0.15 else "en"
    phone = f"+370 6{rng.randint(0, 9999999):07d}" if rng.random() < 0.7 else None
    born = date(rng.randint(1950, 2007), rng.randint(1, 12), rng.randint(1, 28))
    sex = rng.choice(("female", "male", "other"))
    body_sites = sorted(rng.sample(BODY_SITES, rng.randint(1, 3)))
    duration = rng.choice(DURATIONS)
    symptoms = sorted(rng.sample(SYMPTOMS, rng.randint(1, 3)))
    medications = rng.choice((None, "None", "Cetirizine 10 mg when itchy", "Ibuprofen now and then"))
    allergies = rng.choice((None, "None known", "Penicillin"))
    history = sorted(rng.sample(HISTORY, rng.choice((0, 0, 1, 2))))
    details = PatientDetails(
        name=f"{first} {last}",
        email=f"{fold(first)}.{fold(last)}.{number}@example.com",
        phone=phone,
        date_of_birth=born,
        sex=sex,
        condition_slug=slug,
        body_sites=body_sites,
        duration=duration,
        symptoms=symptoms,
        description=DESCRIPTIONS.get(slug or "", GENERIC_DESCRIPTION),
        medications=medications,
        allergies=allergies,
        history=history,
        history_notes=None,
    )
    return DemoPatient(details, language)


def answer_for(slug: str | None) -> Answer:
    """The dermatologist's answer to a demo request about `slug`."""
    condition = (slug or "skin condition").replace("-", " ")
    return Answer(
        assessment=f"From your photos and description this looks most like {condition}. "
        "Nothing in the photos suggests anything serious.",
        treatment="Use a fragrance-free moisturiser twice a day and the cream below on the red areas "
        "for two weeks, then stop.",
        prescription_note="Hydrocortisone 1% cream, thin layer once a day, at most 14 days.",
        follow_up="If it is not clearly better in three weeks, or it spreads quickly, send a new request "
        "with fresh photos or see your family doctor.",
    )
