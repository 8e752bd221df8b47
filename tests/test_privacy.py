"""Privacy: nothing leaves the site, nothing is stored, and every page says so in its security policy.

In Chromium (one page per type, find and site search in use, the browser's location granted): no
request to another origin, no cookie, nothing in local or session storage, IndexedDB, Cache Storage
or a service worker, no Content-Security-Policy violation, the search words and the position never
in a request. In the files (every page): a CSP meta tag of `default-src 'self'` before anything it
governs, no inline script, style or event handler, a referrer policy; and the `_headers` file for
hosts that read one, served here by a server that applies it, as those hosts do.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import ROOT, QuietHandler, RequestLog, html_pages, page_states

pytestmark = pytest.mark.browser

POSITION = {"latitude": 42.0446, "longitude": -87.6848}  # Evanston, IL
REFERRER_POLICIES = {"no-referrer", "same-origin", "strict-origin"}
UNSAFE = {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*", "http:", "https:", "data:", "blob:"}
SCRIPT_DIRECTIVES = ("default-src", "script-src", "script-src-elem", "script-src-attr")

# Runs before any page script (and is not subject to the page's CSP): records policy violations.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e =>
    window.__cspViolations.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') +
                                ' at ' + e.sourceFile + ':' + e.lineNumber));
"""
STORAGE_JS = """async () => ({
    cookie: document.cookie,
    local: Object.keys(localStorage),
    session: Object.keys(sessionStorage),
    indexedDB: (await indexedDB.databases()).map(db => db.name),
    caches: await caches.keys(),
    serviceWorkers: (await navigator.serviceWorker.getRegistrations()).length,
    violations: window.__cspViolations,
})"""
NOTHING_STORED = {"cookie": "", "local": [], "session": [], "indexedDB": [], "caches": [], "serviceWorkers": 0,
                  "violations": []}


# -- The site as hosts that read _headers serve it ------------------------------------------------------


def parse_headers_file(text: str) -> dict[str, dict[str, str]]:
    """Netlify / Cloudflare Pages `_headers`: a path line, then indented `Name: value` lines."""
    rules: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            current = rules.setdefault(line.strip(), {})
        else:
            assert current is not None, f"header line before any path: {line!r}"
            name, _, value = line.strip().partition(":")
            current[name.strip()] = value.strip()
    return rules


class HeadersFileHandler(QuietHandler):
    """Sends the `/*` headers of the site's `_headers` file with every response."""

    headers_for_all: dict[str, str] = {}

    def end_headers(self) -> None:
        for name, value in self.headers_for_all.items():
            self.send_header(name, value)
        super().end_headers()


@pytest.fixture(scope="module")
def headers_file(site: Path) -> dict[str, dict[str, str]]:
    path = site / "_headers"
    assert path.is_file(), "the build writes _headers for hosts that read one"
    return parse_headers_file(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def headers_site_url(site: Path, headers_file: dict[str, dict[str, str]]) -> Iterator[str]:
    handler_class = type("Handler", (HeadersFileHandler,), {"headers_for_all": headers_file["/*"]})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler_class, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def visitor(browser, headers_site_url: str):  # type: ignore[no-untyped-def]
    """A browser context on the site served with its headers, that may share its location."""
    context = browser.new_context(base_url=headers_site_url, geolocation=POSITION, permissions=["geolocation"])
    context.add_init_script(RECORD_VIOLATIONS)
    log = RequestLog(origin=headers_site_url)
    requests: list[tuple[str, str, str | None, bool]] = []
    context.on("request", lambda r: (log.urls.append(r.url),
                                     requests.append((r.method, r.url, r.post_data, r.is_navigation_request()))))
    page = context.new_page()
    page.request_log, page.requests = log, requests
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.js_errors = errors
    yield page
    context.close()


def test_pages_load_nothing_from_elsewhere_and_store_nothing(visitor, site: Path) -> None:  # type: ignore[no-untyped-def]
    seen: dict[str, dict] = {}
    for kind, url, wait in page_states(site):
        visitor.goto(url)
        if wait:
            visitor.wait_for_selector(wait)
        state = visitor.evaluate(STORAGE_JS)
        if state != NOTHING_STORED:
            seen[f"{kind} {url}"] = state
    assert seen == {}
    assert visitor.request_log.foreign == []
    assert visitor.context.cookies() == []
    assert visitor.js_errors == []


def test_a_location_search_stays_in_the_browser(visitor) -> None:  # type: ignore[no-untyped-def]
    visitor.goto("/find/")
    visitor.get_by_label("ZIP code or city").fill("77494")
    visitor.get_by_role("button", name="Search", exact=True).click()
    visitor.wait_for_selector('#results[aria-busy="false"] > li')
    visitor.get_by_role("button", name="Use my location").click()
    visitor.wait_for_function("() => document.querySelector('#results > li')?.dataset.clinic === "
                              "'revitalize-medical-center' && document.querySelector('#results').ariaBusy === 'false'")
    assert "42.04" not in visitor.url and "87.68" not in visitor.url
    assert_search_stayed_here(visitor, ["77494", "42.04", "87.68"])


def test_a_site_search_stays_in_the_browser(visitor) -> None:  # type: ignore[no-untyped-def]
    visitor.goto("/search/")
    visitor.get_by_label("Words to search for").fill("fibromyalgia")
    visitor.keyboard.press("Enter")
    visitor.wait_for_selector("[data-search-results] > li")
    assert_search_stayed_here(visitor, ["fibromyalgia"])


def assert_search_stayed_here(page, secrets: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Only GETs to this site; after the page itself, no request carries what the visitor typed or where they are."""
    assert page.request_log.foreign == []
    fetched = [(method, url, body) for method, url, body, navigation in page.requests if not navigation]
    assert fetched, "the search loads its data from the site"
    assert [(m, u) for m, u, body in fetched if m != "GET" or body] == []
    # Query strings only as cache busters (Pagefind's ?ts=<time>), never text the visitor typed.
    assert [u for _m, u, _b in fetched if not all(value.isdigit() for values in
                                                  parse_qs(urlsplit(u).query).values() for value in values)] == []
    assert [u for _m, u, _b in fetched if any(secret in u for secret in secrets)] == []
    assert page.evaluate(STORAGE_JS) == NOTHING_STORED
    assert page.context.cookies() == []
    assert page.js_errors == []


# -- Every page's policy, from the files ----------------------------------------------------------------


class Head(HTMLParser):
    """Meta policies, and everything that could run code or load from elsewhere, in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[tuple[str, dict[str, str]]] = []
        self.script_bodies: list[tuple[dict[str, str], str]] = []
        self._script: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.events.append((tag, values))
        if tag == "script":
            self._script = values
            self.script_bodies.append((values, ""))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            attrs, body = self.script_bodies[-1]
            self.script_bodies[-1] = (attrs, body + data)


def parse(path: Path) -> Head:
    head = Head()
    head.feed(path.read_text(encoding="utf-8"))
    return head


def parse_csp(policy: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        if part.strip():
            name, *sources = part.split()
            directives.setdefault(name.lower(), sources)
    return directives


def effective(directives: dict[str, list[str]], name: str) -> list[str]:
    """A fetch directive's sources, falling back to default-src as browsers do."""
    return directives.get(name, directives.get("default-src", []))


def page_policies(site: Path) -> dict[str, tuple[str, str]]:
    """Every page's meta CSP and referrer policy (empty when missing)."""
    found: dict[str, tuple[str, str]] = {}
    for relative in html_pages(site):
        metas = [attrs for tag, attrs in parse(site / relative).events if tag == "meta"]
        csp = [m["content"] for m in metas if m.get("http-equiv", "").lower() == "content-security-policy"]
        referrer = [m["content"] for m in metas if m.get("name", "").lower() == "referrer"]
        found[relative] = (csp[0] if len(csp) == 1 else "", referrer[0] if len(referrer) == 1 else "")
    return found


def test_every_page_has_a_strict_content_security_policy(site: Path) -> None:
    problems: list[str] = []
    for relative, (policy, _referrer) in page_policies(site).items():
        directives = parse_csp(policy)
        if directives.get("default-src") != ["'self'"]:
            problems.append(f"{relative}: default-src is {directives.get('default-src')}, not 'self' ({policy!r})")
        for name in SCRIPT_DIRECTIVES + ("style-src", "style-src-attr", "object-src", "connect-src"):
            if unsafe := set(effective(directives, name)) & UNSAFE:
                problems.append(f"{relative}: {name} allows {sorted(unsafe)}")
        if effective(directives, "object-src") != ["'none'"] or "base-uri" not in directives:
            problems.append(f"{relative}: object-src 'none' and base-uri are missing")
    assert problems == []


def test_the_policy_comes_before_anything_it_governs(site: Path) -> None:
    """A meta CSP only applies to what follows it."""
    late = []
    for relative in html_pages(site):
        tags = [tag for tag, attrs in parse(site / relative).events
                if tag in ("script", "link", "style", "img")
                or (tag == "meta" and attrs.get("http-equiv", "").lower() == "content-security-policy")]
        if not tags or tags[0] != "meta":
            late.append(relative)
    assert late == []


def test_every_page_sets_a_referrer_policy(site: Path) -> None:
    assert {r: referrer for r, (_csp, referrer) in page_policies(site).items()
            if referrer not in REFERRER_POLICIES} == {}


def test_no_inline_script_style_or_event_handler(site: Path) -> None:
    problems: list[str] = []
    for relative in html_pages(site):
        head = parse(site / relative)
        for attrs, body in head.script_bodies:
            if attrs.get("type") in ("application/ld+json", "application/json"):
                continue  # data blocks: never executed
            if not attrs.get("src") or body.strip():
                problems.append(f"{relative}: inline script {body.strip()[:60]!r}")
        for tag, attrs in head.events:
            if tag in ("style", "iframe", "object", "embed", "base"):
                problems.append(f"{relative}: <{tag}>")
            for name, value in attrs.items():
                if name.startswith("on") or name == "style":
                    problems.append(f"{relative}: <{tag} {name}=...>")
                if name in ("href", "src", "action", "formaction") and \
                        re.match(r"\s*(javascript|vbscript|data):", value, re.IGNORECASE) and tag != "link":
                    problems.append(f"{relative}: <{tag} {name}={value[:40]!r}>")
    assert problems == []


def test_nothing_is_loaded_from_another_site(site: Path) -> None:
    """Every script, stylesheet, image and icon the pages name is the site's own (checked in every file)."""
    loads_from_elsewhere: list[str] = []
    for relative in html_pages(site):
        for tag, attrs in parse(site / relative).events:
            loaded = attrs.get("src", "") or attrs.get("srcset", "") or attrs.get("poster", "")
            if tag == "link" and not set(attrs.get("rel", "").lower().split()) & {"canonical", "alternate"}:
                loaded = attrs.get("href", "")
            if re.match(r"\s*(https?:)?//", loaded, re.IGNORECASE):
                loads_from_elsewhere.append(f"{relative}: <{tag}> {loaded}")
    for stylesheet in site.glob("theme/**/*.css"):
        css = stylesheet.read_text(encoding="utf-8")
        loads_from_elsewhere += [f"{stylesheet.name}: {m}" for m in
                                 re.findall(r"(?:url\(\s*['\"]?|@import\s+['\"])((?:https?:)?//[^'\")]+)", css)]
    assert loads_from_elsewhere == []


def test_theme_scripts_never_touch_persistent_storage(site: Path) -> None:
    scripts = sorted(site.glob("theme/**/*.js"))
    assert scripts
    uses = [f"{s.name}: {m}" for s in scripts for m in re.findall(
        r"localStorage|sessionStorage|indexedDB|document\.cookie|sendBeacon|serviceWorker|caches\.open",
        s.read_text(encoding="utf-8"))]
    assert uses == []


# -- The headers file and the README ---------------------------------------------------------------------


def test_headers_file_sets_the_policy_for_every_path(headers_file: dict[str, dict[str, str]]) -> None:
    headers = headers_file["/*"]
    assert parse_csp(headers["Content-Security-Policy"])["default-src"] == ["'self'"]
    assert parse_csp(headers["Content-Security-Policy"])["frame-ancestors"] == ["'none'"]
    assert headers["Referrer-Policy"] in REFERRER_POLICIES
    assert "geolocation=(self)" in [p.strip() for p in headers["Permissions-Policy"].split(",")]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_header_policy_allows_what_each_page_needs_and_nothing_unsafe(site: Path, headers_file) -> None:  # type: ignore[no-untyped-def]
    """Browsers enforce the header and the meta policy together: the header must not block what a page
    allows, and must not allow anything a page's own policy could not."""
    header = parse_csp(headers_file["/*"]["Content-Security-Policy"])
    problems: list[str] = []
    for relative, (policy, _referrer) in page_policies(site).items():
        meta = parse_csp(policy)
        for name in set(meta) | {"script-src", "style-src", "img-src", "connect-src", "font-src"}:
            if missing := set(effective(meta, name)) - set(effective(header, name)):
                problems.append(f"{relative}: the header's {name} blocks {sorted(missing)}")
    for name in SCRIPT_DIRECTIVES + ("style-src", "object-src", "connect-src"):
        if unsafe := set(effective(header, name)) & UNSAFE:
            problems.append(f"_headers: {name} allows {sorted(unsafe)}")
    assert problems == []


def test_build_writes_the_headers_file_with_the_site(site: Path) -> None:
    assert (site / "_headers").read_text(encoding="utf-8").startswith("/*\n")
    assert (ROOT / "theme" / "templates" / "_headers").is_file()


def test_readme_gives_the_same_headers_for_nginx_and_apache(headers_file: dict[str, dict[str, str]]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Quality gates"):]
    for name, value in headers_file["/*"].items():
        assert f'add_header {name} "{value}" always;' in section, f"nginx: {name}"
        assert f'Header always set {name} "{value}"' in section, f"Apache: {name}"
