"""Accessibility (WCAG 2.2 AA) of every page type the site generates, in headless Chromium.

- axe-core checks one page per page type (``conftest.page_states``: the largest page of each type,
  plus find and site search showing results) at desktop width and at 320 CSS px.
- Keyboard: on every one of those pages, Tab reaches every control in document order, the focus is
  always visible and never hidden behind something; searching works from the keyboard alone.
- Reflow: at 320 CSS px wide and at 200 % zoom nothing scrolls sideways or is cut off.
"""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe

from conftest import page_states

pytestmark = pytest.mark.browser

# WCAG 2.0, 2.1 and 2.2 at levels A and AA, plus axe's best practices (landmarks, heading order, ...).
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]},
    "resultTypes": ["violations"],
}
# Page types every build of the sample site has; any other type is checked too, when the build writes one.
REQUIRED_TYPES = {"home", "404", "find", "clinic", "location", "refer", "update form", "physician", "treatment",
                  "condition", "article"}
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 320, "height": 640}  # WCAG 1.4.10: 320 CSS px, as at 400 % zoom of a 1280 px window
ZOOM_200 = {"width": 640, "height": 400}  # a 1280 x 800 window at 200 % zoom

axe = Axe()


def open_state(page, url: str, wait: str | None) -> None:  # type: ignore[no-untyped-def]
    page.goto(url)
    if wait:
        page.wait_for_selector(wait)


def violations(page) -> list[str]:  # type: ignore[no-untyped-def]
    result = axe.run(page, options=AXE_OPTIONS)
    return [f"{v['id']} ({v['impact']}): {v['help']}: " + "; ".join(" ".join(n["target"]) for n in v["nodes"][:5])
            for v in result.response["violations"]]


def test_sample_site_has_every_page_type(site) -> None:  # type: ignore[no-untyped-def]
    """The gates below check what the build wrote; this makes sure it wrote what they must cover."""
    kinds = {kind for kind, _url, _wait in page_states(site)}
    assert REQUIRED_TYPES <= kinds, sorted(REQUIRED_TYPES - kinds)
    assert {"find with results"} <= kinds


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "320px"])
def test_axe_finds_no_violations_on_any_page_type(browser, site, site_url, viewport) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=site_url, viewport=viewport)
    page = context.new_page()
    found: dict[str, list[str]] = {}
    for kind, url, wait in page_states(site):
        open_state(page, url, wait)
        if problems := violations(page):
            found[f"{kind} {url}"] = problems
    context.close()
    assert found == {}


def test_axe_is_live_under_the_sites_csp(page) -> None:  # type: ignore[no-untyped-def]
    """The gate above would pass vacuously if axe could not run on our pages: break one, and it must say so."""
    page.goto("/find/")
    page.evaluate("""() => {
        const image = document.createElement('img');
        image.src = 'data:image/gif;base64,R0lGODlhAQABAAAAACw=';
        document.querySelector('h1').append(image);
        document.querySelector('h1').style.color = '#eee';
    }""")
    ids = {line.split(" ")[0] for line in violations(page)}
    assert {"image-alt", "color-contrast"} <= ids


# -- Keyboard -------------------------------------------------------------------------------------------

# Everything a keyboard user can reach with Tab, in document order, as the page lays it out now.
# A group of radio buttons is one stop (its checked button, else its first): arrows move within it.
FOCUSABLES_JS = """() => {
    const selector = 'a[href], area[href], button, input:not([type=hidden]), select, textarea, summary, ' +
                     'iframe, [tabindex], [contenteditable=""], [contenteditable=true]';
    const radioStop = el => {
        if (el.type !== 'radio' || !el.name) return true;
        const group = Array.from(document.getElementsByName(el.name))
            .filter(r => r.type === 'radio' && r.form === el.form);
        return el.checked || (!group.some(r => r.checked) && group[0] === el);
    };
    window.__tabStops = Array.from(document.querySelectorAll(selector)).filter(el =>
        !el.disabled && el.tabIndex >= 0 && el.getClientRects().length > 0 &&
        getComputedStyle(el).visibility !== 'hidden' && !el.closest('[inert]') && radioStop(el));
    return window.__tabStops.map(el => el.outerHTML.slice(0, 120));
}"""

# Where the focus is, and whether a sighted keyboard user can see it (WCAG 2.4.7, 2.4.11).
FOCUS_JS = """() => {
    const el = document.activeElement;
    const index = window.__tabStops.indexOf(el);
    if (!el || el === document.body) return {index: -1};
    const style = getComputedStyle(el);
    const indicated = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2) ||
                      style.boxShadow !== 'none';
    const box = el.getClientRects()[0] || el.getBoundingClientRect();  // a link's first line when it wraps
    const x = Math.min(Math.max(box.left + box.width / 2, 0), innerWidth - 1);
    const y = Math.min(Math.max(box.top + Math.min(box.height, 20) / 2, 0), innerHeight - 1);
    const hit = document.elementFromPoint(x, y);
    const onScreen = box.bottom > 0 && box.top < innerHeight && box.right > 0 && box.left < innerWidth;
    return {index, html: el.outerHTML.slice(0, 120), indicated,
            unobscured: onScreen && !!hit && (hit === el || el.contains(hit) || hit.contains(el))};
}"""


def tab_through(page) -> tuple[list[str], list[dict]]:  # type: ignore[no-untyped-def]
    """Press Tab from the top of the page until the focus leaves the page; every stop on the way."""
    stops = page.evaluate(FOCUSABLES_JS)
    visited: list[dict] = []
    for _ in range(len(stops) + 2):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_JS)
        if focus["index"] == -1 or (visited and focus["index"] <= visited[-1]["index"]):
            break
        visited.append(focus)
    return stops, visited


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "320px"])
def test_tab_reaches_every_control_in_order_with_visible_focus(browser, site, site_url, viewport) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=site_url, viewport=viewport)
    page = context.new_page()
    problems: list[str] = []
    for kind, url, wait in page_states(site):
        open_state(page, url, wait)
        stops, visited = tab_through(page)
        order = [stop["index"] for stop in visited]
        if order != list(range(len(stops))):
            missed = [stops[i] for i in range(len(stops)) if i not in order]
            problems.append(f"{kind} {url}: Tab visits {order} of {len(stops)} stops; not reached: {missed[:3]}")
        problems += [f"{kind} {url}: no visible focus indicator on {stop['html']}"
                     for stop in visited if not stop["indicated"]]
        problems += [f"{kind} {url}: focused element hidden or covered: {stop['html']}"
                     for stop in visited if not stop["unobscured"]]
    context.close()
    assert problems == []


def test_search_from_home_page_by_keyboard_alone(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/")
    focus_by_tab(page, "#home-near")
    page.keyboard.type("77494")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/find/\?near=77494"))
    page.wait_for_selector('#results[aria-busy="false"] > li')
    assert "Found" in page.locator("#results-status").inner_text()
    # On to the first result, and into it, still by keyboard.
    focus_by_tab(page, "#results a")
    target = page.evaluate("document.activeElement.href")
    page.keyboard.press("Enter")
    page.wait_for_url(target)
    assert re.search(r"/clinics/[^/]+/", page.url)
    assert page.request_log.foreign == [] and page.js_errors == []


def test_find_filters_by_keyboard_alone(page) -> None:  # type: ignore[no-untyped-def]
    """The condition combobox, the distance and the search button, all without a mouse."""
    page.goto("/find/")
    focus_by_tab(page, "#find-near")
    page.keyboard.type("Evanston, IL")
    focus_by_tab(page, "#find-condition-input")
    page.keyboard.type("CRPS")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.input_value("#find-condition") == "crps"
    focus_by_tab(page, "#find-radius")
    page.keyboard.press("ArrowDown")  # the next distance up
    focus_by_tab(page, "#find-form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"condition=crps"))
    page.wait_for_selector('#results[aria-busy="false"] > li')
    assert "near=Evanston" in page.url
    assert all(item.get_attribute("data-clinic") for item in page.locator("#results > li").all())
    assert page.js_errors == []


def focus_by_tab(page, selector: str, limit: int = 80) -> None:  # type: ignore[no-untyped-def]
    """Press Tab until ``selector`` has the focus (as a keyboard user would), or fail."""
    for _ in range(limit):
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


# -- Reflow and zoom --------------------------------------------------------------------------------------

# Anything wider than the viewport, outside a container that scrolls on purpose (a wide table may).
OVERFLOW_JS = """() => {
    const width = document.documentElement.clientWidth;
    const scrolls = el => { for (let p = el.parentElement; p; p = p.parentElement) {
        const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll') return true; } return false; };
    const wide = Array.from(document.body.querySelectorAll('*')).filter(el => {
        if (!el.getClientRects().length || el.closest('.visually-hidden, .skip-link')) return false;
        const box = el.getBoundingClientRect();
        return (box.right > width + 1 || box.left < -1) && !scrolls(el);
    }).map(el => el.outerHTML.slice(0, 100));
    return {pageScrolls: document.documentElement.scrollWidth > width, wide: wide.slice(0, 5)};
}"""


@pytest.mark.parametrize(("viewport", "scale"), [(PHONE, 1), (ZOOM_200, 2)], ids=["320px", "zoom-200"])
def test_pages_reflow_without_sideways_scrolling(browser, site, site_url, viewport, scale) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=site_url, viewport=viewport, device_scale_factor=scale)
    page = context.new_page()
    problems: dict[str, dict] = {}
    for kind, url, wait in page_states(site):
        open_state(page, url, wait)
        found = page.evaluate(OVERFLOW_JS)
        if found["pageScrolls"] or found["wide"]:
            problems[f"{kind} {url}"] = found
    context.close()
    assert problems == {}


def test_find_works_at_320px(browser, site_url) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=site_url, viewport=PHONE)
    page = context.new_page()
    page.goto("/find/")
    page.get_by_label("ZIP code or city").fill("60201")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_selector('#results[aria-busy="false"] > li')
    first = page.locator("#results > li").first
    assert first.is_visible() and first.bounding_box()["width"] <= PHONE["width"]
    assert page.locator("#results-status").is_visible()
    context.close()
