"""Shared fixtures: a built sample site, a loopback HTTP server, one headless Chromium.

Browser tests share one browser for the whole session (starting Chromium is the
slow part); each test gets a fresh context, so no cookies or storage leak between tests.
"""

from __future__ import annotations

import functools
import http.server
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
