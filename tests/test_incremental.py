"""Incremental builds: whatever the caches skip, the output is byte for byte a clean build's.

A site is built once, then edited step by step (a clinic, an article, a template, a
setting); after each step an incremental build (same output, warm cache) is compared
with a clean build (new output, no cache). Then each input the caches depend on is
changed on its own and must invalidate them. Nothing here is timed: ``make bench`` is.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pelican.settings import read_settings

from clinic_directory import build as build_module
from clinic_directory import cache
from clinic_directory.build import BuildInputs, build_inputs
from clinic_directory.model import entry_hash
from clinic_directory.settings import read_plugin_settings
from conftest import ROOT, build


def tree(path: Path) -> dict[str, str]:
    """Every file under ``path``: relative name -> SHA-256 of its bytes."""
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def mtimes(path: Path) -> dict[str, int]:
    return {p.relative_to(path).as_posix(): p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()}


class Project:
    """A copy of the sample project's inputs in ``tmp_path``, built with a cache of its own."""

    def __init__(self, tmp_path: Path, base: str = "pelicanconf") -> None:
        self.dir = tmp_path
        self.base = base  # the settings the project's own extend: pelicanconf, or publishconf (a sitemap)
        self.registry = tmp_path / "clinics.yaml"
        shutil.copy(ROOT / "clinics.yaml", self.registry)
        self.content = tmp_path / "content"
        shutil.copytree(ROOT / "content", self.content)
        self.theme = tmp_path / "theme"
        shutil.copytree(ROOT / "theme", self.theme)
        self.settings = tmp_path / "conf.py"
        self.write_settings("")
        self.output = tmp_path / "output"
        self.cache = tmp_path / "cache"

    def write_settings(self, extra: str) -> None:
        self.settings.write_text(f"from {self.base} import *\nTHEME = {str(self.theme)!r}\n"
                                 f"PATH = {str(self.content)!r}\nPLUGIN_PATHS = [{str(ROOT / 'plugins')!r}]\n{extra}")

    def build(self, output: Path | None = None, cached: bool = True) -> Path:
        output = output or self.output
        result = build(output, registry=self.registry, settings=str(self.settings),
                       extra=["--cache", str(self.cache) if cached else ""])
        assert result.returncode == 0, result.stderr
        return output

    def clean_build(self) -> Path:
        output = self.dir / "clean"
        shutil.rmtree(output, ignore_errors=True)
        return self.build(output, cached=False)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("base", ["pelicanconf", "publishconf"])
def test_incremental_build_equals_clean_build_after_each_edit(tmp_path: Path, base: str) -> None:
    """After each edit, for a development build and for a published one (absolute URLs, a sitemap
    listing the pages an incremental build keeps in the output as well as those it renders)."""
    project = Project(tmp_path, base)
    project.build()
    assert tree(project.output) == tree(project.clean_build())
    assert not (project.output / ".pagefind-site").exists()  # Pagefind's own copy of the pages it read
    article = sorted((project.content / "articles").glob("*.md"))[0]
    edits = {
        "a clinic": lambda: edit(project.registry, '"+1-281-555-0100"', '"+1-281-555-0199"'),
        "a clinic's name, as lists show it": lambda: edit(project.registry, "name: Katy Pain and Spine\n",
                                                         "name: Katy Pain and Spine Center\n"),
        "a location's slug (a page gone, another added)": lambda: edit(project.registry, "      evanston:\n",
                                                                       "      evanston-office:\n"),
        "an article": lambda: article.write_text(article.read_text() + "\nA sentence added by the test.\n"),
        "a template": lambda: edit(project.theme / "templates" / "base.html", "</footer>",
                                   "<p>Footer note added by the test.</p></footer>"),
        "a setting": lambda: project.write_settings("SITENAME = 'Renamed Network'\n"
                                                    "CLINIC_DIRECTORY_STALE_AFTER_DAYS = 30\n"),
    }
    for what, change in edits.items():
        before = tree(project.output)
        before_mtimes = mtimes(project.output)
        change()
        project.build()
        after = tree(project.output)
        assert after != before, f"editing {what} changed nothing"
        assert after == tree(project.clean_build()), f"after editing {what}, incremental != clean"
        if base == "publishconf":
            assert "/clinics/revitalize-medical-center/locations/" in (project.output / "sitemap.xml").read_text()
        # Only files whose bytes changed were rewritten.
        now = mtimes(project.output)
        rewritten = sorted(name for name in after
                           if before.get(name) == after[name] and before_mtimes[name] != now[name])
        assert not rewritten, f"after editing {what}, unchanged files were rewritten: {rewritten[:5]}"


def rendered(result: subprocess.CompletedProcess[str]) -> set[str]:
    lines = [line for line in result.stderr.splitlines() if line.startswith("DEBUG: Rendering:")]
    assert len(lines) == 1, result.stderr
    return set(lines[0].split()[2:])


def test_a_phone_edit_renders_only_that_clinics_pages(tmp_path: Path) -> None:
    """Pages that list every clinic are keyed by what they print, which a phone number is not."""
    project = Project(tmp_path)
    project.build()
    edit(project.registry, '"+1-281-555-0100"', '"+1-281-555-0199"')
    result = build(project.output, registry=project.registry, settings=str(project.settings),
                   extra=["--cache", str(project.cache), "--verbose"])
    assert result.returncode == 0, result.stderr
    katy = {name for name in tree(project.output) if name.startswith("clinics/katy-pain-and-spine/")}
    physicians = yaml.safe_load(project.registry.read_text())["clinics"]["katy-pain-and-spine"]["physicians"]
    katy |= {f"physicians/{slug}/index.html" for slug in physicians}
    assert rendered(result) == katy
    # A change that lists show (a clinic's name) re-renders the pages that list it, too.
    edit(project.registry, "name: Katy Pain and Spine\n", "name: Katy Pain and Spine Center\n")
    result = build(project.output, registry=project.registry, settings=str(project.settings),
                   extra=["--cache", str(project.cache), "--verbose"])
    assert {"clinics/index.html", "treatments/ketamine-infusion/index.html"} <= rendered(result) - katy


def test_rebuild_with_nothing_changed_writes_nothing(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.build()
    before = mtimes(project.output)
    project.build()
    assert mtimes(project.output) == before


def test_inputs_named_by_relative_or_absolute_paths_are_the_same_inputs(tmp_path: Path) -> None:
    """The registry and the cache given relative to the working directory (as ``make`` does),
    then absolute: the same files, so the second build has nothing to do."""
    project = Project(tmp_path)
    relative = [os.path.relpath(path, ROOT) for path in (project.registry, project.cache)]
    result = build(project.output, registry=Path(relative[0]), settings=str(project.settings),
                   extra=["--cache", relative[1]])
    assert result.returncode == 0, result.stderr
    result = build(project.output, registry=project.registry, settings=str(project.settings),
                   extra=["--cache", str(project.cache), "--verbose"])
    assert result.returncode == 0, result.stderr
    assert "Nothing to do" in result.stderr


def test_build_from_warm_cache_into_empty_output_equals_clean_build(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.build()
    shutil.rmtree(project.output)
    project.build()
    assert tree(project.output) == tree(project.clean_build())


def test_output_edited_by_hand_is_repaired(tmp_path: Path) -> None:
    """The caches never trust the output blindly: a changed, removed or added file is noticed."""
    project = Project(tmp_path)
    project.build()
    expected = tree(project.output)
    page = project.output / "clinics" / "katy-pain-and-spine" / "index.html"
    page.write_text("edited by hand")
    (project.output / "physicians" / "nimish-dave" / "index.html").unlink()
    (project.output / "clinics" / "stray.html").write_text("put here by hand")
    project.build()
    assert tree(project.output) == expected


def test_a_large_registry_rebuilds_as_a_clean_build_does(tmp_path: Path) -> None:
    """From 500 clinics and 5,000 files, forked processes store the registry cache, make the location
    index and check the output for hand edits: the result must still be a clean build's, bytes and all."""
    sys.path.insert(0, str(ROOT / "bench"))
    import synth

    project = Project(tmp_path)
    project.registry.write_text(synth.dump(synth.generate(1000, seed=3)), encoding="utf-8")
    project.build()
    assert len(list((project.cache / "registry").glob("*.marshal"))) == 1  # stored by the forked process
    (project.output / "clinics" / "stray.html").write_text("put here by hand")
    edit(project.registry, '"+1-281-555-0100"', '"+1-281-555-0199"')
    result = build(project.output, registry=project.registry, settings=str(project.settings),
                   extra=["--cache", str(project.cache), "--verbose"])
    assert result.returncode == 0, result.stderr
    assert "Registry: 1 of 1000 clinics changed since the last build" in result.stderr  # the stored registry was used
    # The other clinics' pages and lists come from their kept summaries: their models are not made,
    # beyond those of the articles' reviewers (the sample clinics, the edited one among them).
    made = re.search(r"clinic models made: (\d+) of 1000", result.stderr)
    assert made is not None and 1 <= int(made[1]) <= 4, made
    assert len(rendered(result)) < 10
    clean = tree(project.clean_build())
    assert tree(project.output) == clean
    # Into an empty output, every page comes from the cache, whose index is then read whole.
    shutil.rmtree(project.output)
    project.build()
    assert tree(project.output) == clean


@pytest.mark.parametrize("apart", [True, False], ids=["checked in another process", "checked here"])
def test_the_output_check_finds_what_changed_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     apart: bool) -> None:
    """What a rebuild trusts of the output: a large output is checked in a forked process, which
    must find exactly what a check in the build's own process finds."""
    project = Project(tmp_path)
    project.build()
    (project.output / "clinics" / "katy-pain-and-spine" / "index.html").write_text("edited by hand")
    (project.output / "physicians" / "nimish-dave" / "index.html").unlink()
    (project.output / "clinics" / "stray.html").write_text("put here by hand")
    monkeypatch.setattr(cache.PageStore, "CHECK_APART_FROM", 0 if apart else 10**9)
    store = cache.PageStore(project.cache, project.output.resolve(), BuildInputs("", "", ""))
    try:
        assert (store._checking._child is not None) == apart  # the check really ran where it should
        assert store.changes.files == {"clinics/katy-pain-and-spine/index.html", "physicians/nimish-dave/index.html"}
        assert store.changes.dirs == {"clinics", "physicians/nimish-dave"}
        assert not store.output_holds("physicians/nimish-dave/index.html", store.previous.files[
            "physicians/nimish-dave/index.html"][0])
        assert build_module.stray_files(project.output, store.previous, store.changes.dirs) == ["clinics/stray.html"]
    finally:
        store.close()


def test_a_helper_process_answer_cut_short_counts_as_no_answer(monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """A forked process's answer that arrives cut short (or garbled) is no answer, as when the process
    failed: its caller does the work itself, and no half-read data gets into the build."""
    import marshal

    from clinic_directory import parallel

    whole = parallel.Apart(lambda n: {str(i): "x" * 100 for i in range(n)}, 5000)
    assert whole.result() == {str(i): "x" * 100 for i in range(5000)}
    real_dumps = marshal.dumps
    monkeypatch.setattr(marshal, "dumps", lambda value: real_dumps(value)[:-10])  # the forked process's too
    cut = parallel.Apart(lambda n: {str(i): "x" * 100 for i in range(n)}, 5000)
    assert cut.result() is None
    assert "could not be read" in caplog.text
    monkeypatch.setattr(marshal, "dumps", lambda value: b"\xff" + real_dumps(value))
    assert parallel.in_two(lambda n: list(range(n)), 3, 4) == ([0, 1, 2], None)


@pytest.mark.parametrize("failed", [False, True], ids=["in two processes", "after the other process failed"])
def test_restored_pages_are_linked_into_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failed: bool) -> None:
    """A build into an empty output links its pages from the cache in two processes; when the other
    one dies part way, its half is linked here, over the links it had made."""
    from clinic_directory import parallel

    project = Project(tmp_path)
    project.build()
    monkeypatch.setattr(cache.PageStore, "LINK_APART_FROM", 0)
    if failed:
        def half_done(work: Any, first: Any, second: Any) -> tuple[Any, None]:
            work(second[: len(second) // 2])  # the links that process made before it died
            return work(first), None

        monkeypatch.setattr(parallel, "in_two", half_done)
    staging = tmp_path / "staging"
    store = cache.PageStore(project.cache, project.output.resolve(), BuildInputs("", "", ""))
    try:
        restored = [name for name, (key, _size, _mtime) in store.previous.files.items()
                    if store.restore_later(key, str(staging / name)) is not None]
        assert len(restored) > 30 and not staging.exists()  # nothing is linked until asked
        store.link_restored()
    finally:
        store.close()
    assert tree(staging) == {name: digest for name, digest in tree(project.output).items() if name in restored}
    assert all((staging / name).stat().st_nlink > 1 for name in restored)  # links, not copies


@pytest.mark.parametrize("failed", [False, True], ids=["in two processes", "after the other process failed"])
def test_rendered_pages_are_linked_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  failed: bool) -> None:
    """A first build walks its staging directory and links the pages it rendered into the page cache in
    two processes; when the other one dies part way, its half is done here, over the links it had made.
    Either way the walk is whole, every page is cached under its key as the same file, and the cache's
    index knows it."""
    from clinic_directory import parallel

    monkeypatch.setattr(cache.PageStore, "LINK_APART_FROM", 0)
    calls = []

    def in_two(work: Any, first: Any, second: Any) -> tuple[Any, Any]:
        calls.append((len(first), len(second)))
        if failed:
            work(second[: len(second) // 2])  # the links that process made before it died
            return work(first), None
        return real_in_two(work, first, second)

    real_in_two = parallel.in_two
    monkeypatch.setattr(parallel, "in_two", in_two)
    staging = tmp_path / "staging"
    pages = {f"clinics/c{i}/index.html": f"<p>page {i}</p>" for i in range(40)}
    pages.update({"index.html": "<p>home</p>", "clinics/c3/locations/a/index.html": "<p>deep</p>"})
    for name, text in pages.items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_text(text)
    store = cache.PageStore(tmp_path / "cache", (tmp_path / "output").resolve(), BuildInputs("", "", ""))
    try:
        store.rendered = {name: cache.digest(name) for name in pages}
        store.unmarked.update(pages)
        tree, linked = store.walk_and_cache(staging)
        assert calls and all(calls[0])  # both halves had pages
        assert tree == cache.Tree.walk(staging)  # the walk in parts is the whole walk
        store.save_rendered(staging, tree.files, linked)
        assert {name: store.cached(store.rendered[name]) for name in pages} == {
            name: text.encode() for name, text in pages.items()}
    finally:
        store.close()
    assert all((staging / name).stat().st_nlink == 2 for name in pages)  # links, not copies


def test_links_are_split_by_the_directory_they_add_an_entry_to() -> None:
    links = [(f"k{i}", f"/s/physicians/p{i}/index.html") for i in range(30)]
    links += [(f"c{i}", f"/s/clinics/c{i}/index.html") for i in range(10)]
    links += [(f"l{i}{j}", f"/s/clinics/c{i}/locations/l{j}/index.html") for i in range(10) for j in range(2)]
    first, second = cache.split_by_directory(links)
    assert sorted(first + second) == sorted(links) and abs(len(first) - len(second)) <= 2
    directories = [{os.path.dirname(os.path.dirname(target)) for _key, target in part} for part in (first, second)]
    assert not directories[0] & directories[1]


def test_problems_are_reported_with_lines_although_the_registry_is_cached(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.build()
    edit(project.registry, 'postal_code: "77494"', "postal_code: 77494")
    result = build(project.output, registry=project.registry, settings=str(project.settings),
                   extra=["--cache", str(project.cache)])
    assert result.returncode == 1
    path = "clinics.katy-pain-and-spine.locations.katy.address.postal_code"
    assert f"{path}: expected a 5-digit ZIP code" in result.stderr
    assert ".yaml:" in result.stderr


def test_unplaceable_location_is_reported_with_its_line_from_a_cached_registry(tmp_path: Path) -> None:
    """A registry the cache knows, but whose location lost its coordinates: the problem still has a line."""
    project = Project(tmp_path)
    edit(project.registry, "        geo: {lat: 29.7404, lon: -95.8304}\n", "")
    geocodes = tmp_path / "geocode-cache.json"
    geocodes.write_text('{"katy-pain-and-spine/katy": {"address": "100 Placeholder Road, Katy, TX 77494", '
                        '"lat": 29.74, "lon": -95.83, "found": "test"}}\n')
    project.write_settings(f"CLINIC_DIRECTORY_GEOCODE_CACHE = {str(geocodes)!r}\n")
    project.build()
    geocodes.write_text("{}\n")
    result = build(project.output, registry=project.registry, settings=str(project.settings),
                   extra=["--cache", str(project.cache)])
    assert result.returncode == 1
    assert "clinics.katy-pain-and-spine.locations.katy: location" in result.stderr
    assert f"{project.registry}:" in result.stderr or "clinics.yaml:" in result.stderr


# -- what invalidates the caches --------------------------------------------------------------------------------


def test_registry_cache_is_keyed_by_the_file_bytes_and_the_plugin_code(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    registry_cache = cache.RegistryCache(tmp_path)
    data = {"schema": 1, "services": {}, "conditions": {}, "clinics": {"a": {"name": "A"}}}
    registry_cache.store(b"version 1", data)
    assert cache.RegistryCache(tmp_path).load(b"version 1") == data
    assert cache.RegistryCache(tmp_path).load(b"version 2") is None
    monkeypatch.setattr(cache, "code_digest", lambda: "another plugin version")
    assert cache.RegistryCache(tmp_path).load(b"version 1") is None


def test_registry_cache_holds_exactly_the_validated_data(tmp_path: Path) -> None:
    from clinic_directory.registry import check_registry

    data, problems = check_registry(ROOT / "clinics.yaml", 10**8)
    assert not problems and data is not None
    raw = (ROOT / "clinics.yaml").read_bytes()
    cache.RegistryCache(tmp_path).store(raw, data)
    loaded = cache.RegistryCache(tmp_path)
    assert loaded.load(raw) == data
    assert loaded.clinic_digests == {slug: entry_hash(clinic) for slug, clinic in data["clinics"].items()}


def inputs_of(project: Project) -> BuildInputs:

    settings = read_settings(str(project.settings), override={"CLINIC_DIRECTORY_REGISTRY": str(project.registry),
                                                             "CLINIC_DIRECTORY_CACHE": str(project.cache)})
    return build_inputs(project.settings, settings, read_plugin_settings(settings), project.output)


@pytest.mark.parametrize("what", ["registry", "article", "template", "static file", "setting", "settings code",
                                  "plugin code"])
def test_every_input_changes_the_build_inputs_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     what: str) -> None:
    monkeypatch.chdir(ROOT)
    project = Project(tmp_path)
    project.write_settings("def sort_key(article):\n    return article.slug\n\nARTICLE_ORDER_BY = sort_key\n")
    before = inputs_of(project)
    if what == "registry":
        edit(project.registry, '"+1-281-555-0100"', '"+1-281-555-0199"')
    elif what == "article":
        article = sorted((project.content / "articles").glob("*.md"))[0]
        article.write_text(article.read_text() + "\nmore\n")
    elif what == "template":
        edit(project.theme / "templates" / "_macros.html", "Sample data.", "Sample data!")
    elif what == "static file":
        (project.theme / "static" / "css" / "site.css").write_text("body { color: red; }\n")
    elif what == "setting":
        project.write_settings("def sort_key(article):\n    return article.slug\n\nARTICLE_ORDER_BY = sort_key\n"
                               "SITENAME = 'Other'\n")
    elif what == "settings code":
        project.write_settings("def sort_key(article):\n    return article.title\n\nARTICLE_ORDER_BY = sort_key\n")
    else:
        monkeypatch.setattr(build_module, "code_digest", lambda: "another plugin version")
    after = inputs_of(project)
    assert after.everything != before.everything
    part = {"registry": "registry", "article": "content"}.get(what, "shared")
    assert getattr(after, part) != getattr(before, part)


def test_a_plugin_code_change_invalidates_the_caches(tmp_path: Path) -> None:
    """The same build with a modified copy of the plugin parses the registry again and renders again."""
    project = Project(tmp_path)
    project.build()
    plugins = tmp_path / "plugins"
    shutil.copytree(ROOT / "plugins", plugins, ignore=shutil.ignore_patterns("__pycache__"))
    with (plugins / "clinic_directory" / "jsonld.py").open("a") as file:
        file.write("\n# a change to the plugin's code\n")
    registry_files = sorted((project.cache / "registry").iterdir())
    before = mtimes(project.output)
    env = {"PYTHONPATH": str(plugins), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    result = subprocess.run([sys.executable, "-m", "clinic_directory", "build", "--settings", str(project.settings),
                             "--output", str(project.output), "--registry", str(project.registry),
                             "--cache", str(project.cache), "--quiet"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert len(sorted((project.cache / "registry").iterdir())) == len(registry_files) + 1, "registry parsed again"
    assert mtimes(project.output) == before, "the pages came out the same, so no file was rewritten"


# -- the registry, clinic by clinic ------------------------------------------------------------------------------

SAMPLE = (ROOT / "clinics.yaml").read_text(encoding="utf-8")
KATY = slice(SAMPLE.index("  katy-pain-and-spine:"), SAMPLE.index("  revitalize-medical-center:"))
BELLEVUE = slice(SAMPLE.index("  bellevue-pain-and-wellness:"), KATY.start)
SAMPLE_EDITS = {
    "a phone number": lambda text: text.replace('"+1-281-555-0100"', '"+1-281-555-0199"', 1),
    "a service's summary": lambda text: text.replace("under\n      medical supervision",
                                                     "under\n      close medical supervision", 1),
    "a clinic removed": lambda text: text[: text.index("  texas-pain-intervention-clinic:")],
    "a clinic added": lambda text: text + text[KATY].replace("katy-pain-and-spine:", "katy-two:")
    .replace("nimish-dave:", "nimish-dave-2:"),
    "clinics reordered": lambda text: text[: BELLEVUE.start] + text[KATY] + text[BELLEVUE] + text[KATY.stop:],
    "a comment between clinics": lambda text: text.replace("  katy-pain-and-spine:",
                                                           "  # Katy\n  katy-pain-and-spine:", 1),
}


@pytest.mark.parametrize("what", SAMPLE_EDITS)
def test_registry_checked_clinic_by_clinic_equals_a_whole_file_parse(tmp_path: Path, what: str) -> None:
    from clinic_directory.registry import check_registry

    registry_cache = cache.RegistryCache(tmp_path / "cache")
    assert registry_cache.load(SAMPLE.encode()) is not None  # the first version, checked clinic by clinic
    edited = SAMPLE_EDITS[what](SAMPLE)
    assert edited != SAMPLE
    (tmp_path / "clinics.yaml").write_text(edited, encoding="utf-8")
    whole, problems = check_registry(tmp_path / "clinics.yaml", 10**8)
    assert not problems
    by_clinic = cache.RegistryCache(tmp_path / "cache")
    assert by_clinic.load(edited.encode()) == whole
    assert list(by_clinic.data or {}) == list(whole or {})
    assert by_clinic.clinic_digests == {slug: entry_hash(clinic) for slug, clinic in whole["clinics"].items()}


@pytest.mark.parametrize("text", [
    SAMPLE.replace('"+1-281-555-0100"', "+1-281-555-0100 555", 1),  # a problem in one clinic
    SAMPLE.replace("services: [ketamine-infusion]", "services: [ketamine-infusions]", 1),  # an unknown reference
    SAMPLE.replace("  ketamine-infusion:\n", "  ketamine-infusion-therapy:\n", 1),  # a reference broken in the header
    SAMPLE.replace("decaria:", "nimish-dave:", 1),  # a physician slug used twice
    SAMPLE + SAMPLE[KATY],  # a clinic twice
    SAMPLE + SAMPLE[KATY].replace("name: Katy Pain and Spine", "name: Katy Two", 1),  # a slug twice
])
def test_registry_with_a_problem_is_left_to_the_whole_file_parse(tmp_path: Path, text: str) -> None:
    assert cache.RegistryCache(tmp_path).load(SAMPLE.encode()) is not None
    assert cache.RegistryCache(tmp_path).load(text.encode()) is None


@pytest.mark.parametrize("problem", [None, '"+1-281-555-0100 555"'])
def test_a_first_check_in_two_processes_equals_a_whole_file_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  problem: str | None) -> None:
    """A large first build checks its clinics in two processes (here: from two clinics on)."""
    from clinic_directory import chunks
    from clinic_directory.registry import check_registry

    monkeypatch.setattr(chunks, "TWO_PROCESSES_FROM", 2)
    text = SAMPLE if problem is None else SAMPLE.replace('"+1-512-555-0100"', problem, 1)  # in the last clinic
    (tmp_path / "clinics.yaml").write_text(text, encoding="utf-8")
    whole, problems = check_registry(tmp_path / "clinics.yaml", 10**8)
    checked = cache.RegistryCache(tmp_path / "cache").load(text.encode())
    if problem is None:
        assert not problems
        assert checked == whole
        assert list(checked["clinics"]) == list(whole["clinics"])
    else:
        assert problems and checked is None  # the second process found it: the whole-file parse reports it


@pytest.mark.parametrize("text", [
    SAMPLE + "other: 1\n",  # a top-level key after the clinics
    # a flow mapping continued at the clinics' indent
    SAMPLE.replace("    name: Katy Pain and Spine", "    name: {a: 1,\n  b: c}", 1),
    SAMPLE.replace("clinics:\n", "clinics: # the clinics\n  ? odd\n", 1),
    "clinics: {}\n",
])
def test_files_not_laid_out_the_plain_way_are_not_split(text: str) -> None:
    from clinic_directory.chunks import split_registry

    split = split_registry(text)
    assert split is None or split.clinics == []


def test_split_keeps_every_byte() -> None:
    from clinic_directory.chunks import split_registry

    split = split_registry(SAMPLE)
    assert split is not None
    assert [slug for slug, _text in split.clinics] == ["bellevue-pain-and-wellness", "katy-pain-and-spine",
                                                      "revitalize-medical-center", "texas-pain-intervention-clinic"]
    assert split.header + "".join(text for _slug, text in split.clinics) == SAMPLE


def test_pruning_the_page_cache_keeps_everything_the_build_used(tmp_path: Path) -> None:
    store = cache.PageStore(tmp_path / "cache", tmp_path / "output", inputs=None)
    store.save([(f"old-{n}", b"stale") for n in range(2000)])
    store.save([("page-key", b"<html>"), ("kept-key", b"<html>")])
    made = tmp_path / "made"
    (made / "search").mkdir(parents=True)
    (made / "search" / "a.json").write_bytes(b"1")
    (made / "search" / "b.json").write_bytes(b"2")
    store.save_group("search", "group-key", ["search/a.json", "search/b.json"], made)
    store.rendered["index.html"] = "page-key"
    store.kept["about/index.html"] = "kept-key"
    store.keep_group("search", "group-key", ["search/a.json", "search/b.json"])
    store.manifest = cache.Manifest(files={"index.html": ["page-key", 6, 0]})  # a tiny site
    store.prune(batch=10_000, slack=0)
    assert store.cached("page-key") == store.cached("kept-key") == b"<html>"
    assert store.cached_group("search", "group-key") == ["search/a.json", "search/b.json"]
    store.restore_group("group-key", ["search/a.json", "search/b.json"], tmp_path / "site")
    assert (tmp_path / "site" / "search" / "b.json").read_bytes() == b"2"
    assert store.cached("old-1") is None
    assert not Path(store._file("old-1")).exists()
    store.close()


def test_a_page_cache_on_another_file_system_holds_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hard links need one file system; elsewhere the cache copies, and says nothing of the copies' states."""
    import errno
    import os

    def no_links(source: str, target: str) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    store = cache.PageStore(tmp_path / "cache", tmp_path / "output", inputs=None)
    store.save([("page-key", b"<html>made</html>")])
    target = tmp_path / "site" / "index.html"
    assert store.restore("page-key", str(target)) is not None
    assert target.read_bytes() == b"<html>made</html>"
    assert target.stat().st_ino != Path(store._file("page-key")).stat().st_ino
    assert "page-key" not in store.states  # the copy's size and mtime are its own
    store.close()


def test_a_cached_page_changed_in_place_is_not_used(tmp_path: Path) -> None:
    """The output shares its files with the page cache (hard links): a page edited in place
    in the output changes the cached one too, which must then count as missing."""
    store = cache.PageStore(tmp_path / "cache", tmp_path / "output", inputs=None)
    store.save([("page-key", b"<html>made</html>")])
    assert store.restore("page-key", str(tmp_path / "site" / "index.html")) is not None
    with open(tmp_path / "site" / "index.html", "r+b") as page:  # in place, as an editor might
        page.write(b"<html>EDITED</html>")
    assert store.cached("page-key") is None
    assert store.restore("page-key", str(tmp_path / "again" / "index.html")) is None
    store.close()


def test_the_walk_of_a_staging_directory_lists_what_the_output_manifest_compares(tmp_path: Path) -> None:
    """Files by their state as ``file_state`` sees it (a link's target); links to directories, as
    ``os.walk`` does, neither listed nor entered."""
    import os

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "page.html").write_bytes(b"<html>")
    (tmp_path / "static.css").write_bytes(b"body{}")
    os.symlink(tmp_path / "static.css", tmp_path / "linked.css")
    os.symlink(tmp_path / "a", tmp_path / "linked-dir")
    tree = cache.Tree.walk(tmp_path)
    assert sorted(tree.files) == ["a/b/page.html", "linked.css", "static.css"]
    assert tree.files["linked.css"] == cache.file_state(tmp_path / "linked.css") == tree.files["static.css"]
    assert sorted(tree.dirs) == ["", "a", "a/b"]
    assert tree.dirs["a/b"] == cache.mtime_of(tmp_path / "a" / "b")


def test_pages_are_shared_between_two_processes_a_clinic_at_a_time() -> None:
    """The two rendering processes get about half the pages each, a clinic's pages all in one of them,
    and each in the order it was queued."""
    from clinic_directory.parallel import _in_two_parts

    clinics = [object() for _ in range(7)]
    pages = [(f"c{c}-{p}", clinic) for c, clinic in enumerate(clinics) for p in range(c % 3 + 1)]
    pages += [(f"entry-{e}", None) for e in range(9)]  # pages of no clinic, shared one by one
    first, second = _in_two_parts(pages, group_of=lambda page: page[1])
    assert sorted(page[0] for page in first + second) == sorted(page[0] for page in pages)
    assert abs(len(first) - len(second)) <= 1
    for clinic in clinics:
        assert len({id(part) for part in (first, second) for page in part if page[1] is clinic}) == 1
    assert all(part == sorted(part, key=pages.index) for part in (first, second))


def test_a_large_registry_makes_its_search_data_apart_with_the_same_bytes(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """From ``APART_FROM`` clinics the location index is made in a forked process and the ZIP lookup
    shards in a Python process of their own: the output is a clean build's, first and after a clinic
    edit (which makes the location index again)."""
    from clinic_directory import generator, parallel
    from clinic_directory.build import build_site

    forked: list[bool] = []

    class Recorded(parallel.Apart):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            forked.append(self._child is not None)

    monkeypatch.setattr(generator, "APART_FROM", 0)
    monkeypatch.setattr(generator, "Apart", Recorded)
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.chdir(ROOT)
    project = Project(tmp_path)
    overrides = {"CLINIC_DIRECTORY_REGISTRY": str(project.registry), "CLINIC_DIRECTORY_CACHE": str(project.cache)}
    for change in (lambda: None, lambda: edit(project.registry, '"+1-281-555-0100"', '"+1-281-555-0199"')):
        change()
        forked.clear()
        build_site(project.settings, project.output, overrides)
        assert forked and all(forked), forked  # the index was made apart
        assert tree(project.output) == tree(project.clean_build())
