"""The one bounded, fail-fast pool behind multipart uploads, parallel downloads and MAC passes, and
the one range cutter behind parallel downloads."""

from __future__ import annotations

import threading
import time

import pytest

from airflow_provider_osscse.envelope.multipart import split_range
from airflow_provider_osscse.exceptions import PartPlanError
from airflow_provider_osscse.transport.parallel import run_bounded


def test_every_item_runs_once_with_at_most_max_workers_in_flight() -> None:
    lock = threading.Lock()
    running, peak, seen = 0, 0, []

    def task(item: int) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.005)
        with lock:
            running -= 1
            seen.append(item)

    run_bounded(task, range(40), max_workers=3, thread_name_prefix="test")
    assert sorted(seen) == list(range(40)) and peak <= 3


def test_the_first_failure_stops_new_submissions_and_propagates_unchanged() -> None:
    started: list[int] = []
    boom = OSError("part 2 failed after its retries")

    def task(item: int) -> None:
        started.append(item)
        if item == 2:
            raise boom
        time.sleep(0.01)

    with pytest.raises(OSError, match="part 2 failed") as info:
        run_bounded(task, range(1, 1001), max_workers=4, thread_name_prefix="test")
    assert info.value is boom and len(started) < 20


def test_one_worker_runs_in_the_calling_thread() -> None:
    threads: set[str] = set()
    run_bounded(
        lambda _: threads.add(threading.current_thread().name), range(5), max_workers=1, thread_name_prefix="test"
    )
    assert threads == {threading.current_thread().name}


def test_no_items_is_no_work() -> None:
    run_bounded(lambda _: pytest.fail("called"), [], max_workers=4, thread_name_prefix="test")


def test_a_range_is_cut_into_inclusive_pieces_with_the_last_short() -> None:
    assert split_range(0, 249, 100) == [(0, 99), (100, 199), (200, 249)]
    assert split_range(10, 19, 5) == [(10, 14), (15, 19)]
    assert split_range(0, -1, 100) == []
    with pytest.raises(PartPlanError, match="piece size must be > 0"):
        split_range(0, 10, 0)
