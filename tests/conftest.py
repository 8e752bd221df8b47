"""Shared fixtures: a built sample site, a loopback HTTP server, one headless Chromium.

Browser tests share one browser for the whole session (starting Chromium is the
slow part); each test gets a fresh context, so no cookies or storage leak between tests.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden from the built site")


def build(output: Path, registry: Path | None = None, settings: str = "pelicanconf.py",
          extra: list[str] | None = None, content: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real build command (as `make html` does) and return the finished process.

    A registry other than the sample usually needs ``content`` too: the sample articles
    name the sample's treatments, conditions and physicians, and the build checks that.
    """
    command = [sys.executable, "-m", "clinic_directory", "build", "--settings", str(ROOT / settings),
               "--output", str(output), "--quiet"]
    if registry is not None:
        command += ["--registry", str(registry)]
    if content is not None:
        command += ["--content", str(content)]
    env = {"PYTHONPATH": str(ROOT / "plugins"), "PATH": "/usr/bin:/bin:/usr/local/bin"}
    return subprocess.run(command + (extra or []), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def empty_content(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A content directory with no articles, for builds of registries other than the sample."""
    return tmp_path_factory.mktemp("empty-content")


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample site, built once per test session."""
    output = tmp_path_factory.mktemp("site") / "output"
    result = build(output)
    assert result.returncode == 0, result.stderr
    return output


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="session")
def site_url(site: Path) -> Iterator[str]:
    """Base URL of the sample site served over HTTP on loopback."""
    server, url = serve(site)
    yield url
    server.shutdown()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@dataclass
class RequestLog:
    """Every request a page made, so tests can assert none left the site's origin."""

    origin: str
    urls: list[str] = field(default_factory=list)

    @property
    def foreign(self) -> list[str]:
        return [u for u in self.urls if not u.startswith(("data:", "blob:"))
                and f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" != self.origin]


@pytest.fixture
def page(browser: object, site_url: str) -> Iterator[object]:
    """A fresh browser context and page; ``page.request_log`` records every request."""
    context = browser.new_context(base_url=site_url)  # type: ignore[attr-defined]
    log = RequestLog(origin=site_url)
    context.on("request", lambda request: log.urls.append(request.url))
    new_page = context.new_page()
    new_page.request_log = log
    errors: list[str] = []
    new_page.on("pageerror", lambda error: errors.append(str(error)))
    new_page.js_errors = errors
    yield new_page
    context.close()


PUBLISHED_SITEURL = "https://clinics.example.org"


def publish(work: Path, target: Path | str, *options: str, registry: Path | None = None,
            content: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real publish command (as `make publish` does) with its build in ``work``. The environment
    is this process's (a target's credentials, RSYNC_RSH, git's settings) with ``env`` over it."""
    command = [sys.executable, "-m", "clinic_directory", "publish", "--settings", "publishconf.py",
               "--work", str(work), "--target", str(target), *options]
    if registry is not None:
        command += ["--registry", str(registry)]
    if content is not None:
        command += ["--content", str(content)]
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "plugins"), **(env or {})}
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def published_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample site as ``make publish`` builds it: absolute URLs, feed and sitemap."""
    output = tmp_path_factory.mktemp("published") / "output"
    result = build(output, settings="publishconf.py")
    assert result.returncode == 0, result.stderr
    return output


# -- Page types, for the quality gates (accessibility, privacy, valid HTML) ----------------

# Every URL pattern the site generates (INTERFACE.md section 3 and the index pages), most specific
# first. Gates that cannot afford every page check one page per type; a page matching no pattern is
# a type of its own, so a new kind of page is checked as soon as the build writes it.
PAGE_TYPES: list[tuple[str, str]] = [
    ("home", r"index\.html"),
    ("404", r"404\.html"),
    ("find", r"find/index\.html"),
    ("search", r"search/index\.html"),
    ("clinics by state", r"clinics/index\.html"),
    ("clinic", r"clinics/[^/]+/index\.html"),
    ("location", r"clinics/[^/]+/locations/[^/]+/index\.html"),
    ("refer", r"clinics/[^/]+/refer/index\.html"),
    ("update form", r"clinics/[^/]+/update/index\.html"),
    ("physician", r"physicians/[^/]+/index\.html"),
    ("treatments", r"treatments/index\.html"),
    ("treatment", r"treatments/[^/]+/index\.html"),
    ("conditions", r"conditions/index\.html"),
    ("condition", r"conditions/[^/]+/index\.html"),
    ("articles", r"articles/index\.html"),
    ("article", r"articles/[^/]+/index\.html"),
    ("page", r"[^/]+/index\.html"),
]

# Pages as a visitor's action leaves them: page type -> (state, URL, selector to wait for).
INTERACTIVE_STATES: dict[str, tuple[str, str, str]] = {
    "find": ("find with results", "/find/?near=77494", '#results[aria-busy="false"] > li'),
    "search": ("search with results", "/search/?q=ketamine", "[data-search-results] > li"),
}


def html_pages(site: Path) -> list[str]:
    """Every HTML page the build wrote, relative to the output directory, in path order."""
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if p.is_file())


def page_type(relative: str) -> str:
    for name, pattern in PAGE_TYPES:
        if re.fullmatch(pattern, relative):
            return name
    return f"other: {relative}"


def page_url(relative: str) -> str:
    """The URL path at which a static host serves the file ``relative``."""
    return "/" + re.sub(r"(^|/)index\.html$", r"\1", relative)


def representative_pages(site: Path) -> dict[str, str]:
    """One URL path per page type: its largest page (the most content to check)."""
    best: dict[str, tuple[int, str]] = {}
    for relative in html_pages(site):
        size, kind = (site / relative).stat().st_size, page_type(relative)
        if kind not in best or size > best[kind][0]:
            best[kind] = (size, relative)
    return {kind: page_url(relative) for kind, (_size, relative) in sorted(best.items())}


def page_states(site: Path) -> list[tuple[str, str, str | None]]:
    """(name, URL, selector to wait for) for one page per type plus each interactive state."""
    states: list[tuple[str, str, str | None]] = []
    for kind, url in representative_pages(site).items():
        states.append((kind, url, None))
        if kind in INTERACTIVE_STATES:
            states.append(INTERACTIVE_STATES[kind])
    return states
