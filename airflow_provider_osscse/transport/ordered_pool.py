"""Run a task per item on a bounded pool, results in the items' order, memory bounded by a window.

Every many-object operation (inventory, bulk upload/read/download/rewrap) is this one idea: at most
``window`` items taken from a lazy source and not yet yielded, whatever the number of objects, so a
listing of millions is consumed only as fast as results are, and memory stays flat. No oss2 and no
I/O here, so the command line and DAG parsing can import it cheaply.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

#: Objects in flight by default: enough to hide a round trip, few enough for a shared OSS endpoint.
DEFAULT_CONCURRENCY = 8
#: Above this, threads cost more than they save (and exceed the oss2 connection pool).
MAX_CONCURRENCY = 64


def ordered_bounded_map(
    task: Callable[[Item], Result],
    items: Iterable[Item],
    *,
    concurrency: int,
    window: int | None = None,
    thread_name_prefix: str = "osscse-inventory",
    inline_when_single: bool = True,
) -> Generator[Result, None, None]:
    """``task(item)`` for every item on ``concurrency`` threads, yielded in the items' order.

    At most ``window`` (default ``2 * concurrency``) items are taken from ``items`` and not yet
    yielded, so memory is bounded by the window whatever the number of items, and ``items`` (a lazy
    listing) is consumed only as fast as results are. A task's exception is raised when its result
    is due. Closing the iterator early cancels what has not started and waits for what has.

    With one thread the tasks run inline on the caller's thread (no hand-off per item), unless
    ``inline_when_single`` is false: then one worker runs them, so that producing the next items
    (a bulk operation's next group: its GETs and key-service call) overlaps with the tasks.
    """
    if concurrency == 1 and inline_when_single:  # nothing to overlap: no pool, no hand-off per item
        for item in items:
            yield task(item)
        return
    window = window or 2 * concurrency
    pending: deque[Future[Result]] = deque()
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=thread_name_prefix)
    try:
        for item in items:
            if len(pending) >= window:
                yield pending.popleft().result()
            pending.append(pool.submit(task, item))
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
