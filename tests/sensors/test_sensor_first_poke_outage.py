"""Deferrable ``EncryptedOSSKeySensor`` when OSS is unreachable at its very first poke.

Found by the deployment tier (tests/deployment/test_sensor_deployment.py): the first poke runs in the
task before deferring, outside the trigger's backoff, so a refused connection there failed the try
(``up_for_retry``, or ``failed`` with Airflow's default of no retries) before the wait had begun. Now a
transient error there defers like any other "not yet", and the trigger rides it out until the timeout;
an error a retry cannot cure still fails the task at once.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_osscse.sensors.encrypted_oss_key import EncryptedOSSKeySensor
from airflow_provider_osscse.testing.pytest_plugin import airflow_connection_env
from airflow_provider_osscse.triggers.encrypted_oss_key import EncryptedOSSKeyTrigger
from tests.operators.fixtures import TEST_BUCKET

pytestmark = pytest.mark.usefixtures("osscse_services")


@pytest.fixture
def unreachable_conn(osscse_services: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    """A connection like oss_default but to a loopback port where nothing listens (connection refused)."""
    server = osscse_services["oss"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{probe.getsockname()[1]}"
    conn = airflow_connection_env(server)["AIRFLOW_CONN_OSS_DEFAULT"].replace(server.endpoint, nowhere)
    monkeypatch.setenv("AIRFLOW_CONN_OSS_NOWHERE", conn)
    return "oss_nowhere"


def sensor(conn_id: str, bucket: str = TEST_BUCKET) -> EncryptedOSSKeySensor:
    return EncryptedOSSKeySensor(
        task_id="s", bucket_key="k.csv", bucket_name=bucket, oss_conn_id=conn_id, deferrable=True, timeout=30
    )


def test_deferrable_sensor_defers_when_oss_refuses_connections_at_its_first_poke(unreachable_conn: str) -> None:
    with pytest.raises(TaskDeferred) as deferred:
        sensor(unreachable_conn).execute({})  # type: ignore[arg-type]  # poke reads no context
    trigger = deferred.value.trigger
    assert isinstance(trigger, EncryptedOSSKeyTrigger) and trigger.oss_conn_id == unreachable_conn
    assert deferred.value.timeout == timedelta(seconds=30)  # the wait is still bounded by the sensor's timeout


def test_deferrable_sensor_still_fails_at_once_on_an_error_a_retry_cannot_cure() -> None:
    with pytest.raises(Exception, match="no-such-bucket-osscse") as raised:
        sensor("oss_default", bucket="no-such-bucket-osscse").execute({})  # type: ignore[arg-type]
    assert not isinstance(raised.value, TaskDeferred)
