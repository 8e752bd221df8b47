"""The registry as frozen objects: what templates, the search index and JSON-LD read.

Built once from validated plain data; nothing writes back to it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .schema import US_STATES, WEEKDAYS
from .urls import UrlPatterns

DAY_NAMES = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday",
             "fri": "Friday", "sat": "Saturday", "sun": "Sunday"}
LANGUAGE_NAMES = {
    "ar": "Arabic", "de": "German", "en": "English", "es": "Spanish", "fa": "Persian", "fr": "French",
    "gu": "Gujarati", "hi": "Hindi", "it": "Italian", "ja": "Japanese", "ko": "Korean", "pl": "Polish",
    "pt": "Portuguese", "ru": "Russian", "tl": "Tagalog", "uk": "Ukrainian", "ur": "Urdu",
    "vi": "Vietnamese", "zh": "Chinese",
}


@dataclass(frozen=True)
class Entry:
    """A service (treatment) or condition."""

    kind: str  # "service" or "condition"
    slug: str
    name: str
    summary: str
    also_known_as: tuple[str, ...]
    url: str
    save_as: str


@dataclass(frozen=True)
class Address:
    street: str
    city: str
    state: str
    postal_code: str
    street2: str = ""

    @property
    def state_name(self) -> str:
        return US_STATES[self.state]

    @property
    def one_line(self) -> str:
        street = ", ".join(part for part in (self.street, self.street2) if part)
        return f"{street}, {self.city}, {self.state} {self.postal_code}"


@dataclass(frozen=True)
class Geo:
    lat: float
    lon: float


@dataclass(frozen=True)
class OpeningHours:
    day: str  # mon..sun
    ranges: tuple[tuple[str, str], ...]  # empty when closed

    # Cached: locations share their OpeningHours (see _opening_hours), and every clinic and
    # location page prints each day's name and text.
    @functools.cached_property
    def day_name(self) -> str:
        return DAY_NAMES[self.day]

    @property
    def closed(self) -> bool:
        return not self.ranges

    @functools.cached_property
    def text(self) -> str:
        return "Closed" if self.closed else ", ".join(f"{a}\u2013{b}" for a, b in self.ranges)


@dataclass(frozen=True)
class Location:
    clinic_slug: str
    slug: str
    name: str
    placeholder: bool
    address: Address
    phone: str
    fax: str
    hours: tuple[OpeningHours, ...]
    geo: Geo | None
    url: str  # the clinic page with this location's anchor
    page_url: str  # the location's own page
    save_as: str

    @property
    def anchor(self) -> str:
        return f"location-{self.slug}"

    @property
    def phone_href(self) -> str:
        return tel_href(self.phone)

    @property
    def fax_href(self) -> str:
        return tel_href(self.fax) if self.fax else ""


@dataclass(frozen=True)
class Physician:
    clinic_slug: str
    slug: str
    name: str
    placeholder: bool
    credentials: tuple[str, ...]
    board_certifications: tuple[str, ...]
    bio: str
    url: str
    save_as: str

    @property
    def display_name(self) -> str:
        return ", ".join((self.name, *self.credentials))


@dataclass(frozen=True)
class Referral:
    placeholder: bool = False
    fax: str = ""
    phone: str = ""
    email: str = ""
    requirements: tuple[str, ...] = ()
    notes: str = ""

    @property
    def phone_href(self) -> str:
        return tel_href(self.phone)


@dataclass(frozen=True)
class Clinic:
    slug: str
    name: str
    placeholder: bool
    website: str
    summary: str
    accepting_new_patients: bool
    telehealth: bool | None  # None: not stated
    languages: tuple[str, ...]
    insurance: tuple[str, ...]
    services: tuple[Entry, ...]
    conditions: tuple[Entry, ...]
    last_verified: dt.date
    physicians: tuple[Physician, ...]
    locations: tuple[Location, ...]
    referral: Referral | None
    url: str
    save_as: str
    refer_url: str  # the printable page for clinicians who refer a patient
    refer_save_as: str
    update_url: str  # the clinic's profile-update form
    update_save_as: str
    # The entry as validated plain data: what profile updates hash and merge.
    raw: dict[str, Any] = field(repr=False, compare=False, hash=False)

    @property
    def language_names(self) -> tuple[str, ...]:
        return tuple(LANGUAGE_NAMES.get(code.split("-")[0], code) for code in self.languages)

    @property
    def has_placeholders(self) -> bool:
        return (self.placeholder or any(loc.placeholder for loc in self.locations)
                or any(doc.placeholder for doc in self.physicians)
                or bool(self.referral and self.referral.placeholder))

    @property
    def states(self) -> tuple[str, ...]:
        return tuple(sorted({loc.address.state for loc in self.locations}))

    @property
    def entry_hash(self) -> str:
        return entry_hash(self.raw)


@dataclass(frozen=True)
class Listed:
    """A location as the lists of every location show it. Those pages are given only these
    fields, so their keys (cache.py) cover just what they print: a phone edit re-renders none."""

    clinic_name: str
    url: str  # the location's page
    city: str
    location_name: str  # "" when it is its clinic's only location


@dataclass(frozen=True)
class ListedClinic:
    """A clinic as the treatment and condition pages list it (see ``Listed``)."""

    slug: str
    name: str
    url: str
    places: tuple[str, ...]  # "City, ST" of each location, in the registry's order


@dataclass(frozen=True)
class StateCount:
    code: str
    name: str
    count: int  # locations


@dataclass(frozen=True)
class StateGroup:
    code: str
    name: str
    locations: tuple[Listed, ...]


class ClinicSummary(NamedTuple):
    """What the pages and files that cover every clinic need of one clinic: its record on the
    treatment and condition pages, its locations as the lists by state show them, and its own
    pages. Plain tuples all through, kept between builds by the clinic's digest (``tuple(summary)``),
    so that a rebuild after an edit makes the model of the edited clinic only; the records
    (``ListedClinic``, ``Listed``) are made from them only for a page that is rendered."""

    listed: tuple[str, str, str, tuple[str, ...]]  # ListedClinic's fields
    locations: tuple[tuple[str, str, tuple[str, str, str, str]], ...]  # (state, location slug, Listed's fields)
    # (kind, slug, url, save_as) of its pages: its own, referral and update pages, its locations', physicians'
    pages: tuple[tuple[str, str, str, str], ...]

    @classmethod
    def of(cls, clinic: Clinic) -> ClinicSummary:
        several = len(clinic.locations) > 1
        places = tuple(f"{loc.address.city}, {loc.address.state}" for loc in clinic.locations)
        return cls(
            (clinic.slug, clinic.name, clinic.url, places),
            tuple((loc.address.state, loc.slug, (clinic.name, loc.page_url, loc.address.city,
                                                  loc.name if several else ""))
                  for loc in clinic.locations),
            (("clinic", clinic.slug, clinic.url, clinic.save_as),
             ("refer", clinic.slug, clinic.refer_url, clinic.refer_save_as),
             ("update", clinic.slug, clinic.update_url, clinic.update_save_as),
             *(("location", loc.slug, loc.page_url, loc.save_as) for loc in clinic.locations),
             *(("physician", doc.slug, doc.url, doc.save_as) for doc in clinic.physicians)),
        )

    def listed_clinic(self) -> ListedClinic:
        return ListedClinic(*self.listed)


class Clinics(Mapping[str, Clinic]):
    """The clinics by slug, each made from its validated data when it is first asked for.

    A rebuild after an edit renders the pages of the edited clinic only, and what covers
    every clinic comes from ``ClinicSummary`` values kept between builds: making the model
    of all 10,000 clinics would be a fifth of that rebuild. Anything that reads every
    clinic still gets them all.
    """

    def __init__(self, data: dict[str, dict[str, Any]], make: Callable[[str, dict[str, Any]], Clinic]) -> None:
        self._data = data
        self._make = make
        self._made: dict[str, Clinic] = {}

    def __getitem__(self, slug: str) -> Clinic:
        clinic = self._made.get(slug)
        if clinic is None:
            clinic = self._made[slug] = self._make(slug, self._data[slug])
        return clinic

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, slug: object) -> bool:  # Mapping's own would make the model to answer
        return slug in self._data

    def data(self, slug: str) -> dict[str, Any]:
        """A clinic's validated plain data (what its model is made from)."""
        return self._data[slug]

    @property
    def made(self) -> int:
        """How many clinics' models have been made so far (the build logs it: after an edit, one)."""
        return len(self._made)


class Physicians(Mapping[str, Physician]):
    """Every physician by slug; a physician's clinic is made when the physician is asked for."""

    def __init__(self, clinics: Clinics) -> None:
        self._clinics = clinics
        self._clinic_of = {doc: slug for slug in clinics for doc in clinics.data(slug).get("physicians", {})}

    def __getitem__(self, slug: str) -> Physician:
        return next(doc for doc in self._clinics[self._clinic_of[slug]].physicians if doc.slug == slug)

    def __iter__(self) -> Iterator[str]:
        return iter(self._clinic_of)

    def __len__(self) -> int:
        return len(self._clinic_of)

    def __contains__(self, slug: object) -> bool:  # Mapping's own would make the clinic to answer
        return slug in self._clinic_of


@dataclass(frozen=True)
class Registry:
    services: dict[str, Entry]
    conditions: dict[str, Entry]
    clinics: Clinics

    @functools.cached_property
    def physicians(self) -> Physicians:
        return Physicians(self.clinics)

    @property
    def location_count(self) -> int:
        return sum(len(self.clinics.data(slug)["locations"]) for slug in self.clinics)

    def clinic_of(self, item: Physician | Location) -> Clinic:
        return self.clinics[item.clinic_slug]

    def clinics_sorted(self) -> list[Clinic]:
        return [self.clinics[slug] for slug in self.slugs_sorted]

    @functools.cached_property
    def slugs_sorted(self) -> tuple[str, ...]:
        """Clinic slugs by clinic name (then slug), from the data: the order of every list of clinics."""
        return tuple(sorted(self.clinics, key=lambda slug: (self.clinics.data(slug)["name"].casefold(), slug)))

    def summaries(self) -> dict[str, ClinicSummary]:
        """Every clinic's summary, by name (a build keeps them between builds instead)."""
        return {clinic.slug: ClinicSummary.of(clinic) for clinic in self.clinics_sorted()}

    @staticmethod
    def by_state(summaries: Mapping[str, ClinicSummary]) -> list[StateGroup]:
        """Every location grouped by state (states by name, then clinics by name), from the
        clinics' ``summaries`` (in ``slugs_sorted`` order)."""
        groups: dict[str, list[tuple[str, str, str, tuple[str, str, str, str]]]] = {}
        for summary in summaries.values():
            for state, slug, row in summary.locations:
                groups.setdefault(state, []).append((row[2].casefold(), row[0].casefold(), slug, row))
        return [StateGroup(code, US_STATES[code],
                           tuple(Listed(*row) for *_key, row in sorted(rows, key=lambda r: r[:3])))
                for code, rows in sorted(groups.items(), key=lambda item: US_STATES[item[0]])]

    @staticmethod
    def state_counts(summaries: Mapping[str, ClinicSummary]) -> list[StateCount]:
        """The number of locations in each state (states by name): ``by_state`` without the lists."""
        counts: dict[str, int] = {}
        for summary in summaries.values():
            for state, _slug, _row in summary.locations:
                counts[state] = counts.get(state, 0) + 1
        return [StateCount(code, US_STATES[code], count)
                for code, count in sorted(counts.items(), key=lambda item: US_STATES[item[0]])]

    def offering_slugs(self, entry: Entry) -> list[str]:
        """The slugs of the clinics that offer a service or treat a condition, by name (made from
        the data: no clinic's model is needed)."""
        return list(self._offering.get((entry.kind, entry.slug), ()))

    def count_offering(self, entry: Entry) -> int:
        return len(self._offering.get((entry.kind, entry.slug), ()))

    @functools.cached_property
    def _offering(self) -> dict[tuple[str, str], list[str]]:
        """(kind, slug) -> clinic slugs by name, made in one pass: 10,000 clinics, 30 entries."""
        index: dict[tuple[str, str], list[str]] = {}
        for slug in self.slugs_sorted:
            data = self.clinics.data(slug)
            for kind, entries in (("service", data["services"]), ("condition", data.get("conditions", ()))):
                for entry in entries:
                    index.setdefault((kind, entry), []).append(slug)
        return index


def tel_href(number: str) -> str:
    """``tel:`` URI (RFC 3966 global number): digits only, so nothing else reaches the href."""
    return "tel:+" + re.sub(r"\D", "", number)


def entry_hash(raw: dict[str, Any]) -> str:
    """SHA-256 of an entry as canonical JSON (keys sorted, compact, UTF-8), as the update format defines."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def build_registry(data: dict[str, Any], urls: UrlPatterns, geocoded: dict[str, Geo] | None = None) -> Registry:
    """Plain validated data -> frozen model. ``geocoded`` maps ``clinic/location`` to coordinates."""
    geocoded = geocoded or {}
    services = {slug: _entry("service", slug, value, urls) for slug, value in data["services"].items()}
    conditions = {slug: _entry("condition", slug, value, urls) for slug, value in data["conditions"].items()}
    clinics = Clinics(data["clinics"], functools.partial(_clinic, services=services, conditions=conditions,
                                                         urls=urls, geocoded=geocoded))
    return Registry(services, conditions, clinics)


def _entry(kind: str, slug: str, value: dict[str, Any], urls: UrlPatterns) -> Entry:
    url, save_as = urls.for_kind(kind, slug=slug)
    return Entry(kind, slug, value["name"], value["summary"], tuple(value.get("also_known_as", ())), url, save_as)


def _clinic(slug: str, value: dict[str, Any], services: dict[str, Entry], conditions: dict[str, Entry],
            urls: UrlPatterns, geocoded: dict[str, Geo]) -> Clinic:
    url, save_as = urls.for_kind("clinic", slug=slug)
    refer_url, refer_save_as = urls.for_kind("refer", slug=slug)
    update_url, update_save_as = urls.for_kind("update", slug=slug)
    referral = value.get("referral")
    return Clinic(
        slug=slug,
        name=value["name"],
        placeholder=value.get("placeholder", False),
        website=value.get("website", ""),
        summary=value["summary"],
        accepting_new_patients=value["accepting_new_patients"],
        telehealth=value.get("telehealth"),
        languages=tuple(value["languages"]),
        insurance=tuple(value.get("insurance", ())),
        services=tuple(services[s] for s in value["services"]),
        conditions=tuple(conditions[c] for c in value.get("conditions", ())),
        last_verified=dt.date.fromisoformat(value["last_verified"]),
        physicians=tuple(_physician(slug, doc_slug, doc, urls)
                         for doc_slug, doc in value.get("physicians", {}).items()),
        locations=tuple(_location(slug, loc_slug, loc, url, urls, geocoded)
                        for loc_slug, loc in value["locations"].items()),
        referral=Referral(
            placeholder=referral.get("placeholder", False), fax=referral.get("fax", ""),
            phone=referral.get("phone", ""), email=referral.get("email", ""),
            requirements=tuple(referral.get("requirements", ())), notes=referral.get("notes", ""),
        ) if referral else None,
        url=url,
        save_as=save_as,
        refer_url=refer_url,
        refer_save_as=refer_save_as,
        update_url=update_url,
        update_save_as=update_save_as,
        raw=value,
    )


def _physician(clinic_slug: str, slug: str, value: dict[str, Any], urls: UrlPatterns) -> Physician:
    url, save_as = urls.for_kind("physician", slug=slug)
    return Physician(clinic_slug, slug, value["name"], value.get("placeholder", False),
                     tuple(value.get("credentials", ())), tuple(value.get("board_certifications", ())),
                     value.get("bio", ""), url, save_as)


def _location(clinic_slug: str, slug: str, value: dict[str, Any], clinic_url: str, urls: UrlPatterns,
              geocoded: dict[str, Geo]) -> Location:
    geo = value.get("geo")
    page_url, save_as = urls.for_kind("location", clinic=clinic_slug, slug=slug)
    hours = value.get("hours", {})
    return Location(
        clinic_slug=clinic_slug,
        slug=slug,
        name=value["name"],
        placeholder=value.get("placeholder", False),
        address=Address(**value["address"]),
        phone=value["phone"],
        fax=value.get("fax", ""),
        hours=tuple(_opening_hours(day, hours[day]) for day in WEEKDAYS if day in hours),
        geo=Geo(geo["lat"], geo["lon"]) if geo else geocoded.get(f"{clinic_slug}/{slug}"),
        url=f"{clinic_url}#location-{slug}",
        page_url=page_url,
        save_as=save_as,
    )


@functools.lru_cache(maxsize=4096)
def _opening_hours(day: str, text: str) -> OpeningHours:
    """One (frozen) object for each day and hours text: most locations keep the same few hours,
    so their text is made once and the registry holds some 20 objects instead of 7 a location."""
    return OpeningHours(day, _ranges(text))


def _ranges(text: str) -> tuple[tuple[str, str], ...]:
    if text == "closed":
        return ()
    return tuple(tuple(part.strip().split("-")) for part in text.split(","))  # type: ignore[misc]
