"""`make publish`: placeholders stop it, the built site is verified, a local directory target is
replaced all at once, and every failure leaves the live site as it was.

Other targets (rsync over SSH, S3-compatible storage, a gh-pages branch) have their own tests
against real servers on loopback (tests/test_deploy_*.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from clinic_directory.deploy import Changes, LocalTarget, parse_target
from clinic_directory.publish import verify_site
from conftest import publish

ROOT = Path(__file__).resolve().parent.parent
SITEURL = "https://clinics.example.org"  # publishconf.py's default
Published = tuple[Path, Path, subprocess.CompletedProcess[str]]  # work directory, target, the publish's process


def snapshot(directory: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file's bytes, inode and mtime: what a visitor (or a web server's cache) would see change."""
    return {path.relative_to(directory).as_posix(): (path.read_bytes(), path.stat().st_ino, path.stat().st_mtime_ns)
            for path in sorted(directory.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    """The sample registry published (placeholders allowed) to a new local directory."""
    base = tmp_path_factory.mktemp("publish")
    work, target = base / "work", base / "www" / "clinics"
    result = publish(work, target, "--allow-placeholders")
    assert result.returncode == 0, result.stderr
    return work, target, result


def test_placeholders_stop_a_publish_and_are_listed_on_their_lines(tmp_path: Path) -> None:
    result = publish(tmp_path / "work", tmp_path / "www")
    assert result.returncode == 1
    marked = [number for number, line in enumerate((ROOT / "clinics.yaml").read_text().splitlines(), 1)
              if re.fullmatch(r"\s*placeholder: true", line)]
    assert marked, "the sample registry marks its stand-in details"
    reported = [int(match) for match in re.findall(r"^clinics\.yaml:(\d+):\d+: clinics\.[a-z0-9.-]+\.placeholder: ",
                                                  result.stderr, re.MULTILINE)]
    assert reported == marked
    assert "ALLOW_PLACEHOLDERS=1" in result.stderr
    assert not (tmp_path / "www").exists()
    assert not (tmp_path / "work" / "site").exists(), "stopped before building"


def test_a_publish_puts_exactly_the_built_site_in_place(published: Published) -> None:
    work, target, result = published
    built, live = snapshot(work / "site"), snapshot(target)
    assert {name: data for name, (data, _, _) in built.items()} == {name: data for name, (data, _, _) in live.items()}
    assert {"index.html", "404.html", "robots.txt", "sitemap.xml", "clinics/katy-pain-and-spine/index.html",
            "clinics/katy-pain-and-spine/refer/index.html"} <= set(live)
    assert f"<loc>{SITEURL}/clinics/katy-pain-and-spine/</loc>" in (target / "sitemap.xml").read_text()
    assert f'href="{SITEURL}/clinics/"' in (target / "index.html").read_text()
    assert f"published to {target}: {len(live):,} added, 0 changed, 0 removed, 0 unchanged" in result.stdout
    assert "note: published with 9 entries marked placeholder" in result.stdout
    assert oct((target / "index.html").stat().st_mode & 0o777) == oct(0o666 & ~current_umask())
    assert oct(target.stat().st_mode & 0o777) == oct(0o777 & ~current_umask())


def current_umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def test_publishing_again_changes_nothing(published: Published) -> None:
    work, target, _ = published
    before = snapshot(target)
    result = publish(work, target, "--allow-placeholders")
    assert result.returncode == 0, result.stderr
    assert f"{target} already holds this site; nothing was deployed" in result.stdout
    assert snapshot(target) == before


def test_an_edit_replaces_only_the_pages_it_changes(tmp_path: Path) -> None:
    registry = tmp_path / "clinics.yaml"
    shutil.copy(ROOT / "clinics.yaml", registry)
    work, target = tmp_path / "work", tmp_path / "www"
    assert publish(work, target, "--allow-placeholders", registry=registry).returncode == 0
    before = snapshot(target)
    text = registry.read_text()
    registry.write_text(text.replace('"+1-281-555-0100"', '"+1-281-555-0177"', 1))

    dry = publish(work, target, "--allow-placeholders", "--dry-run", registry=registry)
    assert dry.returncode == 0, dry.stderr
    assert "~ clinics/katy-pain-and-spine/index.html" in dry.stdout.splitlines()
    assert re.search(r"dry run: publishing to .* would make 0 added, \d+ changed, 0 removed", dry.stdout)
    assert snapshot(target) == before, "a dry run deploys nothing"

    result = publish(work, target, "--allow-placeholders", registry=registry)
    assert result.returncode == 0, result.stderr
    after = snapshot(target)
    changed = {name for name in after if after[name][0] != before[name][0]}
    assert "clinics/katy-pain-and-spine/index.html" in changed
    assert "+1-281-555-0177" in (target / "clinics/katy-pain-and-spine/index.html").read_text() \
        or "(281) 555-0177" in (target / "clinics/katy-pain-and-spine/index.html").read_text()
    assert f"0 added, {len(changed)} changed, 0 removed" in result.stdout
    for name in set(after) - changed:  # the same file, linked into the new tree: same inode and mtime
        assert after[name][1:] == before[name][1:], name
    assert set(after) == set(before)


def test_an_invalid_registry_stops_the_publish_and_the_live_site_stays(published: Published, tmp_path: Path) -> None:
    work, target, _ = published
    before = snapshot(target)
    registry = tmp_path / "clinics.yaml"
    registry.write_text((ROOT / "clinics.yaml").read_text().replace('postal_code: "77494"', "postal_code: 77494", 1))
    result = publish(work, target, "--allow-placeholders", registry=registry)
    assert result.returncode == 1
    assert re.search(rf"^{re.escape(str(registry))}:\d+:\d+: clinics\.katy-pain-and-spine\.locations\.katy\.address"
                     r"\.postal_code: ", result.stderr, re.MULTILINE)
    assert "nothing was deployed" in result.stderr
    assert snapshot(target) == before


def test_a_page_that_loads_from_another_site_stops_the_publish(
        published: Published, tmp_path: Path) -> None:
    """An author pastes an embed into an article: the published site would make third-party requests."""
    work, target, _ = published
    before = snapshot(target)
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    article = sorted((content / "articles").glob("*.md"))[0]
    article.write_text(article.read_text() + '\n<img src="https://tracker.example.net/pixel.gif" alt="">\n'
                       '<a href="javascript:alert(1)">more</a>\n')
    result = publish(work, target, "--allow-placeholders", content=content)
    assert result.returncode == 1, result.stdout
    assert "'https://tracker.example.net/pixel.gif': the page would load this from another site" in result.stderr
    assert "'javascript:alert(1)': a javascript: link" in result.stderr
    assert "nothing was deployed" in result.stderr
    assert snapshot(target) == before


def test_a_directory_that_was_not_published_to_is_not_replaced(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    result = publish(tmp_path / "work", home, "--allow-placeholders")
    assert result.returncode == 1
    assert f"{home} holds 1 file(s) that make publish did not put there (notes.txt)" in result.stderr
    assert snapshot(home) == {"notes.txt": (b"mine", (home / "notes.txt").stat().st_ino,
                                            (home / "notes.txt").stat().st_mtime_ns)}
    assert [path.name for path in tmp_path.iterdir()] != [] and not list(tmp_path.glob(".home.new-*"))


def test_files_of_an_earlier_publish_are_removed(published: Published) -> None:
    """The target holds the marker every build writes: a file the site no longer has goes, and only it."""
    work, target, _ = published
    (target / "clinics" / "closed-clinic").mkdir()
    (target / "clinics" / "closed-clinic" / "index.html").write_text("gone")
    assert (target / ".clinic-directory-site").read_bytes().startswith(b"This directory holds a site published")
    result = publish(work, target, "--allow-placeholders")
    assert result.returncode == 0, result.stderr
    assert "0 added, 0 changed, 1 removed" in result.stdout
    assert not (target / "clinics" / "closed-clinic").exists()


def test_a_site_url_that_is_not_https_stops_the_publish(tmp_path: Path) -> None:
    result = publish(tmp_path / "work", tmp_path / "www", "--allow-placeholders", env={"SITEURL": "http://localhost:8000"})
    assert result.returncode == 1
    assert "SITEURL: the published site needs its absolute https address" in result.stderr
    assert not (tmp_path / "www").exists() and not (tmp_path / "work" / "site").exists()


def test_make_publish_passes_its_options(tmp_path: Path) -> None:
    """The contract's command line: TARGET, ALLOW_PLACEHOLDERS and DRY_RUN reach the publish."""
    target = tmp_path / "www"
    result = subprocess.run(["make", "--no-print-directory", "publish", f"TARGET={target}", "ALLOW_PLACEHOLDERS=1",
                             "DRY_RUN=1"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"dry run: publishing to {target} would make" in result.stdout
    assert not target.exists()
    refused = subprocess.run(["make", "--no-print-directory", "publish", f"TARGET={target}", "ALLOW_PLACEHOLDERS=0"],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0 and "ALLOW_PLACEHOLDERS=1" in refused.stderr
    assert not target.exists()


# -- verification, on hand-made sites ------------------------------------------------------------------------


def write_site(root: Path, pages: dict[str, str]) -> Path:
    for name, text in {"404.html": "<p>404</p>", "robots.txt": "", **pages}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_verification_finds_what_must_not_go_live(tmp_path: Path) -> None:
    site = write_site(tmp_path, {
        "index.html": f'<link rel="stylesheet" href="{SITEURL}/theme/site.css">'
                      f'<a href="{SITEURL}/clinics/">ok</a> <a href="/missing/">gone</a> <a href="about/">rel</a>'
                      '<a href="https://other.example/">a link away is fine</a>'
                      '<link rel="stylesheet" href="https://cdn.example/x.css">'
                      '<script src="//cdn.example/x.js"></script>'
                      '<a href="http://localhost:8000/">dev</a> <a href="mailto:a@example.org">m</a>'
                      "<a href='JavaScript:alert(1)'>js</a> <a href=\"tel:+15555550100\">t</a>",
        "theme/site.css": "",
        "clinics/index.html": '<a href="../index.html">up</a> <a href="../nowhere.html">broken</a>',
        "about/index.html": "",
    })
    problems = "\n".join(verify_site(site, SITEURL))
    assert f"{site / 'sitemap.xml'}: missing" in problems
    assert "'/missing/' leads to no file of the site" in problems
    assert "'../nowhere.html' leads to no file of the site" in problems
    assert "'https://cdn.example/x.css': the page would load this from another site" in problems
    assert "'//cdn.example/x.js': the page would load this from another site" in problems
    assert "'http://localhost:8000/' points at this machine" in problems
    assert "'JavaScript:alert(1)': a javascript: link" in problems
    for fine in ("site.css", "'about/'", "other.example", "'mailto:", "'tel:", "'../index.html'",
                 f"'{SITEURL}/clinics/'"):
        assert fine not in problems, fine


def test_one_fault_on_many_pages_is_one_line(tmp_path: Path) -> None:
    site = write_site(tmp_path, {f"p{number}/index.html": '<a href="/gone/">x</a>' for number in range(5)})
    (site / "index.html").write_text("")
    (site / "sitemap.xml").write_text(f"<urlset><url><loc>{SITEURL}/p1/</loc></url>"
                                      f"<url><loc>{SITEURL}/nope/</loc></url></urlset>")
    problems = verify_site(site, SITEURL)
    assert problems == [f"{site / 'p0/index.html'} (and 4 more): <a href>: '/gone/' leads to no file of the site",
                        f"{site / 'sitemap.xml'}: sitemap entry '{SITEURL}/nope/' leads to no file of the site"]


# -- the local directory target ------------------------------------------------------------------------------


def test_target_forms(tmp_path: Path) -> None:
    assert isinstance(parse_target(str(tmp_path / "www"), tmp_path), LocalTarget)
    assert isinstance(parse_target("relative/dir", tmp_path), LocalTarget)
    assert type(parse_target("ghpages:git@example.org:me/site.git", tmp_path)).__name__ == "GhPagesTarget"
    assert type(parse_target("s3://bucket/site", tmp_path)).__name__ == "S3Target"
    assert type(parse_target("deploy@example.org:/srv/www", tmp_path)).__name__ == "RsyncTarget"


def test_local_target_swaps_the_whole_tree(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", {"index.html": "new", "a/b.html": "b", "same.txt": "same"})
    live = tmp_path / "live"
    target = LocalTarget(str(live))
    assert target.deploy(site) == Changes(added=("404.html", "a/b.html", "index.html", "robots.txt", "same.txt"))
    (site / "index.html").write_text("newer")
    (site / "a/b.html").unlink()
    (site / "c.html").write_text("c")
    same = (live / "same.txt").stat().st_ino
    assert target.changes(site) == Changes(added=("c.html",), changed=("index.html",), removed=("a/b.html",),
                                           unchanged=3)
    assert (live / "index.html").read_text() == "new", "changes() changes nothing"
    target.deploy(site)
    assert sorted(p.relative_to(live).as_posix() for p in live.rglob("*") if p.is_file()) == \
        ["404.html", "c.html", "index.html", "robots.txt", "same.txt"]
    assert (live / "index.html").read_text() == "newer"
    assert (live / "same.txt").stat().st_ino == same
    assert sorted(path.name for path in tmp_path.iterdir()) == ["live", "site"], "no leftovers"


def test_local_target_compares_bytes_not_times(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", {"index.html": "abc", "same.html": "same"})
    target = LocalTarget(str(tmp_path / "live"))
    target.deploy(site)
    (site / "index.html").write_text("xyz")  # the same size, new bytes
    os.utime(site / "same.html", ns=(1, 1))  # the same bytes, another mtime
    assert target.changes(site) == Changes(changed=("index.html",), unchanged=3)


def test_local_target_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    site = write_site(tmp_path / "site", {"index.html": ""})
    with pytest.raises(Exception, match="is a file, not a directory"):
        LocalTarget(str(tmp_path / "file")).deploy(site)
    assert (tmp_path / "file").read_text() == "x"
