"""Education articles: metadata checked against the registry, pages linked both ways, JSON-LD, feed.

Expectations come from the Markdown headers and clinics.yaml read here directly, not
from the plugin's own lookups, so a mistake in the plugin cannot hide itself.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import yaml

from clinic_directory.articles import check_article_file, check_articles, read_header
from clinic_directory.problems import Problem
from clinic_directory.registry import load_registry
from clinic_directory.settings import DEFAULTS, read_plugin_settings
from conftest import PUBLISHED_SITEURL, ROOT, build

ARTICLES = ROOT / "content" / "articles"
SEEDS = ROOT.parent / "shared" / "seeds"
REGISTRY = yaml.safe_load((ROOT / "clinics.yaml").read_text(encoding="utf-8"))


def header(path: Path) -> dict[str, list[str]]:
    """An article's metadata as plain strings: key -> its lines."""
    return {f.key: [v.text for v in f.values] for f in read_header(path.read_text(encoding="utf-8"))}


def slugs(value: list[str]) -> list[str]:
    return [s.strip() for s in value[0].split(",") if s.strip()] if value else []


SAMPLE = {path.stem: header(path) for path in sorted(ARTICLES.glob("*.md"))}


def sample_registry():  # type: ignore[no-untyped-def]
    urls = read_plugin_settings({}).urls
    return load_registry(ROOT / "clinics.yaml", DEFAULTS["MAX_REGISTRY_BYTES"][0], urls)


VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})


class Page(HTMLParser):
    """Links, elements with data-* attributes, meta tags and JSON-LD of one HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, dict[str, str]]] = []  # (href, attributes of the <a> and its parents' data-*)
        self.data: list[dict[str, str]] = []
        self.meta: dict[str, str] = {}
        self.canonical = ""
        self.jsonld: list[str] = []
        self._script = False
        self._text: list[str] = []
        self.text = ""
        self._stack: list[dict[str, str]] = []
        self.feed(text)
        self.text = "".join(self._text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if any(k.startswith("data-") for k in values):
            self.data.append({"tag": tag, **values})
        if tag not in VOID:
            self._stack.append({k: v for k, v in values.items() if k.startswith("data-")})
        if tag == "a" and "href" in values:
            context: dict[str, str] = {}
            for level in self._stack:
                context.update(level)
            self.links.append((values["href"], context))
        elif tag == "meta":
            key = values.get("property") or values.get("name")
            if key:
                self.meta[key] = values.get("content", "")
        elif tag == "link" and values.get("rel") == "canonical":
            self.canonical = values.get("href", "")
        elif tag == "script" and values.get("type") == "application/ld+json":
            self._script = True
            self.jsonld.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = False
        if tag not in VOID and self._stack:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        if self._script:
            self.jsonld[-1] += data
        self._text.append(data)


def page_at(site: Path, url: str) -> Page:
    return Page((site / url / "index.html").read_text(encoding="utf-8"))


def resolves(site: Path, page_url: str, href: str) -> bool:
    """Does a link on the page at ``page_url`` (site-relative) reach a file of the built site?"""
    target = urlsplit(urljoin(f"http://site.invalid/{page_url}", href))
    if target.netloc != "site.invalid":
        return True  # external (references); not ours to check here
    path = site / target.path.lstrip("/")
    return path.is_file() or (path / "index.html").is_file()


# -- the sample articles -----------------------------------------------------------------


def test_sample_articles_cover_what_the_issue_asks_for() -> None:
    assert {"ketamine-for-chronic-pain", "ketamine-for-crps"} <= set(SAMPLE)
    metas, problems = check_articles(ARTICLES.glob("*.md"), sample_registry())
    assert problems == []
    assert len(metas) == len(SAMPLE) >= 5
    for name, meta in SAMPLE.items():
        for key in ("summary", "treatments", "conditions", "reviewer", "last_reviewed", "references", "date"):
            assert meta.get(key), f"{name}: {key}"
        # The seeds do not say any physician reviewed our articles: the assignment is sample data.
        assert meta["reviewer_placeholder"] == ["true"], name
    main = SAMPLE["ketamine-for-chronic-pain"]
    body = (ARTICLES / "ketamine-for-chronic-pain.md").read_text(encoding="utf-8").lower()
    for heading in ("what ketamine is", "how it is thought to work", "which conditions", "infusion series",
                    "doses", "side effects and risks", "misuse", "who should not have it", "questions to ask"):
        assert f"## {heading}" in body or heading in body, heading
    assert slugs(main["treatments"]) == ["ketamine-infusion"]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower().replace("\u2019", "").replace("'", ""))


def test_articles_are_in_our_own_words() -> None:
    """No run of 10 words in an article (its reference list aside) matches a seed document."""
    assert SEEDS.is_dir(), "the seed documents (shared/seeds, beside the repository) are needed for this check"
    run = 10
    seen: dict[tuple[str, ...], str] = {}
    for seed in sorted(SEEDS.glob("*.txt")):
        found = words(seed.read_text(encoding="utf-8"))
        for i in range(len(found) - run + 1):
            seen.setdefault(tuple(found[i:i + run]), seed.name)
    assert seen
    copied = []
    for path in sorted(ARTICLES.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        fields = read_header(text)
        references = {v.line for f in fields if f.key == "references" for v in f.values}
        kept = "\n".join(line for number, line in enumerate(text.splitlines(), 1) if number not in references)
        found = words(kept)
        copied += [(path.name, seen[tuple(found[i:i + run])], " ".join(found[i:i + run]))
                   for i in range(len(found) - run + 1) if tuple(found[i:i + run]) in seen]
    assert copied == []


# -- bad input is a located build error ------------------------------------------------------

GOOD = """Title: A test article
Date: 2026-11-01
Slug: a-test-article
Summary: A short summary.
Treatments: ketamine-infusion
Conditions: crps
Reviewer: decaria
Reviewer_placeholder: true
Last_reviewed: 2026-11-02
References: Zgaia AO, et al. The role of ketamine. Clujul Medical. 2015;88(4):457-461. doi:10.15386/cjmed-500

Body.
"""


def problems_for(tmp_path: Path, text: str, name: str = "article.md") -> list[str]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    _meta, problems = check_article_file(path, sample_registry())
    return [f"{p.line}:{p.column}: {p.path}: {p.message}" for p in problems]


def test_a_good_article_has_no_problem(tmp_path: Path) -> None:
    path = tmp_path / "good.md"
    path.write_text(GOOD, encoding="utf-8")
    meta, problems = check_article_file(path, sample_registry())
    assert problems == []
    assert meta is not None
    assert [e.slug for e in meta.treatments] == ["ketamine-infusion"]
    assert [e.slug for e in meta.conditions] == ["crps"]
    assert meta.reviewer.slug == "decaria" and meta.reviewer_placeholder is True
    assert meta.references[0].doi == "10.15386/cjmed-500"
    assert meta.references[0].href == "https://doi.org/10.15386/cjmed-500"
    assert "doi" not in meta.references[0].text.lower()


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("Treatments: ketamine-infusion", "Treatments: ketamine-infusion, ketamine-infusions",
     "5:32: treatments[1]: unknown treatment 'ketamine-infusions'; did you mean 'ketamine-infusion'?"),
    ("Conditions: crps", "Conditions: migraine",
     "6:13: conditions[0]: unknown condition 'migraine'; known conditions are cancer-pain, crps, "
     "diabetic-neuropathy, fibromyalgia, low-back-pain, neuropathic-pain, postherpetic-neuralgia, sciatica"),
    ("Reviewer: decaria", "Reviewer: dr-who",
     "7:11: reviewer: unknown physician 'dr-who'; known physicians are ankit-maheshwari, decaria, "
     "nimish-dave, robert-bowers"),
    ("Last_reviewed: 2026-11-02\n", "",
     "10:1: last_reviewed: required field 'Last_reviewed' is missing (date of the last medical review, "
     "YYYY-MM-DD); add it to the metadata at the top of the file"),
    ("Last_reviewed: 2026-11-02", "Last_reviewed: 2 Nov 2026",
     "9:16: last_reviewed: '2 Nov 2026' is not a date; write it as YYYY-MM-DD, e.g. 2026-11-01"),
    ("Date: 2026-11-01\n", "",
     "10:1: date: required field 'Date' is missing (publication date, YYYY-MM-DD); "
     "add it to the metadata at the top of the file"),
    ("Reviewer_placeholder: true", "Reviwer_placeholder: true",
     "8:1: reviwer_placeholder: unknown metadata field 'Reviwer_placeholder'; did you mean 'Reviewer_placeholder'?"),
    ("Reviewer_placeholder: true", "Reviewer_placeholder: maybe",
     "8:23: reviewer_placeholder: 'maybe' is not 'true' or 'false'"),
    ("Slug: a-test-article", "Slug: A Test",
     "3:7: slug: 'A Test' is not a slug: use lower-case letters and digits joined by single hyphens"),
    ("Conditions: crps", "Conditions: crps, crps", "6:19: conditions[1]: condition 'crps' is listed twice"),
    ("Treatments: ketamine-infusion\nConditions: crps", "Treatments:\nConditions:",
     "5:12: treatments: an article must be related to at least one treatment or condition"),
    ("doi:10.15386/cjmed-500", "https://doi.org/10.1111/j.",
     "10:13: references[0]: mentions a DOI that is not complete; write it as doi:10.NNNN/suffix or leave it out"),
    ("doi:10.15386/cjmed-500", "https://doi.org/10.4103/0259-",
     "10:13: references[0]: mentions a DOI that is not complete; write it as doi:10.NNNN/suffix or leave it out"),
    ("Summary: A short summary.", "Summary: A short summary.\nSummary: Another.",
     "5:1: summary: 'Summary' is given twice (first on line 4); keep one"),
])
def test_bad_metadata_is_reported_with_line_and_field(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in GOOD
    assert problems_for(tmp_path, GOOD.replace(old, new, 1)) == [expected]


def test_a_file_without_a_header_is_reported(tmp_path: Path) -> None:
    assert problems_for(tmp_path, "Just text.\n")[0].startswith("1:1: (header): the file has no metadata header")


def test_two_articles_cannot_share_a_slug(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.md").write_text(GOOD.replace("Title: A test", "Title: Another"), encoding="utf-8")
    _metas, problems = check_articles([tmp_path / "a.md", tmp_path / "b.md"], sample_registry())
    assert [(Path(p.file).name, p.line, p.path) for p in problems] == [("b.md", 3, "slug")]
    assert "also used by" in problems[0].message


def test_build_stops_on_a_bad_article_and_says_where(tmp_path: Path) -> None:
    content = tmp_path / "content"
    (content / "articles").mkdir(parents=True)
    bad = content / "articles" / "bad.md"
    text = GOOD.replace("Reviewer: decaria", "Reviewer: nobody").replace("Conditions: crps", "Conditions: gout")
    bad.write_text(text, encoding="utf-8")
    output = tmp_path / "output"
    output.mkdir()
    (output / "keep.txt").write_text("untouched", encoding="utf-8")
    result = build(output, content=content)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert (f"{bad}:6:13: conditions[0]: unknown condition 'gout'; known conditions are cancer-pain, crps, "
            "diabetic-neuropathy, fibromyalgia, low-back-pain, neuropathic-pain, postherpetic-neuralgia, "
            "sciatica") in lines
    assert any(line.startswith(f"{bad}:7:11: reviewer: unknown physician 'nobody'") for line in lines)
    assert "build stopped: 2 problem(s)" in result.stderr
    assert [p.name for p in output.iterdir()] == ["keep.txt"]


def test_problem_format_is_file_line_column_path_message() -> None:
    assert str(Problem("content/articles/x.md", 7, 11, "reviewer", "unknown")) == \
        "content/articles/x.md:7:11: reviewer: unknown"


# -- the built pages -------------------------------------------------------------------------


def offering(kind: str, slug: str) -> list[str]:
    """Slugs of the clinics the registry says offer a treatment or treat a condition, by name."""
    field = "services" if kind == "treatments" else "conditions"
    clinics = [(c["name"].casefold(), s) for s, c in REGISTRY["clinics"].items() if slug in c.get(field, [])]
    return [s for _name, s in sorted(clinics)]


@pytest.mark.parametrize("name", sorted(SAMPLE))
def test_article_page_links_resolve_and_say_what_it_is(site: Path, name: str) -> None:
    meta = SAMPLE[name]
    slug = meta["slug"][0]
    url = f"articles/{slug}/"
    page = page_at(site, url)
    for href, _context in page.links:
        assert resolves(site, url, href), f"{url}: {href} does not resolve"
    related = [(ctx.get("data-related-service"), ctx.get("data-related-condition"), href)
               for href, ctx in page.links if "data-related-service" in ctx or "data-related-condition" in ctx]
    shown_services = {s for s, _c, href in related if s and href.endswith(f"treatments/{s}/")}
    shown_conditions = {c for _s, c, href in related if c and href.endswith(f"conditions/{c}/")}
    assert shown_services == set(slugs(meta["treatments"]))
    assert shown_conditions == set(slugs(meta["conditions"]))
    for service in slugs(meta["treatments"]):
        finds = [href for href, ctx in page.links if ctx.get("data-find-treatment") == service]
        assert finds and finds[0].endswith(f"find/?treatment={service}")
        assert f"Find a clinic near you offering {REGISTRY['services'][service]['name'].lower()}" in page.text
    reviewer = meta["reviewer"][0]
    assert any(href.endswith(f"physicians/{reviewer}/") for href, ctx in page.links if "data-reviewer" in ctx)
    assert "not medical advice" in page.text and "In an emergency, call 911" in page.text
    assert "no physician has actually reviewed this article" in page.text  # the reviewer is sample data
    # References as a numbered list, DOI links where a DOI is given.
    html = (site / url / "index.html").read_text(encoding="utf-8")
    references = re.search(r'<section class="references".*?<ol>(.*?)</ol>', html, re.S)
    assert references and references.group(1).count("<li>") == len(meta["references"])
    for line in meta["references"]:
        doi = re.search(r"doi:(10\.\S+)", line)
        if doi:
            assert f'href="https://doi.org/{doi.group(1)}"' in references.group(1)


def test_entry_pages_list_exactly_the_registrys_clinics_and_the_related_articles(site: Path) -> None:
    for kind, section in (("treatments", "services"), ("conditions", "conditions")):
        for slug, entry in REGISTRY[section].items():
            url = f"{kind}/{slug}/"
            page = page_at(site, url)
            clinics = [d["data-clinic"] for d in page.data if d["tag"] == "li" and "data-clinic" in d]
            assert clinics == offering(kind, slug), url
            articles = sorted(d["data-article"] for d in page.data if d["tag"] == "li" and "data-article" in d)
            expected = sorted(m["slug"][0] for m in SAMPLE.values() if slug in slugs(m[kind]))
            assert articles == expected, url
            param = "treatment" if kind == "treatments" else "condition"
            assert any(href.endswith(f"find/?{param}={slug}") for href, _ in page.links), url
            for href, _ in page.links:
                assert resolves(site, url, href), f"{url}: {href}"
            assert entry["summary"].split()[0] in page.text


def test_articles_index_lists_every_article(site: Path) -> None:
    page = page_at(site, "articles/")
    listed = sorted(d["data-article"] for d in page.data if "data-article" in d)
    assert listed == sorted(m["slug"][0] for m in SAMPLE.values())
    for href, _ in page.links:
        assert resolves(site, "articles/", href), href


@pytest.mark.parametrize("name", sorted(SAMPLE))
def test_article_json_ld_is_a_medical_web_page(published_site: Path, name: str) -> None:
    meta = SAMPLE[name]
    slug = meta["slug"][0]
    page = page_at(published_site, f"articles/{slug}/")
    assert len(page.jsonld) == 1
    data = json.loads(page.jsonld[0])
    assert data["@context"] == "https://schema.org"
    assert data["@type"] == "MedicalWebPage"
    assert data["url"] == f"{PUBLISHED_SITEURL}/articles/{slug}/"
    assert data["lastReviewed"] == meta["last_reviewed"][0]
    assert data["datePublished"] == meta["date"][0]
    if meta.get("reviewer_placeholder", ["false"])[0] == "true":
        assert "reviewedBy" not in data  # a sample reviewer is no real review: never claimed to machines
    else:
        assert data["reviewedBy"]["@type"] == "Physician"
        assert data["reviewedBy"]["url"] == f"{PUBLISHED_SITEURL}/physicians/{meta['reviewer'][0]}/"
    about = [(a["@type"], a["url"]) for a in data["about"]]
    assert about == [("MedicalTherapy", f"{PUBLISHED_SITEURL}/treatments/{s}/") for s in slugs(meta["treatments"])] + \
        [("MedicalCondition", f"{PUBLISHED_SITEURL}/conditions/{s}/") for s in slugs(meta["conditions"])]
    assert len(data["citation"]) == len(meta["references"])
    assert all(c["@type"] == "CreativeWork" and c["name"] for c in data["citation"])


@pytest.mark.parametrize("name", sorted(SAMPLE))
def test_article_has_canonical_url_description_and_open_graph(published_site: Path, name: str) -> None:
    meta = SAMPLE[name]
    slug = meta["slug"][0]
    page = page_at(published_site, f"articles/{slug}/")
    url = f"{PUBLISHED_SITEURL}/articles/{slug}/"
    assert page.canonical == url
    assert page.meta["og:url"] == url
    assert page.meta["og:type"] == "article"
    assert page.meta["og:title"] == meta["title"][0]
    summary = " ".join(meta["summary"])
    assert page.meta["description"] == page.meta["og:description"]
    assert summary.startswith(page.meta["description"].removesuffix("...").rstrip())
    assert 0 < len(page.meta["description"]) <= 160
    assert page.meta["article:published_time"] == meta["date"][0]


def test_every_page_has_a_description_and_open_graph_title(published_site: Path) -> None:
    for path in sorted(published_site.rglob("*.html")):
        if path.parts[len(published_site.parts)] in ("pagefind", "theme"):
            continue
        page = Page(path.read_text(encoding="utf-8"))
        assert page.meta.get("description"), path
        assert page.meta.get("og:title") and page.meta.get("og:type"), path
        if path.name == "index.html" and "noindex" not in page.meta.get("robots", ""):
            relative = path.parent.relative_to(published_site).as_posix()
            expected = f"{PUBLISHED_SITEURL}/" + ("" if relative == "." else f"{relative}/")
            assert page.canonical == expected, path


def test_atom_feed_lists_every_article_with_absolute_links(published_site: Path) -> None:
    feed = ET.parse(published_site / "feeds" / "articles.atom.xml").getroot()
    atom = "{http://www.w3.org/2005/Atom}"
    assert feed.tag == f"{atom}feed"
    entries = feed.findall(f"{atom}entry")
    links = sorted(e.find(f"{atom}link").get("href") for e in entries)
    assert links == sorted(f"{PUBLISHED_SITEURL}/articles/{m['slug'][0]}/" for m in SAMPLE.values())
    for entry in entries:
        content = entry.find(f"{atom}content").text
        assert "not medical advice" in content and "call 911" in content
        for href in re.findall(r'href="([^"]+)"', content):
            assert href.startswith(("https://", "mailto:")), href
    head = Page((published_site / "index.html").read_text(encoding="utf-8"))
    assert f"{PUBLISHED_SITEURL}/feeds/articles.atom.xml" in (published_site / "index.html").read_text(encoding="utf-8")
    assert head.meta["og:type"] == "website"


def test_development_build_has_no_feed(site: Path) -> None:
    """A feed needs absolute links; the relative-URL development build cannot give them."""
    assert not (site / "feeds").exists()


def test_real_reviewer_is_declared_in_json_ld(tmp_path: Path) -> None:
    """Once an article has a real review (no placeholder flag), the page says who reviewed it."""
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    article = content / "articles" / "ketamine-for-crps.md"
    article.write_text(article.read_text(encoding="utf-8").replace("Reviewer_placeholder: true\n", ""),
                       encoding="utf-8")
    result = build(tmp_path / "output", content=content)
    assert result.returncode == 0, result.stderr
    page = page_at(tmp_path / "output", "articles/ketamine-for-crps/")
    data = json.loads(page.jsonld[0])
    assert data["reviewedBy"]["@type"] == "Physician"
    assert data["reviewedBy"]["name"] == SAMPLE_REGISTRY_NAMES[SAMPLE["ketamine-for-crps"]["reviewer"][0]]


SAMPLE_REGISTRY_NAMES = {doc.slug: doc.name for doc in sample_registry().physicians.values()}
