"""The location index the search page reads: a small manifest, location shards by grid cell, filter lists.

Sized for 10,000 clinics (about 25,000 locations): a query loads the manifest once
(about 20 kB at that size), the cells that can hold a location within the radius,
and for each filter a list of the cells that have a match. Nothing else.

Files, all relative to the search data directory, written with ``geo.compact_json``:

``index.json``
    ``{"version": 1, "services": [slug, ...], "conditions": [slug, ...], "locations": N,
    "cells": [[key, count], ...]}``. Services and conditions are sorted by slug; cells
    reference them by position in these lists.
``cells/<key>.json``
    ``{"clinics": {clinic: [name, url, accepting_new_patients, [service], [condition]]},
    "locations": [[clinic, location, lat, lon, name, address, phone, placeholder], ...]}``.
``filter/treatment/<service>.json``, ``filter/condition/<condition>.json``
    the sorted keys of the cells holding at least one matching location.

A cell key is ``<level>_<i>_<j>``: the cell spans latitudes ``i / 2**level`` to
``(i + 1) / 2**level`` degrees, and longitudes likewise with ``j``. Level 0 cells are
1 degree square; a cell with more than ``capacity`` locations is split into four, down
to ``max_level``, so a dense city is many small files and a rural state a few.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .geo import CITY_SHARDS, CITY_WORDS, EARTH_RADIUS_MI, compact_json
from .model import Clinic, Registry
from .schema import US_STATES

INDEX_VERSION = 1
CELL_CAPACITY = 64
MAX_LEVEL = 6  # cells of 1/64 degree, about a mile: below that, locations share a building
DEFAULT_RADIUS_MI = 50
RADIUS_CHOICES_MI = (10, 25, 50, 100, 250, 500)
NEAREST_FALLBACK = 5  # how many of the nearest matches to list when none is within the radius


# What one clinic adds to the index (``clinic_records``): its record, and a row per location with
# the point it is at, as plain data (kept per clinic between builds: ``cache.ClinicMemo``).
ClinicRecords = tuple[list[Any], list[tuple[float, float, list[Any]]]]


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float
    clinic: str  # slug
    location: str  # slug
    row: list[Any]


def cell_key(level: int, lat: float, lon: float) -> str:
    """The key of the level-``level`` cell holding a point (multiplying by 2**level is exact)."""
    scale = 1 << level
    return f"{level}_{math.floor(lat * scale)}_{math.floor(lon * scale)}"


def assign_cells(points: Iterable[Point], capacity: int = CELL_CAPACITY,
                 max_level: int = MAX_LEVEL) -> dict[str, list[Point]]:
    """Leaf cell key -> its points: 1-degree cells, each split in four while it holds more than ``capacity``."""
    leaves: dict[str, list[Point]] = {}
    pending: list[tuple[int, list[Point]]] = [(0, list(points))]
    while pending:
        level, group = pending.pop()
        cells: dict[str, list[Point]] = defaultdict(list)
        for point in group:
            cells[cell_key(level, point.lat, point.lon)].append(point)
        for key, members in cells.items():
            if len(members) > capacity and level < max_level:
                pending.append((level + 1, members))
            else:
                leaves[key] = members
    return leaves


def clinic_records(clinic: Clinic, services: list[str], conditions: list[str]) -> ClinicRecords:
    """A clinic's record in the cells and a (lat, lon, row) per location, by location slug. ``services``
    and ``conditions`` are the registry's slugs, sorted: the record refers to them by position."""
    service_index = {slug: n for n, slug in enumerate(services)}
    condition_index = {slug: n for n, slug in enumerate(conditions)}
    record = [clinic.name, clinic.url, int(clinic.accepting_new_patients),
              sorted(service_index[e.slug] for e in clinic.services),
              sorted(condition_index[e.slug] for e in clinic.conditions)]
    rows = []
    for location in sorted(clinic.locations, key=lambda loc: loc.slug):
        if location.geo is None:
            raise ValueError(f"{clinic.slug}/{location.slug} has no coordinates; "
                             "the generator must resolve them first")
        lat, lon = round(location.geo.lat, 6), round(location.geo.lon, 6)
        rows.append((lat, lon, [clinic.slug, location.slug, lat, lon, location.name, location.address.one_line,
                                location.phone, int(location.placeholder)]))
    return record, rows


def build_search_index(registry: Registry, capacity: int = CELL_CAPACITY, max_level: int = MAX_LEVEL,
                       records_of: Callable[[str], ClinicRecords] | None = None) -> dict[str, bytes]:
    """Every index file as ``relative path -> bytes``; the same registry always gives the same bytes.
    ``records_of`` gives a clinic's records by its slug (``clinic_records``, or what a past build
    made of it)."""
    services = sorted(registry.services)
    conditions = sorted(registry.conditions)
    if records_of is None:
        def records_of(slug: str) -> ClinicRecords:
            return clinic_records(registry.clinics[slug], services, conditions)
    records: dict[str, list[Any]] = {}
    points = []
    for clinic_slug in sorted(registry.clinics):
        records[clinic_slug], rows = records_of(clinic_slug)
        points += [Point(lat, lon, clinic_slug, row[1], row) for lat, lon, row in rows]
    cells = assign_cells(points, capacity, max_level)

    files: dict[str, bytes] = {}
    by_service: dict[str, set[str]] = {slug: set() for slug in services}
    by_condition: dict[str, set[str]] = {slug: set() for slug in conditions}
    for key, members in cells.items():
        clinics: dict[str, list[Any]] = {}
        rows = []
        for point in sorted(members, key=lambda p: (p.clinic, p.location)):
            if point.clinic not in clinics:
                clinics[point.clinic] = record = records[point.clinic]
                for position in record[3]:
                    by_service[services[position]].add(key)
                for position in record[4]:
                    by_condition[conditions[position]].add(key)
            rows.append(point.row)
        files[f"cells/{key}.json"] = compact_json({"clinics": clinics, "locations": rows})
    for slug, keys in by_service.items():
        files[f"filter/treatment/{slug}.json"] = compact_json(sorted(keys))
    for slug, keys in by_condition.items():
        files[f"filter/condition/{slug}.json"] = compact_json(sorted(keys))
    files["index.json"] = compact_json({
        "version": INDEX_VERSION,
        "services": services,
        "conditions": conditions,
        "locations": len(points),
        "cells": [[key, len(cells[key])] for key in sorted(cells)],
    })
    return dict(sorted(files.items()))


def page_context(registry: Registry) -> dict[str, Any]:
    """What ``find.html`` needs: the filter choices, and the settings find.js reads (rendered with ``tojson``)."""
    services = sorted(registry.services.values(), key=lambda e: (e.name.casefold(), e.slug))
    conditions = sorted(registry.conditions.values(), key=lambda e: (e.name.casefold(), e.slug))
    return {
        "find_services": services,
        "find_conditions": conditions,
        "radius_choices": RADIUS_CHOICES_MI,
        "default_radius": DEFAULT_RADIUS_MI,
        "find_config": {
            "version": INDEX_VERSION,
            "defaultRadius": DEFAULT_RADIUS_MI,
            "nearestFallback": NEAREST_FALLBACK,
            "states": dict(sorted(US_STATES.items())),
            # What find.js must compute exactly as geo.py does.
            "geo": {"earthRadiusMi": EARTH_RADIUS_MI, "cityWords": dict(sorted(CITY_WORDS.items())),
                    "cityShards": CITY_SHARDS},
            "services": {e.slug: [e.name, e.url] for e in services},
            "conditions": {e.slug: [e.name, e.url] for e in conditions},
        },
    }
