"""Guided photos: three views of each problem area, as teledermatology guidance asks (far: the whole
area with a landmark; medium; close-up at 10-15 cm with a coin or ruler beside it).

The form has one file input per slot, named `photo-<area>-<view>` (area 1, 2, ...), and one body-site
choice per area, named `area-<area>-site`. Each stored photo keeps its area, body site and view, so
the dermatologist sees them grouped, and a check-in's new photos are shown beside the old ones.
The total stays within MAX_PHOTOS, however the photos are spread over areas.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import FileStorage

FAR = "far"
MEDIUM = "medium"
CLOSE = "close"
VIEWS = (FAR, MEDIUM, CLOSE)

VIEW_LABELS = {FAR: _l("From a distance"), MEDIUM: _l("Medium distance"), CLOSE: _l("Close-up")}
VIEW_HINTS = {
    FAR: _l("The whole area with something recognisable, such as the whole arm with the elbow, about 1 metre away."),
    MEDIUM: _l("Closer, about 30 cm away: the affected patch and the skin around it."),
    CLOSE: _l("10 to 15 cm away and in focus, with a coin or a ruler beside it to show the size."),
}
# The drawing beside each slot (static/img/views/<view>.svg).
VIEW_PICTURES = {view: f"img/views/{view}.svg" for view in VIEWS}

_SLOT_FIELD = re.compile(r"^photo-(\d{1,2})-(far|medium|close)$")


@dataclass(frozen=True)
class Slot:
    area: int
    view: str


def slot_field(area: int, view: str) -> str:
    return f"photo-{area}-{view}"


def site_field(area: int) -> str:
    return f"area-{area}-site"


def parse_slot_field(name: str) -> Slot | None:
    match = _SLOT_FIELD.match(name or "")
    return Slot(int(match.group(1)), match.group(2)) if match else None


def max_areas(max_photos: int) -> int:
    """As many areas as photos allowed: each area needs at least one photo."""
    return max(1, max_photos)


def slotted_files(files: Any, areas: int) -> list[tuple[FileStorage, Slot]]:
    """The files posted in slot inputs, in area and view order (`files`: a MultiDict such as request.files)."""
    found = []
    for area in range(1, areas + 1):
        for view in VIEWS:
            for upload in files.getlist(slot_field(area, view)):
                if upload is not None and (upload.filename or "").strip():
                    found.append((upload, Slot(area, view)))
    return found


def area_sites(form: Mapping[str, str], areas: int, known_sites: Collection[str]) -> dict[int, str]:
    """The body site chosen for each area (unknown values are ignored)."""
    sites = {}
    for area in range(1, areas + 1):
        value = (form.get(site_field(area)) or "").strip()
        if value in known_sites:
            sites[area] = value
    return sites


def areas_shown(filled: Iterable[int], areas: int) -> int:
    """How many area blocks the form opens: every filled one, and at least the first."""
    highest = max(filled, default=1)
    return min(max(highest, 1), areas)


# --- Showing them: grouped by area, and before beside after --------------------------------------

P = TypeVar("P")


@dataclass
class AreaGroup:
    """The photos of one problem area, in view order (far, medium, close-up); area None: without a slot."""

    area: int | None
    body_site: str | None
    photos: list[Any] = field(default_factory=list)


def _view_rank(photo: Any) -> int:
    return VIEWS.index(photo.view) if photo.view in VIEWS else len(VIEWS)


def group(photos: Sequence[P]) -> list[AreaGroup]:
    """Photos grouped by area (in area order), each group in view order; photos without an area last."""
    groups: dict[tuple[int | None, str | None], AreaGroup] = {}
    for photo in photos:
        key = (photo.area, photo.body_site)  # type: ignore[attr-defined]
        groups.setdefault(key, AreaGroup(*key)).photos.append(photo)
    ordered = sorted(groups.values(), key=lambda g: (g.area is None, g.area or 0, g.body_site or ""))
    for area_group in ordered:
        area_group.photos.sort(key=lambda photo: (_view_rank(photo), photo.id or 0))
    return ordered


@dataclass(frozen=True)
class BeforeAfter:
    """One view of one area: the photo sent first, and the one sent with a later reply."""

    body_site: str | None
    view: str | None
    before: Any | None
    after: Any | None


def before_after(before: Sequence[Any], after: Sequence[Any]) -> list[BeforeAfter]:
    """Pairs of earlier and later photos of the same body site and view, in the order of the later ones.

    A later photo with no earlier match is shown alone (before None); earlier photos are used once.
    """
    unused = list(before)
    pairs = []
    for later in sorted(after, key=lambda p: (p.area or 99, p.body_site or "", _view_rank(p), p.id or 0)):
        match = _take(unused, later.body_site, later.view)
        pairs.append(BeforeAfter(later.body_site, later.view, match, later))
    return pairs


def _take(photos: list[Any], body_site: str | None, view: str | None) -> Any | None:
    """The first unused earlier photo of this site and view (only photos sent in a slot match)."""
    for index, photo in enumerate(photos):
        if view and photo.view == view and photo.body_site == body_site:
            return photos.pop(index)
    return None
