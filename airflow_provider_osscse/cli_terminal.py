"""What the ``osscse`` command line does to the terminal: stdout carries data, everything else stderr.

* :class:`TerminalBar`: transfer progress as a ``rich`` bar on stderr, only when stderr is a terminal.
* :class:`CommandOutput`: for the time a command runs, stdout carries only data and everything else
  (log records at the ``-q``/``-v`` level, notes, warnings, the bar) goes to stderr.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO, cast

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

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
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


#: ``-q`` / default / ``-v`` / ``-vv``: the level of log records shown on stderr.
_LEVELS = {-1: "ERROR", 0: "WARNING", 1: "INFO", 2: "DEBUG"}
#: Libraries whose INFO records are noise on a terminal (oss2 logs every expected 404 of a HEAD as
#: INFO ``Exception: {...}`` with the request's details); shown only from ``-vv``.
_CHATTY_LIBRARIES = ("oss2",)


class CommandOutput:
    """stdout carries data, stderr everything else, for the time one command runs.

    * :attr:`data` (bytes) and :meth:`result` (one line of text) write to the real stdout: ``cat``
      bytes, ``--json`` documents and the one-line results of ``put``/``get``/``ls``/``inspect``/``rewrap``.
    * Everything else goes to stderr: log records (at ``WARNING``; ``-v`` INFO, ``-vv`` DEBUG, ``-q``
      ERROR), :meth:`note` lines (hidden by ``-q``), :meth:`warning` lines (always: an unauthenticated
      read is never silent) and the progress bar (a terminal only, not with ``-q``).
    * Whatever else writes to stdout while the command runs (Airflow's logging, which prints to
      stdout from its import on; a library's ``print``) lands on stderr: on a real console file
      descriptor 1 itself points at stderr meanwhile and the data goes to a private duplicate of the
      original stdout; when stdout is not the console (tests, embedding), ``sys.stdout`` is swapped.
    """

    def __init__(self, verbosity: int = 0) -> None:
        self.verbosity = max(-1, min(2, verbosity))
        self.quiet = self.verbosity < 0
        self.bar = TerminalBar(enabled=not self.quiet)
        self.data: BinaryIO = sys.stdout.buffer
        self._saved_fd: int | None = None
        self._saved_stdout: TextIO | None = None
        self._handler: logging.Handler | None = None
        self._levels: list[tuple[logging.Logger, int]] = []
        self._filters: list[tuple[logging.Logger, logging.Filter]] = []

    def __enter__(self) -> CommandOutput:
        sys.stdout.flush()
        if sys.__stdout__ is not None and sys.stdout is sys.__stdout__ and _fileno(sys.stdout) == 1:
            self.data = os.fdopen(os.dup(1), "wb")
            self._saved_fd = os.dup(1)
            os.dup2(2, 1)
        else:
            self.data = _binary(sys.stdout)
            self._saved_stdout, sys.stdout = sys.stdout, sys.stderr
        self._configure_logging()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
        try:
            self.data.flush()
        except BrokenPipeError:
            self.discard_data()
        self._restore_logging()
        sys.stdout.flush()  # lines buffered meanwhile belong on stderr
        if self._saved_fd is not None:
            os.dup2(self._saved_fd, 1)
            os.close(self._saved_fd)
            self.data.close()
        if self._saved_stdout is not None:
            sys.stdout = self._saved_stdout

    def discard_data(self) -> None:
        """The reader of stdout went away (``| head``): drop what is left instead of failing again."""
        devnull = os.open(os.devnull, os.O_WRONLY)
        if self._saved_fd is not None:
            os.dup2(devnull, self._saved_fd)  # the real stdout, restored on exit, points nowhere
            self.data = os.fdopen(devnull, "wb")
        else:
            os.close(devnull)
            self.data = io.BytesIO()

    # ------------------------------------------------------------------ what commands print
    def result(self, line: str) -> None:
        """One line of the command's result on stdout (data)."""
        self.data.write(line.encode("utf-8", "surrogateescape") + b"\n")
        self.data.flush()

    def note(self, line: str) -> None:
        """An informational line on stderr (a summary, what was written where); hidden by ``-q``."""
        if not self.quiet:
            self.bar.close()
            _stderr(f"osscse: {line}")

    def warning(self, line: str) -> None:
        """A warning on stderr, also under ``-q`` (e.g. plaintext that was not authenticated)."""
        self.bar.close()
        _stderr(f"osscse: warning: {line}")

    def error(self, line: str) -> None:
        """An error line on stderr (``osscse: ...``), whatever the verbosity."""
        self.bar.close()
        _stderr(f"osscse: {line}")

    # ------------------------------------------------------------------ logging
    def _configure_logging(self) -> None:
        level = getattr(logging, _LEVELS[self.verbosity])
        # Airflow configures its logging when (if) it is imported, from this variable: same level.
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", _LEVELS[self.verbosity])
        root = logging.getLogger()
        self._handler = logging.StreamHandler(sys.stderr)
        self._handler.setLevel(level)
        self._handler.setFormatter(logging.Formatter("osscse: %(levelname)s: %(name)s: %(message)s"))
        root.addHandler(self._handler)
        self._levels.append((root, root.level))
        root.setLevel(level)
        for name in _CHATTY_LIBRARIES:
            library = logging.getLogger(name)
            self._levels.append((library, library.level))
            library.setLevel(logging.DEBUG if self.verbosity >= 2 else max(level, logging.WARNING))

    def drop_records(self, flag: str, *logger_names: str) -> None:
        """Drop log records carrying the attribute ``flag`` (set with ``extra=``) that ``logger_names``
        create while the command runs: the command reports those events itself, in its own words.
        A logger's filter sees the records created on it, whichever handlers print them later
        (this module's, or Airflow's once it is imported)."""
        drop = _DropFlagged(flag)
        for name in logger_names:
            logger = logging.getLogger(name)
            logger.addFilter(drop)
            self._filters.append((logger, drop))

    def _restore_logging(self) -> None:
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler = None
        while self._levels:
            logger, level = self._levels.pop()
            logger.setLevel(level)
        while self._filters:
            logger, drop = self._filters.pop()
            logger.removeFilter(drop)


class _DropFlagged(logging.Filter):
    def __init__(self, flag: str) -> None:
        super().__init__()
        self.flag = flag

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, self.flag, False)


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _fileno(stream: Any) -> int | None:
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None


def _binary(stream: Any) -> BinaryIO:
    """The byte stream under a text stream (``sys.stdout.buffer``), or an adapter for text-only ones."""
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return cast("BinaryIO", buffer)
    return cast("BinaryIO", _TextAsBytes(stream))


class _TextAsBytes(io.RawIOBase):
    """Bytes written to a text-only stream (e.g. ``io.StringIO``), decoded as UTF-8."""

    def __init__(self, text: TextIO) -> None:
        self._text = text

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._text.write(bytes(data).decode("utf-8", "surrogateescape"))
        return len(data)

    def flush(self) -> None:
        self._text.flush()
