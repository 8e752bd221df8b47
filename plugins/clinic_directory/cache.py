"""Build caches: a rebuild does only the work whose inputs changed, and writes only files that changed.

Nothing here may change what a build produces: a build that uses the caches writes
exactly the bytes of a clean build (``tests/test_incremental.py`` checks it). What is
kept in the cache directory (setting ``CLINIC_DIRECTORY_CACHE``, default ``cache/``):

``registry/<key>.marshal``
    The validated registry as plain data, keyed by the file's bytes and this plugin's
    code. Only a registry without problems is stored, so problems always come from a
    fresh parse, with their lines. After an edit, only the clinics whose text changed
    are parsed again (``chunks.py``).
``pages/<ab>/<key>`` and ``pages/index.sqlite``
    Rendered pages (and groups of data files) by key, one file each, hard-linked with
    the output where the file system allows: caching a page or restoring it into an
    empty output copies no bytes and makes no new inode. A page's key covers everything
    its bytes are made from: the inputs every page shares (settings, theme, code,
    the registry's services and conditions), its template and every template that
    one extends, includes or imports, the context variables those templates read,
    where it is written, and the page's own inputs (for a clinic's pages: that
    clinic's entry; by default: all of the build's inputs). The index records each
    file's size and mtime: a file changed since (an output page edited in place is
    the same file) is not used.
``outputs/<name>.marshal``
    What the last build left in an output directory: every file's key, size and
    mtime, and a digest of all the build's inputs. A build whose inputs all match,
    into an output that nobody touched since, has nothing to do.
``memo/<kind>-<shared>.marshal``
    Values made from one clinic's entry (its site search documents, its rows in the
    location index), by the clinic's digest, in a file named by the inputs every page
    shares: after an edit only the edited clinic's are made again (``ClinicMemo``).
``templates/``
    Jinja's compiled templates, and what each template reads (``PageKeys``), named by
    the inputs they depend on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import functools
import gc
import hashlib
import importlib.metadata
import inspect
import json
import logging
import marshal
import os
import posixpath
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import jinja2
from jinja2 import meta, nodes

from . import chunks
from .model import entry_hash

logger = logging.getLogger(__name__)

# Change when the layout of anything in the cache directory changes.
CACHE_FORMAT = "2"
# Libraries whose version can change the bytes a build writes.
LIBRARIES = ("pelican", "jinja2", "markupsafe", "markdown", "pyyaml", "zipcodes", "pygments", "docutils",
             "feedgenerator", "pagefind-bin", "python-dateutil", "tzdata")
# Settings that differ between two builds of the same site (the staging directory).
# Settings that no page depends on: where the output goes, and where the inputs whose bytes are
# digested on their own are (the same registry named by a relative or an absolute path is the same input).
VOLATILE_SETTINGS = frozenset({"OUTPUT_PATH", "CLINIC_DIRECTORY_REGISTRY", "CLINIC_DIRECTORY_CACHE",
                               "CLINIC_DIRECTORY_GEOCODE_CACHE"})
# Pages holding this are indexed by Pagefind (the site search); the page cache records which do.
PAGEFIND_BODY = b"data-pagefind-body"
# The scan (digest, indexed) of a page made from a template that marks no page for Pagefind:
# it is never read to find out, and its digest is not needed.
UNMARKED = ("", False)
# Variables Pelican's writer sets per page, from the page's path and the settings.
WRITER_VARIABLES = frozenset({"output_file", "localsiteurl", "SITEURL"})


# -- digests -----------------------------------------------------------------------------------------------


def digest(*parts: str | bytes) -> str:
    """A hex digest of ``parts`` (each length-prefixed, so ("ab", "c") and ("a", "bc") differ)."""
    hasher = hashlib.blake2b(digest_size=20)
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()


def tree_digest(path: Path, skip: Iterable[Path] = ()) -> str:
    """A file's bytes, or every file under a directory by relative name and bytes; ``missing`` if absent.

    Left out: ``__pycache__``, hidden directories (``.git``, a virtualenv) and the directories in ``skip``.
    """
    if path.is_file():
        return digest(path.read_bytes())
    if not path.is_dir():
        return "missing"
    skip = {p.resolve() for p in skip}
    parts: list[str | bytes] = []
    for directory, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith(".")
                         and Path(directory, d).resolve() not in skip)
        for name in sorted(files):
            file = Path(directory, name)
            parts += [file.relative_to(path).as_posix(), file.read_bytes()]
    return digest(*parts)


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "-"


@functools.cache
def code_digest() -> str:
    """This plugin's code and the versions of the libraries that shape the output."""
    return digest(CACHE_FORMAT, sys.version, tree_digest(Path(__file__).parent),
                  *(f"{name}={_version(name)}" for name in LIBRARIES))


class Unstable(ValueError):
    """A value with no representation that is the same in every process (an object's address)."""


def stable_repr(value: Any, callables: bool = False) -> str:
    """A representation that is equal for equal plain values in any process.

    Dicts keep their order (a template iterating one renders in that order); sets are
    sorted. With ``callables`` (for settings), functions and classes are represented by
    their name and source code.
    """
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(stable_repr(item, callables) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{stable_repr(k, callables)}:{stable_repr(v, callables)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, (set, frozenset)):
        return "{" + ",".join(sorted(stable_repr(item, callables) for item in value)) + "}"
    if isinstance(value, (dt.date, dt.time, dt.timedelta, PurePath)):
        return repr(value)
    if callables and (inspect.isfunction(value) or inspect.isclass(value) or inspect.isbuiltin(value)):
        return f"<{value.__module__}.{value.__qualname__} {_source_digest(value)}>"
    raise Unstable(type(value).__name__)


def _source_digest(function: Any) -> str:
    try:
        return digest(inspect.getsource(function))
    except (OSError, TypeError):
        return ""  # a builtin, or a class from C: its library's version is digested


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building a large tree of objects.

    Composing and checking a 10,000-clinic registry makes millions of objects and
    no garbage cycles; the collector would scan them all, again and again, for nothing
    (about half the time of a cold parse). What is still alive at the end is moved out
    of the collector's sight for good (``gc.freeze``): it lives as long as the build, and
    the first collection after the pause would otherwise scan it all at once.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.enable()


def link_or_copy(source: str | Path, target: str | Path) -> bool:
    """Make ``target`` (a new path) a hard link to ``source`` (True), or a copy where the file system
    cannot link them (another file system, too many links). Only for files nobody writes to again."""
    try:
        os.link(source, target)
        return True
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
    shutil.copyfile(source, target)
    return False


def write_atomically(path: Path, data: bytes, mode: int | None = None, durable: bool = False) -> None:
    """Replace ``path`` (and make its directory) with ``data`` in one step: a reader sees the old
    file or the new one, never part of one, and a failed write leaves the old one. The file gets
    ``mode``, else the permissions a plain new file would (``mkstemp`` makes them private).
    ``durable`` (for a file nobody can make again, like the registry): the data and the rename
    are on disk before this returns, so a crash cannot leave an empty file in its place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            os.fchmod(file.fileno(), mode if mode is not None else 0o666 & ~current_umask())
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if durable:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def current_umask() -> int:
    umask = os.umask(0o022)  # the only way to read it is to set it
    os.umask(umask)
    return umask


# -- the registry --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pieces:
    """Digests of a registry file's header and of each clinic's text (-> its slug)."""

    header: str
    chunks: dict[str, str]

    @classmethod
    def of(cls, split: chunks.Split) -> Pieces:
        return cls(digest(split.header), {digest(text): slug for slug, text in split.clinics})


class RegistryCache:
    """Validated registry data as JSON, by the registry file's bytes and this plugin's code.

    ``load`` returns a registry's validated data, or None when it has a problem. A file
    seen before is read from the cache. A new one is checked clinic by clinic
    (``chunks.py``), a batch of clinics at a time, reusing the data of every clinic whose
    text has not changed since the last stored version. On any problem, or any doubt,
    it returns None and the caller parses the whole file, which reports each problem
    with its line. ``store`` remembers the result of such a parse.
    ``clinic_digests`` then gives a digest of each clinic's entry: what that clinic's
    pages are made of.
    """

    KEEP = 3  # registry versions kept: switching branches back and forth parses nothing

    def __init__(self, directory: Path | None, apart_from: int | None = None) -> None:
        """``apart_from``: from this many clinics, the registry is stored by a forked process (the
        build must ``close()`` the cache before it ends)."""
        self.directory = directory / "registry" if directory else None
        self.apart_from = apart_from
        self._saving: Any = None
        self.data: dict[str, Any] | None = None
        self._digests: dict[str, str] | None = None
        self._raw: bytes | None = None
        self._raw_path = Path()

    def _path(self, raw: bytes) -> Path:
        assert self.directory is not None
        if self._raw is not raw:  # hashing 30 MB takes a twentieth of a second: once per file read
            self._raw, self._raw_path = raw, self.directory / f"{digest(code_digest(), raw)}.marshal"
        return self._raw_path

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            text = path.read_bytes()
        except OSError:
            return None
        try:
            with paused_gc():
                stored = marshal.loads(text)
            if not {"code", "data", "clinic_digests", "header", "chunks"} <= stored.keys():
                raise KeyError("incomplete")
        except (ValueError, EOFError, KeyError, TypeError, AttributeError):
            logger.warning("Ignoring a damaged registry cache file, %s", path)
            return None
        # Data checked by other code (another version of this plugin) is no use.
        return stored if stored["code"] == code_digest() else None  # type: ignore[no-any-return]

    def load(self, raw: bytes, label: str = "registry") -> dict[str, Any] | None:
        if self.directory is None:
            return None
        stored = self._read(self._path(raw)) or self._check_by_clinic(raw, label)
        if stored is None:
            return None
        self.data, self._digests = stored["data"], stored["clinic_digests"]
        return self.data

    def _check_by_clinic(self, raw: bytes, label: str) -> dict[str, Any] | None:
        """Check a file not seen before clinic by clinic, reusing the last stored version's data
        for each clinic whose text is unchanged. None if the file is not laid out the plain way
        or has any problem (``chunks.py``)."""
        assert self.directory is not None
        try:
            split = chunks.split_registry(raw.decode("utf-8"))
            newest = max(self.directory.glob("*.marshal"), key=lambda p: p.stat().st_mtime, default=None)
        except (UnicodeDecodeError, OSError):
            return None
        if split is None:
            return None
        slugs = [slug for slug, _text in split.clinics]
        if len(set(slugs)) != len(slugs):
            return None  # a clinic twice: the whole-file parse says where
        pieces = Pieces.of(split)
        previous = (self._read(newest) if newest else None) or {"data": {}, "header": "", "chunks": {}}
        if pieces.header == previous["header"]:
            data = {key: value for key, value in previous["data"].items() if key != "clinics"}
        elif (header := chunks.check_header(split, label)) is not None:
            data = header
        else:
            return None
        reused = {slug for piece, slug in pieces.chunks.items() if previous["chunks"].get(piece) == slug}
        new = [(slug, text) for slug, text in split.clinics if slug not in reused]
        header_text = split.header
        del split  # the file's text, twice over (whole and in pieces): keep the peak of a build down
        found = chunks.check_pieces(header_text, new, label)
        if found is None:
            return None
        checked, new_digests = found
        data["clinics"] = {slug: previous["data"]["clinics"][slug] if slug in reused else checked[slug]
                           for slug in slugs}
        if not chunks.cross_checks_pass(data):
            return None
        digests = {slug: previous["clinic_digests"][slug] if slug in reused else new_digests[slug] for slug in slugs}
        if reused:
            logger.info("Registry: %d of %d clinics changed since the last build", len(checked), len(slugs))
        return self._save(raw, data, digests, pieces)

    def store(self, raw: bytes, data: dict[str, Any]) -> None:
        """Remember ``data``, which must be the problem-free validation of ``raw``."""
        self.data, self._digests = data, None
        if self.directory is not None:
            try:
                split = chunks.split_registry(raw.decode("utf-8"))
            except UnicodeDecodeError:
                split = None
            # The pieces are recorded only when they are exactly the clinics the data has, in order.
            usable = split is not None and [slug for slug, _text in split.clinics] == list(data["clinics"])
            self._save(raw, data, self.clinic_digests, Pieces.of(split) if split and usable else None)

    def _save(self, raw: bytes, data: dict[str, Any], digests: dict[str, str],
              pieces: Pieces | None) -> dict[str, Any]:
        stored = {"code": code_digest(), "data": data, "clinic_digests": digests,
                  "header": pieces.header if pieces else "", "chunks": pieces.chunks if pieces else {}}
        path = self._path(raw)
        if self.apart_from is not None and len(data["clinics"]) >= self.apart_from:
            # Writing 30 MB takes a fifth of a second, which a forked process spends beside the build.
            from .parallel import Apart  # (parallel imports build, which imports us)

            self.close()
            self._saving = Apart(self._write, (path, stored))
        else:
            self._write((path, stored))
        return stored

    def _write(self, what: tuple[Path, dict[str, Any]]) -> bool:
        path, stored = what
        assert self.directory is not None
        try:
            write_atomically(path, marshal.dumps(stored))
            newest_first = sorted(self.directory.glob("*.marshal"), key=lambda p: p.stat().st_mtime, reverse=True)
            for stale in newest_first[self.KEEP:]:
                stale.unlink(missing_ok=True)
        except OSError as error:
            logger.warning("Could not write the registry cache in %s: %s", self.directory, error)
        return True

    def close(self) -> None:
        """Wait until the registry is stored."""
        if self._saving is not None:
            self._saving.result()
            self._saving = None

    def release_clinics(self) -> None:
        """Let go of the clinics' plain data once the model is made from it (the model keeps what it
        needs; the plain dicts and lists are a fifth of a build's memory). Their digests stay."""
        if self.data is None:
            return
        if self.directory is not None:
            self.clinic_digests  # noqa: B018 - made now, while the data is here
        self.data = {key: value for key, value in self.data.items() if key != "clinics"}

    @property
    def clinic_digests(self) -> dict[str, str]:
        if self._digests is None:
            assert self.data is not None, "load or store a registry first"
            self._digests = {slug: entry_hash(clinic) for slug, clinic in self.data["clinics"].items()}
        return self._digests


class ClinicMemo:
    """Values made from one clinic's entry (and the inputs every page shares), kept between builds by
    the clinic's digest: after an edit, only the edited clinic's are made again.

    Each kind of value has its own file, named by the shared inputs it was made with (so a new
    theme, setting or version of this code starts afresh). Values must be plain data (``marshal``).
    The file keeps the values of the clinics of the last build only.
    """

    KEEP = 3  # files per kind of value (a few versions of the shared inputs)

    def __init__(self, directory: Path | None, kind: str, shared: str) -> None:
        self.path = directory / "memo" / f"{kind}-{shared[:16]}.marshal" if directory else None
        self._kind = kind
        self._stored: dict[str, Any] = {}
        self._used: dict[str, Any] = {}
        self._made = 0
        if self.path is not None:
            with contextlib.suppress(OSError, ValueError, EOFError, TypeError):
                with paused_gc():
                    stored = marshal.loads(self.path.read_bytes())
                if isinstance(stored, dict):
                    self._stored = stored

    def get(self, clinic_digest: str | None, make: Callable[[], Any]) -> Any:
        """The value made for the clinic entry ``clinic_digest``: from the memo, or ``make()``."""
        if clinic_digest is None:
            return make()
        value = self._stored.get(clinic_digest)
        if value is None:
            value = make()
            self._made += 1
        self._used[clinic_digest] = value
        return value

    def save(self) -> None:
        """Keep the values used in this build (when any was made, or one was left unused)."""
        if self.path is None or (not self._made and len(self._used) == len(self._stored)):
            return
        try:
            write_atomically(self.path, marshal.dumps(self._used))
            kept = sorted(self.path.parent.glob(f"{self._kind}-*.marshal"), key=lambda p: p.stat().st_mtime,
                          reverse=True)
            for stale in kept[self.KEEP:]:
                stale.unlink(missing_ok=True)
        except OSError as error:
            logger.warning("Could not write %s: %s", self.path, error)


# -- page keys -----------------------------------------------------------------------------------------------


class PageKeys:
    """Keys for pages: a page whose key did not change would be rendered to the same bytes.

    ``base`` digests the inputs every page shares. ``tokens`` gives digests for
    context variables that are too large to compare (the registry). Any other
    context value a template reads is compared by its plain representation, and a
    value that has none (Pelican's articles, say) stands for ``everything``: the
    digest of all of the build's inputs.
    """

    def __init__(self, env: jinja2.Environment, context: Mapping[str, Any], base: str,
                 tokens: Mapping[str, str], everything: str, analysis: Path | None = None) -> None:
        self.env = env
        self.context = context
        self.base = base
        self.tokens = dict(tokens)
        self.everything = everything
        self._templates: dict[tuple[str, frozenset[str]], str] = {}
        self._variables: dict[str, frozenset[str] | None] = {}
        self._marks: dict[str, bool] = {}
        # What the templates read and whether they mark pages, found by parsing them: kept in
        # ``analysis``, a file named by everything it depends on (theme, settings, code).
        self._analysis = analysis
        self._analysed = 0
        if analysis is not None:
            with contextlib.suppress(OSError, ValueError, EOFError, TypeError):
                self._variables, self._marks = marshal.loads(analysis.read_bytes())
                self._analysed = len(self._variables) + len(self._marks)

    def save_analysis(self) -> None:
        """Keep what was found by parsing templates for the next build (when there is anything new)."""
        if self._analysis is not None and len(self._variables) + len(self._marks) != self._analysed:
            with contextlib.suppress(OSError):
                write_atomically(self._analysis, marshal.dumps((self._variables, self._marks)))

    def key(self, template: str, save_as: str, url: str, inputs: str, names: Iterable[str]) -> str:
        """The key of the page ``save_as`` rendered from ``template`` with keyword arguments ``names``
        that are made from ``inputs`` (and the shared inputs) alone."""
        # One hash update per page, parts joined with NUL (no path, name or digest holds one): 60,000 pages.
        parts = (self.base, template, self._context_token(template, frozenset(names)), save_as, url, inputs)
        return hashlib.blake2b("\0".join(parts).encode("utf-8"), digest_size=20).hexdigest()

    def _context_token(self, template: str, given: frozenset[str]) -> str:
        memo = (template, given)
        if memo not in self._templates:
            variables = self.variables(template)
            if variables is None:
                self._templates[memo] = self.everything
            else:
                names = sorted(variables - given - WRITER_VARIABLES)
                self._templates[memo] = digest(*(part for name in names for part in (name, self._value_token(name))))
        return self._templates[memo]

    def _value_token(self, name: str) -> str:
        if name in self.tokens:
            return self.tokens[name]
        if name in self.context:
            value = self.context[name]
        elif name in self.env.globals:
            value = self.env.globals[name]
        else:
            return "<undefined>"
        try:
            token = digest(stable_repr(value))
        except Unstable:
            token = self.everything
        self.tokens[name] = token
        return token

    def marks(self, name: str) -> bool:
        """Whether pages of template ``name`` may be marked for Pagefind: it, or a template it uses,
        has the marker (or uses a template only known at render time)."""
        if name not in self._marks:
            source, _filename, _uptodate = self.env.loader.get_source(self.env, name)  # type: ignore[union-attr]
            self._marks[name] = True  # until known otherwise (a template that includes itself)
            references = list(meta.find_referenced_templates(self.env.parse(source)))
            self._marks[name] = PAGEFIND_BODY.decode() in source or any(
                reference is None or self.marks(reference) for reference in references)
        return self._marks[name]

    def variables(self, name: str, seen: frozenset[str] = frozenset()) -> frozenset[str] | None:
        """Context variables ``name`` and the templates it uses read; None when that cannot be known
        (a template name computed at render time, a filter that reads the context or carries state)."""
        if name in self._variables:
            return self._variables[name]
        source, _filename, _uptodate = self.env.loader.get_source(self.env, name)  # type: ignore[union-attr]
        ast = self.env.parse(source)
        found: set[str] | None = set(meta.find_undeclared_variables(ast))
        for node in ast.find_all((nodes.Filter, nodes.Test)):
            table = self.env.filters if isinstance(node, nodes.Filter) else self.env.tests
            if not _pure(table.get(node.name)):
                found = None
        for reference in meta.find_referenced_templates(ast):
            if found is None or reference is None:
                found = None
                break
            if reference not in seen:
                used = self.variables(reference, seen | {name})
                found = None if used is None else found | used
        self._variables[name] = None if found is None else frozenset(found)
        return self._variables[name]


TRUSTED_MODULES = ("jinja2.", "markupsafe", "pelican.")


def _pure(function: Any) -> bool:
    """Whether a filter or test depends on nothing but its arguments (and the settings)."""
    if function is None:
        return True  # an unknown filter fails the render anyway
    module = getattr(function, "__module__", "") or getattr(type(function), "__module__", "")
    if module.startswith(TRUSTED_MODULES):
        return True
    if not (inspect.isfunction(function) or inspect.isbuiltin(function)):
        return False  # a bound method, a partial or a callable object may hold data
    if getattr(function, "jinja_pass_arg", None) is jinja2.utils._PassArg.context:
        return False
    return not function.__closure__ if inspect.isfunction(function) else True


# -- rendered pages and the output directory ------------------------------------------------------------------


@dataclass
class Manifest:
    """What a build left in an output directory.

    ``files`` maps each file's path (relative, POSIX) to ``[key, size, mtime_ns]``;
    the key is empty for files that were not made under a key (other generators' files).
    ``groups`` maps a group of files made together (search data, the Pagefind index)
    to its key. ``dirs`` holds every directory's mtime: only a directory whose mtime
    changed can hold a file somebody else put there. ``indexed`` holds a digest of each
    page Pagefind indexes (those with ``data-pagefind-body``).
    """

    inputs: str = ""
    files: dict[str, list[Any]] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    dirs: dict[str, int] = field(default_factory=dict)  # directory -> mtime_ns: where a stray file would show
    indexed: dict[str, str] = field(default_factory=dict)  # page site search indexes -> digest of its bytes

    @classmethod
    def load(cls, path: Path) -> Manifest | None:
        try:
            stored = marshal.loads(path.read_bytes())
            return cls(stored["inputs"], stored["files"], stored["groups"], stored["dirs"], stored["indexed"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError, KeyError, TypeError):
            logger.warning("Ignoring a damaged output manifest, %s", path)
            return None

    def save(self, path: Path) -> None:
        write_atomically(path, marshal.dumps({"inputs": self.inputs, "files": self.files, "groups": self.groups,
                                               "dirs": self.dirs, "indexed": self.indexed}))


def file_state(path: str | Path) -> tuple[int, int] | None:
    """(size, mtime_ns), or None for a missing file. (``os.stat`` of a string: 100,000 calls add up.)"""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


@dataclass
class Tree:
    """Every file under a directory with its (size, mtime_ns), and every directory with its mtime_ns;
    by POSIX path relative to it ("" for the directory itself)."""

    files: dict[str, tuple[int, int]] = field(default_factory=dict)
    dirs: dict[str, int] = field(default_factory=dict)
    unread: list[str] = field(default_factory=list)  # directories below the levels asked for

    @classmethod
    def walk(cls, root: str | Path, known: Callable[[str], tuple[int, int] | None] = lambda name: None,
             below: Iterable[str] = ("",), levels: int | None = None) -> Tree:
        """``known(name)`` may give a file's state (no need to ask the file system again).
        ``below`` are the directories to walk (relative to ``root``; all of it by default); with
        ``levels``, only that many levels of directories are read, and those below are in ``unread``."""
        tree = cls()
        pending = [(relative, f"{root}{os.sep}{relative}" if relative else str(root), 0) for relative in below]
        while pending:
            relative, path, level = pending.pop()
            if levels is not None and level == levels:
                tree.unread.append(relative)
                continue
            tree.dirs[relative] = os.stat(path).st_mtime_ns
            prefix = f"{relative}/" if relative else ""
            with os.scandir(path) as entries:
                for entry in entries:
                    if entry.is_dir():  # as os.walk: a link to a directory is neither listed nor entered
                        if not entry.is_symlink():
                            pending.append((prefix + entry.name, entry.path, level + 1))
                        continue
                    name = prefix + entry.name
                    state = known(name)
                    if state is None:
                        stat = entry.stat()  # as file_state: a link's target
                        state = stat.st_size, stat.st_mtime_ns
                    tree.files[name] = state
        return tree

    def add(self, files: Mapping[str, tuple[int, int]], dirs: Mapping[str, int]) -> None:
        self.files.update(files)
        self.dirs.update(dirs)


@dataclass
class Changes:
    """What changed in an output since the build that recorded its manifest: files whose size or
    mtime differ (or that are gone), directories whose mtime differs (where a stray file may be)."""

    files: set[str]
    dirs: set[str]


def changes_since(prefix: str, manifest: Manifest) -> tuple[list[str], list[str]]:
    """The files and directories of ``manifest`` (under ``prefix``) that changed, as plain lists."""
    files = [name for name, (_key, size, mtime) in manifest.files.items() if file_state(prefix + name) != (size, mtime)]
    dirs = [name for name, mtime in manifest.dirs.items() if mtime_of(prefix + name) != mtime]
    return files, dirs


def mtime_of(path: str | Path) -> int | None:
    state = file_state(path)
    return None if state is None else state[1]


def split_by_directory(links: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(key, target) pairs in two parts of about the same size. A page ``clinics/a/index.html`` needs its
    directory made in ``clinics``, and two processes adding entries to one directory take turns at it
    (the kernel locks it): pages are kept together by that directory, their target's grandparent."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for link in links:
        groups.setdefault(os.path.dirname(os.path.dirname(link[1])), []).append(link)
    parts: tuple[list[tuple[str, str]], list[tuple[str, str]]] = ([], [])
    for group in sorted(groups.values(), key=len, reverse=True):
        min(parts, key=len).extend(group)
    return parts


class PageStore:
    """Rendered pages by key (files, hard-linked with the output), and the manifest of one output directory.

    During a build, ``kept`` collects the files the output already holds under the
    same key (nothing is written), ``restored`` those that came from the cache and
    ``rendered`` those that had to be made (both are in the staging directory).
    ``scans`` holds the digest of each restored or cached page's bytes and whether
    Pagefind indexes it, so that nobody reads those pages again to find out.
    """

    KEEP_MANIFESTS = 20
    CHECK_APART_FROM = 5000  # files in the output: from here, it is checked in another process
    LOOKUPS_ONE_BY_ONE = 1000  # page cache look-ups; after these, its index is read whole
    LINK_APART_FROM = 1000  # restored or rendered pages: from here, two processes link them

    def __init__(self, cache_dir: Path, output: Path, inputs: Any) -> None:
        self.cache_dir = cache_dir
        self.pages_dir = cache_dir / "pages"
        self.output = output
        self._prefix = f"{output}{os.sep}"
        self.inputs = inputs  # build.BuildInputs
        self.manifest_path = cache_dir / "outputs" / f"{digest(str(output))[:16]}.marshal"
        self.previous = Manifest.load(self.manifest_path) if output.is_dir() else None
        self._changes: Changes | None = None
        self._checking: Any = None
        if self.previous is not None:
            # Looking at each of 60,000 files and 70,000 directories takes half a second: for a large
            # output, a forked process does it beside the registry's parsing, from the start.
            from .parallel import Apart  # (parallel imports build, which imports us)

            self._checking = Apart(functools.partial(changes_since, self._prefix), self.previous,
                                   fork=len(self.previous.files) >= self.CHECK_APART_FROM)
        self.kept: dict[str, str] = {}
        self.restored: dict[str, str] = {}
        self.rendered: dict[str, str] = {}
        self.grouped: dict[str, str] = {}  # files of groups of files made (or restored) together
        self.groups: dict[str, str] = {}
        self.indexed: dict[str, str] = {}
        self.scans: dict[str, tuple[str, bool]] = {}  # page -> (digest of its bytes, indexed by Pagefind)
        self.unmarked: set[str] = set()  # pages made from templates that cannot mark them for Pagefind
        self.manifest: Manifest | None = None  # this build's, once saved
        self._db: sqlite3.Connection | None = None
        self._directories: set[str] = set()  # made (or found) this build: one mkdir each, not one per file
        self.states: dict[str, tuple[int, int]] = {}  # key -> (size, mtime) of a file put or restored
        self._rows: dict[str, tuple[int, int, str, int]] | None = None  # the page cache's index, once read whole
        self._to_link: list[tuple[str, str]] = []  # (key, target) found by restore_later, not yet linked
        self._group_names: dict[str, list[str]] | None = None  # group key -> its files in the last build
        self._lookups = 0

    def state_of(self, name: str) -> tuple[int, int] | None:
        """(size, mtime) of a file this build restored or rendered into the staging directory,
        as the cache recorded it: it is the same file."""
        if name in self.grouped:
            key = digest(self.grouped[name], name)
        else:
            key = self.restored.get(name) or self.rendered.get(name) or ""
        return self.states.get(key)

    def key_of(self, name: str) -> str:
        """The key ``name`` was made under in this build ("" for another generator's file)."""
        return (self.kept.get(name) or self.restored.get(name) or self.rendered.get(name)
                or self.grouped.get(name) or "")

    # -- the page cache

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self.pages_dir.mkdir(parents=True, exist_ok=True)
            for legacy in self.cache_dir.glob("pages.sqlite*"):  # the page cache of format 1 held the bytes
                legacy.unlink(missing_ok=True)
            path = self.pages_dir / "index.sqlite"
            try:
                self._db = self._open(path)
            except sqlite3.DatabaseError as error:
                logger.warning("Starting a new page cache: %s was unreadable (%s)", path, error)
                path.unlink(missing_ok=True)
                self._db = self._open(path)
        return self._db

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=60, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE IF NOT EXISTS pages (key TEXT PRIMARY KEY, size INTEGER NOT NULL, "
                   "mtime INTEGER NOT NULL, digest TEXT NOT NULL, indexed INTEGER NOT NULL)")
        return db

    def _file(self, key: str) -> str:
        return f"{self.pages_dir}{os.sep}{key[:2]}{os.sep}{key}"

    def make_parent(self, path: str) -> None:
        """Make the directory ``path`` goes in, once per build (a full build makes 60,000)."""
        missing = []
        directory = os.path.dirname(path)
        while directory not in self._directories:
            missing.append(directory)
            directory, below = os.path.dirname(directory), directory
            if directory == below:  # no directory of this build above: the first file in a new tree
                os.makedirs(missing[0], exist_ok=True)
                self._directories.update(missing)
                return
        for directory in reversed(missing):
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory)
            self._directories.add(directory)

    def _row(self, key: str) -> tuple[int, int, str, int] | None:
        """The index's (size, mtime, digest, indexed) of the cached file of ``key``. After many
        look-ups (a build into an empty output makes 60,000), the index is read whole, in one query."""
        if self._rows is None:
            self._lookups += 1
            if self._lookups <= self.LOOKUPS_ONE_BY_ONE:
                row = self.db.execute("SELECT size, mtime, digest, indexed FROM pages WHERE key = ?", (key,)).fetchone()
                return row  # type: ignore[no-any-return]
            self._rows = {key: row for key, *row in self.db.execute(
                "SELECT key, size, mtime, digest, indexed FROM pages")}  # type: ignore[misc]
        return self._rows.get(key)

    def _lookup(self, key: str) -> tuple[str, bool] | None:
        """(digest, indexed) of the cached file of ``key``, if it is there as it was cached."""
        row = self._row(key)
        if row is None or file_state(self._file(key)) != (row[0], row[1]):
            return None
        self.states[key] = row[0], row[1]
        return row[2], bool(row[3])

    def restore(self, key: str, target: str) -> tuple[str, bool] | None:
        """Put the cached file of ``key`` at ``target`` (a new path); its (digest, indexed), or None
        when the cache has no such file."""
        found = self._lookup(key)
        if found is not None:
            for copied in self._link([(key, target)]):
                self.states.pop(copied, None)  # a copy: a file of its own
        return found

    def restore_later(self, key: str, target: str) -> tuple[str, bool] | None:
        """``restore``, but the file is put at ``target`` by ``link_restored``, with the others."""
        found = self._lookup(key)
        if found is not None:
            self._to_link.append((key, target))
        return found

    def link_restored(self) -> None:
        """Put the files ``restore_later`` found at their targets. A build into an empty output
        restores 60,000 pages, and making a directory and a link for each is nearly all of its
        time (in the kernel): two processes, a half each, take about half as long."""
        from .parallel import in_two  # (parallel imports build, which imports us)

        links, self._to_link = self._to_link, []
        if len(links) < self.LINK_APART_FROM:
            copied = self._link(links)
        else:
            mine, others = split_by_directory(links)
            copied, theirs = in_two(self._link, mine, others)
            # A process that failed part way: its half is linked here, over whatever it made.
            copied += theirs if theirs is not None else self._link(others, replace=True)
        for key in copied:
            self.states.pop(key, None)  # a copy: a file of its own

    def _link(self, links: list[tuple[str, str]], replace: bool = False) -> list[str]:
        """Link each (key, target) of ``links``; returns the keys whose file had to be copied."""
        copied = []
        for key, target in links:
            self.make_parent(target)
            if replace:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(target)
            if not link_or_copy(self._file(key), target):
                copied.append(key)
        return copied

    def cached(self, key: str) -> bytes | None:
        """The bytes cached under ``key``, if any."""
        if self._lookup(key) is None:
            return None
        with open(self._file(key), "rb") as file:
            return file.read()

    def put(self, key: str, source: str | Path, scanned: tuple[str, bool] | None = None,
            state: tuple[int, int] | None = None) -> tuple[str, bool]:
        """Cache the file ``source`` (which nobody will write to again) under ``key``. ``scanned``
        is its (digest, indexed) and ``state`` its (size, mtime), when known without asking again."""
        return self._record(key, self._link_in(key, str(source)), source, scanned, state)

    def _link_in(self, key: str, source: str) -> bool:
        """Put ``source`` into the cache under ``key``: linked (True) or copied."""
        path = self._file(key)
        self.make_parent(path)
        try:
            return link_or_copy(source, path)
        except FileExistsError:  # an older file under this key (changed since, or from a copy)
            if os.path.samefile(source, path):  # linked already (rename would leave the temporary link)
                return True
            temporary = f"{path}.{os.getpid()}.tmp"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            linked = link_or_copy(source, temporary)
            os.replace(temporary, path)
            return linked

    def _link_all_in(self, files: list[tuple[str, str]]) -> list[tuple[str, bool]]:
        """``_link_in`` each (key, source) of ``files``: (key, linked) for each."""
        return [(key, self._link_in(key, source)) for key, source in files]

    def _record(self, key: str, linked: bool, source: str | Path, scanned: tuple[str, bool] | None,
                state: tuple[int, int] | None) -> tuple[str, bool]:
        """Enter the file just cached under ``key`` in the cache's index."""
        row = self._row_of(key, linked, source, scanned, state)
        self.db.execute("INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?)", row)
        return row[3], bool(row[4])

    def _row_of(self, key: str, linked: bool, source: str | Path, scanned: tuple[str, bool] | None,
                state: tuple[int, int] | None) -> tuple[str, int, int, str, int]:
        """The index's row for the file just cached under ``key`` (also noted in ``_rows`` and ``states``)."""
        if scanned is None:
            with open(source, "rb") as file:
                content = file.read()
            scanned = digest(content), PAGEFIND_BODY in content
        size, mtime = (state if linked and state else file_state(self._file(key))) or (-1, -1)  # a link: the same file
        if self._rows is not None:
            self._rows[key] = (size, mtime, scanned[0], int(scanned[1]))
        if linked:
            self.states[key] = size, mtime
        return key, size, mtime, scanned[0], int(scanned[1])

    def save(self, items: Iterable[tuple[str, bytes]]) -> None:
        """Cache each (key, bytes) of ``items``."""
        with self._transaction():
            for key, content in items:
                temporary = f"{self._file(key)}.new"
                self.make_parent(temporary)
                with open(temporary, "wb") as file:
                    file.write(content)
                self.put(key, temporary)
                os.unlink(temporary)

    def walk_and_cache(self, staging: Path) -> tuple[Tree, list[tuple[str, bool]]]:
        """Walk the staging directory (``Tree.walk``) and put the pages this build rendered into
        the cache; the walk, and (key, linked) for each page put. The cache's index is written
        by ``save_rendered``.

        A first build renders 60,000 pages in 70,000 directories: reading those directories
        and linking each page into the cache is nearly all kernel time, which two processes
        take about half as long over. From ``LINK_APART_FROM`` rendered or restored pages (a
        build into an empty output restores 80,000 and walks them all), the first two levels are
        read here and the directories below them shared between two processes.
        """
        from .parallel import in_two  # (parallel imports build, which imports us)

        if len(self.rendered) + len(self.restored) < self.LINK_APART_FROM:
            tree = Tree.walk(staging, self.state_of)
            return tree, self._link_all_in(self._rendered_in(staging, tree.files))
        tree = Tree.walk(staging, self.state_of, levels=2)
        linked = self._link_all_in(self._rendered_in(staging, tree.files))
        units = sorted(tree.unread)
        mine, theirs = in_two(functools.partial(self._walk_and_link, staging), units[0::2], units[1::2])
        if theirs is None:  # that process failed: its half is done here (links it made are found as such)
            theirs = self._walk_and_link(staging, units[1::2])
        for files, dirs, part in (mine, theirs):
            tree.add(files, dirs)
            linked += part
        tree.unread = []
        return tree, linked

    def _walk_and_link(self, staging: Path, below: list[str]) -> tuple[dict[str, tuple[int, int]], dict[str, int],
                                                                        list[tuple[str, bool]]]:
        """``walk_and_cache`` of the directories ``below``, as plain data (from another process)."""
        part = Tree.walk(staging, self.state_of, below=below)
        return part.files, part.dirs, self._link_all_in(self._rendered_in(staging, part.files))

    def _rendered_in(self, staging: Path, names: Iterable[str]) -> list[tuple[str, str]]:
        """(key, path) of each page of ``names`` this build rendered."""
        rendered = self.rendered
        return [(key, f"{staging}{os.sep}{name}") for name in names if (key := rendered.get(name)) is not None]

    def save_rendered(self, staging: Path, states: Mapping[str, tuple[int, int]],
                      linked: list[tuple[str, bool]]) -> None:
        """Enter the pages this build rendered, which ``walk_and_cache`` put into the cache (``linked``),
        in the cache's index. ``states`` holds their (size, mtime), as the walk found them. Those
        made from templates that do not mark pages for Pagefind (``unmarked``: 60,000 clinic pages)
        need not be read, nor pages scanned already."""
        names = {key: name for name, key in self.rendered.items()}
        rows = []
        for key, was_linked in linked:
            name = names[key]
            scanned = self.scans.get(name) or (UNMARKED if name in self.unmarked else None)
            rows.append(self._row_of(key, was_linked, f"{staging}{os.sep}{name}", scanned, states.get(name)))
            self.scans[name] = rows[-1][3], bool(rows[-1][4])
        with self._transaction():
            self.db.executemany("INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?)", rows)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def prune(self, batch: int = 5000, slack: int = 64 * 2**20) -> None:
        """Drop up to ``batch`` cached files this build did not use, when the cache holds over
        three times as many bytes as the site. Until then it keeps earlier versions of pages
        (another branch, the settings of ``make publish``); the files the output holds cost
        no space of their own."""
        if self.manifest is None:
            return
        site_bytes = sum(size for _key, size, _mtime in self.manifest.files.values())
        (cached_bytes,) = self.db.execute("SELECT coalesce(sum(size), 0) FROM pages").fetchone()
        if cached_bytes <= 3 * site_bytes + slack:
            return
        group_keys = set(self.groups.values())
        files = {**self.kept, **self.restored, **self.rendered, **self.grouped}
        used = {digest(key, name) if key in group_keys else key for name, key in files.items()}
        used.update(digest("group", group, key) for group, key in self.groups.items())
        with self._transaction():
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS used (key TEXT PRIMARY KEY)")
            self.db.execute("DELETE FROM used")
            self.db.executemany("INSERT OR IGNORE INTO used VALUES (?)", ((key,) for key in used))
            unused = [key for (key,) in self.db.execute(
                "SELECT key FROM pages WHERE key NOT IN (SELECT key FROM used) LIMIT ?", (batch,))]
            self.db.executemany("DELETE FROM pages WHERE key = ?", ((key,) for key in unused))
            for key in unused:
                if self._rows is not None:
                    self._rows.pop(key, None)
            for key in unused:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._file(key))

    def close(self) -> None:
        if self._checking is not None:
            self._checking.close()
            self._checking = None
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- groups of files made together

    def group_files(self, group: str, key: str) -> list[str] | None:
        """The files of a group the last build put into the output under ``key``, if it did."""
        if self.previous is None or self.previous.groups.get(group) != key:
            return None
        if self._group_names is None:  # made once: a build asks for four groups, of 60,000 files
            self._group_names = {}
            group_keys = set(self.previous.groups.values())
            for name, (file_key, _size, _mtime) in self.previous.files.items():
                if file_key in group_keys:
                    self._group_names.setdefault(file_key, []).append(name)
        return list(self._group_names.get(key, ()))

    def output_group(self, group: str, key: str) -> list[str] | None:
        """The files of a group the output holds as the last build made them under ``key``, if it does."""
        names = self.group_files(group, key)
        return names if names is not None and all(self.output_holds(name, key) for name in names) else None

    def keep_group(self, group: str, key: str, names: Iterable[str]) -> None:
        for name in names:
            self.kept[name] = key
        self.groups[group] = key

    def record_group(self, group: str, key: str, names: Iterable[str]) -> None:
        for name in names:
            self.grouped[name] = key
        self.groups[group] = key

    def cached_group(self, group: str, key: str) -> list[str] | None:
        """The files of a group cached under ``key``, if every one of them still is."""
        listing = self.cached(digest("group", group, key))
        if listing is None:
            return None
        names: list[str] = json.loads(listing)
        return names if all(self._lookup(digest(key, name)) for name in names) else None

    def restore_group(self, key: str, names: Iterable[str], into: Path) -> None:
        """Put a cached group's files under ``into``."""
        for name in names:
            restored = self.restore(digest(key, name), f"{into}{os.sep}{name}")
            assert restored is not None, "cached_group said it was complete"

    def save_group(self, group: str, key: str, names: list[str], root: Path,
                   elsewhere: Mapping[str, str] | None = None) -> None:
        """Cache a group's files, which are at ``root / name`` (or at ``elsewhere[name]``)."""
        elsewhere = elsewhere or {}
        with self._transaction():
            for name in names:
                self.put(digest(key, name), elsewhere.get(name) or root / name)
        self.save([(digest("group", group, key), json.dumps(sorted(names)).encode("utf-8"))])

    # -- the output directory

    def output_path(self, name: str) -> str:
        return self._prefix + name

    def previous_group_key(self, group: str) -> str | None:
        """The key of ``group``'s files in the output, as the last build left them."""
        return self.previous.groups.get(group) if self.previous is not None else None

    def output_has_bytes(self, name: str, key: str | None, content: bytes) -> bool:
        """Whether the output has file ``name`` as the last build wrote it under ``key``, holding ``content``."""
        if key is None or not self.output_holds(name, key):
            return False
        try:
            with open(self._prefix + name, "rb") as file:
                return file.read(len(content) + 1) == content
        except OSError:
            return False

    @property
    def changes(self) -> Changes:
        """What changed in the output since the last build into it (nothing, when it is unknown to us)."""
        if self._changes is None:
            found = self._checking.result() if self._checking is not None else ([], [])
            if found is None:  # the process failed: look here
                assert self.previous is not None
                found = changes_since(self._prefix, self.previous)
            self._changes = Changes(set(found[0]), set(found[1]))
        return self._changes

    def output_holds(self, name: str, key: str) -> bool:
        """Whether the output has file ``name`` as the last build wrote it, under ``key``."""
        if self.previous is None:
            return False
        recorded = self.previous.files.get(name)
        if recorded is None or recorded[0] != key:
            return False
        return name not in self.changes.files

    def unchanged_since_last_build(self) -> bool:
        """Whether the last build had the same inputs, and left an output nobody has touched since."""
        previous = self.previous
        if previous is None:
            return False
        if previous.inputs != self.inputs.everything:
            logger.info("Building %s: an input changed since its last build", self.output)
            return False
        changed = min(self.changes.files, default=None) or min(
            (name or "." for name in self.changes.dirs), default=None)
        if changed:
            logger.info("Building %s: %s changed since its last build", self.output, changed)
        return changed is None

    def save_manifest(self, names: Iterable[str], touched: set[str] | None = None, known: Tree | None = None) -> None:
        """Record the output: ``names`` are all its files. Only directories in ``touched`` changed
        (all of them when None) since the last build, or since ``known`` was walked, which gives
        the state of the files it holds."""
        previous = self.previous or Manifest()
        unchanged_dirs = known.dirs if known is not None else previous.dirs
        known_files = known.files if known is not None else {}
        manifest = Manifest(self.inputs.everything, groups=dict(self.groups),
                            indexed=dict(sorted(self.indexed.items())))
        kept, recorded_files = self.kept, previous.files
        for name in names:
            key = kept.get(name)
            if key is not None and (recorded := recorded_files.get(name)) is not None:
                # Untouched; its key is new when a group of files was remade with these same bytes.
                manifest.files[name] = recorded if recorded[0] == key else [key, *recorded[1:]]
                continue
            key = self.key_of(name)
            if name in known_files:
                manifest.files[name] = [key, *known_files[name]]
            else:
                state = file_state(self._prefix + name)
                if state is not None:
                    manifest.files[name] = [key, *state]
        if touched is not None and known is None and manifest.files.keys() == recorded_files.keys():
            # The same files as last time (an edit, not a new page): the same directories, and only
            # those touched can have a new mtime (a clinic edit: a few of 70,000).
            manifest.dirs = dict(previous.dirs)
            for directory in touched & manifest.dirs.keys():
                if (mtime := mtime_of(self._prefix + directory)) is not None:
                    manifest.dirs[directory] = mtime
        else:
            directories = {""}
            for parent in {name.rpartition("/")[0] for name in manifest.files}:
                while parent not in directories:
                    directories.add(parent)
                    parent = parent.rpartition("/")[0]
            for directory in sorted(directories):
                if touched is not None and directory not in touched and directory in unchanged_dirs:
                    manifest.dirs[directory] = unchanged_dirs[directory]
                elif (mtime := mtime_of(self._prefix + directory)) is not None:
                    manifest.dirs[directory] = mtime
        manifest.save(self.manifest_path)
        self.manifest = manifest
        # One manifest per output directory ever built (tests build into temporary ones): keep the recent.
        manifests = sorted(self.manifest_path.parent.glob("*.marshal"), key=lambda p: p.stat().st_mtime,
                           reverse=True)
        for stale in manifests[self.KEEP_MANIFESTS:]:
            stale.unlink(missing_ok=True)


def reusing_writer(store: PageStore) -> type:
    """A Pelican ``Writer`` class (for the ``get_writer`` signal) that consults ``store``."""
    from pelican.utils import sanitised_join
    from pelican.writers import Writer

    class ReusingWriter(Writer):  # type: ignore[misc]
        """Pelican's writer, plus ``reuse``: skip a page the output or the page cache already has."""

        page_store = store

        def _path_of(self, name: str) -> str:
            """Where page ``name`` goes. Pelican's ``sanitised_join`` makes both paths absolute on each
            call (60,000 pages): it is kept for names that could leave the output directory."""
            if name.startswith("/") or ".." in name.split("/") or "\\" in name:
                return str(sanitised_join(self.output_path, name))
            if not hasattr(self, "_prefix"):
                self._prefix = os.path.join(os.path.abspath(self.output_path), "")
            return self._prefix + name

        def reuse(self, name: str, key: str) -> bool:
            """True when page ``name`` needs no rendering: the output holds it under ``key``
            (nothing is written), or the cache does (it is put in the staging directory, by
            ``store.link_restored()``, which the generator calls once it has asked for every page)."""
            if name in store.kept or name in store.restored or name in store.rendered:
                return False  # written twice: let Pelican's writer refuse it as usual
            if store.output_holds(name, key):
                store.kept[name] = key
                return True
            scanned = store.restore_later(key, self._path_of(name))
            if scanned is None:
                store.rendered[name] = key
                return False
            store.restored[name] = key
            store.scans[name] = scanned
            return True

        def has_group(self, group: str, key: str) -> bool:
            """Whether the output or the cache holds the files of ``group`` made under ``key``."""
            return store.output_group(group, key) is not None or store.cached_group(group, key) is not None

        def write_group(self, group: str, directory: str, key: str, make: Callable[[], Mapping[str, bytes]]) -> None:
            """Files made together (``make()`` returns relative path -> bytes, under ``directory``),
            made only when neither the output nor the cache has them under ``key``."""
            names = store.output_group(group, key)
            if names is not None:
                store.keep_group(group, key, names)
                return
            names = store.cached_group(group, key)
            if names is None:
                files = {posixpath.join(directory, relative): content for relative, content in make().items()}
                # A file the output holds with these bytes (from the group's last version) is kept:
                # after a clinic edit, one cell of the location index changes, not all 1,300 files.
                kept = {name: store.output_path(name) for name, content in files.items()
                        if store.output_has_bytes(name, store.previous_group_key(group), content)}
                for name, content in files.items():
                    if name in kept:
                        store.kept[name] = key
                        continue
                    path = sanitised_join(self.output_path, name)
                    store.make_parent(path)
                    with open(path, "wb") as file:
                        file.write(content)
                names = sorted(files)
                store.save_group(group, key, names, Path(self.output_path), kept)
            else:
                store.restore_group(key, names, Path(self.output_path))
            store.record_group(group, key, names)

    return ReusingWriter
