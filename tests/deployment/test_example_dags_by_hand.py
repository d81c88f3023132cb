"""The four example DAGs triggered by hand in a real deployment, twice each: with a logical date (as
``--logical-date`` does) and without one, as the UI's Trigger button (the REST API) and ``airflow dags
trigger`` make runs in Airflow 3.

Issue 11 saw ``compliance_export`` fail without one (``'data_interval_start' is undefined``), which
``dag.test()`` with a logical date could not show. Each run here is made by the scheduler, executed by
the Celery workers (the execution API for state, XCom and connections, which live in the metadata DB)
and read back through the REST API: every task instance, mapped ones included, must succeed on its first
try, on a worker; ``cmk_rotation``'s mapped rewraps on both. The objects are checked at rest with the
project's hook. The DAGs take their settings from the deployment's environment
(tests/deployment/conftest.py), never from a run's conf.
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


#: The logical date of the dated runs. Inside ``compliance_export``'s start and end dates (Airflow makes no task
#: instance for a logical date after a DAG's end date: the run "succeeds" empty) and not at midnight, the
#: logical date of one of its scheduled catch-up runs (a second run with the same one is refused: 409).
LOGICAL_DATE = dt.datetime(2024, 1, 3, 12, tzinfo=dt.UTC)


def trigger_dated(deployment: AirflowDeployment, dag_id: str) -> str:
    run = deployment.trigger(dag_id, logical_date=LOGICAL_DATE.isoformat())
    assert dt.datetime.fromisoformat(run["logical_date"]) == LOGICAL_DATE, run
    return str(run["dag_run_id"])


def trigger_undated(deployment: AirflowDeployment, dag_id: str) -> str:
    run = deployment.trigger(dag_id)
    assert run["logical_date"] is None and run["data_interval_start"] is None, run  # as the Trigger button does
    return str(run["dag_run_id"])


def run_twice(deployment: AirflowDeployment, dag_id: str) -> list[dict[str, Any]]:
    """Trigger with and without a logical date (both at once); return both runs, which must have succeeded."""
    run_ids = [trigger_dated(deployment, dag_id), trigger_undated(deployment, dag_id)]
    return [succeeded(deployment, dag_id, run_id) for run_id in run_ids]


def succeeded(deployment: AirflowDeployment, dag_id: str, run_id: str, timeout: float = 180) -> dict[str, Any]:
    """The finished run, which must have succeeded with every task instance (mapped ones included) on its first
    try, each on one of the Celery workers. Its task instances are in ``run["task_instances"]``."""
    run = deployment.wait_for_run(dag_id, run_id, timeout)
    instances = deployment.task_instances(dag_id, run_id)
    states = {f"{t['task_id']}[{t['map_index']}]": (t["state"], t["try_number"], t["hostname"]) for t in instances}
    assert run["state"] == "success", states
    assert instances and all(t["state"] == "success" for t in instances), states
    assert all(t["try_number"] == 1 for t in instances), states  # no task needed a retry
    if deployment.settings.celery:
        assert {t["hostname"] for t in instances} <= set(deployment.settings.celery_workers), states
    return {**run, "task_instances": instances}


def test_encrypted_transfer_twice_by_hand_uploads_ciphertext_and_downloads_the_same_bytes(
    airflow_deployment: AirflowDeployment, osscse_services: dict[str, Any], deployment_inputs: dict[str, Any]
) -> None:
    for run in run_twice(airflow_deployment, "encrypted_transfer"):
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


def test_compliance_export_by_hand_exports_the_day_before_its_logical_date_or_else_the_last_whole_day(
    airflow_deployment: AirflowDeployment, osscse_services: dict[str, Any]
) -> None:
    """With a logical date (REST API, 2024-01-03 12:00): the run's data interval is the whole day before,
    2024-01-02, exported. With ``airflow dags trigger`` (no ``--logical-date``): the run has no data interval
    and exports the day before its ``run_after``. The scheduled catch-up runs (2024-01-01..04) run too."""
    airflow_deployment.unpause("compliance_export")  # the scheduler starts its catch-up runs now
    dated_run_id = trigger_dated(airflow_deployment, "compliance_export")
    triggered = airflow_deployment.cli("dags", "trigger", "compliance_export", "--output", "json")
    assert triggered.returncode == 0, triggered.stderr
    # The JSON document is the last line: Airflow prints its own warnings (graphviz missing) to stdout first.
    (run,) = json.loads(triggered.stdout.strip().splitlines()[-1])
    assert run["logical_date"] is None, run
    run = succeeded(airflow_deployment, "compliance_export", run["dag_run_id"])
    dated = succeeded(airflow_deployment, "compliance_export", dated_run_id)
    assert dt.datetime.fromisoformat(dated["data_interval_start"]) == dt.datetime(2024, 1, 2, tzinfo=dt.UTC), dated
    (export,) = dated["task_instances"]
    assert export["rendered_fields"]["dest_key"] == "exports/orders/2024-01-02.csv", export["rendered_fields"]
    undated_day = dt.datetime.fromisoformat(run["run_after"]).astimezone(dt.UTC).date() - dt.timedelta(days=1)
    for day in (undated_day, dt.date(2024, 1, 2)):
        key = f"exports/orders/{day.isoformat()}.csv"
        lines = reader().read(key, DEPLOY_BUCKET).decode().splitlines()
        assert len(lines) == 6 and all(f"{day.isoformat()} " in line for line in lines[1:]), lines
        at_rest = osscse_services["oss"].stored_object(DEPLOY_BUCKET, key)
        assert at_rest.metadata["x-oss-meta-export-day"] == day.isoformat()

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


def test_vault_key_custody_etl_twice_by_hand_writes_an_rsa_wrapped_object_read_back_with_the_decrypt_token(
    airflow_deployment: AirflowDeployment, osscse_services: dict[str, Any]
) -> None:
    for run in run_twice(airflow_deployment, "vault_key_custody_etl"):
        slug = run["dag_run_id"].replace(":", "").replace("+", "")
        key = f"etl/customer_totals/{slug}.csv"
        at_rest = osscse_services["oss"].stored_object(DEPLOY_BUCKET, key)
        assert at_rest.metadata["x-oss-meta-client-side-encryption-wrap-alg"] == "RSA/NONE/PKCS1Padding"
        plaintext = reader().read(key, DEPLOY_BUCKET)
        assert plaintext.startswith(b"customer,total_cents\n") and at_rest.data != plaintext


#: Objects cmk_rotation finds however many encrypted_transfer left: its mapped rewraps (one per listing
#: shard of ``objects_per_shard`` = 2 objects, the DAG's default) are wider than one worker's slots
#: (``worker_concurrency``), so the other worker must take some.
ROTATION_SEEDS = 8
ROTATION_OBJECTS_PER_SHARD = 2


def test_cmk_rotation_twice_by_hand_moves_every_object_to_the_new_key_version_with_rewraps_on_both_workers(
    airflow_deployment: AirflowDeployment, osscse_services: dict[str, Any]
) -> None:
    writer = EncryptedOSSHook("oss_default", cmk=DEPLOY_TRANSIT_CMK)
    for i in range(ROTATION_SEEDS):  # objects of its own, whether or not encrypted_transfer ran first
        writer.upload([f"rotate me {i}".encode()], f"transfer/rotation-seed/{i}.txt", DEPLOY_BUCKET)
    before = {k: reader().read(k, DEPLOY_BUCKET) for k in keys_under("transfer/")}
    vault = osscse_services["vault"]

    # One after the other: two rotations of one key at once would each find the other's new version.
    for trigger in (trigger_dated, trigger_undated):
        run = succeeded(airflow_deployment, "cmk_rotation", trigger(airflow_deployment, "cmk_rotation"))
        rewraps = [t for t in run["task_instances"] if t["task_id"] == "rewrap"]
        shards = -(-len(before) // ROTATION_OBJECTS_PER_SHARD)
        assert sorted(t["map_index"] for t in rewraps) == list(range(shards)), rewraps  # one per listing shard
        if airflow_deployment.settings.celery:
            assert {t["hostname"] for t in rewraps} == set(airflow_deployment.settings.celery_workers), rewraps
        latest = vault.secrets.transit.read_key(name=DEPLOY_TRANSIT_KEY, mount_point="transit")
        version = f"v{latest['data']['latest_version']}"
        for key, plaintext in before.items():
            assert reader().inspect(key, DEPLOY_BUCKET).key_version == version, key
            assert reader().read(key, DEPLOY_BUCKET) == plaintext


def test_connections_are_read_from_the_metadata_db_not_the_environment(airflow_deployment: AirflowDeployment) -> None:
    """The runs above used them: no component had an ``AIRFLOW_CONN_*`` variable, the DB holds every one."""
    if not airflow_deployment.settings.connections_in_db:
        pytest.skip("this deployment keeps its connections in variables (OSSCSE_DEPLOYMENT_CONNECTIONS_IN_DB=0)")
    environments = [airflow_deployment.env, *(c.env for c in airflow_deployment.components.values())]
    assert not [name for env in environments for name in env if name.startswith("AIRFLOW_CONN_")]
    stored = airflow_deployment.api("GET", "/api/v2/connections?limit=100")["connections"]
    assert {c["connection_id"] for c in stored} == set(airflow_deployment.connections)
    assert {"oss_default", "vault_default", "vault_decrypt", "osscse_export_db"} <= set(airflow_deployment.connections)
