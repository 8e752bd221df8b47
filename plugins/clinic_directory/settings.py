"""The plugin's settings: defaults in one place, read once into a frozen object.

Pelican's settings dict is only read, never written. Unknown ``CLINIC_DIRECTORY_*``
keys and values of the wrong type are reported, not ignored: a typo in a setting
must not silently fall back to a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .urls import UrlPatterns

PREFIX = "CLINIC_DIRECTORY_"

# name -> (default, help). The README's settings table is checked against this.
DEFAULTS: dict[str, tuple[Any, str]] = {
    "REGISTRY": ("clinics.yaml", "path of the clinic registry, relative to the working directory"),
    "MAX_REGISTRY_BYTES": (64 * 1024 * 1024, "a registry file larger than this is refused"),
    "STALE_AFTER_DAYS": (365, "a clinic whose last_verified is older shows a 'may be out of date' note"),
    "GEOCODE_CACHE": ("geocode-cache.json", "committed cache of geocoded addresses (see `make geocode`)"),
    "GEOCODER_USER_AGENT": ("", "user agent `make geocode` sends to Nominatim: name the site and a contact"),
    "UPDATES_EMAIL": ("", "where the profile-update form tells clinics to email their update file; "
                          "empty: 'the directory's maintainers', without an address"),
    "PUBLISH_TARGET": ("", "where `make publish` deploys when no TARGET= is given (a directory, user@host:path, "
                           "s3://bucket/prefix or ghpages:<git remote>)"),
    "PUBLISH_DIR": (".publish", "where `make publish` builds the site it deploys, with its own cache"),
    "CACHE": ("cache", "directory for build caches (parsed registry, rendered pages); empty turns caching off"),
    "URLS": ({
        "clinic": ("clinics/{slug}/", "clinics/{slug}/index.html"),
        "location": ("clinics/{clinic}/locations/{slug}/", "clinics/{clinic}/locations/{slug}/index.html"),
        "refer": ("clinics/{slug}/refer/", "clinics/{slug}/refer/index.html"),
        "update": ("clinics/{slug}/update/", "clinics/{slug}/update/index.html"),
        "physician": ("physicians/{slug}/", "physicians/{slug}/index.html"),
        "service": ("treatments/{slug}/", "treatments/{slug}/index.html"),
        "condition": ("conditions/{slug}/", "conditions/{slug}/index.html"),
        "states": ("clinics/", "clinics/index.html"),
        "service_index": ("treatments/", "treatments/index.html"),
        "condition_index": ("conditions/", "conditions/index.html"),
        "find": ("find/", "find/index.html"),
    }, "URL and save_as pattern per page kind"),
}


@dataclass(frozen=True)
class PluginSettings:
    registry: Path
    max_registry_bytes: int
    stale_after_days: int
    geocode_cache: Path
    urls: UrlPatterns
    geocoder_user_agent: str = ""
    updates_email: str = ""
    cache: Path | None = None  # None: no caching
    publish_target: str = ""
    publish_dir: Path = Path(".publish")


class SettingsError(Exception):
    """A setting with a wrong name or type; the message names it."""


def read_plugin_settings(settings: Mapping[str, Any]) -> PluginSettings:
    """Lay the site's ``CLINIC_DIRECTORY_*`` values over the defaults (neither is modified)."""
    problems = [f"{key}: unknown setting; known settings are {', '.join(PREFIX + k for k in DEFAULTS)}"
                for key in settings if key.startswith(PREFIX) and key[len(PREFIX):] not in DEFAULTS]
    values: dict[str, Any] = {}
    for name, (default, _help) in DEFAULTS.items():
        value = settings.get(PREFIX + name, default)
        if isinstance(default, dict):
            if not isinstance(value, dict):
                problems.append(f"{PREFIX}{name}: expected a dict, got {type(value).__name__}")
                continue
            value = {**default, **value}
        elif not isinstance(value, type(default)) or isinstance(value, bool) != isinstance(default, bool):
            problems.append(f"{PREFIX}{name}: expected {type(default).__name__}, got {type(value).__name__} {value!r}")
            continue
        values[name] = value
    if problems:
        raise SettingsError("\n".join(problems))
    return PluginSettings(
        registry=Path(values["REGISTRY"]),
        max_registry_bytes=values["MAX_REGISTRY_BYTES"],
        stale_after_days=values["STALE_AFTER_DAYS"],
        geocode_cache=Path(values["GEOCODE_CACHE"]),
        geocoder_user_agent=values["GEOCODER_USER_AGENT"],
        updates_email=values["UPDATES_EMAIL"],
        cache=Path(values["CACHE"]) if values["CACHE"] else None,
        publish_target=values["PUBLISH_TARGET"],
        publish_dir=Path(values["PUBLISH_DIR"]),
        urls=UrlPatterns({kind: tuple(pair) for kind, pair in values["URLS"].items()}),
    )
