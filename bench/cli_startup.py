"""How long ``osscse`` takes from the shell prompt to done, for one small operation.

Issue 11's budget: ``osscse inspect`` of one object and ``osscse put`` of a 1 KiB file within 1.5 s
wall on the project's 2-core machines. Side by side, in the same run, with what bounds them from below:
``python -c 'import oss2'`` (the interpreter and the OSS SDK, which every command needs) and
``osscse --help`` (the console script without any work). Also shown: the same ``inspect`` with the
connection in URI form, which ``osscse`` leaves to Airflow to read (the Airflow import is the
difference), and ``put`` under a KMS CMK (the local KMS server; the Alibaba Cloud KMS SDK and its
aiohttp cost about a second to import, outside the budget, which names no CMK).

Every row is a fresh child process (what a shell user pays), timed from spawn to exit, repeated
(``--repeat``, interleaved); peak RSS is the child's ``ru_maxrss``. The local OSS and KMS servers run
as their own processes.

    .venv/bin/python bench/cli_startup.py --repeat 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from transfer_throughput import ACCESS_KEY_ID, ACCESS_KEY_SECRET, BUCKET, REGION, ServerProcess, machine

BUDGET_S = 1.5
BIN = Path(sys.executable).parent


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process; raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err}")
    return elapsed, usage.ru_maxrss / 1024


class KmsProcess:
    """``python -m airflow_provider_osscse.testing.kms_server`` with one key ``alias/bench``."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow_provider_osscse.testing.kms_server",
                "--access-key-id",
                ACCESS_KEY_ID,
                "--access-key-secret",
                ACCESS_KEY_SECRET,
                "--create-key",
                "alias/bench",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.endpoint = (self.proc.stdout.readline() if self.proc.stdout else "").strip()
        if not self.endpoint.startswith("http"):
            self.stop()
            raise SystemExit("local KMS server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def connections(oss_endpoint: str, kms_endpoint: str) -> dict[str, str]:
    oss_extra = {
        "access_key_id": ACCESS_KEY_ID,
        "access_key_secret": ACCESS_KEY_SECRET,
        "region": REGION,
        "endpoint": oss_endpoint,
    }
    kms_host = kms_endpoint.split("://", 1)[1]
    kms = {
        "conn_type": "alicloud_kms",
        "login": ACCESS_KEY_ID,
        "password": ACCESS_KEY_SECRET,
        "extra": {"region": REGION, "endpoint": kms_host, "protocol": "http"},
    }
    return {
        "AIRFLOW_CONN_OSS_DEFAULT": json.dumps({"conn_type": "oss_cse", "schema": BUCKET, "extra": oss_extra}),
        "AIRFLOW_CONN_OSS_URI": f"oss-cse://localhost/{BUCKET}?{urlencode(oss_extra)}",
        "AIRFLOW_CONN_KMS_DEFAULT": json.dumps(kms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="osscse-cli-bench-") as tmp:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        pem = Path(tmp) / "cmk.pem"
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
        pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        small = Path(tmp) / "kib.bin"
        small.write_bytes(os.urandom(1024))
        oss = ServerProcess(os.path.join(tmp, "data"))
        kms = KmsProcess()
        try:
            home = Path(tmp) / "airflow-home"
            home.mkdir()
            env = {**os.environ, "AIRFLOW_HOME": str(home), **connections(oss.endpoint, kms.endpoint)}
            osscse = str(BIN / "osscse")
            target = f"oss://{BUCKET}/startup/kib.bin"
            timed([osscse, "put", str(small), target, "--cmk", f"rsa-file://{pem}"], env)  # the object inspected
            rows: dict[str, list[str]] = {
                "python -c 'import oss2'": [sys.executable, "-c", "import oss2"],
                "osscse --help": [osscse, "--help"],
                "osscse inspect (JSON conn)": [osscse, "inspect", target],
                "osscse put 1 KiB, rsa-file CMK": [osscse, "put", str(small), target, "--cmk", f"rsa-file://{pem}"],
                "osscse put 1 KiB, kms CMK": [
                    osscse,
                    "put",
                    str(small),
                    target,
                    "--cmk",
                    "kms://kms_default/alias/bench",
                ],
                "osscse inspect (URI conn: Airflow reads it)": [osscse, "inspect", target, "--oss-conn-id", "oss_uri"],
            }
            samples: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
            for _ in range(args.repeat):
                for name, argv in rows.items():  # interleaved: drift hits every row alike
                    samples[name].append(timed(argv, env))
        finally:
            kms.stop()
            oss.stop()

    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine()}, repeat {args.repeat}")
    print(f"{'command':<46} {'best s':>7} {'median s':>9} {'peak RSS MiB':>13}  budget")
    for name, values in samples.items():
        walls = [w for w, _ in values]
        budget = ""
        if name.startswith(("osscse inspect (JSON", "osscse put 1 KiB, rsa")):
            budget = f"{'ok' if statistics.median(walls) <= BUDGET_S else 'OVER'} (<= {BUDGET_S} s)"
        rss = max(r for _, r in values)
        print(f"{name:<46} {min(walls):>7.2f} {statistics.median(walls):>9.2f} {rss:>13.1f}  {budget}")


if __name__ == "__main__":
    main()
