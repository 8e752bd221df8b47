"""Build the site into a staging directory; only a complete build reaches the output.

Pelican empties its output directory before it reads anything, so a failed build
run straight into ``OUTPUTDIR`` would leave half a site. We let Pelican build
into a fresh sibling directory and, only if it succeeded without errors, bring
the output in line with it, rewriting just the files whose bytes changed.
"""

from __future__ import annotations

import filecmp
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pelican import Pelican
from pelican.settings import read_settings

logger = logging.getLogger(__name__)


class ErrorCounter(logging.Handler):
    """Counts ERROR records: Pelican logs some failures (a bad article) and carries on."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


class BuildFailed(Exception):
    pass


def build_site(settings_file: Path, output: Path, overrides: dict[str, Any]) -> None:
    """Build into ``output``; on any failure ``output`` is left exactly as it was."""
    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.staging-", dir=output.parent))
    counter = ErrorCounter()
    logging.getLogger().addHandler(counter)
    try:
        settings = read_settings(str(settings_file), override={
            **overrides, "OUTPUT_PATH": str(staging), "DELETE_OUTPUT_DIRECTORY": False})
        Pelican(settings).run()
        if counter.count:
            raise BuildFailed(f"{counter.count} error(s) logged during the build; nothing was written to {output}")
        sync_tree(staging, output, delete=True)
    finally:
        logging.getLogger().removeHandler(counter)
        shutil.rmtree(staging, ignore_errors=True)


def sync_tree(source: Path, target: Path, delete: bool) -> tuple[int, int]:
    """Make ``target`` hold exactly ``source``'s files; returns (files written, files removed).

    Unchanged files keep their bytes and mtime, so servers and deploys see only real changes.
    Each file is replaced atomically (write beside, then rename).
    """
    written = removed = 0
    wanted: set[Path] = set()
    for directory, _dirs, files in os.walk(source):
        relative_dir = Path(directory).relative_to(source)
        (target / relative_dir).mkdir(parents=True, exist_ok=True)
        for name in files:
            relative = relative_dir / name
            wanted.add(relative)
            src, dst = source / relative, target / relative
            if dst.is_file() and not dst.is_symlink() and filecmp.cmp(src, dst, shallow=False):
                continue
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            tmp = dst.with_name(f".{dst.name}.tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
            written += 1
    if delete:
        for directory, dirs, files in os.walk(target, topdown=False):
            relative_dir = Path(directory).relative_to(target)
            for name in files:
                if relative_dir / name not in wanted:
                    (Path(directory) / name).unlink()
                    removed += 1
            for name in dirs:
                path = Path(directory) / name
                if not path.is_symlink() and not any(path.iterdir()):
                    path.rmdir()
    return written, removed
