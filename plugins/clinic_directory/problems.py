"""Problems found in an input file, reported as ``FILE:LINE:COLUMN: PATH: MESSAGE``.

Checks return lists of problems instead of raising, so that one run reports every
mistake in a file; a single place (the caller) decides to stop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input file, located for the person who must fix it.

    ``line`` and ``column`` are 1-based, as editors show them.
    """

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.path}: {self.message}"


class InvalidInput(Exception):
    """Raised once, after every check ran, when an input has problems."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__(f"{len(self.problems)} problem(s) found")

    def report(self) -> str:
        """All problems, one per line, sorted by file, line and column."""
        return "\n".join(str(p) for p in self.problems)
