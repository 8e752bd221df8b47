"""The registry as frozen objects: what templates, the search index and JSON-LD read.

Built once from validated plain data; nothing writes back to it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

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

    @classmethod
    def of(cls, clinic: Clinic) -> ListedClinic:
        return cls(clinic.slug, clinic.name, clinic.url,
                   tuple(f"{loc.address.city}, {loc.address.state}" for loc in clinic.locations))


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


@dataclass(frozen=True)
class Registry:
    services: dict[str, Entry]
    conditions: dict[str, Entry]
    clinics: dict[str, Clinic]

    @functools.cached_property
    def physicians(self) -> dict[str, Physician]:
        return {doc.slug: doc for clinic in self.clinics.values() for doc in clinic.physicians}

    def clinic_of(self, item: Physician | Location) -> Clinic:
        return self.clinics[item.clinic_slug]

    def clinics_sorted(self) -> list[Clinic]:
        return list(self._by_name)

    @functools.cached_property
    def _by_name(self) -> tuple[Clinic, ...]:
        return tuple(sorted(self.clinics.values(), key=lambda c: (c.name.casefold(), c.slug)))

    def by_state(self) -> list[StateGroup]:
        """Every location grouped by state (states by name, then clinics by name)."""
        groups: dict[str, list[tuple[Clinic, Location]]] = {}
        for clinic in self.clinics_sorted():
            for location in clinic.locations:
                groups.setdefault(location.address.state, []).append((clinic, location))
        return [StateGroup(code, US_STATES[code], tuple(
                    Listed(clinic.name, location.page_url, location.address.city,
                           location.name if len(clinic.locations) > 1 else "")
                    for clinic, location in sorted(pairs, key=lambda p: (
                        p[1].address.city.casefold(), p[0].name.casefold(), p[1].slug))))
                for code, pairs in sorted(groups.items(), key=lambda item: US_STATES[item[0]])]

    def offering(self, entry: Entry) -> list[Clinic]:
        """Clinics that offer a service or treat a condition, by name."""
        return list(self._offering.get((entry.kind, entry.slug), ()))

    @functools.cached_property
    def _offering(self) -> dict[tuple[str, str], list[Clinic]]:
        """(kind, slug) -> clinics by name, made in one pass: 10,000 clinics, 30 entries."""
        index: dict[tuple[str, str], list[Clinic]] = {}
        for clinic in self.clinics_sorted():
            for entry in (*clinic.services, *clinic.conditions):
                index.setdefault((entry.kind, entry.slug), []).append(clinic)
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
    clinics = {slug: _clinic(slug, value, services, conditions, urls, geocoded)
               for slug, value in data["clinics"].items()}
    return Registry(services, conditions, clinics)


def _entry(kind: str, slug: str, value: dict[str, Any], urls: UrlPatterns) -> Entry:
    url, save_as = urls.for_kind(kind, slug=slug)
    return Entry(kind, slug, value["name"], value["summary"], tuple(value.get("also_known_as", ())), url, save_as)


def _clinic(slug: str, value: dict[str, Any], services: dict[str, Entry], conditions: dict[str, Entry],
            urls: UrlPatterns, geocoded: dict[str, Geo]) -> Clinic:
    url, save_as = urls.for_kind("clinic", slug=slug)
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
