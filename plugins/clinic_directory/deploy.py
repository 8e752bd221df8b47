"""Where ``make publish`` puts a built site: the deploy targets, each all or nothing.

``TARGET`` forms (INTERFACE.md, section 1):

    /srv/www/clinics        a local directory (created when missing)
    user@host:path          rsync over SSH            (deploy_rsync.py)
    s3://bucket/prefix      S3-compatible storage     (deploy_s3.py)
    ghpages:<git remote>    a ``gh-pages`` branch     (deploy_ghpages.py)

Every target can say what a deploy would change without changing anything (``changes``:
``DRY_RUN=1`` prints it) and deploys so that a failure leaves the live site as it was
(``deploy`` raises ``DeployFailed``, whose message says what happened to the live site).
A file counts as changed when its bytes differ, never for its mtime alone: a rebuild that
changes one clinic uploads that clinic's pages, not the whole site.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .cache import current_umask, link_or_copy

# Every build writes this file at the site's root (``generator.py``), so a target that holds it holds a
# site ``make publish`` put there. A deploy removes whatever else the target holds: into a target that
# holds files but not this one, ``publish.py`` refuses to deploy.
SITE_MARKER = ".clinic-directory-site"
SITE_MARKER_TEXT = (b"This directory holds a site published by the clinic directory's `make publish`, which "
                    b"replaces everything here with the newly built site.\n")


class DeployFailed(Exception):
    """A deploy that did not happen; the message says why and what the live site holds now."""


@dataclass(frozen=True)
class Changes:
    """What a deploy changes on the target: file names relative to the site's root, POSIX style."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def summary(self) -> str:
        return (f"{len(self.added):,} added, {len(self.changed):,} changed, {len(self.removed):,} removed, "
                f"{self.unchanged:,} unchanged")

    def listing(self) -> str:
        """One line per file that changes, as ``+ new``, ``~ changed``, ``- removed``."""
        return "\n".join([*(f"+ {name}" for name in self.added), *(f"~ {name}" for name in self.changed),
                          *(f"- {name}" for name in self.removed)])


class Target(ABC):
    """A place a site is published to. ``label`` is the target as the user wrote it."""

    label: str

    @abstractmethod
    def changes(self, site: Path) -> Changes:
        """What ``deploy(site)`` would change; reads the target, changes nothing."""

    @abstractmethod
    def deploy(self, site: Path) -> Changes:
        """Make the target serve exactly ``site``'s files, or raise ``DeployFailed`` with the live site as it was."""


def site_files(site: Path) -> dict[str, Path]:
    """Every file under ``site`` by relative POSIX name, sorted; symbolic links are refused (a
    build makes none, and following one could publish a file from outside the site)."""
    if not site.is_dir():  # there would be no files: an empty site, which would empty the target
        raise DeployFailed(f"{site} is not a directory holding a built site; nothing was published")
    found: dict[str, Path] = {}

    def walk(directory: str, prefix: str) -> None:
        with os.scandir(directory) as entries:  # the entries' types come with the listing: no stat each
            for entry in entries:
                if entry.is_symlink():
                    raise DeployFailed(f"{entry.path} is a symbolic link; a built site has none, so nothing "
                                       "was published")
                if entry.is_dir():
                    walk(entry.path, f"{prefix}{entry.name}/")
                else:
                    found[prefix + entry.name] = Path(entry.path)

    walk(str(site), "")
    return dict(sorted(found.items()))


def file_md5(path: Path) -> str:
    """The MD5 hex digest S3 reports as a simple upload's ETag (not a security check: a change detector)."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "md5").hexdigest()


def compare(new: Mapping[str, str], live: Mapping[str, str]) -> Changes:
    """Changes from ``live`` to ``new``, both name -> a digest of the file's bytes (the same kind)."""
    added = tuple(name for name in new if name not in live)
    changed = tuple(name for name in new if name in live and live[name] != new[name])
    removed = tuple(sorted(name for name in live if name not in new))
    return Changes(added, changed, removed, len(new) - len(added) - len(changed))


# -- TARGET ----------------------------------------------------------------------------------------------

RSYNC_TARGET = re.compile(r"[^\s/@:]+@[^\s/@:]+:.*")


def parse_target(text: str, work: Path) -> Target:
    """The target ``text`` names (INTERFACE.md's forms); ``work`` is a directory the target may keep
    state in between publishes (a clone of the gh-pages branch, say)."""
    if not text.strip():
        raise DeployFailed("say where to publish: make publish TARGET=<directory, user@host:path, "
                           "s3://bucket/prefix or ghpages:<git remote>>")
    if text.startswith("s3://"):
        from .deploy_s3 import S3Target

        return S3Target(text, work)
    if text.startswith("ghpages:"):
        from .deploy_ghpages import GhPagesTarget

        return GhPagesTarget(text, work)
    if RSYNC_TARGET.fullmatch(text):
        from .deploy_rsync import RsyncTarget

        return RsyncTarget(text, work)
    return LocalTarget(text)


# -- a local directory -------------------------------------------------------------------------------------


class LocalTarget(Target):
    """A directory a web server serves. The new site is assembled beside it, then swapped in with one
    atomic rename: a visitor sees the old site or the new one, never a mixture. An unchanged file is
    a hard link to the live one (it keeps its mtime and takes no space); a new or changed one is a
    copy, so that nothing done to the live files in place can reach the build's files or its cache.
    """

    def __init__(self, text: str) -> None:
        self.label = text
        self.path = Path(text).expanduser().absolute()

    def changes(self, site: Path) -> Changes:
        self._check_target()
        new = site_files(site)
        live = site_files(self.path) if self.path.is_dir() else {}
        return _compare_files(new, live)

    def deploy(self, site: Path) -> Changes:
        self._check_target()
        new = site_files(site)
        live = site_files(self.path) if self.path.is_dir() else {}
        changes = _compare_files(new, live)
        if changes.empty and self.path.is_dir():
            return changes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.new-", dir=self.path.parent))
        try:
            same = set(new) - set(changes.added) - set(changes.changed)
            for name, source in new.items():
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if name in same:
                    link_or_copy(live[name], target)
                else:
                    shutil.copy2(source, target)
            os.chmod(staging, 0o777 & ~current_umask())
            if self.path.is_dir():
                exchange(staging, self.path)  # staging now holds the old site
            else:
                os.rename(staging, self.path)
                staging = None
        except OSError as error:
            raise DeployFailed(f"could not publish to {self.path}: {error}; the live site is as it was") from error
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
        return changes

    def _check_target(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise DeployFailed(f"{self.path} is a file, not a directory; publish to a directory")


def _compare_files(new: Mapping[str, Path], live: Mapping[str, Path]) -> Changes:
    """Compare by bytes, unless size and mtime tell (as rsync's quick check does): a live file
    published as a copy keeps the built file's mtime, and a build writes a file again only with new
    bytes, so the same size and mtime is the same file; a file rewritten with the same bytes (a new
    mtime) is read."""
    def same(name: str) -> bool:
        a, b = new[name].stat(), live[name].stat()
        if a.st_size != b.st_size:
            return False
        if (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev) or a.st_mtime_ns == b.st_mtime_ns:
            return True
        return new[name].read_bytes() == live[name].read_bytes()

    added = tuple(name for name in new if name not in live)
    changed = tuple(name for name in new if name in live and not same(name))
    removed = tuple(name for name in live if name not in new)
    return Changes(added, changed, removed, len(new) - len(added) - len(changed))


RENAME_EXCHANGE = 2  # linux/fs.h


def exchange(a: Path, b: Path) -> None:
    """Swap two directories in one step (Linux ``renameat2`` with ``RENAME_EXCHANGE``), or, where the
    system cannot, with two renames in a row (``b`` is missing between them for a moment)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        at_fdcwd = -100
        if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), RENAME_EXCHANGE) == 0:
            return
        error = ctypes.get_errno()
        if error not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(error, os.strerror(error), str(b))
    aside = b.with_name(f"{b.name}.old-{os.getpid()}")
    os.rename(b, aside)
    try:
        os.rename(a, b)
    except OSError:
        os.rename(aside, b)
        raise
    os.rename(aside, a)
