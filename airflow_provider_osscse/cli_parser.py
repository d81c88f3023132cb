"""The ``osscse`` argument parser: every command, option and help text.

Why apart from :mod:`airflow_provider_osscse.cli`: the help is most of the command line's text and
none of its behaviour; keeping it here leaves ``cli.py`` to what the commands do. Building the
parser imports nothing heavy (no Airflow, no oss2), so ``--help`` and ``--version`` stay instant.
"""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from airflow_provider_osscse import __version__
from airflow_provider_osscse.cli_help import EPILOG, INTEGRITY_HELP, INVENTORY_DESCRIPTION, LS_DESCRIPTION
from airflow_provider_osscse.cli_inventory import concurrency_argument
from airflow_provider_osscse.cli_uploads import UPLOADS_DESCRIPTION, duration_argument


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter  # keeps the CMK reference table's lines
    parser = argparse.ArgumentParser(
        prog="osscse",
        description="Client-side encrypted Alibaba Cloud OSS objects (OSS CSE format), from a shell.",
        epilog=EPILOG,
        formatter_class=raw,
    )
    parser.add_argument("--version", action="version", version=f"osscse {__version__}", help="print the version")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--oss-conn-id",
        default="oss_default",
        metavar="ID",
        help="Airflow connection of the OSS endpoint and credentials (default oss_default): "
        "AIRFLOW_CONN_<ID>, the metadata DB or the configured secrets backend, as Airflow finds it",
    )
    chatter = common.add_mutually_exclusive_group()
    chatter.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="stderr shows only errors and integrity warnings (no progress, notes or log records)",
    )
    chatter.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more on stderr: -v INFO log records (progress, retries), -vv DEBUG",
    )
    reading = argparse.ArgumentParser(add_help=False)
    reading.add_argument(
        "--cmk",
        action="append",
        metavar="REF",
        help="CMK reference to decrypt with (repeatable: each object names its CMK in its headers, and the "
        "matching one is used; see below). Needed for every encrypted object",
    )
    reading.add_argument("--integrity", choices=["require", "if-present", "off"], default=None, help=INTEGRITY_HELP)
    reading.add_argument(
        "--allow-plaintext", action="store_true", help="read objects that are not encrypted as they are"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of:")

    def command(name: str, summary: str, description: str, *parents: argparse.ArgumentParser) -> Any:
        return sub.add_parser(
            name,
            parents=list(parents),
            help=summary,
            description="\n".join(  # prose wrapped; indented example lines kept whole for copying
                line if line.startswith(" ") else textwrap.fill(line, 88) for line in description.splitlines()
            ),
            epilog=EPILOG if any(p is reading for p in parents) or name in ("put", "rewrap") else None,
            formatter_class=raw,
        )

    p = command(
        "put",
        "encrypt and upload a file",
        "Encrypt SRC under a new data key wrapped by --cmk and upload it as one object.\n"
        "Example:\n  osscse put report.csv oss://my-bucket/reports/report.csv --cmk vault-transit://vault_default/transit/orders",
        common,
    )
    p.add_argument("src", metavar="SRC", help="local file ('-' for stdin)")
    p.add_argument("dest", metavar="oss://BUCKET/KEY", help="the object to write")
    p.add_argument("--cmk", required=True, metavar="REF", help="CMK reference that wraps the data key (see below)")
    p.add_argument("--meta", action="append", default=[], metavar="K=V", help="user metadata (repeatable)")
    p.add_argument(
        "--content-type",
        default=None,
        metavar="TYPE",
        help="the object's Content-Type, e.g. text/csv (default: application/octet-stream)",
    )
    p.add_argument(
        "--matdesc",
        action="append",
        default=[],
        metavar="K=V",
        help="material description entry written to the object's client-side-encryption-matdesc "
        "(repeatable); official SDK readers must then be built with the same matdesc. "
        "Default: the OSS connection's 'matdesc' extra, else none (what the official SDKs write)",
    )
    p.add_argument(
        "--unbound-tag",
        action="store_true",
        help="write an integrity tag that is NOT bound to this bucket and key. Gives up detection of "
        "the object being swapped, copied or replayed under another name (it still verifies "
        "there); only for objects that tools other than this provider copy or move",
    )

    p = command(
        "get",
        "download and decrypt to a file",
        "Download, decrypt and verify an object into DEST, like cp: DEST may be a file, an existing "
        "folder (the file takes the key's base name) or '-' (stdout). The file appears only once "
        "the object verified.",
        common,
        reading,
    )
    p.add_argument("src", metavar="oss://BUCKET/KEY", help="the object to read")
    p.add_argument("dest", metavar="DEST", help="file, existing folder, or '-' for stdout")
    p.add_argument("--force", action="store_true", help="replace DEST when it exists (default: refuse, exit 1)")

    p = command(
        "cat",
        "decrypt an object (or a range) to stdout",
        "Write the plaintext (or a byte range of it) to stdout.",
        common,
        reading,
    )
    p.add_argument("src", metavar="oss://BUCKET/KEY", help="the object to read")
    p.add_argument(
        "--range",
        default=None,
        metavar="a-b|a-|-n",
        help="only these plaintext bytes (0-based, inclusive: 0-99 the first 100, 100- from byte 100 on, "
        "-100 the last 100); under require the whole object's tag is verified first "
        "(the object is transferred once more than the range)",
    )

    p = command(
        "inspect",
        "describe an object's envelope (no decryption)",
        "Show what an object's headers say about its encryption: wrap and content algorithms, the CMK "
        "and its version, sizes, integrity tag, matdesc (as JSON), and the object's own user metadata "
        "(x-oss-meta-* other than the encryption headers, as JSON) and content type. Nothing is "
        "unwrapped or decrypted; no CMK is needed.\n"
        "A prefix (a key ending in '/', or none) describes every object under it, one line each as "
        "'ls -l' prints it (with --json, each object's JSON document on one line), from concurrent HEADs.\n"
        "Examples:\n  osscse inspect oss://my-bucket/reports/q1.csv\n  osscse inspect oss://my-bucket/reports/ --json",
        common,
    )
    p.add_argument(
        "src", metavar="oss://BUCKET/KEY_OR_PREFIX", help="the object to describe, or a prefix ending in '/'"
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (for scripts) instead of a table; for a prefix, one per line",
    )

    p = command("ls", "list keys under a prefix", LS_DESCRIPTION, common)
    p.add_argument("prefix", metavar="oss://BUCKET/PREFIX", help="bucket and key prefix (empty: the whole bucket)")
    p.add_argument(
        "-l", "--long", action="store_true", help="one line per object from its headers (concurrent HEADs; see above)"
    )

    p = command(
        "inventory", "list a prefix's objects with CMK, version and tag (headers only)", INVENTORY_DESCRIPTION, common
    )
    p.add_argument("prefix", metavar="oss://BUCKET/PREFIX", help="bucket and key prefix (empty: the whole bucket)")
    p.add_argument(
        "--format", choices=["jsonl", "csv"], default="jsonl", help="records (and the summary) as JSON or CSV"
    )
    p.add_argument(
        "--summary", action="store_true", help="print only the summary (counts per CMK and version), not the records"
    )
    p.add_argument(
        "--concurrency",
        type=concurrency_argument,
        default=8,
        metavar="N",
        help="HEAD requests in flight (1-64, default 8)",
    )
    p.add_argument(
        "--current-version",
        action="append",
        default=[],
        metavar="CMK=VERSION",
        help="the current version of a CMK (identity as in the cmk column, repeatable): its objects on "
        "another version are counted as stale in the summary",
    )

    p = command(
        "rewrap",
        "re-wrap data keys under a new CMK (content untouched)",
        "Re-wrap one object, or every object under a prefix (a key ending in '/'), under --cmk without "
        "re-encrypting. Prints one line per object (rewrapped, already-current, skipped, failed) and a "
        "summary; exits 1 if any object failed.",
        common,
    )
    p.add_argument("target", metavar="oss://BUCKET/KEY_OR_PREFIX", help="an object, or a prefix ending in '/'")
    p.add_argument("--cmk", required=True, metavar="NEW_REF", help="the CMK (reference) to wrap data keys under")
    p.add_argument(
        "--decrypt-cmk", action="append", metavar="OLD_REF", help="CMK that wrapped the objects (repeatable)"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="report what would be rewrapped (would-rewrap lines); change nothing"
    )
    p.add_argument(
        "--concurrency",
        type=concurrency_argument,
        default=8,
        metavar="N",
        help="objects in flight (1-64, default 8); key-service calls are batched per 128 objects",
    )

    p = command(
        "uploads",
        "list multipart uploads in progress; abort this provider's abandoned ones",
        UPLOADS_DESCRIPTION,
        common,
    )
    p.add_argument("prefix", metavar="oss://BUCKET/PREFIX", help="bucket and key prefix (empty: the whole bucket)")
    p.add_argument(
        "--abort",
        action="store_true",
        help="abort this provider's uploads idle for at least --older-than; other clients' uploads (no marker "
        "of this provider) are never aborted",
    )
    p.add_argument(
        "--older-than",
        type=duration_argument,
        default=None,
        metavar="DURATION",
        help="with --abort: only uploads to which no part was written for this long, e.g. 30m, 2h, 1h30m, 1d, "
        "0 for any (default 1h, so an upload a running task is still making is left alone)",
    )
    p.add_argument(
        "--json", action="store_true", help="one JSON document per upload (for scripts); the summary on stderr"
    )
    return parser
