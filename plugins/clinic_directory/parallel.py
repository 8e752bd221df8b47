"""Rendering pages in two processes: a cold build is nearly all Jinja, and the machine has two cores."""

from __future__ import annotations

import gc
import logging
import marshal
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from .build import BuildFailed, ErrorCounter
from .progress import Progress

logger = logging.getLogger(__name__)

PARALLEL_FROM = 32  # pages; below this, starting a process is not worth it (after an edit: the index pages)


def render_pages(pages: Sequence[Any], render: Callable[[Any], None], progress: Progress,
                 group_of: Callable[[Any], Any] = lambda page: None) -> None:
    """``render`` every page; with a second CPU, a forked process renders about half of them.

    A cold build of 10,000 clinics renders some 60,000 pages, each on its own, so two
    processes take about half as long. The child writes its pages and exits with
    ``os._exit`` (nothing of the parent's clean-up may run in it); an error in it,
    raised or logged, fails the build like one in the parent. ``pages[i][0]`` is the
    page's path: when one is written twice, all are rendered here, and Pelican's writer
    refuses the second as usual.
    """
    names = [page[0] for page in pages]
    if len(pages) < PARALLEL_FROM or (os.cpu_count() or 1) < 2 or not hasattr(os, "fork") \
            or len(set(names)) != len(names):
        for page in pages:
            render(page)
        return
    mine, theirs = _in_two_parts(pages, group_of)
    gc.freeze()  # the objects made so far stay put, and the child copies fewer memory pages
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        _render_and_exit(theirs, render, progress)
    try:
        for page in mine:
            render(page)
    except BaseException:
        os.kill(child, signal.SIGKILL)
        raise
    finally:
        _pid, status = os.waitpid(child, 0)
    if status != 0:
        raise BuildFailed(f"the process rendering {len(theirs):,} of the pages failed (its error is above)")
    progress.step(len(theirs))


def _in_two_parts(pages: Sequence[Any], group_of: Callable[[Any], Any]) -> tuple[list[Any], list[Any]]:
    """``pages`` in two parts of about the same size, each run of pages of one group (the same object
    ``group_of`` them, other than None) kept whole: a clinic's pages share its schema.org nodes (made
    once per clinic, ``jsonld.py``) and its directories (two processes adding entries to one directory
    take turns at it)."""
    parts: tuple[list[Any], list[Any]] = ([], [])
    run: list[Any] = []
    run_group = None
    for page in pages:
        group = group_of(page)
        if run and (group is None or group is not run_group):
            min(parts, key=len).extend(run)
            run = []
        run.append(page)
        run_group = group
    min(parts, key=len).extend(run)
    return parts


def _render_and_exit(pages: Sequence[Any], render: Callable[[Any], None], progress: Progress) -> None:
    errors = ErrorCounter()
    logging.getLogger().addHandler(errors)
    progress.enabled = False
    status = 1
    try:
        for page in pages:
            render(page)
        status = 1 if errors.count else 0
    except BaseException:  # noqa: BLE001 - printed, then the child exits with an error status
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


class Apart:
    """``work(argument)`` in a forked process, started at once, when there is a second CPU and ``fork``
    (else here, when the result is asked for). The result comes back through a pipe, so it must be plain data
    (``marshal``); ``result()`` is None when the process failed (``work``'s caller must treat None
    as "no answer"). ``close()`` stops a process whose result turned out not to be needed."""

    def __init__(self, work: Callable[[Any], Any], argument: Any, fork: bool = True) -> None:
        self._work, self._argument = work, argument
        self._child: int | None = None
        self._done = False
        self._result: Any = None
        if not fork or (os.cpu_count() or 1) < 2 or not hasattr(os, "fork"):
            return
        reading, writing = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            os.close(reading)
            status = 1
            try:
                with os.fdopen(writing, "wb") as pipe:
                    pipe.write(marshal.dumps(work(argument)))
                status = 0
            except BaseException:  # noqa: BLE001 - the parent sees no answer
                traceback.print_exc()
            finally:
                os._exit(status)
        os.close(writing)
        self._child, self._reading = child, reading

    def result(self) -> Any:
        if self._done:
            return self._result
        self._done = True
        if self._child is None:
            self._result = self._work(self._argument)
            return self._result
        with os.fdopen(self._reading, "rb") as pipe:  # read to the end before waiting: the pipe holds 64 kB
            answer = pipe.read()
        _pid, status = os.waitpid(self._child, 0)
        self._child = None
        self._result = None
        if status == 0 and answer:
            try:
                self._result = marshal.loads(answer)
            except (EOFError, ValueError, TypeError):  # cut short or garbled: no answer, as if it had failed
                logger.warning("The answer of a helper process could not be read (%d bytes); the build "
                               "does that part itself", len(answer))
        return self._result

    def close(self) -> None:
        if self._child is not None:
            os.kill(self._child, signal.SIGKILL)
            os.close(self._reading)
            os.waitpid(self._child, 0)
            self._child = None
        self._done = True


def in_two(work: Callable[[Any], Any], first: Any, second: Any) -> tuple[Any, Any]:
    """``(work(first), work(second))``, the second made in a forked process when there is a
    second CPU. Its result comes back through a pipe, so it must be plain data (``marshal``);
    if the process fails, its result is None (``work`` must treat None as "no answer")."""
    apart = Apart(work, second)
    try:
        mine = work(first)
    except BaseException:
        apart.close()
        raise
    return mine, apart.result()
