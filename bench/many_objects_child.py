"""One measurement of ``bench/many_objects.py``, in a fresh process: many small objects, timed.

The parent passes a JSON spec (``--child SPEC``) and reads one JSON line back: per operation (one
child runs e.g. upload, read and download in turn, as one task would; a child per operation would
triple the Airflow import, ~1.3 s each, across ~80 measurements), the seconds it took, the process's
peak RSS so far, and what the servers counted during it (OSS requests by operation, KMS calls by
action, Vault calls from OpenBao's audit log). Imports, client and CMK set-up and one warm-up object
happen before any clock, alike for every tool.

The hook is built as a task builds it: ``import airflow.sdk`` first, then ``EncryptedOSSHook`` on the
connections given as ``AIRFLOW_CONN_<ID>`` JSON variables, one hook shared by every thread.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import resource
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from services import audit_offset, fetch_counts, vault_calls
from transfer_throughput import ACCESS_KEY_ID, ACCESS_KEY_SECRET, BUCKET, REGION, oss2_rsa_key_pair

#: The bulk hook API (issue 13) by operation; ``bulk_outcomes`` is the one place that calls it.
BULK_METHODS = {"upload": "upload_many", "read": "read_many", "download": "download_many", "rewrap": "rewrap_many"}

Op = Callable[[int, str], "str | None"]  # (index, object key) -> a status to count, or None


def bulk_outcomes(hook: Any, op: str, keys: Iterable[str], threads: int, data: bytes, workdir: str) -> Iterator[Any]:
    """The bulk API's call sites (names and shapes to adjust here when the API settles).

    Inputs are generators, so that 10,000 objects never sit in memory at once on our side. Uploads
    pass the one ``bytes`` object itself (its size is known without reading, so it can take the
    batched small-object path; every item shares it, nothing is copied)."""
    if op == "upload":
        return iter(hook.upload_many(((data, key) for key in keys), concurrency=threads))
    if op == "read":
        return iter(hook.read_many(keys, concurrency=threads))
    if op == "download":
        pairs = ((key, os.path.join(workdir, str(i))) for i, key in enumerate(keys))
        return iter(hook.download_many(pairs, concurrency=threads))
    if op == "rewrap":
        return iter(hook.rewrap_many(keys, concurrency=threads))
    raise ValueError(f"no bulk call for {op!r}")


def outcome_status(outcome: Any) -> str:
    """``failed`` for an exception or an outcome carrying an error; else its ``status``, else ``ok``."""
    if isinstance(outcome, BaseException) or getattr(outcome, "error", None) is not None:
        return "failed"
    if getattr(outcome, "ok", True) is False:
        return "failed"
    status = getattr(outcome, "status", None)
    return str(status) if status else "ok"


class ObjectKeys(Sequence[str]):
    """``PREFIX/000000`` ...: made on demand, so the harness holds no per-object state (memory row)."""

    def __init__(self, prefix: str, count: int) -> None:
        self.prefix, self.total = prefix, count

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, i: int) -> str:  # type: ignore[override]  # no slices needed here
        if not 0 <= i < self.total:
            raise IndexError(i)
        return f"{self.prefix}/{i:06d}"


def run_each(op: Op, keys: Sequence[str], threads: int) -> Counter[str]:
    """``op`` once per object: in this thread, or in ``threads`` workers pulling indices (no futures
    held, so memory does not grow with the object count). The first error stops every worker."""
    statuses: Counter[str] = Counter()
    if threads == 1:
        for i, key in enumerate(keys):
            statuses[op(i, key) or "ok"] += 1
        return statuses
    indices = itertools.count()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        mine: Counter[str] = Counter()
        while not errors:
            i = next(indices)
            if i >= len(keys):
                break
            try:
                mine[op(i, keys[i]) or "ok"] += 1
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                errors.append(exc)
        with lock:
            statuses.update(mine)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if errors:
        raise errors[0]
    return statuses


def oss2_ops(bucket: Any, data: bytes, workdir: str) -> dict[str, Op]:
    """Plain oss2 or ``CryptoBucket``: the same calls on either."""
    size = len(data)

    def read(i: int, key: str) -> None:
        if len(bucket.get_object(key).read()) != size:
            raise RuntimeError(f"{key}: wrong size")

    def floor(i: int, key: str) -> None:
        """Rotation's floor: a HEAD, then one copy onto itself that changes a metadata header."""
        bucket.head_object(key)
        headers = {"x-oss-metadata-directive": "REPLACE", "x-oss-meta-bench-rewrap": str(time.time_ns())}
        bucket.copy_object(BUCKET, key, key, headers=headers)

    def upload(i: int, key: str) -> None:
        bucket.put_object(key, data)

    def download(i: int, key: str) -> None:
        bucket.get_object_to_file(key, os.path.join(workdir, str(i)))

    return {"upload": upload, "read": read, "download": download, "floor": floor}


def hook_ops(hook: Any, data: bytes, workdir: str) -> dict[str, Op]:
    size = len(data)

    def read(i: int, key: str) -> None:
        if len(hook.read(key)) != size:
            raise RuntimeError(f"{key}: wrong size")

    def upload(i: int, key: str) -> None:
        hook.upload(io.BytesIO(data), key)

    def download(i: int, key: str) -> None:
        hook.download(key, os.path.join(workdir, str(i)))

    def rewrap(i: int, key: str) -> str:
        return str(hook.rewrap(key).status)

    return {"upload": upload, "read": read, "download": download, "rewrap": rewrap}


def make_client(spec: dict[str, Any], data: bytes) -> tuple[Any, dict[str, Op]]:
    """The client the tool names (before the clock) and its per-object operations."""
    workdir = spec["workdir"]
    if spec["kind"] == "hook":
        import airflow.sdk  # noqa: F401 - as in a task: Airflow is loaded before any hook

        from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
        from airflow_provider_osscse.keys.data_key_cache import DataKeyCacheLimits

        cache = DataKeyCacheLimits() if spec["cache"] else None
        hook = EncryptedOSSHook("oss_default", cmk=spec["cmk"], data_key_cache=cache)
        return hook, hook_ops(hook, data, workdir)
    import oss2

    auth = oss2.AuthV4(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    session = oss2.Session(pool_size=max(10, 2 * spec["threads"]))
    if spec["kind"] == "plain":
        bucket = oss2.Bucket(auth, spec["endpoint"], BUCKET, session=session, region=REGION)
    else:
        provider = oss2.RsaProvider(key_pair=oss2_rsa_key_pair(Path(spec["key_file"]).read_bytes()))
        bucket = oss2.CryptoBucket(
            auth, spec["endpoint"], BUCKET, crypto_provider=provider, region=REGION, session=session
        )
    return bucket, oss2_ops(bucket, data, workdir)


def child(spec: dict[str, Any]) -> None:
    """``spec["ops"]`` in turn (e.g. upload, read, download) over ``spec["objects"]`` objects, each
    timed and counted on its own; prints one JSON line: a report per operation."""
    spec["workdir"] = tempfile.mkdtemp(prefix="osscse-many-")
    data = os.urandom(spec["size"])
    client, ops = make_client(spec, data)
    keys = ObjectKeys(spec["prefix"], spec["objects"])
    phases, threads, bulk = spec["ops"], spec["threads"], spec["mode"] == "bulk"

    # Warm-up, off the clock: connections open, CMKs resolved, Airflow's connection lookups done.
    warm = f"warm/{spec['prefix']}"
    if "upload" in phases:
        ops["upload"](0, warm)
    if "read" in phases or "download" in phases:
        ops["read"](0, warm if "upload" in phases else keys[0])
    if "rewrap" in phases:
        ops["read"](0, keys[0])
    if "floor" in phases:
        client.head_object(keys[0])

    reports = []
    for phase in phases:
        before = _counts(spec)
        statuses: Counter[str] = Counter()
        start = time.perf_counter()
        if bulk:
            for outcome in bulk_outcomes(client, phase, (k for k in keys), threads, data, spec["workdir"]):
                statuses[outcome_status(outcome)] += 1
        else:
            statuses.update(run_each(ops[phase], keys, threads))
        seconds = time.perf_counter() - start
        after = _counts(spec)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        report = {"op": phase, "seconds": seconds, "peak_rss_kib": rss, "statuses": dict(statuses)}
        reports.append({**report, **count_deltas(spec, before, after)})
    shutil.rmtree(spec["workdir"], ignore_errors=True)
    print(json.dumps(reports))


def _counts(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "oss": fetch_counts(spec["oss_url"]),
        "kms": fetch_counts(spec["kms_url"]),
        "audit": audit_offset(spec["audit_log"]),
    }


def count_deltas(spec: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, int]]:
    """What the servers served between two ``_counts`` (OSS, KMS, Vault), by operation."""
    return {
        "oss": dict(after["oss"] - before["oss"]),
        "kms": dict(after["kms"] - before["kms"]),
        "vault": dict(vault_calls(spec["audit_log"], before["audit"], after["audit"])),
    }
