"""``make demo``: run the four example DAGs against local OSS, KMS and OpenBao servers and show the result.

Everything lives under ``.demo/`` in the repository (gitignored): the OSS server's data directory,
an isolated AIRFLOW_HOME, the SQLite source database and the input/output files. ``.demo/`` is wiped
at the start of each run (OpenBao runs in memory, so old objects' keys would be gone anyway) and
kept afterwards for inspection. Every process started here is stopped in ``finally``, also on
Ctrl-C or SIGTERM.

For each DAG it prints the objects written, the first bytes at rest next to the plaintext's (hex),
the envelope headers, the CMK and its version, and what was verified.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / ".demo"
BUCKET = os.environ.get("OSSCSE_DEMO_BUCKET", "osscse-demo")
HEADER_PREFIX = "x-oss-meta-client-side-encryption-"


def _load_seed() -> ModuleType:
    spec_path = Path(__file__).with_name("demo_seed.py")
    spec = importlib.util.spec_from_file_location("osscse_demo_seed", spec_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {spec_path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _configure_environment() -> None:
    """Before Airflow is imported: its home, DAGs folder and the DAGs' embedded-default overrides."""
    os.environ.update(
        {
            "AIRFLOW_HOME": str(DEMO / "airflow-home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "OSSCSE_DEMO_BUCKET": BUCKET,
            "OSSCSE_DEMO_INPUT_DIR": str(DEMO / "input"),
            "OSSCSE_DEMO_OUTPUT_DIR": str(DEMO / "output"),
            "OSSCSE_DEMO_WORK_DIR": str(DEMO / "etl"),
        }
    )


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _say(text: str = "") -> None:
    print(text, flush=True)


def _short(value: str, width: int = 60) -> str:
    return value if len(value) <= width else value[: width - 3] + "..."


def describe_objects(server: Any, hook: Any, keys: list[str]) -> None:
    """Per object: ciphertext vs plaintext first bytes, envelope headers, CMK and version."""
    for key in keys:
        stored = server.stored_object(BUCKET, key)
        info = hook.inspect(key, BUCKET)
        # A whole read: under the default policy (require) its tag is verified before any byte is
        # returned; the demo's objects are small, so reading them whole costs nothing.
        plaintext = hook.read(key, BUCKET)
        plain_head = bytes(plaintext[:16])
        _say(f"  oss://{BUCKET}/{key}  ({info.plaintext_size} bytes)")
        _say(f"    at rest   : {stored.data[:16].hex(' ')}")
        _say(f"    plaintext : {plain_head.hex(' ')}")
        for name, value in sorted(stored.metadata.items()):
            if name.startswith((HEADER_PREFIX, "x-oss-meta-osscse")):
                _say(f"    {name.removeprefix('x-oss-meta-'):<48} {_short(value)}")
        status = getattr(plaintext, "integrity", None)
        _say(
            f"    CMK {info.cmk}  version {info.key_version or '-'}  wrap {info.wrap_alg}  "
            f"integrity tag {'yes' if info.integrity_tag else 'no'}, read "
            f"{getattr(status, 'value', status) or '?'}"
        )


def run_dag(dagbag: Any, dag_id: str, **kwargs: Any) -> bool:
    started = time.monotonic()
    run = dagbag.get_dag(dag_id).test(**kwargs)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    ok = str(run.state) == "success"
    _say(
        f"  run {run.run_id}: {run.state} in {time.monotonic() - started:.1f}s  "
        + ", ".join(f"{t}={s}" for t, s in states.items())
    )
    return ok


def main() -> int:
    _configure_environment()
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir(parents=True)
    seed = _load_seed()
    signal.signal(signal.SIGTERM, _raise_interrupt)

    from airflow_provider_osscse.testing.kms_server import LocalKMSServer
    from airflow_provider_osscse.testing.openbao import OpenBaoServer
    from airflow_provider_osscse.testing.oss_server import LocalOSSServer
    from airflow_provider_osscse.testing.pytest_plugin import REGION, airflow_connection_env, new_access_key

    services: list[Any] = []
    failures: list[str] = []
    try:
        _say("Starting local OSS, local KMS and OpenBao ...")
        # Random credentials per run, as in the test suite: the services listen on loopback, where
        # any local process could use a fixed, published secret.
        oss = LocalOSSServer(*new_access_key(), region=REGION, data_dir=DEMO / "oss-data")
        oss.start()
        services.append(oss)
        kms = LocalKMSServer(*new_access_key(), region=REGION)
        kms.start()
        services.append(kms)
        bao = OpenBaoServer()
        bao.start()
        services.append(bao)
        _say(f"  OSS {oss.endpoint}   KMS {kms.endpoint}   OpenBao {bao.address}")

        os.environ.update(airflow_connection_env(oss, bao, kms, bucket=BUCKET))
        vault = bao.client()
        seed.ensure_bucket(oss.endpoint, oss.access_key_id, oss.access_key_secret, oss.region, BUCKET)
        seed.ensure_transit_key(vault)
        seed.ensure_kv_rsa_key(vault)
        os.environ["AIRFLOW_CONN_VAULT_DECRYPT"] = seed.vault_connection_json(
            bao.address, seed.decrypt_only_token(vault)
        )
        seed.create_sqlite_orders(DEMO / "orders.db", seed.order_rows(dt.date(2024, 1, 1), 3, per_day=5))
        os.environ["AIRFLOW_CONN_OSSCSE_EXPORT_DB"] = seed.sqlite_connection_json(DEMO / "orders.db")
        inputs = seed.write_input_files(DEMO / "input")
        _say(
            f"  seeded: bucket {BUCKET}, Transit key transit/{seed.TRANSIT_KEY}, RSA key in KV "
            f"secret/{seed.KV_PATH}, a read-only Vault token, {len(inputs)} input files, orders.db"
        )

        _say("airflow db migrate (SQLite, .demo/airflow-home) ...")
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ.copy()
        )

        from airflow.dag_processing.dagbag import DagBag

        from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

        dagbag = DagBag(dag_folder=str(REPO / "dags"))
        if dagbag.import_errors:
            raise RuntimeError(f"DAG import errors: {dagbag.import_errors}")
        transit = "vault-transit://vault_default/transit/osscse-demo"
        reader = EncryptedOSSHook(
            "oss_default", decrypt_cmks=[transit, "vault-kv://vault_decrypt/secret/osscse/etl-rsa"]
        )

        _say("\n== encrypted_transfer: local files -> Vault Transit -> sensor -> decrypted download ==")
        if not run_dag(dagbag, "encrypted_transfer"):
            failures.append("encrypted_transfer")
        describe_objects(oss, reader, list(reader.list_keys("transfer/", BUCKET)))
        _say("  verified: the downloaded files' SHA-256 equal the inputs' (task compare_checksums)")

        _say("\n== compliance_export: one encrypted CSV per day (SQLite, data-interval SQL) ==")
        for day in (2, 3, 4):  # a manual run covers the whole day before its logical date
            if not run_dag(dagbag, "compliance_export", logical_date=dt.datetime(2024, 1, day, tzinfo=dt.UTC)):
                failures.append(f"compliance_export 2024-01-0{day}")  # noqa: PERF401 - run_dag runs the DAG
        export_keys = sorted(reader.list_keys("exports/", BUCKET))
        describe_objects(oss, reader, export_keys[:1])
        for key in export_keys:
            _say(f"  {key}: {len(reader.read(key, BUCKET).splitlines()) - 1} rows")

        _say("\n== vault_key_custody_etl: RSA CMK in Vault KV; read back with a decrypt-only token ==")
        if not run_dag(dagbag, "vault_key_custody_etl"):
            failures.append("vault_key_custody_etl")
        describe_objects(oss, reader, list(reader.list_keys("etl/", BUCKET)))
        _say("  verified: decrypted through vault_decrypt (read-only policy) to the transformed file's bytes")

        _say("\n== cmk_rotation: rotate the Transit key, rewrap transfer/, prove old objects still decrypt ==")
        before = {
            k: (reader.inspect(k, BUCKET).key_version, hashlib.sha256(reader.read(k, BUCKET)).hexdigest())
            for k in reader.list_keys("transfer/", BUCKET)
        }
        if not run_dag(dagbag, "cmk_rotation"):
            failures.append("cmk_rotation")
        for key, (version, digest) in before.items():
            after = reader.inspect(key, BUCKET).key_version
            same = hashlib.sha256(reader.read(key, BUCKET)).hexdigest() == digest
            _say(f"  {key}: {version} -> {after}, decrypts to the same bytes: {same}")
            if not same:
                failures.append(f"cmk_rotation {key}")
        _say(f"\nOutputs kept in {DEMO}")
    except KeyboardInterrupt:
        _say("\nInterrupted; stopping services ...")
        return 130
    finally:
        for service in reversed(services):
            try:
                service.stop()
            except Exception as exc:  # noqa: BLE001 - whatever one service raises, keep stopping the others
                _say(f"  could not stop {type(service).__name__}: {exc}")
    if failures:
        _say(f"FAILED: {', '.join(failures)}")
        return 1
    _say("All four example DAGs succeeded; no service left running.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
