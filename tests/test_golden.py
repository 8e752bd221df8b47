"""Golden copies of the sample site's key pages.

A failure shows the diff. When a change to the pages is intended, regenerate with
`make golden` and review the golden diff in the commit like any other change.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
PAGES = [
    "index.html",
    "clinics/index.html",
    "clinics/revitalize-medical-center/index.html",
    "clinics/texas-pain-intervention-clinic/index.html",
    "clinics/bellevue-pain-and-wellness/refer/index.html",
    "clinics/texas-pain-intervention-clinic/refer/index.html",
    "clinics/revitalize-medical-center/update/index.html",
    "clinics/revitalize-medical-center/locations/evanston/index.html",
    "physicians/robert-bowers/index.html",
    "articles/ketamine-for-crps/index.html",
    "treatments/ketamine-infusion/index.html",
    "conditions/crps/index.html",
    "404.html",
    "robots.txt",
]


@pytest.mark.parametrize("page", PAGES)
def test_page_matches_golden(page: str, site: Path, request: pytest.FixtureRequest) -> None:
    built = (site / page).read_text(encoding="utf-8")
    golden = GOLDEN / page
    if request.config.getoption("--update-golden"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(built, encoding="utf-8")
    expected = golden.read_text(encoding="utf-8")
    diff = "".join(difflib.unified_diff(expected.splitlines(True), built.splitlines(True),
                                        f"golden/{page}", f"built/{page}"))
    assert not diff, f"{page} differs from its golden copy (run `make golden` if intended):\n{diff}"
