"""Hostile text in every free-text registry field reaches pages only as text.

Checked in HTML bodies, attributes, JSON-LD and URLs, on every page the build writes.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from clinic_directory.urls import safe_href
from conftest import build

HOSTILE = "</script><script>alert(1)</script>\"><svg onload=alert(2)>{{ 7*7 }}' onmouseover='x' &amp;"
LIST_HOSTILE = "<img src=x onerror=alert(3)>"

REGISTRY = f"""schema: 1
services:
  ketamine-infusion:
    name: {json.dumps("Ketamine " + HOSTILE)}
    also_known_as: [{json.dumps(LIST_HOSTILE)}]
    summary: {json.dumps(HOSTILE)}
conditions:
  crps:
    name: {json.dumps("CRPS " + HOSTILE)}
    also_known_as: [{json.dumps(LIST_HOSTILE)}]
    summary: {json.dumps(HOSTILE)}
clinics:
  evil-clinic:
    name: {json.dumps("Clinic " + HOSTILE)}
    website: "https://example.org/path?a=1&b=2"
    summary: {json.dumps(HOSTILE)}
    accepting_new_patients: true
    languages: [en]
    insurance: [{json.dumps(LIST_HOSTILE)}]
    services: [ketamine-infusion]
    conditions: [crps]
    last_verified: 2026-11-01
    physicians:
      evil-doc:
        name: {json.dumps("Doctor " + HOSTILE)}
        credentials: [{json.dumps("MD<b>")}]
        board_certifications: [{json.dumps(LIST_HOSTILE)}]
        bio: {json.dumps(HOSTILE)}
    locations:
      main:
        name: {json.dumps("Office " + HOSTILE)}
        address: {{street: {json.dumps(HOSTILE)}, street2: {json.dumps(LIST_HOSTILE)},
                   city: {json.dumps("City " + HOSTILE)}, state: TX, postal_code: "77494"}}
        geo: {{lat: 29.79, lon: -95.82}}
        phone: "+1-281-555-0100"
    referral:
      requirements: [{json.dumps(LIST_HOSTILE)}]
      notes: {json.dumps(HOSTILE)}
"""


class Elements(HTMLParser):
    """Collects tags, attributes and script contents as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            attrs, body = self.scripts[-1]
            self.scripts[-1] = (attrs, body + data)
        else:
            self.text.append(data)


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory: pytest.TempPathFactory, empty_content: Path) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    registry = root / "clinics.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    result = build(root / "output", registry=registry, content=empty_content)
    assert result.returncode == 0, result.stderr
    return root / "output"


def pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html"))


def test_no_markup_from_the_registry_in_any_page(hostile_site: Path) -> None:
    for page in pages(hostile_site):
        parser = Elements()
        parser.feed(page.read_text(encoding="utf-8"))
        tags = {tag for tag, _ in parser.tags}
        assert not tags & {"svg", "img", "b"}, page
        for tag, attrs in parser.tags:
            assert not any(name.startswith("on") for name in attrs), (page, tag, attrs)
        for attrs, body in parser.scripts:
            if attrs.get("type") in ("application/ld+json", "application/json"):
                assert "<" not in body, page  # data islands: never executed, and cannot close themselves
                json.loads(body)
            else:
                assert attrs.get("src") and not body.strip(), page  # no inline script (CSP script-src 'self')


def test_hostile_text_is_shown_as_text(hostile_site: Path) -> None:
    parser = Elements()
    parser.feed((hostile_site / "clinics/evil-clinic/index.html").read_text(encoding="utf-8"))
    text = "".join(parser.text)
    assert "Clinic " + HOSTILE in text
    assert HOSTILE in text  # the summary
    assert "{{ 7*7 }}" in text and " 49 " not in text and ">49<" not in text  # data is never evaluated as a template


def test_referral_page_shows_hostile_text_as_text(hostile_site: Path) -> None:
    parser = Elements()
    parser.feed((hostile_site / "clinics/evil-clinic/refer/index.html").read_text(encoding="utf-8"))
    text = "".join(parser.text)
    assert HOSTILE in text  # the referral notes
    assert LIST_HOSTILE in text  # a requirement
    # No referral contact in the entry: the page says so and points to the locations instead.
    assert "has not published referral contacts" in " ".join(text.split())


def test_json_ld_round_trips_hostile_text(hostile_site: Path) -> None:
    for page in ["clinics/evil-clinic/index.html", "physicians/evil-doc/index.html"]:
        raw = (hostile_site / page).read_text(encoding="utf-8")
        parser = Elements()
        parser.feed(raw)
        blocks = [body for attrs, body in parser.scripts if attrs.get("type") == "application/ld+json"]
        assert len(blocks) == 1
        assert "</script" not in blocks[0].lower() and "<" not in blocks[0]
        data = json.loads(blocks[0])
        assert any(HOSTILE in value for value in strings(data)), page


def strings(data: object) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for value in data.values() for s in strings(value)]
    if isinstance(data, list):
        return [s for value in data for s in strings(value)]
    return []


def test_urls_from_data_are_encoded(hostile_site: Path) -> None:
    raw = (hostile_site / "clinics/evil-clinic/index.html").read_text(encoding="utf-8")
    assert 'href="https://example.org/path?a=1&amp;b=2"' in raw
    assert 'href="tel:+12815550100"' in raw


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)",
                                 "java\tscript:alert(1)", "data:text/html,<script>", "vbscript:x",
                                 "\x01javascript:alert(1)", "jav&#x09;ascript:alert(1)"])
def test_safe_href_blocks_script_urls(url: str) -> None:
    assert safe_href(url) == "#" or not re.match(r"\s*(java|vb)script:|data:", safe_href(url), re.I)
    assert "script:" not in safe_href(url).lower() or safe_href(url) == "#"


@pytest.mark.parametrize("url", ["https://example.org/", "mailto:a@example.org", "tel:+12815550100",
                                 "clinics/katy/", "/find/?near=77494"])
def test_safe_href_keeps_ordinary_links(url: str) -> None:
    assert safe_href(url) == url


@pytest.mark.parametrize("text", [HOSTILE, LIST_HOSTILE, "\u2028\u2029 \u202e \x00 ü 中文 \\ \" ' & < >", ""])
def test_json_ld_serialised_in_python_is_byte_for_byte_tojson(text: str) -> None:
    """The clinic pages' JSON-LD is serialised in Python (each node once per clinic); it must be
    exactly what Jinja's ``tojson`` writes, which no registry text can break out of."""
    from jinja2 import Environment

    from clinic_directory import jsonld

    tojson = Environment(autoescape=True).from_string("{{ data|tojson }}").render
    data = {"name": text, "@type": "Physician", "list": [text, 1, 2.5, None, True], "nested": {"z": text, "a": 0}}
    assert str(jsonld.script_json(data)) == tojson(data=data)


def test_json_ld_graphs_equal_tojson_of_their_nodes() -> None:
    from jinja2 import Environment

    from clinic_directory import jsonld
    from clinic_directory.registry import load_registry
    from clinic_directory.settings import DEFAULTS, read_plugin_settings

    registry = load_registry(Path(__file__).resolve().parent.parent / "clinics.yaml",
                             DEFAULTS["MAX_REGISTRY_BYTES"][0], read_plugin_settings({}).urls)
    template = Environment(autoescape=True).from_string("{{ data|tojson }}")
    site = "https://example.org"
    for clinic in registry.clinics.values():
        physicians = [jsonld.physician_node(doc, clinic, site) for doc in clinic.physicians]
        graph = {"@context": "https://schema.org",
                 "@graph": [*(jsonld.location_node(clinic, loc, site) for loc in clinic.locations), *physicians]}
        assert str(jsonld.clinic_graph(clinic, site)) == template.render(data=graph)
        for location in clinic.locations:
            graph = {"@context": "https://schema.org",
                     "@graph": [jsonld.location_node(clinic, location, site), *physicians]}
            assert str(jsonld.location_graph(clinic, location, site)) == template.render(data=graph)
        for doc in clinic.physicians:
            node = {"@context": "https://schema.org", **jsonld.physician_node(doc, clinic, site)}
            assert str(jsonld.physician_graph(doc, registry, site)) == template.render(data=node)
