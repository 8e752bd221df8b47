"""Apply a clinic's profile update to the registry (``make apply-update FILE=update.yaml``).

An update file (INTERFACE.md, section 4) names one clinic and holds a partial clinic entry::

    clinic: katy-pain-and-spine
    submitted_by: office@example.org
    submitted_at: "2026-11-20T15:04:05Z"
    base: 3f1a...   # entry_hash of the clinic's entry the form was made from
    changes:        # mappings merge by key, lists replace, null deletes
      locations:
        katy:
          phone: "+1-281-555-0199"
    signature: ...  # HMAC-SHA256, hex; required when the clinic has a key

The stage reads the update, checks it (its own fields, the changes against the clinic schema,
``base`` against the clinic's current entry, the signature), merges the changes into the clinic's
entry and edits the registry's text in place. Any refusal leaves the registry byte-identical and
logs nothing; an update whose values the registry already holds writes and logs nothing either.

Layout. Only the lines holding a changed value are rewritten (``registry_edit.py``); the edited
text is read back and validated, and its data must equal the intended result exactly, or nothing
is written. An accepted update is written atomically (temporary file, fsync, rename) once
a copy of the old registry is in ``<registry>.backups/``, and one JSON line goes to
``<registry>.updates.log``.

Signatures. Each clinic may have a key (any text of 16 characters or more) in a YAML file mapping
clinic slugs to keys, by default ``<registry>.keys.yaml`` (secret: never commit it). When the
clinic has a key, ``signature`` must be HMAC-SHA256(key as UTF-8, canonical update) as 64 lowercase
hex digits. When it has none, an update carrying a signature is refused, so that a typo in the keys
file cannot quietly turn checking off (``signature: null`` counts as no signature). The canonical
update is the update file's top-level mapping without ``signature``, as JSON, encoded as UTF-8:

- mappings as objects with their keys sorted (by UTF-16 code units, as JavaScript's ``sort()``
  does; the same as code point order for every key the schema allows), at every level;
- no whitespace: separators ``,`` and ``:``;
- text as ``JSON.stringify`` writes it: ``"`` and ``\\`` escaped, U+0000-U+001F as ``\\b \\f \\n
  \\r \\t`` or ``\\u00xx`` (lowercase hex), every other character as itself (no ``\\uXXXX`` for
  non-ASCII);
- ``true``, ``false``, ``null``; a plain scalar YAML reads as a number as a JSON number, written as
  JavaScript writes numbers (``30`` not ``30.0``); any other scalar (a date, an unquoted
  ``submitted_at``) is its text exactly as written in the file.

Comments, key order and how a text is quoted in the update file do not change its canonical form
(whether a scalar is text, a number, a boolean or null does). In a browser: a ``canonical(value)``
that writes objects with ``Object.keys(value).sort()`` and ``JSON.stringify`` for each key and
scalar, then HMAC-SHA256 via ``crypto.subtle``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import fcntl
import hashlib
import hmac
import json
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from . import schema as s
from .cache import write_atomically
from .model import entry_hash
from .problems import InvalidInput, Problem
from .registry import REGISTRY_WHAT
from .registry_edit import LayoutError, Planner, apply_edits, child_spec, first_difference, same
from .source import MAPPING_TAG, STR_TAG, parse_yaml, problem_at, read_yaml
from .validate import (
    BOOL_TAG,
    FLOAT_TAG,
    INT_TAG,
    NULL_TAG,
    SLUG_RE,
    BadValue,
    Checker,
    check_email,
    check_slug,
    describe,
    did_you_mean,
    is_null,
    join,
    suggest_slug,
    validate_registry,
)

MAX_UPDATE_BYTES = 1024 * 1024  # a profile update is a few hundred bytes; a megabyte is plenty
MAX_KEYS_BYTES = 16 * 1024 * 1024
MIN_KEY_LENGTH = 16
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
DATETIME_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
                         r"(Z|[+-][0-9]{2}:[0-9]{2})$")
NUMBER_RE = re.compile(r"^[-+]?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$")

UPDATE_WHAT = "profile update (a mapping with clinic, submitted_by, submitted_at, base and changes)"
UPDATE_FIELDS = {
    "clinic": ("the slug of the clinic the update is for", True),
    "submitted_by": ("the email address of whoever made the update", True),
    "submitted_at": ("when the update was made, ISO 8601 date and time with a time zone", True),
    "base": ("the hash of the clinic's entry the update was made from (64 hex digits)", True),
    "changes": ("the changed fields, as a partial clinic entry", True),
    "signature": ("HMAC-SHA256 of the update with the clinic's key (64 hex digits)", False),
}


# -- reading the update ------------------------------------------------------------------------

@dataclass
class Update:
    """An update file as read: its fields (None where missing or wrong) and its node tree."""

    label: str
    root: yaml.MappingNode
    nodes: dict[str, yaml.Node]
    clinic: str | None = None
    submitted_by: str | None = None
    submitted_at: str | None = None
    base: str | None = None
    signature: str | None = None


def read_update(path: Path, label: str) -> tuple[Update | None, list[Problem]]:
    """The update's own fields, checked; ``changes`` is checked later, against the registry."""
    source = read_yaml(path, label, MAX_UPDATE_BYTES, what=UPDATE_WHAT)
    if source.root is None:
        return None, list(source.problems)
    problems = list(source.problems)
    root = source.root
    if not isinstance(root, yaml.MappingNode) or root.tag != MAPPING_TAG:
        problems.append(problem_at(label, root, "(root)", f"expected a {UPDATE_WHAT}, got {describe(root)}"))
        return None, problems
    nodes = {key.value: value for key, value in root.value if isinstance(key, yaml.ScalarNode)}
    update = Update(label, root, nodes)
    for key_node, _value in root.value:
        if not isinstance(key_node, yaml.ScalarNode):
            problems.append(problem_at(label, key_node, "(root)", f"expected a field name as the key, "
                                       f"got {describe(key_node)}"))
        elif key_node.value not in UPDATE_FIELDS:
            problems.append(problem_at(label, key_node, key_node.value,
                                       f"unknown field '{key_node.value}' in an update; "
                                       f"{did_you_mean(key_node.value, UPDATE_FIELDS)}"
                                       f"known fields are: {', '.join(UPDATE_FIELDS)}"))
    for key, (doc, required) in UPDATE_FIELDS.items():
        node = nodes.get(key)
        if node is None or (is_null(node) and not required):
            if required:
                problems.append(problem_at(label, root, key, f"missing required field '{key}' ({doc})"))
            continue
        try:
            value = _update_field(key, node)
        except BadValue as error:
            problems.append(problem_at(label, node, key, str(error)))
            continue
        if value is not None:
            setattr(update, key, value)
    return update, problems


def _update_field(key: str, node: yaml.Node) -> str | None:
    """One top-level field's value (``changes`` is only checked for being a non-empty mapping)."""
    if key == "changes":
        if not isinstance(node, yaml.MappingNode) or node.tag != MAPPING_TAG:
            raise BadValue(f"expected the changed fields as a mapping (a partial clinic entry), got {describe(node)}")
        if not node.value:
            raise BadValue("no changes: list the fields to change, "
                           "e.g. locations: {katy: {phone: \"+1-281-555-0199\"}}")
        return None
    if not isinstance(node, yaml.ScalarNode):
        raise BadValue(f"expected {UPDATE_FIELDS[key][0]}, got {describe(node)}")
    if key == "clinic":
        return check_slug(node)
    if key == "submitted_by":
        try:
            return check_email(node)
        except BadValue:
            raise BadValue(f"expected the email address of whoever made the update, like office@example.org; "
                           f"got {describe(node)}") from None
    if key == "submitted_at":
        # Taken as written: YAML 1.1 would make an unquoted one a timestamp, and its text is what was signed.
        if DATETIME_RE.match(node.value):
            try:
                dt.datetime.fromisoformat(node.value)
                return node.value
            except ValueError:
                pass
        raise BadValue(f"expected the date and time the update was made, ISO 8601 with a time zone, "
                       f"e.g. \"2026-11-20T15:04:05Z\"; got {describe(node)}")
    if not HEX64_RE.match(node.value) or node.tag not in (STR_TAG, INT_TAG, FLOAT_TAG):
        what = "the hash of the clinic's entry the update was made from" if key == "base" \
            else "the update's HMAC-SHA256 signature"
        raise BadValue(f"expected {what}: 64 lowercase hexadecimal digits; got {describe(node)}")
    return node.value


# -- signatures --------------------------------------------------------------------------------

def plain_update(node: yaml.Node) -> Any:
    """The update as the data it is signed as (module docstring): text as written, no YAML 1.1 typing."""
    if isinstance(node, yaml.MappingNode):
        return {key.value if isinstance(key, yaml.ScalarNode) else "?": plain_update(value)
                for key, value in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [plain_update(item) for item in node.value]
    if node.tag == NULL_TAG:
        return None
    if node.tag == BOOL_TAG:
        return node.value.lower() in ("true", "yes", "on", "y")
    if node.tag in (INT_TAG, FLOAT_TAG) and NUMBER_RE.match(node.value):
        return float(node.value) if re.search(r"[.eE]", node.value) else int(node.value)
    return node.value


def js_number(value: int | float) -> str:
    """A number as JavaScript writes it (``Number.prototype.toString``, which ``JSON.stringify`` uses)."""
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return "null"  # JSON.stringify(Infinity)
    if value == 0:
        return "0"
    # repr gives the shortest digits that read back as the same double, as JavaScript does.
    _sign, digits, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    text = "".join(map(str, digits))
    k, n = len(text), len(text) + exponent  # n: where the decimal point goes
    if k <= n <= 21:
        out = text + "0" * (n - k)
    elif 0 < n <= 21:
        out = f"{text[:n]}.{text[n:]}"
    elif -6 < n <= 0:
        out = "0." + "0" * -n + text
    else:
        mantissa = text[0] + (f".{text[1:]}" if k > 1 else "")
        out = f"{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
    return ("-" if value < 0 else "") + out


def _canonical_json(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return js_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_canonical_json(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: key.encode("utf-16-be"))  # JavaScript's sort()
        return "{" + ",".join(f"{json.dumps(key, ensure_ascii=False)}:{_canonical_json(value[key])}"
                              for key in keys) + "}"
    raise TypeError(f"cannot sign a {type(value).__name__}")


def canonical_update(plain: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the update without ``signature`` as canonical JSON (module docstring)."""
    return _canonical_json({key: value for key, value in plain.items() if key != "signature"}).encode("utf-8")


def sign(key: str, plain: dict[str, Any]) -> str:
    """HMAC-SHA256 of the canonical update with ``key`` (as UTF-8), as 64 lowercase hex digits."""
    return hmac.new(key.encode("utf-8"), canonical_update(plain), hashlib.sha256).hexdigest()


def default_keys_path(registry: Path) -> Path:
    return registry.with_name(registry.name + ".keys.yaml")


def read_keys(path: Path, label: str, clinics: dict[str, Any]) -> tuple[dict[str, str], list[Problem]]:
    """Clinic slug -> key. No file: no clinic has a key. Never puts a key in a message."""
    if not path.exists():
        return {}, []
    source = read_yaml(path, label, MAX_KEYS_BYTES, what="mapping of clinic slugs to signing keys")
    if source.root is None or source.problems:
        return {}, list(source.problems)
    root = source.root
    if not isinstance(root, yaml.MappingNode) or root.tag != MAPPING_TAG:
        return {}, [problem_at(label, root, "(root)",
                               f"expected a mapping of clinic slugs to keys, got {describe(root)}")]
    keys: dict[str, str] = {}
    problems: list[Problem] = []
    for key_node, value_node in root.value:
        slug = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
        if slug not in clinics:
            # A misspelt slug would leave the clinic without a key, so updates would go unchecked.
            problems.append(problem_at(label, key_node, slug, f"no clinic '{slug}' in the registry; "
                                       f"{did_you_mean(slug, clinics)}"
                                       "fix the slug or remove this key"))
            continue
        if not isinstance(value_node, yaml.ScalarNode) or value_node.tag != STR_TAG \
                or len(value_node.value.strip()) < MIN_KEY_LENGTH:
            problems.append(problem_at(label, value_node, slug, f"expected the clinic's key as text of at least "
                                       f"{MIN_KEY_LENGTH} characters, e.g. the output of "
                                       "python3 -c 'import secrets; print(secrets.token_hex(32))'"))
            continue
        keys[slug] = value_node.value
    return keys, problems


def signature_problems(update: Update, keys: dict[str, str], keys_label: str) -> list[Problem]:
    """Whether the signature matches the clinic's key (or is absent when the clinic has none)."""
    assert update.clinic is not None
    node = update.nodes.get("signature")
    given = update.signature
    key = keys.get(update.clinic)
    if key is None:
        if node is None or is_null(node):
            return []
        return [problem_at(update.label, node, "signature", f"no key is on file for {update.clinic} "
                           f"(in {keys_label}); remove the signature, or ask the maintainers to add the "
                           "clinic's key")]
    if given is None:
        where = node if node is not None else update.root
        if node is not None and not is_null(node):
            return []  # its form is wrong: already reported
        return [problem_at(update.label, where, "signature", "this clinic signs its updates, and this one has no "
                           "signature; make the update again on the clinic's update page and enter the clinic's key")]
    try:
        expected = sign(key, plain_update(update.root))
    except RecursionError:
        return [problem_at(update.label, update.root, "(root)", "the update is nested too deeply to check")]
    if not hmac.compare_digest(expected, given):
        return [problem_at(update.label, node, "signature", "the signature does not match this update and the "
                           "clinic's key: the update was changed after it was signed, or signed with another key; "
                           "make and sign it again on the clinic's update page")]
    return []


# -- checking and merging the changes -----------------------------------------------------------

MERGEABLE = (s.Record, s.SlugMap, s.DayHours)
class ChangeChecker(Checker):
    """Checks ``changes`` as a partial clinic entry. Its plain result holds None where a field is deleted.

    Where the clinic already has a mapping the change merges into it key by key; anything else (a
    scalar, a list, a new location) replaces or adds a whole value and is checked as a whole.
    """

    def partial(self, node: yaml.Node, spec: s.Spec, current: Any, path: str) -> Any:
        if isinstance(spec, MERGEABLE) and isinstance(current, dict) and isinstance(node, yaml.MappingNode) \
                and node.tag == MAPPING_TAG:
            if isinstance(spec, s.Record):
                return self.partial_record(node, spec, current, path)
            return self.partial_map(node, spec, current, path)
        return self.check(node, spec, path)

    def named(self, node: yaml.MappingNode, path: str) -> list[tuple[yaml.ScalarNode, yaml.Node]]:
        """The entries of a mapping whose keys are names (a YAML complex key, ``? [a, b]``, is not)."""
        for key_node, _value in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.add(key_node, path, f"expected a field name as the key, got {describe(key_node)}")
        return [(key, value) for key, value in node.value if isinstance(key, yaml.ScalarNode)]

    def partial_record(self, node: yaml.MappingNode, spec: s.Record, current: dict, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in self.named(node, path):
            key = key_node.value
            child = join(path, key)
            field_ = spec.fields.get(key)
            if field_ is None:
                self.add(key_node, child, f"unknown field '{key}' in a {spec.name}; {did_you_mean(key, spec.fields)}"
                         f"known fields are: {', '.join(spec.fields)}")
                continue
            if is_null(value_node):
                if field_.required:
                    self.add(value_node, child, f"'{key}' is required in a {spec.name} and cannot be deleted; "
                             f"give its new value instead ({field_.doc})")
                else:
                    out[key] = None
                continue
            value = self.partial(value_node, field_.spec, current.get(key), child)
            if value is not None:
                out[key] = value
        return out

    def partial_map(self, node: yaml.MappingNode, spec: s.SlugMap | s.DayHours, current: dict,
                    path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        what = "day" if isinstance(spec, s.DayHours) else spec.key_doc.split(",")[0].removesuffix(" slug")
        for key_node, value_node in self.named(node, path):
            key = key_node.value
            child = join(path, key)
            if isinstance(spec, s.DayHours) and key not in s.WEEKDAYS:
                self.add(key_node, child, f"unknown day '{key}'; expected one of {', '.join(s.WEEKDAYS)}")
                continue
            if isinstance(spec, s.SlugMap) and (key_node.tag != STR_TAG or not SLUG_RE.match(key)):
                self.add(key_node, child, f"'{key}' is not a valid {what} slug: use lowercase letters, digits and "
                         f"single hyphens, e.g. '{suggest_slug(key)}'")
                continue
            if is_null(value_node):
                if key in current:
                    out[key] = None
                elif isinstance(spec, s.SlugMap):  # probably a typo: say so rather than do nothing
                    self.add(key_node, child, f"there is no {what} '{key}' to delete; "
                             f"this clinic has: {', '.join(current) or '(none)'}")
                continue
            value = self.partial(value_node, child_spec(spec, key), current.get(key), child)
            if value is not None:
                out[key] = value
        if isinstance(spec, s.SlugMap) and spec.min_items:
            left = [key for key in current if out.get(key, current[key]) is not None] \
                + [key for key in out if key not in current]
            if len(left) < spec.min_items:
                self.add(node, path, f"this would leave the clinic without any {what}; it needs at least "
                         f"{spec.min_items}: add the new one in the same update")
        return out


def merge(current: dict[str, Any], changes: dict[str, Any], spec: s.Spec) -> dict[str, Any]:
    """``current`` with ``changes`` applied: mappings merge by key, anything else replaces, None deletes.
    A mapping the changes leave empty is removed, as the registry writes no empty mappings."""
    out = dict(current)
    for key, change in changes.items():
        if change is None:
            out.pop(key, None)
        elif isinstance(change, dict) and isinstance(out.get(key), dict) \
                and isinstance(child_spec(spec, key), MERGEABLE):
            out[key] = merge(out[key], change, child_spec(spec, key))
            if not out[key]:
                del out[key]
        else:
            out[key] = change
    return out


def locate(node: yaml.Node, path: str) -> yaml.Node | None:
    """The node at a dotted path (``locations.katy.phone``, ``services[1]``), or the deepest one found
    on the way; None when not even the first step is there."""
    found: yaml.Node | None = None
    for step in re.findall(r"\[[0-9]+\]|[^.\[\]]+", path):
        if step.startswith("[") and isinstance(node, yaml.SequenceNode) and int(step[1:-1]) < len(node.value):
            node = node.value[int(step[1:-1])]
        elif isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == step]
            if not match:
                break
            node = match[0]
        else:
            break
        found = node
    return found


# -- the whole stage ---------------------------------------------------------------------------

@dataclass
class Plan:
    """A checked update, ready to write."""

    update: Update
    old_bytes: bytes
    new_bytes: bytes
    changed: list[str]  # dotted paths in the clinic's entry
    new_hash: str
    data: dict[str, Any]  # the registry's plain data with the update applied (as the new text reads)


def prepare(update_path: Path, registry_path: Path, keys_path: Path, max_registry_bytes: int,
            update_label: str, registry_label: str, keys_label: str) -> Plan:
    """Every check, and the new registry text; raises ``InvalidInput`` listing every problem found."""
    update, problems = read_update(update_path, update_label)
    try:
        if registry_path.stat().st_size > max_registry_bytes:
            raise InvalidInput([*problems, Problem(registry_label, 1, 1, "(file)", f"the registry is over the "
                                                   f"limit of {max_registry_bytes:,} bytes")])
        old_bytes = registry_path.read_bytes()
    except OSError as error:
        raise InvalidInput([*problems, Problem(registry_label, 1, 1, "(file)",
                                               f"cannot read the registry: {error.strerror}")]) from None
    source = parse_yaml(old_bytes, registry_label, REGISTRY_WHAT)
    data, registry_problems = validate_registry(registry_label, source.root) if source.root is not None else (None, [])
    registry_problems = [*source.problems, *registry_problems]
    if registry_problems or data is None:
        # Not the clinic's doing: the maintainers fix the registry, then apply the update again.
        raise InvalidInput([*problems, *registry_problems, Problem(
            registry_label, 1, 1, "(file)", f"the registry has {len(registry_problems)} problem(s) of its own, "
            "listed here; no update is applied to it until they are fixed (make validate lists them too)")])
    if update is None or update.clinic is None:
        raise InvalidInput(problems)
    clinic = update.clinic
    if clinic not in data["clinics"]:
        problems.append(problem_at(update_label, update.nodes["clinic"], "clinic",
                                   f"no clinic '{clinic}' in {registry_label}; {did_you_mean(clinic, data['clinics'])}"
                                   "an update can only change a "
                                   "clinic that is listed (new clinics are added by the maintainers)"))
        raise InvalidInput(problems)
    keys, key_problems = read_keys(keys_path, keys_label, data["clinics"])
    if key_problems:
        raise InvalidInput([*problems, *key_problems])
    if "signature" in update.nodes or clinic in keys:
        problems.extend(signature_problems(update, keys, keys_label))

    current = data["clinics"][clinic]
    old_hash = entry_hash(current)
    if update.base is not None and update.base != old_hash:
        problems.append(problem_at(update_label, update.nodes["base"], "base",
                                   f"the profile of {clinic} has changed since this update's form was made "
                                   f"(the form had {update.base[:12]}..., the registry now has {old_hash[:12]}...); "
                                   "nothing was applied: make a new update from the clinic's current update page"))
    checker = ChangeChecker(update_label)
    changes_node = update.nodes.get("changes")
    changes = None
    if isinstance(changes_node, yaml.MappingNode) and changes_node.value:
        changes = checker.partial(changes_node, s.CLINIC, current, "changes")
    problems.extend(checker.problems)
    if problems or changes is None:
        raise InvalidInput(problems)

    merged = merge(current, changes, s.CLINIC)
    expected = {**data, "clinics": {**data["clinics"], clinic: merged}}  # nothing else changes
    new_bytes, changed = edited_registry(source.root, old_bytes, current, merged, clinic, registry_label,
                                         update, expected)
    return Plan(update, old_bytes, new_bytes, changed, entry_hash(merged), expected)


def edited_registry(root: yaml.Node, old_bytes: bytes, current: dict, merged: dict, clinic: str,
                    registry_label: str, update: Update, expected: dict) -> tuple[bytes, list[str]]:
    """The registry's text with the clinic's entry changed in place, read back and checked."""
    text = old_bytes.decode("utf-8")
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    body = text[len(bom):]
    changes_node = update.nodes["changes"]

    def layout_refusal(why: str) -> InvalidInput:
        return InvalidInput([problem_at(update.label, changes_node, "changes",
                                        f"could not apply this update while keeping the layout of {registry_label} "
                                        f"({why}); nothing was changed: apply it by hand, and please report this")])

    clinic_node = next(v for k, v in next(v for k, v in root.value if k.value == "clinics").value if k.value == clinic)
    planner = Planner(body)
    try:
        planner.mapping(clinic_node, current, merged, s.CLINIC, "")
        new_body = apply_edits(body, planner.edits)
    except LayoutError as error:
        raise layout_refusal(str(error)) from None
    new_bytes = (bom + new_body).encode("utf-8")
    if new_bytes == old_bytes:
        return new_bytes, []

    source = parse_yaml(new_bytes, registry_label, REGISTRY_WHAT)
    if source.root is None or source.problems:
        raise layout_refusal("the edited file would not be valid YAML")
    data, problems = validate_registry(registry_label, source.root)
    if problems:
        raise InvalidInput([_as_update_problem(p, clinic, update) for p in problems])
    if not same(data, expected, s.REGISTRY):
        raise layout_refusal(f"the edited file would not read back as intended, at "
                             f"clinics.{clinic}.{first_difference(data['clinics'][clinic], merged)}")
    return new_bytes, planner.changed


def _as_update_problem(problem: Problem, clinic: str, update: Update) -> Problem:
    """A problem of the changed registry, put on the update's line that caused it."""
    prefix = f"clinics.{clinic}"
    if problem.path.startswith((prefix + ".", prefix + "[")):
        relative = problem.path[len(prefix) + 1:]
        node = locate(update.nodes["changes"], relative)
        if node is not None:
            return problem_at(update.label, node, f"changes.{relative}", problem.message)
    # Outside the change (e.g. a physician slug now used twice, reported at its other use).
    return Problem(problem.file, problem.line, problem.column, problem.path,
                   problem.message + " (in the registry as this update would leave it)")


def unified_diff(old: str, new: str, label: str, context: int = 3) -> str:
    """``diff -u`` of the registry. difflib's matcher would take a line that recurs in every clinic
    (``accepting_new_patients: true``) for noise and show it as changed, so it is run without that
    heuristic, on the lines between the common head and tail only (a few, however large the file)."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    middle = difflib.SequenceMatcher(None, a[head:len(a) - tail], b[head:len(b) - tail], autojunk=False)
    opcodes = [(tag, i1 + head, i2 + head, j1 + head, j2 + head) for tag, i1, i2, j1, j2 in middle.get_opcodes()]
    out = [f"--- a/{label}\n", f"+++ b/{label}\n"]
    changes = [op for op in opcodes if op[0] != "equal"]
    hunks: list[list[tuple[str, int, int, int, int]]] = []
    for op in changes:  # changes closer than twice the context share a hunk
        if hunks and op[1] - hunks[-1][-1][2] <= 2 * context:
            hunks[-1].append(op)
        else:
            hunks.append([op])

    def line(prefix: str, text: str) -> str:
        return prefix + text if text.endswith("\n") else f"{prefix}{text}\n\\ No newline at end of file\n"

    def span(start: int, stop: int) -> str:
        return f"{start + 1}" if stop - start == 1 else f"{start if stop == start else start + 1},{stop - start}"

    for hunk in hunks:
        i1, j1 = max(0, hunk[0][1] - context), max(0, hunk[0][3] - context)
        i2, j2 = min(len(a), hunk[-1][2] + context), min(len(b), hunk[-1][4] + context)
        out.append(f"@@ -{span(i1, i2)} +{span(j1, j2)} @@\n")
        i = i1
        for _tag, c1, c2, d1, d2 in hunk:
            out.extend(line(" ", text) for text in a[i:c1])
            out.extend(line("-", text) for text in a[c1:c2])
            out.extend(line("+", text) for text in b[d1:d2])
            i = c2
        out.extend(line(" ", text) for text in a[i:i2])
    return "".join(out) if hunks else ""


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """One update at a time per registry directory: the second waits, then reads the first's result."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@dataclass
class Result:
    """What ``apply_update`` did: ``changed`` is empty when the update changed nothing."""

    plan: Plan
    diff: str
    backup: Path | None = None
    log: Path | None = None


def apply_update(update_path: Path, registry: Path, keys: Path | None = None, log: Path | None = None,
                 backups: Path | None = None, dry_run: bool = False, max_registry_bytes: int = 64 * 1024 * 1024,
                 now: dt.datetime | None = None) -> Result:
    """Check and apply one update; raises ``InvalidInput`` (the registry untouched) when refused."""
    label = str(registry)
    target = Path(os.path.realpath(registry))  # a symlinked registry: write the file it points to
    keys = keys or default_keys_path(registry)
    log = log or registry.with_name(registry.name + ".updates.log")
    backups = backups or registry.with_name(registry.name + ".backups")
    with locked(target.parent):
        plan = prepare(update_path, target, keys, max_registry_bytes, str(update_path), label, str(keys))
        diff = unified_diff(plan.old_bytes.decode("utf-8"), plan.new_bytes.decode("utf-8"),
                            label if not registry.is_absolute() else registry.name)
        result = Result(plan, diff)
        if dry_run or not plan.changed:
            return result
        now = now or dt.datetime.now(dt.UTC)
        result.backup = write_backup(backups, target, plan, now)
        try:
            with log.open("a", encoding="utf-8") as log_file:  # opened first: a log we cannot write stops us
                replace_file(target, plan)
                try:
                    log_file.write(log_line(plan, now, result.backup) + "\n")
                    log_file.flush()
                    os.fsync(log_file.fileno())
                except OSError:
                    replace_file(target, plan, restore=True)
                    raise
        except BaseException:
            result.backup.unlink(missing_ok=True)
            raise
        result.log = log
    return result


def write_backup(backups: Path, target: Path, plan: Plan, now: dt.datetime) -> Path:
    backups.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(1, 1000):
        path = backups / f"{stamp}-{plan.update.clinic}{'' if attempt == 1 else f'-{attempt}'}.yaml"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, target.stat().st_mode & 0o777)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as handle:
            handle.write(plan.old_bytes)
            handle.flush()
            os.fsync(handle.fileno())
        return path
    raise OSError(f"too many backups named {stamp}-{plan.update.clinic}*.yaml in {backups}")


def replace_file(target: Path, plan: Plan, restore: bool = False) -> None:
    """Write the new text (or, ``restore``, the old) atomically, keeping the file's mode."""
    current = target.read_bytes()
    if current != (plan.new_bytes if restore else plan.old_bytes):
        raise InvalidInput([Problem(str(target), 1, 1, "(file)", "the registry changed while the update was "
                                    "being applied; nothing was written, apply the update again")])
    write_atomically(target, plan.old_bytes if restore else plan.new_bytes, mode=target.stat().st_mode & 0o7777,
                     durable=True)


def log_line(plan: Plan, now: dt.datetime, backup: Path) -> str:
    update = plan.update
    return json.dumps({
        "applied_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "clinic": update.clinic,
        "submitted_by": update.submitted_by,
        "submitted_at": update.submitted_at,
        "signed": update.signature is not None,
        "base": update.base,
        "hash": plan.new_hash,
        "changes": plan.changed,
        "backup": backup.name,
    }, ensure_ascii=False)


def summary(result: Result, registry: str) -> str:
    plan = result.plan
    if not plan.changed:
        return f"{registry}: nothing to change; it already holds every value in this update (nothing was written)"
    count = len(plan.changed)
    changes = ", ".join(plan.changed[:6]) + (f" and {count - 6} more" if count > 6 else "")
    head = f"{registry}: {'would apply' if result.log is None else 'applied'} the update to {plan.update.clinic} " \
           f"from {plan.update.submitted_by}: {count} change{'s' if count != 1 else ''} ({changes})"
    if result.log is None:
        return head + "; dry run, nothing was written"
    return head + f"; backup in {result.backup}, logged in {result.log}"
