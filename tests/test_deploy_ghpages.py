"""``ghpages:<git remote>`` against a real git server: ``git daemon`` on loopback, pushed to over git://.

Every test runs under a hostile git configuration of the user's (autocrlf, a clean filter, global
ignore and attributes files, a pre-push hook that fails, no identity): a publish must not let any of
it change, drop or block a file. The server and the tests' own inspection use no user config at all.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clinic_directory.deploy import DeployFailed, parse_target
from clinic_directory.deploy_ghpages import GhPagesTarget
from conftest import publish

CLEAN_GIT = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/"), "LC_ALL": "C",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "Someone Else", "GIT_AUTHOR_EMAIL": "else@example.org",
    "GIT_COMMITTER_NAME": "Someone Else", "GIT_COMMITTER_EMAIL": "else@example.org",
}
SITE = {
    "index.html": b"<!doctype html><title>Clinics</title>\n",
    "_headers": b"/*\n  X-Frame-Options: DENY\n",
    "css/site.css": b"body { margin: 0 }\n",
    "clinics/north/index.html": b"<p>North clinic</p>\r\n<p>CRLF line ends, kept as they are</p>\r\n",
}
counter = itertools.count()


def git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    """git for the test's own inspection and set-up: no user config, output as text."""
    return subprocess.run(["git", *args], cwd=cwd, env=CLEAN_GIT, capture_output=True, text=True, check=check,
                          timeout=60).stdout.strip()


def blob(repository: Path, ref: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={repository}", "cat-file", "blob", ref], env=CLEAN_GIT,
                          capture_output=True, check=True, timeout=60).stdout


def published(repository: Path, ref: str = "refs/heads/gh-pages") -> dict[str, bytes]:
    """Every file in ``ref``'s tree with its bytes; plain files (mode 100644) only."""
    listing = subprocess.run(["git", f"--git-dir={repository}", "ls-tree", "-r", "-z", ref], env=CLEAN_GIT,
                             capture_output=True, check=True, timeout=60).stdout
    files = {}
    for record in filter(None, listing.split(b"\0")):
        meta, _, path = record.partition(b"\t")
        mode, kind, oid = meta.decode().split()
        assert (mode, kind) == ("100644", "blob"), (path, mode)
        files[os.fsdecode(path)] = blob(repository, oid)
    return files


def head(repository: Path, ref: str = "refs/heads/gh-pages") -> str | None:
    return git(f"--git-dir={repository}", "rev-parse", "--verify", "--quiet", ref, check=False) or None


def write_site(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    base: Path
    port: int

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"


@dataclass
class Remote:
    path: Path
    url: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One ``git daemon`` for the module, serving (and accepting pushes to) every repository under ``base``."""
    base = tmp_path_factory.mktemp("git-server")
    log = tmp_path_factory.mktemp("git-daemon-log") / "stderr"
    port = free_port()
    with open(log, "wb") as stderr:
        daemon = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", f"--base-path={base}",
             "--listen=127.0.0.1", f"--port={port}", str(base)],
            env=CLEAN_GIT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert daemon.poll() is None, f"git daemon exited: {log.read_text()}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"git daemon never listened on {port}: {log.read_text()}"
                time.sleep(0.05)
        yield Server(base, port)
    finally:
        # The daemon and what it runs (receive-pack, a hook still sleeping): its children ignore SIGTERM.
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait(timeout=10)


@pytest.fixture
def remote(server: Server) -> Remote:
    """A fresh, empty bare repository on the server."""
    path = server.base / f"site-{next(counter)}.git"
    git("init", "--quiet", "--bare", str(path))
    return Remote(path, server.url(path.name))


@pytest.fixture(autouse=True)
def hostile_git_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's git config and XDG files at their worst, for the code under test (not for ``git`` above)."""
    home = tmp_path_factory.mktemp("hostile-home")
    hooks = home / "hooks"
    hooks.mkdir()
    (hooks / "pre-push").write_text("#!/bin/sh\necho 'global pre-push hook ran' >&2\nexit 1\n")
    (hooks / "pre-push").chmod(0o755)
    (home / "ignore").write_text("*.bin\n_*\n*.css\n")
    (home / "attributes").write_text("* filter=upper text eol=crlf\n")
    (home / "config").write_text(
        "[core]\n\tautocrlf = true\n\tsafecrlf = true\n"
        f"\texcludesFile = {home / 'ignore'}\n\tattributesFile = {home / 'attributes'}\n\thooksPath = {hooks}\n"
        "[filter \"upper\"]\n\tclean = tr a-z A-Z\n\trequired = true\n"
        "[commit]\n\tgpgSign = true\n")
    (home / "git").mkdir()
    (home / "git" / "ignore").write_text("*\n")
    (home / "git" / "attributes").write_text("* filter=upper\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "config"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name, raising=False)


def target(remote: Remote | str, work: Path) -> GhPagesTarget:
    return GhPagesTarget(f"ghpages:{remote.url if isinstance(remote, Remote) else remote}", work)


def push_by_hand(remote: Remote, tmp: Path, name: str, data: bytes) -> str:
    """Someone else's commit on gh-pages, pushed over the server like any other push; returns it."""
    clone = tmp / f"clone-{next(counter)}"
    git("clone", "--quiet", "--branch", "gh-pages", remote.url, str(clone))
    (clone / name).write_bytes(data)
    git("add", name, cwd=clone)
    git("commit", "--quiet", "-m", "by hand", cwd=clone)
    git("push", "--quiet", "origin", "gh-pages", cwd=clone)
    return git("rev-parse", "HEAD", cwd=clone)


# -- publishing --------------------------------------------------------------------------------------------


def test_first_deploy_creates_gh_pages_with_exactly_the_sites_files(remote: Remote, tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", SITE)
    changes = target(remote, tmp_path / "work").deploy(site)

    assert changes.added == tuple(sorted(SITE)) and not changes.changed and not changes.removed
    assert changes.unchanged == 0
    assert published(remote.path) == {**SITE, ".nojekyll": b""}
    commit = head(remote.path)
    assert git(f"--git-dir={remote.path}", "rev-list", "--parents", "-n1", commit) == commit  # a root commit
    assert git(f"--git-dir={remote.path}", "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", commit) == (
        "Clinic directory publisher <publish@localhost>|Clinic directory publisher <publish@localhost>|"
        "Publish the clinic directory: 4 added, 0 changed, 0 removed")


def test_second_deploy_changes_adds_and_removes_on_top_of_the_first(remote: Remote, tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", SITE)
    publisher = target(remote, tmp_path / "work")
    publisher.deploy(site)
    first = head(remote.path)

    (site / "css/site.css").write_bytes(b"body { margin: 1rem }\n")
    (site / "clinics/south.html").write_bytes(b"<p>South</p>\n")
    (site / "_headers").unlink()
    changes = publisher.deploy(site)

    assert (changes.added, changes.changed, changes.removed) == (("clinics/south.html",), ("css/site.css",),
                                                                 ("_headers",))
    assert changes.unchanged == 2
    second = head(remote.path)
    assert second != first
    assert git(f"--git-dir={remote.path}", "rev-parse", f"{second}^") == first
    expected = {name: (site / name).read_bytes() for name in ("index.html", "css/site.css", "clinics/north/index.html",
                                                              "clinics/south.html")}
    assert published(remote.path) == {**expected, ".nojekyll": b""}
    assert git(f"--git-dir={remote.path}", "log", "-1", "--format=%s", second) == (
        "Publish the clinic directory: 1 added, 1 changed, 1 removed")


def test_an_identical_site_makes_no_commit(remote: Remote, tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", SITE)
    target(remote, tmp_path / "work").deploy(site)
    before = head(remote.path)

    # A fresh work directory too: what is compared is the remote's tree, not anything remembered.
    for work in (tmp_path / "work", tmp_path / "other-work"):
        changes = target(remote, work).deploy(site)
        assert changes.empty and changes.unchanged == len(SITE)
        assert head(remote.path) == before


def test_changes_reports_and_pushes_nothing(remote: Remote, tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", SITE)
    publisher = target(remote, tmp_path / "work")

    first = publisher.changes(site)  # the remote has no gh-pages yet
    assert first.added == tuple(sorted(SITE)) and first.unchanged == 0
    assert git(f"--git-dir={remote.path}", "for-each-ref") == ""

    publisher.deploy(site)
    refs = git(f"--git-dir={remote.path}", "for-each-ref")
    (site / "index.html").write_bytes(b"<p>new</p>\n")
    (site / "extra.txt").write_bytes(b"extra\n")
    changes = publisher.changes(site)
    assert (changes.added, changes.changed, changes.removed, changes.unchanged) == (
        ("extra.txt",), ("index.html",), (), 3)
    assert git(f"--git-dir={remote.path}", "for-each-ref") == refs
    assert published(remote.path)["index.html"] == SITE["index.html"]


def test_other_branches_are_untouched(remote: Remote, tmp_path: Path) -> None:
    source = tmp_path / "source"
    git("init", "--quiet", "--initial-branch=main", str(source))
    (source / "README").write_text("the project, not the site\n")
    git("add", "README", cwd=source)
    git("commit", "--quiet", "-m", "project", cwd=source)
    git("push", "--quiet", remote.url, "main", cwd=source)
    main = head(remote.path, "refs/heads/main")

    site = write_site(tmp_path / "site", SITE)
    target(remote, tmp_path / "work").deploy(site)
    (site / "index.html").write_bytes(b"<p>again</p>\n")
    target(remote, tmp_path / "work").deploy(site)

    assert head(remote.path, "refs/heads/main") == main
    assert published(remote.path, "refs/heads/main") == {"README": b"the project, not the site\n"}
    branches = git(f"--git-dir={remote.path}", "for-each-ref", "--format=%(refname)").splitlines()
    assert sorted(branches) == ["refs/heads/gh-pages", "refs/heads/main"]


def test_a_remote_given_as_a_local_path_works(tmp_path: Path) -> None:
    repository = tmp_path / "pages.git"
    git("init", "--quiet", "--bare", str(repository))
    site = write_site(tmp_path / "site", SITE)
    target(str(repository), tmp_path / "work").deploy(site)
    assert published(repository) == {**SITE, ".nojekyll": b""}


def test_a_remote_name_means_that_remote_of_the_repository_here(remote: Remote, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    git("init", "--quiet", str(project))
    git("remote", "add", "pages", remote.url, cwd=project)
    monkeypatch.chdir(project)
    site = write_site(tmp_path / "site", SITE)
    publisher = parse_target("ghpages:pages", tmp_path / "work")
    publisher.deploy(site)
    assert published(remote.path) == {**SITE, ".nojekyll": b""}


# -- what survives --------------------------------------------------------------------------------------------


def test_odd_names_and_binary_files_survive_byte_for_byte(remote: Remote, tmp_path: Path) -> None:
    files = {
        "with space.html": b"spaces\n",
        "na\u00efve/\u00fcn\u00efc\u00f6d\u00e9 \u2603.html": "caf\u00e9 \u2603\n".encode(),
        "\u65e5\u672c\u8a9e.txt": "\u65e5\u672c\u8a9e\n".encode(),
        "-leading-dash.html": b"dash\n",
        os.fsdecode(b"not-utf-8-caf\xe9.html"): b"latin-1 name\n",
        'quote"and\\backslash\tand tab.txt': b"odd\n",
        "images/logo.bin": bytes(range(256)) * 8 + b"\r\n\0\r",
        "fonts/empty.woff2": b"",
        "crlf.txt": b"one\r\ntwo\r\n",
        # A site's own git files must not steer git either: published as files, not obeyed.
        ".gitignore": b"*\n",
        ".gitattributes": b"* text eol=crlf filter=upper\n",
        "sub/.gitignore": b"*.html\n",
        "sub/page.html": b"<p>lower case</p>\n",
    }
    site = write_site(tmp_path / "site", files)
    changes = target(remote, tmp_path / "work").deploy(site)
    assert set(changes.added) == set(files)
    assert published(remote.path) == {**files, ".nojekyll": b""}
    assert target(remote, tmp_path / "work").changes(site).unchanged == len(files)


def test_a_mode_change_alone_is_not_a_change(remote: Remote, tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", SITE)
    publisher = target(remote, tmp_path / "work")
    publisher.deploy(site)
    before = head(remote.path)
    (site / "index.html").chmod(0o755)
    assert publisher.deploy(site).empty
    assert head(remote.path) == before


def test_the_commit_is_by_gits_identity_variables_when_set(remote: Remote, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Dr. Publisher")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "dr@example.org")
    target(remote, tmp_path / "work").deploy(write_site(tmp_path / "site", SITE))
    assert git(f"--git-dir={remote.path}", "log", "-1", "--format=%an <%ae>|%cn <%ce>", "gh-pages") == (
        "Dr. Publisher <dr@example.org>|Dr. Publisher <dr@example.org>")


# -- failures leave the live branch as it was -------------------------------------------------------------------


def test_a_push_refused_by_a_hook_leaves_the_branch_and_says_why(remote: Remote, tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", SITE)
    publisher = target(remote, tmp_path / "work")
    publisher.deploy(site)
    before = head(remote.path)

    hook = remote.path / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'gh-pages is frozen for the audit' >&2\nexit 1\n")
    hook.chmod(0o755)
    (site / "index.html").write_bytes(b"<p>changed</p>\n")
    with pytest.raises(DeployFailed) as failure:
        publisher.deploy(site)
    message = str(failure.value)
    assert remote.url in message
    assert "gh-pages is frozen for the audit" in message
    assert "remote refused the push" in message and "as it was" in message
    assert head(remote.path) == before
    assert published(remote.path)["index.html"] == SITE["index.html"]

    hook.unlink()
    assert publisher.deploy(site).changed == ("index.html",)
    assert git(f"--git-dir={remote.path}", "rev-parse", "gh-pages^") == before


def test_a_branch_moved_after_the_fetch_is_not_overwritten(remote: Remote, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    site = write_site(tmp_path / "site", SITE)
    publisher = target(remote, tmp_path / "work")
    publisher.deploy(site)

    # Someone else publishes between this publish's fetch and its push: a real push over the server.
    fetch = publisher._fetch
    theirs: list[str] = []

    def fetch_then_someone_else_pushes() -> str | None:
        fetched = fetch()
        theirs.append(push_by_hand(remote, tmp_path, "theirs.html", b"<p>theirs</p>\n"))
        return fetched

    monkeypatch.setattr(publisher, "_fetch", fetch_then_someone_else_pushes)
    (site / "index.html").write_bytes(b"<p>ours</p>\n")
    with pytest.raises(DeployFailed) as failure:
        publisher.deploy(site)
    message = str(failure.value)
    assert "publish again" in message and "as it was" in message
    assert "[rejected]" in message
    assert head(remote.path) == theirs[0]
    assert published(remote.path)["theirs.html"] == b"<p>theirs</p>\n"

    # Publishing again replaces their commit's files with the site's, on top of their commit.
    monkeypatch.undo()
    changes = publisher.deploy(site)
    assert changes.changed == ("index.html",) and changes.removed == ("theirs.html",)
    assert git(f"--git-dir={remote.path}", "rev-parse", "gh-pages^") == theirs[0]
    assert published(remote.path) == {**SITE, "index.html": b"<p>ours</p>\n", ".nojekyll": b""}


def test_a_push_that_times_out_after_the_branch_moved_counts_as_published(remote: Remote, tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", SITE)
    hook = remote.path / "hooks" / "post-receive"  # runs after the branch moved; the client waits for it
    hook.write_text("#!/bin/sh\nexec sleep 30\n")
    hook.chmod(0o755)
    publisher = target(remote, tmp_path / "work")
    publisher.network_timeout = 2
    changes = publisher.deploy(site)
    assert changes.added == tuple(sorted(SITE))
    assert published(remote.path) == {**SITE, ".nojekyll": b""}


def test_a_push_that_times_out_before_the_branch_moved_says_so(remote: Remote, tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", SITE)
    publisher = target(remote, tmp_path / "work")
    publisher.deploy(site)
    before = head(remote.path)
    hook = remote.path / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nsleep 30\nexit 1\n")
    hook.chmod(0o755)
    publisher.network_timeout = 2
    (site / "index.html").write_bytes(b"<p>slow</p>\n")
    with pytest.raises(DeployFailed) as failure:
        publisher.deploy(site)
    assert "did not finish within 2 s" in str(failure.value)
    assert "was as it was just after git gave up" in str(failure.value)
    assert head(remote.path) == before


def test_a_missing_repository_is_a_clear_failure(server: Server, tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", SITE)
    for publisher in (target(server.url("no-such-repository.git"), tmp_path / "work"),
                      target(str(tmp_path / "no" / "such.git"), tmp_path / "work")):
        for attempt in (publisher.changes, publisher.deploy):
            with pytest.raises(DeployFailed) as failure:
                attempt(site)
            message = str(failure.value)
            assert publisher.label in message and "repository was not found" in message
            assert "nothing was" in message


def test_an_unreachable_host_is_a_clear_failure(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there now
    publisher = target(f"git://127.0.0.1:{port}/site.git", tmp_path / "work")
    with pytest.raises(DeployFailed) as failure:
        publisher.deploy(write_site(tmp_path / "site", SITE))
    assert "could not be reached" in str(failure.value) and "as it was" in str(failure.value)


def test_without_git_publishing_says_git_is_missing(remote: Remote, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(DeployFailed, match="git is not installed"):
        target(remote, tmp_path / "work").deploy(write_site(tmp_path / "site", SITE))


def test_a_missing_site_or_one_with_a_git_directory_is_refused(remote: Remote, tmp_path: Path) -> None:
    publisher = target(remote, tmp_path / "work")
    with pytest.raises(DeployFailed, match="not a directory"):
        publisher.deploy(tmp_path / "no-site")
    with pytest.raises(DeployFailed, match="named .git"):
        publisher.deploy(write_site(tmp_path / "site", {**SITE, "vendor/.git/config": b"[core]\n"}))
    assert head(remote.path) is None


def test_parse_target_makes_a_gh_pages_target_without_touching_anything(tmp_path: Path) -> None:
    publisher = parse_target("ghpages:git://127.0.0.1:1/x.git", tmp_path / "work")
    assert isinstance(publisher, GhPagesTarget)
    assert publisher.label == "ghpages:git://127.0.0.1:1/x.git" and publisher.remote == "git://127.0.0.1:1/x.git"
    assert not (tmp_path / "work").exists()
    for text in ("ghpages:", "ghpages:  ", "ghpages:--upload-pack=touch pwned"):
        with pytest.raises(DeployFailed):
            parse_target(text, tmp_path / "work")


def test_the_work_directory_holds_a_bare_repository(remote: Remote, tmp_path: Path) -> None:
    target(remote, tmp_path / "work").deploy(write_site(tmp_path / "site", SITE))
    repository = tmp_path / "work" / "gh-pages.git"
    assert git(f"--git-dir={repository}", "rev-parse", "--is-bare-repository") == "true"
    assert git(f"--git-dir={repository}", "rev-parse", "refs/remotes/publish/gh-pages") == head(remote.path)
    assert os.listdir(tmp_path / "work") == ["gh-pages.git"]  # the throwaway index is gone



def test_make_publish_deploys_the_sample_site_to_gh_pages(remote: Remote, tmp_path: Path) -> None:
    """The whole publish (check, build, verify, deploy), then again: nothing to do."""
    result = publish(tmp_path / "work", f"ghpages:{remote.url}", "--allow-placeholders")
    assert result.returncode == 0, result.stderr
    built = {path.relative_to(tmp_path / "work" / "site").as_posix(): path.read_bytes()
             for path in (tmp_path / "work" / "site").rglob("*") if path.is_file()}
    assert published(remote.path) == {**built, ".nojekyll": b""}
    assert f"published to ghpages:{remote.url}: {len(built):,} added, 0 changed, 0 removed" in result.stdout
    again = publish(tmp_path / "work", f"ghpages:{remote.url}", "--allow-placeholders")
    assert again.returncode == 0, again.stderr
    assert "already holds this site; nothing was deployed" in again.stdout
