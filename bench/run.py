"""``make bench``: how fast the directory builds at network scale, next to a naive Pelican site.

For each size (default 1,000 and 10,000 clinics) this generates a synthetic registry
(``bench/synth.py``), then times whole-process builds, several runs each, interleaved so
that a noisy neighbour hurts every scenario alike:

    naive      the reference: one Markdown article per clinic, quickstart settings (``naive.py``)
    cold       our build with no caches into an empty output directory
    warm       caches warm, empty output directory
    unchanged  a rebuild with nothing changed
    clinic     a rebuild after one clinic's phone number changed
    article    a rebuild after one article changed

and reports medians, each as a ratio to the naive reference's median (absolute times on
a shared machine vary by 20 % or more; ratios from one run much less), along with peak
memory (the largest process of the build), the output's size, the files a clinic edit
rewrites, and for ``/find/`` in headless Chromium: the search-data bytes a query
downloads and the time to its first results. Results go to ``bench-results/``.

    python bench/run.py [--sizes 1000,10000] [--runs 3] [--work DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import naive  # noqa: E402
import synth  # noqa: E402
from clinic_directory.schema import US_STATES  # noqa: E402

PYTHON = sys.executable
SCENARIOS = ("naive", "cold", "warm", "unchanged", "clinic", "article")
LABELS = {
    "naive": "naive Pelican reference (one page per clinic), cold",
    "cold": "first build, no caches",
    "warm": "full build into an empty output, caches warm",
    "unchanged": "rebuild, nothing changed",
    "clinic": "rebuild after one clinic's phone changes",
    "article": "rebuild after one article changes",
}
GOALS = {"cold": 0.35, "warm": 0.15, "unchanged": 0.05, "clinic": 0.05}  # at 10,000 clinics
FIND_QUERIES = ("77494", "60201", "98004", "10001", "94110")
FIND_NEXT_QUERY = "30301"  # searched from the loaded page, after each of the above


@dataclass
class Run:
    seconds: float
    peak_mib: float


@dataclass
class SizeResult:
    clinics: int
    registry_bytes: int
    runs: dict[str, list[Run]] = field(default_factory=dict)
    output_files: int = 0
    output_bytes: int = 0
    naive_files: int = 0
    naive_bytes: int = 0
    clinic_edit_rewrites: int = 0
    find: dict[str, Any] = field(default_factory=dict)

    def median(self, scenario: str) -> float:
        return statistics.median(run.seconds for run in self.runs[scenario])

    def peak(self, scenario: str) -> float:
        return max(run.peak_mib for run in self.runs[scenario])


GNU_TIME = Path("/usr/bin/time").exists()


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Run ``command`` to completion: wall time, and the peak RSS of the largest process in it.

    The peak comes from GNU time's %M (``ru_maxrss`` of its child and the children that
    child waited for). Read with ``os.wait4`` here it would be wrong: a child forked from
    this process starts with our memory, and Linux counts that in the child's peak.
    """
    with tempfile.NamedTemporaryFile("r") as report:
        wrapper = ["/usr/bin/time", "-f", "%M", "-o", report.name] if GNU_TIME else []
        started = time.perf_counter()
        result = subprocess.run(wrapper + command, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, check=False)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr.decode()[-3000:]}")
        peak = int(report.read().split()[-1]) / 1024 if GNU_TIME else float("nan")
    return Run(elapsed, peak)


def tree_size(path: Path) -> tuple[int, int]:
    files = size = 0
    for directory, _dirs, names in os.walk(path):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(directory, name)).st_size
    return files, size


def mtimes(path: Path) -> dict[str, int]:
    return {os.path.join(d, n): os.lstat(os.path.join(d, n)).st_mtime_ns
            for d, _dirs, names in os.walk(path) for n in names}


def remove(*paths: Path) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


class Trash:
    """Where a scenario's old output and cache go before it runs; emptied after the last run.

    Emptied at once, they would slow down the build that follows, not the one that made
    them: on ext4 without a journal (this machine's disk), the kernel skips every inode
    freed in the last minute or more when it allocates a new one, so creating 60,000 files
    just after deleting 60,000 takes several times as long. Moving a directory aside is one
    rename, and every scenario (the naive reference's too) starts from the same state.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        remove(directory)
        self.count = 0

    def put(self, *paths: Path) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in paths:
            if path.exists():
                self.count += 1
                path.rename(self.directory / f"{self.count}-{path.name}")

    def empty(self) -> None:
        remove(self.directory)


class Workspace:
    """One size's files: the registry, a content copy, the naive project, our output and cache."""

    def __init__(self, work: Path, clinics: int, seed: int) -> None:
        self.dir = work / str(clinics)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.clinics = clinics
        self.registry = self.dir / "clinics.yaml"
        self.content = self.dir / "content"
        self.naive = self.dir / "naive"
        self.output = self.dir / "output"
        self.cache = self.dir / "cache"
        self.trash = Trash(self.dir / "trash")
        stamp = self.dir / "registry.seed"
        if not self.registry.exists() or stamp.read_text() != f"{clinics} {seed}\n":
            print(f"  generating {clinics:,} clinics (seed {seed})", flush=True)
            registry = synth.generate(clinics, seed)
            self.registry.write_text(synth.dump(registry), encoding="utf-8")
            remove(self.naive)
            naive.write_site(_plain(registry), self.naive, US_STATES)
            stamp.write_text(f"{clinics} {seed}\n")
        remove(self.content)
        shutil.copytree(ROOT / "content", self.content)
        self.settings = ROOT / "pelicanconf.py"
        self.original = self.registry.read_text(encoding="utf-8")
        self.article = sorted((self.content / "articles").glob("*.md"))[0]
        self.article_text = self.article.read_text(encoding="utf-8")

    def build(self, cache: bool = True) -> Run:
        command = [PYTHON, "-m", "clinic_directory", "build", "--settings", str(self.settings),
                   "--output", str(self.output), "--registry", str(self.registry), "--content", str(self.content),
                   "--cache", str(self.cache) if cache else "", "--quiet"]
        return timed(command, ROOT, {**os.environ, "PYTHONPATH": str(ROOT / "plugins"), "CI": "true"})

    def build_naive(self) -> Run:
        self.trash.put(self.naive / "output")
        pelican = str(Path(PYTHON).with_name("pelican"))
        return timed([pelican, "content", "-s", "pelicanconf.py", "-o", "output", "-q"], self.naive)

    def edit_clinic(self) -> None:
        """Change one clinic's phone number (Katy Pain and Spine's, from the sample registry)."""
        edited = self.original.replace('"+1-281-555-0100"', '"+1-281-555-0199"', 1)
        assert edited != self.original
        self.registry.write_text(edited, encoding="utf-8")

    def edit_article(self) -> None:
        self.article.write_text(self.article_text + "\nThis sentence was added by the benchmark.\n", encoding="utf-8")

    def restore(self) -> None:
        self.registry.write_text(self.original, encoding="utf-8")
        self.article.write_text(self.article_text, encoding="utf-8")


def _plain(registry: dict[str, Any]) -> dict[str, Any]:
    """The generated registry as the validator's plain data would be (dates as text)."""
    return json.loads(json.dumps(registry, default=str))


def run_size(work: Path, clinics: int, runs: int, seed: int) -> SizeResult:
    print(f"\n{clinics:,} clinics", flush=True)
    space = Workspace(work, clinics, seed)
    result = SizeResult(clinics, space.registry.stat().st_size, {name: [] for name in SCENARIOS})
    for number in range(1, runs + 1):
        print(f"  run {number} of {runs}:", end="", flush=True)
        space.restore()
        steps = [
            ("naive", lambda: None, space.build_naive),
            ("cold", lambda: space.trash.put(space.output, space.cache), space.build),
            ("warm", lambda: space.trash.put(space.output), space.build),
            ("unchanged", lambda: None, space.build),
            ("clinic", space.edit_clinic, space.build),
            ("article", space.edit_article, space.build),
        ]
        for name, prepare, build in steps:
            prepare()
            run = build()
            result.runs[name].append(run)
            print(f" {name} {run.seconds:.1f}s", end="", flush=True)
        print(flush=True)
    space.trash.empty()
    space.restore()
    space.build()
    result.output_files, result.output_bytes = tree_size(space.output)
    result.naive_files, result.naive_bytes = tree_size(space.naive / "output")
    before = mtimes(space.output)
    space.edit_clinic()
    space.build()
    after = mtimes(space.output)
    result.clinic_edit_rewrites = sum(1 for name, mtime in after.items() if before.get(name) != mtime)
    space.restore()
    space.build()
    result.find = measure_find(space.output)
    return result


# -- /find/ in headless Chromium -------------------------------------------------------------------------------

FIRST_RESULT_SCRIPT = """
window.__firstResults = null;
new MutationObserver(function (changes, observer) {
  var list = document.getElementById("results");
  if (list && list.querySelector("li")) { window.__firstResults = performance.now(); observer.disconnect(); }
}).observe(document, {childList: true, subtree: true});
"""


# Submitting empties the list at once (the form's handler runs in requestSubmit): rows seen after
# that are the new search's. Resolves with [ms to its first rows, ms to its whole list].
QUERY_SCRIPT = """(zip) => new Promise((resolve) => {
  const list = document.getElementById("results");
  let started = 0, first = null;
  const observer = new MutationObserver(() => {
    const shown = list.querySelector("li") !== null;
    if (shown && first === null) first = performance.now() - started;
    if (list.getAttribute("aria-busy") === "false" && shown) {
      observer.disconnect();
      resolve([first, performance.now() - started]);
    }
  });
  document.getElementById("find-near").value = zip;
  started = performance.now();
  document.getElementById("find-form").requestSubmit();
  observer.observe(list, {attributes: true, childList: true});
})"""


def measure_find(site: Path) -> dict[str, Any]:
    """For a few ZIP codes: milliseconds from navigation to the first result and the search-data
    bytes fetched; then, on the loaded page, milliseconds from submitting another ZIP to its first rows
    (the goal's figure: rows are shown as the cells nearest the place arrive) and to its whole list."""
    if not (site / "find" / "index.html").exists():
        return {"note": "no /find/ page in this build"}
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"note": "playwright is not installed"}
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        return {"note": "Chromium is not installed (make browser)"}
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import CHROMIUM_ARGS, serve

    server, base = serve(site)
    times, downloads, query_first, query_times = [], [], [], []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            for query in FIND_QUERIES:
                context = browser.new_context()
                page = context.new_page()
                page.add_init_script(FIRST_RESULT_SCRIPT)
                fetched: list[int] = []
                page.on("requestfinished",
                        lambda request, fetched=fetched: fetched.append(request.sizes()["responseBodySize"])
                        if "/find/data/" in request.url else None)
                page.goto(f"{base}/find/?near={query}")
                page.wait_for_function("() => document.getElementById('results').getAttribute('aria-busy') === 'false'"
                                       " && window.__firstResults !== null", timeout=30_000)
                times.append(page.evaluate("() => window.__firstResults"))
                downloads.append(sum(fetched))
                first, whole = page.evaluate(QUERY_SCRIPT, FIND_NEXT_QUERY)
                query_first.append(first)
                query_times.append(whole)
                context.close()
            browser.close()
    finally:
        server.shutdown()
    return {"queries": list(FIND_QUERIES), "first_results_ms": times, "data_bytes": downloads,
            "query_first_results_ms": query_first, "query_results_ms": query_times,
            "median_first_results_ms": statistics.median(times),
            "median_query_first_results_ms": statistics.median(query_first),
            "median_data_bytes": statistics.median(downloads),
            "median_query_results_ms": statistics.median(query_times)}


# -- reporting --------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next((line.split(":", 1)[1].strip() for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), "?")
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": memory,
            "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "filesystem": filesystem(ROOT), "load_average": os.getloadavg()}


def filesystem(path: Path) -> str:
    best = ("", "?")
    for line in Path("/proc/mounts").read_text().splitlines():
        _device, mount, kind, *_ = line.split()
        if str(path).startswith(mount) and len(mount) > len(best[0]):
            best = (mount, kind)
    return best[1]


def table(results: list[SizeResult]) -> str:
    lines = ["| scenario | " + " | ".join(f"{r.clinics:,} clinics" for r in results) + " | goal (10,000) |",
             "|---|" + "---|" * len(results) + "---|"]
    for name in SCENARIOS:
        cells = []
        for result in results:
            seconds, ratio = result.median(name), result.median(name) / result.median("naive")
            cells.append(f"{seconds:.2f} s" if name == "naive" else f"{seconds:.2f} s ({ratio:.2f}x)")
        goal = f"<= {GOALS[name]}x" if name in GOALS else ""
        lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + f" | {goal} |")
    rows = [
        ("peak memory, our builds", [f"{max(r.peak(n) for n in SCENARIOS[1:]):.0f} MiB" for r in results],
         "<= 450 MiB"),
        ("peak memory, naive reference", [f"{r.peak('naive'):.0f} MiB" for r in results], ""),
        ("output: files, size", [f"{r.output_files:,} files, {r.output_bytes / 2**20:.0f} MiB" for r in results], ""),
        ("naive output: files, size", [f"{r.naive_files:,} files, {r.naive_bytes / 2**20:.0f} MiB" for r in results],
         ""),
        ("files rewritten by a clinic edit", [f"{r.clinic_edit_rewrites:,}" for r in results], "only changed bytes"),
        ("`/find/` search data a query downloads",
         [f"{r.find['median_data_bytes'] / 1024:.0f} KiB" if "median_data_bytes" in r.find else r.find.get("note", "")
          for r in results], ""),
        ("`/find/` first results, from opening `/find/?near=ZIP`",
         [f"{r.find['median_first_results_ms']:.0f} ms" if "median_first_results_ms" in r.find
          else r.find.get("note", "") for r in results], ""),
        ("`/find/` first results of a query made on the page",
         [f"{r.find['median_query_first_results_ms']:.0f} ms" if "median_query_first_results_ms" in r.find
          else r.find.get("note", "") for r in results], "<= 200 ms"),
        ("`/find/` whole list of that query (all locations within the radius)",
         [f"{r.find['median_query_results_ms']:.0f} ms" if "median_query_results_ms" in r.find
          else r.find.get("note", "") for r in results], ""),
    ]
    lines += [f"| {label} | " + " | ".join(cells) + f" | {goal} |" for label, cells, goal in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="clinic counts, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (the median is reported)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=ROOT / "bench-results" / "work",
                        help="where registries, outputs and caches go (several GB at 10,000 clinics)")
    parser.add_argument("--results", type=Path, default=ROOT / "bench-results")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    started = dt.datetime.now(dt.UTC)
    host = machine()
    print(f"Machine: {host['cpu']}, {host['cores']} cores, {host['memory']}, {host['filesystem']}; "
          f"load {host['load_average'][0]:.1f}", flush=True)
    results = [run_size(args.work, size, args.runs, args.seed) for size in sizes]
    host["load_average_after"] = os.getloadavg()
    report = table(results)
    args.results.mkdir(parents=True, exist_ok=True)
    name = "results"
    (args.results / f"{name}.json").write_text(json.dumps({
        "started": started.isoformat(timespec="seconds"), "machine": host, "runs": args.runs, "seed": args.seed,
        "sizes": [{"clinics": r.clinics, "registry_bytes": r.registry_bytes,
                   "runs": {name: [vars(run) for run in runs] for name, runs in r.runs.items()},
                   "output_files": r.output_files, "output_bytes": r.output_bytes,
                   "naive_files": r.naive_files, "naive_bytes": r.naive_bytes,
                   "clinic_edit_rewrites": r.clinic_edit_rewrites, "find": r.find} for r in results],
    }, indent=2) + "\n")
    (args.results / f"{name}.md").write_text(report + "\n")
    print("\nMedians of", args.runs, "runs; ratios are to the naive reference's cold build of the same size.\n")
    print(report)
    print(f"\nWritten to {args.results}/{name}.md and {name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
