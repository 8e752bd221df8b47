"""Hostile input: registries, YAML documents and articles written to break the build or the pages.

Hypothesis draws text full of markup, `javascript:` URLs, template syntax, bidirectional and
zero-width characters, entities, YAML syntax and very long runs, and puts it everywhere a registry or
an article takes text. Properties:

- The loaders (``check_registry``, ``check_article_file``) accept the input or report its problems as
  ``FILE:LINE:COLUMN: PATH: MESSAGE``: never a traceback, a hang or a memory blow-up (alias bombs,
  deep nesting and huge files run in a child process with a memory limit).
- So does ``make apply-update`` with a hostile profile update (raw YAML anywhere in it, the same
  bombs): applied, or refused with its problems and the registry byte-identical.
- Accepted text never changes the pages' structure: every page rendered from a hostile registry
  has exactly the elements, attributes, URL schemes and scripts of the same registry with plain
  text in the same places. Pages are rendered by the plugin's own generator and the theme's
  templates, in memory, without a whole Pelican build per example.
- A full build of a hostile registry and article, opened in Chromium: find and site search show the
  hostile names as text, and nothing runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from clinic_directory import add_template_helpers
from clinic_directory.articles import check_article_file
from clinic_directory.generator import ClinicDirectoryGenerator
from clinic_directory.problems import Problem
from clinic_directory.registry import check_registry, load_registry
from clinic_directory.settings import read_plugin_settings
from clinic_directory.validate import CONTROL_RE
from conftest import ROOT, build, serve

MAX_BYTES = 64 * 1024 * 1024
SECONDS = 10  # one loader call on one small document; they take milliseconds
# CI replays the same examples every run (a red build is about the change, not the dice);
# run locally without CI set to explore new ones.
EXPLORE = {"deadline": None, "database": None, "derandomize": bool(os.environ.get("CI")),
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}

ATOMS = [
    "<script>alert(1)</script>", "</script><script>alert(1)</script>", '"><svg onload=alert(1)>',
    "'><img src=x onerror=alert(1)>", "<a href=\"javascript:alert(1)\">x</a>", "javascript:alert(1)",
    "JaVaScRiPt:alert(1)", "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)",
    "<style>*{display:none}</style>", "<iframe src=//evil.example>", "<!--", "-->", "<![CDATA[", "]]>",
    "{{ 7*7 }}", "{% if true %}x{% endif %}", "{# comment #}", "{{ config }}", "${7*7}", "#{7*7}", "<%= 7*7 %>",
    "&lt;b&gt;", "&amp;", "&#60;script&#62;", "&#x3C;", "%3Cscript%3E", "\\u003cscript\\u003e", "\\", "`", "'", '"',
    "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u200e", "\u200f", "\u061c", "\u202e", "\u2066", "\u2069",
    "\u0000", "\u0007", "\u001b[31m", "\u0085", "\u2028", "\u2029", "\t", "\n", "\r\n",
    "مرحبا", "שלום", "e\u0301", "\U0001f600", "\ud7ff", "ǅ", "ﬃ", "İ",
    "*alias", "&anchor", "!!python/object/apply:os.system ['true']", "? key", "- item", ": colon", "# comment",
    "NO", "yes", "on", "9:30", "07494", "0x1F", "1e3", ".inf", "~", "null", "@", "|", ">", "%", "{", "}", "[", "]",
]
# Text a registry accepts: no control or bidi-override characters, not blank, within the field's limit.
ACCEPTABLE = [a for a in ATOMS if not CONTROL_RE.search(a)]


def texts(atoms: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(st.sampled_from(atoms), st.text(max_size=8)), min_size=1, max_size=6).map("".join)


hostile = st.one_of(texts(ATOMS), st.tuples(st.sampled_from(ATOMS), st.integers(20, 3000)).map(lambda p: p[0] * p[1]))
URLS = ["javascript:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)", "data:text/html,<script>",
        'https://example.org/"><script>alert(1)</script>', "https://example.org/?a=<b>&c='d'", "http://example.org/",
        "//evil.example/", "https://example.org/\u202e", "https:example.org", "https://"]

# -- A registry with text in every place that takes text ---------------------------------------------

# Field -> its length limit in the schema (0: the 5,000 of `text`).
TEXT_FIELDS = {
    "service.name": 200, "service.aka": 200, "service.summary": 5000,
    "condition.name": 200, "condition.aka": 200, "condition.summary": 5000,
    "clinic.name": 200, "clinic.summary": 5000, "clinic.insurance": 200,
    "physician.name": 200, "physician.credentials": 20, "physician.board": 200, "physician.bio": 5000,
    "location.name": 200, "location.street": 200, "location.street2": 200, "location.city": 200,
    "referral.requirements": 200, "referral.notes": 5000,
}


def registry(text: Callable[[str], str], website: str = "https://example.org/") -> dict[str, Any]:
    return {
        "schema": 1,
        "services": {"ketamine-infusion": {"name": text("service.name"), "also_known_as": [text("service.aka")],
                                           "summary": text("service.summary")}},
        "conditions": {"crps": {"name": text("condition.name"), "also_known_as": [text("condition.aka")],
                                "summary": text("condition.summary")}},
        "clinics": {"hostile-clinic": {
            "name": text("clinic.name"), "website": website, "summary": text("clinic.summary"),
            "accepting_new_patients": True, "telehealth": False, "languages": ["en", "es"],
            "insurance": [text("clinic.insurance")], "services": ["ketamine-infusion"], "conditions": ["crps"],
            "last_verified": dt.date(2026, 11, 1),
            "physicians": {"hostile-doc": {
                "name": text("physician.name"), "credentials": [text("physician.credentials")],
                "board_certifications": [text("physician.board")], "bio": text("physician.bio")}},
            "locations": {"main": {
                "name": text("location.name"),
                "address": {"street": text("location.street"), "street2": text("location.street2"),
                            "city": text("location.city"), "state": "TX", "postal_code": "77494"},
                "geo": {"lat": 29.79, "lon": -95.82}, "phone": "+1-281-555-0100", "fax": "+1-281-555-0101",
                "hours": {"mon": "08:00-17:00", "tue": "08:00-12:00,13:00-17:00", "sat": "closed"}}},
            "referral": {"email": "referrals@example.org", "requirements": [text("referral.requirements")],
                         "notes": text("referral.notes")},
        }},
    }


def benign(field: str) -> str:
    return f"Plain {field.replace('.', ' ')}"[: TEXT_FIELDS[field]]


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1 << 30)


def write(folder: Path, text: str, name: str = "clinics.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def check(path: Path) -> tuple[dict | None, list[Problem]]:
    """``check_registry`` with the properties every input must have, whatever it holds."""
    start = time.perf_counter()
    data, problems = check_registry(path, MAX_BYTES, "clinics.yaml")
    assert time.perf_counter() - start < SECONDS
    assert (data is None) or problems or isinstance(data, dict)
    for problem in problems:
        assert problem.file == "clinics.yaml" and problem.line >= 1 and problem.column >= 1, problem
        assert problem.message.strip() and problem.path.strip(), problem
        assert re.fullmatch(r"clinics\.yaml:\d+:\d+: [^\n]+: .+", str(problem), re.DOTALL), str(problem)
    return data, problems


# -- Properties of the loader --------------------------------------------------------------------------


@settings(max_examples=100, **EXPLORE)
@given(st.dictionaries(st.sampled_from(sorted(TEXT_FIELDS)), hostile), st.sampled_from(URLS + ["https://example.org/"]))
def test_registry_loader_accepts_or_reports_hostile_text(tmp_path_factory, values: dict[str, str],  # type: ignore[no-untyped-def]
                                                         website: str) -> None:
    folder = tmp_path_factory.mktemp("registry")
    data, problems = check(write(folder, dump(registry(lambda f: values.get(f, benign(f)), website))))
    if any(CONTROL_RE.search(v) for v in values.values()):
        assert problems, "control and bidirectional-override characters are refused"
    if not website.startswith("https://example.org/"):
        assert any(p.path.endswith(".website") for p in problems), website
    if not problems:
        assert data is not None


# Raw YAML spliced in where a value goes: unquoted markup and template syntax, flow collections,
# aliases, tags, merge keys, YAML 1.1 look-alikes, broken quoting.
RAW = ["<script>alert(1)</script>", "{{ 7*7 }}", "{% raw %}", "*alias", "&a [*a, *a]", "&a x",
       "!!python/object/apply:os.system ['true']", "!custom x", "!!binary aGk=", "<<: *a", "[a, [b, [c]]]",
       "{a: 1, a: 2}", "NO", "yes", "9:30", "07494", "0o17", "'unterminated", '"\\x00"', '"\\u202e"',
       "|\n      block text", ">-\n      folded", "- one\n      - two", "? complex\n      : key", "\t tab",
       '"' + "\\u200b" * 3 + '"', "[" * 200 + "]" * 200, "{a: " * 100 + "1" + "}" * 100, "%YAML 1.1", "---", "...",
       "'" + "x" * 100_000 + "'", "x" * 6000, "javascript:alert(1)", "@at", "`tick`", "%percent"]


@settings(max_examples=100, **EXPLORE)
@given(st.sampled_from(sorted(TEXT_FIELDS)), st.one_of(st.sampled_from(RAW), texts(RAW + ATOMS)))
@example("clinic.name", "&a [" + ", ".join(["*a"] * 5) + "]")
def test_raw_yaml_anywhere_is_accepted_or_reported(tmp_path_factory, field: str, raw: str) -> None:  # type: ignore[no-untyped-def]
    marker = f"MARKER-{field}"
    text = dump(registry(lambda f: marker if f == field else benign(f)))
    assert text.count(marker) == 1
    data, problems = check(write(tmp_path_factory.mktemp("raw"), text.replace(marker, raw.replace("\r", ""))))
    if not problems:
        assert data is not None


# Each runs in a child process limited to 1 GiB of memory and 60 seconds: a bomb that went off would
# end it (MemoryError, killed, or timed out) instead of this test run.
BOMBS = {
    "billion laughs": 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(9)),
    "quadratic blow-up": "a: &a '" + "x" * 200_000 + "'\nb: [" + ",".join(["*a"] * 5_000) + "]\n",
    "deep flow nesting": "schema: 1\nclinics: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "deep block nesting": "clinics:\n" + "".join(" " * i + "a:\n" for i in range(1, 3000)) + " " * 3000 + "b\n",
    "nesting just under the parser's limit": "clinics: " + "{a: " * 990 + "1" + "}" * 990 + "\n",
    "deep nesting in a text field": "clinics:\n  x:\n    summary: " + "[" * 990 + "]" * 990 + "\n",
    "a hundred thousand keys": "clinics:\n" + "".join(f"  c{i}: {{}}\n" for i in range(100_000)),
    "a hundred thousand duplicate keys": "clinics:\n" + "  c: {}\n" * 100_000,
    "a ten-megabyte line": "schema: 1\nservices: {}\nconditions: {}\nclinics: {x: {summary: '"
                           + "x" * 10_000_000 + "'}}\n",
    "python tags": "!!python/object/apply:os.system ['echo pwned > pwned']\n",
    "not UTF-8": "schema: 1\nname: caf\xe9\n",
    "a NUL byte": "schema: 1\x00\n",
    "only a comment": "# nothing here\n",
}

BOMB_RUNNER = f"""
import json, resource, sys, time
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from clinic_directory.registry import check_registry
results = {{}}
for path in sys.argv[1:]:
    start = time.perf_counter()
    data, problems = check_registry(Path(path), {MAX_BYTES}, "clinics.yaml")
    results[Path(path).stem] = {{"seconds": time.perf_counter() - start, "accepted": not problems,
                                "problems": [str(p) for p in problems[:3]]}}
print(json.dumps(results))
"""


def test_bombs_and_huge_documents_are_refused_in_bounded_time_and_memory(tmp_path: Path) -> None:
    paths = []
    for index, (name, text) in enumerate(BOMBS.items()):
        path = tmp_path / f"{index}.yaml"
        path.write_bytes(text.encode("latin-1") if name == "not UTF-8" else text.encode("utf-8"))
        paths.append(str(path))
    oversize = tmp_path / f"{len(BOMBS)}.yaml"
    with oversize.open("wb") as handle:  # over the size limit: refused before it is read
        handle.truncate(MAX_BYTES + 1)
    paths.append(str(oversize))
    result = subprocess.run([sys.executable, "-c", BOMB_RUNNER, *paths], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path, env={"PYTHONPATH": str(ROOT / "plugins"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout)
    names = [*BOMBS, "over the size limit"]
    report = {names[int(index)]: found for index, found in outcome.items()}
    assert [name for name, found in report.items() if found["accepted"]] == [], report
    assert [name for name, found in report.items() if found["seconds"] > SECONDS] == [], report
    assert not (tmp_path / "pwned").exists()
    assert "aliases" in report["billion laughs"]["problems"][0]
    assert "aliases" in report["quadratic blow-up"]["problems"][0]
    assert "over the limit" in report["over the size limit"]["problems"][0]


# -- Accepted text never changes the pages' structure -------------------------------------------------


class MemoryWriter:
    """Stands in for Pelican's writer: renders each page into a dict instead of a file."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}

    def write_file(self, name: str, template: Any, context: dict[str, Any], relative_urls: bool = False,
                   **kwargs: Any) -> None:
        page = {k: v for k, v in kwargs.items() if k not in ("paginated", "template_name", "override_output")}
        self.pages[name] = template.render({**context, **page})


class Renderer:
    """The plugin's generator with the theme's templates, over a registry file rewritten per example."""

    def __init__(self, folder: Path) -> None:
        from pelican.settings import read_settings

        self.folder = folder
        self.registry = folder / "clinics.yaml"
        content = folder / "content"
        content.mkdir()
        self.output = folder / "output"
        self.settings = read_settings(str(ROOT / "pelicanconf.py"), override={
            "CLINIC_DIRECTORY_REGISTRY": str(self.registry), "PATH": str(content), "OUTPUT_PATH": str(self.output)})
        context = self.settings.copy()
        context.update(articles=[], hidden_articles=[], drafts=[], pages=[], hidden_pages=[], draft_pages=[])
        self.generator = ClinicDirectoryGenerator(context=context, settings=self.settings, path=str(content),
                                                  theme=self.settings["THEME"], output_path=str(self.output))
        add_template_helpers(self.generator)

    def render(self, text: str) -> dict[str, str]:
        """Every file the directory writes (pages, search data), by path."""
        write(self.folder, text)
        shutil.rmtree(self.output, ignore_errors=True)
        # The ZIP and city lookup files come from the ZIP table alone, never from the registry:
        # the same for every example, and most of the time a render takes. Left out here.
        with mock.patch("clinic_directory.geo.lookup_files", return_value={}):
            self.generator.generate_context()
            writer = MemoryWriter()
            self.generator.generate_output(writer)
        files = dict(writer.pages)
        for path in self.output.rglob("*.json"):
            files[path.relative_to(self.output).as_posix()] = path.read_text(encoding="utf-8")
        return files


class Skeleton(HTMLParser):
    """A page without its text: each element with its attribute names and URL schemes; each script's kind."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.shape: Counter[tuple] = Counter()
        self.scripts: list[tuple[str, str]] = []
        self._script: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        schemes = tuple(sorted((name, scheme(value or "")) for name, value in attrs
                               if name in ("href", "src", "action", "formaction", "srcset", "poster")
                               and scheme(value or "")))
        self.shape[(tag, tuple(sorted(name for name, _ in attrs)), schemes)] += 1
        if tag == "script":
            self._script = dict(attrs).get("type") or "javascript"
            self.scripts.append((self._script, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            kind, body = self.scripts[-1]
            self.scripts[-1] = (kind, body + data)


def scheme(value: str) -> str:
    found = re.match(r"\s*([a-zA-Z][a-zA-Z0-9+.\-]*):", value)
    return found.group(1).lower() if found and found.group(1).lower() in (
        "javascript", "vbscript", "data", "http", "https", "mailto", "tel", "blob", "file") else ""


def skeleton(html: str) -> tuple[Counter[tuple], list[str]]:
    parser = Skeleton()
    parser.feed(html)
    parser.close()
    scripts = []
    for kind, body in parser.scripts:
        if kind in ("application/ld+json", "application/json"):
            assert "<" not in body, body[:200]  # tojson escapes it: no `</script>` can be spelt
            json.loads(body)
            scripts.append(kind)
        else:
            assert not body.strip(), f"inline script: {body[:200]}"
            scripts.append(kind)
    return parser.shape, scripts


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> Renderer:
    return Renderer(tmp_path_factory.mktemp("render"))


@pytest.fixture(scope="module")
def plain_pages(renderer: Renderer) -> dict[str, str]:
    return renderer.render(dump(registry(benign)))


def acceptable(limit: int) -> st.SearchStrategy[str]:
    text = st.lists(st.one_of(st.sampled_from(ACCEPTABLE), st.text(st.characters(
        blacklist_categories=("Cs", "Cc")), max_size=8)), min_size=1, max_size=8).map("".join)
    return text.map(lambda s: s[:limit]).filter(lambda s: s.strip() and not CONTROL_RE.search(s))


@settings(max_examples=40, **EXPLORE)
@given(st.fixed_dictionaries({field: acceptable(limit) for field, limit in TEXT_FIELDS.items()}))
@example({field: "<script>alert(1)</script>{{ 7*7 }}\u200f"[:limit] for field, limit in TEXT_FIELDS.items()})
def test_accepted_text_never_changes_page_structure(renderer: Renderer, plain_pages: dict[str, str],
                                                    values: dict[str, str]) -> None:
    text = dump(registry(values.__getitem__))
    data, problems = check(write(renderer.folder, text))
    assert problems == [], "text within the schema's limits is accepted"
    assert data is not None
    pages = renderer.render(text)
    # The same files, but for the site search's word files, which are named by the words in the text.
    words = "search/directory/words/"
    assert sorted(p for p in pages if not p.startswith(words)) == sorted(
        p for p in plain_pages if not p.startswith(words))
    shards = json.loads(pages["search/directory/index.json"])["shards"]
    assert sorted(f"{words}{key}.json" for key in shards) == sorted(p for p in pages if p.startswith(words))
    # The text reached the page (as YAML read it: it folds line breaks such as U+0085), escaped.
    assert str(escape(data["clinics"]["hostile-clinic"]["name"])) in pages["clinics/hostile-clinic/index.html"]
    for name, html in pages.items():
        if name.endswith(".json"):
            json.loads(html)  # search data: hostile text stays inside its JSON strings
        elif name.endswith(".html"):
            (shape, scripts), (plain_shape, plain_scripts) = skeleton(html), skeleton(plain_pages[name])
            assert (shape - plain_shape, plain_shape - shape, scripts) == (Counter(), Counter(), plain_scripts), name
        else:
            assert html == plain_pages[name], name  # robots.txt, _headers: nothing from the registry


def test_the_skeleton_sees_injected_markup(plain_pages: dict[str, str]) -> None:
    """The comparison above is only as good as this: one injected element or attribute changes it."""
    page = plain_pages["clinics/hostile-clinic/index.html"]
    name = "Plain clinic name"
    assert name in page
    for markup in ["<b>x</b>", '<a href="javascript:alert(1)">x</a>', '<span onclick="x">x</span>']:
        assert skeleton(page.replace(name, markup, 1)) != skeleton(page), markup
    with pytest.raises(AssertionError, match="inline script"):
        skeleton(page.replace(name, "<script>1</script>", 1))


# -- Articles -------------------------------------------------------------------------------------------


ARTICLE = """Title: {title}
Date: 2026-11-01
Slug: hostile-article
Summary: {summary}
Treatments: ketamine-infusion
Conditions: crps
Reviewer: hostile-doc
Last_reviewed: 2026-11-01
References: {reference}

Body text.
"""


@pytest.fixture(scope="module")
def hostile_registry_model(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("model")
    plugin = read_plugin_settings({})
    return load_registry(write(folder, dump(registry(benign))), MAX_BYTES, plugin.urls)


@settings(max_examples=100, **EXPLORE)
@given(hostile, hostile, hostile)
def test_article_checker_accepts_or_reports_hostile_metadata(tmp_path_factory, hostile_registry_model,  # type: ignore[no-untyped-def]
                                                             title: str, summary: str, reference: str) -> None:
    path = tmp_path_factory.mktemp("article") / "hostile.md"
    path.write_text(ARTICLE.format(title=title, summary=summary, reference=reference), encoding="utf-8", newline="")
    start = time.perf_counter()
    meta, problems = check_article_file(path, hostile_registry_model)
    assert time.perf_counter() - start < SECONDS
    assert (meta is None) == bool(problems)
    for problem in problems:
        assert problem.line >= 1 and problem.column >= 1 and problem.message.strip(), problem
    if meta is not None:
        assert not CONTROL_RE.search(meta.title + meta.summary)
        for ref in meta.references:
            assert ref.href == "" or re.match(r"https?://", ref.href), ref.href


# -- One whole build of a hostile registry and article, in the browser ----------------------------------

HOSTILE = "</script><script>alert(1)</script>\"><svg onload=alert(2)><img src=x onerror=alert(3)>{{ 7*7 }}"


@pytest.fixture(scope="module")
def hostile_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile-build")
    values = {field: (f"{field} " + HOSTILE)[: limit] for field, limit in TEXT_FIELDS.items()}
    values["physician.credentials"] = "<b>MD</b>"
    registry_file = write(folder, dump(registry(values.__getitem__, "https://example.org/path?a=1&b=2")))
    articles = folder / "content" / "articles"
    articles.mkdir(parents=True)
    (articles / "hostile.md").write_text(ARTICLE.format(
        title="Article " + HOSTILE, summary="Summary " + HOSTILE,
        reference=f"Author. {HOSTILE}. https://example.org/\"><script>alert(4)</script>"), encoding="utf-8")
    result = build(folder / "output", registry=registry_file, content=folder / "content")
    assert result.returncode == 0, result.stderr
    return folder / "output"


def injected(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Elements and attributes only the hostile text could have made."""
    return page.evaluate("""() => Array.from(
        document.querySelectorAll('svg, img, iframe, b, script:not([src]):not([type])'))
        .map(el => el.outerHTML.slice(0, 80)).concat(Array.from(document.querySelectorAll('*'))
        .filter(el => Array.from(el.attributes).some(a => a.name.startsWith('on')))
        .map(el => el.outerHTML.slice(0, 80)))""")


@pytest.mark.browser
def test_hostile_text_is_only_text_in_the_browser(browser, hostile_build: Path) -> None:  # type: ignore[no-untyped-def]
    server, url = serve(hostile_build)
    context = browser.new_context(base_url=url)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        for path in ["/", "/clinics/hostile-clinic/", "/articles/hostile-article/", "/articles/",
                     "/treatments/ketamine-infusion/", "/physicians/hostile-doc/"]:
            page.goto(path)
            assert injected(page) == [], path
            assert "{{ 7*7 }}" in page.locator("main").inner_text(), path
        page.goto("/find/?near=77494")
        page.wait_for_selector('#results[aria-busy="false"] > li')
        assert "clinic.name </script><script>alert(1)</script>" in page.locator("#results").inner_text()
        assert injected(page) == []
        page.goto("/search/?q=alert")
        page.wait_for_selector("[data-search-results] > li")
        assert injected(page) == []
        assert dialogs == []
    finally:
        context.close()
        server.shutdown()


def test_hostile_article_metadata_is_escaped_in_every_page(hostile_build: Path) -> None:
    for page in sorted(hostile_build.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        shape, _scripts = skeleton(html)
        tags = {tag for tag, _attrs, _schemes in shape}
        assert not tags & {"svg", "img", "iframe"}, page
        assert not any(name.startswith("on") for _tag, attrs, _schemes in shape for name in attrs), page
        assert not any(s == "javascript" for _tag, _attrs, schemes in shape for _name, s in schemes), page


def test_template_syntax_in_data_is_never_evaluated(hostile_build: Path) -> None:
    html = (hostile_build / "articles" / "hostile-article" / "index.html").read_text(encoding="utf-8")
    assert "{{ 7*7 }}" in html and ">49<" not in html
    clinic = (hostile_build / "clinics" / "hostile-clinic" / "index.html").read_text(encoding="utf-8")
    assert clinic.count("{{ 7*7 }}") >= 5



# -- Profile updates: the update file is untrusted too ----------------------------------------------

UPDATE = """clinic: katy-pain-and-spine
submitted_by: "MARKER-submitted_by"
submitted_at: "2026-11-20T15:04:05Z"
base: "{base}"
changes:
  name: MARKER-name
  MARKER-key: x
  locations:
    katy:
      phone: MARKER-phone
  referral:
    requirements: [MARKER-requirement]
"""
UPDATE_PLACES = ["submitted_by", "name", "key", "phone", "requirement"]


def katy_update(place: str, raw: str) -> str:
    """An update of the sample clinic with ``raw`` at ``place`` and plain values elsewhere."""
    from clinic_directory.model import entry_hash

    data, _problems = check_registry(ROOT / "clinics.yaml", MAX_BYTES)
    assert data is not None
    plain = {"submitted_by": "office@example.org", "name": "Katy Pain and Spine", "key": "summary",
             "phone": '"+1-281-555-0199"', "requirement": "Reason for referral"}
    text = UPDATE.format(base=entry_hash(data["clinics"]["katy-pain-and-spine"]))
    for name in UPDATE_PLACES:
        text = text.replace(f"MARKER-{name}", raw if name == place else plain[name])
    return text


@settings(max_examples=100, **EXPLORE)
@given(st.sampled_from(UPDATE_PLACES), st.one_of(st.sampled_from(RAW), texts(RAW + ATOMS)))
@example("name", "&a [" + ", ".join(["*a"] * 5) + "]")
@example("key", "services")
def test_update_is_applied_or_refused_with_its_problems(tmp_path_factory, place: str, raw: str) -> None:  # type: ignore[no-untyped-def]
    """Whatever an update file holds, ``apply_update`` applies it or reports why not (never a traceback
    or a hang), and a refused update leaves the registry byte-identical and logs nothing."""
    from clinic_directory.problems import InvalidInput
    from clinic_directory.updates import apply_update

    folder = tmp_path_factory.mktemp("update")
    registry = folder / "clinics.yaml"
    shutil.copyfile(ROOT / "clinics.yaml", registry)
    before = registry.read_bytes()
    update = write(folder, katy_update(place, raw.replace("\r", "")), "update.yaml")
    start = time.perf_counter()
    try:
        apply_update(update, registry)
    except InvalidInput as refusal:
        assert refusal.problems
        for problem in refusal.problems:
            assert problem.file in (str(update), str(registry)) and problem.line >= 1 and problem.column >= 1
            assert problem.message.strip() and problem.path.strip(), problem
        assert registry.read_bytes() == before
        assert not (folder / "clinics.yaml.updates.log").exists()
    else:
        data, problems = check_registry(registry, MAX_BYTES)
        assert data is not None and problems == []
        assert (folder / "clinics.yaml.updates.log").exists() or registry.read_bytes() == before
    assert time.perf_counter() - start < SECONDS


UPDATE_BOMB_RUNNER = """
import json, resource, sys, time
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from clinic_directory.problems import InvalidInput
from clinic_directory.updates import apply_update
registry = Path(sys.argv[1])
before = registry.read_bytes()
results = {}
for path in sys.argv[2:]:
    start = time.perf_counter()
    try:
        apply_update(Path(path), registry)
        problems = []
    except InvalidInput as refusal:
        problems = [str(p) for p in refusal.problems[:3]]
    results[Path(path).stem] = {"seconds": time.perf_counter() - start, "accepted": not problems,
                                "problems": problems, "registry kept": registry.read_bytes() == before}
print(json.dumps(results))
"""


def test_update_bombs_are_refused_in_bounded_time_and_memory(tmp_path: Path) -> None:
    """The registry bombs as update files: each refused, quickly, in a child limited to 1 GiB."""
    registry = tmp_path / "clinics.yaml"
    shutil.copyfile(ROOT / "clinics.yaml", registry)
    paths = []
    for index, (name, text) in enumerate(BOMBS.items()):
        path = tmp_path / f"{index}.yaml"
        path.write_bytes(text.encode("latin-1") if name == "not UTF-8" else text.encode("utf-8"))
        paths.append(str(path))
    result = subprocess.run([sys.executable, "-c", UPDATE_BOMB_RUNNER, str(registry), *paths], capture_output=True,
                            text=True, timeout=120, cwd=tmp_path,
                            env={"PYTHONPATH": str(ROOT / "plugins"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = {list(BOMBS)[int(index)]: found for index, found in json.loads(result.stdout).items()}
    assert [name for name, found in report.items() if found["accepted"]] == [], report
    assert [name for name, found in report.items() if found["seconds"] > SECONDS] == [], report
    assert all(found["registry kept"] for found in report.values())
    assert not (tmp_path / "pwned").exists()
    assert "aliases" in report["billion laughs"]["problems"][0]
