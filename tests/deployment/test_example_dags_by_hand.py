"""The four example DAGs triggered by hand in a real deployment: no logical date, as the UI's Trigger
button (the REST API) and ``airflow dags trigger`` make runs in Airflow 3.

Issue 11 saw ``compliance_export`` fail that way (``'data_interval_start' is undefined``), which
``dag.test()`` with a logical date could not show. Each run here is made by the scheduler, executed by
LocalExecutor's task processes (the execution API for state and XCom) and read back through the
REST API; the objects are checked at rest with the project's hook. The DAGs take their settings from
the deployment's environment (tests/deployment/conftest.py), never from a run's conf.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest

from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from tests.deployment.airflow_deployment import AirflowDeployment
from tests.deployment.conftest import DEPLOY_BUCKET, DEPLOY_TRANSIT_CMK, DEPLOY_TRANSIT_KEY
from tests.operators.fixtures import KV_CMK

pytestmark = [pytest.mark.deployment, pytest.mark.xdist_group("airflow_deployment")]


def reader() -> EncryptedOSSHook:
    return EncryptedOSSHook("oss_default", decrypt_cmks=[DEPLOY_TRANSIT_CMK, KV_CMK])


def keys_under(prefix: str) -> list[str]:
    return sorted(reader().list_keys(prefix, DEPLOY_BUCKET))


def run_by_hand(deployment: AirflowDeployment, dag_id: str, timeout: float = 120) -> dict[str, Any]:
    """Trigger through the REST API without a logical date; return the finished run, which must have succeeded."""
    run = deployment.trigger(dag_id)
    assert run["logical_date"] is None and run["data_interval_start"] is None, run  # the case being proven
    return succeeded(deployment, dag_id, run["dag_run_id"], timeout)


def succeeded(deployment: AirflowDeployment, dag_id: str, run_id: str, timeout: float = 120) -> dict[str, Any]:
    run = deployment.wait_for_run(dag_id, run_id, timeout)
    states = {
        f"{t['task_id']}[{t['map_index']}]": (t["state"], t["try_number"])
        for t in deployment.task_instances(dag_id, run_id)
    }
    assert run["state"] == "success", states
    assert all(try_number == 1 for _, try_number in states.values()), states  # no task needed a retry
    return run


def test_encrypted_transfer_by_hand_uploads_ciphertext_and_downloads_the_same_bytes(
    airflow_deployment: AirflowDeployment, osscse_services: dict[str, Any], deployment_inputs: dict[str, Any]
) -> None:
    run = run_by_hand(airflow_deployment, "encrypted_transfer")
    slug = run["dag_run_id"].replace(":", "").replace("+", "")
    keys = keys_under(f"transfer/{slug}/")
    files = deployment_inputs["input_files"]
    assert sorted(k.split("/", 2)[2] for k in keys) == sorted(files)
    for key in keys:
        at_rest = osscse_services["oss"].stored_object(DEPLOY_BUCKET, key)
        assert at_rest.metadata["x-oss-meta-client-side-encryption-wrap-alg"] == "VAULT/TRANSIT"
        assert at_rest.data != files[key.split("/", 2)[2]]
    # compare_checksums (part of the successful run) compared every downloaded file with its input.
    downloaded = deployment_inputs["data"] / "output" / slug
    assert {p.relative_to(downloaded).as_posix() for p in downloaded.rglob("*") if p.is_file()} == set(files)


def test_compliance_export_by_hand_with_airflow_dags_trigger_exports_the_last_whole_day(
    airflow_deployment: AirflowDeployment, osscse_services: dict[str, Any]
) -> None:
    """``airflow dags trigger`` (no ``--logical-date``): the run has no data interval and exports the day
    before its ``run_after``. The scheduled catch-up runs (2024-01-01..04) run too, in the same deployment."""
    airflow_deployment.unpause("compliance_export")  # the scheduler starts its catch-up runs now
    triggered = airflow_deployment.cli("dags", "trigger", "compliance_export", "--output", "json")
    assert triggered.returncode == 0, triggered.stderr
    # The JSON document is the last line: Airflow prints its own warnings (graphviz missing) to stdout first.
    (run,) = json.loads(triggered.stdout.strip().splitlines()[-1])
    assert run["logical_date"] is None, run
    run = succeeded(airflow_deployment, "compliance_export", run["dag_run_id"])
    day = dt.datetime.fromisoformat(run["run_after"]).astimezone(dt.UTC).date() - dt.timedelta(days=1)
    key = f"exports/orders/{day.isoformat()}.csv"
    lines = reader().read(key, DEPLOY_BUCKET).decode().splitlines()
    assert len(lines) == 6 and all(f"{day.isoformat()} " in line for line in lines[1:]), lines
    assert osscse_services["oss"].stored_object(DEPLOY_BUCKET, key).metadata["x-oss-meta-export-day"] == day.isoformat()

    # On schedule: one catch-up run per day from 2024-01-01 to the end date 2024-01-04 (the DAG's defaults),
    # created one after the other (max_active_runs=1), so the run by hand may have run between them.
    deadline = time.monotonic() + 90
    while len(scheduled := scheduled_runs(airflow_deployment)) < CATCH_UP_RUNS and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(scheduled) == CATCH_UP_RUNS, scheduled
    for other in scheduled:
        succeeded(airflow_deployment, "compliance_export", other["dag_run_id"])
    assert {f"exports/orders/2024-01-0{d}.csv" for d in (1, 2, 3, 4)} <= set(keys_under("exports/orders/"))


CATCH_UP_RUNS = 4


def scheduled_runs(deployment: AirflowDeployment) -> list[dict[str, Any]]:
    return [r for r in deployment.dag_runs("compliance_export") if r["run_type"] == "scheduled"]


def test_vault_key_custody_etl_by_hand_writes_an_rsa_wrapped_object_read_back_with_the_decrypt_token(
    airflow_deployment: AirflowDeployment, osscse_services: dict[str, Any]
) -> None:
    run = run_by_hand(airflow_deployment, "vault_key_custody_etl")
    slug = run["dag_run_id"].replace(":", "").replace("+", "")
    key = f"etl/customer_totals/{slug}.csv"
    at_rest = osscse_services["oss"].stored_object(DEPLOY_BUCKET, key)
    assert at_rest.metadata["x-oss-meta-client-side-encryption-wrap-alg"] == "RSA/NONE/PKCS1Padding"
    plaintext = reader().read(key, DEPLOY_BUCKET)
    assert plaintext.startswith(b"customer,total_cents\n") and at_rest.data != plaintext


def test_cmk_rotation_by_hand_moves_every_object_to_the_new_key_version(
    airflow_deployment: AirflowDeployment, osscse_services: dict[str, Any]
) -> None:
    writer = EncryptedOSSHook("oss_default", cmk=DEPLOY_TRANSIT_CMK)
    for i in range(2):  # objects of its own, whether or not encrypted_transfer ran first
        writer.upload([f"rotate me {i}".encode()], f"transfer/rotation-seed/{i}.txt", DEPLOY_BUCKET)
    before = {k: reader().read(k, DEPLOY_BUCKET) for k in keys_under("transfer/")}

    run_by_hand(airflow_deployment, "cmk_rotation")
    latest = osscse_services["vault"].secrets.transit.read_key(name=DEPLOY_TRANSIT_KEY, mount_point="transit")
    version = f"v{latest['data']['latest_version']}"
    for key, plaintext in before.items():
        assert reader().inspect(key, DEPLOY_BUCKET).key_version == version, key
        assert reader().read(key, DEPLOY_BUCKET) == plaintext
