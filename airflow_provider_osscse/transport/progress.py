"""Progress of long transfers (bytes, percent, rate) reported to a logger or a callback.

Thread-safe because parts finish on pool threads. Reports are rate-limited by time and by percent
step, so a 2 GiB upload logs a few dozen lines, not thousands; small transfers log nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

#: Transfers smaller than this are not reported at all (they finish before anyone could read it).
DEFAULT_MIN_REPORT_SIZE = 8 * 2**20


class TransferLogger(Protocol):
    """What transfers log through: a stdlib :class:`logging.Logger`, or the structlog-backed
    ``self.log`` of an Airflow hook (not a ``logging.Logger``, but called the same way)."""

    def info(self, msg: str, /, *args: object) -> object: ...

    def warning(self, msg: str, /, *args: object, extra: Mapping[str, object] | None = ...) -> object: ...


@dataclass(frozen=True)
class ProgressSnapshot:
    """One progress observation; ``total`` is None when the size is unknown (an iterator source)."""

    label: str
    done: int
    total: int | None
    elapsed: float

    @property
    def percent(self) -> float | None:
        if not self.total:
            return None
        return 100.0 * self.done / self.total

    @property
    def rate(self) -> float:
        """Bytes per second since the start."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def describe(self) -> str:
        pct = f" ({self.percent:.0f}%)" if self.percent is not None else ""
        total = f"/{human_bytes(self.total)}" if self.total is not None else ""
        return f"{self.label}: {human_bytes(self.done)}{total}{pct} at {human_bytes(self.rate)}/s"


def human_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KiB``: for people reading logs."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


ProgressCallback = Callable[[ProgressSnapshot], None]


class ProgressReporter:
    """Counts bytes from any thread and reports at most every ``interval`` seconds or ``step`` percent.

    ``callback`` receives every throttled snapshot (the CLI draws its bar from it); ``logger`` gets
    one INFO line per report when the transfer is at least ``min_report_size`` bytes.
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        logger: TransferLogger | None = None,
        callback: ProgressCallback | None = None,
        interval: float = 5.0,
        step_percent: float = 10.0,
        min_report_size: int = DEFAULT_MIN_REPORT_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self._logger = logger
        self._callback = callback
        self._interval = interval
        self._step = step_percent
        self._min_size = min_report_size
        self._clock = clock
        self._start = clock()
        self._lock = threading.Lock()
        self._done = 0
        self._last_time = self._start
        self._last_percent = 0.0

    @property
    def done(self) -> int:
        return self._done

    def _loggable(self) -> bool:
        return self._logger is not None and (self.total is None or self.total >= self._min_size)

    def add(self, nbytes: int) -> None:
        """Record ``nbytes`` more transferred; maybe report."""
        with self._lock:
            self._done += nbytes
            now = self._clock()
            snap = ProgressSnapshot(self.label, self._done, self.total, now - self._start)
            pct = snap.percent or 0.0
            due = now - self._last_time >= self._interval or pct - self._last_percent >= self._step
            if not due:
                return
            self._last_time = now
            self._last_percent = pct
        self._emit(snap)

    def finish(self) -> ProgressSnapshot:
        """Report the final state once (always, so a bar can reach 100%)."""
        snap = ProgressSnapshot(self.label, self._done, self.total, self._clock() - self._start)
        self._emit(snap)
        return snap

    def _emit(self, snap: ProgressSnapshot) -> None:
        if self._callback is not None:
            self._callback(snap)
        if self._logger is not None and self._loggable():
            self._logger.info("%s", snap.describe())
