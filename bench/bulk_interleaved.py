"""Bulk API against plain oss2 and CryptoBucket in ONE process, rounds interleaved: the tight check.

    .venv/bin/python bench/bulk_interleaved.py [--objects 1000] [--rounds 4] [--concurrency 1] [--cmk rsa|transit]

``many_objects.py`` runs every (tool, thread count) in a fresh process, which is the honest shape of
a task but lets the VM's drift between children (±20 % on this shared 2-core machine) decide close
rows. This script answers one question more tightly: in the same process, round after round, how
does ``upload_many`` / ``read_many`` / ``download_many`` (at ``--concurrency``) compare with a plain
oss2 loop and a ``CryptoBucket`` + ``RsaProvider`` loop (one thread each, as the issue's one-thread
rows) over the same objects? Each round times the three tools back to back in each direction, so
drift hits them alike; it prints objects/s and the ratios per round, then the median ratio.

The local OSS server runs in its own process with an on-disk store; with ``--cmk transit`` an
OpenBao dev server too (the hook's CMK is then ``vault-transit://``, one batch call per 128 objects).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from services import CountedServer, write_rsa_key
from transfer_throughput import ACCESS_KEY_ID, ACCESS_KEY_SECRET, BUCKET, REGION, oss2_rsa_key_pair

DIRECTIONS = ("upload", "read", "download")


def _crypto_bucket(endpoint: str, key_file: str) -> Any:
    import oss2

    pair = oss2_rsa_key_pair(Path(key_file).read_bytes())
    auth = oss2.AuthV4(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    return oss2.CryptoBucket(
        auth, endpoint, BUCKET, crypto_provider=oss2.RsaProvider(key_pair=pair), region=REGION, session=oss2.Session()
    )


def _all_ok(outcomes: Iterable[Any]) -> None:
    for outcome in outcomes:
        if not outcome.ok:
            raise SystemExit(f"{outcome.key}: {outcome.error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--cmk", choices=("rsa", "transit"), default="rsa")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="osscse-interleaved-") as tmp:
        key_file = os.path.join(tmp, "cmk.pem")
        write_rsa_key(key_file)
        server = CountedServer("oss", "--data-dir", os.path.join(tmp, "store"), "--bucket", BUCKET)
        bao = None
        try:
            os.environ["AIRFLOW_CONN_OSS_DEFAULT"] = json.dumps(
                {
                    "conn_type": "oss_cse",
                    "schema": BUCKET,
                    "extra": {
                        "access_key_id": ACCESS_KEY_ID,
                        "access_key_secret": ACCESS_KEY_SECRET,
                        "region": REGION,
                        "endpoint": server.url,
                    },
                }
            )
            cmk = f"rsa-file://{key_file}"
            if args.cmk == "transit":
                from airflow_provider_osscse.testing.openbao import OpenBaoServer, airflow_connection_json

                bao = OpenBaoServer().start()
                bao.client().sys.enable_secrets_engine("transit")
                bao.client().secrets.transit.create_key("bench")
                os.environ["AIRFLOW_CONN_VAULT_DEFAULT"] = airflow_connection_json(bao)
                cmk = "vault-transit://vault_default/transit/bench"
            import airflow.sdk  # noqa: F401 - as in a task: Airflow is loaded before any hook
            import oss2

            from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

            hook = EncryptedOSSHook("oss_default", cmk=cmk)
            plain = oss2.Bucket(oss2.AuthV4(ACCESS_KEY_ID, ACCESS_KEY_SECRET), server.url, BUCKET, region=REGION)
            crypto = _crypto_bucket(server.url, key_file)
            data, workdir = os.urandom(args.size), os.path.join(tmp, "files")
            os.makedirs(workdir)
            keys = [f"obj/{i:07d}" for i in range(args.objects)]
            c = args.concurrency
            ops: dict[str, dict[str, Callable[[], object]]] = {
                "plain": {
                    "upload": lambda: [plain.put_object(f"p/{k}", data) for k in keys],
                    "read": lambda: [plain.get_object(f"p/{k}").read() for k in keys],
                    "download": lambda: [
                        plain.get_object_to_file(f"p/{k}", f"{workdir}/p{i}") for i, k in enumerate(keys)
                    ],
                },
                "cryptobucket": {
                    "upload": lambda: [crypto.put_object(f"c/{k}", data) for k in keys],
                    "read": lambda: [crypto.get_object(f"c/{k}").read() for k in keys],
                    "download": lambda: [
                        crypto.get_object_to_file(f"c/{k}", f"{workdir}/c{i}") for i, k in enumerate(keys)
                    ],
                },
                "bulk": {
                    "upload": lambda: _all_ok(hook.upload_many(((data, f"h/{k}") for k in keys), concurrency=c)),
                    "read": lambda: _all_ok(hook.read_many((f"h/{k}" for k in keys), concurrency=c)),
                    "download": lambda: _all_ok(
                        hook.download_many(((f"h/{k}", f"{workdir}/h{i}") for i, k in enumerate(keys)), concurrency=c)
                    ),
                },
            }
            # Warm-up, off the clock: connections open, the CMK resolved (round 1's uploads make the objects).
            list(hook.upload_many([(data, "warm")], concurrency=c))
            hook.read("warm")
            ratios: dict[str, list[tuple[float, float]]] = {d: [] for d in DIRECTIONS}
            print(f"# {args.objects} × {args.size} B, bulk concurrency {c}, CMK {args.cmk}; objects/s per round")
            for round_number in range(1, args.rounds + 1):
                for direction in DIRECTIONS:
                    rate = {}
                    for name, tool in ops.items():
                        start = time.perf_counter()
                        tool[direction]()
                        rate[name] = args.objects / (time.perf_counter() - start)
                    vs_cb, vs_plain = rate["bulk"] / rate["cryptobucket"], rate["bulk"] / rate["plain"]
                    ratios[direction].append((vs_cb, vs_plain))
                    rates = "  ".join(f"{name} {value:6.1f}" for name, value in rate.items())
                    print(f"round {round_number} {direction:8} {rates}   vs CB {vs_cb:4.2f}  vs plain {vs_plain:4.2f}")
            for direction in DIRECTIONS:
                cb = statistics.median(r[0] for r in ratios[direction])
                pl = statistics.median(r[1] for r in ratios[direction])
                print(f"median   {direction:8} vs CB {cb:4.2f}  vs plain {pl:4.2f}")
        finally:
            if bao is not None:
                bao.stop()
            server.stop()


if __name__ == "__main__":
    main()
