"""The location search page (/find/) in headless Chromium, against the sample site on loopback.

The sample registry has five locations: Katy TX 77494, Austin TX 78701, Bellevue WA 98004,
Glenview IL 60025 and Evanston IL 60201. Distances are checked against geopy here; the
generated registry of hundreds of locations is in test_geo.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from geopy.distance import great_circle

from conftest import RequestLog

pytestmark = pytest.mark.browser

# The sample's coordinates (clinics.yaml) and the ZIP centroids the page searches from.
LOCATIONS = {
    ("katy-pain-and-spine", "katy"): (29.7404, -95.8304),
    ("texas-pain-intervention-clinic", "texas"): (30.2713, -97.7426),
    ("bellevue-pain-and-wellness", "bellevue"): (47.6155, -122.2072),
    ("revitalize-medical-center", "glenview"): (42.0758, -87.8223),
    ("revitalize-medical-center", "evanston"): (42.0546, -87.6943),
}
ZIP_60201 = (42.0546, -87.6943)
BUSY_DONE = '#results[aria-busy="false"]'


def results(page: Any) -> list[tuple[str, str, str]]:
    """(clinic, location, miles) of every result, once the list is final."""
    page.wait_for_selector(BUSY_DONE, state="attached")
    return [(li.get_attribute("data-clinic"), li.get_attribute("data-location"), li.get_attribute("data-distance-mi"))
            for li in page.query_selector_all("#results > li")]


def status(page: Any) -> str:
    return page.inner_text("#results-status").strip()


def miles(point: tuple[float, float], key: tuple[str, str]) -> float:
    return great_circle(point, LOCATIONS[key]).miles


def query_of(page: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


@pytest.fixture
def find(page: Any) -> Iterator[Any]:
    """The page fixture; after the test, no request left the site and no script failed."""
    yield page
    assert page.request_log.foreign == []
    assert page.js_errors == []


def test_zip_search_lists_nearest_first_with_geopy_distances(find: Any) -> None:
    find.goto("/find/?near=60201")
    found = results(find)
    assert [(c, loc) for c, loc, _ in found] == [("revitalize-medical-center", "evanston"),
                                                 ("revitalize-medical-center", "glenview")]
    for clinic, location, shown in found:
        assert re.fullmatch(r"\d+\.\d", shown)
        assert abs(float(shown) - miles(ZIP_60201, (clinic, location))) <= 0.05
    assert status(find).startswith("Found 2 locations within 50 miles of Evanston, IL 60201")
    first = find.locator("#results > li").first
    assert first.get_by_role("link", name="Revitalize Medical Center", exact=True).get_attribute("href") == \
        "../clinics/revitalize-medical-center/#location-evanston"
    assert first.get_by_role("link", name="+1-847-555-0110").get_attribute("href") == "tel:+18475550110"
    text = first.inner_text()
    for expected in ["Evanston office", "200 Placeholder Street, Evanston, IL 60201", "Ketamine infusion therapy",
                     "Trigger point injections", "Accepting new patients", "0.0 miles away"]:
        assert expected in text


def test_result_link_reaches_the_location_on_the_clinic_page(find: Any) -> None:
    find.goto("/find/?near=77494")
    results(find)
    find.locator("#results > li").first.get_by_role("link", name="Katy Pain and Spine", exact=True).click()
    find.wait_for_url("**/clinics/katy-pain-and-spine/#location-katy")
    assert find.locator("#location-katy").is_visible()


@pytest.mark.parametrize(("near", "label", "first"), [
    ("Katy, TX", "Katy, TX", ("katy-pain-and-spine", "katy")),
    ("katy tx", "Katy, TX", ("katy-pain-and-spine", "katy")),
    ("Austin, Texas", "Austin, TX", ("texas-pain-intervention-clinic", "texas")),
    ("bellevue, wa", "Bellevue, WA", ("bellevue-pain-and-wellness", "bellevue")),
    ("Glenview, IL 60025", "Glenview, IL 60025", ("revitalize-medical-center", "glenview")),
])
def test_city_search(find: Any, near: str, label: str, first: tuple[str, str]) -> None:
    find.goto(f"/find/?near={near}")
    found = results(find)
    assert (found[0][0], found[0][1]) == first
    assert f"of {label}" in status(find)


def test_city_distances_are_measured_from_the_city(find: Any) -> None:
    find.goto("/find/?near=Chicago%2C+IL")
    found = results(find)
    assert [loc for _c, loc, _d in found] == ["evanston", "glenview"]
    # Chicago's position is the mean of its ZIP centroids: about 10 miles from Evanston.
    assert 5 < float(found[0][2]) < 15


def test_geolocation_granted_searches_from_the_position_and_keeps_it_out_of_the_url(
        browser: Any, site_url: str) -> None:
    here = (47.62, -122.19)  # Bellevue
    context = browser.new_context(base_url=site_url, geolocation={"latitude": here[0], "longitude": here[1]},
                                  permissions=["geolocation"])
    log = RequestLog(origin=site_url)
    context.on("request", lambda request: log.urls.append(request.url))
    page = context.new_page()
    page.goto("/find/?treatment=ketamine-infusion")
    page.get_by_role("button", name="Use my location").click()
    page.wait_for_function("() => document.getElementById('results-status').textContent.includes('your location')")
    found = results(page)
    assert (found[0][0], found[0][1]) == ("bellevue-pain-and-wellness", "bellevue")
    assert abs(float(found[0][2]) - great_circle(here, LOCATIONS[found[0][:2]]).miles) <= 0.05
    assert "Found 1 location within 50 miles of your location" in status(page)
    assert "47.6" not in page.url and "122.1" not in page.url and "near" not in query_of(page)
    assert query_of(page)["treatment"] == ["ketamine-infusion"]
    assert all("47.6" not in url and "122.1" not in url for url in log.urls), "the position must not leave"
    assert log.foreign == []
    context.close()


def test_geolocation_denied_says_so_and_offers_typing(browser: Any, site_url: str) -> None:
    context = browser.new_context(base_url=site_url, geolocation={"latitude": 47.62, "longitude": -122.19},
                                  permissions=[])
    page = context.new_page()
    page.goto("/find/")
    page.click("#use-my-location")
    page.wait_for_function("() => document.getElementById('results-status').textContent.includes('did not allow')")
    assert results(page) == []
    assert "Type a ZIP code or a city instead" in status(page)
    assert page.evaluate("document.activeElement.id") == "find-near"
    context.close()


@pytest.mark.parametrize(("query", "expected"), [
    ("near=60201&treatment=trigger-point-injections", ["evanston", "glenview"]),
    ("near=60201&condition=crps", ["evanston", "glenview"]),
    ("near=78701&treatment=interventional-pain-management", ["texas"]),
    ("near=77494&radius=200", ["katy", "texas"]),
    ("near=77494&radius=200&treatment=interventional-pain-management", ["texas"]),
    ("near=77494&radius=200&condition=neuropathic-pain&treatment=ketamine-infusion", ["katy", "texas"]),
    ("near=77494&radius=10", ["katy"]),
])
def test_filters_and_radius_combine(find: Any, query: str, expected: list[str]) -> None:
    find.goto(f"/find/?{query}")
    assert [loc for _c, loc, _d in results(find)] == expected
    assert status(find).startswith(f"Found {len(expected)} location")


def test_nothing_within_the_radius_lists_the_nearest_anyway(find: Any) -> None:
    find.goto("/find/?near=98004&treatment=trigger-point-injections")
    found = results(find)
    assert [loc for _c, loc, _d in found] == ["glenview", "evanston"]
    bellevue = (47.6155, -122.2072)  # 98004's centroid
    for clinic, location, shown in found:
        assert abs(float(shown) - miles(bellevue, (clinic, location))) <= 0.05
    assert float(found[0][2]) > 50
    text = status(find)
    assert text.startswith("No location within 50 miles of Bellevue, WA 98004")
    assert "nearest" in text and f"{float(found[0][2]):,.1f} miles away" in text


def test_filters_no_clinic_matches(find: Any) -> None:
    find.goto("/find/?near=60201&condition=crps&treatment=interventional-pain-management")
    assert results(find) == []
    assert status(find).startswith("No clinic in the directory matches")


@pytest.mark.parametrize(("near", "message"), [
    ("00000", "Unknown ZIP code 00000"),
    ("99999", "Unknown ZIP code 99999"),
    ("1234", "A ZIP code has 5 digits"),
    ("Nowhereville, TX", "Unknown city “Nowhereville, TX”"),
    ("Springfield, ZZ", "“ZZ” is not a US state we know"),
    ("Xyzzyq", "Unknown city “Xyzzyq”"),
])
def test_unknown_place_says_so_and_leaves_results_empty(find: Any, near: str, message: str) -> None:
    find.goto(f"/find/?near={near}")
    assert results(find) == []
    text = status(find)
    assert message in text
    assert "ZIP code" in text, "it says what to type instead"


def test_misspelled_city_suggests_the_right_one(find: Any) -> None:
    find.goto("/find/?near=Evanstn%2C+IL&condition=crps")
    assert results(find) == []
    assert "Did you mean Evanston, IL?" in status(find)
    find.locator("#near-suggestions").get_by_role("link", name="Evanston, IL").click()
    assert [loc for _c, loc, _d in results(find)] == ["evanston", "glenview"]
    assert query_of(find) == {"near": ["Evanston, IL"], "condition": ["crps"]}


def test_city_in_several_states_asks_which(find: Any) -> None:
    find.goto("/find/?near=Evanston")
    assert results(find) == []
    assert "Evanston, IL" in status(find) and "Evanston, WY" in status(find)


def test_url_round_trip_and_back_button(find: Any) -> None:
    find.goto("/find/?near=Glenview%2C+IL&condition=crps&treatment=ketamine-infusion&radius=25")
    results(find)
    assert find.input_value("#find-near") == "Glenview, IL"
    assert find.input_value("#find-condition-input") == "Complex regional pain syndrome"
    assert find.input_value("#find-condition") == "crps"
    assert find.input_value("#find-treatment-input") == "Ketamine infusion therapy"
    assert find.input_value("#find-radius") == "25"
    first = results(find)

    find.fill("#find-near", "77494")
    find.fill("#find-condition-input", "")
    find.fill("#find-treatment-input", "")
    find.select_option("#find-radius", "250")
    find.get_by_role("button", name="Search").click()
    find.wait_for_url("**/find/?near=77494&radius=250")
    assert [loc for _c, loc, _d in results(find)] == ["katy", "texas"]

    find.go_back()
    find.wait_for_url("**/find/?near=Glenview*")
    assert results(find) == first
    assert find.input_value("#find-near") == "Glenview, IL"
    assert find.input_value("#find-radius") == "25"
    find.go_forward()
    find.wait_for_url("**/find/?near=77494&radius=250")
    assert [loc for _c, loc, _d in results(find)] == ["katy", "texas"]

    # The shared URL gives the same answer in a fresh page.
    find.goto(find.url)
    assert [loc for _c, loc, _d in results(find)] == ["katy", "texas"]


def test_autocomplete_finds_conditions_by_alias(find: Any) -> None:
    find.goto("/find/")
    box = find.get_by_role("combobox", name="Condition")
    box.fill("RSD")
    listbox = find.get_by_role("listbox", name="Condition suggestions")
    assert box.get_attribute("aria-expanded") == "true"
    options = listbox.get_by_role("option")
    assert options.count() == 1 and options.first.get_attribute("data-value") == "crps"
    box.fill("neuro")
    assert sorted(o.get_attribute("data-value") for o in listbox.get_by_role("option").all()) == \
        ["diabetic-neuropathy", "neuropathic-pain"]
    treatment = find.get_by_role("combobox", name="Treatment")
    treatment.fill("tpi")
    find.get_by_role("listbox", name="Treatment suggestions").get_by_role("option").first.click()
    assert find.input_value("#find-treatment") == "trigger-point-injections"
    assert treatment.input_value() == "Trigger point injections"


def test_typed_alias_is_enough_without_choosing(find: Any) -> None:
    find.goto("/find/")
    find.fill("#find-near", "60201")
    find.get_by_role("combobox", name="Condition").fill("rsd")
    find.get_by_role("button", name="Search").click()
    find.wait_for_url("**condition=crps**")
    assert [loc for _c, loc, _d in results(find)] == ["evanston", "glenview"]


def test_ambiguous_filter_text_asks_to_choose(find: Any) -> None:
    find.goto("/find/")
    find.fill("#find-near", "60201")
    find.get_by_role("combobox", name="Condition").fill("neuro")
    find.get_by_role("button", name="Search").click()
    find.wait_for_function("() => document.getElementById('results-status').textContent.includes('more than one')")
    assert results(find) == []
    assert find.get_by_role("combobox", name="Condition").get_attribute("aria-expanded") == "true"


def test_keyboard_only(find: Any) -> None:
    find.goto("/find/")
    focused = ""
    for _ in range(20):
        find.keyboard.press("Tab")
        focused = find.evaluate("document.activeElement.id")
        if focused == "find-near":
            break
    assert focused == "find-near"
    find.keyboard.type("Evanston, IL")
    find.keyboard.press("Tab")
    assert find.evaluate("document.activeElement.id") == "use-my-location"
    find.keyboard.press("Tab")
    assert find.evaluate("document.activeElement.id") == "find-condition-input"
    find.keyboard.type("RS")
    find.keyboard.press("ArrowDown")
    active = find.get_attribute("#find-condition-input", "aria-activedescendant")
    assert active == "find-condition-option-crps"
    assert find.get_attribute(f"#{active}", "aria-selected") == "true"
    find.keyboard.press("Enter")  # chooses the option, does not submit
    assert find.input_value("#find-condition-input") == "Complex regional pain syndrome"
    assert find.get_attribute("#find-condition-input", "aria-expanded") == "false"
    assert "near" not in query_of(find)
    find.keyboard.press("Tab")
    assert find.evaluate("document.activeElement.id") == "find-treatment-input"
    find.keyboard.type("ket")
    find.keyboard.press("Escape")
    assert find.get_attribute("#find-treatment-input", "aria-expanded") == "false"
    find.keyboard.press("Escape")
    assert find.input_value("#find-treatment-input") == ""
    find.keyboard.press("Tab")
    assert find.evaluate("document.activeElement.id") == "find-radius"
    find.keyboard.press("Tab")
    assert find.evaluate("document.activeElement.textContent.trim()") == "Search"
    find.keyboard.press("Enter")
    find.wait_for_url("**near=Evanston**")
    assert [loc for _c, loc, _d in results(find)] == ["evanston", "glenview"]
    assert query_of(find) == {"near": ["Evanston, IL"], "condition": ["crps"]}
    # The results are reachable by keyboard too.
    for _ in range(10):
        find.keyboard.press("Tab")
        if find.evaluate("document.activeElement.closest('#results') !== null"):
            break
    assert find.evaluate("document.activeElement.textContent") == "Revitalize Medical Center"


def test_page_makes_no_request_outside_its_origin(find: Any) -> None:
    for query in ["", "?near=60201", "?near=Katy%2C+TX&radius=500", "?near=00000", "?near=Evanstn%2C+IL",
                  "?near=98004&treatment=trigger-point-injections"]:
        find.goto(f"/find/{query}")
        results(find)
    assert find.request_log.urls, "the log records requests"
    # The map links are plain links: nothing is fetched from the map site unless the visitor follows one.
    assert find.locator("#results a[href^='https://www.openstreetmap.org/']").count() == 2


def test_search_data_requests_are_few_and_small(find: Any) -> None:
    responses: list[Any] = []
    find.on("response", lambda response: responses.append(response))
    find.goto("/find/?near=60201&condition=crps")
    results(find)
    data = [r for r in responses if "/find/data/" in r.url]
    assert all(r.status == 200 for r in responses), [(r.url, r.status) for r in responses if r.status != 200]
    assert sorted(urlsplit(r.url).path.split("/find/data/")[1] for r in data) == \
        ["cells/0_42_-88.json", "filter/condition/crps.json", "index.json", "zip/602.json"]
    assert int(find.get_attribute("#results", "data-search-bytes")) == sum(len(r.body()) for r in data)
    assert int(find.get_attribute("#results", "data-search-files")) == 4


def test_without_javascript_the_page_links_to_every_list(browser: Any, site_url: str, site: Path) -> None:
    context = browser.new_context(base_url=site_url, java_script_enabled=False)
    page = context.new_page()
    page.goto("/find/")
    links = {a.inner_text().strip(): a.get_attribute("href") for a in page.locator(".browse a").all()}
    assert links["Clinics by state"] == "../clinics/"
    assert links["Treatments"] == "../treatments/"
    assert links["Conditions"] == "../conditions/"
    assert links["Illinois"] == "../clinics/#state-il"
    assert links["Ketamine infusion therapy"] == "../treatments/ketamine-infusion/"
    assert links["Complex regional pain syndrome"] == "../conditions/crps/"
    for href in links.values():
        assert (site / "find" / href.split("#")[0] / "index.html").resolve().is_file(), href
    assert "needs JavaScript" in page.content()
    context.close()


def test_markup_contract(find: Any) -> None:
    find.goto("/find/")
    assert find.get_attribute("#results", "aria-busy") == "false"
    assert find.evaluate("document.getElementById('results').tagName") == "OL"
    assert find.get_attribute("#results-status", "role") == "status"
    assert find.get_attribute("#results-status", "aria-live") == "polite"
    assert find.locator("#use-my-location").is_visible()
    find.goto("/find/?near=60201")
    item = find.locator("#results > li").first
    item.wait_for()
    assert item.get_attribute("data-clinic") == "revitalize-medical-center"
    assert item.get_attribute("data-location") == "evanston"
    assert item.get_attribute("data-distance-mi") == "0.0"
