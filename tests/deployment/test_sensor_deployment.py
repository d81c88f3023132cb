"""``EncryptedOSSKeySensor`` in a real deployment: the scheduler runs it, the triggerer polls for it.

What a deployment showed (issue 11) and ``dag.test()`` cannot: deferred, a policy violation went
``up_for_retry`` although the docstring says it fails at once; an OSS outage of about a second during
deferral ended the wait with ``Connection refused``; each poll logged oss2's 404 ``Exception: {...}``
line into the task log. Found by this tier: OSS refusing connections at the deferrable sensor's first
poke (before it defers) failed the try before the wait had begun. A deferred sensor belongs to no process
while it waits: it survives a restart of the triggerer, whose replacement takes its trigger over.

The sensor DAGs (tests/deployment/dags) configure ``retries=2`` with a 10-minute delay, so a retry shows
as ``up_for_retry`` and "failed on try 1" means "no retry".
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.testing.oss_server import LocalOSSServer
from airflow_provider_osscse.testing.pytest_plugin import airflow_connection_env
from tests.deployment.airflow_deployment import AirflowDeployment
from tests.deployment.conftest import OUTAGE_CONN_ID, UNREACHABLE_CONN_ID
from tests.operators.fixtures import TEST_BUCKET, TRANSIT_CMK

pytestmark = [pytest.mark.deployment, pytest.mark.xdist_group("airflow_deployment")]

OSS2_404_LINE = "Exception: {"
#: The trigger's INFO line after each poll that found nothing (a 404), in the task's trigger log.
TRIGGER_WAITING = "Waiting for encrypted objects at"


def new_key(name: str) -> str:
    return f"deployment-sensor/{uuid.uuid4().hex}/{name}"


def logs_of(deployment: AirflowDeployment, dag_id: str, run_id: str) -> str:
    """Every log file of the sensor task in the run: its attempts and the trigger's log."""
    return "\n".join(p.read_text(errors="replace") for p in deployment.task_log_files(dag_id, run_id, "wait"))


def wait_for_log(deployment: AirflowDeployment, dag_id: str, run_id: str, text: str, timeout: float = 30) -> str:
    """The task's logs once they contain ``text``: the supervisor may still be writing the last lines when the
    task's state has already changed, so a log is awaited, never read once."""
    deadline = time.monotonic() + timeout
    while text not in (logs := logs_of(deployment, dag_id, run_id)):
        assert time.monotonic() < deadline, f"no {text!r} in the logs of {dag_id} {run_id} after {timeout} s"
        time.sleep(0.2)
    return logs


def trigger_and_wait_until(deployment: AirflowDeployment, dag_id: str, state: str, **conf: str) -> str:
    """Trigger the sensor DAG by hand (no logical date) and wait until its task is in ``state``."""
    run_id = str(deployment.trigger(dag_id, {"bucket": TEST_BUCKET, **conf})["dag_run_id"])
    ti = deployment.wait_for_task(dag_id, run_id, "wait", {state})
    assert ti["state"] == state, ti
    if state == "deferred":  # before the trigger may fire: see AirflowDeployment.wait_for_deferral_exit
        deployment.wait_for_deferral_exit(dag_id, run_id, "wait")
    return run_id


def test_deferred_sensor_waits_through_an_oss_outage_and_succeeds_on_its_first_try(
    airflow_deployment: AirflowDeployment, outage_oss_server: LocalOSSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag_id, key = "osscse_sensor_deferrable", new_key("after-outage.csv")
    run_id = trigger_and_wait_until(airflow_deployment, dag_id, "deferred", key=key, conn=OUTAGE_CONN_ID)
    wait_for_log(airflow_deployment, dag_id, run_id, TRIGGER_WAITING)  # the triggerer polls: the key is not there
    outage_oss_server.stop()
    try:
        time.sleep(2.5)  # connection refused for every poll meanwhile (the trigger's backoff starts at 0.5 s)
        ti = next(t for t in airflow_deployment.task_instances(dag_id, run_id) if t["task_id"] == "wait")
        assert ti["state"] == "deferred", ti  # still waiting, not failed after the hook's quick retries
    finally:
        outage_oss_server.start()
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{OUTAGE_CONN_ID.upper()}", airflow_connection_env(outage_oss_server)["AIRFLOW_CONN_OSS_DEFAULT"]
    )
    EncryptedOSSHook(OUTAGE_CONN_ID, cmk=TRANSIT_CMK).upload([b"arrived after the outage"], key, TEST_BUCKET)

    ti = airflow_deployment.wait_for_task(dag_id, run_id, "wait", {"success"})
    assert (ti["state"], ti["try_number"]) == ("success", 1), ti
    assert "deferred" in ti["states_seen"]
    logs = wait_for_log(airflow_deployment, dag_id, run_id, "OSS unavailable while waiting")  # it backed off
    assert OSS2_404_LINE not in logs


def test_deferred_sensor_survives_a_triggerer_restart_and_succeeds_when_the_object_arrives(
    airflow_deployment: AirflowDeployment,
) -> None:
    dag_id, key = "osscse_sensor_deferrable", new_key("after-restart.csv")
    run_id = trigger_and_wait_until(airflow_deployment, dag_id, "deferred", key=key)
    wait_for_log(airflow_deployment, dag_id, run_id, TRIGGER_WAITING)  # the first triggerer polls for it
    started = time.monotonic()
    # SIGTERM, as a deploy or a restart does; waits for its exit, longer than the triggerer's own escalation.
    airflow_deployment.stop_component("triggerer", grace=30)
    stopped_in = time.monotonic() - started
    log = (airflow_deployment.log_dir / "triggerer.log").read_text(errors="replace")
    exits = [line for line in log.splitlines() if "Process exited" in line]
    # Its trigger runner ended on the first signal (SIGINT), not after the triggerer's 10-second escalation to
    # SIGTERM and SIGKILL (seen: the poll's thread blocked in a connection lookup the stopping loop never answered).
    assert exits and "signal_sent=SIGINT" in exits[-1], exits
    assert stopped_in < 10, stopped_in
    # The object arrives while no triggerer runs: only the next one can see it.
    EncryptedOSSHook("oss_default", cmk=TRANSIT_CMK).upload([b"arrived during the restart"], key, TEST_BUCKET)
    time.sleep(1)
    ti = next(t for t in airflow_deployment.task_instances(dag_id, run_id) if t["task_id"] == "wait")
    assert ti["state"] == "deferred", ti  # nothing failed or resumed it meanwhile
    airflow_deployment.start_component("triggerer")

    ti = airflow_deployment.wait_for_task(dag_id, run_id, "wait", {"success"}, timeout=120)
    assert (ti["state"], ti["try_number"]) == ("success", 1), ti


def test_deferred_sensor_fails_a_plaintext_object_at_once_without_retries(
    airflow_deployment: AirflowDeployment, osscse_services: dict[str, Any]
) -> None:
    dag_id, key = "osscse_sensor_deferrable", new_key("plain.csv")
    run_id = trigger_and_wait_until(airflow_deployment, dag_id, "deferred", key=key)
    wait_for_log(airflow_deployment, dag_id, run_id, TRIGGER_WAITING)
    osscse_services["bucket"].put_object(key, b"id,name\n1,plaintext\n")  # seen by the trigger, not the first poke

    ti = airflow_deployment.wait_for_task(dag_id, run_id, "wait", {"failed"})
    assert (ti["state"], ti["try_number"]) == ("failed", 1), ti  # retries=2 configured: not up_for_retry
    assert airflow_deployment.wait_for_run(dag_id, run_id)["state"] == "failed"
    logs = wait_for_log(airflow_deployment, dag_id, run_id, "is not client-side encrypted")
    assert OSS2_404_LINE not in logs


def test_poking_sensor_fails_a_plaintext_object_at_once_without_retries(
    airflow_deployment: AirflowDeployment, osscse_services: dict[str, Any]
) -> None:
    dag_id, key = "osscse_sensor_poke", new_key("plain.csv")
    run_id = trigger_and_wait_until(airflow_deployment, dag_id, "running", key=key)
    time.sleep(1.5)  # a few pokes of the missing key: 404s
    osscse_services["bucket"].put_object(key, b"id,name\n1,plaintext\n")

    ti = airflow_deployment.wait_for_task(dag_id, run_id, "wait", {"failed"})
    assert (ti["state"], ti["try_number"]) == ("failed", 1), ti
    logs = wait_for_log(airflow_deployment, dag_id, run_id, "is not client-side encrypted")
    assert OSS2_404_LINE not in logs


def test_deferred_sensor_polls_an_unreachable_oss_with_backoff_until_its_timeout(
    airflow_deployment: AirflowDeployment,
) -> None:
    """OSS refuses every connection, from the first poke on: the sensor defers anyway and its trigger backs
    off and polls again, never firing an error, until the sensor's 8-second timeout ends the wait."""
    dag_id = "osscse_sensor_deferrable_short_timeout"
    run = airflow_deployment.trigger(
        dag_id, {"bucket": TEST_BUCKET, "key": new_key("never.csv"), "conn": UNREACHABLE_CONN_ID}
    )
    ti = airflow_deployment.wait_for_task(dag_id, run["dag_run_id"], "wait", {"failed"}, timeout=60)
    assert "deferred" in ti["states_seen"], ti  # before: the first poke's refused connection failed the try
    assert (ti["state"], ti["try_number"]) == ("failed", 1), ti  # a sensor timeout is not retried
    # The triggerer ended the wait, at the sensor's timeout.
    logs = wait_for_log(airflow_deployment, dag_id, run["dag_run_id"], "Trigger cancelled due to timeout")
    assert logs.count("OSS unavailable while waiting") >= 2  # several polls, backing off
    assert "'status': 'error'" not in logs  # the trigger never gave up on its own
