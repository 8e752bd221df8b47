"""Valid HTML, CSS and SVG: the Nu HTML Checker (vnu.jar, from the npm package vnu-jar) over every page.

One JVM call checks every HTML file the build wrote, the theme's CSS and SVG, the DOM of one page per
type as it stands after its scripts ran (find and site search showing results), and one file that is
invalid on purpose, so a checker that silently checked nothing would fail the suite.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, html_pages, page_states

VNU_JAR = ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
CANARY = "<!doctype html>\n<html lang=en><title>canary</title><p><span>never closed</p></div>\n"
# Over file: URLs the checker cannot know the site's origin, so it reports every same-origin
# resource as blocked by `default-src 'self'`. Chromium enforces the real policy (test_privacy.py).
FILE_ORIGIN_ARTEFACT = "violates Content Security Policy"


def java() -> str:
    found = shutil.which("java")
    assert found, "Java is needed for the Nu HTML Checker: `make test` installs Debian's default-jre-headless"
    return found


@pytest.fixture(scope="module")
def rendered(browser, site: Path, site_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """One page per type, serialised from the browser after its scripts ran."""
    folder = tmp_path_factory.mktemp("rendered")
    context = browser.new_context(base_url=site_url)
    page = context.new_page()
    files: dict[str, Path] = {}
    for kind, url, wait in page_states(site):
        page.goto(url)
        if wait:
            page.wait_for_selector(wait)
        files[kind] = folder / (kind.replace(" ", "-").replace(":", "").replace("/", "-") + ".html")
        files[kind].write_text(page.content(), encoding="utf-8")
    context.close()
    return files


@pytest.fixture(scope="module")
def report(site: Path, rendered: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Everything the checker said, per file (paths relative to the site, or 'rendered/<type>')."""
    assert VNU_JAR.is_file(), f"{VNU_JAR.relative_to(ROOT)} is missing: run `make test` (it runs `npm ci`)"
    canary = tmp_path_factory.mktemp("canary") / "canary.html"
    canary.write_text(CANARY, encoding="utf-8")
    theme = sorted(site.glob("theme/**/*.css")) + sorted(site.glob("theme/**/*.svg"))
    files = [site / p for p in html_pages(site)] + theme + list(rendered.values()) + [canary]
    result = subprocess.run([java(), "-Xss8m", "-jar", str(VNU_JAR), "--format", "json", "--stdout",
                             "--also-check-css", "--also-check-svg", *map(str, files)],
                            capture_output=True, text=True, timeout=600)
    messages = json.loads(result.stdout)["messages"]
    names = {f.resolve().as_uri(): str(f.relative_to(site)) for f in files if f.is_relative_to(site)}
    names |= {f.resolve().as_uri(): f"rendered/{kind}" for kind, f in rendered.items()}
    names[canary.resolve().as_uri()] = "canary"
    found: dict[str, list[str]] = {}
    for message in messages:
        failing = message["type"] in ("error", "non-document-error") or message.get("subType") == "warning"
        if failing and FILE_ORIGIN_ARTEFACT not in message["message"]:
            url = message.get("url", "")
            name = names.get(url, names.get(url.replace("file:/", "file:///", 1), url))
            found.setdefault(name, []).append(
                f"{name}:{message.get('lastLine', '?')}: {message['type']}: {message['message']}")
    return found


def test_the_checker_reports_invalid_markup(report: dict[str, list[str]]) -> None:
    assert any("Stray end tag" in line or "Unclosed element" in line for line in report.get("canary", [])), report


def test_every_generated_page_is_valid_html(site: Path, report: dict[str, list[str]]) -> None:
    pages = set(html_pages(site))
    assert len(pages) > 20
    assert {name: lines for name, lines in report.items() if name in pages} == {}


def test_pages_stay_valid_after_their_scripts_ran(report: dict[str, list[str]], rendered: dict[str, Path]) -> None:
    assert {"find with results", "home", "clinic"} <= set(rendered)
    assert {name: lines for name, lines in report.items() if name.startswith("rendered/")} == {}


def test_theme_css_and_svg_are_valid(report: dict[str, list[str]]) -> None:
    assert {name: lines for name, lines in report.items() if name.startswith("theme/")} == {}


def test_nothing_else_was_reported(report: dict[str, list[str]]) -> None:
    """A message for a file none of the tests above looks at (a path the checker named differently)."""
    assert {name: lines for name, lines in report.items()
            if name != "canary" and not name.startswith(("rendered/", "theme/")) and not name.endswith(".html")} == {}
