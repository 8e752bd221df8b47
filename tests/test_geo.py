"""Geodata: ZIP and city lookups, distances, the location index, the geocode cache, and no network.

The last test builds a generated registry of hundreds of locations and checks, in
Chromium, that every distance and every result list the search page shows agrees
with geopy computed here in Python.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
import zipcodes
from geopy.distance import geodesic, great_circle

from clinic_directory import geo, geocode, search_index
from clinic_directory.model import Geo, build_registry
from clinic_directory.problems import InvalidInput
from clinic_directory.schema import US_STATES
from clinic_directory.settings import read_plugin_settings
from clinic_directory.source import parse_yaml
from clinic_directory.urls import UrlPatterns
from clinic_directory.validate import validate_registry
from conftest import ROOT, RequestLog, build, serve

URLS = read_plugin_settings({}).urls


@pytest.fixture(scope="module")
def zip_records() -> list[dict[str, Any]]:
    return zipcodes.list_all()


# -- distances and lookups ------------------------------------------------------------------------------------


def test_distance_agrees_with_geopy_great_circle() -> None:
    rng = random.Random(4)
    for _ in range(2000):
        a = (rng.uniform(18, 71), rng.uniform(-179.9, -65))
        b = (rng.uniform(18, 71), rng.uniform(-179.9, -65))
        assert geo.distance_mi(*a, *b) == pytest.approx(great_circle(a, b).miles, rel=1e-9, abs=1e-9)
    assert geo.distance_mi(42.0, -87.0, 42.0, -87.0) == 0.0
    # Across the antimeridian (the Aleutians): the short way round.
    assert geo.distance_mi(52.0, 179.5, 52.0, -179.5) == pytest.approx(great_circle((52, 179.5), (52, -179.5)).miles)


@pytest.mark.parametrize(("typed", "listed"), [
    ("St. Louis", "Saint Louis"), ("saint   louis", "Saint Louis"), ("Saint-Louis", "Saint Louis"),
    ("Coeur d'Alene", "Coeur D Alene"), ("Ft Worth", "Fort Worth"), ("Mt. Vernon", "Mount Vernon"),
    ("Arlington Hts", "Arlington Heights"), ("Cañon City", "Canon City"), ("N Chicago", "North Chicago"),
    ("LA CROSSE", "La Crosse"), ("Lacrosse", "La Crosse"),
])
def test_city_names_match_however_they_are_typed(typed: str, listed: str) -> None:
    assert geo.normalize_city(typed) == geo.normalize_city(listed)


def test_city_shard_key_is_pinned() -> None:
    """find.js computes the same hash; a change here must change it there (the browser tests check both)."""
    assert geo.city_shard_key("evanston") == "12b"
    assert geo.city_shard_key("") == f"{0x811C9DC5 % geo.CITY_SHARDS:03x}"
    keys = {geo.city_shard_key(geo.normalize_city(n)) for n in ("Katy", "Austin", "Bellevue", "Glenview")}
    assert all(len(k) == 3 and int(k, 16) < geo.CITY_SHARDS for k in keys)


def test_zip_places_come_from_the_package_and_skip_unplaceable_codes(zip_records: list[dict[str, Any]]) -> None:
    places = {p.zip_code: p for p in geo.zip_places(zip_records)}
    assert places["77494"] == geo.ZipPlace("77494", 29.7404, -95.8304, "Katy", "TX")
    assert places["60201"].city == "Evanston" and places["60201"].state == "IL"
    assert "09001" not in places, "APO/FPO codes sit at 0,0 and must not be searchable"
    assert len(places) > 40_000
    shards = geo.zip_shards(places.values())
    assert len(shards) == 1000 and shards["000"] == {}
    assert shards["774"]["77494"] == [29.7404, -95.8304, "Katy", "TX"]


def test_city_places_average_standard_zips_and_add_accepted_names() -> None:
    records = [
        {"zip_code": "10001", "zip_code_type": "STANDARD", "city": "Springfield", "state": "XX",
         "lat": "10.0", "long": "20.0", "acceptable_cities": ["Hamlet"]},
        {"zip_code": "10002", "zip_code_type": "STANDARD", "city": "Springfield", "state": "XX",
         "lat": "12.0", "long": "22.0", "acceptable_cities": []},
        {"zip_code": "10003", "zip_code_type": "PO BOX", "city": "Springfield", "state": "XX",
         "lat": "50.0", "long": "50.0", "acceptable_cities": ["Springfield"]},
        {"zip_code": "10004", "zip_code_type": "PO BOX", "city": "Lonely", "state": "XX",
         "lat": "1.0", "long": "2.0", "acceptable_cities": []},
        {"zip_code": "09000", "zip_code_type": "MILITARY", "city": "Apo", "state": "AE",
         "lat": "0", "long": "0", "acceptable_cities": []},
    ]
    places = {(p.key, p.state): p for p in geo.city_places(records)}
    assert places[("springfield", "XX")] == geo.CityPlace("springfield", "XX", "Springfield", 11.0, 21.0)
    assert places[("hamlet", "XX")].lat == 10.0
    assert places[("lonely", "XX")].lat == 1.0, "a city with only PO box ZIPs is still placed"
    assert ("apo", "AE") not in places


def test_lookup_files_are_compact_sorted_and_small(zip_records: list[dict[str, Any]]) -> None:
    files = geo.lookup_files(zip_records)
    for path, content in files.items():
        data = json.loads(content)
        assert content == geo.compact_json(data), path
    zip_sizes = [len(v) for k, v in files.items() if k.startswith("zip/")]
    city_sizes = [len(v) for k, v in files.items() if k.startswith("city/")]
    assert max(zip_sizes) < 8_000 and max(city_sizes) < 10_000, "a lookup should load one small file"
    shard = json.loads(files[f"city/{geo.city_shard_key('evanston')}.json"])
    assert [p[1] for p in shard["evanston"]] == ["IL", "IN", "WY"]


# -- the location index ---------------------------------------------------------------------------------------


HOSTILE_NAME = """Clinic 0000 </script><img src=x onerror="alert(1)"> & 'co'"""


def registry_yaml(locations: list[tuple[str, float, float, str, str]], clinics: int | None = None,
                  with_geo: bool = True) -> str:
    """A valid registry: location i belongs to clinic i % clinics; cities and ZIPs are labels only."""
    count = clinics or len(locations)
    data: dict[str, Any] = {
        "schema": 1,
        "services": {
            "ketamine-infusion": {"name": "Ketamine infusion therapy", "summary": "Ketamine given slowly."},
            "nerve-block": {"name": "Nerve block", "also_known_as": ["Block"], "summary": "An injection."},
            "trigger-point-injections": {"name": "Trigger point injections", "also_known_as": ["TPI"],
                                         "summary": "Injections into knots."},
        },
        "conditions": {
            "crps": {"name": "Complex regional pain syndrome", "also_known_as": ["CRPS", "RSD"],
                     "summary": "A long-lasting pain condition."},
            "migraine": {"name": "Migraine", "summary": "Headaches."},
            "sciatica": {"name": "Sciatica", "summary": "Leg pain."},
        },
        "clinics": {},
    }
    services, conditions = list(data["services"]), list(data["conditions"])
    for n in range(count):
        data["clinics"][f"clinic-{n:04d}"] = {
            "name": HOSTILE_NAME if n == 0 else f"Clinic {n:04d}", "summary": "A generated clinic.",
            "accepting_new_patients": n % 3 != 0,
            "languages": ["en"], "services": [services[n % 3]] + ([services[(n + 1) % 3]] if n % 2 else []),
            "conditions": [conditions[n % 3]], "last_verified": "2026-11-01", "locations": {},
        }
    for n, (slug, lat, lon, city, state) in enumerate(locations):
        data["clinics"][f"clinic-{n % count:04d}"]["locations"][slug] = {
            "name": f"{city} office", "placeholder": True,
            "address": {"street": f"{n} Generated Street", "city": city, "state": state, "postal_code": "60601"},
            "phone": f"+1-312-555-{n % 10000:04d}",
        }
        if with_geo:
            data["clinics"][f"clinic-{n % count:04d}"]["locations"][slug]["geo"] = {"lat": lat, "lon": lon}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def registry_from(text: str, geocoded: dict[str, Geo] | None = None, urls: UrlPatterns = URLS):
    source = parse_yaml(text.encode(), "test.yaml")
    data, problems = validate_registry("test.yaml", source.root)
    assert problems == [] and data is not None, problems
    return build_registry(data, urls, geocoded)


def test_dense_cells_split_and_every_location_is_in_exactly_one_cell() -> None:
    rng = random.Random(7)
    locations = [(f"loc-{n}", round(41.9 + rng.uniform(-0.3, 0.3), 5), round(-87.7 + rng.uniform(-0.3, 0.3), 5),
                  "Chicago", "IL") for n in range(300)]
    locations += [(f"same-{n}", 40.0, -100.0, "Nowhere", "NE") for n in range(200)]  # one building
    registry = registry_from(registry_yaml(locations, clinics=50))
    files = search_index.build_search_index(registry, capacity=64)
    index = json.loads(files["index.json"])
    assert index["locations"] == 500
    seen = []
    for key, count in index["cells"]:
        level, i, j = map(int, key.split("_"))
        cell = json.loads(files[f"cells/{key}.json"])
        assert len(cell["locations"]) == count
        size = 1 / 2**level
        for row in cell["locations"]:
            assert i * size <= row[2] < (i + 1) * size and j * size <= row[3] < (j + 1) * size
            seen.append((row[0], row[1]))
        if count > 64:
            assert level == search_index.MAX_LEVEL, "only an unsplittable cell may hold more than the capacity"
    assert len(seen) == len(set(seen)) == 500
    assert max(int(key.split("_")[0]) for key, _ in index["cells"]) >= 2, "the dense city was split"


def test_filter_lists_name_exactly_the_cells_with_a_match() -> None:
    locations = [("a", 41.5, -87.5, "Chicago", "IL"), ("b", 30.5, -97.5, "Austin", "TX"),
                 ("c", 47.5, -122.5, "Seattle", "WA")]
    files = search_index.build_search_index(registry_from(registry_yaml(locations)))
    # clinic n offers services[n % 3] (+ the next one when n is odd), treats conditions[n % 3].
    assert json.loads(files["filter/treatment/ketamine-infusion.json"]) == ["0_41_-88"]
    assert json.loads(files["filter/treatment/nerve-block.json"]) == ["0_30_-98"]
    assert json.loads(files["filter/treatment/trigger-point-injections.json"]) == ["0_30_-98", "0_47_-123"]
    assert json.loads(files["filter/condition/crps.json"]) == ["0_41_-88"]
    cell = json.loads(files["cells/0_30_-98.json"])
    assert cell["clinics"]["clinic-0001"][3] == [1, 2]  # positions in index.json's services
    assert cell["locations"][0][:4] == ["clinic-0001", "b", 30.5, -97.5]


def test_index_is_deterministic_and_compact() -> None:
    rng = random.Random(1)
    locations = [(f"l{n}", round(rng.uniform(25, 48), 4), round(rng.uniform(-124, -70), 4), "Town", "KS")
                 for n in range(200)]
    text = registry_yaml(locations, clinics=80)
    first = search_index.build_search_index(registry_from(text))
    assert first == search_index.build_search_index(registry_from(text))
    for path, content in first.items():
        assert content == geo.compact_json(json.loads(content)), path


def test_index_refuses_a_location_without_coordinates() -> None:
    text = registry_yaml([("a", 41.5, -87.5, "Chicago", "IL")], with_geo=False)
    with pytest.raises(ValueError, match="clinic-0000/a has no coordinates"):
        search_index.build_search_index(registry_from(text))


# -- the geocode cache and `make geocode` ---------------------------------------------------------------------


def sample_without_geo(tmp_path: Path, *locations: str) -> Path:
    """The sample registry with the geo line of each named location (default: katy) removed."""
    lines = (ROOT / "clinics.yaml").read_text().splitlines(keepends=True)
    for location in locations or ("katy",):
        start = next(n for n, line in enumerate(lines) if line.strip() == f"{location}:")
        del lines[next(n for n in range(start, len(lines)) if lines[n].strip().startswith("geo:"))]
    path = tmp_path / "clinics.yaml"
    path.write_text("".join(lines))
    return path


def test_read_cache_reports_bad_json_with_its_line(tmp_path: Path) -> None:
    assert geocode.read_cache(tmp_path / "missing.json") == ({}, [])
    bad = tmp_path / "cache.json"
    bad.write_text('{\n  "a/b": {"address": "x", "lat": 1, "lon": 2},\n  oops\n}\n')
    entries, problems = geocode.read_cache(bad, "cache.json")
    assert entries == {} and len(problems) == 1
    assert str(problems[0]).startswith("cache.json:3:3: (file): not valid JSON")
    bad.write_text('{\n  "a/b": {"address": "x", "lat": "north", "lon": 2}\n}\n')
    _, problems = geocode.read_cache(bad, "cache.json")
    assert str(problems[0]).startswith("cache.json:2:1: a/b: expected")


def test_committed_cache_is_valid_and_sorted() -> None:
    path = ROOT / "geocode-cache.json"
    entries, problems = geocode.read_cache(path)
    assert problems == []
    assert path.read_bytes() == geocode.cache_bytes(entries)


def test_build_stops_with_a_located_problem_for_a_location_it_cannot_place(tmp_path: Path) -> None:
    registry = sample_without_geo(tmp_path)
    result = build(tmp_path / "out", registry=registry)
    assert result.returncode == 1
    katy_line = next(n for n, line in enumerate(registry.read_text().splitlines(), 1) if line.strip() == "katy:")
    expected = (f"{registry}:{katy_line}:7: clinics.katy-pain-and-spine.locations.katy: location "
                '"katy-pain-and-spine/katy" (100 Placeholder Road, Katy, TX 77494) cannot be placed on the map: '
                'it has no geo and geocode-cache.json has no entry for "katy-pain-and-spine/katy". '
                "Run `make geocode`")
    assert expected in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def settings_with_cache(tmp_path: Path, cache: Path) -> Path:
    """The site's settings with another geocode cache (paths made absolute: Pelican reads them beside this file)."""
    settings = tmp_path / "conf.py"
    settings.write_text(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nfrom pelicanconf import *\n"
                        f"PATH = {str(ROOT / 'content')!r}\nTHEME = {str(ROOT / 'theme')!r}\n"
                        f"PLUGIN_PATHS = [{str(ROOT / 'plugins')!r}]\n"
                        f"CLINIC_DIRECTORY_GEOCODE_CACHE = {str(cache)!r}\n")
    return settings


def test_build_uses_the_cache_and_notices_a_changed_address(tmp_path: Path) -> None:
    registry = sample_without_geo(tmp_path)
    cache = tmp_path / "cache.json"
    entry = geocode.CacheEntry("100 Placeholder Road, Katy, TX 77494", 29.78, -95.82, "Katy, Texas")
    cache.write_bytes(geocode.cache_bytes({"katy-pain-and-spine/katy": entry}))
    settings = settings_with_cache(tmp_path, cache)
    result = build(tmp_path / "out", registry=registry, settings=str(settings))
    assert result.returncode == 0, result.stderr
    cell = json.loads((tmp_path / "out/find/data/cells/0_29_-96.json").read_text())
    assert cell["locations"][0][:4] == ["katy-pain-and-spine", "katy", 29.78, -95.82]

    registry.write_text(registry.read_text().replace("100 Placeholder Road", "200 Placeholder Road"))
    result = build(tmp_path / "out2", registry=registry, settings=str(settings))
    assert result.returncode == 1
    assert ("has coordinates for \"katy-pain-and-spine/katy\" at another address "
            "(100 Placeholder Road, Katy, TX 77494)") in result.stderr


class FakeLocation:
    def __init__(self, lat: float, lon: float, address: str) -> None:
        self.latitude, self.longitude, self.address = lat, lon, address


def test_make_geocode_looks_up_only_what_is_missing_and_writes_a_sorted_cache(tmp_path: Path) -> None:
    registry = sample_without_geo(tmp_path, "katy", "glenview")
    cache = tmp_path / "cache.json"
    stale = geocode.CacheEntry("somewhere else", 1.0, 2.0, "")
    kept = geocode.CacheEntry("100 Placeholder Avenue, Glenview, IL 60025", 42.07, -87.82, "Glenview")
    gone = geocode.CacheEntry("x", 3.0, 4.0, "")
    cache.write_bytes(geocode.cache_bytes({"katy-pain-and-spine/katy": stale,
                                           "revitalize-medical-center/glenview": kept, "old-clinic/old": gone}))
    asked: list[Any] = []

    def fake_geocoder(query: Any, **kwargs: Any) -> FakeLocation | None:
        asked.append((query, kwargs))
        return FakeLocation(29.7811, -95.8223, "Katy, Fort Bend County, Texas") if isinstance(query, dict) else None

    settings = settings_with_cache(tmp_path, cache)
    code = geocode.main(["--settings", str(settings), "--registry", str(registry)], geocoder=fake_geocoder)
    assert code == 0
    assert len(asked) == 1 and asked[0][0]["postalcode"] == "77494" and asked[0][1]["country_codes"] == "us"
    entries, problems = geocode.read_cache(cache)
    assert problems == [] and cache.read_bytes() == geocode.cache_bytes(entries)
    assert entries == {
        "katy-pain-and-spine/katy": geocode.CacheEntry("100 Placeholder Road, Katy, TX 77494", 29.7811, -95.8223,
                                                       "Katy, Fort Bend County, Texas"),
        "revitalize-medical-center/glenview": kept,
    }


def test_make_geocode_reports_a_place_it_cannot_find(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = sample_without_geo(tmp_path)
    cache = tmp_path / "cache.json"
    code = geocode.main(["--settings", str(settings_with_cache(tmp_path, cache)), "--registry", str(registry)],
                        geocoder=lambda query, **kwargs: None)
    assert code == 1
    assert "clinics.katy-pain-and-spine.locations.katy: the geocoder found no place for 100 Placeholder Road" \
        in capsys.readouterr().err
    assert json.loads(cache.read_text()) == {}


def test_geocoder_is_nominatim_rate_limited_to_one_request_a_second() -> None:
    from geopy.extra.rate_limiter import RateLimiter
    from geopy.geocoders import Nominatim

    limiter = geocode.make_geocoder("test-directory/1.0 (maintainer@example.org)")
    assert isinstance(limiter, RateLimiter)
    assert limiter.min_delay_seconds == 1
    nominatim = limiter.func.__self__
    assert isinstance(nominatim, Nominatim)
    assert nominatim.headers["User-Agent"] == "test-directory/1.0 (maintainer@example.org)"


def test_build_never_touches_the_network(tmp_path: Path) -> None:
    """`make html` with every socket call refused: the build must not even try."""
    script = f"""
import socket, sys
def refuse(*args, **kwargs):
    raise AssertionError("the build tried to use the network: " + repr(args)[:200])
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse
from clinic_directory.__main__ import main
sys.exit(main(["build", "--settings", {str(ROOT / 'pelicanconf.py')!r}, "--output", {str(tmp_path / 'out')!r},
               "--quiet"]))
"""
    env = {"PYTHONPATH": str(ROOT / "plugins"), "PATH": "/usr/bin:/bin:/usr/local/bin"}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out/find/data/index.json").is_file()


def test_sample_registry_needs_no_geocoding() -> None:
    plugin = read_plugin_settings({"CLINIC_DIRECTORY_REGISTRY": str(ROOT / "clinics.yaml")})
    root, data, problems = geocode.read_registry(plugin, "clinics.yaml")
    assert problems == [] and data is not None
    assert geocode.pending_locations(data) == []


def test_load_geocoded_registry_lists_every_unplaceable_location(tmp_path: Path) -> None:
    registry = sample_without_geo(tmp_path, "katy", "bellevue")
    plugin = read_plugin_settings({"CLINIC_DIRECTORY_REGISTRY": str(registry),
                                   "CLINIC_DIRECTORY_GEOCODE_CACHE": str(tmp_path / "none.json")})
    with pytest.raises(InvalidInput) as caught:
        geocode.load_geocoded_registry(plugin)
    assert [p.path for p in caught.value.problems] == ["clinics.bellevue-pain-and-wellness.locations.bellevue",
                                                       "clinics.katy-pain-and-spine.locations.katy"]


# -- distances on the page, for a generated registry of hundreds of locations ----------------------------------


def generated_locations(zip_records: list[dict[str, Any]]) -> list[tuple[str, float, float, str, str]]:
    """~320 locations: a dense Chicago cluster (so cells split), some in one building, the rest across the US."""
    rng = random.Random(2026)
    standard = [z for z in zip_records if z["zip_code_type"] == "STANDARD" and float(z["lat"]) != 0
                and z["state"] in US_STATES]
    locations = []
    for n in range(170):
        locations.append((f"chi-{n}", round(41.88 + rng.uniform(-0.35, 0.35), 5),
                          round(-87.75 + rng.uniform(-0.35, 0.35), 5), "Chicago", "IL"))
    for n in range(10):
        locations.append((f"tower-{n}", 41.8781, -87.6298, "Chicago", "IL"))
    for n, record in enumerate(rng.sample(standard, 140)):
        lat = round(float(record["lat"]) + rng.uniform(-0.05, 0.05), 5)
        lon = round(float(record["long"]) + rng.uniform(-0.05, 0.05), 5)
        locations.append((f"us-{n}", lat, lon, record["city"], record["state"]))
    return locations


@pytest.fixture(scope="module")
def generated_site(tmp_path_factory: pytest.TempPathFactory, zip_records: list[dict[str, Any]],
                   empty_content: Path):
    directory = tmp_path_factory.mktemp("generated")
    locations = generated_locations(zip_records)
    registry = directory / "clinics.yaml"
    registry.write_text(registry_yaml(locations, clinics=120))
    result = build(directory / "output", registry=registry, content=empty_content)
    assert result.returncode == 0, result.stderr
    server, url = serve(directory / "output")
    clinics = yaml.safe_load(registry.read_text())["clinics"]
    yield url, locations, clinics
    server.shutdown()


def expected_results(point: tuple[float, float], locations: list[tuple[str, float, float, str, str]],
                     clinics: dict[str, Any], radius: float, treatment: str = "", condition: str = "",
                     clinic_count: int = 120) -> list[tuple[str, str, float]]:
    rows = []
    for n, (slug, lat, lon, _city, _state) in enumerate(locations):
        clinic = f"clinic-{n % clinic_count:04d}"
        if treatment and treatment not in clinics[clinic]["services"]:
            continue
        if condition and condition not in clinics[clinic]["conditions"]:
            continue
        rows.append((clinic, slug, great_circle(point, (lat, lon)).miles))
    rows.sort(key=lambda r: (r[2], r[0], r[1]))
    within = [r for r in rows if r[2] <= radius]
    return within or rows[:search_index.NEAREST_FALLBACK]


def shown_results(page: Any) -> list[tuple[str, str, float]]:
    page.wait_for_selector('#results[aria-busy="false"]', state="attached")
    return [(li.get_attribute("data-clinic"), li.get_attribute("data-location"),
             float(li.get_attribute("data-distance-mi"))) for li in page.query_selector_all("#results > li")]


def assert_same_results(shown: list[tuple[str, str, float]], expected: list[tuple[str, str, float]],
                        locations: list[tuple[str, float, float, str, str]], point: tuple[float, float]) -> None:
    # Same locations in the same order (equal distances, as in the tower, by clinic then location slug).
    assert [(c, loc) for c, loc, _ in shown] == [(c, loc) for c, loc, _ in expected]
    where = {slug: (lat, lon) for slug, lat, lon, _c, _s in locations}
    for (_clinic, location, shown_mi), (_c, _l, exact_mi) in zip(shown, expected, strict=True):
        assert abs(shown_mi - exact_mi) <= 0.05 + 1e-9, (location, shown_mi, exact_mi)
        ellipsoidal = geodesic(point, where[location]).miles
        assert abs(shown_mi - ellipsoidal) <= 0.006 * ellipsoidal + 0.1, (location, shown_mi, ellipsoidal)
    assert [d for _c, _l, d in shown] == sorted(d for _c, _l, d in shown), "nearest first"


@pytest.mark.browser
def test_generated_registry_distances_agree_with_geopy(browser: Any, generated_site: Any,
                                                       zip_records: list[dict[str, Any]]) -> None:
    url, locations, clinics = generated_site
    zips = {p.zip_code: p for p in geo.zip_places(zip_records)}
    context = browser.new_context(base_url=url)
    log = RequestLog(origin=url)
    context.on("request", lambda request: log.urls.append(request.url))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    cases = [
        ("60601", {}, 25),                                   # downtown Chicago: the dense, split cells
        ("60601", {"condition": "crps"}, 10),
        ("60601", {"treatment": "nerve-block", "condition": "crps"}, 20),  # both filters at once
        ("60601", {"treatment": "nerve-block", "condition": "sciatica"}, 50),  # no clinic has both
        ("60201", {}, 5),
        ("59001", {}, 10),                                   # rural Montana: nearest fallback
        ("99501", {"treatment": "ketamine-infusion"}, 100),  # Anchorage
        ("96813", {}, 50),                                   # Honolulu
        ("10001", {"condition": "migraine"}, 150),
        ("77494", {}, 300),
        ("33101", {"treatment": "trigger-point-injections"}, 500),
    ]
    for zip_code, filters, radius in cases:
        query = "&".join([f"near={zip_code}", f"radius={radius}", *(f"{k}={v}" for k, v in filters.items())])
        page.goto(f"/find/?{query}")
        point = (zips[zip_code].lat, zips[zip_code].lon)
        expected = expected_results(point, locations, clinics, radius, **filters)
        shown = shown_results(page)
        assert_same_results(shown, expected, locations, point)
        status = page.inner_text("#results-status")
        if not expected:
            assert "No clinic in the directory matches" in status, (query, status)
        elif expected[0][2] > radius:
            assert f"No location within {radius} miles" in status, (query, status)
        else:
            assert f"Found {len(expected)} location" in status, (query, status)
    # A city, and a position from the browser, go through the same arithmetic.
    city = next(p for p in geo.city_places(zip_records) if p.key == "denver" and p.state == "CO")
    page.goto("/find/?near=Denver%2C+CO&radius=400")
    assert_same_results(shown_results(page), expected_results((city.lat, city.lon), locations, clinics, 400),
                        locations, (city.lat, city.lon))
    # Registry text reaches the page as text, never as markup.
    page.goto("/find/?near=60601&radius=60")
    shown_results(page)
    hostile = page.locator("#results > li[data-clinic='clinic-0000']").first
    assert hostile.get_by_role("link", name=HOSTILE_NAME, exact=True).count() == 1
    assert page.locator("#results img, #results script").count() == 0
    context.close()
    assert errors == [] and log.foreign == []

    here = (41.95, -87.65)
    context = browser.new_context(base_url=url, geolocation={"latitude": here[0], "longitude": here[1]},
                                  permissions=["geolocation"])
    page = context.new_page()
    page.goto("/find/?radius=3")
    page.click("#use-my-location")
    page.wait_for_function("() => document.querySelector('#results').getAttribute('aria-busy') === 'false' && "
                           "document.querySelector('#results-status').textContent.includes('your location')")
    assert_same_results(shown_results(page), expected_results(here, locations, clinics, 3), locations, here)
    context.close()


def test_lookup_files_made_in_a_process_of_their_own_are_the_same() -> None:
    """A large registry's build has the ZIP table read in another process (memory); same files."""
    from clinic_directory import geo

    apart = geo.LookupFilesApart().result()
    assert apart == geo.lookup_files_here()
    assert "zip/774.json" in apart and b'"77494"' in apart["zip/774.json"]


def test_a_lookup_process_not_needed_is_stopped() -> None:
    from clinic_directory import geo

    apart = geo.LookupFilesApart()
    apart.close()
    assert apart._process.returncode is not None


def test_a_lookup_process_that_fails_leaves_the_files_to_the_build(caplog: pytest.LogCaptureFixture) -> None:
    """A process that dies (out of memory, killed) costs time, not the build: the files are made here."""
    from clinic_directory import geo

    apart = geo.LookupFilesApart()
    apart._process.kill()
    assert apart.result() == geo.lookup_files_here()
    assert "making them here" in caplog.text


def test_a_lookup_process_stopped_and_continued_still_gives_every_file(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Ctrl-Z then fg during a build stops and continues its processes. One stopped while writing its
    answer into the full pipe must still send all of it, also with PYTHONUNBUFFERED set (containers
    and CI often set it), when one write of an unbuffered stream sends only what the pipe took."""
    import fcntl
    import os
    import signal
    import termios
    import time

    from clinic_directory import geo

    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    apart = geo.LookupFilesApart()
    pipe = apart._process.stdout.fileno()
    waiting = bytearray(4)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the pipe is full: the process is blocked in its write
        fcntl.ioctl(pipe, termios.FIONREAD, waiting)
        if int.from_bytes(waiting, sys.byteorder) >= 65536:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the lookup process never filled its pipe")
    time.sleep(0.2)
    os.kill(apart._process.pid, signal.SIGSTOP)
    time.sleep(0.1)
    os.kill(apart._process.pid, signal.SIGCONT)
    files = apart.result()
    assert "making them here" not in caplog.text  # the answer was whole: nothing was made again here
    assert "zip/774.json" in files and len(files) > 1000
