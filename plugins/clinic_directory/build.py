"""Build the site into a staging directory; only a complete build reaches the output.

Pelican empties its output directory before it reads anything, so a failed build
run straight into ``OUTPUTDIR`` would leave half a site. We let Pelican build
into a fresh sibling directory and, only if it succeeded without errors, bring
the output in line with it, rewriting just the files whose bytes changed.

Rebuilds are incremental (``cache.py``). A build whose inputs all match the last
build into the same output, which nobody has touched since, does nothing. Otherwise
a page whose key did not change is not rendered again: the output keeps it, or the
page cache supplies it. The staging directory then holds only the files that may
have changed. A build into an empty output directory moves the staging directory
into place instead of copying it.
"""

from __future__ import annotations

import contextlib
import filecmp
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pelican import Pelican, signals
from pelican.settings import read_settings

from .cache import (
    PAGEFIND_BODY,
    UNMARKED,
    VOLATILE_SETTINGS,
    Manifest,
    PageStore,
    Tree,
    code_digest,
    current_umask,
    digest,
    link_or_copy,
    mtime_of,
    reusing_writer,
    stable_repr,
    tree_digest,
)
from .settings import PluginSettings, read_plugin_settings
from .sitemap import write_sitemap, write_sitemap_file

logger = logging.getLogger(__name__)


class ErrorCounter(logging.Handler):
    """Counts ERROR records: Pelican logs some failures (a bad article) and carries on."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


class BuildFailed(Exception):
    pass


def build_site(settings_file: Path, output: Path, overrides: dict[str, Any]) -> None:
    """Build into ``output``; on any failure ``output`` is left exactly as it was."""
    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.staging-", dir=output.parent))
    counter = ErrorCounter()
    logging.getLogger().addHandler(counter)
    store: PageStore | None = None
    try:
        settings = read_settings(str(settings_file), override={
            **overrides, "OUTPUT_PATH": str(staging), "DELETE_OUTPUT_DIRECTORY": False})
        plugin = read_plugin_settings(settings)
        if plugin.cache is not None:
            store = PageStore(plugin.cache, output, build_inputs(settings_file, settings, plugin, output))
            if store.unchanged_since_last_build():
                logger.info("Nothing to do: no input changed since the last build of %s", output)
                return
        with writer_from(store):
            pelican = Pelican(settings)  # (which registers the plugin's signal receivers)
            if store is not None:
                # The sitemap lists the pages in the staging directory and those the output keeps, which
                # only the page store knows: written below, not when Pelican is done.
                signals.finalized.disconnect(write_sitemap)
            pelican.run()
        if counter.count:
            raise BuildFailed(f"{counter.count} error(s) logged during the build; nothing was written to {output}")
        if store is not None and writes_sitemap(settings):
            write_sitemap_file(staging, settings["SITEURL"], kept={name: output / name for name in store.kept})
        if store is None:
            build_search_index(staging)
            sync_tree(staging, output, delete=True)
        else:
            tree, linked = store.walk_and_cache(staging)
            # Pagefind runs in a process of its own while the page cache's index takes the rendered pages.
            indexing = index_site(staging, output, store, sorted(tree.files))
            try:
                store.save_rendered(staging, tree.files, linked)
                staged = indexing.finish()
            finally:
                indexing.stop()
            publish(staging, output, store, staged, tree)
            store.prune()
    finally:
        logging.getLogger().removeHandler(counter)
        if store is not None:
            store.close()
        shutil.rmtree(staging, ignore_errors=True)


# -- incremental builds ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildInputs:
    """Digests of everything a build reads: ``shared`` is all but the registry and the content.

    Files are read in full (the registry too: hashing 30 MB takes 0.05 s), so a checkout
    or a copy that only changes mtimes costs nothing.
    """

    shared: str
    registry: str
    content: str

    @property
    def everything(self) -> str:
        return digest(self.shared, self.registry, self.content)


def build_inputs(settings_file: Path, settings: dict[str, Any], plugin: PluginSettings, output: Path) -> BuildInputs:
    content = Path(settings["PATH"])
    shared = digest(
        code_digest(),
        stable_repr({k: v for k, v in sorted(settings.items()) if k not in VOLATILE_SETTINGS}, callables=True),
        # The settings file and its siblings (publishconf.py imports pelicanconf.py).
        *(tree_digest(path) for path in sorted(settings_file.resolve().parent.glob("*.py"))),
        *(tree_digest(Path(path)) for path in [settings["THEME"], *settings.get("THEME_TEMPLATES_OVERRIDES", []),
                                               *settings.get("PLUGIN_PATHS", [])]),
        tree_digest(plugin.geocode_cache),
    )
    skip = [output, *([plugin.cache] if plugin.cache else [])]
    return BuildInputs(shared, tree_digest(plugin.registry), tree_digest(content, skip=skip))


def writes_sitemap(settings: dict[str, Any]) -> bool:
    """The rule ``sitemap.write_sitemap`` follows: absolute http(s) URLs."""
    return urlsplit(settings.get("SITEURL", "")).scheme in ("http", "https") and not settings.get("RELATIVE_URLS")


@contextlib.contextmanager
def writer_from(store: PageStore | None) -> Iterator[None]:
    """Have Pelican write with a writer that can reuse pages from ``store`` (if there is one)."""
    if store is None:
        yield
        return
    writer_class = reusing_writer(store)

    def get_writer(pelican: Any) -> type:
        return writer_class

    signals.get_writer.connect(get_writer)
    try:
        yield
    finally:
        signals.get_writer.disconnect(get_writer)


def staged_files(staging: Path) -> list[str]:
    """Every file under ``staging``, as sorted POSIX paths relative to it."""
    found = []
    for directory, _dirs, files in os.walk(staging):
        relative = Path(directory).relative_to(staging).as_posix()
        found += [name if relative == "." else f"{relative}/{name}" for name in files]
    return sorted(found)


@dataclass
class Indexing:
    """What ``index_site`` started: ``finish()`` waits for Pagefind (when it runs) and returns the
    staged files, Pagefind's included; ``stop()`` ends a run nobody will wait for, and cleans up."""

    finish: Callable[[], list[str]]
    run: PagefindRun | None = None
    end: Callable[[], None] | None = None

    def stop(self) -> None:
        if self.end is not None:
            self.end()


def index_site(staging: Path, output: Path, store: PageStore, staged: list[str]) -> Indexing:
    """Start Pagefind over the new site unless no page it indexes changed since it last ran.

    Pagefind indexes the pages marked ``data-pagefind-body`` (every page when none is).
    Which pages are marked, the cache knows for the pages it holds, and the build for the
    pages of templates that mark none (``store.unmarked``); only the others are read.
    Pagefind reads a directory of its own that holds just those pages, as hard links
    (``PagefindSite``): given the whole site, it would walk all of its 70,000 directories.
    """
    scanned = {name: store.scans.get(name) or (UNMARKED if name in store.unmarked else scan(staging / name))
               for name in staged if name.endswith(".html")}  # name: digest, marked
    previous = store.previous.indexed if store.previous else {}
    store.indexed = {name: page_digest for name, (page_digest, marked) in scanned.items() if marked}
    store.indexed.update((name, previous[name]) for name in store.kept if name in previous)
    if store.indexed:
        pages = sorted(store.indexed)
        key = digest(code_digest(), *(part for name in pages for part in (name, store.indexed[name])))
    else:  # no page marked: Pagefind indexes them all
        pages = sorted({*scanned, *(name for name in store.kept if name.endswith(".html"))})
        key = digest(code_digest(), *(part for name in pages
                                      for part in (name, store.key_of(name) or scanned[name][0])))
    names = store.output_group("pagefind", key)
    if names is not None:
        store.keep_group("pagefind", key, names)
        return Indexing(lambda: staged)
    files = store.cached_group("pagefind", key)
    if files is not None:
        store.restore_group(key, files, staging)
        store.record_group("pagefind", key, files)
        return Indexing(lambda: sorted({*staged, *files}))
    # Inside the staging directory (so that a failed build removes it too), after its walk.
    site = PagefindSite(staging / ".pagefind-site", {name: (output if name in store.kept else staging) / name
                                                     for name in pages})
    run = PagefindRun(site.path, output=staging / "pagefind")

    def finish() -> list[str]:
        run.wait()
        made = [f"pagefind/{name}" for name in staged_files(staging / "pagefind")]
        store.save_group("pagefind", key, made, staging)
        store.record_group("pagefind", key, made)
        return sorted({*staged, *made})

    def stop() -> None:
        run.stop()
        site.remove()

    return Indexing(finish, run, stop)


class PagefindSite:
    """The directory ``path``, made to hold the ``pages`` (relative name -> path) Pagefind is to
    index, under their names, as hard links: a page's URL in the index is its name."""

    def __init__(self, path: Path, pages: dict[str, Path]) -> None:
        self.path = path
        for name, source in pages.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(source, path / name)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def scan(page: Path) -> tuple[str, bool]:
    """A page's digest, and whether Pagefind indexes it."""
    content = page.read_bytes()
    return digest(content), PAGEFIND_BODY in content


def publish(staging: Path, output: Path, store: PageStore, staged: list[str], tree: Tree) -> None:
    """Make ``output`` hold the new site: the ``staged`` files plus those the output kept.
    ``tree`` is the staging directory as it was walked (before Pagefind wrote to it)."""
    previous = store.previous
    if not store.kept and (not output.exists() or not any(output.iterdir())):
        # Nothing to keep: move the whole tree into place (it was private until now: mode 0700).
        os.chmod(staging, 0o777 & ~current_umask())
        os.replace(staging, output)
        # A rename changes no file or directory in it: the walk's states hold, but for what came after.
        changed = {"", *(parent for name in staged if name not in tree.files for parent in parents(name))}
        store.save_manifest(staged, changed, known=tree)
        return
    if previous is None:
        # An output we know nothing about: compare every file, and remove whatever is not the site's.
        sync_tree(staging, output, delete=True)
        store.save_manifest(staged_files(output))
        return
    wanted = set(store.kept).union(staged)
    strays = stray_files(output, previous, store.changes.dirs)  # as the build found them when it started
    touched = {""}
    for name in staged:
        src, dst = staging / name, output / name
        if same_file(src, dst) or dst.is_file() and not dst.is_symlink() and filecmp.cmp(src, dst, shallow=False):
            continue
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.tmp")
        tmp.unlink(missing_ok=True)
        link_or_copy(src, tmp)  # a staged file is never written again: the output can share it
        os.replace(tmp, dst)
        touched.update(parents(name))
    for name in [*previous.files, *strays]:
        if name not in wanted and (output / name).is_file():
            (output / name).unlink()
            touched.update(parents(name))
            remove_empty_parents(output, name)
    store.save_manifest(sorted(wanted), touched)


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are links to one file: a page restored from the page cache into the
    staging directory often is the output's own file (a sitemap build restores them all)."""
    try:
        return os.path.samestat(os.lstat(a), os.lstat(b))
    except OSError:
        return False


def parents(name: str) -> list[str]:
    """``a/b/c.html`` -> ``["a/b", "a"]``."""
    parts = name.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]


def stray_files(output: Path, previous: Manifest, changed: set[str]) -> list[str]:
    """Files in ``output`` the last build did not write there. Only a directory whose mtime
    changed since (those in ``changed``) can hold one, so only those are listed."""
    found = []
    prefix = f"{output}{os.sep}"
    for directory in sorted(changed):
        path = prefix + directory
        if mtime_of(path) is None:
            continue
        with os.scandir(path) as entries:
            for entry in entries:
                name = f"{directory}/{entry.name}" if directory else entry.name
                if entry.is_dir(follow_symlinks=False) and name not in previous.dirs:
                    found += [f"{name}/{inner}" for inner in staged_files(Path(entry.path))]
                elif not entry.is_dir(follow_symlinks=False) and name not in previous.files:
                    found.append(name)
    return found


def remove_empty_parents(root: Path, name: str) -> None:
    parent = (root / name).parent
    while parent != root and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


UNUSED_PAGEFIND_FILES = ("pagefind-ui.js", "pagefind-ui.css", "pagefind-modular-ui.js", "pagefind-modular-ui.css",
                         "pagefind-component-ui.js", "pagefind-component-ui.css", "pagefind-highlight.js")


def build_search_index(site: Path) -> None:
    """Index the finished site with Pagefind (into ``site/pagefind/``) for the search page."""
    PagefindRun(site).wait()


class PagefindRun:
    """Pagefind indexing ``site`` (into ``output``, by default ``site/pagefind/``) in a process of its
    own, started at once, so that the build can do other work meanwhile.

    Pagefind is the binary the ``pagefind-bin`` wheel ships: it runs offline and reads
    only ``site``. Pages opt in with ``data-pagefind-body`` (see the templates).
    """

    TIMEOUT = 600  # seconds

    def __init__(self, site: Path, output: Path | None = None) -> None:
        self.output = output or site / "pagefind"
        try:
            from pagefind_bin import get_executable

            executable = get_executable()
        except (ImportError, FileNotFoundError) as error:
            raise BuildFailed("the site search index needs Pagefind, which is not installed: run `make setup` "
                              "(requirements.lock pins pagefind-bin)") from error
        command = [str(executable), "--site", str(site), "--output-path", str(self.output), "--silent"]
        try:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except OSError as error:
            raise BuildFailed(f"Pagefind could not index the site: {error}") from error

    def wait(self) -> None:
        try:
            out, err = self.process.communicate(timeout=self.TIMEOUT)
        except subprocess.TimeoutExpired as error:
            self.stop()
            raise BuildFailed(f"Pagefind could not index the site: {error}") from error
        if self.process.returncode != 0:
            detail = (err or out).strip()
            raise BuildFailed(f"Pagefind could not index the site (exit {self.process.returncode}): {detail}")
        # Pagefind also writes its ready-made search UIs; the search page uses only its API.
        for name in UNUSED_PAGEFIND_FILES:
            (self.output / name).unlink(missing_ok=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def sync_tree(source: Path, target: Path, delete: bool) -> tuple[int, int]:
    """Make ``target`` hold exactly ``source``'s files; returns (files written, files removed).

    Unchanged files keep their bytes and mtime, so servers and deploys see only real changes.
    Each file is replaced atomically (write beside, then rename).
    """
    written = removed = 0
    wanted: set[Path] = set()
    for directory, _dirs, files in os.walk(source):
        relative_dir = Path(directory).relative_to(source)
        (target / relative_dir).mkdir(parents=True, exist_ok=True)
        for name in files:
            relative = relative_dir / name
            wanted.add(relative)
            src, dst = source / relative, target / relative
            if dst.is_file() and not dst.is_symlink() and filecmp.cmp(src, dst, shallow=False):
                continue
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            tmp = dst.with_name(f".{dst.name}.tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
            written += 1
    if delete:
        for directory, dirs, files in os.walk(target, topdown=False):
            relative_dir = Path(directory).relative_to(target)
            for name in files:
                if relative_dir / name not in wanted:
                    (Path(directory) / name).unlink()
                    removed += 1
            for name in dirs:
                path = Path(directory) / name
                if not path.is_symlink() and not any(path.iterdir()):
                    path.rmdir()
    return written, removed
