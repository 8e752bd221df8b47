"""Command line for the Makefile: ``build``, ``validate``, ``schema``, ``geocode``, ``apply-update``, ``publish``.

Exit codes: 0 success, 1 the input has problems (listed on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from . import schema
from .build import BuildFailed, build_site
from .geocode import placement_problems
from .model import build_registry
from .problems import InvalidInput
from .registry import check_registry
from .settings import DEFAULTS, SettingsError, read_plugin_settings


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["geocode"]:  # `make geocode`; it has its own options (geocode --help)
        from .geocode import main as geocode_main

        return geocode_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m clinic_directory")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("geocode", help="look up locations without geo into the geocode cache (uses the network)")

    build = commands.add_parser("build", help="build the site; the output is untouched on failure")
    build.add_argument("--settings", type=Path, default=Path("pelicanconf.py"))
    build.add_argument("--output", type=Path, default=Path("output"))
    build.add_argument("--registry", type=Path, default=None)
    build.add_argument("--content", type=Path, default=None, help="content directory (articles, pages)")
    build.add_argument("--cache", default=None,
                       help="cache directory (default: the CLINIC_DIRECTORY_CACHE setting); '' turns caching off")
    build.add_argument("--quiet", action="store_true")
    build.add_argument("--verbose", action="store_true", help="also list the pages rendered")

    validate = commands.add_parser("validate", help="check a registry; print every problem")
    validate.add_argument("registry", type=Path)
    validate.add_argument("--geocode-cache", type=Path, default=Path(DEFAULTS["GEOCODE_CACHE"][0]),
                          help="where locations without geo are placed from (default: %(default)s)")

    export = commands.add_parser("schema", help="print the registry schema")
    export.add_argument("--markdown", action="store_true", help="as the README's field table")

    update = commands.add_parser("apply-update", help="apply a clinic's profile update to the registry and print "
                                 "the diff; the registry is untouched when the update is refused")
    update.add_argument("file", type=Path, help="the update file (YAML)")
    update.add_argument("--registry", type=Path, default=Path("clinics.yaml"), help="default: %(default)s")
    update.add_argument("--keys", type=Path, default=None,
                        help="clinics' signing keys, YAML slug: key (default: <registry>.keys.yaml)")
    update.add_argument("--log", type=Path, default=None, help="change log (default: <registry>.updates.log)")
    update.add_argument("--backups", type=Path, default=None, help="backup directory (default: <registry>.backups)")
    update.add_argument("--dry-run", action="store_true", help="check and print the diff; write nothing")
    update.add_argument("--geocode-cache", type=Path, default=Path(DEFAULTS["GEOCODE_CACHE"][0]),
                        help="to say which changed locations need `make geocode` (default: %(default)s)")
    update.add_argument("--articles", type=Path, default=Path("content/articles"),
                        help="the education articles, to say which ones the update leaves naming a removed "
                             "physician as reviewer (default: %(default)s)")

    signer = commands.add_parser("sign-update", help="print the signature of an update file with its clinic's key")
    signer.add_argument("file", type=Path, help="the update file (YAML)")
    signer.add_argument("--registry", type=Path, default=Path("clinics.yaml"), help="default: %(default)s")
    signer.add_argument("--keys", type=Path, default=None, help="default: <registry>.keys.yaml")

    publisher = commands.add_parser("publish", help="check the registry, build with the publish settings, verify "
                                    "the site and deploy it; the live site is untouched on failure")
    publisher.add_argument("--settings", type=Path, default=Path("publishconf.py"), help="default: %(default)s")
    publisher.add_argument("--target", default=None, help="a directory, user@host:path, s3://bucket/prefix or "
                           "ghpages:<git remote> (default: the CLINIC_DIRECTORY_PUBLISH_TARGET setting)")
    publisher.add_argument("--registry", type=Path, default=None)
    publisher.add_argument("--content", type=Path, default=None, help="content directory (articles, pages)")
    publisher.add_argument("--allow-placeholders", action="store_true",
                           help="publish even though registry entries are marked placeholder: true")
    publisher.add_argument("--dry-run", action="store_true", help="build and verify, list what would change; "
                           "deploy nothing")
    publisher.add_argument("--work", type=Path, default=None, help="where the site is built and the targets keep "
                           "their state (default: the CLINIC_DIRECTORY_PUBLISH_DIR setting)")

    args = parser.parse_args(argv)
    if args.command == "publish":
        return run_publish(args)
    if args.command == "validate":
        return run_validate(args.registry, args.geocode_cache)
    if args.command == "apply-update":
        return run_apply_update(args)
    if args.command == "sign-update":
        return run_sign_update(args)
    if args.command == "schema":
        print(schema_markdown() if args.markdown else json.dumps(schema.json_schema(), indent=2))
        return 0
    return run_build(args)


def run_validate(path: Path, geocode_cache: Path) -> int:
    """Every problem a build would find in the registry: its own, then (when it has none) each
    location the build could not place on the map."""
    max_bytes = DEFAULTS["MAX_REGISTRY_BYTES"][0]
    data, problems = check_registry(path, max_bytes, str(path))
    if not problems and data is not None:
        problems = placement_problems(path, data, geocode_cache, max_bytes, str(path))
    if problems:
        print(InvalidInput(problems).report(), file=sys.stderr)
        print(f"{path}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{path}: valid")
    return 0


def run_apply_update(args: argparse.Namespace) -> int:
    from .updates import apply_update, summary

    registry = str(args.registry)
    try:
        result = apply_update(args.file, args.registry, keys=args.keys, log=args.log, backups=args.backups,
                              dry_run=args.dry_run, max_registry_bytes=DEFAULTS["MAX_REGISTRY_BYTES"][0])
    except InvalidInput as error:
        print(error.report(), file=sys.stderr)
        print(f"update refused: {len(error.problems)} problem(s); {registry} was left as it was", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"update not applied: {error}; {registry} was left as it was", file=sys.stderr)
        return 1
    sys.stdout.write(result.diff)
    print(summary(result, registry))
    if result.log is not None:
        # A moved office loses its coordinates (the update form deletes them): the build needs them again.
        data = result.plan.data
        unplaced = placement_problems(args.registry, data, args.geocode_cache, DEFAULTS["MAX_REGISTRY_BYTES"][0],
                                      registry)
        if unplaced:
            print("\n".join(str(problem) for problem in unplaced), file=sys.stderr)
            print(f"note: the update was applied, but {len(unplaced)} location(s) cannot be placed on the map yet; "
                  "run `make geocode` before `make html`", file=sys.stderr)
        report_article_problems(data, args.articles)
    return 0


def report_article_problems(data: dict, articles_dir: Path) -> None:
    """After an update: the articles the changed registry (plain ``data``) no longer fits (a removed
    physician who reviewed one), said now rather than when `make html` stops on them."""
    from .articles import check_articles

    articles = sorted(articles_dir.rglob("*.md")) if articles_dir.is_dir() else []
    if not articles:
        return
    _metas, problems = check_articles(articles, build_registry(data, read_plugin_settings({}).urls))
    if problems:
        print("\n".join(str(problem) for problem in problems), file=sys.stderr)
        print(f"note: the update was applied, but {len(problems)} problem(s) in the articles now stop `make html`; "
              "fix them (e.g. name another reviewer) before publishing", file=sys.stderr)


def run_sign_update(args: argparse.Namespace) -> int:
    """For updates made by hand: the signature line to add, from the keys file the maintainers keep."""
    from .updates import default_keys_path, plain_update, read_keys, read_update, sign

    keys_path = args.keys or default_keys_path(args.registry)
    update, problems = read_update(args.file, str(args.file))
    data, registry_problems = check_registry(args.registry, DEFAULTS["MAX_REGISTRY_BYTES"][0], str(args.registry))
    keys, key_problems = read_keys(keys_path, str(keys_path), data["clinics"] if data else {})
    problems = [*problems, *registry_problems, *key_problems]
    if problems or update is None or update.clinic is None:
        print(InvalidInput(problems).report(), file=sys.stderr)
        return 1
    if update.clinic not in keys:
        print(f"{args.file}: no key for {update.clinic} in {keys_path}", file=sys.stderr)
        return 1
    print(f"signature: {sign(keys[update.clinic], plain_update(update.root))}")
    return 0


def run_build(args: argparse.Namespace) -> int:
    level = logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")
    if level > logging.DEBUG:  # Pelican logs each file it writes or copies: 60,000 lines for 10,000 clinics
        for name in ("pelican.writers", "pelican.utils"):
            logging.getLogger(name).setLevel(max(level, logging.WARNING))
    overrides: dict[str, str] = {}
    if args.registry:
        overrides["CLINIC_DIRECTORY_REGISTRY"] = str(args.registry)
    if args.content:
        overrides["PATH"] = str(args.content.resolve())
    if args.cache is not None:
        overrides["CLINIC_DIRECTORY_CACHE"] = args.cache
    try:
        build_site(args.settings, args.output, overrides)
    except InvalidInput as error:
        print(error.report(), file=sys.stderr)
        print(f"build stopped: {len(error.problems)} problem(s); {args.output} was left as it was", file=sys.stderr)
        return 1
    except (SettingsError, BuildFailed) as error:
        print(f"build stopped: {error}", file=sys.stderr)
        return 1
    print(f"built {args.output}")
    return 0


def run_publish(args: argparse.Namespace) -> int:
    from .deploy import DeployFailed
    from .publish import PublishOptions, PublishStopped, describe, publish

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    options = PublishOptions(args.settings, args.target, args.registry, args.content, args.allow_placeholders,
                             args.dry_run, args.work)
    try:
        published = publish(options, say=lambda line: print(line, flush=True))
    except InvalidInput as error:
        print(error.report(), file=sys.stderr)
        print(f"publish stopped: {len(error.problems)} problem(s); nothing was deployed", file=sys.stderr)
        return 1
    except PublishStopped as error:  # its message ends with the line that says so
        print(error, file=sys.stderr)
        return 1
    except (SettingsError, BuildFailed) as error:
        print(f"publish stopped: {error}; nothing was deployed", file=sys.stderr)
        return 1
    except DeployFailed as error:
        print(f"publish failed: {error}", file=sys.stderr)
        return 1
    if published.placeholders:
        print(f"note: published with {len(published.placeholders)} entries marked placeholder (ALLOW_PLACEHOLDERS=1)")
    print(describe(published))
    return 0


def schema_markdown() -> str:
    lines = ["| field | type | required | meaning |", "|---|---|---|---|"]
    for path, type_name, required, doc in schema.field_rows():
        lines.append(f"| `{path}` | {type_name} | {'yes' if required else ''} | {doc} |")
    return "\n".join(lines)


if __name__ == "__main__":
    code = main()
    # A build of 10,000 clinics leaves millions of objects, which the interpreter would free
    # one by one on the way out (two seconds); everything is written, so skip that.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
