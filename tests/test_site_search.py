"""Full-text site search: a Pagefind index built with the site, queried in headless Chromium over HTTP."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

REGISTRY = yaml.safe_load((ROOT / "clinics.yaml").read_text(encoding="utf-8"))
ARTICLES = sorted((ROOT / "content" / "articles").glob("*.md"))


def test_pagefind_indexes_every_article_treatment_and_condition(site: Path) -> None:
    entry = json.loads((site / "pagefind" / "pagefind-entry.json").read_text(encoding="utf-8"))
    expected = len(ARTICLES) + len(REGISTRY["services"]) + len(REGISTRY["conditions"])
    assert entry["languages"]["en"]["page_count"] == expected
    assert (site / "pagefind" / "pagefind.js").is_file()


def directory_documents(site: Path) -> list[list[str]]:
    index = json.loads((site / "search" / "directory" / "index.json").read_text(encoding="utf-8"))
    docs: list[list[str]] = []
    for n in range(-(-index["docs"] // index["block"])):
        docs += json.loads((site / "search" / "directory" / "docs" / f"{n}.json").read_text(encoding="utf-8"))
    assert len(docs) == index["docs"]
    return docs


def test_the_directory_index_holds_every_clinic_and_physician_once(site: Path) -> None:
    docs = directory_documents(site)
    clinics = REGISTRY["clinics"]
    expected = {("Clinic", f"clinics/{slug}/") for slug in clinics}
    expected |= {("Physician", f"physicians/{slug}/") for c in clinics.values() for slug in c.get("physicians", {})}
    assert sorted((kind, url) for kind, url, _title, _detail in docs) == sorted(expected)
    for _kind, url, _title, _detail in docs:
        assert (site / url / "index.html").is_file(), url


def test_every_word_of_a_name_leads_to_its_document(site: Path) -> None:
    from clinic_directory.directory_search import words

    docs = directory_documents(site)
    index = json.loads((site / "search" / "directory" / "index.json").read_text(encoding="utf-8"))
    for number, (_kind, _url, title, _detail) in enumerate(docs):
        name = title.split(",")[0]
        for word in words(name):
            assert word[:2] in index["shards"], word
            shard = json.loads((site / "search" / "directory" / "words" / f"{word[:2]}.json").read_text("utf-8"))
            assert number in shard[word][0], (word, title)


def test_words_fold_accents_case_and_punctuation() -> None:
    from clinic_directory.directory_search import words

    assert words("José O'Brien-Núñez") == ["jose", "brien", "nunez"]
    assert words("CRPS / Type-1 / Dr. M.D.") == ["crps", "type", "dr"]


def test_indexed_pages_mark_what_is_searchable(site: Path) -> None:
    for url, kind in (("articles/ketamine-for-crps/", "Article"), ("treatments/ketamine-infusion/", "Treatment"),
                      ("conditions/crps/", "Condition")):
        html = (site / url / "index.html").read_text(encoding="utf-8")
        assert html.count("data-pagefind-body") == 1, url
        assert f'data-pagefind-meta="kind:{kind}"' in html, url
    # A treatment's list of clinics is not indexed: clinics are found through the directory index.
    html = (site / "treatments" / "ketamine-infusion" / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<section aria-labelledby="clinics-heading" data-pagefind-ignore>', html)
    # The article's disclaimer and reviewer box are on every article: they are not what it is about.
    html = (site / "articles" / "ketamine-for-crps" / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<aside[^>]*data-pagefind-ignore[^>]*data-disclaimer', html)
    # Clinics and physicians are in the directory index; locations are on their clinic's page.
    for url in ("", "find/", "search/", "articles/", "clinics/", "treatments/", "clinics/katy-pain-and-spine/",
                "physicians/nimish-dave/", "clinics/katy-pain-and-spine/locations/katy/"):
        assert "data-pagefind-body" not in (site / url / "index.html").read_text(encoding="utf-8"), url


def search(page, query: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Open /search/?q=... and return the result paths, in order."""
    page.goto(f"/search/?q={query}")
    page.wait_for_selector("[data-search-done]", state="attached", timeout=15000)
    return page.locator("[data-search-results] > li").evaluate_all(
        "items => items.map(item => item.getAttribute('data-result-url'))")


@pytest.mark.browser
@pytest.mark.parametrize(("query", "first", "includes"), [
    ("ketamine%20CRPS", "/articles/ketamine-for-crps/", {"/articles/ketamine-for-chronic-pain/"}),
    ("Maheshwari", None, {"/physicians/ankit-maheshwari/", "/clinics/texas-pain-intervention-clinic/"}),
    ("fibromyalgia", None, {"/conditions/fibromyalgia/", "/articles/ketamine-for-fibromyalgia/",
                            "/clinics/revitalize-medical-center/"}),
    ("trigger%20point%20injections", "/treatments/trigger-point-injections/", {"/clinics/revitalize-medical-center/"}),
    ("Evanston", None, {"/clinics/revitalize-medical-center/"}),
    ("abuse%20potential%20misuse", "/articles/ketamine-for-chronic-pain/", set()),
])
def test_search_finds_the_expected_pages(page, query: str, first: str | None, includes: set[str]) -> None:  # type: ignore[no-untyped-def]
    results = search(page, query)
    assert results, query
    if first:
        assert results[0] == first, results
    assert includes <= set(results), results
    assert page.request_log.foreign == []
    assert page.js_errors == []


@pytest.mark.browser
def test_results_show_kind_title_and_highlighted_excerpt(page) -> None:  # type: ignore[no-untyped-def]
    search(page, "postherpetic")
    first = page.locator("[data-search-results] > li").first
    assert first.locator(".result-kind").text_content() in {"Article", "Condition", "Clinic"}
    assert first.locator("mark").count() >= 1
    assert "postherpetic" in first.locator("mark").first.inner_text().lower()
    assert page.locator("[data-search-status]").inner_text().endswith("\u201cpostherpetic\u201d.")


@pytest.mark.browser
def test_no_match_says_so(page) -> None:  # type: ignore[no-untyped-def]
    assert search(page, "zzqxjvw") == []
    assert "Nothing matches" in page.locator("[data-search-status]").inner_text()
    assert page.locator("[data-search-section]:visible").count() == 0


@pytest.mark.browser
def test_typing_a_query_searches_and_keeps_it_in_the_address(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/search/")
    page.get_by_label("Words to search for").fill("sciatica")
    page.get_by_label("Words to search for").press("Enter")
    page.wait_for_selector("[data-search-done='sciatica']", state="attached", timeout=15000)
    assert page.url.endswith("/search/?q=sciatica")
    link = page.locator("[data-search-results] > li a").first
    assert link.inner_text() == "Sciatica"
    link.click()
    page.wait_for_url("**/conditions/sciatica/")
    assert page.locator("h1").inner_text() == "Sciatica"
    assert page.request_log.foreign == []
    assert page.js_errors == []


@pytest.mark.browser
def test_query_text_is_never_markup(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/search/?q=%3Cimg%20src%3Dx%20onerror%3Dwindow.pwned%3D1%3Eketamine")
    page.wait_for_selector("[data-search-done]", state="attached", timeout=15000)
    assert page.locator("main img").count() == 0
    assert page.evaluate("window.pwned") is None
    assert "<img" in page.locator("[data-search-status]").inner_text()


@pytest.mark.browser
def test_search_link_is_in_every_page_header(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/clinics/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Search").click()
    page.wait_for_url("**/search/")
    assert page.locator("h1").inner_text() == "Search the site"


def test_a_failing_indexer_stops_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The build fails (and so leaves the output as it was) rather than publish a site whose search is broken."""
    import pagefind_bin

    from clinic_directory.build import BuildFailed, build_search_index

    monkeypatch.setattr(pagefind_bin, "get_executable", lambda: Path("/bin/false"))
    with pytest.raises(BuildFailed, match=r"Pagefind could not index the site \(exit 1\)"):
        build_search_index(tmp_path)


@pytest.mark.browser
def test_clinics_and_physicians_are_found_by_the_start_of_their_names(page) -> None:  # type: ignore[no-untyped-def]
    assert search(page, "Mahesh")[0] == "/physicians/ankit-maheshwari/"
    first = page.locator("[data-search-section=directory] li").first
    assert first.locator(".result-kind").text_content() == "Physician"
    assert "Texas Pain Intervention Clinic" in first.locator("p").text_content()
    assert page.get_by_role("heading", name="Clinics and physicians").is_visible()
    assert not page.get_by_role("heading", name="Articles, treatments and conditions").is_visible()
    # Every word must match; a clinic's own name outranks the physicians who work there.
    search(page, "glenview revitalize")
    found = page.locator("[data-directory-results] > li").evaluate_all(
        "items => items.map(item => item.getAttribute('data-result-url'))")
    assert found[0] == "/clinics/revitalize-medical-center/"
    physicians = REGISTRY["clinics"]["revitalize-medical-center"]["physicians"]
    assert set(found[1:]) == {f"/physicians/{slug}/" for slug in physicians}
    assert page.request_log.foreign == []
    assert page.js_errors == []
