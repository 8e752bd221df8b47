"""Coordinates for every location: from the registry's ``geo``, else from the committed geocode cache.

The build is offline: it reads ``geocode-cache.json`` (setting ``CLINIC_DIRECTORY_GEOCODE_CACHE``)
and stops with a located problem for any location that has neither ``geo`` nor a cache
entry for its current address. It never asks the network.

Only ``make geocode`` (``python -m clinic_directory geocode``) does: it looks up the
locations that need it with geopy's Nominatim geocoder, at most one request a second
(``RateLimiter(min_delay_seconds=1)``, as Nominatim's usage policy asks), identified by
the user agent in ``CLINIC_DIRECTORY_GEOCODER_USER_AGENT``, and rewrites the cache
(sorted, one entry per ``clinic/location``) for the maintainer to review and commit.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import registry
from .cache import RegistryCache, paused_gc, write_atomically
from .model import Address, Geo, Registry, build_registry
from .problems import InvalidInput, Problem
from .settings import PluginSettings
from .source import problem_at, read_yaml

logger = logging.getLogger(__name__)

CACHE_MAX_BYTES = 64 * 1024 * 1024
# What make geocode asks Nominatim for: a structured US address, then the same as one line.
Geocoder = Callable[..., Any]


@dataclass(frozen=True)
class CacheEntry:
    """Where the geocoder placed one location's address (``found`` is its own description)."""

    address: str
    lat: float
    lon: float
    found: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"address": self.address, "lat": self.lat, "lon": self.lon, "found": self.found}


@dataclass(frozen=True)
class Pending:
    """A location without ``geo``: its ``clinic/location`` key, one-line address and address fields."""

    key: str
    clinic: str
    location: str
    address: str
    fields: dict[str, str]


# -- reading (the build) -----------------------------------------------------------------------------------


def read_cache(path: Path, label: str | None = None) -> tuple[dict[str, CacheEntry], list[Problem]]:
    """The cache's entries and any problems with it. A missing cache is an empty one."""
    label = label or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, []
    except OSError as error:
        return {}, [Problem(label, 1, 1, "(file)", f"cannot read the geocode cache: {error.strerror}")]
    if len(raw) > CACHE_MAX_BYTES:
        return {}, [Problem(label, 1, 1, "(file)", f"the geocode cache is over {CACHE_MAX_BYTES:,} bytes")]
    try:
        text = raw.decode("utf-8")
        data = json.loads(text) if text.strip() else {}
    except UnicodeDecodeError:
        return {}, [Problem(label, 1, 1, "(file)", "the geocode cache is not UTF-8 text")]
    except json.JSONDecodeError as error:
        return {}, [Problem(label, error.lineno, error.colno, "(file)",
                            f"not valid JSON: {error.msg}; fix it or delete the file and run `make geocode`")]
    if not isinstance(data, dict):
        return {}, [Problem(label, 1, 1, "(root)", "expected a JSON object of \"clinic/location\": entry")]
    entries: dict[str, CacheEntry] = {}
    problems: list[Problem] = []
    for key, value in data.items():
        entry = _cache_entry(value)
        if entry is None:
            line = text[: max(text.find(json.dumps(key)), 0)].count("\n") + 1
            problems.append(Problem(label, line, 1, key, "expected {\"address\": text, \"lat\": number, "
                                    "\"lon\": number, \"found\": text}; fix it or remove it and run `make geocode`"))
        else:
            entries[key] = entry
    return entries, problems


def _cache_entry(value: Any) -> CacheEntry | None:
    if not isinstance(value, dict):
        return None
    lat, lon, address, found = value.get("lat"), value.get("lon"), value.get("address"), value.get("found", "")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lat, lon)):
        return None
    if not (isinstance(address, str) and isinstance(found, str) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return CacheEntry(address, float(lat), float(lon), found)


def pending_locations(data: Mapping[str, Any]) -> list[Pending]:
    """Every location of validated registry data that has no ``geo``, in slug order."""
    pending = []
    for clinic_slug in sorted(data["clinics"]):
        locations = data["clinics"][clinic_slug]["locations"]
        for location_slug in sorted(locations):
            location = locations[location_slug]
            if location.get("geo"):
                continue
            fields = {k: str(v) for k, v in location["address"].items()}
            pending.append(Pending(f"{clinic_slug}/{location_slug}", clinic_slug, location_slug,
                                   Address(**fields).one_line, fields))
    return pending


def resolve_geo(data: Mapping[str, Any], cache: Mapping[str, CacheEntry], root: yaml.Node | None,
                registry_label: str, cache_label: str) -> tuple[dict[str, Geo], list[Problem]]:
    """Cached coordinates for the locations without ``geo``, and a located problem for each one missing.

    ``root`` (for the problems' lines) may be None only when ``all_placed`` is true.
    """
    geocoded: dict[str, Geo] = {}
    problems: list[Problem] = []
    for item in pending_locations(data):
        entry = cache.get(item.key)
        if entry is not None and entry.address == item.address:
            geocoded[item.key] = Geo(entry.lat, entry.lon)
            continue
        path = f"clinics.{item.clinic}.locations.{item.location}"
        if entry is None:
            reason = f"{cache_label} has no entry for \"{item.key}\""
        else:
            reason = f"{cache_label} has coordinates for \"{item.key}\" at another address ({entry.address})"
        problems.append(problem_at(registry_label, _key_node(root, ["clinics", item.clinic, "locations",
                                                                      item.location]), path,
                                   f"location \"{item.key}\" ({item.address}) cannot be placed on the map: "
                                   f"it has no geo and {reason}. Run `make geocode` to look the address up "
                                   "(this needs the network), or add geo: {lat: ..., lon: ...} to the location"))
    return geocoded, problems


def _key_node(root: yaml.Node, keys: list[str]) -> yaml.Node:
    """The key node at ``keys`` (the deepest one found, so a problem always has a line)."""
    node, found = root, root
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
        if match is None:
            break
        found, node = match
    return found


def read_registry(plugin: PluginSettings, label: str) -> tuple[yaml.Node | None, dict[str, Any] | None,
                                                                list[Problem]]:
    """The registry's node tree, its validated data (None when unusable) and every problem found."""
    return registry.read_registry(plugin.registry, plugin.max_registry_bytes, label)


def load_geocoded_registry(plugin: PluginSettings, label: str | None = None,
                           registry_cache: RegistryCache | None = None) -> Registry:
    """Read, validate and place the registry; raises ``InvalidInput`` with every problem found.

    What ``registry.load_registry`` does, plus coordinates from the cache for the
    locations without ``geo`` (which needs the YAML nodes to say where such a location is).
    With a ``registry_cache``, a registry whose bytes were validated before is not parsed
    again, unless a location cannot be placed: that problem needs the nodes for its line.
    """
    label = label or str(plugin.registry)
    cache, cache_problems = read_cache(plugin.geocode_cache)
    with paused_gc():
        root, data = None, _cached_registry(plugin, registry_cache)
        if data is None or not all_placed(data, cache):
            root, data, problems = read_registry(plugin, label)
            if problems or data is None or root is None:
                raise InvalidInput(problems)
            if registry_cache is not None:
                registry_cache.store(plugin.registry.read_bytes(), data)
        geocoded, geo_problems = resolve_geo(data, cache, root, label, str(plugin.geocode_cache))
        if cache_problems or geo_problems:
            raise InvalidInput([*cache_problems, *geo_problems])
        return build_registry(data, plugin.urls, geocoded)


def placement_problems(registry: Path, data: Mapping[str, Any], geocode_cache: Path, max_bytes: int,
                       label: str) -> list[Problem]:
    """What a build would add to the problems of valid registry ``data`` (``make validate`` asks):
    a geocode cache it cannot read, and each location without ``geo`` the cache cannot place,
    on that location's line."""
    cache, problems = read_cache(geocode_cache)
    if all_placed(data, cache):
        return problems
    source = read_yaml(registry, label, max_bytes)  # the nodes, for the locations' lines
    _geocoded, unplaced = resolve_geo(data, cache, source.root, label, str(geocode_cache))
    return [*problems, *unplaced]


def _cached_registry(plugin: PluginSettings, registry_cache: RegistryCache | None) -> dict[str, Any] | None:
    try:
        if registry_cache is None or plugin.registry.stat().st_size > plugin.max_registry_bytes:
            return None
        return registry_cache.load(plugin.registry.read_bytes())
    except OSError:
        return None  # read_registry says what is wrong with the file


def all_placed(data: Mapping[str, Any], cache: Mapping[str, CacheEntry]) -> bool:
    """Whether every location without ``geo`` has cached coordinates for its current address."""
    return all((entry := cache.get(item.key)) is not None and entry.address == item.address
               for item in pending_locations(data))


# -- looking up (make geocode) -----------------------------------------------------------------------------


def make_geocoder(user_agent: str, timeout: float = 10.0) -> Geocoder:
    """Nominatim's ``geocode``, rate limited to one request a second and retried twice on errors."""
    from geopy.extra.rate_limiter import RateLimiter
    from geopy.geocoders import Nominatim

    nominatim = Nominatim(user_agent=user_agent, timeout=timeout)
    return RateLimiter(nominatim.geocode, min_delay_seconds=1, max_retries=2, error_wait_seconds=5,
                       swallow_exceptions=False)


def look_up(geocode: Geocoder, item: Pending) -> Any:
    """The geocoder's best match for a US address: structured query first, then the address as one line."""
    structured = {"street": ", ".join(p for p in (item.fields.get("street", ""), item.fields.get("street2", ""))
                                      if p),
                  "city": item.fields["city"], "state": item.fields["state"],
                  "postalcode": item.fields["postal_code"], "country": "United States"}
    found = geocode(structured, exactly_one=True, country_codes="us")
    if found is None:
        found = geocode(item.address, exactly_one=True, country_codes="us")
    return found


@dataclass(frozen=True)
class GeocodeReport:
    cache: dict[str, CacheEntry]
    looked_up: list[str]
    kept: list[str]
    removed: list[str]
    failed: list[tuple[str, str]]  # (key, reason)


def update_cache(data: Mapping[str, Any], cache: Mapping[str, CacheEntry], geocode: Geocoder,
                 refresh: bool = False) -> GeocodeReport:
    """The new cache: entries for every location without ``geo``, looked up when missing or stale.

    Entries for locations that now have ``geo`` or no longer exist are dropped. A
    location the geocoder cannot place keeps no entry and is reported as failed.
    """
    from geopy.exc import GeopyError

    new: dict[str, CacheEntry] = {}
    looked_up, kept, failed = [], [], []
    for item in pending_locations(data):
        entry = cache.get(item.key)
        if entry is not None and entry.address == item.address and not refresh:
            new[item.key] = entry
            kept.append(item.key)
            continue
        logger.info("Geocoding %s: %s", item.key, item.address)
        try:
            found = look_up(geocode, item)
        except GeopyError as error:
            failed.append((item.key, f"the geocoder failed: {error}"))
            continue
        if found is None:
            failed.append((item.key, f"the geocoder found no place for {item.address}"))
            continue
        new[item.key] = CacheEntry(item.address, round(float(found.latitude), 6), round(float(found.longitude), 6),
                                   str(getattr(found, "address", "") or ""))
        looked_up.append(item.key)
    removed = sorted(set(cache) - set(new))
    return GeocodeReport(new, looked_up, kept, removed, failed)


def cache_bytes(cache: Mapping[str, CacheEntry]) -> bytes:
    """The cache file's content: sorted keys, two-space indent, so a review shows one line per change."""
    return (json.dumps({key: cache[key].as_json() for key in sorted(cache)}, indent=2, sort_keys=True,
                       ensure_ascii=False) + "\n").encode("utf-8")


def main(argv: list[str] | None = None, geocoder: Geocoder | None = None) -> int:
    """``make geocode``: exit 0 when every location is placed, 1 when some could not be, 2 on bad settings."""
    from pelican.settings import read_settings

    from .settings import SettingsError, read_plugin_settings

    parser = argparse.ArgumentParser(prog="python -m clinic_directory geocode",
                                     description="look up the locations without geo and update the geocode cache")
    parser.add_argument("--settings", type=Path, default=Path("pelicanconf.py"))
    parser.add_argument("--registry", type=Path, default=None)
    parser.add_argument("--refresh", action="store_true", help="look every address up again")
    parser.add_argument("--dry-run", action="store_true", help="report what would be looked up; no network")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    overrides = {"CLINIC_DIRECTORY_REGISTRY": str(args.registry)} if args.registry else {}
    try:
        plugin = read_plugin_settings(read_settings(str(args.settings), override=overrides))
    except SettingsError as error:
        print(f"geocode: {error}", file=sys.stderr)
        return 2
    label = str(plugin.registry)
    root, data, problems = read_registry(plugin, label)
    cache, cache_problems = read_cache(plugin.geocode_cache)
    if problems or cache_problems or data is None or root is None:
        print(InvalidInput([*problems, *cache_problems]).report(), file=sys.stderr)
        return 1
    if args.dry_run:
        todo = [p.key for p in pending_locations(data)
                if args.refresh or p.key not in cache or cache[p.key].address != p.address]
        print(f"{len(todo)} location(s) to look up" + "".join(f"\n  {k}" for k in todo))
        return 0
    if geocoder is None:
        if not plugin.geocoder_user_agent.strip():
            print("geocode: set CLINIC_DIRECTORY_GEOCODER_USER_AGENT in the settings to a user agent that names "
                  "this site and a contact, as Nominatim's usage policy asks", file=sys.stderr)
            return 2
        geocoder = make_geocoder(plugin.geocoder_user_agent)
    report = update_cache(data, cache, geocoder, refresh=args.refresh)
    content = cache_bytes(report.cache)
    path = plugin.geocode_cache
    if not path.exists() or path.read_bytes() != content:
        write_atomically(path, content)
    print(f"{path}: {len(report.looked_up)} looked up, {len(report.kept)} kept, {len(report.removed)} removed, "
          f"{len(report.failed)} failed")
    for key in report.looked_up:
        entry = report.cache[key]
        print(f"  {key}: {entry.lat}, {entry.lon} ({entry.found}): check this is the right place")
    failures = []
    for key, reason in report.failed:
        clinic, location = key.split("/", 1)
        failures.append(problem_at(label, _key_node(root, ["clinics", clinic, "locations", location]),
                                   f"clinics.{clinic}.locations.{location}",
                                   f"{reason}; correct the address or add geo: {{lat: ..., lon: ...}}"))
    if failures:
        print(InvalidInput(failures).report(), file=sys.stderr)
    return 1 if failures else 0

