"""Education articles: their metadata, checked against the registry.

An article is a Markdown file under ``ARTICLE_PATHS`` whose header (Python-Markdown's
``meta`` syntax, which Pelican reads) says what it is about and who reviewed it::

    Title: Ketamine for CRPS
    Date: 2026-11-01
    Slug: ketamine-for-crps
    Summary: One or two sentences for lists, search results and meta descriptions.
    Treatments: ketamine-infusion
    Conditions: crps, neuropathic-pain
    Reviewer: decaria
    Reviewer_placeholder: true
    Last_reviewed: 2026-11-01
    References: Author A, Author B. Title. Journal. 2015;88(4):457-461. doi:10.15386/cjmed-500
        A second reference, on a line indented by four spaces.

We read that header ourselves, with the line of every value, so that a mistake is
reported as ``FILE:LINE:COLUMN: FIELD: MESSAGE`` like a registry problem, and the
build stops. Pelican's article objects are never modified: what the templates need
goes into the shared context, keyed by the article's source path.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import jsonld
from .model import Clinic, Entry, Physician, Registry
from .problems import InvalidInput, Problem
from .schema import SLUG_PATTERN

MARKDOWN_EXTENSIONS = ("md", "markdown", "mkd", "mdown")

# The same patterns Python-Markdown's meta extension uses, so we see the header Pelican sees.
META_RE = re.compile(r"^[ ]{0,3}(?P<key>[A-Za-z0-9_-]+):\s*(?P<value>.*)")
META_MORE_RE = re.compile(r"^[ ]{4,}(?P<value>.*)")
BEGIN_RE = re.compile(r"^-{3}(\s.*)?")
END_RE = re.compile(r"^(-{3}|\.{3})(\s.*)?")

SLUG_RE = re.compile(SLUG_PATTERN)
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
DOI_RE = re.compile(r"(?:\bdoi:\s*|https?://(?:dx\.)?doi\.org/)(?P<doi>10\.[0-9]{4,9}/\S+)", re.IGNORECASE)
URL_RE = re.compile(r"https?://\S+")
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")

# field -> (required, help shown when it is missing). Keys are lower case, as Pelican stores them.
FIELDS: dict[str, tuple[bool, str]] = {
    "title": (True, "the article's headline"),
    "date": (True, "publication date, YYYY-MM-DD"),
    "slug": (True, "the article's address, articles/<slug>/ (lower-case words joined by hyphens)"),
    "summary": (True, "one or two sentences for lists, search results and the meta description"),
    "treatments": (True, "comma-separated treatment slugs from the registry's services (may be empty)"),
    "conditions": (True, "comma-separated condition slugs from the registry's conditions (may be empty)"),
    "reviewer": (True, "the slug of the physician in the registry who reviewed the article"),
    "reviewer_placeholder": (False, "true when the reviewer assignment is sample data, not a real review"),
    "last_reviewed": (True, "date of the last medical review, YYYY-MM-DD"),
    "references": (False, "one reference per line; continuation lines are indented by four spaces"),
    "modified": (False, "date of the last edit, YYYY-MM-DD"),
    "status": (False, "published (default), draft or hidden"),
}
MULTI_LINE = frozenset({"references", "summary"})
STATUSES = ("published", "draft", "hidden")


@dataclass(frozen=True)
class Value:
    """One metadata line's value and where it starts (1-based)."""

    text: str
    line: int
    column: int


@dataclass(frozen=True)
class Field:
    key: str  # lower case
    name: str  # as written
    line: int
    values: tuple[Value, ...]  # the first line, then any continuation lines

    @property
    def text(self) -> str:
        return " ".join(v.text for v in self.values if v.text)


@dataclass(frozen=True)
class Reference:
    text: str  # the citation without its DOI
    doi: str = ""
    url: str = ""

    @property
    def href(self) -> str:
        if self.doi:
            return "https://doi.org/" + quote(self.doi, safe="/:;()._-")
        return self.url


@dataclass(frozen=True)
class ArticleMeta:
    """An article's checked metadata, with registry objects in place of slugs."""

    source_path: str  # absolute, as Pelican's ``article.source_path``
    label: str
    slug: str
    title: str
    summary: str
    date: dt.date
    treatments: tuple[Entry, ...]
    conditions: tuple[Entry, ...]
    reviewer: Physician
    reviewer_clinic: Clinic
    reviewer_placeholder: bool
    last_reviewed: dt.date
    references: tuple[Reference, ...]
    modified: dt.date | None = None
    status: str = "published"

    @property
    def about(self) -> tuple[Entry, ...]:
        return (*self.treatments, *self.conditions)


@dataclass(frozen=True)
class RelatedArticle:
    """An article as a treatment or condition page links to it (only what that page prints)."""

    slug: str
    url: str
    title: str
    summary: str


@dataclass
class ArticleIndex:
    """What the templates read: checked metadata per article and articles per registry entry."""

    meta: dict[str, ArticleMeta] = field(default_factory=dict)  # source path -> metadata
    by_entry: dict[str, list[Any]] = field(default_factory=dict)  # "service/slug" -> Pelican articles
    jsonld: dict[str, dict[str, Any]] = field(default_factory=dict)  # source path -> JSON-LD

    def for_entry(self, entry: Entry) -> list[RelatedArticle]:
        return [RelatedArticle(self.meta[article.source_path].slug, article.url, article.title,
                               self.meta[article.source_path].summary)
                for article in self.by_entry.get(entry_key(entry), [])]


def entry_key(entry: Entry) -> str:
    return f"{entry.kind}/{entry.slug}"


# -- reading the header ----------------------------------------------------------


def read_header(text: str) -> list[Field]:
    """The metadata header as Python-Markdown's ``meta`` extension reads it, with positions."""
    lines = text.splitlines()
    fields: list[Field] = []
    start = 1 if lines and BEGIN_RE.match(lines[0]) else 0
    current: tuple[str, str, int, list[Value]] | None = None
    for index in range(start, len(lines)):
        line = lines[index].expandtabs(4)
        number = index + 1
        if line.strip() == "" or END_RE.match(line):
            break
        first = META_RE.match(line)
        if first:
            if current:
                fields.append(Field(current[0], current[1], current[2], tuple(current[3])))
            raw = first.group("value")
            value = raw.strip()
            column = first.start("value") + (len(raw) - len(raw.lstrip())) + 1
            current = (first.group("key").lower(), first.group("key"), number, [Value(value, number, column)])
            continue
        more = META_MORE_RE.match(line)
        if more and current:
            raw = more.group("value")
            column = more.start("value") + (len(raw) - len(raw.lstrip())) + 1
            current[3].append(Value(raw.strip(), number, column))
            continue
        break
    if current:
        fields.append(Field(current[0], current[1], current[2], tuple(current[3])))
    return fields


# -- checking one article ----------------------------------------------------------


class ArticleChecker:
    def __init__(self, label: str, registry: Registry) -> None:
        self.label = label
        self.registry = registry
        self.problems: list[Problem] = []

    def add(self, line: int, column: int, path: str, message: str) -> None:
        self.problems.append(Problem(self.label, line, column, path, message))

    def check(self, source_path: str, text: str) -> ArticleMeta | None:
        fields = read_header(text)
        by_key: dict[str, Field] = {}
        for item in fields:
            if item.key not in FIELDS:
                close = difflib.get_close_matches(item.key, FIELDS, n=1)
                hint = f"; did you mean '{close[0].capitalize()}'?" if close else \
                    f"; known fields are {', '.join(k.capitalize() for k in FIELDS)}"
                self.add(item.line, 1, item.key, f"unknown metadata field '{item.name}'{hint}")
            elif item.key in by_key:
                self.add(item.line, 1, item.key,
                         f"'{item.name}' is given twice (first on line {by_key[item.key].line}); keep one")
            else:
                by_key[item.key] = item
                if len(item.values) > 1 and item.key not in MULTI_LINE:
                    extra = item.values[1]
                    self.add(extra.line, extra.column, item.key,
                             f"'{item.name}' takes one line; this indented line would be joined to it")
            for value in item.values:
                if CONTROL_RE.search(value.text):
                    self.add(value.line, value.column, item.key, "contains control or bidirectional characters")
        if not fields:
            self.add(1, 1, "(header)", "the file has no metadata header; start it with lines such as "
                     "'Title: ...', 'Date: YYYY-MM-DD', then a blank line before the text")
            return None
        after = max(v.line for f in fields for v in f.values) + 1
        for key, (required, help_text) in FIELDS.items():
            if required and key not in by_key:
                self.add(after, 1, key, f"required field '{key.capitalize()}' is missing ({help_text}); "
                         "add it to the metadata at the top of the file")

        title = self.text(by_key.get("title"))
        summary = self.text(by_key.get("summary"))
        slug = self.slug(by_key.get("slug"))
        date = self.date(by_key.get("date"))
        last_reviewed = self.date(by_key.get("last_reviewed"))
        modified = self.date(by_key.get("modified"))
        treatments = self.entries(by_key.get("treatments"), self.registry.services, "treatment")
        conditions = self.entries(by_key.get("conditions"), self.registry.conditions, "condition")
        if "treatments" in by_key and "conditions" in by_key and not treatments and not conditions \
                and not any(p.path.startswith(("treatments", "conditions")) for p in self.problems):
            item = by_key["treatments"]
            self.add(item.line, item.values[0].column, "treatments",
                     "an article must be related to at least one treatment or condition")
        reviewer = self.reviewer(by_key.get("reviewer"))
        placeholder = self.boolean(by_key.get("reviewer_placeholder"))
        references = self.references(by_key.get("references"))
        status = self.status(by_key.get("status"))
        if self.problems or None in (title, summary, slug, date, last_reviewed, reviewer):
            return None
        assert reviewer is not None and date is not None and last_reviewed is not None  # for type checkers
        return ArticleMeta(
            source_path=source_path, label=self.label, slug=slug or "", title=title or "",
            summary=summary or "", date=date, treatments=treatments, conditions=conditions,
            reviewer=reviewer, reviewer_clinic=self.registry.clinic_of(reviewer),
            reviewer_placeholder=bool(placeholder), last_reviewed=last_reviewed, references=references,
            modified=modified, status=status,
        )

    # -- one field each ---------------------------------------------------------

    def text(self, item: Field | None) -> str | None:
        if item is None:
            return None
        if not item.text:
            self.add(item.line, item.values[0].column, item.key, f"'{item.name}' is empty")
            return None
        return item.text

    def slug(self, item: Field | None) -> str | None:
        value = self.text(item)
        if item is None or value is None:
            return None
        if not SLUG_RE.match(value):
            self.add(item.line, item.values[0].column, item.key,
                     f"'{value}' is not a slug: use lower-case letters and digits joined by single hyphens")
            return None
        return value

    def date(self, item: Field | None) -> dt.date | None:
        value = self.text(item)
        if item is None or value is None:
            return None
        try:
            if not DATE_RE.match(value):
                raise ValueError
            return dt.date.fromisoformat(value)
        except ValueError:
            self.add(item.line, item.values[0].column, item.key,
                     f"'{value}' is not a date; write it as YYYY-MM-DD, e.g. 2026-11-01")
            return None

    def boolean(self, item: Field | None) -> bool | None:
        if item is None:
            return None
        value = item.text.lower()
        if value not in ("true", "false"):
            self.add(item.line, item.values[0].column, item.key, f"'{item.text}' is not 'true' or 'false'")
            return None
        return value == "true"

    def status(self, item: Field | None) -> str:
        if item is None:
            return "published"
        if item.text not in STATUSES:
            self.add(item.line, item.values[0].column, item.key,
                     f"'{item.text}' is not a status; use one of {', '.join(STATUSES)}")
        return item.text

    def entries(self, item: Field | None, known: dict[str, Entry], noun: str) -> tuple[Entry, ...]:
        if item is None:
            return ()
        value = item.values[0]
        found: list[Entry] = []
        offset = 0
        for position, part in enumerate(value.text.split(",")):
            slug = part.strip()
            column = value.column + offset + (len(part) - len(part.lstrip()))
            offset += len(part) + 1
            path = f"{item.key}[{position}]"
            if not slug:
                if value.text.strip():
                    self.add(value.line, column, path, "empty item in the list (two commas in a row?)")
                continue
            if slug not in known:
                close = difflib.get_close_matches(slug, known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else \
                    f"; known {noun}s are {', '.join(sorted(known))}"
                self.add(value.line, column, path, f"unknown {noun} '{slug}'{hint}")
                continue
            if any(e.slug == slug for e in found):
                self.add(value.line, column, path, f"{noun} '{slug}' is listed twice")
                continue
            found.append(known[slug])
        return tuple(found)

    def reviewer(self, item: Field | None) -> Physician | None:
        value = self.text(item)
        if item is None or value is None:
            return None
        physicians = self.registry.physicians
        if value not in physicians:
            close = difflib.get_close_matches(value, physicians, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else \
                f"; known physicians are {', '.join(sorted(physicians))}"
            self.add(item.line, item.values[0].column, item.key, f"unknown physician '{value}'{hint}")
            return None
        return physicians[value]

    def references(self, item: Field | None) -> tuple[Reference, ...]:
        if item is None:
            return ()
        found: list[Reference] = []
        lines = [v for v in item.values if v.text]
        if not lines:
            self.add(item.line, item.values[0].column, item.key, "'References' is empty; list them or remove it")
        for position, value in enumerate(lines):
            path = f"{item.key}[{position}]"
            text = value.text
            doi = DOI_RE.search(text)
            number = doi.group("doi").rstrip(".,;") if doi else ""
            # A DOI cut short (as in a copied citation, "10.1111/j.") must not become a dead link.
            if doi and len(number.split("/", 1)[1]) >= 3 and number[-1].isalnum():
                rest = (text[: doi.start()] + text[doi.end():]).strip().rstrip(",;").strip()
                found.append(Reference(rest, doi=number))
                continue
            if doi or re.search(r"\bdoi\b", text, re.IGNORECASE):
                self.add(value.line, value.column, path,
                         "mentions a DOI that is not complete; write it as doi:10.NNNN/suffix or leave it out")
                continue
            url = URL_RE.search(text)
            if url:
                found.append(Reference(text[: url.start()].strip(), url=url.group(0).rstrip(".,;")))
                continue
            found.append(Reference(text))
        return tuple(found)


# -- every article -------------------------------------------------------------------


def display_path(path: Path) -> str:
    """The path as the person running the build typed it: relative to the working directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def check_article_file(path: Path, registry: Registry) -> tuple[ArticleMeta | None, list[Problem]]:
    label = display_path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, [Problem(label, 1, 1, "(file)", "the file is not UTF-8 text; save it as UTF-8")]
    except OSError as error:
        return None, [Problem(label, 1, 1, "(file)", f"cannot read the file: {error.strerror}")]
    checker = ArticleChecker(label, registry)
    meta = checker.check(str(path), text)
    return meta, checker.problems


def check_articles(paths: Iterable[Path], registry: Registry) -> tuple[dict[str, ArticleMeta], list[Problem]]:
    """Every article's metadata (by absolute source path) and every problem found in any of them."""
    metas: dict[str, ArticleMeta] = {}
    problems: list[Problem] = []
    slugs: dict[str, ArticleMeta] = {}
    for path in sorted(paths):
        meta, found = check_article_file(path, registry)
        problems.extend(found)
        if meta is None:
            continue
        if meta.slug in slugs:
            line = _field_line(path, "slug")
            problems.append(Problem(meta.label, line, 1, "slug",
                                    f"slug '{meta.slug}' is also used by {slugs[meta.slug].label}; "
                                    "two articles cannot share an address"))
            continue
        slugs[meta.slug] = meta
        metas[meta.source_path] = meta
    return metas, problems


def _field_line(path: Path, key: str) -> int:
    for item in read_header(path.read_text(encoding="utf-8-sig")):
        if item.key == key:
            return item.line
    return 1


def build_index(generator: Any, registry: Registry) -> ArticleIndex:
    """Check every article file Pelican reads; raise ``InvalidInput`` listing every problem.

    ``generator`` is the directory's Pelican generator: its ``get_files`` finds the same
    files the ArticlesGenerator read, and its context holds the articles it made of them.
    """
    settings = generator.settings
    base = Path(generator.path)
    files = generator.get_files(settings["ARTICLE_PATHS"], exclude=settings["ARTICLE_EXCLUDES"],
                                extensions=MARKDOWN_EXTENSIONS)
    metas, problems = check_articles([(base / name).resolve() for name in files], registry)
    context = generator.context
    pelican_articles = [*context.get("articles", ()), *context.get("hidden_articles", ()),
                        *context.get("drafts", ())]
    pelican_articles += [t for a in list(pelican_articles) for t in getattr(a, "translations", ())]
    checked = {m.source_path for m in metas.values()}
    failed = {p.file for p in problems}
    for article in pelican_articles:
        source = str(Path(article.source_path).resolve())
        if source not in checked and display_path(Path(source)) not in failed:
            problems.append(Problem(display_path(Path(source)), 1, 1, "(file)",
                                    "articles must be Markdown files (.md) with the metadata header "
                                    "described in plugins/clinic_directory/articles.py"))
    if problems:
        raise InvalidInput(problems)

    index = ArticleIndex(meta=metas)
    site_url = settings.get("SITEURL", "")
    published = list(context.get("articles", ()))
    for article in [*published, *context.get("hidden_articles", ())]:
        meta = metas[str(Path(article.source_path).resolve())]
        index.meta[article.source_path] = meta  # Pelican's path, which may differ from the resolved one
        index.jsonld[article.source_path] = jsonld.article_page(meta, article.url, site_url)
    for article in sorted(published, key=lambda a: (a.title.casefold(), a.slug)):
        for entry in index.meta[article.source_path].about:
            index.by_entry.setdefault(entry_key(entry), []).append(article)
    return index


# -- the Atom feed -------------------------------------------------------------------

FEED_NOTICE = (
    "<p><strong>This article is general education, not medical advice.</strong> Talk to a qualified "
    "clinician about your own care. <strong>In an emergency, call 911</strong> or go to the nearest "
    "emergency department.</p>\n"
)


def add_feed_notice(context: Any, feed: Any) -> None:
    """``feed_generated`` receiver: a feed reader shows the article without our page around it,
    so each entry carries the not-medical-advice and emergency notice itself."""
    for item in getattr(feed, "items", ()):
        if item.get("content"):
            item["content"] = FEED_NOTICE + item["content"]
