"""What the ``osscse`` command line does to the terminal: stdout carries data, everything else stderr.

* :class:`TerminalBar`: transfer progress as a ``rich`` bar on stderr, only when stderr is a terminal.
* :func:`move_log_handlers_off_stdout` / :func:`restore_log_handlers`: Airflow's logging prints to
  stdout; while a command runs, its handlers write to stderr instead.
* :func:`reserve_stdout_for_data`: ``cat`` on the real stdout keeps file descriptor 1 for plaintext.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from airflow_provider_osscse.transport.progress import ProgressSnapshot


class TerminalBar:
    """The transfers' progress as a ``rich`` bar on stderr, only when stderr is a terminal.

    A hook progress callback: it receives throttled snapshots from the transfer's pool threads
    (``rich.progress.Progress`` is thread-safe) and draws one line per transfer label; rich redraws
    it, formats sizes and rates, and estimates the time left. Nothing is drawn (and rich is not
    imported) when stderr is a pipe or file. stdout is left alone (it carries data), so the bar
    never captures what a command prints there; :meth:`close` ends the bar before a command prints
    its result and again, harmlessly, when the command exits.
    """

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def _started(self) -> Progress:
        if self._progress is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )
            from rich.table import Column

            def fixed() -> Column:
                return Column(no_wrap=True)

            # The line fills the terminal; a narrow one shortens the label and bar, never wraps the numbers.
            self._progress = Progress(
                TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=2)),
                BarColumn(bar_width=None, table_column=Column(ratio=1)),
                DownloadColumn(table_column=fixed()),
                TaskProgressColumn(table_column=fixed()),
                TransferSpeedColumn(table_column=fixed()),
                TimeRemainingColumn(table_column=fixed()),
                console=Console(stderr=True),
                redirect_stdout=False,
                expand=True,
            )
            self._progress.start()
        return self._progress

    def __call__(self, snap: ProgressSnapshot) -> None:
        if not self.enabled:
            return
        with self._lock:
            progress = self._started()
            task = self._tasks.get(snap.label)
            if task is None:
                task = self._tasks[snap.label] = progress.add_task(snap.label, total=snap.total)
        progress.update(task, completed=snap.done, total=snap.total)

    def close(self) -> None:
        """Draw the final state and end the bar's line (once; later calls do nothing)."""
        with self._lock:
            progress, self._progress = self._progress, None
            self._tasks.clear()
        if progress is not None:
            progress.stop()


#: Log handlers moved off stdout by the running command, with their former stream.
_MOVED_HANDLERS: list[tuple[Any, Any]] = []
#: Libraries whose INFO records are noise on a terminal, and the levels they had before a command.
_CHATTY_LIBRARIES = ("oss2",)
_QUIETED: list[tuple[Any, int]] = []


def move_log_handlers_off_stdout() -> None:
    """stdout carries data (``cat`` bytes, ``--json``): log handlers that Airflow's import pointed at
    stdout are pointed at stderr instead, also when the CLI runs inside another process (tests,
    embedding) where ``cat`` cannot reserve file descriptor 1 for itself."""
    import logging

    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and _is_stdout(handler.stream):
            _MOVED_HANDLERS.append((handler, handler.setStream(sys.stderr)))  # noqa: PERF401 - setStream moves it
    # oss2 logs every 404 (an expected answer to HEAD/exists) as INFO "Exception: {...}" with the
    # request's details; a shell user gets this package's one-line error instead.
    for name in _CHATTY_LIBRARIES:
        library = logging.getLogger(name)
        _QUIETED.append((library, library.level))
        library.setLevel(max(library.getEffectiveLevel(), logging.WARNING))


def restore_log_handlers() -> None:
    """Give moved handlers their stream back when the command ends (the CLI may run in a process
    that lives on, whose stderr of the moment may be closed later)."""
    while _MOVED_HANDLERS:
        handler, stream = _MOVED_HANDLERS.pop()
        if stream is not None:
            handler.setStream(stream)
    while _QUIETED:
        library, level = _QUIETED.pop()
        library.setLevel(level)


def _is_stdout(stream: Any) -> bool:
    if stream is sys.stdout or stream is sys.__stdout__:
        return True
    try:
        return bool(stream.fileno() == 1)
    except (AttributeError, OSError, ValueError):
        return False


def reserve_stdout_for_data(args: argparse.Namespace) -> int | None:
    """For ``cat`` on the real stdout: fd 1 carries only plaintext.

    Airflow's logging prints to stdout (even at import); while ``cat`` runs, fd 1 points at stderr
    and the plaintext goes to a private duplicate of the original stdout. Returns the fd to restore.
    """
    if sys.__stdout__ is None or sys.stdout is not sys.__stdout__:
        return None  # no console, or captured (tests, embedding): write where we were told
    sys.stdout.flush()
    args.data_out = os.fdopen(os.dup(1), "wb")
    saved = os.dup(1)
    os.dup2(2, 1)
    return saved
