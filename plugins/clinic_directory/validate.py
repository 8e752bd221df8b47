"""Check composed YAML nodes against the schema and turn them into plain data.

Every check appends to a list of problems and carries on, so one run reports
every mistake. Values come from the node's text and the tag libyaml's resolver
gave it, so YAML 1.1 surprises (``NO`` read as false, ``9:30`` read as 570, an
unquoted ZIP read as an integer) are reported rather than silently converted.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

import yaml

from . import schema as s
from .problems import Problem
from .source import MAPPING_TAG, SEQUENCE_TAG, STR_TAG, problem_at

BOOL_TAG = "tag:yaml.org,2002:bool"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
NULL_TAG = "tag:yaml.org,2002:null"
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"

SLUG_RE = re.compile(s.SLUG_PATTERN)
SEXAGESIMAL_RE = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
PHONE_RE = re.compile(r"^\+[0-9][0-9 -]{6,18}[0-9]$")
ZIP_RE = re.compile(r"^[0-9]{5}$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
TIME_RANGE_RE = re.compile(r"^([0-2][0-9]):([0-5][0-9])-([0-2][0-9]):([0-5][0-9])$")
# Characters that only ever reach a registry by accident or malice; they make text
# render differently from how it reads in the file (bidi overrides) or break lines.
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


class Checker:
    """Walks one file's node tree; collects problems in ``self.problems``."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.problems: list[Problem] = []
        # Collected during the walk, checked once every definition is known.
        self.refs: list[tuple[str, str, yaml.Node, str]] = []
        self.map_keys: list[tuple[s.SlugMap, str, yaml.Node, str]] = []

    def add(self, node: yaml.Node, path: str, message: str) -> None:
        self.problems.append(problem_at(self.label, node, path, message))

    # -- structure -------------------------------------------------------------

    def check(self, node: yaml.Node, spec: s.Spec, path: str) -> Any:
        """The plain value of ``node`` if it matches ``spec``, else None (with problems added)."""
        if is_custom_tag(node.tag):
            return None  # already reported by the source reader
        if isinstance(spec, s.Record):
            return self.record(node, spec, path)
        if isinstance(spec, s.SlugMap):
            return self.slug_map(node, spec, path)
        if isinstance(spec, s.ListOf):
            return self.list_of(node, spec, path)
        if isinstance(spec, s.DayHours):
            return self.day_hours(node, path)
        if isinstance(spec, s.Ref):
            value = self.scalar(node, s.Scalar("slug"), path)
            if value is not None:
                self.refs.append((spec.section, value, node, path))
            return value
        return self.scalar(node, spec, path)

    def mapping_items(self, node: yaml.Node, path: str, what: str) -> list[tuple[yaml.Node, yaml.Node]] | None:
        if node.tag != MAPPING_TAG or not isinstance(node, yaml.MappingNode):
            self.add(node, path, f"expected {what} (a mapping of key: value lines), got {describe(node)}")
            return None
        return [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]

    def record(self, node: yaml.Node, spec: s.Record, path: str) -> dict[str, Any] | None:
        items = self.mapping_items(node, path, f"a {spec.name}")
        if items is None:
            return None
        out: dict[str, Any] = {}
        present: set[str] = set()
        for key_node, value_node in items:
            key = sys.intern(key_node.value)  # one string for 100,000 "phone" keys, not 100,000
            child = join(path, key)
            present.add(key)
            field = spec.fields.get(key)
            if field is None:
                self.add(key_node, child, unknown_key_message(key, spec.fields))
                continue
            if is_null(value_node):
                if field.required:
                    self.add(value_node, child,
                             f"required field '{key}' has no value; expected {expectation(field.spec)}")
                continue
            value = self.check(value_node, field.spec, child)
            if value is not None:
                out[key] = value
        for key, field in spec.fields.items():
            if field.required and key not in present:
                self.add(node, join(path, key),
                         f"missing required field '{key}' ({field.doc}); expected {expectation(field.spec)}")
        return out

    def slug_map(self, node: yaml.Node, spec: s.SlugMap, path: str) -> dict[str, Any] | None:
        items = self.mapping_items(node, path, f"a mapping of {spec.key_doc.split(',')[0]}s to entries")
        if items is None:
            return None
        out: dict[str, Any] = {}
        for key_node, value_node in items:
            key = key_node.value
            child = join(path, key)
            if key_node.tag != STR_TAG or not SLUG_RE.match(key):
                self.add(key_node, child, f"'{key}' is not a valid {spec.key_doc.split(',')[0]}: "
                         f"use lowercase letters, digits and single hyphens, e.g. '{suggest_slug(key)}'")
                continue
            self.map_keys.append((spec, key, key_node, child))
            value = self.check(value_node, spec.value, child)
            if value is not None:
                out[key] = value
        if len(items) < spec.min_items:
            self.add(node, path, f"expected at least {spec.min_items} entry, found none")
        return out

    def list_of(self, node: yaml.Node, spec: s.ListOf, path: str) -> list[Any] | None:
        if node.tag != SEQUENCE_TAG or not isinstance(node, yaml.SequenceNode):
            hint = ""
            if isinstance(node, yaml.ScalarNode):
                hint = f"; write [{node.value}] for a single item"
            self.add(node, path, f"expected a list of {expectation(spec.item)}, got {describe(node)}{hint}")
            return None
        out: list[Any] = []
        seen: dict[Any, int] = {}
        for index, item in enumerate(node.value):
            child = f"{path}[{index}]"
            value = self.check(item, spec.item, child)
            if value is None:
                continue
            if value in seen:
                self.add(item, child, f"'{value}' is listed twice (also item {seen[value]}); list it once")
                continue
            seen[value] = index
            out.append(value)
        if len(node.value) < spec.min_items:
            self.add(node, path, f"expected at least {spec.min_items} item, found none")
        return out

    def day_hours(self, node: yaml.Node, path: str) -> dict[str, str] | None:
        items = self.mapping_items(node, path, "opening hours per weekday")
        if items is None:
            return None
        out: dict[str, str] = {}
        for key_node, value_node in items:
            day = key_node.value
            child = join(path, day)
            if day not in s.WEEKDAYS:
                self.add(key_node, child, f"unknown day '{day}'; expected one of {', '.join(s.WEEKDAYS)}")
                continue
            value = self.scalar(value_node, s.Scalar("hours"), child)
            if value is not None:
                out[day] = value
        return out

    # -- scalars ---------------------------------------------------------------

    def scalar(self, node: yaml.Node, spec: s.Scalar, path: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.add(node, path, f"expected {expectation(spec)}, got {describe(node)}")
            return None
        check = SCALAR_CHECKS[spec.kind]
        try:
            value = check(node)
        except BadValue as error:
            self.add(node, path, str(error))
            return None
        if isinstance(value, str):
            if spec.max_length and len(value) > spec.max_length:
                self.add(node, path, f"text is {len(value):,} characters long; keep it under {spec.max_length:,}")
                return None
            if CONTROL_RE.search(value):
                self.add(node, path, "contains control or bidirectional-override characters; remove them")
                return None
            if len(value) <= INTERN_UP_TO:
                return sys.intern(value)
        return value


# Short texts repeat across clinics (slugs, days, hours, states, languages): a registry of
# 10,000 clinics holds each one once instead of thousands of times (and so does its cache).
INTERN_UP_TO = 40


class BadValue(ValueError):
    """A scalar's message for the person fixing the file."""


def text_value(node: yaml.ScalarNode, example: str = "") -> str:
    """The node's text, if YAML read it as a string; explains YAML 1.1 surprises otherwise."""
    if node.tag == STR_TAG:
        return node.value
    raw = node.value
    if node.tag == BOOL_TAG:
        raise BadValue(f"expected text, but YAML reads the unquoted {raw} as the boolean "
                       f"{'true' if raw.lower() in ('y', 'yes', 'true', 'on') else 'false'}; "
                       f"put it in quotes: \"{raw}\"")
    if node.tag == INT_TAG and SEXAGESIMAL_RE.match(raw):
        raise BadValue(f"expected text, but YAML 1.1 reads the unquoted {raw} as the sexagesimal "
                       f"number {sexagesimal(raw)}; put it in quotes: \"{raw}\"")
    if node.tag in (INT_TAG, FLOAT_TAG, TIMESTAMP_TAG):
        raise BadValue(f"expected text{example}, but YAML reads the unquoted {raw} as a "
                       f"{node.tag.rsplit(':', 1)[1].replace('int', 'number').replace('float', 'number')}; "
                       f"put it in quotes: \"{raw}\"")
    raise BadValue(f"expected text{example}, got {describe(node)}")


def check_string(node: yaml.ScalarNode) -> str:
    value = text_value(node).strip()
    if not value:
        raise BadValue("expected text, got an empty string")
    return value


def check_slug(node: yaml.ScalarNode) -> str:
    value = text_value(node)
    if not SLUG_RE.match(value):
        raise BadValue(f"'{value}' is not a valid slug: use lowercase letters, digits and single hyphens, "
                       f"e.g. '{suggest_slug(value)}'")
    return value


def check_boolean(node: yaml.ScalarNode) -> bool:
    if node.tag == BOOL_TAG and node.value in ("true", "false"):
        return node.value == "true"
    if node.tag == BOOL_TAG:
        meaning = "true" if node.value.lower() in ("y", "yes", "true", "on") else "false"
        raise BadValue(f"write true or false, not {node.value} (YAML 1.1 reads it as {meaning}, "
                       "YAML 1.2 tools as text)")
    raise BadValue(f"expected true or false, got {describe(node)}")


def check_date(node: yaml.ScalarNode) -> str:
    raw = node.value
    if node.tag in (TIMESTAMP_TAG, STR_TAG):
        try:
            return dt.date.fromisoformat(raw).isoformat()
        except ValueError:
            if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw):
                raise BadValue(f"'{raw}' is not a real date; expected YYYY-MM-DD, e.g. 2026-11-01") from None
    raise BadValue(f"expected a date as YYYY-MM-DD (e.g. 2026-11-01), got {describe(node)}")


def check_https_url(node: yaml.ScalarNode) -> str:
    value = text_value(node).strip()
    scheme, sep, rest = value.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if not sep or scheme.lower() != "https":
        raise BadValue(f"expected an https:// address (e.g. https://example.org/), got '{value}'; "
                       "only https links are published")
    if not HOST_RE.match(host) or any(c.isspace() or c in "<>\"'`\\" for c in value):
        raise BadValue(f"'{value}' is not a valid web address; expected e.g. https://example.org/")
    return value


def check_email(node: yaml.ScalarNode) -> str:
    value = text_value(node).strip()
    if not EMAIL_RE.match(value):
        raise BadValue(f"expected an email address like referrals@example.org, got '{value}'")
    return value


def check_phone(node: yaml.ScalarNode) -> str:
    if node.tag == INT_TAG:
        raise BadValue(f"expected a phone number in quotes with its country code, like \"+1-281-555-0100\"; "
                       f"YAML reads the unquoted {node.value} as a number")
    value = text_value(node).strip()
    if not PHONE_RE.match(value):
        raise BadValue(f"'{value}' is not a phone number in international form; expected e.g. \"+1-281-555-0100\"")
    digits = re.sub(r"\D", "", value)
    if value.startswith("+1") and len(digits) != 11:
        raise BadValue(f"'{value}' has {len(digits) - 1} digits after +1; a US number has 10, e.g. \"+1-281-555-0100\"")
    return value


def check_zip(node: yaml.ScalarNode) -> str:
    # An unquoted ZIP is a number to YAML (07494 becomes 7494 in YAML 1.2 tools,
    # 01234 becomes 668 in YAML 1.1): the leading zero is lost, so insist on quotes.
    if not node.style and re.fullmatch(r"[0-9_]+", node.value):
        digits = node.value.replace("_", "")
        raise BadValue(f"expected a 5-digit ZIP code as a quoted string, got the integer {int(digits)}; "
                       f"write it in quotes: \"{digits.zfill(5)}\"")
    value = text_value(node).strip()
    if not ZIP_RE.match(value):
        raise BadValue(f"expected a 5-digit ZIP code as a quoted string (e.g. \"77494\"), got '{value}'")
    return value


def check_state(node: yaml.ScalarNode) -> str:
    value = text_value(node).strip()
    if value.upper() in s.US_STATES and value != value.upper():
        raise BadValue(f"write the state code in capitals: {value.upper()}")
    if value not in s.US_STATES:
        by_name = {name.lower(): code for code, name in s.US_STATES.items()}
        hint = f"; for {value} write {by_name[value.lower()]}" if value.lower() in by_name else ""
        raise BadValue(f"expected a two-letter US state code such as TX or IL, got '{value}'{hint}")
    return value


def coordinate(node: yaml.ScalarNode, low: float, high: float, what: str) -> float:
    if node.tag not in (INT_TAG, FLOAT_TAG):
        raise BadValue(f"expected the {what} as a number between {low:g} and {high:g}, got {describe(node)}")
    try:
        value = float(node.value.replace("_", ""))
    except ValueError:
        raise BadValue(f"expected the {what} as a decimal number, got '{node.value}'") from None
    if not low <= value <= high:
        raise BadValue(f"{what} {node.value} is out of range; expected a number between {low:g} and {high:g}")
    return value


def check_hours(node: yaml.ScalarNode) -> str:
    if node.tag == INT_TAG and SEXAGESIMAL_RE.match(node.value):
        raise BadValue(f"YAML 1.1 reads the unquoted {node.value} as the number {sexagesimal(node.value)}; "
                       "write opening hours in quotes as \"HH:MM-HH:MM\", e.g. \"09:30-17:00\", or closed")
    if node.tag == BOOL_TAG:
        raise BadValue(f"YAML reads the unquoted {node.value} as a boolean; "
                       "write opening hours as \"HH:MM-HH:MM\" (e.g. \"08:00-17:00\") or closed")
    value = text_value(node).strip()
    if value == "closed":
        return value
    ranges = [part.strip() for part in value.split(",")]
    previous_end = -1
    for part in ranges:
        match = TIME_RANGE_RE.match(part)
        if not match:
            raise BadValue(f"'{value}' is not opening hours; expected \"HH:MM-HH:MM\" in 24-hour time "
                           "(e.g. \"08:00-17:00\"; several ranges separated by commas) or closed")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 24 or (h2 == 24 and m2):
            raise BadValue(f"'{part}' is not a time of day; hours run from 00:00 to 24:00")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end <= start:
            raise BadValue(f"'{part}' ends before it starts; write the opening time first, e.g. \"08:00-17:00\"")
        if start <= previous_end:
            raise BadValue(f"'{value}' has overlapping or unordered ranges; list them in order of the day")
        previous_end = end
    return ", ".join(ranges)


def check_language(node: yaml.ScalarNode) -> str:
    value = text_value(node).strip()
    if not LANGUAGE_RE.match(value):
        raise BadValue(f"expected a language code such as en or es, got '{value}'")
    return value


def check_schema_version(node: yaml.ScalarNode) -> int:
    if node.tag == INT_TAG and node.value == str(s.SCHEMA_VERSION):
        return s.SCHEMA_VERSION
    raise BadValue(f"this tool reads registry schema version {s.SCHEMA_VERSION}; write schema: {s.SCHEMA_VERSION}")


SCALAR_CHECKS: dict[str, Callable[[yaml.ScalarNode], Any]] = {
    "string": check_string,
    "text": check_string,
    "slug": check_slug,
    "boolean": check_boolean,
    "date": check_date,
    "https-url": check_https_url,
    "email": check_email,
    "phone": check_phone,
    "zip": check_zip,
    "state": check_state,
    "latitude": lambda node: coordinate(node, -90, 90, "latitude"),
    "longitude": lambda node: coordinate(node, -180, 180, "longitude"),
    "hours": check_hours,
    "language": check_language,
    "schema-version": check_schema_version,
}


# -- helpers -------------------------------------------------------------------

def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def is_custom_tag(tag: str) -> bool:
    return tag.startswith("!") or tag.startswith("tag:yaml.org,2002:python")


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG


def describe(node: yaml.Node) -> str:
    """What YAML made of a node, in the words of someone reading the file."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    raw = node.value if len(node.value) <= 40 else node.value[:37] + "..."
    kind = {STR_TAG: "the text", BOOL_TAG: "the boolean", INT_TAG: "the number", FLOAT_TAG: "the number",
            NULL_TAG: "an empty value", TIMESTAMP_TAG: "the date"}.get(node.tag, "the value")
    return kind if node.tag == NULL_TAG else f"{kind} '{raw}'"


def expectation(spec: s.Spec) -> str:
    if isinstance(spec, s.Scalar):
        if spec.kind in ("string", "text"):
            return f"text such as \"{spec.example}\"" if spec.example else "text"
        return f"a {spec.kind} such as {spec.example}" if spec.example else f"a {spec.kind}"
    return s.type_name(spec)


def unknown_key_message(key: str, fields: dict[str, s.Field]) -> str:
    return f"unknown key '{key}'; {did_you_mean(key, fields)}expected one of: {', '.join(fields)}"


def did_you_mean(word: str, names: Iterable[str]) -> str:
    """"did you mean 'x'? " for the closest of ``names`` to a misspelt ``word``, else ""."""
    close = difflib.get_close_matches(word, list(names), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def suggest_slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "my-clinic"


def int_value(raw: str) -> int | str:
    """The integer YAML 1.1 makes of ``raw`` (a leading 0 means octal there)."""
    digits = raw.replace("_", "")
    try:
        if re.fullmatch(r"[-+]?0[0-7]+", digits):
            return int(digits, 8)
        return int(digits, 0)
    except ValueError:
        return raw


def sexagesimal(raw: str) -> int | str:
    try:
        total = 0
        for part in raw.lstrip("+-").replace("_", "").split(":"):
            total = total * 60 + int(part)
        return -total if raw.startswith("-") else total
    except ValueError:
        return raw


def validate_registry(label: str, root: yaml.Node) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Schema and cross-reference checks of a composed registry: (plain data, problems)."""
    checker = Checker(label)
    data = checker.check(root, s.REGISTRY, "(root)") if not isinstance(root, yaml.MappingNode) \
        else checker.check(root, s.REGISTRY, "")
    if data is None:
        return None, checker.problems
    for section, slug, node, path in checker.refs:
        defined = data.get(section, {})
        if slug not in defined:
            checker.add(node, path, f"'{slug}' is not defined in `{section}`; {did_you_mean(slug, defined)}"
                        f"add it there or use one of: {', '.join(sorted(defined)) or '(none defined)'}")
    first_physician: dict[str, str] = {}
    for spec, key, key_node, path in checker.map_keys:
        if spec.value is not s.PHYSICIAN:
            continue
        if key in first_physician and first_physician[key] != path:  # same path: a duplicate key, reported
            checker.add(key_node, path, f"physician slug '{key}' is already used at {first_physician[key]}; "
                        "physician slugs must be unique across the registry (add a distinguishing suffix)")
        else:
            first_physician[key] = path
    return data, checker.problems
