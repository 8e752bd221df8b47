"""The reference the benchmark compares against: the naive way to put a registry on Pelican.

One Markdown article per clinic (category: its state, tags: its treatments), the
settings ``pelican-quickstart`` writes, the default theme, built with the ``pelican``
command. It makes only one page per clinic (plus Pelican's index, category, tag and
author listings); our build makes the whole directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SETTINGS = '''AUTHOR = "Benchmark"
SITENAME = "Naive clinic directory"
SITEURL = ""
PATH = "content"
TIMEZONE = "America/Chicago"
DEFAULT_LANG = "en"
FEED_ALL_ATOM = None
CATEGORY_FEED_ATOM = None
TRANSLATION_FEED_ATOM = None
AUTHOR_FEED_ATOM = None
AUTHOR_FEED_RSS = None
DEFAULT_PAGINATION = 10
'''


def clinic_markdown(slug: str, clinic: dict[str, Any], services: dict[str, Any], state_names: dict[str, str]) -> str:
    first = next(iter(clinic["locations"].values()))
    lines = [
        f"Title: {clinic['name']}",
        f"Date: {clinic['last_verified']}",
        f"Slug: {slug}",
        f"Category: {state_names[first['address']['state']]}",
        f"Tags: {', '.join(services[s]['name'] for s in clinic['services'])}",
        f"Summary: {clinic['summary']}",
        "",
        clinic["summary"],
        "",
        f"Accepting new patients: {'yes' if clinic['accepting_new_patients'] else 'no'}. "
        f"Languages: {', '.join(clinic['languages'])}.",
        "",
        "## Locations",
    ]
    for location in clinic["locations"].values():
        address = location["address"]
        lines += ["", f"### {location['name']}", "",
                  f"{address['street']}, {address['city']}, {address['state']} {address['postal_code']}  ",
                  f"Phone: {location['phone']}", ""]
        lines += [f"* {day}: {hours}" for day, hours in location.get("hours", {}).items()]
    lines += ["", "## Physicians"]
    for physician in clinic.get("physicians", {}).values():
        lines += ["", f"### {physician['name']}, {', '.join(physician.get('credentials', []))}", "",
                  physician.get("bio", "")]
    return "\n".join(lines) + "\n"


def write_site(registry: dict[str, Any], directory: Path, state_names: dict[str, str]) -> None:
    """A Pelican project in ``directory``: ``pelicanconf.py`` and ``content/<clinic>.md``."""
    content = directory / "content"
    content.mkdir(parents=True, exist_ok=True)
    (directory / "pelicanconf.py").write_text(SETTINGS, encoding="utf-8")
    for slug, clinic in registry["clinics"].items():
        (content / f"{slug}.md").write_text(clinic_markdown(slug, clinic, registry["services"], state_names),
                                            encoding="utf-8")
