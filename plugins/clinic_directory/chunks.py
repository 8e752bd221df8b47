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

from .model import entry_hash
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
    ahead to each newline, which keeps a 30 MB file to a fraction of a second. They run
    over ``text`` from a position, not over copies of it: each copy is another 30 MB at
    the build's peak.)
    """
    ends = _clinics_line_ends(text)
    if len(ends) != 1 or "\t" in text:
        return None
    body = ends[0]  # the newline that ends the clinics: line; the clinics follow it
    first = re.compile(r"\n( +)[^ \r\n#]").search(text, body)
    if first is None:
        return Split(text, []) if not re.compile(r"\n[^\s#]").search(text, body) else None
    indent = len(first.group(1))
    if re.compile(rf"\n {{0,{indent - 1}}}[^ \r\n#]").search(text, body):
        return None  # a later top-level key, or a line indented less than the clinics
    starts = [match.start() + 1 for match in re.compile(rf"\n {{{indent}}}(?=[^ \r\n#])").finditer(text, body)]
    clinics = []
    for start, end in zip(starts, [*starts[1:], len(text)], strict=True):
        piece = text[start:end]
        entry = ENTRY_LINE.fullmatch(piece[indent:piece.find("\n") if "\n" in piece else None].rstrip("\r"))
        if entry is None:
            return None  # a clinic in flow style, a quoted key, a continuation line
        clinics.append((entry.group(1), piece))
    return Split(text[:starts[0]], clinics)


def _clinics_line_ends(text: str) -> list[int]:
    """Where each top-level ``clinics:`` line ends (its newline), found with ``str.find`` first:
    a regex scan of 30 MB is slower."""
    found = []
    if text.startswith("clinics:") and "\n" in text:
        first_line = text[: text.index("\n") + 1]
        if match := CLINICS_LINE.match("\n" + first_line):
            found.append(match.end() - 1)
    at = text.find("\nclinics:")
    while at != -1:
        if match := CLINICS_LINE.match(text, at):
            found.append(match.end())
        at = text.find("\nclinics:", at + 1)
    return found


Checked = tuple[dict[str, dict[str, Any]], dict[str, str]]  # slug -> validated data, slug -> its entry_hash


def check_pieces(header: str, pieces: list[tuple[str, str]], label: str, batch: int = 500) -> Checked | None:
    """Validated data of each clinic in ``pieces`` ((slug, text) pairs), checked with the header's
    services and conditions, and its digest (``model.entry_hash``); None on any problem. Many pieces
    (a first build) are checked by two processes, half each (``parallel.in_two``): parsing is most
    of a first build's registry time."""
    if len(pieces) < TWO_PROCESSES_FROM:
        return _check_batches(header, pieces, label, batch)
    from .parallel import in_two  # (parallel imports build, which imports the cache, which imports us)

    half = len(pieces) // 2
    first, second = pieces[:half], pieces[half:]
    pieces.clear()  # the halves hold the texts now, and let go of them as they are checked
    mine, theirs = in_two(lambda part: _check_batches(header, part, label, batch), first, second)
    if mine is None or theirs is None:
        return None
    return {**mine[0], **theirs[0]}, {**mine[1], **theirs[1]}


TWO_PROCESSES_FROM = 500  # clinics; below, a second process costs more than it saves (1,000: 0.4 s saved)


def _check_batches(header: str, pieces: list[tuple[str, str]], label: str, batch: int) -> Checked | None:
    """``check_pieces`` a batch at a time (so that only a batch's YAML nodes are in memory at once).
    Each text is let go of (set to "") once it is checked: at 10,000 clinics the texts are
    30 MB, and the checked data grows as they are used up."""
    checked: dict[str, dict[str, Any]] = {}
    for first in range(0, len(pieces), batch):
        part = pieces[first:first + batch]
        pieces[first:first + batch] = [(slug, "") for slug, _text in part]
        source = parse_yaml((header + "".join(text for _slug, text in part)).encode("utf-8"), label)
        if source.root is None or source.problems:
            return None
        data, problems = validate_registry(label, source.root)
        if problems or data is None or list(data["clinics"]) != [slug for slug, _text in part]:
            return None
        checked.update(data["clinics"])
    # Digested here, beside the other half: 10,000 of them take half a second.
    return checked, {slug: entry_hash(clinic) for slug, clinic in checked.items()}


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
