"""Registry schema version 1, as data.

One declaration per field gives the validator its checks, the README its table
(``python -m clinic_directory schema --markdown``) and outside tools a JSON Schema
(``python -m clinic_directory schema``). Change a field here and all three follow.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 1

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
    "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
    "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon",
    "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota",
    "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia",
    "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "PR": "Puerto Rico", "GU": "Guam", "VI": "U.S. Virgin Islands", "AS": "American Samoa",
    "MP": "Northern Mariana Islands",
}


@dataclass(frozen=True)
class Scalar:
    """A single value. ``kind`` names the check in ``validate.SCALAR_CHECKS``."""

    kind: str
    example: str = ""
    max_length: int = 0


@dataclass(frozen=True)
class Ref:
    """The slug of an entry defined in a top-level section (``services`` or ``conditions``)."""

    section: str


@dataclass(frozen=True)
class ListOf:
    item: Spec
    min_items: int = 0


@dataclass(frozen=True)
class Field:
    spec: Spec
    doc: str
    required: bool = False


@dataclass(frozen=True)
class Record:
    """A mapping with a fixed set of keys; any other key is an error (a typo must not drop data)."""

    name: str
    fields: dict[str, Field]


@dataclass(frozen=True)
class SlugMap:
    """A mapping from slugs to entries of one kind."""

    value: Spec
    min_items: int = 0
    key_doc: str = "slug"


@dataclass(frozen=True)
class DayHours:
    """``{mon: "08:00-17:00", ..., sun: closed}``; days not listed are unknown."""


Spec = Scalar | Ref | ListOf | Record | SlugMap | DayHours

TEXT = Scalar("text", "One or two plain-language sentences.", max_length=5000)
NAME = Scalar("string", "Katy Pain and Spine", max_length=200)
SHORT = Scalar("string", "Medicare", max_length=200)
PLACEHOLDER = Field(Scalar("boolean", "true"),
                    "true when details are stand-ins, not from a real source; shown on the site, blocks publish")

ENTRY = Record("entry", {
    "name": Field(NAME, "display name", required=True),
    "also_known_as": Field(ListOf(SHORT), "other names and abbreviations patients search for"),
    "summary": Field(TEXT, "plain-language description", required=True),
})

ADDRESS = Record("address", {
    "street": Field(NAME, "street address", required=True),
    "street2": Field(NAME, "suite, floor"),
    "city": Field(NAME, "city", required=True),
    "state": Field(Scalar("state", "TX"), "two-letter US state code", required=True),
    "postal_code": Field(Scalar("zip", '"77494"'), "5-digit ZIP code, quoted", required=True),
})

GEO = Record("geo", {
    "lat": Field(Scalar("latitude", "29.79"), "latitude in degrees, -90 to 90", required=True),
    "lon": Field(Scalar("longitude", "-95.82"), "longitude in degrees, -180 to 180", required=True),
})

LOCATION = Record("location", {
    "name": Field(NAME, "name of the office", required=True),
    "placeholder": PLACEHOLDER,
    "address": Field(ADDRESS, "postal address", required=True),
    "geo": Field(GEO, "coordinates; geocoded at build time when absent"),
    "phone": Field(Scalar("phone", '"+1-281-555-0100"'), "phone number, international form", required=True),
    "fax": Field(Scalar("phone", '"+1-281-555-0101"'), "fax number"),
    "hours": Field(DayHours(), "opening hours per weekday"),
})

PHYSICIAN = Record("physician", {
    "name": Field(NAME, "full name without title", required=True),
    "placeholder": PLACEHOLDER,
    "credentials": Field(ListOf(Scalar("string", "MD", max_length=20)), "degrees, e.g. MD, DO"),
    "board_certifications": Field(ListOf(SHORT), "specialty board certifications"),
    "bio": Field(TEXT, "short biography"),
})

REFERRAL = Record("referral", {
    "placeholder": PLACEHOLDER,
    "fax": Field(Scalar("phone", '"+1-281-555-0101"'), "fax for referrals"),
    "phone": Field(Scalar("phone", '"+1-281-555-0100"'), "phone for referring clinicians"),
    "email": Field(Scalar("email", "referrals@example.org"), "email for referrals"),
    "requirements": Field(ListOf(SHORT), "what a referral should include"),
    "notes": Field(TEXT, "anything else a referring clinician should know"),
})

CLINIC = Record("clinic", {
    "name": Field(NAME, "display name", required=True),
    "placeholder": PLACEHOLDER,
    "website": Field(Scalar("https-url", "https://example.org/"), "the clinic's own site; https only"),
    "summary": Field(TEXT, "plain-language description", required=True),
    "accepting_new_patients": Field(Scalar("boolean", "true"), "true or false", required=True),
    "telehealth": Field(Scalar("boolean", "false"), "offers telehealth visits; leave out when not known"),
    "languages": Field(ListOf(Scalar("language", "en"), min_items=1),
                       "languages spoken, as language codes (en, es, ...)", required=True),
    "insurance": Field(ListOf(SHORT), "insurance accepted"),
    "services": Field(ListOf(Ref("services"), min_items=1), "slugs from `services`", required=True),
    "conditions": Field(ListOf(Ref("conditions")), "slugs from `conditions`"),
    "last_verified": Field(Scalar("date", "2026-11-01"), "date the clinic last confirmed its profile",
                           required=True),
    "physicians": Field(SlugMap(PHYSICIAN, key_doc="physician slug, unique across the registry"),
                        "physicians by slug"),
    "locations": Field(SlugMap(LOCATION, min_items=1, key_doc="location slug, unique within the clinic"),
                       "locations by slug", required=True),
    "referral": Field(REFERRAL, "how other clinicians refer a patient"),
})

REGISTRY = Record("registry", {
    "schema": Field(Scalar("schema-version", "1"), "schema version; must be 1", required=True),
    "services": Field(SlugMap(ENTRY, key_doc="service slug"), "treatments clinics offer", required=True),
    "conditions": Field(SlugMap(ENTRY, key_doc="condition slug"), "conditions clinics treat", required=True),
    "clinics": Field(SlugMap(CLINIC, key_doc="clinic slug"), "the clinics", required=True),
})


# --- JSON Schema and docs export -------------------------------------------------

_SCALAR_JSON: dict[str, dict[str, object]] = {
    "string": {"type": "string"},
    "text": {"type": "string"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "https-url": {"type": "string", "format": "uri", "pattern": "^https://"},
    "email": {"type": "string", "format": "email"},
    "phone": {"type": "string", "pattern": r"^\+[0-9][0-9 -]{6,18}[0-9]$"},
    "zip": {"type": "string", "pattern": r"^[0-9]{5}$"},
    "state": {"type": "string", "enum": sorted(US_STATES)},
    "latitude": {"type": "number", "minimum": -90, "maximum": 90},
    "longitude": {"type": "number", "minimum": -180, "maximum": 180},
    "language": {"type": "string", "pattern": r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"},
    "schema-version": {"const": SCHEMA_VERSION},
}
HOURS_PATTERN = (r"^(closed|[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]"
                 r"(, *[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9])*)$")


def json_schema(spec: Spec = REGISTRY) -> dict[str, object]:
    """The registry schema as JSON Schema (draft 2020-12), for editors and outside tools."""
    if isinstance(spec, Scalar):
        out = dict(_SCALAR_JSON[spec.kind])
        if spec.max_length:
            out["maxLength"] = spec.max_length
        return out
    if isinstance(spec, Ref):
        return {"type": "string", "pattern": SLUG_PATTERN, "description": f"a slug defined in `{spec.section}`"}
    if isinstance(spec, ListOf):
        return {"type": "array", "items": json_schema(spec.item), "minItems": spec.min_items, "uniqueItems": True}
    if isinstance(spec, SlugMap):
        return {"type": "object", "minProperties": spec.min_items,
                "propertyNames": {"pattern": SLUG_PATTERN},
                "additionalProperties": json_schema(spec.value)}
    if isinstance(spec, DayHours):
        return {"type": "object", "additionalProperties": False,
                "properties": {day: {"type": "string", "pattern": HOURS_PATTERN} for day in WEEKDAYS}}
    out: dict[str, object] = {
        "type": "object", "additionalProperties": False,
        "required": [name for name, f in spec.fields.items() if f.required],
        "properties": {name: {**json_schema(f.spec), "description": f.doc} for name, f in spec.fields.items()},
    }
    if spec is REGISTRY:
        out = {"$schema": "https://json-schema.org/draft/2020-12/schema",
               "title": "Clinic registry, schema version 1", **out}
    return out


def field_rows(spec: Spec = REGISTRY, prefix: str = "") -> list[tuple[str, str, bool, str]]:
    """(dotted path, type, required, doc) for every field, in declaration order, for the README."""
    rows: list[tuple[str, str, bool, str]] = []
    if isinstance(spec, Record):
        for name, f in spec.fields.items():
            path = f"{prefix}.{name}" if prefix else name
            rows.append((path, type_name(f.spec), f.required, f.doc))
            rows.extend(field_rows(f.spec, path))
    elif isinstance(spec, SlugMap):
        rows.extend(field_rows(spec.value, f"{prefix}.<{spec.key_doc.split(',')[0]}>"))
    elif isinstance(spec, ListOf):
        rows.extend(field_rows(spec.item, f"{prefix}[]"))
    return rows


def type_name(spec: Spec) -> str:
    if isinstance(spec, Scalar):
        return spec.kind
    if isinstance(spec, Ref):
        return f"{spec.section[:-1]} slug"
    if isinstance(spec, ListOf):
        return f"list of {type_name(spec.item)}"
    if isinstance(spec, SlugMap):
        return f"mapping of {spec.key_doc.split(',')[0]} to {type_name(spec.value)}"
    if isinstance(spec, DayHours):
        return "hours per weekday (mon..sun: \"HH:MM-HH:MM\" or closed)"
    return spec.name
