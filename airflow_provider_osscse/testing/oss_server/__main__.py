"""Command line: run a local OSS server until SIGTERM/SIGINT, printing its endpoint once ready.

    python -m airflow_provider_osscse.testing.oss_server --access-key-id AK --access-key-secret SK \
        [--host 127.0.0.1] [--port 0] [--region cn-hangzhou] [--data-dir DIR] [--bucket NAME ...]
"""

from __future__ import annotations

import argparse
import sys

from ..serving import serve_until_signal
from .server import LocalOSSServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_osscse.testing.oss_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--access-key-secret", required=True)
    parser.add_argument("--security-token", default=None, help="also require this STS token")
    parser.add_argument("--region", default="cn-hangzhou")
    parser.add_argument("--data-dir", default=None, help="keep objects on disk here (default: in memory)")
    parser.add_argument("--bucket", action="append", default=[], help="create this bucket (repeatable)")
    args = parser.parse_args(argv)

    server = LocalOSSServer(
        args.access_key_id,
        args.access_key_secret,
        region=args.region,
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        security_token=args.security_token,
    )
    for bucket in args.bucket:
        server.create_bucket(bucket)
    return serve_until_signal(lambda: server.start().endpoint, server.stop)


if __name__ == "__main__":
    sys.exit(main())
