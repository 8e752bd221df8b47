"""The Pelican stage: registry -> context in ``generate_context``, pages in ``generate_output``.

Pages go through Pelican's writer and the theme's templates, so ``SITEURL``,
``RELATIVE_URLS``, ``OUTPUT_PATH`` and theme overrides behave as for any page.
"""

from __future__ import annotations

import functools
import gc
import logging
import posixpath
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from pelican.generators import Generator
from pelican.utils import get_relative_path, path_to_url, sanitised_join

from . import articles, directory_search, geo, jsonld, search_index
from .cache import ClinicMemo, PageKeys, RegistryCache, Unstable, code_digest, digest, paused_gc, stable_repr
from .deploy import SITE_MARKER, SITE_MARKER_TEXT
from .geocode import load_geocoded_registry
from .model import Clinic, ClinicSummary, ListedClinic, Registry, StateCount
from .parallel import Apart, render_pages
from .progress import Progress
from .settings import read_plugin_settings
from .urls import safe_href

logger = logging.getLogger(__name__)


def add_template_helpers(generator: Any) -> None:
    """``generator_init`` receiver: filters every generator's templates can use (articles too), and
    compiled templates kept in the cache directory (compiling the theme takes a third of a second)."""
    env = getattr(generator, "env", None)
    if env is None:
        return
    env.filters["safe_href"] = safe_href
    if env.bytecode_cache is None:
        env.bytecode_cache = template_bytecode_cache(generator.settings)


def template_bytecode_cache(settings: Mapping[str, Any]) -> jinja2.BytecodeCache | None:
    """Jinja's cache of compiled templates, in the build cache. Jinja checks each template's source
    and its own version; the environment's options (which shape the compiled code) and this plugin's
    code name the directory."""
    directory = read_plugin_settings(settings).cache
    if directory is None:
        return None
    try:
        options = stable_repr(settings.get("JINJA_ENVIRONMENT", {}), callables=True)
    except Unstable:
        return None
    path = directory / "templates" / digest(code_digest(), options)[:16]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(path))


def listed(page: Mapping[str, Any]) -> str:
    """The digest of a page's keyword arguments, when they are plain records (frozen dataclasses,
    tuples, lists, strings, numbers), whose ``repr`` is the same in every process."""
    return digest(repr(sorted(page.items())))


# The keyword arguments of a clinic's pages by kind (``_clinic_page``): their names are part of the pages' keys.
CLINIC_PAGE_ARGUMENTS = {"clinic": ("clinic", "jsonld"), "refer": ("clinic",),
                         "update": ("clinic", "update_data"),
                         "location": ("clinic", "location", "jsonld"), "physician": ("physician", "clinic", "jsonld")}
APART_FROM = 500  # clinics: from here, the lookup shards and the location index are made in processes of their own


class Deferred(functools.partial):  # type: ignore[type-arg]
    """A page argument computed only if the page has to be rendered (not when it is reused)."""


def listed_clinics(summaries: Mapping[str, ClinicSummary], slugs: Iterable[str]) -> list[ListedClinic]:
    return [summaries[slug].listed_clinic() for slug in slugs]


class ClinicDirectoryGenerator(Generator):
    """Reads the registry and writes the clinic, physician, treatment, condition and index pages."""

    registry: Registry

    def generate_context(self) -> None:
        plugin = read_plugin_settings(self.settings)
        self.plugin = plugin
        # Coordinates from the registry's geo, else from the committed geocode cache: never the network.
        self.registry_cache = RegistryCache(plugin.cache, apart_from=APART_FROM)
        self.registry = load_geocoded_registry(plugin, label=str(plugin.registry), registry_cache=self.registry_cache)
        self.registry_cache.release_clinics()
        # The registry lives as long as the build: keep its millions of objects out of every later
        # collection of the cyclic garbage collector (each one would scan them all).
        gc.freeze()
        logger.info("Registry %s: %d clinics, %d locations, %d physicians", plugin.registry,
                    len(self.registry.clinics), self.registry.location_count, len(self.registry.physicians))
        # Shared context: article and home templates read the registry too.
        self.context["registry"] = self.registry
        self.context["directory_urls"] = {kind: url for kind, (url, _) in plugin.urls.patterns.items()}
        self.context["stale_after_days"] = plugin.stale_after_days
        self.context["updates_email"] = plugin.updates_email
        # The clinic and physician index sits beside the site search page.
        self.directory_search_dir = posixpath.join(posixpath.dirname(self.settings.get("SEARCH_SAVE_AS", "")
                                                                     or "search/index.html"), "directory")
        self.context["directory_search_url"] = f"{self.directory_search_dir}/"
        # Articles were read by Pelican's ArticlesGenerator, which runs first: check their
        # metadata against the registry (raises InvalidInput) and link them to entries.
        self.article_index = articles.build_index(self, self.registry)
        self.context["article_meta"] = self.article_index.meta
        self.context["article_jsonld"] = self.article_index.jsonld

    def _write(self, writer: Any, save_as: str, template: str, url: str, inputs: str | None = None,
               **page: Any) -> None:
        """Queue ``template`` to be rendered into ``save_as``, unless the writer can reuse that page.
        ``Deferred`` arguments are computed only for a page that is rendered."""
        if not self._reused(writer, template, save_as, url, inputs, page):
            self.queued.append((save_as, template, url, page))

    def _reused(self, writer: Any, template: str, save_as: str, url: str, inputs: str | None,
                names: Iterable[str]) -> bool:
        """Whether the writer can reuse the page ``save_as`` rendered from ``template`` with keyword
        arguments ``names`` (it is then done, and counted).

        ``inputs`` is a digest of what the keyword arguments are made from, besides the
        inputs all pages share (settings, theme, code, services and conditions): a
        clinic's pages give that clinic's digest. None stands for all of the build's
        inputs, which is always right.
        """
        if self.page_keys is None:
            return False
        key = self.page_keys.key(template, save_as, url, inputs or self.page_keys.everything, names)
        if writer.reuse(save_as, key):
            self.progress.step()
            return True
        if not self.page_keys.marks(template):
            writer.page_store.unmarked.add(save_as)
        return False

    def _render(self, writer: Any, save_as: str, template: str, url: str, page: dict[str, Any]) -> None:
        page = {name: value() if isinstance(value, Deferred) else value for name, value in page.items()}
        context = self._context_of(template)
        if context is not self.context and self.settings["RELATIVE_URLS"]:
            # What Pelican's writer does to the context it is given: articles (Pelican's Content objects)
            # make their links relative to this page from it.
            self.context["localsiteurl"] = path_to_url(get_relative_path(save_as))
        writer.write_file(save_as, self.env.get_template(template), context,
                          relative_urls=self.settings["RELATIVE_URLS"], url=url, page_url=url, **page)
        self.progress.step()

    def _context_of(self, template: str) -> dict[str, Any]:
        """The part of the shared context ``template`` reads, when the page keys know it (else all of it).

        Pelican's writer and Jinja each copy the context for every page (three copies of some
        170 entries, for 60,000 pages: a tenth of the rendering), and a template reads a few
        dozen of them. What it reads is what its pages' keys are made from, so it is known.
        """
        if template not in self._contexts:
            names = self.page_keys.variables(template) if self.page_keys is not None else None
            self._contexts[template] = self.context if names is None else {
                name: self.context[name] for name in sorted(names) if name in self.context}
        return self._contexts[template]

    def _write_files(self, writer: Any, group: str, directory: str, inputs: str | None,
                     make: Callable[[], Mapping[str, bytes]]) -> None:
        """Write the files ``make`` returns (relative path -> bytes) under ``directory``; with
        a writer that can reuse them, only when it has none made from the same ``inputs``."""
        key = self._group_key(group, directory, inputs)
        if key is not None:
            writer.write_group(group, directory, key, make)
            return
        for relative, content in make().items():
            path = Path(sanitised_join(self.output_path, directory, relative))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)

    def _group_key(self, group: str, directory: str, inputs: str | None) -> str | None:
        """The key of a group of files, when the writer can reuse them."""
        if self.page_keys is None:
            return None
        return digest(self.page_keys.base, group, directory, inputs or self.page_keys.everything)

    def _keys_for(self, writer: Any) -> PageKeys | None:
        """Page keys, when the writer can reuse pages (``build.py``'s can; plain ``pelican``'s cannot)."""
        store = getattr(writer, "page_store", None)
        if store is None:
            return None
        data = self.registry_cache.data
        assert data is not None
        shared = digest(store.inputs.shared, stable_repr(data["services"]), stable_repr(data["conditions"]))
        # Pelican's articles are made from the content (and the settings and code: in every key).
        tokens = {"registry": store.inputs.registry, "articles": store.inputs.content}
        # What templates read depends on the theme, the settings and the code: the shared inputs.
        analysis = store.cache_dir / "templates" / f"{store.inputs.shared[:16]}.marshal"
        return PageKeys(self.env, self.context, shared, tokens, store.inputs.everything, analysis)

    def generate_output(self, writer: Any) -> None:
        # Templates do not change during a build: without this, Jinja would look at the files of
        # a page's templates (three stats) for each of 60,000 pages.
        self.env.auto_reload = False
        registry = self.registry
        site_url = self.settings.get("SITEURL", "")
        self.page_keys = self._keys_for(writer)
        digests = self.registry_cache.clinic_digests if self.page_keys is not None else {}
        with paused_gc():  # a first build makes every clinic's model here: millions of objects, no cycles
            summaries = self._summaries()
        pages = sum(len(summary.pages) for summary in summaries.values())
        self.progress = Progress("Pages", pages + len(registry.services) + len(registry.conditions) + 10)
        self.queued: list[tuple[str, str, str, dict[str, Any]]] = []
        self._contexts: dict[str, dict[str, Any]] = {}
        # What the update form offers to choose from: every treatment and condition, by name (they are
        # among the inputs all pages share, so the pages' keys need not name them).
        self._choices = {name: [[entry.slug, entry.name] for entry in sorted(entries.values(),
                                                                            key=lambda e: e.name.casefold())]
                         for name, entries in (("services", registry.services), ("conditions", registry.conditions))}
        # The search data first: making it takes memory for a moment, which the pages queued
        # below can then reuse (the other way round, it would add to the build's peak).
        state_counts = registry.state_counts(summaries)
        find_url, find_save_as = self.plugin.urls.for_kind("find")
        data_dir = posixpath.join(posixpath.dirname(find_save_as), "data")
        # The ZIP and city lookup shards depend on the ZIP table alone (its version is a shared input).
        # For a large registry they are made in a process of its own, beside the rendering (geo.py);
        # for a small one, starting Python again costs more than that saves.
        lookup_key = self._group_key("lookup", data_dir, "zip table")
        apart = (geo.LookupFilesApart() if len(registry.clinics) >= APART_FROM
                 and not (lookup_key and writer.has_group("lookup", lookup_key)) else None)
        # The location index is made from the model alone: for a large registry, in a forked process
        # beside the pages' keys (or their rendering), when neither the output nor the cache has it.
        # It is written after the pages.
        registry_digest = self.page_keys.tokens["registry"] if self.page_keys is not None else None
        locations_key = self._group_key("locations", data_dir, registry_digest)
        locations = (Apart(lambda _none: self._location_index(), None,
                           fork=len(registry.clinics) >= APART_FROM)
                     if not (locations_key and writer.has_group("locations", locations_key)) else None)
        try:
            self._write_find(writer, find_url, find_save_as, data_dir, state_counts)
            self._write_directory_search(writer)
            self._queue_pages(writer, site_url, digests, summaries, state_counts)
            if self.page_keys is not None:
                writer.page_store.link_restored()
            logger.info("Pages: %d to render, %d unchanged; clinic models made: %d of %d", len(self.queued),
                        self.progress.count, registry.clinics.made, len(registry.clinics))
            logger.debug("Rendering: %s", " ".join(sorted(save_as for save_as, *_rest in self.queued)))
            render_pages(self.queued, lambda page: self._render(writer, *page), self.progress,
                         group_of=lambda page: page[3].get("clinic"))
            if self.page_keys is not None:
                self.page_keys.save_analysis()
            self.queued = []  # 60,000 pages' arguments: what follows (the manifest) can use the memory
            self._write_files(writer, "locations", data_dir, registry_digest,
                              lambda: (locations.result() if locations else None) or self._location_index())
            self._write_files(writer, "lookup", data_dir, "zip table",
                              apart.result if apart is not None else geo.lookup_files_here)
        finally:
            if apart is not None:
                apart.close()
            if locations is not None:
                locations.close()
            self.registry_cache.close()
        self.progress.done()

    def _queue_pages(self, writer: Any, site_url: str, digests: Mapping[str, str],
                     summaries: Mapping[str, ClinicSummary], state_counts: list[StateCount]) -> None:
        """Every page: rendered later (``self.queued``), unless the writer can reuse it."""
        registry = self.registry
        for slug, summary in summaries.items():
            # A clinic's pages are made from that clinic's entry alone (and the shared inputs).
            self._queue_clinic(writer, slug, summary, digests.get(slug), site_url)
        # Pages that list many clinics are given only what they print (model.Listed, ListedClinic,
        # StateCount), and keyed by exactly that, as the clinics' summaries hold it: an edit that
        # changes none of it re-renders none of them. The records are made only for a page rendered.
        # (A clinic is listed on many entry pages: its part of their keys is made once.)
        listed_reprs = {slug: repr(summary.listed) for slug, summary in summaries.items()}
        for entry in [*registry.services.values(), *registry.conditions.values()]:
            offering = registry.offering_slugs(entry)
            related = self.article_index.for_entry(entry)
            # One part for the listed clinics, not one each (a repr has no raw newline): 30 pages list 5,000.
            inputs = digest(repr(entry), repr(related), "\n".join([listed_reprs[slug] for slug in offering]))
            self._write(writer, entry.save_as, "entry.html", entry.url, inputs, entry=entry, related_articles=related,
                        clinics=Deferred(listed_clinics, summaries, offering))
        for kind, entries in (("service", registry.services), ("condition", registry.conditions)):
            url, save_as = self.plugin.urls.for_kind(f"{kind}_index")
            page = {"kind": kind, "entries": [(entry, registry.count_offering(entry))  # with its clinic count
                                              for entry in sorted(entries.values(), key=lambda e: e.name.casefold())]}
            self._write(writer, save_as, "entries.html", url, listed(page), **page)
        url, save_as = self.plugin.urls.for_kind("states")
        locations = digest("\n".join([repr(summary.locations) for summary in summaries.values()]))
        self._write(writer, save_as, "states.html", url, locations, groups=Deferred(registry.by_state, summaries))
        # Sorted as Jinja's sort filter would (ignoring case), which the home page once used.
        entries = {name: sorted(values.values(), key=lambda e: e.name.lower())
                   for name, values in (("services", registry.services), ("conditions", registry.conditions))}
        page = {"state_counts": state_counts, **entries}
        self._write(writer, "index.html", "home.html", "", listed(page), **page)
        # The 404 page is served at any depth, so its links must not be relative.
        root = "" if self.settings["RELATIVE_URLS"] else self.settings.get("SITEURL", "")
        self._write(writer, "404.html", "404.html", "404.html", listed({"root_url": root}), root_url=root)
        self._write(writer, "robots.txt", "robots.txt", "robots.txt", listed({}))
        # Security and privacy response headers for hosts that read a _headers file (README, "Quality gates").
        self._write(writer, "_headers", "_headers", "_headers", listed({}))
        # Says "make publish put this site here" to the next publish (deploy.py).
        self._write_files(writer, "marker", "", "marker", lambda: {SITE_MARKER: SITE_MARKER_TEXT})

    def _queue_clinic(self, writer: Any, slug: str, summary: ClinicSummary, inputs: str | None,
                      site_url: str) -> None:
        """A clinic's pages (its own, its locations', its physicians'), each rendered unless the writer
        can reuse it. The clinic's model is made only when one of them is rendered."""
        clinic = None
        for kind, item, url, save_as in summary.pages:
            template = f"{kind}.html"
            if self._reused(writer, template, save_as, url, inputs, CLINIC_PAGE_ARGUMENTS[kind]):
                continue
            clinic = clinic or self.registry.clinics[slug]
            page = self._clinic_page(clinic, kind, item, site_url)
            assert page.keys() == set(CLINIC_PAGE_ARGUMENTS[kind]), "the page's key names its arguments"
            self.queued.append((save_as, template, url, page))

    def _clinic_page(self, clinic: Clinic, kind: str, slug: str, site_url: str) -> dict[str, Any]:
        """The keyword arguments of a clinic's page of ``kind`` (for the location or physician ``slug``)."""
        if kind == "clinic":
            return {"clinic": clinic, "jsonld": Deferred(jsonld.clinic_graph, clinic, site_url)}
        if kind == "refer":
            return {"clinic": clinic}
        if kind == "update":
            return {"clinic": clinic, "update_data": Deferred(self._update_data, clinic)}
        if kind == "location":
            location = next(location for location in clinic.locations if location.slug == slug)
            return {"clinic": clinic, "location": location,
                    "jsonld": Deferred(jsonld.location_graph, clinic, location, site_url)}
        physician = next(physician for physician in clinic.physicians if physician.slug == slug)
        return {"physician": physician, "clinic": clinic,
                "jsonld": Deferred(jsonld.physician_graph, physician, self.registry, site_url)}

    def _update_data(self, clinic: Clinic) -> Markup:
        """What the update form is made from (update.js): the clinic's entry as the registry holds it,
        and the treatments and conditions it may choose from."""
        return jsonld.script_json_in_order({"entry": clinic.raw, **self._choices})

    def _summaries(self) -> dict[str, ClinicSummary]:
        """Every clinic's summary (``model.ClinicSummary``), by clinic name. They are kept between
        builds by the clinic's digest: after an edit, only the edited clinic's model is made."""
        memo = self._memo("clinic-summaries")
        if memo is None:
            return self.registry.summaries()
        digests, clinics = self.registry_cache.clinic_digests, self.registry.clinics
        summaries = {slug: ClinicSummary._make(memo.get(
            digests.get(slug), lambda slug=slug: tuple(ClinicSummary.of(clinics[slug]))))
            for slug in self.registry.slugs_sorted}
        memo.save()
        return summaries

    def _write_directory_search(self, writer: Any) -> None:
        """Site search: Pagefind reads the education pages after the build; clinics and physicians
        are in an index of their own, made from the registry (directory_search.py)."""
        parts = self._memo("directory-digests")
        if parts is None:
            documents = directory_search.documents(self.registry)
            self._write_files(writer, "directory", self.directory_search_dir, None,
                              lambda: directory_search.index_files(documents))
            return
        # The digest of each clinic's documents is kept apart from the documents (a tenth of a second
        # to read at 10,000 clinics): the digests in the clinics' order stand for the whole index, and
        # most edits (a phone, hours) change no document, so the documents are read only when the
        # index has to be made again.
        digests, clinics, slugs = self.registry_cache.clinic_digests, self.registry.clinics, self.registry.slugs_sorted
        made_now: dict[str, directory_search.ClinicDocuments] = {}

        def part_of(slug: str) -> str:
            made_now[slug] = directory_search.clinic_documents(clinics[slug])
            return digest(repr(made_now[slug]))

        inputs = digest("\n".join([parts.get(digests.get(slug), functools.partial(part_of, slug)) for slug in slugs]))
        parts.save()

        def make() -> dict[str, bytes]:
            memo = self._memo("directory-documents")
            assert memo is not None
            made = [memo.get(digests.get(slug), lambda slug=slug: made_now.get(slug)
                             or directory_search.clinic_documents(clinics[slug])) for slug in slugs]
            memo.save()
            return directory_search.index_files(directory_search.documents_of(made))

        self._write_files(writer, "directory", self.directory_search_dir, inputs, make)

    def _memo(self, kind: str) -> ClinicMemo | None:
        """Values made per clinic, kept between builds (``cache.ClinicMemo``), when pages are reused."""
        if self.page_keys is None:
            return None
        return ClinicMemo(self.plugin.cache, kind, self.page_keys.base)

    def _write_find(self, writer: Any, url: str, save_as: str, data_dir: str, state_counts: list[StateCount]) -> None:
        """The search page (its location index and lookup shards are written after the pages)."""
        page = {"state_counts": state_counts, "search_data_url": f"{data_dir}/",
                **search_index.page_context(self.registry)}
        self._write(writer, save_as, "find.html", url, listed(page), **page)

    def _location_index(self) -> dict[str, bytes]:
        """The location index's files, from each clinic's records (kept per clinic between builds).
        They are made from the registry's model alone (and the shared inputs: settings, code, geocode
        cache), so an article edit does not remake them."""
        memo = self._memo("location-records")
        if memo is None:
            return search_index.build_search_index(self.registry)
        digests, clinics = self.registry_cache.clinic_digests, self.registry.clinics
        services, conditions = sorted(self.registry.services), sorted(self.registry.conditions)
        files = search_index.build_search_index(self.registry, records_of=lambda slug: memo.get(
            digests.get(slug), lambda: search_index.clinic_records(clinics[slug], services, conditions)))
        memo.save()
        return files

