"""Plugin settings: defaults in one place, user values laid over them, mistakes named."""

from __future__ import annotations

import copy

import pytest

from clinic_directory.settings import DEFAULTS, SettingsError, read_plugin_settings


def test_defaults_apply_and_are_not_modified() -> None:
    before = copy.deepcopy(DEFAULTS)
    user = {"CLINIC_DIRECTORY_STALE_AFTER_DAYS": 30,
            "CLINIC_DIRECTORY_URLS": {"find": ("search/", "search/index.html")}}
    settings = read_plugin_settings(user)
    assert settings.stale_after_days == 30
    assert settings.urls.for_kind("find") == ("search/", "search/index.html")
    assert settings.urls.for_kind("clinic", slug="x") == ("clinics/x/", "clinics/x/index.html")
    assert DEFAULTS == before
    assert user == {"CLINIC_DIRECTORY_STALE_AFTER_DAYS": 30,
                    "CLINIC_DIRECTORY_URLS": {"find": ("search/", "search/index.html")}}


def test_unknown_setting_is_named() -> None:
    with pytest.raises(SettingsError, match="CLINIC_DIRECTORY_STALE_AFTER: unknown setting"):
        read_plugin_settings({"CLINIC_DIRECTORY_STALE_AFTER": 30})


def test_wrong_type_is_named() -> None:
    with pytest.raises(SettingsError, match="CLINIC_DIRECTORY_STALE_AFTER_DAYS: expected int, got str '30'"):
        read_plugin_settings({"CLINIC_DIRECTORY_STALE_AFTER_DAYS": "30"})
    with pytest.raises(SettingsError, match="expected int, got bool"):
        read_plugin_settings({"CLINIC_DIRECTORY_STALE_AFTER_DAYS": True})
