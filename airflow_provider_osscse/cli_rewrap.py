"""``osscse rewrap`` over a prefix: every object handled, each reported on one line, then a summary.

The hook's fleet rewrap (``rewrap_many``) does the work; this module says what happened to each
object as a shell user wants it: an object under another CMK is ``skipped`` (not a failure), a
failure is one line in the command's own words, and the exit status is non-zero only when something
failed. The lines are data (stdout):

    rewrapped oss://b/k: OLD_REF vN -> NEW_REF vM
    would-rewrap oss://b/k: OLD_REF vN -> NEW_REF vM        (--dry-run)
    already-current oss://b/k
    skipped oss://b/k: other CMK <identity> (not --cmk nor a --decrypt-cmk)
    failed oss://b/k: <why>
    N rewrapped, N already current, N skipped, N failed

Before the objects of a prefix, one line per multipart upload a killed rewrap left there, which this
run aborts first (see ``transport.abandoned_uploads``)::

    aborted-upload oss://b/k: rewrap upload UPLOAD_ID, initiated 2025-01-01T10:00:00Z
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from airflow_provider_osscse.cli_errors import describe
from airflow_provider_osscse.exceptions import NoMatchingKeyError

if TYPE_CHECKING:
    from airflow_provider_osscse.cli_terminal import CommandOutput
    from airflow_provider_osscse.hooks.encrypted_oss_operations import EncryptedOSSOperations


def cmk_text(reference: str | None, version: str | None) -> str:
    """``REF vN``: a bare number is shown as ``vN`` (Vault KV), ``vN`` as it is (Transit), other
    versions (a KMS ``KeyVersionId``) as they are; no version, just the reference."""
    ref = reference or "unknown CMK"
    if not version:
        return ref
    return f"{ref} v{version}" if version.isdigit() else f"{ref} {version}"


def rewrap_each(
    hook: EncryptedOSSOperations,
    bucket: str,
    keys: Iterable[str],
    *,
    new_cmk: str,
    dry_run: bool,
    concurrency: int,
    is_expected: Callable[[BaseException], bool],
    term: CommandOutput,
) -> int:
    """Re-wrap (or, with ``dry_run``, plan) every key, print one line each and the summary; exit status.

    A fleet operation (``hook.rewrap_many``): ``concurrency`` objects at a time, current objects
    skipped by their headers, key-service calls batched. The summary is printed also when there was
    nothing to do (``0 rewrapped, ...``), so a script always finds it as the last line."""
    _out = term.result
    counts: Counter[str] = Counter()
    for result in hook.rewrap_many(keys, bucket, new_cmk=new_cmk, dry_run=dry_run, concurrency=concurrency):
        uri, exc = result.uri, result.exception
        if isinstance(exc, NoMatchingKeyError):
            counts["skipped"] += 1
            _out(f"skipped {uri}: other CMK {_object_cmk(hook, result.key, bucket)} (not --cmk nor a --decrypt-cmk)")
            continue
        if exc is not None and not is_expected(exc):
            raise exc
        counts[result.status] += 1
        if result.status == "failed":
            why = describe(exc, "rewrap") if exc is not None else result.error  # remedies in rewrap's flags
            _out(f"failed {uri}: {why}")
        elif result.status == "already-current":
            _out(f"already-current {uri}")
        else:
            change = f"{cmk_text(result.from_cmk, result.from_version)} -> {cmk_text(result.to_cmk, result.to_version)}"
            _out(f"{result.status} {uri}: {change}")
    total = sum(counts.values())
    done = f"{counts['would-rewrap']} would be rewrapped" if dry_run else f"{counts['rewrapped']} rewrapped"
    _out(f"{done}, {counts['already-current']} already current, {counts['skipped']} skipped, {counts['failed']} failed")
    if counts["failed"]:
        term.error(f"{counts['failed']} of {total} object(s) could not be rewrapped")
    return 1 if counts["failed"] else 0


def abort_abandoned_rewraps(hook: EncryptedOSSOperations, bucket: str, prefix: str, *, term: CommandOutput) -> None:
    """Abort the ``rewrap`` uploads a killed run left under ``prefix`` and say so, one line each (an
    abort that failed on stderr: the rewrap goes on, and a later run or ``osscse uploads --abort``
    tries again)."""
    from airflow_provider_osscse.transport.abandoned_uploads import iso_utc

    for outcome in hook.multipart_uploads.abort_abandoned_rewraps(prefix, bucket=bucket):
        upload = outcome.upload
        what = f"rewrap upload {upload.upload_id}, initiated {iso_utc(upload.initiated)}"
        if outcome.status == "aborted":
            term.result(f"aborted-upload {upload.uri}: {what}")
        else:
            term.error(f"{upload.uri}: could not abort the abandoned {what}: {outcome.error}")


def _object_cmk(hook: EncryptedOSSOperations, key: str, bucket: str) -> str:
    """The CMK the object's headers name (identity, else wrap-alg), for the ``skipped`` line."""
    try:
        info = hook.inspect(key, bucket)
    except Exception:  # noqa: BLE001 - only decorates the line; the skip stands whatever happens here
        return "(unreadable headers)"
    return info.cmk or f"(wrap-alg {info.wrap_alg})"
