"""``osscse``: the hook's operations from a shell, using Airflow connections by id.

stdout is data: ``cat`` bytes, ``--json`` documents and the one-line results of ``put``/``get``/
``ls``/``inspect``/``rewrap``; everything else (log records, notes, warnings, the progress bar, which
is drawn only on a terminal) goes to stderr (``cli_terminal.CommandOutput``). Expected failures (a
missing object, a wrong key, a tampered object, a bad connection) print one line on stderr and exit 1;
usage errors exit 2, an interruption 130.

Airflow is imported only when a connection must be read through it (a URI or metadata-DB
connection, a secrets backend, a Vault CMK): ``cli_connections`` reads JSON ``AIRFLOW_CONN_<ID>``
variables itself, so ``inspect``, and ``put`` with a KMS or RSA CMK, start in well under a second.

Reads follow the hook's integrity policy: ``--integrity`` when given, else the OSS connection's
``integrity`` extra, else ``require``. So by default an untagged or altered object fails (exit 1)
before any plaintext reaches stdout or DEST, and a read that was *not* verified (``if-present`` on
an untagged object, ``off``, an unverifiable range) always says so on stderr: a shell user sees no
log records, only what this module prints.

Next to it: :mod:`~airflow_provider_osscse.cli_parser` (options and help), ``cli_help`` (the CMK
reference forms), ``cli_paths`` (``get``'s destination, decided like ``cp`` before any transfer),
``cli_rewrap`` (per-object lines and the summary of a prefix rewrap), ``cli_inventory`` (``inventory``
and ``inspect`` of a prefix: the hook's inventory stream), ``cli_uploads`` (``uploads``: multipart
uploads in progress, this provider's abandoned ones aborted), ``cli_terminal`` (stdout/stderr),
``cli_connections`` (connections as Airflow finds them, without importing it when possible).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_osscse.cli_errors import describe
from airflow_provider_osscse.cli_errors import is_expected as _is_expected
from airflow_provider_osscse.cli_inventory import inspect_each, inventory_each, names_prefix
from airflow_provider_osscse.cli_parser import build_parser
from airflow_provider_osscse.cli_paths import STDOUT, download_destination, object_key
from airflow_provider_osscse.cli_rewrap import abort_abandoned_rewraps, rewrap_each
from airflow_provider_osscse.cli_terminal import CommandOutput
from airflow_provider_osscse.cli_uploads import uploads_each
from airflow_provider_osscse.envelope.integrity import UNVERIFIED_READ_RECORD
from airflow_provider_osscse.exceptions import UsageError
from airflow_provider_osscse.transport.results import ObjectInfo, oss_uri

if TYPE_CHECKING:
    from airflow_provider_osscse.hooks.encrypted_oss_operations import EncryptedOSSOperations


def parse_oss_uri(uri: str) -> tuple[str, str]:
    """``oss://bucket/key`` -> ``(bucket, key)`` (key may be empty, e.g. a prefix)."""
    if not uri.startswith("oss://"):
        raise UsageError(f"expected oss://BUCKET/KEY, got {uri!r}")
    bucket, _, key = uri[len("oss://") :].partition("/")
    if not bucket:
        raise UsageError(f"no bucket in {uri!r}")
    return bucket, key


def _meta(pairs: Sequence[str], option: str = "--meta") -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"{option} expects K=V, got {pair!r}")
        out[name] = value
    return out


def _status_text(status: object) -> str:
    """``verified`` / ``unauthenticated`` / ``skipped`` from an ``IntegrityStatus`` or its string."""
    return str(getattr(status, "value", status))


def _warn_unverified(term: CommandOutput, uri: str, status: object) -> bool:
    """One stderr line for a read whose plaintext was not authenticated; returns whether it warned.

    The reader logs the same at WARNING, but log records depend on the verbosity (``-q`` hides them),
    and this warning must never be silent, so the CLI says it itself.
    """
    text = _status_text(status)
    if status is None or text == "verified":
        return False
    why = {
        "unauthenticated": "it has no integrity tag and was read because of --integrity if-present",
        "skipped": "integrity verification was skipped (--integrity off, a byte range, or a plaintext object)",
    }.get(text, f"integrity status {text}")
    term.warning(f"{uri} is UNAUTHENTICATED: {why}; its content may have been altered")
    return True


def _hook(args: argparse.Namespace, term: CommandOutput | None = None, **kwargs: Any) -> EncryptedOSSOperations:
    """The hook's operations on ``--oss-conn-id``, with the connections ``osscse`` reads (no Airflow
    import unless one needs it) and the progress bar when there is one."""
    from airflow_provider_osscse.cli_connections import CommandLineOSS

    return CommandLineOSS(args.oss_conn_id, progress_callback=term.bar if term else None, **kwargs)


def _emit(term: CommandOutput, payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        term.result(json.dumps(payload, indent=2, sort_keys=True))
    else:
        width = max(len(k) for k in payload) if payload else 0
        for name, value in payload.items():
            # Mappings (matdesc, user_metadata) as JSON, so a script can parse the value back.
            shown = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
            term.result(f"{name:<{width}}  {shown}")


def parse_object_uri(uri: str) -> tuple[str, str]:
    """``oss://bucket/key`` naming one object: a usage error (exit 2) without a key."""
    bucket, key = parse_oss_uri(uri)
    return bucket, object_key(key, uri)


def cmd_put(args: argparse.Namespace, term: CommandOutput) -> int:
    bucket, key = parse_object_uri(args.dest)
    matdesc = _meta(args.matdesc, "--matdesc") if args.matdesc else None  # None: the connection's extra
    hook = _hook(args, term, cmk=args.cmk, matdesc=matdesc, bind_integrity_tag=not args.unbound_tag)
    result = hook.upload(args.src, key, bucket, metadata=_meta(args.meta), content_type=args.content_type)
    term.bar.close()
    term.result(result.uri)
    return 0


def _reading_hook(args: argparse.Namespace, term: CommandOutput | None) -> EncryptedOSSOperations:
    """The hook of ``get``/``cat``: the first ``--cmk`` and the others as decrypt CMKs, the integrity flags."""
    cmks = args.cmk or []
    return _hook(
        args,
        term,
        cmk=cmks[0] if cmks else None,
        decrypt_cmks=cmks[1:],
        integrity=args.integrity,
        allow_plaintext=args.allow_plaintext,
    )


def cmd_get(args: argparse.Namespace, term: CommandOutput) -> int:
    """Like ``cp``: into a folder under the key's base name, ``-`` to stdout, no overwrite without ``--force``."""
    bucket, key = parse_object_uri(args.src)
    if args.dest == STDOUT:
        args.range = None
        return cmd_cat(args, term)
    dest = download_destination(args.dest, key, force=args.force)  # before any transfer
    hook = _reading_hook(args, term)
    result = hook.download(key, dest, bucket)
    term.bar.close()
    _warn_unverified(term, result.uri, result.integrity)
    term.result(f"{result.path} ({result.size} bytes, integrity {_status_text(result.integrity)})")
    return 0


def cmd_cat(args: argparse.Namespace, term: CommandOutput) -> int:
    bucket, key = parse_object_uri(args.src)
    hook = _reading_hook(args, None)
    out = term.data
    with hook.stream(key, bucket, byte_range=args.range) as stream:
        # An unverified read is announced before its first byte (its status is known up front); a
        # verified one has status None until the first chunk, which comes only after the tag verified.
        warned = _warn_unverified(term, stream.uri, stream.integrity)
        size = 0
        for chunk in stream:
            out.write(chunk)
            size += len(chunk)
        out.flush()
        status, uri = stream.integrity, stream.uri
    if not warned:
        _warn_unverified(term, uri, status)
    term.note(f"{uri}: {size} bytes, integrity {_status_text(status) if status is not None else 'unknown'}")
    return 0


def cmd_inspect(args: argparse.Namespace, term: CommandOutput) -> int:
    """One object as a table (or ``--json`` document); a prefix (``oss://B/P/``) one line per object."""
    bucket, key = parse_oss_uri(args.src)
    if names_prefix(key):
        return inspect_each(_hook(args), bucket, key, as_json=args.json, line=_long_line, term=term)
    _emit(term, _hook(args).inspect(key, bucket).to_xcom(), args.json)
    return 0


def cmd_inventory(args: argparse.Namespace, term: CommandOutput) -> int:
    bucket, prefix = parse_oss_uri(args.prefix)
    current = _meta(args.current_version, "--current-version")
    return inventory_each(
        _hook(args, max_workers=args.concurrency),  # the connection pool sized for the HEADs in flight
        bucket,
        prefix,
        fmt=args.format,
        summary_only=args.summary,
        concurrency=args.concurrency,
        current_versions=current,
        term=term,
    )


def _long_line(info: ObjectInfo) -> str:
    """``ls -l``'s columns: size (plaintext bytes when known), encrypted, CMK, CMK version, tag, URI."""
    size = info.plaintext_size if info.plaintext_size is not None else info.ciphertext_size
    tag = ("bound" if info.integrity_bound else "unbound") if info.integrity_tag else "none"
    encrypted = "yes" if info.encrypted else "no"
    return f"{size:>12}  {encrypted:<3}  {info.cmk or '-'}  {info.key_version or '-'}  {tag:<7}  {info.uri}"


def cmd_ls(args: argparse.Namespace, term: CommandOutput) -> int:
    bucket, prefix = parse_oss_uri(args.prefix)
    hook = _hook(args)
    if args.long:  # the inventory's stream: concurrent HEADs, listing order, an unreadable one on stderr
        return inspect_each(hook, bucket, prefix, as_json=False, line=_long_line, term=term, note_empty=False)
    for key in hook.list_keys(prefix, bucket):
        term.result(oss_uri(bucket, key))
    return 0


def cmd_rewrap(args: argparse.Namespace, term: CommandOutput) -> int:
    bucket, target = parse_oss_uri(args.target)
    hook = _hook(args, cmk=args.cmk, decrypt_cmks=args.decrypt_cmk or [])
    single = bool(target) and not target.endswith("/") and hook.exists(target, bucket)
    if not single and not args.dry_run:  # first, the rewrap uploads a killed run left under the prefix
        abort_abandoned_rewraps(hook, bucket, target, term=term)
    listed = [target] if single else hook.list_keys(target, bucket)
    seen = False

    def keys() -> Iterator[str]:  # streamed from the listing: constant memory for any prefix
        nonlocal seen
        for key in listed:
            seen = True
            yield key

    status = rewrap_each(
        hook,
        bucket,
        keys(),
        new_cmk=args.cmk,
        dry_run=args.dry_run,
        concurrency=args.concurrency,
        is_expected=_is_expected,
        term=term,
    )
    if not seen:
        term.note(f"no objects under {args.target}; nothing to rewrap")
    return status


def cmd_uploads(args: argparse.Namespace, term: CommandOutput) -> int:
    bucket, prefix = parse_oss_uri(args.prefix)
    if args.older_than is not None and not args.abort:
        raise UsageError("--older-than chooses which uploads --abort aborts; add --abort (or drop --older-than)")
    hook = _hook(args)
    return uploads_each(
        hook, bucket, prefix, abort=args.abort, older_than=args.older_than, as_json=args.json, term=term
    )


#: The function of each command; ``main`` dispatches on ``args.command``.
COMMANDS: dict[str, Callable[[argparse.Namespace, CommandOutput], int]] = {
    "put": cmd_put,
    "get": cmd_get,
    "cat": cmd_cat,
    "inspect": cmd_inspect,
    "ls": cmd_ls,
    "rewrap": cmd_rewrap,
    "inventory": cmd_inventory,
    "uploads": cmd_uploads,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``osscse`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if getattr(args, "src", None) == "-" and args.command == "put":
        args.src = sys.stdin.buffer
    with CommandOutput(-1 if args.quiet else args.verbose) as term:
        # Unverified reads are announced by the command itself (_warn_unverified), also under -q.
        term.drop_records(UNVERIFIED_READ_RECORD, "airflow_provider_osscse.envelope.reader", "airflow_provider_osscse")
        return _run(args, term)


def _run(args: argparse.Namespace, term: CommandOutput) -> int:
    """The command, with its exit status: 0 done, 1 an expected failure (one line), 2 usage, 130 interrupted."""
    try:
        return COMMANDS[args.command](args, term)
    except UsageError as exc:
        term.error(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        term.error("interrupted")
        return 130
    except BrokenPipeError:  # the reader of stdout went away (e.g. `osscse cat ... | head`)
        term.discard_data()
        return 141
    except Exception as exc:
        if not _is_expected(exc):
            raise
        term.error(describe(exc, args.command))  # one line, the remedy in this command's flags
        return 1


if __name__ == "__main__":
    sys.exit(main())
