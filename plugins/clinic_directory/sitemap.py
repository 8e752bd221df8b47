"""``sitemap.xml``: every indexable HTML page of the finished site, and nothing else.

Written on Pelican's ``finalized`` signal from the files actually in the output, so a
page any generator adds (articles, clinics, the find page) is listed without being
registered here. Left out: static files (``theme/``, the search index), ``404.html``
and any page whose ``<meta name="robots">`` says ``noindex`` (the search page).

A sitemap needs absolute URLs, so it is written only when ``SITEURL`` is an absolute
http(s) URL (``publishconf.py``); development builds with relative URLs have none,
as their ``robots.txt`` does not point to one. The output is sorted and escaped, so
the same site always gives the same bytes.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

logger = logging.getLogger(__name__)

SITEMAP_NAME = "sitemap.xml"
EXCLUDED_DIRS = frozenset({"theme", "pagefind"})
EXCLUDED_FILES = frozenset({"404.html"})
HEAD_LIMIT = 64 * 1024  # the robots meta is in the head, near the top
META = re.compile(rb"<meta\b[^>]*>", re.IGNORECASE)


class RobotsMeta(HTMLParser):
    """Collects ``<meta name="robots">`` directives from a page's head."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.directives: set[str] = set()
        self.in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.in_body = True
        if tag != "meta" or self.in_body:
            return
        values = {name.lower(): (value or "") for name, value in attrs}
        if values.get("name", "").lower() in ("robots", "googlebot"):
            self.directives.update(part.strip().lower() for part in values.get("content", "").split(","))


def is_noindex(path: str) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(HEAD_LIMIT).split(b"</head>", 1)[0]
    # Only the head's meta elements that name robots are parsed: parsing every head took 16 s at
    # 10,000 clinics, and even those of the 10,000 update pages (noindex) took 3 s.
    parser = RobotsMeta()
    for meta in META.findall(head):
        lowered = meta.lower()
        if b"robots" in lowered or b"googlebot" in lowered:
            parser.feed(meta.decode("utf-8", errors="replace"))
    return "noindex" in parser.directives or "none" in parser.directives


def page_urls(output: Path, kept: Mapping[str, Path] | None = None) -> list[str]:
    """Site-relative URLs of the indexable pages under ``output``, and of the ``kept`` pages (relative
    name -> path: those an incremental build leaves in the last output), sorted."""
    urls: list[str] = []

    def add(relative: str, path: str) -> None:
        if relative.endswith(".html") and relative not in EXCLUDED_FILES \
                and relative.split("/", 1)[0] not in EXCLUDED_DIRS and not is_noindex(path):
            urls.append(relative.removesuffix("index.html") if relative.rpartition("/")[2] == "index.html"
                        else relative)

    def walk(directory: str, prefix: str) -> None:  # os.scandir: 90,000 directories at 10,000 clinics
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if prefix or entry.name not in EXCLUDED_DIRS:
                        walk(entry.path, f"{prefix}{entry.name}/")
                else:
                    add(prefix + entry.name, entry.path)

    walk(str(output), "")
    for name, path in (kept or {}).items():
        add(name, str(path))
    return sorted(urls)


def render_sitemap(site_url: str, urls: list[str]) -> str:
    base = site_url.rstrip("/")
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">']
    for url in urls:
        loc = f"{base}/{quote(url, safe='/-._~')}"
        lines.append(f"  <url><loc>{escape(loc)}</loc></url>")
    lines.append("</urlset>")
    return "\n".join(lines) + "\n"


def write_sitemap(pelican: Any) -> None:
    """``finalized`` receiver, for builds without the page store (``build.py`` writes the sitemap itself)."""
    write_sitemap_file(Path(pelican.output_path), pelican.settings.get("SITEURL", ""),
                       relative=bool(pelican.settings.get("RELATIVE_URLS")))


def write_sitemap_file(output: Path, site_url: str, kept: Mapping[str, Path] | None = None,
                       relative: bool = False) -> None:
    """``output``'s sitemap, listing its pages and the ``kept`` ones (see ``page_urls``)."""
    if urlsplit(site_url).scheme not in ("http", "https") or relative:
        logger.info("No %s: SITEURL is not an absolute URL (development build)", SITEMAP_NAME)
        return
    urls = page_urls(output, kept)
    (output / SITEMAP_NAME).write_text(render_sitemap(site_url, urls), encoding="utf-8")
    logger.info("Wrote %s with %d pages", SITEMAP_NAME, len(urls))
