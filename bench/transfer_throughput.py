"""Encrypted transfer throughput and peak client memory against a local OSS server in its own process.

    python bench/transfer_throughput.py --sizes 256M,2G [--part-size 8M] [--workers 4] [--repeat 3] [--dir DIR]

Why it is built this way: a benchmark that shares a process with the server measures the server's
memory and GIL contention too. So the local OSS server runs as a separate process (with a data dir,
so bytes hit the disk like a real store), and every (tool, size, direction) is a fresh client
subprocess whose peak RSS (``ru_maxrss`` of that child, from ``os.wait4``) is the whole client:
interpreter, imports and transfer. Its time is the transfer itself (imports and key loading are done
before the clock starts, equally for every tool). Each measurement is repeated; the table shows the
best and the median MiB/s, ratios use the best.

Tools, all with the same part size and thread count unless noted:

``plain``          oss2 ``resumable_upload`` / ``resumable_download`` on a plain ``Bucket`` (no encryption)
``ours``           ``EncryptedObjects.put`` / ``.download`` (AES-CTR + integrity tag, verified before rename)
``ours-stream``    download only through ``EncryptedObjects.stream`` written to a file: the verify-first stream
                   (ciphertext spooled while the tag is checked, then decrypted for the consumer)
``cryptobucket``   oss2 ``resumable_upload`` / ``resumable_download`` on a ``CryptoBucket`` (multipart,
                   threads: CryptoBucket's like-for-like equivalent; no integrity tag)
``cb-single``      ``CryptoBucket.put_object_from_file`` / ``get_object_to_file`` (one request, one thread)

Every tool keeps oss2's default CRC64 check on (a plain ``Bucket`` and ``CryptoBucket`` both do).
Client and server share the machine's cores, so the numbers are relative, not absolute.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BUCKET = "bench"
ACCESS_KEY_ID = "bench-ak"
ACCESS_KEY_SECRET = "bench-secret"  # noqa: S105 - credential of the throw-away local OSS server
REGION = "cn-hangzhou"
TOOLS = ("plain", "ours", "ours-stream", "cryptobucket", "cb-single")
DIRECTIONS = ("upload", "download")


def parse_size(text: str) -> int:
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    text = text.strip().upper()
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def make_file(path: Path, size: int) -> None:
    """Incompressible input: a 4 MiB random block repeated (nothing here compresses anyway)."""
    block = os.urandom(4 * 2**20)
    with open(path, "wb") as handle:
        left = size
        while left:
            n = min(left, len(block))
            handle.write(block[:n])
            left -= n


# --------------------------------------------------------------------------- child (one measurement)
def oss2_rsa_key_pair(pem: bytes) -> dict[str, str]:
    """The ``key_pair`` oss2's ``RsaProvider`` takes (PKCS#8 private, SubjectPublicKeyInfo public PEM),
    from the hook's ``rsa-file`` PEM: CryptoBucket and the hook then use the same RSA key."""
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(pem, password=None)
    return {
        "private_key": private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "public_key": private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    }


def child(args: argparse.Namespace) -> None:
    """One (tool, direction) in a fresh process; prints the seconds the transfer took."""
    import oss2

    part, workers = parse_size(args.part_size), args.workers
    auth = oss2.AuthV4(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    session = oss2.Session(pool_size=2 * workers)
    bucket = oss2.Bucket(auth, args.endpoint, BUCKET, session=session, region=REGION)
    pem = Path(args.key_file).read_bytes()
    tool, direction, key, path = args.tool, args.direction, args.key, args.path
    store_root = tempfile.mkdtemp(prefix="osscse-bench-store-")

    def resumable(target):
        """oss2's multipart transfer (same part size and threads for every tool) on ``target``."""
        if direction == "upload":
            return lambda: oss2.resumable_upload(
                target,
                key,
                path,
                multipart_threshold=part,
                part_size=part,
                num_threads=workers,
                store=oss2.ResumableStore(root=store_root),
            )
        return lambda: oss2.resumable_download(
            target,
            key,
            path,
            multiget_threshold=part,
            part_size=part,
            num_threads=workers,
            store=oss2.ResumableDownloadStore(root=store_root),
        )

    if tool in ("ours", "ours-stream"):
        from airflow_provider_osscse.keys.local_rsa import LocalRsaKey
        from airflow_provider_osscse.transport.encrypted_objects import EncryptedObjects, TransferConfig

        cmk = LocalRsaKey(private_key_pem=pem, reference="rsa-bench")
        cmk.unwrap(cmk.new_data_key()[1])  # warm-up: the first unwrap may import Airflow's secrets masker
        objects = EncryptedObjects(
            lambda _name: bucket, TransferConfig(multipart_threshold=part, part_size=part, max_workers=workers)
        )

        def stream_to_file() -> None:
            with open(path, "wb") as handle:
                handle.writelines(objects.stream(key, cmk))

        if direction == "upload":
            run = lambda: objects.put(key, path, cmk)  # noqa: E731
        elif tool == "ours-stream":
            run = stream_to_file
        else:
            run = lambda: objects.download(key, path, cmk)  # noqa: E731
    elif tool == "plain":
        run = resumable(bucket)
    else:
        provider = oss2.RsaProvider(key_pair=oss2_rsa_key_pair(pem))
        crypto = oss2.CryptoBucket(
            auth, args.endpoint, BUCKET, crypto_provider=provider, region=REGION, session=session
        )
        if tool == "cryptobucket":
            run = resumable(crypto)
        else:
            run = (
                (lambda: crypto.put_object_from_file(key, path))
                if direction == "upload"
                else (lambda: crypto.get_object_to_file(key, path))
            )
    import resource

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    run()
    elapsed = time.perf_counter() - start
    shutil.rmtree(store_root, ignore_errors=True)
    print(json.dumps({"seconds": elapsed, "rss_before_kib": rss_before}))


# --------------------------------------------------------------------------- parent
@dataclass
class Sample:
    seconds: float
    peak_rss_kib: int
    rss_before_kib: int  # peak RSS when the clock started: interpreter, imports, key loading


def _popen_wait4(argv: list[str]) -> Sample:
    """Popen + wait4 ourselves (Popen.communicate would reap the child and lose its rusage)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, __file__, *argv], stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"benchmark child {argv[:4]} failed:\n{err.read().decode()[-3000:]}")
        report = json.loads(out.read().decode().strip().splitlines()[-1])
    return Sample(seconds=report["seconds"], peak_rss_kib=usage.ru_maxrss, rss_before_kib=report["rss_before_kib"])


class ServerProcess:
    """``python -m airflow_provider_osscse.testing.oss_server`` with a data dir, stopped by its PID."""

    def __init__(self, data_dir: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow_provider_osscse.testing.oss_server",
                "--access-key-id",
                ACCESS_KEY_ID,
                "--access-key-secret",
                ACCESS_KEY_SECRET,
                "--region",
                REGION,
                "--data-dir",
                data_dir,
                "--bucket",
                BUCKET,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,  # clients closing keep-alives log resets
        )
        line = self.proc.stdout.readline().strip()  # type: ignore[union-attr]
        if not line.startswith("http"):
            self.stop()
            raise SystemExit(f"local OSS server did not start (printed {line!r})")
        self.endpoint = line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import cryptography
    import oss2

    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}, oss2 {oss2.__version__}, cryptography {cryptography.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256M", help="comma-separated sizes, e.g. 256M,2G")
    parser.add_argument("--part-size", default="8M")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="runs per (tool, size, direction)")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--dir", default=None, help="where the source file and server data dir go")
    parser.add_argument("--json", default=None, help="also write the raw samples here")
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "DIRECTION"), help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--key-file", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.tool, args.direction = args.child
        child(args)
        return

    tools = [t for t in args.tools.split(",") if t]
    print(f"# {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}  {machine()}")
    print(
        f"# part size {args.part_size}, {args.workers} threads, best/median of {args.repeat}; the local OSS "
        f"server is a separate process with a data dir, sharing the same {os.cpu_count()} cores as the client"
    )
    results: dict[tuple[str, str, str], list[Sample]] = {}
    with tempfile.TemporaryDirectory(prefix="osscse-bench-", dir=args.dir) as tmp:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key_file = Path(tmp) / "cmk.pem"
        key_file.write_bytes(
            rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        server = ServerProcess(os.path.join(tmp, "data"))
        try:
            for size_text in filter(None, args.sizes.split(",")):
                src, out = Path(tmp) / "src.bin", Path(tmp) / "out.bin"
                make_file(src, parse_size(size_text))
                for _ in range(args.repeat):
                    for tool in tools:  # interleaved, so drift in the machine's load hits every tool alike
                        common = [
                            "--endpoint",
                            server.endpoint,
                            "--key-file",
                            str(key_file),
                            "--part-size",
                            args.part_size,
                            "--workers",
                            str(args.workers),
                            "--key",
                            f"{tool}-{size_text}",
                        ]
                        up = _popen_wait4(["--child", tool, "upload", "--path", str(src), *common])
                        down = _popen_wait4(["--child", tool, "download", "--path", str(out), *common])
                        if out.stat().st_size != src.stat().st_size:
                            raise SystemExit(f"{tool} downloaded {out.stat().st_size} bytes, not {src.stat().st_size}")
                        out.unlink()
                        results.setdefault((tool, size_text, "upload"), []).append(up)
                        results.setdefault((tool, size_text, "download"), []).append(down)
                src.unlink()
                _delete_objects(server.endpoint, [f"{tool}-{size_text}" for tool in tools])
        finally:
            server.stop()
    print_table(results, tools, args)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"|".join(k): [s.__dict__ for s in v] for k, v in results.items()}, indent=1)
        )


def _delete_objects(endpoint: str, keys: list[str]) -> None:
    """Free the server's disk before the next size."""
    import oss2

    bucket = oss2.Bucket(oss2.AuthV4(ACCESS_KEY_ID, ACCESS_KEY_SECRET), endpoint, BUCKET, region=REGION)
    for key in keys:
        bucket.delete_object(key)


def print_table(results: dict[tuple[str, str, str], list[Sample]], tools: list[str], args: argparse.Namespace) -> None:
    sizes = list(dict.fromkeys(k[1] for k in results))
    print(
        f"\n{'size':<6}{'direction':<10}{'tool':<14}{'best MiB/s':>11}{'median':>9}{'peak RSS MiB':>14}"
        f"{'+transfer':>11}"
        f"{'ours/plain':>12}{'ours/CB':>9}{'ours/CB-1':>11}"
    )
    for size_text in sizes:
        mib = parse_size(size_text) / 2**20
        for direction in DIRECTIONS:
            best = {
                t: mib / min(s.seconds for s in results[(t, size_text, direction)])
                for t in tools
                if (t, size_text, direction) in results
            }
            for tool in tools:
                samples = results.get((tool, size_text, direction))
                if not samples:
                    continue
                median = mib / statistics.median(s.seconds for s in samples)
                rss = max(s.peak_rss_kib for s in samples) / 1024
                grown = max(s.peak_rss_kib - s.rss_before_kib for s in samples) / 1024
                ratios = ""
                if tool.startswith("ours"):
                    ratios = "".join(
                        f"{best[tool] / best[o]:>{w}.2f}" if o in best else f"{'-':>{w}}"
                        for o, w in (("plain", 12), ("cryptobucket", 9), ("cb-single", 11))
                    )
                print(
                    f"{size_text:<6}{direction:<10}{tool:<14}{best[tool]:>11.1f}{median:>9.1f}{rss:>14.1f}{grown:>11.1f}{ratios}"
                )


if __name__ == "__main__":
    main()
