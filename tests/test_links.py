"""Links: LinkChecker crawls the built site over HTTP on loopback, from the home page and the 404 page.

Every internal link, asset and fragment (`#id`) must resolve. Links to other sites are listed, never
fetched: `make test PYTEST_ARGS="tests/test_links.py -rP"` prints them.
"""

from __future__ import annotations

import csv
import functools
import http.server
import io
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import QuietHandler, html_pages, page_url

# LinkChecker waits 0.1-0.6 s between requests to one host unless the server answers with a
# `LinkChecker` header; ours does, so the crawl runs at loopback speed.
CONFIG = """\
[checking]
threads=4
maxrequestspersecond=1000
timeout=30

[filtering]
checkextern=0

[AnchorCheck]
"""
OUTSIDE = "outside of the domain filter"


class CrawlerFriendlyHandler(QuietHandler):
    def end_headers(self) -> None:
        self.send_header("LinkChecker", "allowed")
        super().end_headers()


@pytest.fixture(scope="module")
def crawl_server(site: Path) -> Iterator[str]:
    handler = functools.partial(CrawlerFriendlyHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def crawl(crawl_server: str, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    """One row per link LinkChecker saw: where it points, the page it is on, the result."""
    home = tmp_path_factory.mktemp("linkchecker")
    home.chmod(0o755)  # LinkChecker drops root privileges after reading its configuration
    config = home / "linkcheckerrc"
    config.write_text(CONFIG, encoding="utf-8")
    config.chmod(0o644)
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home), "XDG_DATA_HOME": str(home),
           "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    result = subprocess.run(
        [sys.executable, "-m", "linkcheck", "--config", str(config), "--no-status", "--verbose",
         "--output", "csv/utf-8", f"{crawl_server}/", f"{crawl_server}/404.html"],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode in (0, 1), result.stderr  # 1: broken links found, reported below
    lines = [line for line in result.stdout.splitlines() if line and not line.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines)), delimiter=";"))
    assert rows, result.stdout + result.stderr
    return rows


def external_links(rows: list[dict[str, str]]) -> set[str]:
    return {row["url"] for row in rows if OUTSIDE in row["infostring"] or row["url"].startswith(("mailto:", "tel:"))}


def test_every_internal_link_and_asset_resolves(crawl: list[dict[str, str]]) -> None:
    broken = [f"{row['parentname'] or '(start)'} line {row['line']}: {row['urlname']} -> {row['result']}"
              f" {row['warningstring']}".strip() for row in crawl if row["valid"] != "True"]
    assert broken == []


def test_nothing_points_at_a_missing_anchor(crawl: list[dict[str, str]]) -> None:
    warnings = [f"{row['parentname']}: {row['urlname']}: {row['warningstring']}"
                for row in crawl if "anchor" in row["warningstring"].lower()]
    assert warnings == []


def test_crawl_reaches_every_page(site: Path, crawl: list[dict[str, str]], crawl_server: str) -> None:
    """Every page the build wrote is linked from somewhere (only the 404 page is reached by mistakes)."""
    crawled = {urlsplit(row["url"]).path for row in crawl if row["url"].startswith(crawl_server)}
    orphans = sorted(page_url(p) for p in html_pages(site) if page_url(p) not in crawled)
    assert orphans == []


def test_external_links_are_listed_not_fetched(crawl: list[dict[str, str]], crawl_server: str) -> None:
    external = external_links(crawl)
    assert any(url.startswith("https://") for url in external), "the sample clinics link to their websites"
    for row in crawl:
        if row["url"] in external:
            assert row["valid"] == "True", row
            assert row["dltime"] in ("-1", ""), f"fetched: {row['url']}"
    insecure = sorted(url for url in external if urlsplit(url).scheme not in ("https", "mailto", "tel"))
    assert insecure == [], "links to other sites use https"
    print(f"{len(external)} links to other sites (listed, not fetched):", *sorted(external), sep="\n  ")
