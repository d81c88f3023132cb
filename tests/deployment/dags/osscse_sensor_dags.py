"""DAGs of the deployment tests only (tests/deployment): one ``EncryptedOSSKeySensor`` each, deferred or poking.

All configure retries with a long delay, so that a policy violation retried by mistake shows as
``up_for_retry`` (try 1 of 3) instead of ``failed``: "fails at once, without retries" is observable.
Everything a test varies comes from the run's conf: the key, the bucket and the OSS connection.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_osscse.sensors.encrypted_oss_key import EncryptedOSSKeySensor

#: dag_id -> (deferrable, timeout in seconds); the short timeout is for an OSS endpoint that never answers.
SENSOR_DAGS = {
    "osscse_sensor_deferrable": (True, 120),
    "osscse_sensor_poke": (False, 120),
    "osscse_sensor_deferrable_short_timeout": (True, 8),
}

for dag_id, (deferrable, timeout) in SENSOR_DAGS.items():
    with DAG(
        dag_id,
        schedule=None,
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        tags=["osscse", "deployment-test"],
        params={
            "key": Param("", type="string"),
            "bucket": Param("osscse-test", type="string"),
            "conn": Param("oss_default", type="string"),
        },
    ) as dag:
        EncryptedOSSKeySensor(
            task_id="wait",
            bucket_key="{{ params.key }}",
            bucket_name="{{ params.bucket }}",
            oss_conn_id="{{ params.conn }}",
            expected_wrap_alg="VAULT/TRANSIT",
            deferrable=deferrable,
            poke_interval=0.5,  # deferred: the trigger's poll interval, and the start of its error backoff
            timeout=timeout,
            retries=2,
            retry_delay=timedelta(minutes=10),
        )
    globals()[dag_id] = dag
