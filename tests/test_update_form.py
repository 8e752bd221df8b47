"""The clinic profile-update form (``/clinics/<clinic>/update/``) in headless Chromium.

A clinic changes what is out of date, makes the update file in the browser and sends it to the
maintainers, who apply it with ``make apply-update``. These tests fill the form as a clinic would
(with the keyboard alone, where it matters), read the update file it makes, and apply it to a copy
of the sample registry with the real command.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from clinic_directory.model import entry_hash
from clinic_directory.registry import check_registry
from conftest import ROOT, build, serve

pytestmark = pytest.mark.browser

KATY = "/clinics/katy-pain-and-spine/update/"
REVITALIZE = "/clinics/revitalize-medical-center/update/"


def sample_entry(clinic: str) -> dict:
    data, problems = check_registry(ROOT / "clinics.yaml", 64 * 1024 * 1024)
    assert data is not None and not problems
    return data["clinics"][clinic]


def make_file(page) -> dict:  # type: ignore[no-untyped-def]
    page.get_by_role("button", name="Make the update file").click()
    page.wait_for_selector("#update-result:not([hidden])")
    return yaml.safe_load(page.input_value("#update-text"))


def tab_to(page, selector: str, limit: int = 200) -> None:  # type: ignore[no-untyped-def]
    """Press Tab until the element ``selector`` has the focus (keyboard only: no clicks)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement === document.querySelector(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_form_carries_the_clinic_and_the_hash_of_its_entry(page) -> None:  # type: ignore[no-untyped-def]
    page.goto(KATY)
    form = page.locator("form#update-form")
    assert form.get_attribute("data-clinic") == "katy-pain-and-spine"
    assert form.get_attribute("data-base") == entry_hash(sample_entry("katy-pain-and-spine"))
    # The form starts from the profile as published.
    assert page.get_by_label("Clinic name").input_value() == "Katy Pain and Spine"
    assert page.locator("#u-locations--katy--phone").input_value() == "+1-281-555-0100"
    assert page.locator("#u-locations--katy--hours--sat").input_value() == "closed"
    assert page.get_by_role("button", name="Make the update file").is_enabled()
    assert page.locator(".no-script-note").is_hidden()
    assert page.request_log.foreign == [] and page.js_errors == []


def test_keyboard_only_clinic_changes_a_phone_and_gets_an_update_file(page) -> None:  # type: ignore[no-untyped-def]
    page.clock.set_fixed_time(dt.datetime(2026, 12, 1, 10, 30, tzinfo=dt.UTC))
    page.goto(KATY)
    tab_to(page, "#u-submitted_by")
    page.keyboard.type("office@example.org")
    tab_to(page, "#u-locations--katy--phone")
    page.keyboard.press("Control+A")
    page.keyboard.type("+1-281-555-0199")
    tab_to(page, "input[name='last_verified']")
    page.keyboard.press("Space")
    tab_to(page, "#update-form button[type='submit']")
    page.keyboard.press("Enter")
    page.wait_for_selector("#update-result:not([hidden])")
    # The focus moves to the result, which says what is in the file.
    assert page.evaluate("document.activeElement.id") == "update-result-heading"
    assert page.locator("#update-summary").inner_text() == "2 changes are in the file."
    update = yaml.safe_load(page.input_value("#update-text"))
    assert update == {
        "clinic": "katy-pain-and-spine",
        "submitted_by": "office@example.org",
        "submitted_at": "2026-12-01T10:30:00Z",
        "base": entry_hash(sample_entry("katy-pain-and-spine")),
        "changes": {"locations": {"katy": {"phone": "+1-281-555-0199"}}, "last_verified": "2026-12-01"},
    }
    # Downloading gives the same text.
    tab_to(page, "#update-download")
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    assert download.value.suggested_filename == "update-katy-pain-and-spine.yaml"
    assert Path(download.value.path()).read_text(encoding="utf-8") == page.input_value("#update-text")
    assert page.request_log.foreign == [] and page.js_errors == []


def test_mistakes_are_listed_and_each_leads_to_its_field(page) -> None:  # type: ignore[no-untyped-def]
    page.goto(KATY)
    page.locator("#u-locations--katy--phone").fill("555")
    page.locator("#u-locations--katy--hours--mon").fill("9 to 5")
    page.get_by_role("button", name="Make the update file").click()
    summary = page.locator("#update-errors")
    assert summary.is_visible() and page.evaluate("document.activeElement.id") == "update-errors"
    problems = summary.locator("li").all_inner_texts()
    assert problems[0] == "About you: Your email address: this is required"
    assert "Location: Katy office: Phone: this is not in the expected form. In international form, " \
        "e.g. +1-281-555-0100." in problems
    assert any(p.startswith("Location: Katy office: Opening hours: Monday: this is not in the expected form")
               for p in problems)
    phone = page.locator("#u-locations--katy--phone")
    assert phone.get_attribute("aria-invalid") == "true"
    assert "u-locations--katy--phone-error" in phone.get_attribute("aria-describedby")
    summary.get_by_role("link", name=re.compile("Phone")).click()
    assert page.evaluate("document.activeElement.id") == "u-locations--katy--phone"
    assert page.locator("#update-result").is_hidden()


def test_nothing_changed_says_so(page) -> None:  # type: ignore[no-untyped-def]
    page.goto(KATY)
    page.get_by_label("Your email address").fill("office@example.org")
    page.get_by_role("button", name="Make the update file").click()
    assert "Nothing has changed yet" in page.locator("#update-errors").inner_text()
    assert page.locator("#update-result").is_hidden()


def test_lists_choices_deletions_and_a_moved_office(page) -> None:  # type: ignore[no-untyped-def]
    page.goto(REVITALIZE)
    page.get_by_label("Your email address").fill("office@example.org")
    # Lists replace the whole list; emptying an optional field deletes it.
    page.get_by_label("What a referral should include").fill("Reason for referral\n\nRecent imaging\n")
    page.locator("#u-locations--glenview--fax").fill("")
    page.get_by_role("group", name="Conditions treated").get_by_label("Complex regional pain syndrome").uncheck()
    page.get_by_role("group", name="Treatments offered").get_by_label("Interventional pain management").check()
    page.get_by_role("group", name="Offers telehealth visits?").get_by_label("Yes").check()
    # A new ZIP code: the office's stored coordinates no longer hold, so they are dropped.
    page.locator("#u-locations--evanston--address--postal_code").fill("60202")
    changes = make_file(page)["changes"]
    entry = sample_entry("revitalize-medical-center")
    assert changes["referral"] == {"requirements": ["Reason for referral", "Recent imaging"]}
    assert changes["locations"]["glenview"] == {"fax": None}
    # A list of choices keeps the clinic's order; a new choice comes last.
    assert changes["conditions"] == [c for c in entry["conditions"] if c != "crps"]
    assert changes["services"] == [*entry["services"], "interventional-pain-management"]
    assert changes["telehealth"] is True
    assert changes["locations"]["evanston"] == {"address": {"postal_code": "60202"}, "geo": None}


def test_hostile_text_reaches_the_file_exactly(page) -> None:  # type: ignore[no-untyped-def]
    text = "Dr. \"Quote\" & <b>bold</b>: #1 {{ 7*7 }} \u202eevil\u202c caf\u00e9 \U0001f600 it's"
    page.goto(KATY)
    page.get_by_label("Your email address").fill("office@example.org")
    page.get_by_label("Short description").fill(text + "\nsecond line")
    update = make_file(page)
    assert update["changes"] == {"summary": text + "\nsecond line"}


def test_a_signed_update_carries_the_hmac_of_its_canonical_form(page) -> None:  # type: ignore[no-untyped-def]
    key = "test-key-0123456789abcdef0123456789"
    page.goto(KATY)
    page.get_by_label("Your email address").fill("office@example.org")
    page.get_by_label("Clinic name").fill("Katy Pain & Spine \u00e9")
    page.get_by_label("Signing key").fill(key)
    update = make_file(page)
    signature = update.pop("signature")
    canonical = json.dumps(update, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert signature == hmac.new(key.encode("utf-8"), canonical, hashlib.sha256).hexdigest()
    assert key not in page.input_value("#update-text")


def test_without_script_the_page_explains_itself_and_offers_no_form(browser, site_url) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=site_url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(KATY)
        assert page.locator(".no-script-note").is_visible()
        assert page.locator("#update-form").is_hidden()
        assert page.locator("#update-form input, #update-form button").count() == 0
    finally:
        context.close()


def test_registry_text_becomes_field_values_not_markup(tmp_path, browser, empty_content) -> None:  # type: ignore[no-untyped-def]
    """The form is made in the browser from the entry: hostile registry text must stay text there too."""
    hostile = "</script><img src=x onerror=alert(1)>\"' & {{ 7*7 }}"
    registry = tmp_path / "clinics.yaml"
    text = (ROOT / "clinics.yaml").read_text(encoding="utf-8")
    text = text.replace("name: Katy office", f"name: {json.dumps('Katy ' + hostile)}", 1)
    registry.write_text(text, encoding="utf-8")
    result = build(tmp_path / "output", registry=registry, content=empty_content)
    assert result.returncode == 0, result.stderr
    server, url = serve(tmp_path / "output")
    context = browser.new_context(base_url=url)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(KATY)
        assert page.locator("#u-locations--katy--name").input_value() == "Katy " + hostile
        assert page.get_by_role("group", name="Location: Katy " + hostile).count() == 1
        assert page.locator("img").count() == 0 and errors == []
    finally:
        context.close()
        server.shutdown()


def test_the_forms_file_applies_to_the_registry_and_the_site_shows_it(page, tmp_path, empty_content) -> None:  # type: ignore[no-untyped-def]
    """End to end: the clinic's update file, applied with `make apply-update`, changes the built pages."""
    registry = tmp_path / "clinics.yaml"
    shutil.copyfile(ROOT / "clinics.yaml", registry)
    page.goto(KATY)
    page.get_by_label("Your email address").fill("office@example.org")
    page.locator("#u-locations--katy--phone").fill("+1-281-555-0199")
    page.get_by_role("group", name="Offers telehealth visits?").get_by_label("Yes").check()
    page.get_by_label("What a referral should include").fill("Reason for referral\nRecent imaging reports")
    make_file(page)
    update = tmp_path / "update.yaml"
    update.write_text(page.input_value("#update-text"), encoding="utf-8")
    before = registry.read_text(encoding="utf-8")

    applied = subprocess.run(["make", "--no-print-directory", "apply-update", f"FILE={update}", f"CLINICS={registry}"],
                             cwd=ROOT, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    assert '+        phone: "+1-281-555-0199"' in applied.stdout  # the diff
    after = registry.read_text(encoding="utf-8")
    changed = [line for line in after.splitlines() if line not in before.splitlines()]
    assert len(changed) <= 4, changed  # the phone, telehealth and the requirements; nothing else rewritten

    result = build(tmp_path / "output", registry=registry, content=empty_content)
    assert result.returncode == 0, result.stderr
    clinic = (tmp_path / "output/clinics/katy-pain-and-spine/index.html").read_text(encoding="utf-8")
    assert 'href="tel:+12815550199"' in clinic and "+1-281-555-0100" not in clinic
    refer = (tmp_path / "output/clinics/katy-pain-and-spine/refer/index.html").read_text(encoding="utf-8")
    assert "<li>Recent imaging reports</li>" in refer

    # The same file again is stale: the entry it was made from has changed.
    again = subprocess.run([sys.executable, "-m", "clinic_directory", "apply-update", str(update),
                            "--registry", str(registry)], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT / "plugins")})
    assert again.returncode == 1 and re.search(r"update\.yaml:\d+:\d+: base: ", again.stderr), again.stderr
    assert registry.read_text(encoding="utf-8") == after


def test_a_clinic_adds_an_office_and_a_physician(page, tmp_path) -> None:  # type: ignore[no-untyped-def]
    page.goto(KATY)
    page.get_by_label("Your email address").fill("office@example.org")
    page.get_by_role("button", name="Add a location").click()
    new = page.get_by_role("group", name="New location")
    assert page.evaluate("document.activeElement.name") == "locations.new-1.name"  # focus is in the new group
    new.get_by_label("Name of the office").fill("Sugar Land office")
    new.get_by_label("Street address").fill("1 Placeholder Plaza")
    new.get_by_label("City").fill("Sugar Land")
    new.get_by_label("State").fill("TX")
    new.get_by_label("ZIP code").fill("77478")
    new.get_by_label("Phone", exact=True).fill("+1-281-555-0120")
    new.get_by_label("Monday").fill("08:00-17:00")
    page.get_by_role("button", name="Add a physician").click()
    doctor = page.get_by_role("group", name="New physician")
    doctor.get_by_label("Full name, without title").fill("Jane Q. Example")
    doctor.get_by_label("Degrees").fill("MD")
    # A second new location, taken out again: nothing of it reaches the file.
    page.get_by_role("button", name="Add a location").click()
    page.get_by_role("button", name="Do not add this location").last.click()
    assert page.evaluate("document.activeElement.getAttribute('data-add')") == "location"
    update = make_file(page)
    assert update["changes"] == {
        "locations": {"sugar-land": {"name": "Sugar Land office", "address": {
            "street": "1 Placeholder Plaza", "city": "Sugar Land", "state": "TX", "postal_code": "77478"},
            "phone": "+1-281-555-0120", "hours": {"mon": "08:00-17:00"}}},
        "physicians": {"jane-q-example": {"name": "Jane Q. Example", "credentials": ["MD"]}},
    }
    # The maintainers apply it; the new office has no coordinates yet, which the command says.
    registry = tmp_path / "clinics.yaml"
    shutil.copyfile(ROOT / "clinics.yaml", registry)
    (tmp_path / "update.yaml").write_text(page.input_value("#update-text"), encoding="utf-8")
    applied = subprocess.run([sys.executable, "-m", "clinic_directory", "apply-update", str(tmp_path / "update.yaml"),
                              "--registry", str(registry)], cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT / "plugins")})
    assert applied.returncode == 0, applied.stderr
    assert "make geocode" in applied.stderr
    data, problems = check_registry(registry, 64 * 1024 * 1024)
    assert problems == [] and data is not None
    entry = data["clinics"]["katy-pain-and-spine"]
    assert entry["locations"]["sugar-land"]["address"]["postal_code"] == "77478"
    assert entry["physicians"]["jane-q-example"] == {"name": "Jane Q. Example", "credentials": ["MD"]}


def test_a_clinic_removes_a_physician_and_the_site_drops_the_page(page, tmp_path, empty_content) -> None:  # type: ignore[no-untyped-def]
    page.goto(REVITALIZE)
    page.get_by_label("Your email address").fill("office@example.org")
    doctor = page.get_by_role("group", name=re.compile("^Physician: "))
    doctor.get_by_label("No longer practises at this clinic").check()
    assert doctor.get_by_label("Full name, without title").is_disabled()
    slug = doctor.get_attribute("data-path").split(".")[1]
    update = make_file(page)
    assert update["changes"] == {"physicians": {slug: None}}
    registry = tmp_path / "clinics.yaml"
    shutil.copyfile(ROOT / "clinics.yaml", registry)
    (tmp_path / "update.yaml").write_text(page.input_value("#update-text"), encoding="utf-8")
    applied = subprocess.run(["make", "--no-print-directory", "apply-update", f"FILE={tmp_path / 'update.yaml'}",
                              f"CLINICS={registry}"], cwd=ROOT, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    result = build(tmp_path / "output", registry=registry, content=empty_content)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / f"output/physicians/{slug}/index.html").exists()
    clinic = (tmp_path / "output/clinics/revitalize-medical-center/index.html").read_text(encoding="utf-8")
    assert f"physicians/{slug}/" not in clinic


def test_closing_every_location_is_stopped_in_the_form(page) -> None:  # type: ignore[no-untyped-def]
    page.goto(KATY)
    page.get_by_label("Your email address").fill("office@example.org")
    page.get_by_label("This office has closed").check()
    page.get_by_role("button", name="Make the update file").click()
    assert "needs at least one open location" in page.locator("#update-errors").inner_text()
    assert page.locator("#update-result").is_hidden()
