"""``user@host:path`` targets, with the real rsync against a real sshd on loopback (no mocks).

One sshd serves the whole session, on a free port, with keys made for it: ``key`` may log in;
``small_key`` may too, but its sessions may not write a file over 64 KiB (a full disk or a quota, for
a transfer that breaks off after it started); ``stranger_key`` may not. The "remote" directories are
on this machine, so the tests look at them directly. The tests need Debian's rsync, openssh-server
and openssh-client, and fail (not skip) without them.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clinic_directory.deploy import Changes, DeployFailed, parse_target
from clinic_directory.deploy_rsync import HOLDING, RsyncTarget
from conftest import publish

SSHD = Path("/usr/sbin/sshd")
PACKAGES = "rsync openssh-server openssh-client"
SMALL_LIMIT = 'command="ulimit -f 64; eval \\"$SSH_ORIGINAL_COMMAND\\""'  # 64 blocks: 64 KiB (bash) or 32 (dash)

SITE = {
    "index.html": b"<h1>Clinics</h1>\n",
    "clinics/north/index.html": b"<h1>North</h1>\n",
    "clinics/south/index.html": b"<h1>South</h1>\n",
    "css/site.css": b"body { margin: 0 }\n",
    "robots.txt": b"User-agent: *\n",
}


@dataclass(frozen=True)
class Server:
    port: int
    user: str
    key: Path
    small_key: Path
    stranger_key: Path

    def rsh(self, key: Path | None = None, port: int | None = None) -> str:
        """An RSYNC_RSH for this server; ``-F none``: nothing from this machine's ssh config."""
        return (f"ssh -F none -p {port or self.port} -i {key or self.key} -o IdentitiesOnly=yes "
                "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR")

    def target(self, remote: Path, **options: int) -> RsyncTarget:
        return RsyncTarget(f"{self.user}@127.0.0.1:{remote}", remote.parent, **options)


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    missing = [tool for tool in ("rsync", "ssh", "ssh-keygen") if shutil.which(tool) is None]
    missing += [] if SSHD.exists() else [str(SSHD)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: the rsync deploy tests run a real sshd and rsync; "
                    f"install Debian's {PACKAGES}")
    base = tmp_path_factory.mktemp("sshd")
    host_key, key, small_key, stranger_key = (base / name for name in ("host", "client", "small", "stranger"))
    keygen(host_key)
    keygen(stranger_key)
    authorized = base / "authorized_keys"
    authorized.write_text(f"{keygen(key)}\n{SMALL_LIMIT} {keygen(small_key)}\n")
    port = free_port()
    user = pwd.getpwuid(os.getuid()).pw_name
    config = base / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"AuthorizedKeysFile {authorized}",
        f"PidFile {base / 'sshd.pid'}", f"AllowUsers {user}", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no", ""]))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    log = base / "sshd.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for(port, process, log)
        yield Server(port, user, key, small_key, stranger_key)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"sshd exited with status {process.returncode}: {log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"sshd did not listen on port {port} within 10 seconds: {log.read_text(errors='replace')}")


@pytest.fixture
def server(sshd: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """The server, with RSYNC_RSH set to log in to it with the authorized key."""
    monkeypatch.setenv("RSYNC_RSH", sshd.rsh())
    return sshd


def write(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root``, hidden ones too, by relative name."""
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()}


def snapshot(root: Path, skip: str | None = None) -> dict[str, tuple[bytes, int, int, int]]:
    """Every file and directory under ``root`` (but ``skip`` ones): bytes, inode, mtime and mode, so that a
    rewritten or touched file shows, not just one with other bytes."""
    found = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if skip in name.split("/"):
            continue
        info = path.lstat()
        found[name] = (b"" if path.is_dir() else path.read_bytes(), info.st_ino, info.st_mtime_ns, info.st_mode)
    return found


def files_of(found: dict[str, tuple[bytes, int, int, int]]) -> dict[str, tuple[bytes, int, int, int]]:
    return {name: info for name, info in found.items() if stat.S_ISREG(info[3])}


def failure(target: RsyncTarget, site: Path) -> str:
    with pytest.raises(DeployFailed) as failed:
        target.deploy(site)
    message = str(failed.value)
    assert message.startswith(f"could not publish to {target.label}: "), message
    return message


# -- deploys ---------------------------------------------------------------------------------------------


def test_first_deploy_makes_the_missing_directory_with_exactly_the_site(server: Server, tmp_path: Path) -> None:
    site = write(tmp_path / "site", SITE)
    (site / "robots.txt").chmod(0o600)  # private on the build machine; the web server must still read it
    remote = tmp_path / "host" / "srv" / "www"  # three directories that do not exist yet
    changes = server.target(remote).deploy(site)
    assert changes == Changes(added=tuple(sorted(SITE)), unchanged=0)
    assert tree(remote) == SITE
    modes = {path.relative_to(remote).as_posix(): path.stat().st_mode & 0o7777 for path in remote.rglob("*")}
    assert modes == {**{name: 0o644 for name in SITE}, "clinics": 0o755, "clinics/north": 0o755,
                     "clinics/south": 0o755, "css": 0o755}
    assert remote.stat().st_mode & 0o7777 == 0o755


def test_second_deploy_sends_only_the_files_whose_bytes_changed(server: Server, tmp_path: Path) -> None:
    site = write(tmp_path / "site", SITE)
    remote = tmp_path / "www"
    target = server.target(remote)
    target.deploy(site)
    before = snapshot(remote)
    os.utime(site / "css" / "site.css", ns=(10**18, 10**18))  # rebuilt: the same bytes, another mtime
    write(site, {"clinics/north/index.html": b"<h1>North</h1><p>New hours</p>\n",
                 "clinics/east/index.html": b"<h1>East</h1>\n"})
    (site / "robots.txt").unlink()

    changes = target.deploy(site)

    assert changes == Changes(added=("clinics/east/index.html",), changed=("clinics/north/index.html",),
                              removed=("robots.txt",), unchanged=3)
    assert tree(remote) == tree(site)
    after = snapshot(remote)
    for name in ("index.html", "css/site.css", "clinics/south/index.html"):
        assert after[name] == before[name], f"{name} was rewritten or touched"
    assert target.deploy(site) == Changes(unchanged=len(tree(site)))


def test_changes_is_a_dry_run(server: Server, tmp_path: Path) -> None:
    site = write(tmp_path / "site", SITE)
    remote = tmp_path / "missing" / "www"
    target = server.target(remote)
    assert target.changes(site) == Changes(added=tuple(sorted(SITE)))
    assert not remote.parent.exists()

    target.deploy(site)
    write(site, {"index.html": b"<h1>All clinics</h1>\n", "about.html": b"<h1>About</h1>\n"})
    (site / "css" / "site.css").unlink()
    write(remote, {"stray.html": b"left by hand\n"})
    before = snapshot(remote)
    assert target.changes(site) == Changes(added=("about.html",), changed=("index.html",),
                                           removed=("css/site.css", "stray.html"), unchanged=3)
    assert snapshot(remote) == before


def test_files_put_in_the_remote_directory_by_hand_are_removed_and_reported(server: Server, tmp_path: Path) -> None:
    site = write(tmp_path / "site", SITE)
    remote = tmp_path / "www"
    target = server.target(remote)
    target.deploy(site)
    write(remote, {"stray.html": b"left by hand\n", "old/2019/page.html": b"an old page\n", ".htpasswd": b"x:y\n"})
    expected = Changes(removed=(".htpasswd", "old/2019/page.html", "stray.html"), unchanged=len(SITE))
    assert target.changes(site) == expected
    assert target.deploy(site) == expected
    assert tree(remote) == SITE
    assert not (remote / "old").exists()


def test_odd_file_names_survive(server: Server, tmp_path: Path) -> None:
    odd = {
        "with space.html": b"1\n", "café/naïve page.html": b"2\n", "日本語.html": b"3\n", "tab\there.txt": b"4\n",
        "line\nbreak.txt": b"5\n", "back\\#134slash.txt": b"6\n", "-dash.html": b"7\n", "it's \"$(x)\".html": b"8\n",
    }
    site = write(tmp_path / "site", odd)
    remote = tmp_path / "a $dir `x`" / "sïte"  # the remote shell sees the path: nothing in it may expand
    target = server.target(remote)
    assert target.deploy(site) == Changes(added=tuple(sorted(odd)))
    assert tree(remote) == odd
    assert target.changes(site) == Changes(unchanged=len(odd))

    (site / "line\nbreak.txt").unlink()
    write(site, {"café/naïve page.html": b"two\n"})
    assert target.deploy(site) == Changes(changed=("café/naïve page.html",), removed=("line\nbreak.txt",),
                                          unchanged=len(odd) - 2)
    assert tree(remote) == tree(site)


# -- failures ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("problem", ["port", "key"])
def test_a_deploy_that_cannot_log_in_changes_nothing(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     problem: str) -> None:
    site = write(tmp_path / "site", SITE)
    remote = tmp_path / "www"
    target = server.target(remote)
    target.deploy(site)
    write(site, {"index.html": b"<h1>New</h1>\n"})
    live = snapshot(remote)
    if problem == "port":
        monkeypatch.setenv("RSYNC_RSH", server.rsh(port=free_port()))
        hint, said = "could not reach 127.0.0.1 over SSH: check the host and its port", "Connection refused"
    else:
        monkeypatch.setenv("RSYNC_RSH", server.rsh(key=server.stranger_key))
        hint = f"could not log in as {server.user} on 127.0.0.1: check the SSH key"
        said = "Permission denied (publickey"
    message = failure(target, site)
    assert hint in message and said in message
    assert message.endswith("so nothing was changed")
    assert snapshot(remote) == live


def test_a_path_inside_a_file_fails_and_says_so(server: Server, tmp_path: Path) -> None:
    site = write(tmp_path / "site", SITE)
    blocker = write(tmp_path, {"not-a-directory": b"a file\n"}) / "not-a-directory"
    target = server.target(blocker / "www")
    message = failure(target, site)
    assert "is, or is inside, a file rather than a directory: choose another path" in message
    assert "Not a directory" in message
    assert "the live site's files are as they were" in message
    with pytest.raises(DeployFailed, match="this was a dry run: nothing was changed$"):
        target.changes(site)
    assert blocker.read_bytes() == b"a file\n"


def test_a_transfer_that_breaks_off_leaves_the_live_site_as_it_was(server: Server, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    site = write(tmp_path / "site", SITE)
    remote = tmp_path / "www"
    target = server.target(remote)
    target.deploy(site)
    live = snapshot(remote)
    write(site, {"index.html": b"<h1>New</h1>\n", "news.html": b"<h1>News</h1>\n",
                 "clinics/south/index.html": b"<h1>South, moved</h1>\n",
                 "media/tour.webm": os.urandom(1 << 20)})  # too big for small_key's sessions
    (site / "robots.txt").unlink()

    monkeypatch.setenv("RSYNC_RSH", server.rsh(key=server.small_key))
    message = failure(target, site)
    assert "127.0.0.1 has no room for the site" in message and "File too large" in message
    assert "the live site's files are as they were" in message
    # Not one live file rewritten, touched or deleted. (New directories, empty, are made at once: media/.)
    assert files_of(snapshot(remote, skip=HOLDING)) == files_of(live)
    # rsync sends the top directory's files first: the new pages had arrived, and were kept aside.
    assert (remote / HOLDING / "news.html").read_bytes() == b"<h1>News</h1>\n"

    # The next publish, with room, finishes the job and clears what the broken one left, including the
    # news page that was withdrawn in the meantime.
    (site / "news.html").unlink()
    monkeypatch.setenv("RSYNC_RSH", server.rsh())
    assert target.deploy(site) == Changes(added=("media/tour.webm",),
                                          changed=("clinics/south/index.html", "index.html"),
                                          removed=("robots.txt",), unchanged=2)
    assert tree(remote) == tree(site)


def test_a_stalled_connection_times_out_and_leaves_no_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = write(tmp_path / "site", SITE)
    pid_file = tmp_path / "ssh.pid"
    # A remote shell that hangs while connecting, with a process of its own (as a ProxyCommand would have).
    stalled = write(tmp_path, {"stalled-ssh": f"#!/bin/sh\nsleep 60 &\necho $! > '{pid_file}'\nwait\n".encode()})
    (stalled / "stalled-ssh").chmod(0o755)
    monkeypatch.setenv("RSYNC_RSH", str(stalled / "stalled-ssh"))
    target = RsyncTarget(f"root@127.0.0.1:{tmp_path / 'www'}", tmp_path, io_timeout=1)
    started = time.monotonic()
    message = failure(target, site)
    assert time.monotonic() - started < 10
    assert "nothing came back from 127.0.0.1 for 1 seconds" in message
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 3  # a signal takes a moment to land
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not running(pid), "a process of the remote shell rsync started outlived it"


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has ended; only its parent (init, here) has not collected it yet


def test_without_rsync_the_message_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = write(tmp_path / "site", SITE)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DeployFailed, match=r"rsync is not installed.*install Debian's rsync package"):
        RsyncTarget("root@127.0.0.1:/srv/www", tmp_path).deploy(site)


def test_a_site_with_a_symbolic_link_is_refused(server: Server, tmp_path: Path) -> None:
    site = write(tmp_path / "site", SITE)
    (site / "secrets").symlink_to("/etc")
    remote = tmp_path / "www"
    with pytest.raises(DeployFailed, match="symbolic link"):
        server.target(remote).deploy(site)
    assert not remote.exists()


# -- the target and the command --------------------------------------------------------------------------


def test_parse_target_reads_user_host_and_path(tmp_path: Path) -> None:
    target = parse_target("root@127.0.0.1:/srv/www/x", tmp_path)
    assert isinstance(target, RsyncTarget)
    assert (target.label, target.user, target.host, target.path) == ("root@127.0.0.1:/srv/www/x", "root", "127.0.0.1",
                                                                     "/srv/www/x")
    # Always the site's contents into the directory path, however many slashes the user wrote.
    assert target.destination == "root@127.0.0.1:/srv/www/x/"
    assert parse_target("deploy@web.example.org:www//", tmp_path).destination == "deploy@web.example.org:www/"
    assert parse_target("deploy@web:~/sites/clinics", tmp_path).destination == "deploy@web:~/sites/clinics/"


@pytest.mark.parametrize("text", [
    "u@h:", "u@h: ", "u@h:~", "u@h:~/", "u@h:~other", "u@h:.", "u@h:www/..", "u@h:..", "u@h:../..", "u@h:/", "u@h://",
    "u@h:www/*", "u@h:www/[ab]", "u@-oProxyCommand=x:www",
])
def test_a_target_that_would_replace_a_home_or_be_expanded_is_refused(text: str, tmp_path: Path) -> None:
    with pytest.raises(DeployFailed, match=re.escape(text)):
        parse_target(text, tmp_path)


def test_ssh_never_prompts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = RsyncTarget("deploy@web:www", tmp_path)
    monkeypatch.delenv("RSYNC_RSH", raising=False)
    assert "--rsh=ssh -o BatchMode=yes" in target.rsync_command(tmp_path, dry_run=False)
    monkeypatch.setenv("RSYNC_RSH", "ssh -p 2222")  # the user's own: rsync reads it, we add nothing
    assert not [arg for arg in target.rsync_command(tmp_path, dry_run=False) if arg.startswith(("--rsh", "-e"))]


def test_make_publish_deploys_the_sample_site_over_rsync(server: Server, tmp_path: Path) -> None:
    """The whole publish (check, build, verify, deploy) into a new remote directory, then again: nothing to do."""
    remote = tmp_path / "srv" / "clinics"
    target = f"{server.user}@127.0.0.1:{remote}"
    result = publish(tmp_path / "work", target, "--allow-placeholders")
    assert result.returncode == 0, result.stderr
    assert tree(remote) == tree(tmp_path / "work" / "site")
    assert "https://clinics.example.org/clinics/" in (remote / "index.html").read_text()
    assert re.search(rf"published to {re.escape(target)}: [\d,]+ added, 0 changed, 0 removed", result.stdout)
    again = publish(tmp_path / "work", target, "--allow-placeholders")
    assert again.returncode == 0, again.stderr
    assert f"{target} already holds this site; nothing was deployed" in again.stdout


def test_make_publish_will_not_empty_a_remote_directory_it_did_not_fill(server: Server, tmp_path: Path) -> None:
    remote = write(tmp_path / "srv" / "someone-else", {"their-page.html": b"theirs"})
    before = snapshot(remote)
    result = publish(tmp_path / "work", f"{server.user}@127.0.0.1:{remote}", "--allow-placeholders")
    assert result.returncode == 1
    assert "holds 1 file(s) that make publish did not put there (their-page.html)" in result.stderr
    assert snapshot(remote) == before
