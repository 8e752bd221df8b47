"""schema.org descriptions of clinics and physicians.

Nodes are built as plain dicts. Articles are given theirs as dicts, which their
template serialises with Jinja's ``tojson``; the clinic, location and physician
pages are given their graph already serialised (``script_json``: the same bytes).
Either way ``<``, ``>``, ``&`` and ``'`` are escaped, so no registry text can close
the ``<script>`` element.
"""

from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup

from .model import Clinic, Location, Physician, Registry

DAY_URIS = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday",
            "fri": "Friday", "sat": "Saturday", "sun": "Sunday"}


def absolute(site_url: str, url: str) -> str:
    return f"{site_url.rstrip('/')}/{url}" if site_url else f"/{url}"


def location_node(clinic: Clinic, location: Location, site_url: str) -> dict[str, Any]:
    node: dict[str, Any] = {
        "@type": "MedicalClinic",
        "@id": absolute(site_url, location.url),
        "name": f"{clinic.name} \u2013 {location.name}",
        "url": absolute(site_url, clinic.url),
        "description": clinic.summary,
        "telephone": location.phone,
        "isAcceptingNewPatients": clinic.accepting_new_patients,
        "address": {
            "@type": "PostalAddress",
            "streetAddress": ", ".join(p for p in (location.address.street, location.address.street2) if p),
            "addressLocality": location.address.city,
            "addressRegion": location.address.state,
            "postalCode": location.address.postal_code,
            "addressCountry": "US",
        },
        "availableService": [{"@type": "MedicalTherapy", "name": s.name} for s in clinic.services],
        "knowsLanguage": list(clinic.languages),
    }
    if location.fax:
        node["faxNumber"] = location.fax
    if location.geo:
        node["geo"] = {"@type": "GeoCoordinates", "latitude": location.geo.lat, "longitude": location.geo.lon}
    if location.hours:
        node["openingHoursSpecification"] = [
            {"@type": "OpeningHoursSpecification", "dayOfWeek": f"https://schema.org/{DAY_URIS[h.day]}",
             "opens": start, "closes": end}
            for h in location.hours for start, end in h.ranges
        ]
    if clinic.website:
        node["sameAs"] = clinic.website
    return node


def physician_node(physician: Physician, clinic: Clinic, site_url: str) -> dict[str, Any]:
    node: dict[str, Any] = {
        "@type": "Physician",
        "@id": absolute(site_url, physician.url),
        "name": physician.name,
        "url": absolute(site_url, physician.url),
        "worksFor": {"@type": "MedicalClinic", "name": clinic.name, "url": absolute(site_url, clinic.url)},
    }
    if physician.credentials:
        node["honorificSuffix"] = ", ".join(physician.credentials)
    if physician.bio:
        node["description"] = physician.bio
    if physician.board_certifications:
        node["hasCredential"] = [{"@type": "EducationalOccupationalCredential", "credentialCategory":
                                  "Board certification", "name": cert} for cert in physician.board_certifications]
    return node


def clinic_graph(clinic: Clinic, site_url: str) -> Markup:
    nodes = _nodes_of(clinic, site_url)
    return _graph([*map(nodes.location, clinic.locations), *map(nodes.physician, clinic.physicians)])


def location_graph(clinic: Clinic, location: Location, site_url: str) -> Markup:
    nodes = _nodes_of(clinic, site_url)
    return _graph([nodes.location(location), *map(nodes.physician, clinic.physicians)])


def physician_graph(physician: Physician, registry: Registry, site_url: str) -> Markup:
    node = _nodes_of(registry.clinic_of(physician), site_url).physician(physician)
    # {"@context": ..., **node}: every key of a node sorts after "@context", so it comes first.
    # Safe: a constant and a node that _ClinicNodes made script-safe.
    return Markup(f"{{{_CONTEXT}, {node[1:]}")


# -- serialising ---------------------------------------------------------------------------------------------
#
# Jinja's tojson filter is json.dumps(data, sort_keys=True) (its default policy) with <, >, & and '
# then written as \u003c, \u003e, \u0026 and \u0027 (jinja2.utils.htmlsafe_json_dumps). The pages of a
# cold build (60,000 of them) serialise here instead, each node once: a clinic's location pages
# all repeat its physician nodes, and its clinic page every node. The output is the same bytes.

_ENCODER = json.JSONEncoder(sort_keys=True)
_CONTEXT = '"@context": "https://schema.org"'


def script_json(data: Any) -> Markup:
    """``data`` as JSON that is safe inside a ``<script>`` element: byte for byte ``data|tojson``."""
    return Markup(_script_safe(_ENCODER.encode(data)))  # safe: JSON with <, >, & and ' escaped


def script_json_in_order(data: Any) -> Markup:
    """``data`` as script-safe JSON (as ``script_json``) with mappings in their own order, not sorted:
    for data a script shows in that order (the update form's locations, as the registry lists them)."""
    return Markup(_script_safe(json.dumps(data, ensure_ascii=False)))  # safe: JSON with <, >, & and ' escaped


def _script_safe(text: str) -> str:
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027")


def _graph(nodes: list[str]) -> Markup:
    """``script_json({"@context": ..., "@graph": nodes})`` from serialised nodes (sorted keys, default separators)."""
    return Markup(f'{{{_CONTEXT}, "@graph": [{", ".join(nodes)}]}}')  # safe: constants and script-safe nodes


class _ClinicNodes:
    """The serialised nodes of one clinic, each made when first asked for."""

    def __init__(self, clinic: Clinic, site_url: str) -> None:
        self.clinic = clinic
        self.site_url = site_url
        self._locations: dict[str, str] = {}
        self._physicians: dict[str, str] = {}

    def location(self, location: Location) -> str:
        if location.slug not in self._locations:
            node = location_node(self.clinic, location, self.site_url)
            self._locations[location.slug] = _script_safe(_ENCODER.encode(node))
        return self._locations[location.slug]

    def physician(self, physician: Physician) -> str:
        if physician.slug not in self._physicians:
            node = physician_node(physician, self.clinic, self.site_url)
            self._physicians[physician.slug] = _script_safe(_ENCODER.encode(node))
        return self._physicians[physician.slug]


_last: _ClinicNodes | None = None


def _nodes_of(clinic: Clinic, site_url: str) -> _ClinicNodes:
    """The nodes of ``clinic``. Pages are rendered clinic by clinic, so only the last clinic's are
    kept; it is known by identity (and kept alive, so no other object can take its id)."""
    global _last
    if _last is None or _last.clinic is not clinic or _last.site_url != site_url:
        _last = _ClinicNodes(clinic, site_url)
    return _last


ABOUT_TYPES = {"service": "MedicalTherapy", "condition": "MedicalCondition"}


def article_page(meta: Any, url: str, site_url: str) -> dict[str, Any]:
    """An education article (``articles.ArticleMeta``) as a schema.org ``MedicalWebPage``."""
    page_url = absolute(site_url, url)
    node: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "MedicalWebPage",
        "@id": page_url,
        "url": page_url,
        "name": meta.title,
        "headline": meta.title,
        "description": meta.summary,
        "datePublished": meta.date.isoformat(),
        "dateModified": (meta.modified or meta.date).isoformat(),
        "lastReviewed": meta.last_reviewed.isoformat(),
        "about": [{"@type": ABOUT_TYPES[entry.kind], "name": entry.name, "url": absolute(site_url, entry.url)}
                  for entry in meta.about],
    }
    # A sample reviewer assignment is not a real review: it must not reach search engines as one.
    if not meta.reviewer_placeholder:
        node["reviewedBy"] = physician_node(meta.reviewer, meta.reviewer_clinic, site_url)
    if meta.references:
        node["citation"] = [{"@type": "CreativeWork", "name": ref.text, **({"url": ref.href} if ref.href else {})}
                            for ref in meta.references]
    return node
