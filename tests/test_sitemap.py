"""sitemap.xml holds every indexable page of the published site, and nothing else."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from clinic_directory.sitemap import page_urls, render_sitemap
from conftest import PUBLISHED_SITEURL, ROOT

NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
REGISTRY = yaml.safe_load((ROOT / "clinics.yaml").read_text(encoding="utf-8"))
ARTICLE_SLUGS = sorted(p.stem for p in (ROOT / "content" / "articles").glob("*.md"))


def sitemap_locs(site: Path) -> list[str]:
    root = ET.parse(site / "sitemap.xml").getroot()
    assert root.tag == f"{NS}urlset"
    assert all(child.tag == f"{NS}url" for child in root)
    return [url.find(f"{NS}loc").text for url in root]


NOINDEX = re.compile(r'<meta name="robots" content="[^"]*noindex')


def served_file(site: Path, url: str) -> Path:
    return site / url / "index.html" if url == "" or url.endswith("/") else site / url


def html_pages(site: Path) -> set[str]:
    """Every HTML file of the built site as the URL it is served at."""
    pages = set()
    for path in site.rglob("*.html"):
        relative = path.relative_to(site).as_posix()
        pages.add(relative[: -len("index.html")] if path.name == "index.html" else relative)
    return pages


def test_sitemap_holds_every_page_and_nothing_else(published_site: Path) -> None:
    locs = sitemap_locs(published_site)
    assert locs == sorted(set(locs)), "sorted, no duplicates"
    assert all(loc.startswith(f"{PUBLISHED_SITEURL}/") for loc in locs)
    listed = {loc[len(PUBLISHED_SITEURL) + 1:] for loc in locs}

    # Nothing else: each entry is a page of the site, not a static file or search index.
    pages = html_pages(published_site)
    assert listed <= pages, listed - pages
    assert not any(url.startswith(("theme/", "pagefind/")) or url.endswith((".json", ".xml", ".txt")) for url in listed)
    # Every page, but the ones a search engine should not index: the 404 page and those marked noindex.
    noindex = {url for url in pages if NOINDEX.search(served_file(published_site, url).read_text(encoding="utf-8"))}
    assert "search/" in noindex
    assert pages - listed == {"404.html"} | noindex

    # And by name: everything the registry and the articles make.
    expected = {"", "articles/", "clinics/", "treatments/", "conditions/", "find/"}
    expected |= {f"clinics/{slug}/" for slug in REGISTRY["clinics"]}
    clinics = REGISTRY["clinics"].values()
    expected |= {f"physicians/{doc}/" for clinic in clinics for doc in clinic.get("physicians", {})}
    expected |= {f"treatments/{slug}/" for slug in REGISTRY["services"]}
    expected |= {f"conditions/{slug}/" for slug in REGISTRY["conditions"]}
    expected |= {f"articles/{slug}/" for slug in ARTICLE_SLUGS}
    assert expected <= listed, expected - listed


def test_robots_txt_points_to_the_sitemap(published_site: Path) -> None:
    assert f"Sitemap: {PUBLISHED_SITEURL}/sitemap.xml" in (published_site / "robots.txt").read_text(encoding="utf-8")


def test_development_build_has_no_sitemap(site: Path) -> None:
    """Sitemaps need absolute URLs, which a relative-URL development build does not have."""
    assert not (site / "sitemap.xml").exists()
    assert "Sitemap:" not in (site / "robots.txt").read_text(encoding="utf-8")


def test_sitemap_escapes_and_encodes_urls() -> None:
    text = render_sitemap("https://example.org/sub/", ["", "a&b/", "caf\u00e9/", "x<y>/"])
    root = ET.fromstring(text.encode("utf-8"))
    assert [u.find(f"{NS}loc").text for u in root] == [
        "https://example.org/sub/", "https://example.org/sub/a%26b/", "https://example.org/sub/caf%C3%A9/",
        "https://example.org/sub/x%3Cy%3E/"]
    assert text == render_sitemap("https://example.org/sub/", ["", "a&b/", "caf\u00e9/", "x<y>/"])


def test_noindex_pages_and_static_files_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "index.html").write_text("<html><head><title>A</title></head><body></body></html>")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "index.html").write_text(
        '<html><head><meta name="robots" content="noindex"></head><body></body></html>')
    (tmp_path / "c.html").write_text(
        '<html><head></head><body><p>Not a tag: <meta name="robots" content="noindex"></p></body></html>')
    (tmp_path / "404.html").write_text("<html></html>")
    for static in ("theme", "pagefind"):
        (tmp_path / static).mkdir()
        (tmp_path / static / "x.html").write_text("<html></html>")
    (tmp_path / "index.html").write_text("<html></html>")
    assert page_urls(tmp_path) == ["", "a/", "c.html"]
