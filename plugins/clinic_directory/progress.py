"""Progress of a long build: periodic counts on a terminal, nothing in CI or in a log file."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO


class Progress:
    """``Progress("pages", total)``; ``step()`` per item; ``done()`` at the end.

    Prints at most one line a second, and only when ``stream`` is a terminal and the
    ``CI`` environment variable is not set, so test logs and CI output stay quiet.
    """

    def __init__(self, what: str, total: int, stream: TextIO | None = None, interval: float = 1.0) -> None:
        self.what = what
        self.total = total
        self.count = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = wants_progress(self.stream)
        self.interval = interval
        self.started = self.last = time.monotonic()
        self.shown = False

    def step(self, count: int = 1) -> None:
        self.count += count
        if self.enabled and time.monotonic() - self.last >= self.interval:
            self.last = time.monotonic()
            self._show()

    def done(self) -> None:
        if self.enabled and self.shown:
            self._show()
            self.stream.write("\n")
            self.stream.flush()

    def _show(self) -> None:
        elapsed = time.monotonic() - self.started
        self.stream.write(f"\r{self.what}: {self.count:,} of {self.total:,} ({elapsed:.0f} s)")
        self.stream.flush()
        self.shown = True


def wants_progress(stream: TextIO) -> bool:
    ci = os.environ.get("CI", "").strip().lower()
    return stream.isatty() and ci in ("", "0", "false", "no")
