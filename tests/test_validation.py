"""The registry validator: one fixture folder per defect, each with its exact problem line(s).

`tests/fixtures/registries/bad/<case>/clinics.yaml` holds a registry with one defect and
`expected.txt` the lines `make validate` must print for it. Adding a case is adding a folder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from clinic_directory.geocode import CacheEntry
from clinic_directory.model import Address
from clinic_directory.registry import check_registry

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "registries"
BAD = sorted(p.name for p in (FIXTURES / "bad").iterdir())
GOOD = sorted(p.name for p in (FIXTURES / "good").iterdir())
LIMIT = 64 * 1024 * 1024


def validate(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    return subprocess.run([sys.executable, "-m", "clinic_directory", "validate", path.name],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case", BAD)
def test_bad_registry_reports_exact_problem(case: str) -> None:
    folder = FIXTURES / "bad" / case
    _data, problems = check_registry(folder / "clinics.yaml", LIMIT, "clinics.yaml")
    expected = (folder / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert [str(p) for p in sorted(problems)] == expected


@pytest.mark.parametrize("case", GOOD)
def test_good_registry_has_no_problems(case: str) -> None:
    _data, problems = check_registry(FIXTURES / "good" / case / "clinics.yaml", LIMIT, "clinics.yaml")
    assert problems == []


def test_sample_registry_is_valid() -> None:
    data, problems = check_registry(ROOT / "clinics.yaml", LIMIT, "clinics.yaml")
    assert problems == []
    assert sorted(data["clinics"]) == ["bellevue-pain-and-wellness", "katy-pain-and-spine",
                                       "revitalize-medical-center", "texas-pain-intervention-clinic"]


def test_validate_command_lists_every_problem_and_fails() -> None:
    """Not just the first problem: every one, each on its own located line, exit 1."""
    result = validate(FIXTURES / "bad-many" / "clinics.yaml", FIXTURES / "bad-many")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if re.match(r"clinics\.yaml:\d+:\d+: ", line)]
    assert len(lines) == 18
    assert result.stderr.splitlines()[-1] == "clinics.yaml: 18 problem(s)"
    paths = {line.split(": ")[1] for line in lines}
    assert {"clinics.a.name", "clinics.a.website", "clinics.a.locations.l.hours.mon",
            "clinics.b.locations.m.address.postal_code", "clinics.a.summary"} <= paths
    assert lines == sorted(lines, key=lambda line: tuple(int(n) for n in line.split(":")[1:3]))


def test_validate_command_accepts_the_sample() -> None:
    result = validate(ROOT / "clinics.yaml", ROOT)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    huge = tmp_path / "clinics.yaml"
    with huge.open("wb") as handle:  # sparse: 300 MB on paper, nothing on disk
        handle.truncate(300 * 1024 * 1024)
    _data, problems = check_registry(huge, LIMIT, "clinics.yaml")
    assert [str(p) for p in problems] == [
        "clinics.yaml:1:1: (file): the file is 314,572,800 bytes, over the limit of 67,108,864; "
        "split it or raise the size limit setting if it really is this large"]


def test_missing_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    _data, problems = check_registry(tmp_path / "nope.yaml", LIMIT, "nope.yaml")
    assert len(problems) == 1 and "cannot read the file" in problems[0].message


def test_deeply_nested_yaml_is_a_problem(tmp_path: Path) -> None:
    deep = tmp_path / "clinics.yaml"
    deep.write_text("schema: 1\nservices: " + "[" * 20000 + "]" * 20000 + "\n")
    _data, problems = check_registry(deep, LIMIT, "clinics.yaml")
    assert problems and problems[0].path == "(file)" and "not valid YAML" in problems[0].message


def test_validate_command_lists_locations_the_build_could_not_place(tmp_path: Path) -> None:
    """``make validate`` says what ``make html`` would: a location without geo that the geocode
    cache cannot place is a problem, on that location's line; once the cache places it, all is valid."""
    registry = tmp_path / "clinics.yaml"
    text = (ROOT / "clinics.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    clinic, location = "katy-pain-and-spine", next(iter(data["clinics"]["katy-pain-and-spine"]["locations"]))
    start = text.index(f"  {clinic}:")
    at = text.index(f" {location}:\n", text.index("    locations:", start)) + 1
    geo_line = text.index("geo:", at)
    line_end = text.index("\n", geo_line)
    assert "{" in text[geo_line:line_end], "the sample writes geo on one line"
    registry.write_text(text[:text.rindex("\n", 0, geo_line)] + text[line_end:], encoding="utf-8")
    result = validate(registry, tmp_path)
    assert result.returncode == 1, result.stderr
    line = text[:at].count("\n") + 1
    assert re.search(rf"^clinics\.yaml:{line}:\d+: clinics\.{clinic}\.locations\.{location}: "
                     rf".*cannot be placed on the map.*make geocode", result.stderr, re.M), result.stderr

    address = data["clinics"][clinic]["locations"][location]["address"]
    place = data["clinics"][clinic]["locations"][location]["geo"]
    entry = CacheEntry(Address(**{k: str(v) for k, v in address.items()}).one_line, place["lat"], place["lon"])
    (tmp_path / "geocode-cache.json").write_text(json.dumps({f"{clinic}/{location}": entry.as_json()}),
                                                  encoding="utf-8")
    result = validate(registry, tmp_path)
    assert result.returncode == 0, result.stderr
