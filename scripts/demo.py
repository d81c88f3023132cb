"""``make demo``: run the four example DAGs against local OSS, KMS and OpenBao servers and show the result.

Everything lives under ``.demo/`` in the repository (gitignored; ``OSSCSE_DEMO_DIR`` names another
directory): the OSS server's data directory, an isolated AIRFLOW_HOME, the SQLite source database and
the input/output files. It is wiped at the start of each run (OpenBao runs in memory, so old objects'
keys would be gone anyway) and kept afterwards for inspection.

For each DAG it prints each task as it starts, the run's outcome, the objects written, the first bytes
at rest next to the plaintext's (hex), the envelope headers, the CMK and its version, and what was
verified. A "verified" line is printed only after every task of the run succeeded and the demo's own
checks passed; the first failed DAG run ends the demo with exit status 1 and a ``FAILED`` line naming
the DAG and its failed task(s).

Ctrl-C (SIGINT) or SIGTERM stops the demo: no further task output is trusted and no further DAG runs,
the services are stopped (OpenBao by its PID, printed at start-up with the demo's own; the OSS and KMS
servers are threads of the demo), and the exit status is 130 (143 for SIGTERM). The signal is recorded
as well as raised because ``dag.test()`` runs tasks in this process and Airflow's task runner turns an
exception raised inside a task, KeyboardInterrupt included, into a failed task and carries on.
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
DEMO = Path(os.environ.get("OSSCSE_DEMO_DIR") or REPO / ".demo").resolve()
#: Written into the demo directory; a directory without it is never wiped (OSSCSE_DEMO_DIR may be mistyped).
DEMO_MARKER = ".osscse-demo"
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


class DemoStepError(Exception):
    """A DAG run, or a check the demo makes on its results, did not succeed."""


#: The signal that interrupted the demo (0: none). Checked after every DAG run and before every
#: "verified" line, since a KeyboardInterrupt raised inside a task is swallowed by Airflow's task runner.
_interrupted = 0


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _interrupted  # noqa: PLW0603 - a signal handler has nowhere else to record the signal
    _interrupted = _interrupted or signum
    raise KeyboardInterrupt


def _handle_stop_signals() -> None:
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def _record_signal(signum: int, frame: FrameType | None) -> None:
    """While the services are being stopped: remember a further signal, do not abort the clean-up."""
    global _interrupted  # noqa: PLW0603 - see _on_signal
    _interrupted = _interrupted or signum


def _stop_if_interrupted() -> None:
    if _interrupted:
        raise KeyboardInterrupt


def _prepare_demo_dir() -> None:
    """Wipe and recreate the demo directory, refusing one that holds anything but a previous demo's files."""
    ours = DEMO == REPO / ".demo" or (DEMO / DEMO_MARKER).exists()  # the default .demo/ predates the marker
    if DEMO.exists() and any(DEMO.iterdir()) and not ours:
        raise SystemExit(
            f"{DEMO} is not empty and was not made by the demo: set OSSCSE_DEMO_DIR to a new or empty directory"
        )
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir(parents=True)
    (DEMO / DEMO_MARKER).write_text("made by scripts/demo.py; wiped at the start of each run\n")


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


def task_progress_listener() -> object:
    """An Airflow listener printing one line per task as it starts (``dag.test()`` runs tasks in this process).

    Built on call: ``hookimpl`` comes from Airflow, imported only after the environment is configured.
    It also puts the demo's SIGTERM handler back: Airflow's task runner replaces it for each task (with
    one that only calls the operator's ``on_kill``) and does not restore it, so SIGTERM would no longer
    stop the demo. And once the demo is interrupted, a task's end re-raises the interruption, so that
    ``dag.test()`` stops there instead of marking the rest of the run (the check after each run remains
    the guarantee, should Airflow ever swallow this one too).
    """
    from airflow.listeners import hookimpl

    class TaskProgress:
        @hookimpl
        def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
            index = getattr(task_instance, "map_index", None)
            mapped = f"[{index}]" if isinstance(index, int) and index >= 0 else ""
            _handle_stop_signals()
            _stop_if_interrupted()
            _say(f"    task {task_instance.task_id}{mapped} started")

        @hookimpl
        def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
            _stop_if_interrupted()

        @hookimpl
        def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
            _stop_if_interrupted()

    return TaskProgress()


def run_dag(dagbag: Any, dag_id: str, label: str | None = None, **kwargs: Any) -> None:
    """Run ``dag_id`` with ``dag.test()``; raise unless the run and every task instance succeeded.

    KeyboardInterrupt when the demo was interrupted during the run, whatever the run's state.
    """
    _stop_if_interrupted()
    started = time.monotonic()
    run = dagbag.get_dag(dag_id).test(**kwargs)
    tis = sorted(run.get_task_instances(), key=lambda ti: (ti.task_id, ti.map_index))
    states = {ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): str(ti.state) for ti in tis}
    _say(
        f"  run {run.run_id}: {run.state} in {time.monotonic() - started:.1f}s  "
        + ", ".join(f"{t}={s}" for t, s in states.items())
    )
    _stop_if_interrupted()
    not_ok = {t: s for t, s in states.items() if s != "success"}
    if str(run.state) != "success" or not_ok:
        failed = [t for t, s in not_ok.items() if s == "failed"] or list(not_ok) or ["(no task failed)"]
        others = [f"{t}={s}" for t, s in not_ok.items() if t not in failed]
        raise DemoStepError(
            f"{label or dag_id}: DAG run {run.run_id} {run.state}; failed task(s): {', '.join(failed)}"
            + (f" (not run: {', '.join(others)})" if others else "")
            + "; its error is in the task log above"
        )


def verified(text: str) -> None:
    """Print a "verified" line: only reached after the step's checks, and never once interrupted."""
    _stop_if_interrupted()
    _say(f"  verified: {text}")


def check_rotation(reader: Any, before: dict[str, tuple[str | None, str]]) -> None:
    """Print each object's key version before -> after; raise unless each decrypts to the same bytes."""
    changed = []
    for key, (version, digest) in before.items():
        after = reader.inspect(key, BUCKET).key_version
        same = hashlib.sha256(reader.read(key, BUCKET)).hexdigest() == digest
        _say(f"  {key}: {version} -> {after}, decrypts to the same bytes: {same}")
        if not same:
            changed.append(key)
    if changed:
        raise DemoStepError(f"cmk_rotation: after the rewrap these objects decrypt to other bytes: {changed}")


def load_dags() -> Any:
    """The repository's DAGs, with the task-progress listener registered for their runs."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.listener import get_listener_manager

    dagbag = DagBag(dag_folder=str(REPO / "dags"))
    if dagbag.import_errors:
        raise DemoStepError(f"DAG import errors: {dagbag.import_errors}")
    get_listener_manager().add_listener(task_progress_listener())  # type: ignore[no-untyped-call]  # Airflow's ListenerManager is unannotated
    return dagbag


def main() -> int:
    _configure_environment()
    _prepare_demo_dir()
    seed = _load_seed()
    _handle_stop_signals()

    from airflow_provider_osscse.testing.kms_server import LocalKMSServer
    from airflow_provider_osscse.testing.openbao import OpenBaoServer
    from airflow_provider_osscse.testing.oss_server import LocalOSSServer
    from airflow_provider_osscse.testing.pytest_plugin import REGION, airflow_connection_env, new_access_key

    services: list[Any] = []
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
        _say(f"  services: OpenBao pid {bao.pid}; OSS and KMS are threads of this process (demo {os.getpid()})")

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

        from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

        dagbag = load_dags()
        transit = "vault-transit://vault_default/transit/osscse-demo"
        reader = EncryptedOSSHook(
            "oss_default", decrypt_cmks=[transit, "vault-kv://vault_decrypt/secret/osscse/etl-rsa"]
        )

        _say("\n== encrypted_transfer: local files -> Vault Transit -> sensor -> decrypted download ==")
        run_dag(dagbag, "encrypted_transfer")
        describe_objects(oss, reader, list(reader.list_keys("transfer/", BUCKET)))
        verified("the downloaded files' SHA-256 equal the inputs' (task compare_checksums)")

        _say("\n== compliance_export: one encrypted CSV per day (SQLite, data-interval SQL) ==")
        for day in (2, 3, 4):  # a manual run covers the whole day before its logical date
            logical_date = dt.datetime(2024, 1, day, tzinfo=dt.UTC)
            run_dag(
                dagbag, "compliance_export", f"compliance_export {logical_date:%Y-%m-%d}", logical_date=logical_date
            )
        export_keys = sorted(reader.list_keys("exports/", BUCKET))
        describe_objects(oss, reader, export_keys[:1])
        for key in export_keys:
            _say(f"  {key}: {len(reader.read(key, BUCKET).splitlines()) - 1} rows")

        _say("\n== vault_key_custody_etl: RSA CMK in Vault KV; read back with a decrypt-only token ==")
        run_dag(dagbag, "vault_key_custody_etl")
        describe_objects(oss, reader, list(reader.list_keys("etl/", BUCKET)))
        verified("decrypted through vault_decrypt (read-only policy) to the transformed file's bytes")

        _say("\n== cmk_rotation: rotate the Transit key, rewrap transfer/, prove old objects still decrypt ==")
        before = {
            k: (reader.inspect(k, BUCKET).key_version, hashlib.sha256(reader.read(k, BUCKET)).hexdigest())
            for k in reader.list_keys("transfer/", BUCKET)
        }
        run_dag(dagbag, "cmk_rotation")
        check_rotation(reader, before)
        verified("every rewrapped object decrypts to the same bytes as before the rotation")
        _say(f"\nOutputs kept in {DEMO}")
    except KeyboardInterrupt:
        _say(f"\nInterrupted; stopping services{_pids(services)} ...")
        return 128 + (_interrupted or signal.SIGINT)
    except DemoStepError as failure:
        _say(f"FAILED: {failure}")
        return 1
    except Exception:
        if _interrupted:  # an error caused by the interruption (e.g. a half-done read): report the interruption
            _say(f"\nInterrupted; stopping services{_pids(services)} ...")
            return 128 + _interrupted
        raise
    finally:
        # A further Ctrl-C must not leave a service running: record it, finish stopping (bounded waits).
        signal.signal(signal.SIGINT, _record_signal)
        signal.signal(signal.SIGTERM, _record_signal)
        for service in reversed(services):
            try:
                service.stop()
            except Exception as exc:  # noqa: BLE001 - whatever one service raises, keep stopping the others
                _say(f"  could not stop {type(service).__name__}: {exc}")
    _say("All four example DAGs succeeded; no service left running.")
    return 0


def _pids(services: list[Any]) -> str:
    pids = [f"{type(s).__name__} pid {s.pid}" for s in services if getattr(s, "pid", None)]
    return f" ({', '.join(pids)})" if pids else ""


if __name__ == "__main__":
    sys.exit(main())
