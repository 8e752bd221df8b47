"""`make audit`: Lighthouse on the home page, a clinic, /find/ and an article of the sample site.

Builds the sample site into a temporary directory, serves it on 127.0.0.1 and runs the npm package
`lighthouse` (mobile emulation, simulated throttling: its defaults) in Debian's Chromium, one page at
a time. Prints a Markdown table of the four category scores per page and every audit that lost points;
exits 1 when any score is below ``--min-score``. Not part of `make test`: about 15 s a page.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import CHROMIUM_ARGS, ROOT, build, representative_pages, serve  # noqa: E402

CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"


def pages_to_audit(site: Path) -> dict[str, str]:
    kinds = representative_pages(site)
    return {"home": kinds["home"], "clinic": kinds["clinic"], "find": kinds["find"], "article": kinds["article"]}


def audit(url: str, report: Path) -> dict:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    flags = " ".join(["--headless=new", *CHROMIUM_ARGS])
    subprocess.run([str(LIGHTHOUSE), url, "--quiet", f"--chrome-flags={flags}",
                    f"--only-categories={','.join(CATEGORIES)}", "--output=json", f"--output-path={report}"],
                   check=True, env={**os.environ, "CHROME_PATH": chromium}, timeout=300)
    return json.loads(report.read_text(encoding="utf-8"))


def lost_points(result: dict) -> list[str]:
    lines = []
    for name, category in result["categories"].items():
        for ref in category["auditRefs"]:
            found = result["audits"][ref["id"]]
            if ref["weight"] and found["score"] is not None and found["score"] < 1:
                lines.append(f"{name}: {found['id']} ({found['score']:.2f}): {found['title']}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-score", type=int, default=95, help="lowest acceptable score, 0-100")
    args = parser.parse_args()
    if not LIGHTHOUSE.exists():
        print("lighthouse is not installed: run `make audit` (it runs `npm ci`)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="audit-") as temp:
        site = Path(temp) / "output"
        built = build(site)
        if built.returncode != 0:
            print(built.stderr, file=sys.stderr)
            return 1
        server, base = serve(site)
        try:
            rows, failures = [], []
            for name, path in pages_to_audit(site).items():
                result = audit(base + path, Path(temp) / f"{name}.json")
                scores = {c: round(result["categories"][c]["score"] * 100) for c in CATEGORIES}
                rows.append(f"| {name} (`{path}`) | " + " | ".join(str(scores[c]) for c in CATEGORIES) + " |")
                failures += [f"{name}: {c} {s} < {args.min_score}" for c, s in scores.items() if s < args.min_score]
                print(f"{name}: " + ", ".join(f"{c} {s}" for c, s in scores.items()), file=sys.stderr)
                for line in lost_points(result):
                    print(f"  {line}", file=sys.stderr)
        finally:
            server.shutdown()
    print("| page | " + " | ".join(CATEGORIES) + " |")
    print("|---|" + "---|" * len(CATEGORIES))
    print("\n".join(rows))
    if failures:
        print("\n".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
