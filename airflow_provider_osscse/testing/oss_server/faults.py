"""Injected faults of the kinds real OSS produces: dropped connections, 5xx answers, slow answers,
and bytes corrupted on the wire (one bit of the request body as received, or of the response body
as sent).

Transfer code has to survive these (retries, resumable uploads, no orphaned parts). A fault
matches on method and substrings of the decoded path / raw query, applies to the next ``times``
matching requests in the order faults were added, and then expires.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

_STATUS_ACTIONS = {"status:500": 500, "status:503": 503}


@dataclass
class Fault:
    method: str | None
    path_contains: str | None
    query_contains: str | None
    action: str
    remaining: int

    def matches(self, method: str, path: str, query: str) -> bool:
        return (
            (self.method is None or self.method.upper() == method)
            and (self.path_contains is None or self.path_contains in path)
            and (self.query_contains is None or self.query_contains in query)
        )


@dataclass(frozen=True)
class FaultAction:
    """What to do to one request: ``reset`` the connection, answer ``status``, ``delay`` first, or
    ``corrupt`` one bit of its body (a request with a body: as received; else the answer's, as sent)."""

    kind: str  # "reset" | "status" | "delay" | "corrupt"
    status: int = 0
    seconds: float = 0.0


def parse_action(action: str) -> FaultAction:
    if action in ("reset", "corrupt"):
        return FaultAction(action)
    if action in _STATUS_ACTIONS:
        return FaultAction("status", status=_STATUS_ACTIONS[action])
    if action.startswith("delay:"):
        seconds = float(action.removeprefix("delay:"))
        if seconds < 0:
            raise ValueError("delay must not be negative")
        return FaultAction("delay", seconds=seconds)
    raise ValueError(
        f"unknown fault action {action!r}; use 'reset', 'corrupt', 'status:500', 'status:503' or 'delay:SECONDS'"
    )


class FaultPlan:
    """The queue of armed faults, shared by all handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[tuple[Fault, FaultAction]] = []

    def add(
        self, method: str | None, path_contains: str | None, query_contains: str | None, action: str, times: int
    ) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        parsed = parse_action(action)
        with self._lock:
            self._faults.append((Fault(method, path_contains, query_contains, action, times), parsed))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str, query: str) -> FaultAction | None:
        """The action for this request, if an armed fault matches (consuming one of its hits)."""
        with self._lock:
            for index, (fault, action) in enumerate(self._faults):
                if fault.matches(method, path, query):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        del self._faults[index]
                    return action
        return None
