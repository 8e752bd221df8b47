"""``make publish``: check the registry, build with the publish settings, verify the site, deploy it.

Each step can stop the ones after it, and only the last one touches the live site:

1. The registry is valid and no entry in it is marked ``placeholder: true`` (stand-in
   details must not reach patients), unless the maintainer allows them.
2. The site is built with the publish settings (``publishconf.py``: absolute URLs, a
   sitemap, feeds) into a directory of its own under ``CLINIC_DIRECTORY_PUBLISH_DIR``,
   with a cache of its own, so that publishing does not undo the caches of ``make html``.
3. The built site is verified: the files a host needs are there, every link inside the
   site leads to a file of it, nothing points at this machine, no page loads anything
   from another site, no ``javascript:`` link.
4. The target (``deploy.py``) is told to hold exactly that site, all or nothing, unless it holds
   files some other tool put there (they would be deleted); a dry run lists what it would change.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urljoin, urlsplit

import yaml
from pelican.settings import read_settings

from .build import build_site
from .cache import RegistryCache, paused_gc
from .deploy import SITE_MARKER, Changes, parse_target, site_files
from .parallel import in_two
from .problems import InvalidInput, Problem
from .registry import read_registry
from .settings import read_plugin_settings
from .source import problem_at
from .updates import locate, locked


class PublishStopped(Exception):
    """Publishing stopped before the deploy; the message (one or more lines, the last starting with
    "publish stopped:") says why and what to do."""


@dataclass(frozen=True)
class PublishOptions:
    settings_file: Path
    target: str | None = None  # None: the CLINIC_DIRECTORY_PUBLISH_TARGET setting
    registry: Path | None = None
    content: Path | None = None
    allow_placeholders: bool = False
    dry_run: bool = False
    work: Path | None = None  # None: the CLINIC_DIRECTORY_PUBLISH_DIR setting


@dataclass
class Published:
    """What a publish did (or, in a dry run, would do)."""

    target: str
    site: Path
    changes: Changes
    dry_run: bool
    placeholders: list[str] = field(default_factory=list)  # the allowed ones' paths, still worth saying


def publish(options: PublishOptions, say: Any = print) -> Published:
    """The four steps; raises ``PublishStopped``, ``InvalidInput`` or ``DeployFailed``, the live site as it was."""
    overrides: dict[str, Any] = {}
    if options.registry is not None:
        overrides["CLINIC_DIRECTORY_REGISTRY"] = str(options.registry)
    if options.content is not None:
        overrides["PATH"] = str(options.content.resolve())
    settings = read_settings(str(options.settings_file), override=dict(overrides))
    plugin = read_plugin_settings(settings)
    site_url = settings.get("SITEURL", "")
    check_site_url(site_url, settings.get("RELATIVE_URLS", False), options.settings_file)
    target_text = options.target if options.target is not None else plugin.publish_target
    work = (options.work or plugin.publish_dir).absolute()
    work.mkdir(parents=True, exist_ok=True)
    target = parse_target(target_text, work / "targets")  # a malformed TARGET stops us before the build

    with locked(work):  # two publishes at once would build into the same directory
        say(f"Checking {plugin.registry}")
        cache = work / "cache"
        placeholders = placeholders_in(plugin.registry, plugin.max_registry_bytes, cache)
        if placeholders and not options.allow_placeholders:
            raise PublishStopped("\n".join([
                *map(str, located(plugin.registry, plugin.max_registry_bytes, placeholders)),
                f"publish stopped: {len(placeholders)} registry entries are marked placeholder: their details are "
                "stand-ins, not facts. Replace them with the clinic's real details and remove the mark, or publish "
                "anyway with ALLOW_PLACEHOLDERS=1 (the pages say which details are placeholders)"]))
        site = work / "site"
        say(f"Building the site for {site_url} into {site}")
        build_site(options.settings_file, site, {**overrides, "CLINIC_DIRECTORY_CACHE": str(cache)})
        say(f"Verifying {site}")
        problems = verify_site(site, site_url)
        if problems:
            raise PublishStopped("\n".join([*problems, f"publish stopped: the built site in {site} has "
                                            f"{len(problems)} problem(s); nothing was deployed"]))
        say(f"Comparing with {target.label}")
        changes = target.changes(site)
        check_not_foreign(changes, target.label)
        if not options.dry_run:
            say(f"Deploying to {target.label}")
            changes = target.deploy(site)
    return Published(target.label, site, changes, options.dry_run, placeholders)


def check_not_foreign(changes: Changes, target: str) -> None:
    """A deploy removes what the target holds besides the site: refuse one into a target that holds
    files ``make publish`` did not put there (``TARGET=~`` must not empty a home directory)."""
    if changes.removed and SITE_MARKER in changes.added:
        shown = ", ".join(changes.removed[:3]) + (", ..." if len(changes.removed) > 3 else "")
        raise PublishStopped(f"publish stopped: {target} holds {len(changes.removed):,} file(s) that make publish did "
                             f"not put there ({shown}), and publishing would delete them: publish to an empty or new "
                             "location, or empty this one first; nothing was deployed")


def check_site_url(site_url: str, relative_urls: bool, settings_file: Path) -> None:
    """A published site needs its absolute https address: canonical links, the sitemap and feeds use it."""
    parts = urlsplit(site_url)
    if parts.scheme != "https" or not parts.netloc or relative_urls:
        raise PublishStopped(f"publish stopped: {settings_file}: SITEURL: the published site needs its absolute "
                             f"https address (e.g. https://clinics.example.org) and RELATIVE_URLS = False; got "
                             f"SITEURL = {site_url!r}{', RELATIVE_URLS = True' if relative_urls else ''}; nothing "
                             "was deployed")


# -- 1. placeholders -------------------------------------------------------------------------------------------


def placeholders_in(registry: Path, max_bytes: int, cache: Path) -> list[str]:
    """The dotted paths of the entries marked ``placeholder: true``; ``InvalidInput`` if the registry is
    invalid. Checked through the build's registry cache in ``cache``, which the build then reuses: at
    10,000 clinics a plain whole-file check takes 20 s, the cache's two processes a fifth of that."""
    label = str(registry)
    registry_cache = RegistryCache(cache)
    try:
        with paused_gc():  # millions of objects and no cycles, as in the build
            data = registry_cache.load(registry.read_bytes(), label) if registry.stat().st_size <= max_bytes else None
    except OSError:
        data = None  # read_yaml says what is wrong with the file
    if data is None:  # a registry with problems, or laid out unusually: the whole-file check says where
        _root, data = checked_registry(registry, label, max_bytes)
        registry_cache.store(registry.read_bytes(), data)
    registry_cache.close()
    return list(placeholder_paths(data))


def checked_registry(registry: Path, label: str, max_bytes: int) -> tuple[yaml.Node, dict[str, Any]]:
    """The registry's nodes and validated data; ``InvalidInput`` with every problem and its line."""
    root, data, problems = read_registry(registry, max_bytes, label)
    if problems or root is None or data is None:
        raise InvalidInput(problems)
    return root, data


def located(registry: Path, max_bytes: int, paths: list[str]) -> list[Problem]:
    """The placeholder ``paths`` as problems on their lines (the file is read again, only to say where)."""
    label = str(registry)
    root, _data = checked_registry(registry, label, max_bytes)
    found = []
    for path in paths:
        node = locate(root, path)
        assert node is not None, path  # validated data comes from these nodes
        found.append(problem_at(label, node, path, "marked as a placeholder (stand-in details, not from the "
                                                   "clinic): put in the clinic's real details and remove the mark"))
    return sorted(found)


def placeholder_paths(data: dict[str, Any]) -> Iterator[str]:
    for slug, clinic in data["clinics"].items():
        base = f"clinics.{slug}"
        if clinic.get("placeholder"):
            yield f"{base}.placeholder"
        for kind in ("locations", "physicians"):
            for child, entry in (clinic.get(kind) or {}).items():
                if entry.get("placeholder"):
                    yield f"{base}.{kind}.{child}.placeholder"
        if (clinic.get("referral") or {}).get("placeholder"):
            yield f"{base}.referral.placeholder"


# -- 3. verification -------------------------------------------------------------------------------------------

REQUIRED_FILES = ("index.html", "404.html", "robots.txt", "sitemap.xml")
TAG = re.compile(rb"<([a-zA-Z][a-zA-Z0-9-]*)\s([^>]*)>")
# As the templates and Markdown write them (no spaces around "="), one pattern per attribute: a
# pattern that starts with the name is searched for as fast as plain text, four such run in half the
# time of one that allows spaces or alternates between the names (the site's pages hold some
# 2,000,000 URLs at 10,000 clinics). The match must follow white space (``data-href=`` is another name).
URL_ATTRIBUTES = tuple(re.compile(rb"""%s=(?:"([^"]*)"|'([^']*)')""" % name)
                       for name in (b"href", b"src", b"action", b"poster"))
LOCAL_HOSTS = re.compile(r"^(localhost|127(\.\d+){3}|0\.0\.0\.0|\[::1\])(:\d+)?$", re.IGNORECASE)
SITEMAP_LOC = re.compile(rb"<loc>([^<]*)</loc>")
# Elements whose URL a browser fetches when the page loads (a link's target only when followed).
LOADED = {b"script", b"img", b"iframe", b"source", b"video", b"audio", b"embed", b"object", b"track", b"input"}
LOADED_LINK_RELS = re.compile(
    rb"""\brel\s*=\s*["']?[^"'>]*\b(stylesheet|icon|preload|modulepreload|prefetch|manifest)""")
ENTITIES = {b"&amp;": b"&", b"&#39;": b"'", b"&quot;": b'"', b"&#x27;": b"'", b"&#34;": b'"'}


def verify_site(site: Path, site_url: str) -> list[str]:
    """What would make the built ``site`` wrong to publish, one line each (the same fault on many
    pages is one line, counting them); empty when it can go live."""
    files = site_files(site)
    problems = [f"{site / name}: missing; every published site has it" for name in REQUIRED_FILES if name not in files]
    origin = site_url.rstrip("/")
    pages = [name for name in files if name.endswith(".html")]

    def faults_of(names: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)  # fault -> pages with it
        known: dict[tuple[bytes, str], Verdict] = {}
        for name in names:
            for fault in page_faults(name, files[name].read_bytes(), origin, files, known):
                found[fault].append(name)
        return dict(found)

    # Reading 80,000 pages is the slow part of a large site's publish: half of them in a second process.
    mine, theirs = in_two(faults_of, pages[::2], pages[1::2])
    faults: dict[str, list[str]] = defaultdict(list, mine)
    for fault, names in (theirs if theirs is not None else faults_of(pages[1::2])).items():
        faults[fault] = sorted([*faults[fault], *names])
    if "sitemap.xml" in files:
        for fault in sitemap_faults(files["sitemap.xml"].read_bytes(), origin, files):
            faults[fault].append("sitemap.xml")
    for fault, pages in sorted(faults.items()):
        more = f" (and {len(pages) - 1:,} more)" if len(pages) > 1 else ""
        problems.append(f"{site / pages[0]}{more}: {fault}")
    return problems


class Verdict(NamedTuple):
    """What a URL means for publishing: ``fault`` says why it must not be published; a ``foreign`` URL
    (another site's) is fine in a link and a fault where the page loads it (``foreign_fault``)."""

    fault: str | None = None
    foreign: bool = False


FINE = Verdict()


def page_faults(name: str, html: bytes, origin: str, files: dict[str, Path],
                known: dict[tuple[bytes, str], Verdict]) -> Iterator[str]:
    """The faults of the URLs on page ``name``. ``known`` remembers each URL's verdict: a site's
    pages share most of their URLs (a published site's are absolute, so the same on every page),
    and only a URL with a fault needs to know its element."""
    page_url = f"{origin}/{name}"
    folder = page_url.rpartition("/")[0]
    for attribute in (match for pattern in URL_ATTRIBUTES for match in pattern.finditer(html)
                      if html[match.start() - 1:match.start()].isspace()):
        raw = attribute.group(1) if attribute.group(1) is not None else attribute.group(2)
        key = (raw, "" if raw.startswith((b"http", b"/")) else folder)
        verdict = known.get(key)
        if verdict is None:
            text = raw
            for entity, character in ENTITIES.items():
                text = text.replace(entity, character)
            verdict = known[key] = url_verdict(text.decode("utf-8", "replace").strip(), page_url, origin, files)
        if verdict is FINE:
            continue
        tag = TAG.match(html, html.rfind(b"<", 0, attribute.start()))
        if tag is None:
            continue
        element = tag.group(1).lower()
        if verdict.foreign:
            loads = element in LOADED or (element == b"link" and LOADED_LINK_RELS.search(tag.group(2)) is not None)
            if not loads:
                continue  # a link to another site is fine; loading from one is not
        yield f"<{element.decode()} {attribute.group().partition(b'=')[0].decode()}>: {verdict.fault}"


def url_verdict(url: str, page_url: str, origin: str, files: dict[str, Path]) -> Verdict:
    """Whether ``url`` (found on the page at ``page_url``) may be published."""
    if url.startswith(f"{origin}/") and "/." not in url and "%" not in url:
        absolute = url  # the published site's own URLs, nearly all of them: no need to resolve them
    else:
        scheme = urlsplit(url).scheme.lower()
        if scheme in ("mailto", "tel", "data") or url.startswith("#") or not url:
            return FINE
        if scheme not in ("", "http", "https"):
            return Verdict(f"{url!r}: a {scheme}: link; only http(s), mailto: and tel: links may be published")
        absolute = urljoin(page_url, url)
        if LOCAL_HOSTS.match(urlsplit(absolute).netloc):
            return Verdict(f"{url!r} points at this machine, not at the published site")
        if not absolute.startswith(f"{origin}/") and absolute != origin:
            return Verdict(f"{url!r}: the page would load this from another site (no third-party requests)", True)
    path = unquote(absolute[len(origin):].split("?")[0].split("#")[0]).lstrip("/")
    if path in files or (path.endswith("/") or not path) and f"{path}index.html" in files \
            or f"{path}/index.html" in files:
        return FINE
    return Verdict(f"{url!r} leads to no file of the site")


def sitemap_faults(xml: bytes, origin: str, files: dict[str, Path]) -> Iterator[str]:
    for match in SITEMAP_LOC.finditer(xml):
        url = match.group(1).decode("utf-8", "replace").replace("&amp;", "&")
        if not url.startswith(f"{origin}/"):
            yield f"sitemap entry {url!r} is not on {origin}"
            continue
        verdict = url_verdict(url, f"{origin}/", origin, files)
        if verdict.fault and not verdict.foreign:
            yield f"sitemap entry {verdict.fault}"


def describe(published: Published, limit: int = 40) -> str:
    """The lines ``make publish`` ends with."""
    changes = published.changes
    if published.dry_run:
        listing = changes.listing().splitlines()
        shown = listing[:limit] + ([f"... and {len(listing) - limit:,} more"] if len(listing) > limit else [])
        return "\n".join([*shown, f"dry run: publishing to {published.target} would make {changes.summary()}; "
                                  "nothing was deployed"])
    if changes.empty:
        return f"{published.target} already holds this site; nothing was deployed ({changes.unchanged:,} files)"
    return f"published to {published.target}: {changes.summary()}"

