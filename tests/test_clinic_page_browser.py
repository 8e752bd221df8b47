"""What a patient sees on a clinic page, in headless Chromium over HTTP on loopback."""

from __future__ import annotations

import datetime as dt
import json

import pytest

pytestmark = pytest.mark.browser

CLINIC = "/clinics/revitalize-medical-center/"


def open_at(page, when: dt.datetime, path: str = CLINIC):  # type: ignore[no-untyped-def]
    page.clock.set_fixed_time(when)
    page.goto(path)
    return page


def test_clinic_page_shows_what_a_patient_needs(page) -> None:  # type: ignore[no-untyped-def]
    # Wednesday 25 November 2026, noon in the browser's time zone.
    open_at(page, dt.datetime(2026, 11, 25, 12, 0))
    assert page.locator("h1").inner_text() == "Revitalize Medical Center"
    assert page.get_by_text("Sample data.").is_visible()

    glenview = page.locator("#location-glenview")
    evanston = page.locator("#location-evanston")
    assert glenview.locator("h3").inner_text() == "Glenview office"
    assert "Glenview, IL 60025" in glenview.locator("address").inner_text()
    assert glenview.get_by_role("link", name="+1-847-555-0100").get_attribute("href") == "tel:+18475550100"
    assert evanston.get_by_role("link", name="+1-847-555-0110").get_attribute("href") == "tel:+18475550110"

    # Today's opening is worked out in the browser, from its own clock.
    assert glenview.locator("[data-hours-today]").inner_text() == "Open today: 09:00\u201317:00."
    assert glenview.locator("tr.is-today th").inner_text() == "Wednesday"
    assert evanston.locator("[data-hours-today]").inner_text() == "Open today: 09:00\u201317:00."

    facts = page.locator("dl.facts").inner_text()
    assert "Accepting new patients\nYes" in facts
    assert "Telehealth visits\nNot stated" in facts
    assert page.get_by_role("link", name="Dr. DeCaria").get_attribute("href").endswith("physicians/decaria/")
    assert page.locator(".stale-note").is_hidden()
    assert page.request_log.foreign == []
    assert page.js_errors == []


def test_closed_day_says_closed(page) -> None:  # type: ignore[no-untyped-def]
    open_at(page, dt.datetime(2026, 11, 24, 12, 0))  # a Tuesday: Evanston is closed
    assert page.locator("#location-evanston [data-hours-today]").inner_text() == "Closed today."


def test_old_profile_is_flagged_as_possibly_out_of_date(page) -> None:  # type: ignore[no-untyped-def]
    open_at(page, dt.datetime(2028, 1, 15, 12, 0))  # more than 365 days after last_verified
    note = page.locator(".stale-note")
    assert note.is_visible()
    assert "may be out of date" in note.inner_text()


def test_json_ld_describes_every_location(page) -> None:  # type: ignore[no-untyped-def]
    page.goto(CLINIC)
    data = json.loads(page.locator('script[type="application/ld+json"]').text_content())
    clinics = [node for node in data["@graph"] if node["@type"] == "MedicalClinic"]
    assert sorted(node["address"]["addressLocality"] for node in clinics) == ["Evanston", "Glenview"]
    assert all(node["isAcceptingNewPatients"] is True for node in clinics)
    assert [node["name"] for node in data["@graph"] if node["@type"] == "Physician"] == ["Dr. DeCaria"]


def test_keyboard_user_can_skip_to_content(page) -> None:  # type: ignore[no-untyped-def]
    page.goto(CLINIC)
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    # The next stop is inside the main content, not back in the header.
    assert page.evaluate("document.getElementById('main').contains(document.activeElement)")


def test_phone_layout_has_no_horizontal_scroll(browser, site_url) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 320, "height": 640}, base_url=site_url)
    try:
        phone = context.new_page()
        phone.goto(CLINIC)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 320
    finally:
        context.close()


def test_clinician_finds_the_referral_page_and_prints_it(page) -> None:  # type: ignore[no-untyped-def]
    # Record window.print() calls: a headless browser has no print dialog to look at.
    page.add_init_script("window.printed = 0; window.print = function () { window.printed += 1; };")
    page.goto("/clinics/bellevue-pain-and-wellness/")
    page.get_by_role("link", name="Refer a patient to Bellevue Pain and Wellness").click()
    page.wait_for_url("**/clinics/bellevue-pain-and-wellness/refer/")
    assert page.locator("h1").inner_text() == "Refer a patient to Bellevue Pain and Wellness"
    assert page.get_by_text("Sample data.").is_visible()  # the referral contacts are placeholders
    contacts = page.locator("dl.referral-contacts").inner_text()
    assert "Fax\n+1-425-555-0101" in contacts
    email = page.get_by_role("link", name="referrals@bellevue.example.org")
    assert email.get_attribute("href") == "mailto:referrals@bellevue.example.org"
    include = page.locator("section", has=page.get_by_role("heading", name="What to include"))
    assert include.locator("li").all_inner_texts() == [
        "Reason for referral", "Current medication list", "Recent imaging reports"]
    assert "Bellevue, WA" in page.locator("section.card address").first.inner_text()

    # The print button is there only with script; it prints, and the printout leaves out the site's
    # navigation, the footer and the button itself.
    button = page.get_by_role("button", name="Print this page")
    button.focus()
    page.keyboard.press("Enter")
    assert page.evaluate("window.printed") == 1
    page.emulate_media(media="print")
    assert button.is_hidden()
    assert page.locator("header nav").is_hidden() and page.locator("footer").is_hidden()
    assert page.locator("h1").is_visible() and page.locator("dl.referral-contacts").is_visible()
    assert page.request_log.foreign == []
    assert page.js_errors == []


def test_referral_page_without_script_has_no_dead_button(browser, site_url) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=site_url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/clinics/texas-pain-intervention-clinic/refer/")
        assert page.get_by_role("button").count() == 0
        # This clinic takes referrals by phone: a tel: link, not a fax line.
        assert page.get_by_role("link", name="+1-512-555-0100").first.get_attribute("href") == "tel:+15125550100"
    finally:
        context.close()
