"""US ZIP and city coordinates, great-circle distances, and the lookup shards the search page loads.

Everything here is a pure function of its arguments. The ZIP table comes from the
``zipcodes`` package (a maintained copy of the USPS ZIP list with centroids), read
once per build by the generator and passed in; nothing here touches the network.

The search page (``theme/static/js/find.js``) mirrors three things from this module
and must stay in step with it: ``EARTH_RADIUS_MI`` and ``distance_mi`` (haversine on
geopy's mean Earth radius), ``normalize_city`` and ``city_shard_key``.
"""

from __future__ import annotations

import json
import logging
import marshal
import math
import os
import re
import subprocess
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# geopy.distance.EARTH_RADIUS (6371.009 km, the IUGG mean radius) in statute miles,
# so that our distances agree with geopy's great_circle to the last digit shown.
EARTH_RADIUS_MI = 6371.009 / 1.609344

ZIP_RE = re.compile(r"^[0-9]{5}$")
# Word abbreviations a person types for what the USPS list spells out ("St Louis" is "Saint Louis").
# The USPS list's own short forms (in the names it also accepts, "Arlington Hts") are spelled out too.
CITY_WORDS = {
    "st": "saint", "ste": "sainte", "ft": "fort", "mt": "mount", "mtn": "mountain", "pt": "point",
    "n": "north", "s": "south", "e": "east", "w": "west", "no": "north", "so": "south",
    "hts": "heights", "spgs": "springs", "spg": "springs", "twp": "township", "bch": "beach", "vlg": "village",
    "cty": "city", "ctr": "center", "hls": "hills", "hl": "hill", "vly": "valley", "lk": "lake", "lks": "lakes",
    "jct": "junction", "pk": "park", "sta": "station", "fls": "falls", "crk": "creek", "hbr": "harbor",
    "prt": "port", "grv": "grove", "isl": "island", "rdg": "ridge", "rvr": "river", "mnr": "manor",
    "sq": "square", "brg": "bridge", "brk": "brook", "ter": "terrace",
}
CITY_SHARDS = 512
ZIP_SHARD_LENGTH = 3
COORDINATE_DIGITS = 4  # the package's own precision (about 11 m)


@dataclass(frozen=True, order=True)
class ZipPlace:
    zip_code: str
    lat: float
    lon: float
    city: str
    state: str


@dataclass(frozen=True, order=True)
class CityPlace:
    key: str  # normalize_city(name)
    state: str
    name: str
    lat: float
    lon: float


def distance_mi(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in statute miles (haversine; agrees with geopy's ``great_circle``)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlam = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_MI * math.asin(min(1.0, math.sqrt(h)))


def normalize_city(name: str) -> str:
    """The form cities are matched in: ASCII letters and digits, lower case, abbreviations spelled out.

    Spaces and punctuation are dropped after the abbreviations are expanded, so
    ``"St. Louis"``, ``"saint louis"`` and ``"Saint-Louis"`` all give ``"saintlouis"``, and
    ``"Coeur d'Alene"`` matches the USPS spelling ``"Coeur D Alene"``.
    """
    if name.isascii():
        text = name.lower()
    else:
        text = unicodedata.normalize("NFKD", name)
        text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    words = re.sub(r"[^a-z0-9]+", " ", text).split()
    return "".join(CITY_WORDS.get(word, word) for word in words)


def city_shard_key(normalized: str) -> str:
    """Which city shard holds a normalized name: FNV-1a (32 bit) of its UTF-8 bytes, modulo 512, in hex.

    A hash, not a prefix: prefixes crowd ("west...", "north...") while a hash spreads
    the 40,000 names evenly, so every lookup loads about 3 kB.
    """
    value = 0x811C9DC5
    for byte in normalized.encode("utf-8"):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{value % CITY_SHARDS:03x}"


def zip_places(records: Iterable[Mapping[str, Any]]) -> list[ZipPlace]:
    """ZIP codes with usable coordinates from ``zipcodes.list_all()`` records, sorted by ZIP.

    Military (APO/FPO) codes carry 0,0 as their position and are left out: they say
    nothing about where a person is.
    """
    places: dict[str, ZipPlace] = {}
    for record in records:
        code = str(record.get("zip_code", ""))
        try:
            lat, lon = float(record["lat"]), float(record["long"])
        except (KeyError, TypeError, ValueError):
            continue
        if not ZIP_RE.match(code) or (lat == 0 and lon == 0) or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            continue
        places[code] = ZipPlace(code, round(lat, COORDINATE_DIGITS), round(lon, COORDINATE_DIGITS),
                                str(record.get("city", "")), str(record.get("state", "")))
    return [places[code] for code in sorted(places)]


def city_places(records: Iterable[Mapping[str, Any]]) -> list[CityPlace]:
    """One place per (city, state): the mean of its ZIP centroids, sorted by key then state.

    A city's position is the mean of its standard (street-delivery) ZIP codes when it
    has any, else of all its codes. Names the USPS also accepts for a ZIP ("Fulshear"
    for 77494) are added when no ZIP in that state has them as their main name.
    """
    normalized: dict[str, str] = {}

    def norm(name: str) -> str:
        if name not in normalized:
            normalized[name] = normalize_city(name)
        return normalized[name]

    # (key, state) -> [(lat, lon, standard, spelling)], for main names and for accepted ones.
    primary: dict[tuple[str, str], list[tuple[float, float, bool, str]]] = defaultdict(list)
    secondary: dict[tuple[str, str], list[tuple[float, float, bool, str]]] = defaultdict(list)
    for record in records:
        try:
            lat, lon = float(record["lat"]), float(record["long"])
        except (KeyError, TypeError, ValueError):
            continue
        if lat == 0 and lon == 0:
            continue
        state = str(record.get("state", ""))
        standard = record.get("zip_code_type") == "STANDARD"
        city = str(record.get("city", ""))
        if norm(city):
            primary[(norm(city), state)].append((lat, lon, standard, city))
        for other in record.get("acceptable_cities") or ():
            if norm(str(other)):
                secondary[(norm(str(other)), state)].append((lat, lon, standard, str(other)))
    for key, points in secondary.items():
        if key not in primary:
            primary[key] = points
    places = []
    for (key, state), points in primary.items():
        chosen = [p for p in points if p[2]] or points
        lat = sum(p[0] for p in chosen) / len(chosen)
        lon = sum(p[1] for p in chosen) / len(chosen)
        spellings: dict[str, int] = defaultdict(int)
        for point in points:
            spellings[point[3]] += 1
        name = min(spellings, key=lambda n: (-spellings[n], n))
        places.append(CityPlace(key, state, name, round(lat, COORDINATE_DIGITS), round(lon, COORDINATE_DIGITS)))
    return sorted(places, key=lambda p: (p.key, p.state))


def zip_shards(places: Iterable[ZipPlace]) -> dict[str, dict[str, list[Any]]]:
    """ZIP prefix -> ``{zip: [lat, lon, city, state]}``: a query loads one shard of about 50 ZIPs.

    Every prefix has a shard, empty when no ZIP code starts with it, so that any
    5-digit input is answered from a file rather than a 404.
    """
    shards: dict[str, dict[str, list[Any]]] = {f"{n:0{ZIP_SHARD_LENGTH}d}": {} for n in range(10**ZIP_SHARD_LENGTH)}
    for place in places:
        shards[place.zip_code[:ZIP_SHARD_LENGTH]][place.zip_code] = [place.lat, place.lon, place.city, place.state]
    return shards


def city_shards(places: Iterable[CityPlace]) -> dict[str, dict[str, list[list[Any]]]]:
    """Shard key -> ``{normalized name: [[name, state, lat, lon], ...]}`` (states in order)."""
    shards: dict[str, dict[str, list[list[Any]]]] = {f"{n:03x}": {} for n in range(CITY_SHARDS)}
    for place in sorted(places, key=lambda p: (p.key, p.state)):
        shards[city_shard_key(place.key)].setdefault(place.key, []).append([place.name, place.state, place.lat,
                                                                           place.lon])
    return shards


def state_city_names(places: Iterable[CityPlace]) -> dict[str, list[str]]:
    """State -> its city names in order: what "did you mean" suggestions are picked from."""
    names: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for place in places:
        names[place.state].add((place.key, place.name))
    return {state: [name for _key, name in sorted(value)] for state, value in names.items()}


def compact_json(data: Any) -> bytes:
    """The one way every search data file is written: sorted keys, no spaces, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def lookup_files(records: Iterable[Mapping[str, Any]]) -> dict[str, bytes]:
    """Every lookup shard as ``relative path -> bytes``.

    ``zip/<first 3 digits>.json``, ``city/<city_shard_key>.json`` and
    ``city-names/<state>.json`` (loaded only to suggest a spelling).
    """
    records = list(records)
    cities = city_places(records)
    files = {f"zip/{prefix}.json": compact_json(shard) for prefix, shard in zip_shards(zip_places(records)).items()}
    files.update({f"city/{key}.json": compact_json(shard) for key, shard in city_shards(cities).items()})
    files.update({f"city-names/{state}.json": compact_json(names)
                  for state, names in state_city_names(cities).items()})
    return dict(sorted(files.items()))


def lookup_files_here() -> dict[str, bytes]:
    """``lookup_files`` of the ``zipcodes`` table, in this process."""
    import zipcodes  # the table is read on first use, here, in the build: not on import

    return lookup_files(zipcodes.list_all())


class LookupFilesApart:
    """``lookup_files_here`` in a Python process of its own, started at once.

    The ZIP table is 42,000 records: reading it and making the shards takes some 200 MB,
    which a large registry's build would otherwise carry on top of its registry at its
    peak (the package also keeps the table). And the shards need nothing of the registry,
    so the process makes them while the build renders its pages. ``result()`` waits for
    them; ``close()`` stops a process whose shards turned out not to be needed.
    """

    def __init__(self) -> None:
        plugins = str(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [plugins, os.environ.get("PYTHONPATH")]))}
        # The cyclic collector is off in that short-lived process: the table's 42,000 records and the
        # shards made from them hold no cycles, and scanning them again and again takes a third of its time.
        # The answer is written until all of it is out: with PYTHONUNBUFFERED set, sys.stdout.buffer is
        # unbuffered, and one write into a full pipe stopped and continued (Ctrl-Z, then fg) writes part.
        code = ("import gc, marshal, os\n"
                "gc.disable()\n"
                "from clinic_directory.geo import lookup_files_here\n"
                "answer = memoryview(marshal.dumps(lookup_files_here()))\n"
                "while answer:\n"
                "    answer = answer[os.write(1, answer):]\n")
        self._process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env)

    def result(self) -> dict[str, bytes]:
        """The shards; made here after all when the process failed or its answer is unreadable
        (the build is slower and larger for it, not wrong)."""
        out, err = self._process.communicate()
        try:
            if self._process.returncode != 0:
                raise ValueError(f"it exited with status {self._process.returncode}")
            files: dict[str, bytes] = marshal.loads(out)
            return files
        except (ValueError, EOFError, TypeError) as error:
            logger.warning("The process making the ZIP and city lookup files failed (%s); making them here.\n%s",
                           error, err.decode(errors="replace").strip())
            return lookup_files_here()

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.communicate()
