"""The build as the maintainer runs it: atomic on failure, byte-identical when repeated."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, build

FIXTURES = Path(__file__).parent / "fixtures" / "registries"


def snapshot(tree: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``tree`` with its content hash and mtime."""
    return {str(p.relative_to(tree)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(tree.rglob("*")) if p.is_file()}


def test_failed_build_leaves_previous_output_intact(tmp_path: Path) -> None:
    output = tmp_path / "output"
    assert build(output).returncode == 0
    (output / "keep-me.txt").write_text("a file the maintainer put here")
    before = snapshot(output)

    result = build(output, registry=FIXTURES / "bad" / "zip-integer" / "clinics.yaml")

    assert result.returncode == 1
    assert "postal_code: expected a 5-digit ZIP code as a quoted string" in result.stderr
    assert "was left as it was" in result.stderr
    assert snapshot(output) == before
    assert [p.name for p in tmp_path.iterdir()] == ["output"], "no staging directory may be left behind"


def test_failed_template_leaves_previous_output_intact(tmp_path: Path) -> None:
    """Not only registry errors: a broken theme also stops the build before anything is written."""
    output = tmp_path / "output"
    assert build(output).returncode == 0
    before = snapshot(output)
    theme = tmp_path / "theme"
    shutil.copytree(ROOT / "theme", theme)
    (theme / "templates" / "clinic.html").write_text(
        "{% extends 'base.html' %}{% block content %}{{ 1/0 }}{% endblock %}")
    settings = tmp_path / "conf.py"
    settings.write_text(f"from pelicanconf import *\nTHEME = {str(theme)!r}\nPATH = {str(ROOT / 'content')!r}\n"
                        f"PLUGIN_PATHS = [{str(ROOT / 'plugins')!r}]\n")
    result = build(output, settings=str(settings))
    assert result.returncode != 0
    assert "ZeroDivisionError" in result.stderr
    assert snapshot(output) == before


def test_build_is_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert build(first).returncode == 0
    assert build(second).returncode == 0
    assert {k: v[0] for k, v in snapshot(first).items()} == {k: v[0] for k, v in snapshot(second).items()}


def test_a_build_reports_what_it_does_not_each_file(tmp_path: Path) -> None:
    """Without --quiet the build says what it found and what it renders; the file-by-file lines of
    Pelican's writer (60,000 at 10,000 clinics) are left to --verbose."""
    result = subprocess.run([sys.executable, "-m", "clinic_directory", "build", "--settings",
                             str(ROOT / "pelicanconf.py"), "--output", str(tmp_path / "out"),
                             "--cache", str(tmp_path / "cache")],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "plugins")},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "INFO: Registry" in result.stderr and "INFO: Pages:" in result.stderr
    assert "Writing" not in result.stderr and "Copying" not in result.stderr


def test_rebuild_rewrites_only_changed_files(tmp_path: Path) -> None:
    output = tmp_path / "output"
    registry = tmp_path / "clinics.yaml"
    shutil.copy(ROOT / "clinics.yaml", registry)
    assert build(output, registry=registry).returncode == 0
    before = snapshot(output)

    registry.write_text(registry.read_text().replace('"+1-281-555-0100"', '"+1-281-555-0199"'))
    assert build(output, registry=registry).returncode == 0
    after = snapshot(output)

    changed = sorted(name for name in after if after[name] != before.get(name))
    assert "clinics/katy-pain-and-spine/index.html" in changed
    assert "clinics/bellevue-pain-and-wellness/index.html" not in changed
    assert "+1-281-555-0199" in (output / "clinics/katy-pain-and-spine/index.html").read_text()


def test_sample_site_has_every_page_the_contract_lists(site: Path) -> None:
    for page in ["index.html", "404.html", "robots.txt", "clinics/index.html",
                 "clinics/katy-pain-and-spine/index.html", "clinics/revitalize-medical-center/index.html",
                 "clinics/bellevue-pain-and-wellness/index.html", "clinics/texas-pain-intervention-clinic/index.html",
                 "clinics/revitalize-medical-center/locations/evanston/index.html",
                 "physicians/nimish-dave/index.html", "physicians/robert-bowers/index.html",
                 "physicians/decaria/index.html", "physicians/ankit-maheshwari/index.html",
                 "treatments/ketamine-infusion/index.html", "conditions/crps/index.html",
                 *(f"clinics/{clinic}/{page}/index.html" for page in ("refer", "update")
                   for clinic in ("katy-pain-and-spine", "revitalize-medical-center", "bellevue-pain-and-wellness",
                                  "texas-pain-intervention-clinic"))]:
        assert (site / page).is_file(), page
