"""Where each page lives, and which links may reach an ``href``.

Patterns follow Pelican's ``*_URL`` / ``*_SAVE_AS`` convention so a site can move
pages without touching templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

SAFE_SCHEMES = frozenset({"https", "http", "mailto", "tel"})


@dataclass(frozen=True)
class UrlPatterns:
    """``kind -> (url pattern, save_as pattern)``; patterns are ``str.format`` templates over ``slug``."""

    patterns: dict[str, tuple[str, str]]

    def for_kind(self, kind: str, **fields: str) -> tuple[str, str]:
        url, save_as = self.patterns[kind]
        return url.format(**fields), save_as.format(**fields)


def safe_href(url: str) -> str:
    """``url`` if its scheme is allowed (relative links too), else ``#``.

    The registry validator already insists on https for websites; this is the
    second lock, applied in templates to every link that came from data.
    """
    cleaned = "".join(ch for ch in url if ch.isprintable() and not ch.isspace())
    scheme = urlsplit(cleaned).scheme.lower()
    if scheme and scheme not in SAFE_SCHEMES:
        return "#"
    if not scheme and ":" in cleaned.split("/", 1)[0]:
        return "#"
    return cleaned
