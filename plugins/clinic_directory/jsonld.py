"""schema.org descriptions of clinics and physicians, as plain dicts.

Templates serialise them with Jinja's ``tojson``, which escapes ``<``, ``>``, ``&``
and ``'``, so no registry text can close the ``<script>`` element.
"""

from __future__ import annotations

from typing import Any

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


def clinic_graph(clinic: Clinic, site_url: str) -> dict[str, Any]:
    return {"@context": "https://schema.org",
            "@graph": [*(location_node(clinic, loc, site_url) for loc in clinic.locations),
                       *(physician_node(doc, clinic, site_url) for doc in clinic.physicians)]}


def location_graph(clinic: Clinic, location: Location, site_url: str) -> dict[str, Any]:
    return {"@context": "https://schema.org",
            "@graph": [location_node(clinic, location, site_url),
                       *(physician_node(doc, clinic, site_url) for doc in clinic.physicians)]}


def physician_graph(physician: Physician, registry: Registry, site_url: str) -> dict[str, Any]:
    return {"@context": "https://schema.org", **physician_node(physician, registry.clinic_of(physician), site_url)}


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
