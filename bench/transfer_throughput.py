"""Encrypted transfer throughput and peak memory against the local OSS server (one run, same file).

    python bench/transfer_throughput.py --size 256M [--memory-sizes 256M,2G] [--workers 4] [--part-size 8M]

Compares, on the same file and server (with a data dir, so bytes hit the disk like a real store):
``EncryptedObjects`` upload/download vs plain oss2 ``resumable_upload``/``resumable_download`` (same
part size and threads) vs oss2 ``CryptoBucket`` ``put_object_from_file``/``get_object_to_file``.
Peak memory (ru_maxrss) of an encrypted upload + download is measured in a fresh subprocess per size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import oss2

from airflow_provider_osscse.keys.local_rsa import LocalRsaKey
from airflow_provider_osscse.testing.oss_server import LocalOSSServer
from airflow_provider_osscse.transport.encrypted_objects import EncryptedObjects, TransferConfig
from airflow_provider_osscse.transport.oss_client import OssClientFactory, OssSettings

BUCKET = "bench"


def parse_size(text: str) -> int:
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def make_file(path: Path, size: int) -> None:
    block = os.urandom(4 * 2**20)
    with open(path, "wb") as handle:
        left = size
        while left:
            n = min(left, len(block))
            handle.write(block[:n])
            left -= n


def start_server(data_dir: str) -> LocalOSSServer:
    server = LocalOSSServer(access_key_id="bench-ak", access_key_secret="bench-secret", region="cn-hangzhou",
                            data_dir=data_dir)
    server.start()
    server.create_bucket(BUCKET)
    return server


def settings_for(server: LocalOSSServer) -> OssSettings:
    return OssSettings.from_connection_fields(BUCKET, {
        "access_key_id": server.access_key_id, "access_key_secret": server.access_key_secret,
        "region": server.region, "endpoint": server.endpoint})


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def throughput(args: argparse.Namespace) -> dict[str, float]:
    size, part, workers = parse_size(args.size), parse_size(args.part_size), args.workers
    with tempfile.TemporaryDirectory(prefix="osscse-bench-") as tmp:
        server = start_server(os.path.join(tmp, "data"))
        try:
            src = Path(tmp) / "src.bin"
            make_file(src, size)
            settings = settings_for(server)
            factory = OssClientFactory(settings, pool_size=2 * workers)
            bucket = factory.bucket()
            cmk = LocalRsaKey.generate(reference="rsa-bench")
            objects = EncryptedObjects(factory.bucket, TransferConfig(multipart_threshold=part, part_size=part,
                                                                      max_workers=workers))
            crypto = oss2.CryptoBucket(settings.make_auth(), settings.resolved_endpoint, BUCKET,
                                       crypto_provider=oss2.RsaProvider(key_pair=_oss2_pair(cmk)),
                                       region=settings.region)
            out = Path(tmp) / "out.bin"
            res = {
                "plain_upload": timed(lambda: oss2.resumable_upload(bucket, "plain", str(src), multipart_threshold=part,
                                                                    part_size=part, num_threads=workers,
                                                                    store=oss2.ResumableStore(root=tmp))),
                "plain_download": timed(lambda: oss2.resumable_download(bucket, "plain", str(out), multiget_threshold=part,
                                                                        part_size=part, num_threads=workers,
                                                                        store=oss2.ResumableDownloadStore(root=tmp))),
                "encrypted_upload": timed(lambda: objects.put(None, "enc", str(src), cmk)),
                "encrypted_download": timed(lambda: objects.download(None, "enc", out, cmk)),
                "cryptobucket_upload": timed(lambda: crypto.put_object_from_file("cb", str(src))),
                "cryptobucket_download": timed(lambda: crypto.get_object_to_file("cb", str(out))),
            }
        finally:
            server.stop()
    mib = size / 2**20
    report = {k: round(mib / v, 1) for k, v in res.items()}  # MiB/s
    report["encrypted_vs_plain_upload"] = round(res["plain_upload"] / res["encrypted_upload"], 2)
    report["encrypted_vs_plain_download"] = round(res["plain_download"] / res["encrypted_download"], 2)
    return report


def _oss2_pair(cmk: LocalRsaKey) -> dict[str, str]:
    return {"private_key": cmk.private_key_pem().decode(), "public_key": cmk.public_key_pem().decode()}


def memory_child(size_text: str, part_text: str, workers: int) -> None:
    """Run in a subprocess: encrypted upload + download of ``size``; print peak RSS in MiB."""
    size, part = parse_size(size_text), parse_size(part_text)
    with tempfile.TemporaryDirectory(prefix="osscse-mem-") as tmp:
        server = start_server(os.path.join(tmp, "data"))
        try:
            src = Path(tmp) / "src.bin"
            make_file(src, size)
            factory = OssClientFactory(settings_for(server), pool_size=2 * workers)
            objects = EncryptedObjects(factory.bucket, TransferConfig(multipart_threshold=part, part_size=part,
                                                                      max_workers=workers))
            cmk = LocalRsaKey.generate(reference="rsa-bench")
            objects.put(None, "mem", str(src), cmk)
            objects.download(None, "mem", Path(tmp) / "out.bin", cmk)
        finally:
            server.stop()
    print(json.dumps({"size": size_text, "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="256M")
    parser.add_argument("--part-size", default="8M")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--memory-sizes", default="256M,2G")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.part_size, args.workers)
        return
    print(json.dumps({"throughput_MiB_per_s": throughput(args)}, indent=2))
    for size in filter(None, args.memory_sizes.split(",")):
        run = subprocess.run([sys.executable, __file__, "--memory-child", size, "--part-size", args.part_size,
                              "--workers", str(args.workers)], capture_output=True, text=True, check=True)
        print(run.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
