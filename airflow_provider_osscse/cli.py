"""``osscse``: the hook's operations from a shell, using Airflow connections by id.

Airflow is imported only when a command runs (``--help`` stays fast). Expected failures (a missing
object, a wrong key, a tampered object, a bad connection) print one line on stderr and exit 1;
usage errors exit 2 (argparse). A progress bar is drawn on stderr only when it is a terminal.

Reads follow the hook's integrity policy: ``--integrity`` when given, else the OSS connection's
``integrity`` extra, else ``require``. So by default an untagged or altered object fails (exit 1)
before any plaintext reaches stdout or DEST, and a read that was *not* verified (``if-present`` on
an untagged object, ``off``, an unverifiable range) always says so on stderr: a shell user sees no
log records, only what this module prints.

Next to it: :mod:`~airflow_provider_osscse.cli_parser` (options and help), ``cli_help`` (the CMK
reference forms), ``cli_paths`` (``get``'s destination, decided like ``cp`` before any transfer),
``cli_rewrap`` (per-object lines and the summary of a prefix rewrap), ``cli_terminal`` (stdout/stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_osscse.cli_parser import build_parser
from airflow_provider_osscse.cli_paths import STDOUT, download_destination, object_key
from airflow_provider_osscse.cli_rewrap import rewrap_each
from airflow_provider_osscse.cli_terminal import (
    TerminalBar,
    move_log_handlers_off_stdout,
    reserve_stdout_for_data,
    restore_log_handlers,
)
from airflow_provider_osscse.exceptions import OSSCSEError, UnauthenticatedObjectError, UsageError
from airflow_provider_osscse.transport.results import ObjectInfo, oss_uri

if TYPE_CHECKING:
    from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook


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


#: Appended to a refused untagged read when the error does not already name the CLI's option.
_ACCEPT_UNTAGGED = "pass --integrity if-present to read it anyway (unauthenticated)"


def _status_text(status: object) -> str:
    """``verified`` / ``unauthenticated`` / ``skipped`` from an ``IntegrityStatus`` or its string."""
    return str(getattr(status, "value", status))


def _warn_unverified(uri: str, status: object) -> bool:
    """One stderr line for a read whose plaintext was not authenticated; returns whether it warned.

    The reader logs the same at WARNING, but a shell user does not see Airflow's log records (they
    may go nowhere, or to stdout, which ``cat`` reserves for data), so the CLI says it itself.
    """
    text = _status_text(status)
    if status is None or text == "verified":
        return False
    why = {
        "unauthenticated": "it has no integrity tag and was read because of --integrity if-present",
        "skipped": "integrity verification was skipped (--integrity off, a byte range, or a plaintext object)",
    }.get(text, f"integrity status {text}")
    print(f"osscse: warning: {uri} is UNAUTHENTICATED: {why}; its content may have been altered", file=sys.stderr)
    return True


def _hook(args: argparse.Namespace, bar: TerminalBar | None = None, **kwargs: Any) -> EncryptedOSSHook:
    from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

    hook = EncryptedOSSHook(args.oss_conn_id, progress_callback=bar, **kwargs)
    move_log_handlers_off_stdout()
    return hook


def _emit(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(payload, indent=2, sort_keys=True))
    else:
        width = max(len(k) for k in payload) if payload else 0
        for name, value in payload.items():
            # Mappings (matdesc, user_metadata) as JSON, so a script can parse the value back.
            shown = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
            print(f"{name:<{width}}  {shown}")


def parse_object_uri(uri: str) -> tuple[str, str]:
    """``oss://bucket/key`` naming one object: a usage error (exit 2) without a key."""
    bucket, key = parse_oss_uri(uri)
    return bucket, object_key(key, uri)


def cmd_put(args: argparse.Namespace, bar: TerminalBar) -> int:
    bucket, key = parse_object_uri(args.dest)
    matdesc = _meta(args.matdesc, "--matdesc") if args.matdesc else None  # None: the connection's extra
    hook = _hook(args, bar, cmk=args.cmk, matdesc=matdesc, bind_integrity_tag=not args.unbound_tag)
    result = hook.upload(args.src, key, bucket, metadata=_meta(args.meta), content_type=args.content_type)
    bar.close()
    print(result.uri)
    return 0


def _reading_hook(args: argparse.Namespace, bar: TerminalBar | None) -> EncryptedOSSHook:
    """The hook of ``get``/``cat``: the first ``--cmk`` and the others as decrypt CMKs, the integrity flags."""
    cmks = args.cmk or []
    return _hook(
        args,
        bar,
        cmk=cmks[0] if cmks else None,
        decrypt_cmks=cmks[1:],
        integrity=args.integrity,
        allow_plaintext=args.allow_plaintext,
    )


def cmd_get(args: argparse.Namespace, bar: TerminalBar) -> int:
    """Like ``cp``: into a folder under the key's base name, ``-`` to stdout, no overwrite without ``--force``."""
    bucket, key = parse_object_uri(args.src)
    if args.dest == STDOUT:
        args.range = None
        return cmd_cat(args, bar)
    dest = download_destination(args.dest, key, force=args.force)  # before any transfer
    hook = _reading_hook(args, bar)
    result = hook.download(key, dest, bucket)
    bar.close()
    _warn_unverified(result.uri, result.integrity)
    print(f"{result.path} ({result.size} bytes, integrity {_status_text(result.integrity)})", file=sys.stderr)
    return 0


def cmd_cat(args: argparse.Namespace, bar: TerminalBar) -> int:
    bucket, key = parse_object_uri(args.src)
    hook = _reading_hook(args, None)
    out = getattr(args, "data_out", None) or sys.stdout.buffer
    with hook.stream(key, bucket, byte_range=args.range) as stream:
        # An unverified read is announced before its first byte (its status is known up front); a
        # verified one has status None until the first chunk, which comes only after the tag verified.
        warned = _warn_unverified(stream.uri, stream.integrity)
        size = 0
        for chunk in stream:
            out.write(chunk)
            size += len(chunk)
        out.flush()
        status, uri = stream.integrity, stream.uri
    if not warned:
        _warn_unverified(uri, status)
    print(
        f"osscse: {uri}: {size} bytes, integrity {_status_text(status) if status is not None else 'unknown'}",
        file=sys.stderr,
    )
    return 0


def cmd_inspect(args: argparse.Namespace, bar: TerminalBar) -> int:
    bucket, key = parse_object_uri(args.src)
    _emit(_hook(args).inspect(key, bucket).to_xcom(), args.json)
    return 0


def _long_line(info: ObjectInfo) -> str:
    """``ls -l``'s columns: size (plaintext bytes when known), encrypted, CMK, CMK version, tag, URI."""
    size = info.plaintext_size if info.plaintext_size is not None else info.ciphertext_size
    tag = ("bound" if info.integrity_bound else "unbound") if info.integrity_tag else "none"
    encrypted = "yes" if info.encrypted else "no"
    return f"{size:>12}  {encrypted:<3}  {info.cmk or '-'}  {info.key_version or '-'}  {tag:<7}  {info.uri}"


def cmd_ls(args: argparse.Namespace, bar: TerminalBar) -> int:
    bucket, prefix = parse_oss_uri(args.prefix)
    hook = _hook(args)
    failed = 0
    for key in hook.list_keys(prefix, bucket):
        if not args.long:
            print(f"oss://{bucket}/{key}")
            continue
        try:
            info = hook.inspect(key, bucket)  # one HEAD per object; nothing unwrapped
        except OSSCSEError as exc:  # e.g. malformed envelope headers: say so, list the rest
            failed += 1
            print(f"osscse: {oss_uri(bucket, key)}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        print(_long_line(info))
    return 1 if failed else 0


def cmd_rewrap(args: argparse.Namespace, bar: TerminalBar) -> int:
    bucket, target = parse_oss_uri(args.target)
    hook = _hook(args, cmk=args.cmk, decrypt_cmks=args.decrypt_cmk or [])
    keys = (
        [target]
        if target and not target.endswith("/") and hook.exists(target, bucket)
        else list(hook.list_keys(target, bucket))
    )
    if not keys:
        print(f"osscse: no objects under {args.target}; nothing to rewrap", file=sys.stderr)
        return 0
    return rewrap_each(hook, bucket, keys, new_cmk=args.cmk, dry_run=args.dry_run, is_expected=_is_expected)


#: The function of each command; ``main`` dispatches on ``args.command``.
COMMANDS: dict[str, Callable[[argparse.Namespace, TerminalBar], int]] = {
    "put": cmd_put,
    "get": cmd_get,
    "cat": cmd_cat,
    "inspect": cmd_inspect,
    "ls": cmd_ls,
    "rewrap": cmd_rewrap,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``osscse`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if getattr(args, "src", None) == "-" and args.command == "put":
        args.src = sys.stdin.buffer
    bar = TerminalBar()
    to_stdout = args.command == "cat" or (args.command == "get" and args.dest == STDOUT)
    saved_stdout = reserve_stdout_for_data(args) if to_stdout else None
    try:
        return COMMANDS[args.command](args, bar)
    except UsageError as exc:
        print(f"osscse: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("osscse: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not _is_expected(exc):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if _is_refused_unauthenticated(exc) and "--integrity if-present" not in message:
            message = f"{message}; {_ACCEPT_UNTAGGED}"
        print(f"osscse: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1
    finally:
        bar.close()
        restore_log_handlers()
        if saved_stdout is not None:
            sys.stdout.flush()  # log lines buffered meanwhile belong on stderr too
            os.dup2(saved_stdout, 1)
            os.close(saved_stdout)


def _is_refused_unauthenticated(exc: BaseException) -> bool:
    """An object (or a range) refused because it cannot be verified under ``require``."""
    return isinstance(exc, UnauthenticatedObjectError)


def _is_expected(exc: BaseException) -> bool:
    """Our errors, oss2's service errors, Airflow's missing connection, and file system errors."""
    if isinstance(exc, (OSSCSEError, OSError)) or type(exc).__module__.startswith("oss2"):
        return True  # decided without Airflow: a refused DEST fails before Airflow is imported (or logs)
    # Imported here: Airflow loads only when a command runs. (airflow.exceptions re-exports this class.)
    from airflow.sdk.exceptions import AirflowNotFoundException

    return isinstance(exc, AirflowNotFoundException)


if __name__ == "__main__":
    sys.exit(main())
