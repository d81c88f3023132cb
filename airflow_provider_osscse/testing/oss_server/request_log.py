"""What the local OSS server was asked, so tests count requests where they are served.

A claim like "a small read is one request" or "a no-op rotation re-run makes one request per
object" is a claim about the server, so it is counted there, not in a client wrapper.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class ServedRequest:
    """One request: its method, ``/bucket/key`` path (decoded) and the names of its query parameters."""

    method: str
    path: str
    operations: frozenset[str]


class RequestLog:
    """Thread-safe record of every request the server received (faults included)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[ServedRequest] = []

    def record(self, method: str, path: str, raw_query: str) -> None:
        names = frozenset(name for name, _ in parse_qsl(raw_query, keep_blank_values=True))
        with self._lock:
            self._entries.append(ServedRequest(method, path, names))

    def count(self, path_prefix: str = "/", *, method: str | None = None, operation: str | None = None) -> int:
        """Requests whose path starts with ``path_prefix`` (``/bucket/prefix``), optionally of one
        ``method`` and carrying the query parameter ``operation`` (e.g. ``uploadId``, ``uploads``)."""
        with self._lock:
            return sum(
                1
                for entry in self._entries
                if entry.path.startswith(path_prefix)
                and (method is None or entry.method == method)
                and (operation is None or operation in entry.operations)
            )

    def by_method(self, path_prefix: str = "/") -> dict[str, int]:
        """``{"GET": n, "HEAD": m, ...}`` for paths under ``path_prefix``."""
        counts: dict[str, int] = {}
        with self._lock:
            for entry in self._entries:
                if entry.path.startswith(path_prefix):
                    counts[entry.method] = counts.get(entry.method, 0) + 1
        return counts
