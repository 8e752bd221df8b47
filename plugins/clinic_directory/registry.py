"""Registry file -> validated model, the one entry point every command uses."""

from __future__ import annotations

from pathlib import Path

import yaml

from .cache import paused_gc
from .model import Geo, Registry, build_registry
from .problems import InvalidInput, Problem
from .source import read_yaml
from .urls import UrlPatterns
from .validate import validate_registry

REGISTRY_WHAT = "registry (a mapping with schema, services, conditions, clinics)"


def read_registry(path: Path, max_bytes: int, label: str | None = None) \
        -> tuple[yaml.Node | None, dict | None, list[Problem]]:
    """The registry's node tree (None when unreadable), its validated data (None when unusable) and
    every problem found: the nodes say on which line something is."""
    label = label or str(path)
    with paused_gc():
        source = read_yaml(path, label, max_bytes, what=REGISTRY_WHAT)
        if source.root is None:
            return None, None, list(source.problems)
        data, problems = validate_registry(label, source.root)
    return source.root, data, [*source.problems, *problems]


def check_registry(path: Path, max_bytes: int, label: str | None = None) -> tuple[dict | None, list[Problem]]:
    """Plain validated data and every problem found (the data is None when unusable)."""
    _root, data, problems = read_registry(path, max_bytes, label)
    return data, problems


def load_registry(path: Path, max_bytes: int, urls: UrlPatterns,
                  geocoded: dict[str, Geo] | None = None, label: str | None = None) -> Registry:
    """The registry model; raises ``InvalidInput`` listing every problem if there is any."""
    data, problems = check_registry(path, max_bytes, label)
    if problems or data is None:
        raise InvalidInput(problems)
    return build_registry(data, urls, geocoded)
