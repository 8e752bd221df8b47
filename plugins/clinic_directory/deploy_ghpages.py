"""``ghpages:<git remote>``: publish the site as the ``gh-pages`` branch of a git repository.

The remote is anything ``git push`` accepts (``git@github.com:org/site.git``, ``https://...``,
``ssh://...``, ``git://...``, a path to a bare repository), or the name of a remote of the
repository ``make publish`` runs in (``ghpages:origin``). After a deploy, the branch's newest
commit holds exactly the site's files plus an empty ``.nojekyll``: without it GitHub Pages runs
Jekyll over the branch, which drops every file whose name starts with ``_`` (the site's ``_headers``).

Everything happens in a bare repository in the target's work directory, never in a checkout:
the remote's branch is fetched into a private ref there, the site's tree is written with a
throwaway index (``git add`` with the site as the work tree), and a commit on top of the fetched
one is pushed without force. A push moves the branch or it does not, and it does not when someone
else moved the branch after our fetch (not a fast-forward), so the live branch is never a
mixture and never loses someone else's publish.

Only git's own commands are used (no GitPython): whatever ``git push`` can reach from this shell,
with the user's credential helpers, SSH keys and ``url.*.insteadOf`` rules, this target can too.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .deploy import Changes, DeployFailed, Target, compare, site_files

BRANCH = "refs/heads/gh-pages"
FETCHED = "refs/remotes/publish/gh-pages"  # the private ref the remote's branch is fetched into
NOJEKYLL = ".nojekyll"
DEFAULT_NAME = "Clinic directory publisher"
DEFAULT_EMAIL = "publish@localhost"
REGULAR_FILE_MODES = ("100644", "100755")

# Attributes with the highest precedence ($GIT_DIR/info/attributes): whatever .gitattributes a site
# ships (a site about git might), no file is converted, filtered or re-encoded on its way into a blob.
NEUTRAL_ATTRIBUTES = "* -text -eol -filter -ident -working-tree-encoding\n"

# Settings on every git command line. The content ones matter for ``git add``: the user's autocrlf,
# excludes or attributes file must not change or drop a published file. They are repeated here
# although local commands also run without the user's config (below), because a git older than
# 2.32 ignores GIT_CONFIG_GLOBAL, and the default XDG ignore and attributes files are read even
# without any config. Hooks are off (the user's global core.hooksPath is not meant for this
# repository: a pre-push hook that runs the project's tests has nothing to do with the site), and
# automatic repacking runs in the foreground so that no git process outlives the publish.
GIT_SETTINGS = (
    "core.autocrlf=false", "core.safecrlf=false", "core.excludesFile=/dev/null",
    "core.attributesFile=/dev/null", "core.fileMode=false", "core.hooksPath=/dev/null",
    "core.fsmonitor=false", "gc.autoDetach=false", "maintenance.autoDetach=false",
)

# Variables with which a git hook or alias that runs ``make publish`` would point our git commands
# at another repository, index or object store (``git rev-parse --local-env-vars`` and kin).
REPOSITORY_VARIABLES = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_IMPLICIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_PREFIX", "GIT_GRAFT_FILE",
    "GIT_SHALLOW_FILE", "GIT_REPLACE_REF_BASE", "GIT_NO_REPLACE_OBJECTS", "GIT_QUARANTINE_PATH",
    "GIT_CONFIG", "GIT_TEMPLATE_DIR", "GIT_LITERAL_PATHSPECS", "GIT_GLOB_PATHSPECS", "GIT_NOGLOB_PATHSPECS",
    "GIT_ICASE_PATHSPECS",
)
USER_CONFIG_VARIABLES = re.compile(r"GIT_CONFIG_(PARAMETERS|COUNT|KEY_\d+|VALUE_\d+)")

REMOTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# What git (in the C locale) says when a fetch or push cannot work, and what would fix it; the first
# match wins (a hook's own words, quoted after "remote:", must not pass for git's). Each of these
# means nothing reached the remote's branch.
DIAGNOSES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("(fetch first)", "(non-fast-forward)", "[rejected]"),
     "someone else updated gh-pages after this publish read it (another publish, or a push by hand), "
     "so git refused to overwrite it: publish again"),
    (("[remote rejected]",),
     "the remote refused the push (a hook or a branch protection rule; git's lines below say which)"),
    (("Authentication failed", "could not read Username", "could not read Password", "terminal prompts disabled",
      "Permission denied (", "denied to ", "Host key verification failed", "returned error: 403", "Access denied"),
     "git could not authenticate: set up credentials that work without a prompt (a credential helper, or an "
     "SSH key in ssh-agent and the host in known_hosts), so that `git push` to this remote works in a shell"),
    (("does not appear to be a git repository", "Repository not found", "' not found", "repository not exported"),
     "the repository was not found: check the remote after ghpages: (a URL, a path, or the name of a remote "
     "of the repository make publish runs in; a private repository also looks missing to someone without "
     "access to it)"),
    (("Could not resolve host", "Could not resolve hostname", "Connection refused", "No route to host",
      "unable to connect", "Connection timed out", "Network is unreachable"),
     "the remote's host could not be reached: check its address and the network"),
)
# git's lines that say nothing the diagnosis does not (it adds them to most failures to reach a remote).
BOILERPLATE = ("Could not read from remote repository.", "Please make sure you have the correct access rights",
               "and the repository exists.")

AS_IT_WAS = "the live gh-pages branch is as it was"
NOT_PUSHED = f"nothing was pushed: {AS_IT_WAS}"
NOTHING_PUBLISHED = "nothing was published"


@dataclass(eq=False)
class GitFailed(Exception):
    """A git command that failed or ran out of time; ``stderr`` is what it said."""

    command: str
    returncode: int | None
    stderr: str
    timeout: float | None = None

    def __str__(self) -> str:
        if self.timeout is not None:
            return f"git {self.command} did not finish within {self.timeout:g} s"
        return f"git {self.command} failed (exit status {self.returncode})"

    def lines(self) -> list[str]:
        """git's lines worth showing: not blank, no ``hint:`` (it suggests ``git pull``, which is not the fix)."""
        kept = [line.strip() for line in self.stderr.splitlines()]
        return [line for line in kept if line and line != "remote:" and not line.startswith("hint:")
                and line.removeprefix("fatal: ") not in BOILERPLATE][-12:]

    def diagnosis(self) -> str | None:
        """What would fix it, when git's words tell."""
        if self.timeout is not None:
            return None
        return next((fix for signs, fix in DIAGNOSES if any(sign in self.stderr for sign in signs)), None)


class GhPagesTarget(Target):
    """A ``gh-pages`` branch, published by pushing one new commit on top of what the branch holds."""

    local_timeout: float = 300  # seconds for a git command that only reads and writes local files
    network_timeout: float = 600  # for a fetch or push: a first push of a large site on a slow line

    def __init__(self, text: str, work: Path) -> None:
        self.label = text
        self.spec = text.removeprefix("ghpages:").strip()
        if not self.spec:
            raise DeployFailed("say which git repository to publish to: ghpages:<git remote>, "
                               "e.g. ghpages:git@github.com:org/clinics.git")
        if self.spec.startswith("-"):
            raise DeployFailed(f"{text}: a git remote does not start with '-'")
        self.work = Path(work).absolute()
        self.repository = self.work / "gh-pages.git"

    # -- the Target interface ----------------------------------------------------------------------------

    def changes(self, site: Path) -> Changes:
        try:
            return self._prepare(site).changes
        except GitFailed as error:
            raise self._failed(error, NOTHING_PUBLISHED) from error

    def deploy(self, site: Path) -> Changes:
        try:
            plan = self._prepare(site)
            if plan.tree == plan.live_tree:
                return plan.changes
            commit = self._commit(plan)
        except GitFailed as error:
            raise self._failed(error, NOT_PUSHED) from error
        self._push(commit, plan.live)
        return plan.changes

    # -- the steps ------------------------------------------------------------------------------------------

    def _prepare(self, site: Path) -> Plan:
        """Fetch the live branch, write the site's tree, and compare the two (blob ids compare bytes)."""
        names = checked_site(site)
        live = self._fetch()
        tree = self._write_tree(site.absolute())
        new = self._files(tree)
        odd = sorted((set(new) ^ set(names)) - {NOJEKYLL}) + sorted(name for name, blob in new.items() if " " in blob)
        if odd:  # never seen: a safety net for whatever git might skip or turn into something else
            raise DeployFailed(f"git would not publish these files of the site as they are: {', '.join(odd[:5])}; "
                               f"{NOTHING_PUBLISHED}")
        live_tree = self._git("rev-parse", f"{live}^{{tree}}") if live else None
        old = {name: blob for name, blob in self._files(live_tree).items() if name != NOJEKYLL} if live_tree else {}
        changes = compare({name: new[name] for name in names if name != NOJEKYLL}, old)
        return Plan(live, live_tree, tree, changes)

    def _fetch(self) -> str | None:
        """The commit the remote's gh-pages holds now (None: no such branch yet), fetched into our repository."""
        self._ensure_repository()
        try:
            self._git("fetch", "--quiet", "--no-tags", self.remote, f"+{BRANCH}:{FETCHED}", network=True)
        except GitFailed as error:
            if "couldn't find remote ref" not in error.stderr:
                raise
            # The first publish: forget a branch fetched from this (or another) remote before.
            self._git("update-ref", "-d", FETCHED)
            return None
        return self._git("rev-parse", "--verify", "--quiet", f"{FETCHED}^{{commit}}")

    def _ensure_repository(self) -> None:
        """The bare repository we fetch into; its info files are rewritten each time so nothing in them lingers."""
        if not (self.repository / "HEAD").is_file():
            self.repository.mkdir(parents=True, exist_ok=True)
            run_git(["init", "--quiet", "--bare", "--template=", str(self.repository)], local_environment(),
                    timeout=self.local_timeout)
        info = self.repository / "info"
        info.mkdir(exist_ok=True)
        (info / "exclude").write_text("")
        (info / "attributes").write_text(NEUTRAL_ATTRIBUTES)

    def _write_tree(self, site: Path) -> str:
        """The tree of the site's files plus an empty .nojekyll, written through a throwaway index.
        ``--force`` adds files a .gitignore inside the site would ignore; core.fileMode=false makes
        every file 100644, so a changed executable bit alone does not count as a change."""
        with tempfile.TemporaryDirectory(prefix="index-", dir=self.work) as scratch:
            index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            self._git(f"--work-tree={site}", "add", "--all", "--force", "--", ".", cwd=site, extra=index)
            empty = self._git("hash-object", "-w", "--stdin", stdin=b"")
            self._git("update-index", "--add", "--cacheinfo", f"100644,{empty},{NOJEKYLL}", extra=index)
            return self._git("write-tree", extra=index)

    def _files(self, tree: str) -> dict[str, str]:
        """Every file in ``tree``: name -> blob id, or ``mode id`` for what is not a plain file
        (a symbolic link or a submodule someone pushed by hand)."""
        listing = self._git_bytes("ls-tree", "-r", "-z", "--full-tree", tree)
        files: dict[str, str] = {}
        for record in filter(None, listing.split(b"\0")):
            meta, _, path = record.partition(b"\t")
            mode, _kind, blob = meta.decode().split(" ")
            files[os.fsdecode(path)] = blob if mode in REGULAR_FILE_MODES else f"{mode} {blob}"
        return files

    def _commit(self, plan: Plan) -> str:
        changes = plan.changes
        message = (f"Publish the clinic directory: {len(changes.added)} added, {len(changes.changed)} changed, "
                   f"{len(changes.removed)} removed")
        parent = ["-p", plan.live] if plan.live else []
        return self._git("commit-tree", plan.tree, *parent, "-m", message, extra=publisher_identity(os.environ))

    def _push(self, commit: str, live: str | None) -> None:
        """Push without force. ``--no-verify``: no pre-push hook of the user's runs for our repository."""
        try:
            self._git("push", "--quiet", "--no-verify", self.remote, f"{commit}:{BRANCH}", network=True)
        except GitFailed as error:
            if error.diagnosis() is not None:  # refused outright: the branch did not move
                raise self._failed(error, f"the push did not go through: {AS_IT_WAS}") from error
            outcome = self._after_unclear_push(commit, live, error)
            if outcome is None:
                return
            raise self._failed(error, outcome) from error
        self._remember(commit)

    def _after_unclear_push(self, commit: str, live: str | None, error: GitFailed) -> str | None:
        """A push that timed out or lost its connection may have moved the branch before git heard back:
        look. None when it did land; otherwise what the live branch holds, for the message."""
        try:
            now = self._live_head()
        except GitFailed:
            return ("git could not tell whether the push reached the remote: publish again, which finishes it "
                    "or finds nothing to do (DRY_RUN=1 shows which)")
        if now == commit:
            self._remember(commit)
            return None
        if now != live:
            holds = now or "nothing (it was deleted)"
            return f"the live gh-pages branch now holds {holds}, not this publish: publish again"
        if error.timeout is not None:
            return ("the live gh-pages branch was as it was just after git gave up (a remote that is only slow "
                    "might still take the push: publish again with DRY_RUN=1 to see)")
        return f"the push did not go through: {AS_IT_WAS}"

    def _live_head(self) -> str | None:
        listing = self._git("ls-remote", self.remote, BRANCH, network=True, timeout=60)
        return listing.split()[0] if listing else None

    def _remember(self, commit: str) -> None:
        """Point the private ref at what we pushed (keeps it from being pruned); the next fetch would anyway."""
        try:
            self._git("update-ref", FETCHED, commit)
        except GitFailed:
            pass

    def _failed(self, error: GitFailed, outcome: str) -> DeployFailed:
        where = self.label if self.remote == self.spec else f"{self.label} ({self.remote})"
        fix = error.diagnosis()
        said = "".join(f"\n  {line}" for line in error.lines())
        return DeployFailed(f"could not publish to {where}: {error}{': ' + fix if fix else ''}"
                            f"{chr(10) + '  git said:' + said if said else ''}\n{outcome}")

    # -- running git ----------------------------------------------------------------------------------------

    @cached_property
    def remote(self) -> str:
        """What git fetches from and pushes to: a bare word that is not a path but a remote of the repository
        ``make publish`` runs in means that remote's push URL; anything else goes to git as written."""
        if not REMOTE_NAME.fullmatch(self.spec) or Path(self.spec).exists():
            return self.spec
        try:
            url = run_git(["remote", "get-url", "--push", self.spec], network_environment(), timeout=60)
        except GitFailed:
            return self.spec  # not a repository here, or no such remote: git will say it is not found
        return url.decode().strip() or self.spec

    def _git(self, *args: str, network: bool = False, cwd: Path | None = None, extra: dict[str, str] | None = None,
             stdin: bytes | None = None, timeout: float | None = None) -> str:
        return self._git_bytes(*args, network=network, cwd=cwd, extra=extra, stdin=stdin,
                               timeout=timeout).decode().strip()

    def _git_bytes(self, *args: str, network: bool = False, cwd: Path | None = None,
                   extra: dict[str, str] | None = None, stdin: bytes | None = None,
                   timeout: float | None = None) -> bytes:
        """Run git on our repository. Network commands keep the user's config (credentials, insteadOf)."""
        environment = network_environment() if network else local_environment()
        environment.update(extra or {})
        limit = timeout or (self.network_timeout if network else self.local_timeout)
        return run_git([f"--git-dir={self.repository}", *args], environment, cwd=cwd, stdin=stdin, timeout=limit)


@dataclass(frozen=True)
class Plan:
    """What a publish found and would make: the live commit and tree (None before the first publish)."""

    live: str | None
    live_tree: str | None
    tree: str
    changes: Changes


def checked_site(site: Path) -> list[str]:
    """The site's file names; a missing site would otherwise publish an empty one."""
    if not site.is_dir():
        raise DeployFailed(f"{site} is not a directory: there is no built site to publish; {NOTHING_PUBLISHED}")
    names = list(site_files(site))
    for name in names:
        if ".git" in name.lower().split("/"):
            raise DeployFailed(f"{site / name}: git cannot publish anything inside a directory named .git; "
                               f"{NOTHING_PUBLISHED}")
    return names


def run_git(args: list[str], environment: dict[str, str], *, cwd: Path | None = None, stdin: bytes | None = None,
            timeout: float) -> bytes:
    """git's standard output, or GitFailed. git runs in a session of its own: with no controlling terminal,
    neither git nor ssh can stop to ask for a password or a host key (they fail and say so), and on a
    timeout or Ctrl-C the whole group (git, ssh, pack-objects) is killed, not just git."""
    command = ["git", *(part for setting in GIT_SETTINGS for part in ("-c", setting)), *args]
    verb = next((arg for arg in args if not arg.startswith("-")), "")
    try:
        process = subprocess.Popen(command, env=environment, cwd=cwd, start_new_session=True,
                                   stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError as error:
        raise DeployFailed("git is not installed (or not on PATH): publishing to a gh-pages branch needs it; "
                           f"{NOTHING_PUBLISHED}") from error
    with process:
        try:
            out, err = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process)
            _, err = process.communicate()
            raise GitFailed(verb, None, err.decode(errors="replace"), timeout) from None
        except BaseException:  # Ctrl-C too: no git (or ssh under it) may outlive the publish
            kill_group(process)
            raise
    if process.returncode != 0:
        raise GitFailed(verb, process.returncode, err.decode(errors="replace"))
    return out


def kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def network_environment() -> dict[str, str]:
    """For fetch and push: the user's own git config stays, because that is where credential helpers,
    ``url.<base>.insteadOf`` and ``core.sshCommand`` live, without which a real push would not get through.
    Prompts are off (GIT_TERMINAL_PROMPT=0 for git, GCM_INTERACTIVE for Git Credential Manager): a
    publish fails and says how to set up credentials instead of waiting for a password nobody types.
    Messages are in English (LC_ALL=C) because we read them to tell what went wrong."""
    environment = {name: value for name, value in os.environ.items() if name not in REPOSITORY_VARIABLES}
    environment.update(GIT_TERMINAL_PROMPT="0", GCM_INTERACTIVE="never", LC_ALL="C")
    return environment


def local_environment() -> dict[str, str]:
    """For everything that only touches our repository (add, write-tree, commit-tree): no user or system
    config at all, so nothing in it (autocrlf, filters, commit signing, an identity) changes what is
    published or makes a fresh machine fail differently from the developer's."""
    environment = {name: value for name, value in network_environment().items()
                   if not USER_CONFIG_VARIABLES.fullmatch(name)}
    environment.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    return environment


def publisher_identity(environ: Mapping[str, str]) -> dict[str, str]:
    """Who the publish commit is by: git's own variables when set (the committer falls back to the
    author), else a fixed name, so a machine with no git identity configured can publish."""
    author = environ.get("GIT_AUTHOR_NAME") or DEFAULT_NAME
    email = environ.get("GIT_AUTHOR_EMAIL") or DEFAULT_EMAIL
    return {"GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": environ.get("GIT_COMMITTER_NAME") or author,
            "GIT_COMMITTER_EMAIL": environ.get("GIT_COMMITTER_EMAIL") or email}
