"""``user@host:path``: publish with rsync over SSH, so that the remote directory holds exactly the site.

``path`` is absolute (``/srv/www/clinics``) or relative to the remote user's home (``www``, ``~/www``);
it is made when missing. One rsync run does the deploy, with these choices (``rsync_options``):

- Files are compared by their bytes (``--checksum``), and modification times are not copied: a file
  whose bytes did not change is neither sent nor touched, whatever its mtime after a rebuild, so the
  web server keeps its ``Last-Modified`` and browsers their cached copy.
- New and changed files wait in a hidden ``.~tmp~`` directory beside their place until every file
  has arrived, and are then renamed into place one after another (``--delay-updates``); files the
  site no longer has are deleted after that (``--delete-delay``). A transfer that breaks off leaves
  the live site's files as they were. The ``.~tmp~`` copies it leaves behind are used, then removed,
  by the next publish (the ``R`` filter rule: rsync protects its own holding directories otherwise).
- Owners and groups are not copied (the web host's user is not ours); modes are set to what a web
  server can read (directories 755, files 644). Symbolic links are refused before rsync runs.

SSH settings are the user's: ``~/.ssh/config``, or ``RSYNC_RSH``, which rsync reads. Nothing may ask
for a password or a host key: when ``RSYNC_RSH`` is not set, ssh runs with ``BatchMode=yes``, and
rsync always runs in a session of its own, without a terminal to ask on.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
import signal
import subprocess
import tempfile
from pathlib import Path

from .deploy import Changes, DeployFailed, Target, site_files

HOLDING = ".~tmp~"  # rsync's holding directory for --delay-updates (its default partial-dir)
MODES = "D755,F644"
IO_TIMEOUT = 60  # seconds without a byte either way; a hung ssh or host fails instead of waiting forever
DEFAULT_RSH = "ssh -o BatchMode=yes"

# ``%i``: what happens to the item, 11 characters (``<f+++++++++`` a new file, ``<fcs.......`` one whose
# bytes differ, ``.f...p.....`` a mode only, ``*deleting  ``); ``%n``: its name, with a trailing slash for
# a directory. rsync escapes control characters (except tab) in names as ``\#ooo`` but never a tab, so
# the first tab on a line ends the flags.
OUT_FORMAT = "%i\t%n"
ITEM = re.compile(rb"([<>ch.][fdLDS][^\t]{9}|\*deleting *)\t(.*)")
ESCAPE = re.compile(rb"\\#([0-7]{3})")

SHELL_PATTERN = re.compile(r"[*?\[\]]")  # rsync leaves these for the remote shell to expand
# A normalized path the site would replace wholesale: a home directory, /, or a directory above the home.
HOME_OR_ROOT = re.compile(r"~[^/]*|\.|/+|(\.\./)*\.\.|")


class RsyncTarget(Target):
    """``user@host:path``; ``work`` is unused (the remote directory itself is all the state there is)."""

    def __init__(self, text: str, work: Path, *, io_timeout: int = IO_TIMEOUT) -> None:
        self.label = text
        self.user, self.host, self.path = parse_remote(text)
        # With a trailing slash on both sides rsync syncs the site's contents into the directory ``path``.
        self.destination = f"{self.user}@{self.host}:{self.path}/"
        self.io_timeout = io_timeout

    def changes(self, site: Path) -> Changes:
        return self._rsync(site, dry_run=True)

    def deploy(self, site: Path) -> Changes:
        return self._rsync(site, dry_run=False)

    def rsync_command(self, site: Path, dry_run: bool) -> list[str]:
        """The whole command line (also what a dry run runs, with ``--dry-run``)."""
        # An absolute source: a relative one with a colon before its first slash would name a host.
        return ["rsync", *rsync_options(self.io_timeout), *(["--dry-run"] if dry_run else []),
                f"{site.absolute()}/", self.destination]

    def _rsync(self, site: Path, dry_run: bool) -> Changes:
        files = site_files(site)  # refuses symbolic links, and counts the unchanged files
        for name in files:
            if HOLDING in name.split("/"):
                raise DeployFailed(f"{site / name}: rsync keeps its unfinished files in directories named {HOLDING} "
                                   f"and would not publish this one; nothing was published to {self.label}")
        code, out, err = run_alone(self.rsync_command(site, dry_run), rsync_environment())
        if code != 0:
            raise DeployFailed(self._failure(code, err.decode(errors="replace"), dry_run))
        added, changed, removed = itemized(out)
        return Changes(added, changed, removed, len(files) - len(added) - len(changed))

    def _failure(self, code: int, stderr: str, dry_run: bool) -> str:
        """Why rsync failed, what would fix it, and what the live site holds now."""
        cause = diagnosis(code, stderr, self)
        said = quote(stderr)
        doing = "compare the site with" if dry_run else "publish to"
        return (f"could not {doing} {self.label}: {cause}" + (f"; rsync said: {said}" if said else "")
                + f"; {live_site(code, stderr, dry_run, self.host)}")


def parse_remote(text: str) -> tuple[str, str, str]:
    """``user@host:path`` as (user, host, path without trailing slashes); refuses a path that is the remote
    home or root (``--delete`` would empty it) and shell patterns (the remote shell would expand them)."""
    user, _, rest = text.partition("@")
    host, _, path = rest.partition(":")
    if not user or not host or user.startswith("-") or host.startswith("-"):
        raise DeployFailed(f"{text}: not a user@host:path target (a user or host may not be empty or start with -)")
    if HOME_OR_ROOT.fullmatch(posixpath.normpath(path.strip()) if path.strip() else ""):
        raise DeployFailed(f"{text}: name a directory for the site, such as {user}@{host}:www or "
                           f"{user}@{host}:/srv/www/clinics; publishing deletes every other file in it, so it cannot "
                           "be a home directory, one above it, or /")
    if SHELL_PATTERN.search(path):
        raise DeployFailed(f"{text}: the path may not contain * ? [ or ] (the remote shell would expand them)")
    return user, host, path.rstrip("/")


def rsync_options(io_timeout: int) -> list[str]:
    options = [
        "--recursive", "--checksum", "--delete", "--delete-delay", "--delay-updates",
        f"--filter=R {HOLDING}/",  # before rsync's own protect rule: old holding directories may be deleted
        "--perms", f"--chmod={MODES}", f"--timeout={io_timeout}",
        "--8-bit-output", f"--out-format={OUT_FORMAT}",
        # The remote rsync's errors come back through the connection, not its stderr: when rsync fails it
        # ends ssh at once, and ssh would often drop the error that says why ("File too large").
        "--no-msgs2stderr",
    ]
    if supports_mkpath():
        options.append("--mkpath")  # without it rsync makes only the last directory of the path
    if not os.environ.get("RSYNC_RSH"):
        options.append(f"--rsh={DEFAULT_RSH}")
    return options


@functools.cache
def supports_mkpath() -> bool:
    """Whether the installed rsync has ``--mkpath`` (3.2.3 and later)."""
    code, out, _ = run_alone(["rsync", "--help"], rsync_environment())
    return b"--mkpath" in out


def rsync_environment() -> dict[str, str]:
    """The user's environment (RSYNC_RSH, SSH_AUTH_SOCK), with messages in English because we read them,
    and without an askpass program: with no terminal either, ssh cannot ask for anything."""
    return {**os.environ, "LC_ALL": "C", "SSH_ASKPASS_REQUIRE": "never"}


def run_alone(command: list[str], environment: dict[str, str]) -> tuple[int, bytes, bytes]:
    """Exit status, output and errors of ``command``, run in a session of its own (no terminal to prompt on).

    Output goes to files, not pipes: an ssh that outlives rsync (one still connecting when rsync timed
    out) would hold a pipe open. When rsync has exited, or on Ctrl-C, whatever is left of its group is
    ended while rsync is not yet reaped, so that the group's id cannot belong to anyone else yet."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=environment,
                                       start_new_session=True)
        except FileNotFoundError as error:
            raise DeployFailed("rsync is not installed (or not on PATH): install Debian's rsync package "
                               "(apt-get install rsync); nothing was published") from error
        try:
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        finally:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            process.wait()
        out.seek(0)
        err.seek(0)
        return process.returncode, out.read(), err.read()


def itemized(out: bytes) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Added, changed and removed files (sorted, relative POSIX names) from rsync's ``OUT_FORMAT`` lines.

    Only regular files count: not directories, and not rsync's holding directories (old ones are
    deleted on the way). A file whose mode alone changes (``.f...p.....``) keeps its bytes: unchanged."""
    added: set[str] = set()
    changed: set[str] = set()
    removed: set[str] = set()
    for line in out.split(b"\n"):
        match = ITEM.fullmatch(line)
        if not match:
            continue  # "created directory ...", and anything else rsync says on the way
        flags, name = match[1].decode(), unescape(match[2])
        if name.endswith("/") or HOLDING in name.split("/"):
            continue
        if flags.startswith("*deleting"):
            removed.add(name)
        elif flags[1] == "f" and flags[0] != ".":
            (added if "+++" in flags else changed).add(name)
    # A file that replaces a link or directory of the same name is deleted and sent: it changed.
    changed |= added & removed
    added -= removed
    removed -= changed
    return tuple(sorted(added)), tuple(sorted(changed)), tuple(sorted(removed))


def unescape(name: bytes) -> str:
    """A name as rsync printed it (``\\#ooo`` for a control character or a literal ``\\#``) as the
    file system's name, decoded the way ``os.walk`` decodes it."""
    return os.fsdecode(ESCAPE.sub(lambda match: bytes([int(match[1], 8)]), name))


# -- what went wrong ---------------------------------------------------------------------------------------

REMOTE_RSYNC_MISSING = "rsync is not installed on {host}: install it there (Debian's rsync package)"

# (stderr pattern, what it means and what would fix it); the first that matches wins.
HINTS: tuple[tuple[str, str], ...] = (
    (r"Permission denied \((publickey|password|keyboard)",
     "could not log in as {user} on {host}: check the SSH key (ssh-add, ~/.ssh/config) or RSYNC_RSH"),
    (r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED",
     "{host}'s host key is not known or has changed: connect once with ssh {user}@{host} to check it and accept it"),
    (r"Could not resolve hostname", "there is no host named {host}: check TARGET or your ~/.ssh/config"),
    (r"Connection refused|Connection timed out|No route to host|Network is unreachable|Connection closed by",
     "could not reach {host} over SSH: check the host and its port (~/.ssh/config, or -p in RSYNC_RSH)"),
    (r"rsync: (command )?not found|command not found: rsync", REMOTE_RSYNC_MISSING),
    (r"Failed to exec", "could not run the remote shell: check RSYNC_RSH"),
    (r"unknown option|protocol version mismatch",
     "the rsync on {host} is too old for these options: install rsync 3.2.3 or later there (Debian bookworm's)"),
    (r"No space left on device|Disk quota exceeded|File too large",
     "{host} has no room for the site: its disk is full, or the account's quota or file size limit was reached"),
    (r"Not a directory|destination must be a directory|mkdir .* failed: File exists",
     "{path} on {host} is, or is inside, a file rather than a directory: choose another path"),
    (r"Permission denied|Read-only file system",
     "{user} may not write to {path} on {host}: check the directory's owner and permissions"),
    (r"timeout|timed out", "nothing came back from {host} for {timeout} seconds: the connection or the host stalled"),
)


def diagnosis(code: int, stderr: str, target: RsyncTarget) -> str:
    for pattern, hint in HINTS:
        if re.search(pattern, stderr, re.IGNORECASE):
            return hint.format(user=target.user, host=target.host, path=target.path, timeout=target.io_timeout)
    if code == 127:
        return REMOTE_RSYNC_MISSING.format(host=target.host)  # the shell said so in words we do not know
    return f"rsync failed (exit status {code})"


NOISE = re.compile(r"rsync error: .*\(code \d+\)|rsync: connection unexpectedly closed")


def quote(stderr: str, limit: int = 600) -> str:
    """The lines of rsync's and ssh's errors that say something; rsync's closing summary only when alone."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    useful = [line for line in lines if not NOISE.search(line)] or lines
    text = " | ".join(useful)
    if len(text) > limit:
        text = text[:limit] + "..."
    return f'"{text}"' if text else ""


def live_site(code: int, stderr: str, dry_run: bool, host: str) -> str:
    """What the live site holds after rsync failed with ``code`` (said as honestly as rsync lets us know)."""
    if dry_run:
        return "this was a dry run: nothing was changed"
    if code in (14, 127) or "(0 bytes received so far)" in stderr:
        return f"rsync never got to start on {host}, so nothing was changed"
    if code in (23, 24):
        # Errors with some files (23) or files that vanished from the site (24) do not stop rsync's final
        # phase: it still renames the files that did arrive (and skips deleting anything on I/O errors).
        return ("rsync could not copy every file but put the others in place, so the live site may now mix old "
                "and new files: fix the cause and publish again")
    return ("rsync keeps new and changed files aside until all have arrived, so the live site's files are as they "
            "were (unless rsync failed while moving them into place at the very end: publish again to be sure); "
            f"any copies it made wait in hidden {HOLDING} directories, which the next publish uses and removes")
