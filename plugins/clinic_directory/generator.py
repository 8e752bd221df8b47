"""The Pelican stage: registry -> context in ``generate_context``, pages in ``generate_output``.

Pages go through Pelican's writer and the theme's templates, so ``SITEURL``,
``RELATIVE_URLS``, ``OUTPUT_PATH`` and theme overrides behave as for any page.
"""

from __future__ import annotations

import logging
import posixpath
from pathlib import Path
from typing import Any

from pelican.generators import Generator
from pelican.utils import sanitised_join

from . import articles, jsonld, search_index
from .geocode import load_geocoded_registry
from .model import Registry
from .settings import read_plugin_settings
from .urls import safe_href

logger = logging.getLogger(__name__)


def add_template_helpers(generator: Any) -> None:
    """``generator_init`` receiver: filters every generator's templates can use (articles too)."""
    env = getattr(generator, "env", None)
    if env is not None:
        env.filters["safe_href"] = safe_href


class ClinicDirectoryGenerator(Generator):
    """Reads the registry and writes the clinic, physician, treatment, condition and index pages."""

    registry: Registry

    def generate_context(self) -> None:
        plugin = read_plugin_settings(self.settings)
        self.plugin = plugin
        # Coordinates from the registry's geo, else from the committed geocode cache: never the network.
        self.registry = load_geocoded_registry(plugin, label=str(plugin.registry))
        logger.info("Registry %s: %d clinics, %d locations, %d physicians", plugin.registry,
                    len(self.registry.clinics), sum(len(c.locations) for c in self.registry.clinics.values()),
                    len(self.registry.physicians))
        # Shared context: article and home templates read the registry too.
        self.context["registry"] = self.registry
        self.context["directory_urls"] = {kind: url for kind, (url, _) in plugin.urls.patterns.items()}
        self.context["stale_after_days"] = plugin.stale_after_days
        # Articles were read by Pelican's ArticlesGenerator, which runs first: check their
        # metadata against the registry (raises InvalidInput) and link them to entries.
        self.article_index = articles.build_index(self, self.registry)
        self.context["article_meta"] = self.article_index.meta
        self.context["article_jsonld"] = self.article_index.jsonld

    def _write(self, writer: Any, save_as: str, template: str, url: str, **page: Any) -> None:
        writer.write_file(save_as, self.env.get_template(template), self.context,
                          relative_urls=self.settings["RELATIVE_URLS"], url=url, page_url=url, **page)

    def generate_output(self, writer: Any) -> None:
        registry = self.registry
        site_url = self.settings.get("SITEURL", "")
        for clinic in registry.clinics_sorted():
            self._write(writer, clinic.save_as, "clinic.html", clinic.url,
                        clinic=clinic, jsonld=jsonld.clinic_graph(clinic, site_url))
            for location in clinic.locations:
                self._write(writer, location.save_as, "location.html", location.page_url,
                            clinic=clinic, location=location, jsonld=jsonld.location_graph(clinic, location, site_url))
            for physician in clinic.physicians:
                self._write(writer, physician.save_as, "physician.html", physician.url,
                            physician=physician, clinic=clinic,
                            jsonld=jsonld.physician_graph(physician, registry, site_url))
        for entry in [*registry.services.values(), *registry.conditions.values()]:
            self._write(writer, entry.save_as, "entry.html", entry.url, entry=entry, clinics=registry.offering(entry),
                        related_articles=self.article_index.for_entry(entry))
        for kind, entries in (("service", registry.services), ("condition", registry.conditions)):
            url, save_as = self.plugin.urls.for_kind(f"{kind}_index")
            self._write(writer, save_as, "entries.html", url, kind=kind,
                        entries=sorted(entries.values(), key=lambda e: e.name.casefold()))
        url, save_as = self.plugin.urls.for_kind("states")
        self._write(writer, save_as, "states.html", url, groups=registry.by_state())
        self._write(writer, "index.html", "home.html", "", groups=registry.by_state())
        # The 404 page is served at any depth, so its links must not be relative.
        root = "" if self.settings["RELATIVE_URLS"] else self.settings.get("SITEURL", "")
        self._write(writer, "404.html", "404.html", "404.html", root_url=root)
        self._write(writer, "robots.txt", "robots.txt", "robots.txt")
        # Security and privacy response headers for hosts that read a _headers file (README, "Quality gates").
        self._write(writer, "_headers", "_headers", "_headers")
        self._write_find(writer)

    def _write_find(self, writer: Any) -> None:
        """The search page, and beside it the data it searches: lookup shards and the location index."""
        import zipcodes  # the ZIP and city table; read here, in the build, not on import

        url, save_as = self.plugin.urls.for_kind("find")
        data_dir = posixpath.join(posixpath.dirname(save_as), "data")
        self._write(writer, save_as, "find.html", url, groups=self.registry.by_state(),
                    search_data_url=f"{data_dir}/", **search_index.page_context(self.registry))
        files = search_index.data_files(self.registry, zipcodes.list_all())
        for relative, content in files.items():
            path = Path(sanitised_join(self.output_path, data_dir, relative))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        logger.info("Search data: %d files, %d bytes in %s/", len(files), sum(map(len, files.values())), data_dir)
