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


def test_the_build_indexes_every_article_clinic_physician_treatment_and_condition(site: Path) -> None:
    entry = json.loads((site / "pagefind" / "pagefind-entry.json").read_text(encoding="utf-8"))
    clinics = REGISTRY["clinics"]
    expected = (len(ARTICLES) + len(clinics) + sum(len(c.get("physicians", {})) for c in clinics.values())
                + len(REGISTRY["services"]) + len(REGISTRY["conditions"]))
    assert entry["languages"]["en"]["page_count"] == expected
    assert (site / "pagefind" / "pagefind.js").is_file()


def test_indexed_pages_mark_what_is_searchable(site: Path) -> None:
    for url, kind in (("articles/ketamine-for-crps/", "Article"), ("treatments/ketamine-infusion/", "Treatment"),
                      ("conditions/crps/", "Condition"), ("clinics/katy-pain-and-spine/", "Clinic"),
                      ("physicians/nimish-dave/", "Physician")):
        html = (site / url / "index.html").read_text(encoding="utf-8")
        assert html.count("data-pagefind-body") == 1, url
        assert f'data-pagefind-meta="kind:{kind}"' in html, url
    # The article's disclaimer and reviewer box are on every article: they are not what it is about.
    html = (site / "articles" / "ketamine-for-crps" / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<aside[^>]*data-pagefind-ignore[^>]*data-disclaimer', html)
    for url in ("", "find/", "search/", "articles/", "clinics/", "treatments/"):
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
    assert "No pages match" in page.locator("[data-search-status]").inner_text()


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
