"""Command line: run a local KMS server until SIGTERM/SIGINT.

Prints exactly one line on stdout, the endpoint URL, once the server accepts requests; created key
ids go to stderr (``KEY_ID ALIAS``), so a parent process can read stdout without parsing.
"""

from __future__ import annotations

import argparse
import sys

from airflow_provider_osscse.testing.kms_server.errors import KMSServiceError
from airflow_provider_osscse.testing.kms_server.server import LocalKMSServer
from airflow_provider_osscse.testing.serving import serve_until_signal


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_osscse.testing.kms_server", description="Run a local Alibaba Cloud KMS."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--access-key-secret", required=True)
    parser.add_argument("--region", default="cn-hangzhou")
    parser.add_argument("--security-token", default=None)
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay every answer this long (a remote key service, for benches)"
    )
    parser.add_argument(
        "--create-key", action="append", default=[], metavar="alias/NAME", help="create a key with this alias"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = LocalKMSServer(
        args.access_key_id,
        args.access_key_secret,
        region=args.region,
        host=args.host,
        port=args.port,
        security_token=args.security_token,
        latency_seconds=args.latency_ms / 1000,
    )
    try:
        for alias in args.create_key:
            key_id = server.create_key(alias=alias)
            print(f"{key_id} {alias}", file=sys.stderr, flush=True)
    except KMSServiceError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    return serve_until_signal(lambda: server.start().url, server.stop)


if __name__ == "__main__":
    sys.exit(main())
