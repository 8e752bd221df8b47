"""The documentation is tested like code: schema fields, settings and the JSON Schema stay in step."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from clinic_directory import schema
from clinic_directory.__main__ import schema_markdown
from clinic_directory.registry import check_registry
from clinic_directory.settings import DEFAULTS, PREFIX

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_documents_every_schema_field() -> None:
    assert schema_markdown() in README, "regenerate the schema table: python -m clinic_directory schema --markdown"


def test_readme_documents_every_setting() -> None:
    for name in DEFAULTS:
        assert f"`{PREFIX}{name}`" in README, name


def test_readme_keeps_the_two_setup_commands() -> None:
    assert "make html" in README and "make test" in README


def test_published_json_schema_is_current() -> None:
    published = json.loads((ROOT / "docs" / "registry.schema.json").read_text(encoding="utf-8"))
    assert published == schema.json_schema(), \
        "regenerate: python -m clinic_directory schema > docs/registry.schema.json"


def test_sample_registry_satisfies_the_published_json_schema() -> None:
    data, problems = check_registry(ROOT / "clinics.yaml", 10**8, "clinics.yaml")
    assert problems == []
    jsonschema.validate(data, schema.json_schema())


def test_json_schema_rejects_what_the_validator_rejects() -> None:
    data, _ = check_registry(ROOT / "clinics.yaml", 10**8, "clinics.yaml")
    data["clinics"]["katy-pain-and-spine"]["website"] = "http://example.org/"
    validator = jsonschema.Draft202012Validator(schema.json_schema())
    assert not validator.is_valid(data)


def test_readme_documents_every_article_field() -> None:
    from clinic_directory.articles import FIELDS

    for key in FIELDS:
        assert f"`{key.capitalize()}`" in README, key
