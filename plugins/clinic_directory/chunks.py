"""A registry file cut into its header and one piece of text per clinic, to parse only what changed.

Parsing and checking 10,000 clinics takes seconds; after an edit to one clinic, only
that clinic's text is new. ``split_registry`` cuts the file at the lines that start a
clinic entry (``  some-clinic:`` under ``clinics:``), but only when the file is laid
out the plain way: ``clinics:`` is the last top-level key, every clinic starts with
``<indent><slug>:`` and nothing else starts at that indent or less. Anything else
(flow style, a comment-free oddity, a continuation line that looks like a key) gives
None, and the caller parses the whole file as usual.

Pieces are only ever trusted when a whole-file parse had found exactly these clinics,
in this order, without a problem; a new piece is checked on its own, together with the
header, and any problem sends the caller back to a whole-file parse, which reports it
with its line. So the data is always what a whole-file parse would give.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .source import parse_yaml
from .validate import validate_registry

CLINICS_LINE = re.compile(r"\nclinics:[ \t]*(?:#[^\n]*)?(?=\n)")
ENTRY_LINE = re.compile(r"([a-z0-9]+(?:-[a-z0-9]+)*):[ \t]*(?:#.*)?")


@dataclass(frozen=True)
class Split:
    header: str  # everything before the first clinic, ``clinics:`` line included
    clinics: list[tuple[str, str]]  # (slug, text) in file order

    def header_document(self) -> str:
        """The header as a registry of its own: ``clinics:`` with no clinics."""
        return CLINICS_LINE.sub("\nclinics: {}", "\n" + self.header, count=1)[1:]


def split_registry(text: str) -> Split | None:
    """The file cut into header and clinics, or None when it is not laid out the plain way.

    (The patterns start with a newline rather than ``^``: the regex engine then skips
    ahead to each newline, which keeps a 30 MB file to a fraction of a second.)
    """
    found = _clinics_lines("\n" + text)
    if len(found) != 1 or "\t" in text:
        return None
    body_start = found[0].end()  # the clinics: line ends at found[0].end() - 1 in ``text``: skip its newline
    body = "\n" + text[body_start:]  # each line, the first too, now follows a newline
    first = re.search(r"\n( +)[^ \r\n#]", body)
    if first is None:
        return Split(text, []) if not re.search(r"\n[^\s#]", body) else None
    indent = len(first.group(1))
    if re.search(rf"\n {{0,{indent - 1}}}[^ \r\n#]", body):
        return None  # a later top-level key, or a line indented less than the clinics
    starts = [match.start() + 1 for match in re.finditer(rf"\n {{{indent}}}(?=[^ \r\n#])", body)]
    clinics = []
    for start, end in zip(starts, [*starts[1:], len(body)], strict=True):
        piece = body[start:end]
        entry = ENTRY_LINE.fullmatch(piece[indent:piece.find("\n") if "\n" in piece else None].rstrip("\r"))
        if entry is None:
            return None  # a clinic in flow style, a quoted key, a continuation line
        clinics.append((entry.group(1), piece))
    return Split(text[: body_start + starts[0] - 1], clinics)


def _clinics_lines(text: str) -> list[re.Match[str]]:
    """Every top-level ``clinics:`` line (``str.find`` first: a regex scan of 30 MB is slower)."""
    found, at = [], text.find("\nclinics:")
    while at != -1:
        if match := CLINICS_LINE.match(text, at):
            found.append(match)
        at = text.find("\nclinics:", at + 1)
    return found


def check_pieces(header: str, pieces: list[tuple[str, str]], label: str,
                 batch: int = 500) -> dict[str, dict[str, Any]] | None:
    """Validated data of each clinic in ``pieces`` ((slug, text) pairs), checked with the header's
    services and conditions, a batch at a time (so that only a batch's YAML nodes are in memory
    at once); None on any problem."""
    checked: dict[str, dict[str, Any]] = {}
    for first in range(0, len(pieces), batch):
        part = pieces[first:first + batch]
        source = parse_yaml((header + "".join(text for _slug, text in part)).encode("utf-8"), label)
        if source.root is None or source.problems:
            return None
        data, problems = validate_registry(label, source.root)
        if problems or data is None or list(data["clinics"]) != [slug for slug, _text in part]:
            return None
        checked.update(data["clinics"])
    return checked


def check_header(split: Split, label: str) -> dict[str, Any] | None:
    """The header's validated data (schema, services, conditions); None on any problem."""
    source = parse_yaml(split.header_document().encode("utf-8"), label)
    if source.root is None or source.problems:
        return None
    data, problems = validate_registry(label, source.root)
    return None if problems else data


def cross_checks_pass(data: Mapping[str, Any]) -> bool:
    """What a whole-file check looks at across clinics: references and physician slugs."""
    services, conditions = data["services"], data["conditions"]
    physicians: set[str] = set()
    for clinic in data["clinics"].values():
        if any(slug not in services for slug in clinic["services"]):
            return False
        if any(slug not in conditions for slug in clinic.get("conditions", ())):
            return False
        for slug in clinic.get("physicians", {}):
            if slug in physicians:
                return False
            physicians.add(slug)
    return True
