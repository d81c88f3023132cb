"""Run the pieces of one transfer (upload parts, download ranges) in a bounded pool that fails fast.

Multipart uploads and parallel ranged downloads share the rule: at most ``max_workers`` pieces in
flight, so at most that many piece buffers exist however large the object is; the first piece that
still fails (after its own retries) stops new submissions, cancels what has not started, waits for
what has, and propagates unchanged, so the caller can abort or clean up knowing no worker still
writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from itertools import islice
from typing import TypeVar

Item = TypeVar("Item")


def run_bounded(
    task: Callable[[Item], None], items: Sequence[Item], *, max_workers: int, thread_name_prefix: str
) -> None:
    """``task(item)`` for every item, at most ``max_workers`` at a time; the first failure is raised.

    One worker (or one item) runs in the calling thread: no pool for what cannot overlap.
    """
    workers = max(1, min(max_workers, len(items)))
    if workers == 1:
        for item in items:
            task(item)
        return
    pending = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_name_prefix) as pool:
        in_flight: set[Future[None]] = {pool.submit(task, item) for item in islice(pending, workers)}
        while in_flight:
            done, in_flight = wait(in_flight, return_when=FIRST_EXCEPTION)
            for future in done:
                error = future.exception()
                if error is not None:
                    for other in in_flight:
                        other.cancel()
                    wait(in_flight)
                    raise error
            in_flight |= {pool.submit(task, item) for item in islice(pending, workers - len(in_flight))}
